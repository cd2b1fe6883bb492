/* OpenAI-compatible completions client (see upstream.h). */
#include "guard/upstream.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BODY (64u << 20) /* refuse answers larger than this */

void br_upstream_opts_default(br_upstream_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_s = 120;
    o->connect_timeout_s = 10;
    o->retries = 3;
    o->backoff_s = 1;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;
static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct {
    char *data;
    size_t len, cap;
    int overflow;
} body_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user)
{
    body_t *b = user;
    size_t n = size * nmemb;
    if (b->len + n + 1 > MAX_BODY) {
        b->overflow = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->len + n + 1) c *= 2;
        char *q = realloc(b->data, c);
        if (!q) return 0;
        b->data = q;
        b->cap = c;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

static void sleep_s(double s)
{
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* A short, safe excerpt of an error answer: the JSON error message when there is one. */
static void error_excerpt(const body_t *b, char *out, size_t cap)
{
    out[0] = 0;
    if (!b->data || !b->len) return;
    json_t *j = json_loadb(b->data, b->len, 0, NULL);
    const char *m = NULL;
    if (j) {
        json_t *e = json_object_get(j, "error");
        if (json_is_string(e)) m = json_string_value(e);
        else if (json_is_object(e)) m = json_string_value(json_object_get(e, "message"));
        if (!m) m = json_string_value(json_object_get(j, "message"));
    }
    snprintf(out, cap, ": %.160s", m ? m : b->data);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    json_decref(j);
}

/* One request. *retry tells whether a failure is worth retrying. */
static br_status request_once(const br_upstream_opts_t *o, const char *url, const char *payload, char **text,
                              int *retry)
{
    *retry = 0;
    CURL *c = curl_easy_init();
    if (!c) return br_error(BR_ENOMEM, "upstream: cannot create a curl handle");
    body_t b = {0};
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    char auth[1100];
    if (o->api_key && *o->api_key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %.1024s", o->api_key);
        hdr = curl_slist_append(hdr, auth);
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(o->timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(o->connect_timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    br_status st = BR_OK;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        *retry = 1;
        st = br_error(BR_ETIMEOUT, "upstream %s: no answer within %.0f s", url, o->timeout_s);
    } else if (b.overflow) {
        st = br_error(BR_ENET, "upstream %s: answer larger than %u MiB", url, MAX_BODY >> 20);
    } else if (rc != CURLE_OK) {
        *retry = 1;
        st = br_error(BR_ENET, "upstream %s is not reachable: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    } else if (code >= 500 || code == 429) {
        char ex[200];
        error_excerpt(&b, ex, sizeof ex);
        *retry = 1;
        st = br_error(BR_ENET, "upstream %s answered HTTP %ld%s", url, code, ex);
    } else if (code >= 400) {
        char ex[200];
        error_excerpt(&b, ex, sizeof ex);
        st = br_error(BR_EINVAL, "upstream %s answered HTTP %ld%s", url, code, ex);
    } else {
        json_error_t je;
        json_t *j = b.data ? json_loadb(b.data, b.len, 0, &je) : NULL;
        json_t *t = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "text");
        if (!j) st = br_error(BR_ENET, "upstream %s returned malformed JSON (%s)", url, b.data ? je.text : "empty body");
        else if (!json_is_string(t))
            st = br_error(BR_ENET, "upstream %s returned JSON without choices[0].text (not a completions answer)", url);
        else {
            *text = strdup(json_string_value(t));
            if (!*text) st = br_error(BR_ENOMEM, "upstream: out of memory");
        }
        json_decref(j);
    }
    free(b.data);
    return st;
}

br_status br_upstream_complete(const br_upstream_opts_t *o, const char *prompt, int max_tokens, char **text)
{
    *text = NULL;
    if (!o || !o->base_url || !*o->base_url) return br_error(BR_EINVAL, "upstream: no URL");
    if (!prompt) return br_error(BR_EINVAL, "upstream: no prompt");
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) return br_error(BR_ENET, "upstream: libcurl failed to start");
    size_t ul = strlen(o->base_url);
    while (ul && o->base_url[ul - 1] == '/') ul--;
    char *url = malloc(ul + 16);
    if (!url) return br_error(BR_ENOMEM, "upstream: out of memory");
    snprintf(url, ul + 16, "%.*s/completions", (int)ul, o->base_url);
    json_t *req = json_pack("{s:s, s:i, s:f, s:f, s:i, s:b}", "prompt", prompt, "max_tokens", max_tokens,
                            "temperature", 0.0, "top_p", 1.0, "n", 1, "stream", 0);
    if (req && o->model && *o->model) json_object_set_new(req, "model", json_string(o->model));
    char *payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!payload) {
        free(url);
        return br_error(BR_EINVAL, "upstream: cannot encode the request (is the prompt valid UTF-8?)");
    }
    br_status st = BR_OK;
    double wait = o->backoff_s;
    for (int attempt = 0;; attempt++) {
        int retry;
        st = request_once(o, url, payload, text, &retry);
        if (st == BR_OK || !retry || attempt >= o->retries) {
            if (st != BR_OK && retry && attempt > 0) br_error_wrap(st, "after %d tries", attempt + 1);
            break;
        }
        sleep_s(wait);
        wait *= 2;
    }
    free(payload);
    free(url);
    return st;
}

br_status br_upstream_generate(void *user, const char *prompt, int max_new_tokens, char **text)
{
    return br_upstream_complete((const br_upstream_opts_t *)user, prompt, max_new_tokens, text);
}
