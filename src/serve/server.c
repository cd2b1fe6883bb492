#include "serve/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/log.h"
#include "base/timer.h"
#include "guard/parden.h"
#include "lm/model.h"
#include "text/tokenizer.h"
#include "serve/adapters.h"
#include "serve/metrics.h"
#include "serve/sched.h"
#include "serve/tenants.h"
#include "serve/util.h"

struct br_server {
    br_server_opts_t o;
    char model_name[128];
    br_model_t *model;
    br_tokenizer_t *tok;
    br_tenants_t *tenants;
    br_metrics_t *metrics;
    br_adapters_t *adapters;
    br_sched_t *sched;
    struct MHD_Daemon *d;
    int port;
    int32_t start_token;         /* prepended to every prompt (BOS, else end-of-text), -1: none */
    bool guard;
    atomic_int inflight;         /* generation requests not yet answered */
    atomic_bool draining;
    atomic_ulong next_id;
    bool shut;
    time_t created;
    br_metric_t *m_requests, *m_http;
};

/* ---- connection state and replies ---- */

typedef struct {
    char *body;
    size_t len, cap;
    bool too_big;
    bool counted;                /* inflight incremented */
} conn_t;

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *ctype, char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(j);
    if (!text) return MHD_NO;
    return send_text(c, status, "application/json", text);
}

static const char *error_type(unsigned status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

/* OpenAI error object; retry_after > 0 adds the Retry-After header. */
static enum MHD_Result send_error_full(br_server_t *s, struct MHD_Connection *c, unsigned status, const char *code,
                                       const char *param, int retry_after, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static enum MHD_Result send_error_full(br_server_t *s, struct MHD_Connection *c, unsigned status, const char *code,
                                       const char *param, int retry_after, const char *fmt, ...)
{
    char msg[1024], fixed[3 * 1024 + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    br_utf8_repair(fixed, msg, strlen(msg));
    json_t *e = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", fixed, "type", error_type(status), "param",
                          param ? json_string(param) : json_null(), "code", code ? json_string(code) : json_null());
    char *text = json_dumps(e, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(e);
    if (!text) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (retry_after > 0) {
        char ra[32];
        snprintf(ra, sizeof ra, "%d", retry_after);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    (void)s;
    return ok;
}
#define send_error(s, c, status, code, param, ...) send_error_full(s, c, status, code, param, 0, __VA_ARGS__)

static unsigned status_http(br_status st)
{
    switch (st) {
    case BR_ENOTFOUND: return 404;
    case BR_EBUSY: return 409;
    case BR_ENOMEM: return 503;
    case BR_EIO: return 500;
    default: return 400;
    }
}

/* The peer closed its end (recv would return 0).  Pipelined bytes do not count as closed. */
static bool peer_closed(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    int fd = ci->connect_fd;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR)) return true;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* ---- request parsing ---- */

typedef struct {
    bool chat, stream, include_usage;
    br_tenant_t *tenant;
    char adapter[128];           /* "" = base */
    char model[160];
} gen_req_t;

/* The model field names the base model or an adapter this tenant may use. */
static enum MHD_Result resolve_model(br_server_t *s, struct MHD_Connection *c, gen_req_t *g, json_t *body,
                                     bool *ok)
{
    *ok = false;
    json_t *m = json_object_get(body, "model");
    if (!json_is_string(m)) return send_error(s, c, 400, "invalid_type", "model", "\"model\" must be a string");
    const char *name = json_string_value(m);
    snprintf(g->model, sizeof g->model, "%s", name);
    if (!strcmp(name, s->model_name)) {
        g->adapter[0] = 0;
        *ok = true;
        return MHD_YES;
    }
    char owner[64];
    bool known = br_serve_name_ok(name, 100) && br_adapters_lookup(s->adapters, name) == BR_OK;
    if (known) {
        br_adapters_owner(s->adapters, name, owner, sizeof owner);
        if (owner[0] ? strcmp(owner, g->tenant->name) != 0 : !br_tenants_may_use(s->tenants, g->tenant, name))
            known = false;
    }
    if (!known)
        return send_error(s, c, 404, "model_not_found", "model",
                          "The model '%.200s' does not exist or you do not have access to it", name);
    snprintf(g->adapter, sizeof g->adapter, "%s", name);
    *ok = true;
    return MHD_YES;
}

static bool get_number(json_t *body, const char *key, double lo, double hi, double *out, bool *bad)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) return false;
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi || !isfinite(json_number_value(v))) {
        *bad = true;
        return false;
    }
    *out = json_number_value(v);
    return true;
}

/* Appends text to a growable buffer. */
typedef struct {
    char *s;
    size_t len, cap;
} buf_t;

static bool buf_add(buf_t *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t nc = (b->len + n + 1) * 2;
        char *t = realloc(b->s, nc);
        if (!t) return false;
        b->s = t;
        b->cap = nc;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = 0;
    return true;
}

/* The text of a chat message's content: a string, or a list of {"type": "text", "text": ...}. */
static const char *content_text(json_t *content, buf_t *tmp)
{
    if (json_is_string(content)) return json_string_value(content);
    if (!json_is_array(content)) return NULL;
    tmp->len = 0;
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");
        json_t *ty = json_object_get(part, "type");
        if (!json_is_string(ty) || strcmp(json_string_value(ty), "text") || !json_is_string(t)) return NULL;
        if (!buf_add(tmp, json_string_value(t), json_string_length(t))) return NULL;
    }
    return tmp->s ? tmp->s : "";
}

/* braid's plain chat template (docs/serve.md):
 *   SYSTEM\n\nUser: USER\nAssistant: ASSISTANT\nUser: ...\nAssistant: */
static enum MHD_Result chat_prompt(br_server_t *s, struct MHD_Connection *c, json_t *msgs, buf_t *out, bool *ok)
{
    *ok = false;
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return send_error(s, c, 400, "invalid_type", "messages", "\"messages\" must be a non-empty list");
    buf_t tmp = {0};
    size_t i;
    json_t *m;
    bool good = true;
    json_array_foreach(msgs, i, m) {
        json_t *role = json_object_get(m, "role");
        const char *text = content_text(json_object_get(m, "content"), &tmp);
        if (!json_is_object(m) || !json_is_string(role) || !text) {
            free(tmp.s);
            return send_error(s, c, 400, "invalid_type", "messages",
                              "messages[%zu] must be {\"role\": ..., \"content\": string or text parts}", i);
        }
        const char *r = json_string_value(role);
        if (!strcmp(r, "system") || !strcmp(r, "developer")) {
            good &= buf_add(out, text, strlen(text)) && buf_add(out, "\n\n", 2);
        } else if (!strcmp(r, "user")) {
            good &= buf_add(out, "User: ", 6) && buf_add(out, text, strlen(text)) && buf_add(out, "\n", 1);
        } else if (!strcmp(r, "assistant")) {
            good &= buf_add(out, "Assistant: ", 11) && buf_add(out, text, strlen(text)) && buf_add(out, "\n", 1);
        } else {
            free(tmp.s);
            return send_error(s, c, 400, "invalid_value", "messages",
                              "messages[%zu]: role '%.40s' is not system, user or assistant", i, r);
        }
    }
    free(tmp.s);
    good &= buf_add(out, "Assistant:", 10);
    if (!good) return send_error(s, c, 503, NULL, NULL, "out of memory");
    *ok = true;
    return MHD_YES;
}

/* Tokenizes the prompt (string, [string], or [int, ...]) with the start token first. */
static enum MHD_Result prompt_tokens(br_server_t *s, struct MHD_Connection *c, json_t *prompt, const char *text,
                                     int32_t **ids, size_t *n, bool *ok)
{
    *ok = false;
    size_t V = (size_t)s->model->cfg.vocab_size;
    int32_t *enc = NULL;
    size_t ne = 0;
    if (text) {
        if (br_tokenizer_encode(s->tok, text, strlen(text), 0, &enc, &ne) != BR_OK)
            return send_error(s, c, 400, NULL, "prompt", "cannot tokenize the prompt: %s", br_errmsg());
    } else if (json_is_string(prompt) || (json_is_array(prompt) && json_array_size(prompt) == 1 &&
                                          json_is_string(json_array_get(prompt, 0)))) {
        json_t *p = json_is_string(prompt) ? prompt : json_array_get(prompt, 0);
        if (br_tokenizer_encode(s->tok, json_string_value(p), json_string_length(p), 0, &enc, &ne) != BR_OK)
            return send_error(s, c, 400, NULL, "prompt", "cannot tokenize the prompt: %s", br_errmsg());
    } else if (json_is_array(prompt) && json_array_size(prompt) > 0 && json_is_integer(json_array_get(prompt, 0))) {
        ne = json_array_size(prompt);
        enc = malloc(ne * sizeof *enc);
        if (!enc) return send_error(s, c, 503, NULL, NULL, "out of memory");
        for (size_t i = 0; i < ne; i++) {
            json_t *v = json_array_get(prompt, i);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || (size_t)json_integer_value(v) >= V) {
                free(enc);
                return send_error(s, c, 400, "invalid_value", "prompt",
                                  "prompt[%zu] is not a token id in [0, %zu)", i, V);
            }
            enc[i] = (int32_t)json_integer_value(v);
        }
    } else if (json_is_array(prompt) && json_array_size(prompt) > 1) {
        return send_error(s, c, 400, "invalid_value", "prompt", "only one prompt per request is supported");
    } else {
        return send_error(s, c, 400, "invalid_type", "prompt",
                          "\"prompt\" must be a string, a list with one string, or a list of token ids");
    }
    size_t extra = s->start_token >= 0 ? 1 : 0;
    int32_t *all = malloc((ne + extra) * sizeof *all);
    if (!all) {
        free(enc);
        return send_error(s, c, 503, NULL, NULL, "out of memory");
    }
    if (extra) all[0] = s->start_token;
    if (ne) memcpy(all + extra, enc, ne * sizeof *enc);
    free(enc);
    if (ne + extra == 0) {
        free(all);
        return send_error(s, c, 400, "invalid_value", "prompt", "the prompt is empty");
    }
    *ids = all;
    *n = ne + extra;
    *ok = true;
    return MHD_YES;
}

/* Sampling parameters and stop strings. */
static enum MHD_Result gen_params(br_server_t *s, struct MHD_Connection *c, json_t *body, bool chat, size_t n_prompt,
                                  br_gen_params_t *gp, bool *ok)
{
    *ok = false;
    memset(gp, 0, sizeof *gp);
    size_t ctx = br_sched_context(s->sched);
    double v;
    bool bad = false;
    gp->max_tokens = chat ? (int)(ctx - (n_prompt < ctx ? n_prompt : ctx)) + 1 : 16;
    const char *mt_key = json_object_get(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    json_t *mt = json_object_get(body, mt_key);
    if (mt && !json_is_null(mt)) {
        if (!json_is_integer(mt) || json_integer_value(mt) < 1 || json_integer_value(mt) > 1000000)
            return send_error(s, c, 400, "invalid_value", mt_key, "\"%s\" must be an integer in 1..1000000", mt_key);
        gp->max_tokens = (int)json_integer_value(mt);
    }
    /* a prompt plus max_tokens past the context ends with finish_reason "length" at the context */
    gp->temperature = 1.0f;
    if (get_number(body, "temperature", 0, 2, &v, &bad)) gp->temperature = (float)v;
    if (bad) return send_error(s, c, 400, "invalid_value", "temperature", "\"temperature\" must be a number in [0, 2]");
    gp->top_p = 1.0f;
    if (get_number(body, "top_p", 0, 1, &v, &bad)) gp->top_p = (float)v;
    if (bad || gp->top_p <= 0) return send_error(s, c, 400, "invalid_value", "top_p", "\"top_p\" must be in (0, 1]");
    json_t *tk = json_object_get(body, "top_k"); /* vLLM's extension */
    if (tk && !json_is_null(tk)) {
        if (!json_is_integer(tk) || json_integer_value(tk) < -1 || json_integer_value(tk) > 1000000)
            return send_error(s, c, 400, "invalid_value", "top_k", "\"top_k\" must be an integer >= -1 (-1 or 0: all)");
        gp->top_k = json_integer_value(tk) > 0 ? (int)json_integer_value(tk) : 0;
    }
    json_t *ie = json_object_get(body, "ignore_eos"); /* vLLM's extension: fixed output lengths */
    if (ie && !json_is_null(ie) && !json_is_boolean(ie))
        return send_error(s, c, 400, "invalid_type", "ignore_eos", "\"ignore_eos\" must be true or false");
    gp->ignore_eos = json_is_true(ie);
    json_t *seed = json_object_get(body, "seed");
    if (seed && !json_is_null(seed)) {
        if (!json_is_integer(seed)) return send_error(s, c, 400, "invalid_type", "seed", "\"seed\" must be an integer");
        gp->has_seed = true;
        gp->seed = (uint64_t)json_integer_value(seed);
    }
    json_t *n = json_object_get(body, "n");
    if (n && !json_is_null(n) && !(json_is_integer(n) && json_integer_value(n) == 1))
        return send_error(s, c, 400, "invalid_value", "n", "only n = 1 is supported");
    json_t *lp = json_object_get(body, "logprobs");
    if (lp && !json_is_null(lp) && !json_is_false(lp) && !(json_is_integer(lp) && json_integer_value(lp) == 0))
        return send_error(s, c, 400, "unsupported_parameter", "logprobs", "logprobs are not supported");
    json_t *echo = json_object_get(body, "echo");
    if (echo && json_is_true(echo)) return send_error(s, c, 400, "unsupported_parameter", "echo", "echo is not supported");
    const char *pens[] = {"presence_penalty", "frequency_penalty"};
    for (int i = 0; i < 2; i++) {
        if (get_number(body, pens[i], -2, 2, &v, &bad) && v != 0)
            return send_error(s, c, 400, "unsupported_parameter", pens[i], "%s other than 0 is not supported", pens[i]);
        if (bad) return send_error(s, c, 400, "invalid_value", pens[i], "\"%s\" must be a number in [-2, 2]", pens[i]);
    }
    json_t *stop = json_object_get(body, "stop");
    json_t *list = json_is_string(stop) ? json_pack("[O]", stop) : json_incref(stop);
    if (stop && !json_is_null(stop)) {
        if (!json_is_array(list) || json_array_size(list) > BR_MAX_STOP) {
            json_decref(list);
            return send_error(s, c, 400, "invalid_type", "stop", "\"stop\" must be a string or a list of up to %d strings",
                              BR_MAX_STOP);
        }
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e) {
            if (!json_is_string(e) || !json_string_length(e) || json_string_length(e) > 256) {
                json_decref(list);
                for (int k = 0; k < gp->nstop; k++) free(gp->stop[k]);
                gp->nstop = 0;
                return send_error(s, c, 400, "invalid_value", "stop", "stop strings must be 1..256 bytes");
            }
            gp->stop[gp->nstop++] = strdup(json_string_value(e));
        }
    }
    json_decref(list);
    if (chat && gp->nstop < BR_MAX_STOP) gp->stop[gp->nstop++] = strdup("\nUser:");
    for (int k = 0; k < gp->nstop; k++)
        if (!gp->stop[k]) return send_error(s, c, 503, NULL, NULL, "out of memory");
    *ok = true;
    return MHD_YES;
}

/* ---- responses ---- */

static json_t *repaired_string(const char *p, size_t n)
{
    char *fixed = malloc(3 * n + 1);
    if (!fixed) return json_string("");
    size_t m = br_utf8_repair(fixed, p, n);
    json_t *j = json_stringn(fixed, m);
    free(fixed);
    return j ? j : json_string("");
}

static const char *finish_name(br_finish f)
{
    return f == BR_FINISH_LENGTH ? "length" : "stop";
}

static json_t *usage_json(br_req_t *r)
{
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)r->n_prompt, "completion_tokens",
                     (json_int_t)r->n_out, "total_tokens", (json_int_t)(r->n_prompt + r->n_out));
}

static void add_guard(json_t *o, br_req_t *r)
{
    if (!r->guard) return;
    json_object_set_new(o, "braid_guard", r->guarded ? json_pack("{s:f, s:b}", "score", r->guard_score, "flagged",
                                                                 r->guard_flagged)
                                                     : json_pack("{s:n, s:b, s:s}", "score", "flagged", 1, "error",
                                                                 "the guard could not run (the repeat prompt does not fit "
                                                                 "the context): the response is withheld"));
}

static json_t *full_response(br_server_t *s, const gen_req_t *g, br_req_t *r)
{
    json_t *text = repaired_string(r->text ? r->text : "", r->text_len);
    json_t *choice;
    if (g->chat)
        choice = json_pack("{s:i, s:{s:s, s:o}, s:n, s:s}", "index", 0, "message", "role", "assistant", "content", text,
                           "logprobs", "finish_reason", finish_name(r->finish));
    else
        choice = json_pack("{s:o, s:i, s:n, s:s}", "text", text, "index", 0, "logprobs", "finish_reason",
                           finish_name(r->finish));
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o}", "id", r->id, "object",
                          g->chat ? "chat.completion" : "text_completion", "created", (json_int_t)time(NULL), "model",
                          g->model, "choices", choice, "usage", usage_json(r));
    add_guard(o, r);
    (void)s;
    return o;
}

/* One SSE chunk; text may be NULL (first chat chunk: role only; last chunk: finish only). */
static char *sse_chunk(const gen_req_t *g, br_req_t *r, const char *text, size_t n, const char *finish, bool first,
                       bool usage_only)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "id", r->id, "object", g->chat ? "chat.completion.chunk" : "text_completion",
                          "created", (json_int_t)time(NULL), "model", g->model);
    if (usage_only) {
        json_object_set_new(o, "choices", json_array());
        json_object_set_new(o, "usage", usage_json(r));
    } else {
        json_t *choice;
        json_t *fin = finish ? json_string(finish) : json_null();
        if (g->chat) {
            json_t *delta = json_object();
            if (first) json_object_set_new(delta, "role", json_string("assistant"));
            if (text) json_object_set_new(delta, "content", repaired_string(text, n));
            choice = json_pack("{s:i, s:o, s:n, s:o}", "index", 0, "delta", delta, "logprobs", "finish_reason", fin);
        } else {
            choice = json_pack("{s:o, s:i, s:n, s:o}", "text", text ? repaired_string(text, n) : json_string(""), "index",
                               0, "logprobs", "finish_reason", fin);
        }
        json_object_set_new(o, "choices", json_pack("[o]", choice));
        if (finish) add_guard(o, r);
        if (finish && g->include_usage) json_object_set_new(o, "usage", json_null());
    }
    char *js = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!js) return NULL;
    size_t len = strlen(js);
    char *ev = malloc(len + 9);
    if (ev) {
        memcpy(ev, "data: ", 6);
        memcpy(ev + 6, js, len);
        memcpy(ev + 6 + len, "\n\n", 3);
    }
    free(js);
    return ev;
}

/* ---- streaming ---- */

typedef struct {
    br_server_t *s;
    struct MHD_Connection *c;
    br_req_t *r;
    gen_req_t g;
    buf_t pending;               /* bytes produced, not yet handed to MHD */
    size_t off;                  /* of pending already handed out */
    size_t sent_text;            /* bytes of r->text already in events */
    bool first, finished, ended;
} stream_t;

static void stream_produce(stream_t *st)
{
    br_req_t *r = st->r;
    pthread_mutex_lock(&r->mu);
    bool done = r->done;
    size_t ready = r->text_ready;
    char *piece = NULL;
    size_t n = 0;
    if (ready > st->sent_text) {
        n = ready - st->sent_text;
        piece = malloc(n);
        if (piece) memcpy(piece, r->text + st->sent_text, n);
    }
    pthread_mutex_unlock(&r->mu);
    if (st->first && st->g.chat) {
        char *ev = sse_chunk(&st->g, r, NULL, 0, NULL, true, false);
        if (ev) buf_add(&st->pending, ev, strlen(ev));
        free(ev);
    }
    st->first = false;
    if (piece) {
        /* guarded text arrives at once: cut it into chunks of ~64 bytes at UTF-8 boundaries */
        size_t at = 0;
        while (at < n) {
            size_t take = n - at > 64 ? 64 : n - at;
            while (at + take < n && take > 1 && ((unsigned char)piece[at + take] & 0xC0) == 0x80) take--;
            char *ev = sse_chunk(&st->g, r, piece + at, take, NULL, false, false);
            if (ev) buf_add(&st->pending, ev, strlen(ev));
            free(ev);
            at += take;
        }
        st->sent_text += n;
        free(piece);
    }
    if (done && !st->finished) {
        st->finished = true;
        if (r->finish == BR_FINISH_ERROR) {
            json_t *e = json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message", r->errmsg, "type", "server_error",
                                  "param", "code");
            char *js = json_dumps(e, JSON_COMPACT | JSON_ENSURE_ASCII);
            json_decref(e);
            if (js) {
                buf_add(&st->pending, "data: ", 6);
                buf_add(&st->pending, js, strlen(js));
                buf_add(&st->pending, "\n\n", 2);
            }
            free(js);
        } else {
            char *ev = sse_chunk(&st->g, r, NULL, 0, finish_name(r->finish), false, false);
            if (ev) buf_add(&st->pending, ev, strlen(ev));
            free(ev);
            if (st->g.include_usage) {
                ev = sse_chunk(&st->g, r, NULL, 0, NULL, false, true);
                if (ev) buf_add(&st->pending, ev, strlen(ev));
                free(ev);
            }
        }
        buf_add(&st->pending, "data: [DONE]\n\n", 14);
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    stream_t *st = cls;
    for (;;) {
        if (st->off < st->pending.len) {
            size_t n = st->pending.len - st->off;
            if (n > max) n = max;
            memcpy(out, st->pending.s + st->off, n);
            st->off += n;
            if (st->off == st->pending.len) st->off = st->pending.len = 0;
            return (ssize_t)n;
        }
        if (st->finished) return MHD_CONTENT_READER_END_OF_STREAM;
        br_req_wait(st->r, st->sent_text, 0.25);
        if (peer_closed(st->c)) {
            br_req_cancel(st->r);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        stream_produce(st);
    }
}

static void stream_free(void *cls)
{
    stream_t *st = cls;
    pthread_mutex_lock(&st->r->mu);
    bool done = st->r->done;
    pthread_mutex_unlock(&st->r->mu);
    if (!done) br_req_cancel(st->r);
    br_req_unref(st->r);
    free(st->pending.s);
    free(st);
}

/* ---- generation endpoints ---- */

static void count_request(br_server_t *s, const gen_req_t *g, unsigned code)
{
    char cs[16];
    snprintf(cs, sizeof cs, "%u", code);
    br_metric_add(s->m_requests, 1, g->tenant ? g->tenant->name : "-", g->adapter[0] ? g->adapter : "-", cs);
}

static enum MHD_Result handle_generate(br_server_t *s, struct MHD_Connection *c, conn_t *cs, br_tenant_t *tenant,
                                       bool chat)
{
    gen_req_t g = {.chat = chat, .tenant = tenant};
    json_error_t je;
    if (!cs->len) return send_error(s, c, 400, NULL, NULL, "the request body is empty (want a JSON object)");
    json_t *body = json_loadb(cs->body, cs->len, JSON_REJECT_DUPLICATES, &je);
    if (!body) return send_error(s, c, 400, "invalid_json", NULL, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
    if (!json_is_object(body)) {
        json_decref(body);
        return send_error(s, c, 400, "invalid_json", NULL, "the request body must be a JSON object");
    }
    bool ok;
    enum MHD_Result res = resolve_model(s, c, &g, body, &ok);
    if (!ok) goto out_body;
    json_t *stream = json_object_get(body, "stream");
    if (stream && !json_is_boolean(stream) && !json_is_null(stream)) {
        res = send_error(s, c, 400, "invalid_type", "stream", "\"stream\" must be true or false");
        goto out_body;
    }
    g.stream = json_is_true(stream);
    json_t *so = json_object_get(body, "stream_options");
    g.include_usage = json_is_object(so) && json_is_true(json_object_get(so, "include_usage"));
    buf_t chat_text = {0};
    if (chat) {
        res = chat_prompt(s, c, json_object_get(body, "messages"), &chat_text, &ok);
        if (!ok) {
            free(chat_text.s);
            goto out_body;
        }
    } else if (!json_object_get(body, "prompt")) {
        res = send_error(s, c, 400, "missing_required_parameter", "prompt", "\"prompt\" is required");
        goto out_body;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    res = prompt_tokens(s, c, json_object_get(body, "prompt"), chat ? chat_text.s : NULL, &ids, &n, &ok);
    free(chat_text.s);
    if (!ok) goto out_body;
    size_t ctx = br_sched_context(s->sched);
    if (n >= ctx) {
        free(ids);
        res = send_error(s, c, 400, "context_length_exceeded", chat ? "messages" : "prompt",
                         "This model's maximum context length is %zu tokens, however you requested %zu tokens in the "
                         "prompt",
                         ctx, n);
        goto out_body;
    }
    br_gen_params_t gp;
    res = gen_params(s, c, body, chat, n, &gp, &ok);
    if (!ok) {
        free(ids);
        goto out_body;
    }
    size_t need = br_sched_pages_needed(s->sched, n, gp.max_tokens), total = br_sched_pages_total(s->sched);
    if (need > total) {
        free(ids);
        for (int k = 0; k < gp.nstop; k++) free(gp.stop[k]);
        res = send_error(s, c, 400, "context_length_exceeded", "max_tokens",
                         "this request needs %zu KV cache pages but the server has %zu: lower max_tokens or the prompt",
                         need, total);
        goto out_body;
    }
    int retry = 0;
    if (br_tenants_admit(s->tenants, tenant, br_now(), (double)n, &retry) != BR_OK) {
        free(ids);
        for (int k = 0; k < gp.nstop; k++) free(gp.stop[k]);
        unsigned code = retry ? 429 : 400;
        count_request(s, &g, code);
        res = send_error_full(s, c, code, retry ? "rate_limit_exceeded" : "invalid_value", NULL, retry, "%s",
                              br_errmsg());
        goto out_body;
    }
    json_decref(body);
    body = NULL;

    br_req_t *r = NULL;
    if (br_req_create(&r, ids, n, &gp) != BR_OK) {
        free(ids);
        for (int k = 0; k < gp.nstop; k++) free(gp.stop[k]);
        return send_error(s, c, 503, NULL, NULL, "out of memory");
    }
    snprintf(r->id, sizeof r->id, "%s-%lx%04lx", chat ? "chatcmpl" : "cmpl", (unsigned long)time(NULL),
             (unsigned long)(atomic_fetch_add(&s->next_id, 1) & 0xffff));
    r->tenant = tenant;
    snprintf(r->adapter, sizeof r->adapter, "%s", g.adapter);
    r->guard = s->guard;
    if (br_sched_submit(s->sched, r) != BR_OK) {
        br_req_unref(r);
        count_request(s, &g, 503);
        return send_error(s, c, 503, NULL, NULL, "the server is shutting down");
    }
    /* wait: non-stream until done, stream until admitted (so load errors get a real status) */
    for (;;) {
        pthread_mutex_lock(&r->mu);
        bool done = r->done, admitted = r->admitted;
        pthread_mutex_unlock(&r->mu);
        if (done || (g.stream && admitted)) break;
        br_req_wait(r, g.stream ? 0 : SIZE_MAX, 0.1);
        if (peer_closed(c)) {
            br_req_cancel(r);
            br_req_unref(r);
            count_request(s, &g, 499);
            return MHD_NO;
        }
    }
    pthread_mutex_lock(&r->mu);
    bool done = r->done;
    br_finish fin = r->finish;
    pthread_mutex_unlock(&r->mu);
    if (done && fin == BR_FINISH_ERROR) {
        unsigned code = r->http_status ? (unsigned)r->http_status : 500;
        count_request(s, &g, code);
        res = send_error(s, c, code, code == 404 ? "model_not_found" : NULL, code == 404 ? "model" : NULL, "%s",
                         r->errmsg);
        br_req_unref(r);
        return res;
    }
    count_request(s, &g, 200);
    if (!g.stream) {
        res = send_json(c, 200, full_response(s, &g, r));
        br_req_unref(r);
        return res;
    }
    stream_t *st = calloc(1, sizeof *st);
    if (!st) {
        br_req_cancel(r);
        br_req_unref(r);
        return send_error(s, c, 503, NULL, NULL, "out of memory");
    }
    st->s = s;
    st->c = c;
    st->r = r;
    st->g = g;
    st->first = true;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free);
    if (!resp) {
        br_req_cancel(r);
        br_req_unref(r);
        free(st);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    res = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return res;
out_body:
    json_decref(body);
    return res;
}

/* ---- other endpoints ---- */

static enum MHD_Result handle_models(br_server_t *s, struct MHD_Connection *c, br_tenant_t *tenant)
{
    json_t *data = json_array();
    json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s}", "id", s->model_name, "object", "model", "created",
                                          (json_int_t)s->created, "owned_by", "braid"));
    char **names = NULL;
    size_t n = 0;
    if (br_adapters_list(s->adapters, &names, &n) == BR_OK) {
        char owner[64];
        for (size_t i = 0; i < n; i++) {
            br_adapters_owner(s->adapters, names[i], owner, sizeof owner);
            if (!owner[0]) {
                const br_tenant_t *t = br_tenants_owner(s->tenants, names[i]);
                if (t) snprintf(owner, sizeof owner, "%s", t->name);
            }
            if (owner[0] && strcmp(owner, tenant->name)) continue;
            json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "id", names[i], "object", "model",
                                                  "created", (json_int_t)s->created, "owned_by",
                                                  owner[0] ? owner : "shared", "parent", s->model_name, "root",
                                                  s->model_name));
        }
        br_adapters_free_names(names, n);
    }
    return send_json(c, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

static enum MHD_Result handle_adapter_post(br_server_t *s, struct MHD_Connection *c, conn_t *cs, br_tenant_t *tenant)
{
    if (!tenant->admin) return send_error(s, c, 403, NULL, NULL, "tenant '%s' may not load adapters", tenant->name);
    json_error_t je;
    json_t *body = cs->len ? json_loadb(cs->body, cs->len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!json_is_object(body)) {
        json_decref(body);
        return send_error(s, c, 400, "invalid_json", NULL, "want a JSON object {\"name\": ..., \"path\": ...}");
    }
    json_t *name = json_object_get(body, "name"), *path = json_object_get(body, "path"), *shared = json_object_get(body, "shared");
    enum MHD_Result res;
    if (!json_is_string(name) || !json_is_string(path)) {
        res = send_error(s, c, 400, "invalid_type", NULL, "\"name\" and \"path\" must be strings");
    } else if (!strcmp(json_string_value(name), s->model_name)) {
        res = send_error(s, c, 400, "invalid_value", "name", "'%s' is the base model's name", s->model_name);
    } else {
        const char *owner = json_is_true(shared) || br_tenants_is_open(s->tenants) ? "" : tenant->name;
        br_status st = br_adapters_register(s->adapters, json_string_value(name), json_string_value(path), owner);
        if (st != BR_OK)
            res = send_error(s, c, status_http(st), NULL, "path", "%s", br_errmsg());
        else
            res = send_json(c, 200, json_pack("{s:s, s:s, s:s, s:s}", "id", json_string_value(name), "object", "model",
                                              "owned_by", owner[0] ? owner : "shared", "parent", s->model_name));
    }
    json_decref(body);
    return res;
}

static enum MHD_Result handle_adapter_delete(br_server_t *s, struct MHD_Connection *c, const char *name,
                                             br_tenant_t *tenant)
{
    char owner[64];
    br_adapters_owner(s->adapters, name, owner, sizeof owner);
    if (!tenant->admin && strcmp(owner, tenant->name))
        return send_error(s, c, 403, NULL, NULL, "tenant '%s' may not unload adapter '%.100s'", tenant->name, name);
    br_status st = br_adapters_unload(s->adapters, name);
    if (st != BR_OK) return send_error(s, c, status_http(st), st == BR_ENOTFOUND ? "model_not_found" : NULL, NULL, "%s", br_errmsg());
    return send_json(c, 200, json_pack("{s:s, s:s, s:b}", "id", name, "object", "model", "deleted", 1));
}

static enum MHD_Result handle_health(br_server_t *s, struct MHD_Connection *c)
{
    size_t waiting = 0, running = 0, loaded = 0, bytes = 0;
    br_sched_load(s->sched, &waiting, &running);
    br_adapters_stats(s->adapters, &loaded, &bytes);
    bool drain = atomic_load(&s->draining);
    return send_json(c, drain ? 503 : 200,
                     json_pack("{s:s, s:s, s:I, s:I, s:I}", "status", drain ? "draining" : "ok", "model", s->model_name,
                               "waiting", (json_int_t)waiting, "running", (json_int_t)running, "adapters_loaded",
                               (json_int_t)loaded));
}

static void count_http(br_server_t *s, const char *endpoint, unsigned code)
{
    char cs[16];
    snprintf(cs, sizeof cs, "%u", code);
    br_metric_add(s->m_http, 1, endpoint, cs);
}

static enum MHD_Result route(br_server_t *s, struct MHD_Connection *c, const char *url, const char *method, conn_t *cs)
{
    bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST"), del = !strcmp(method, "DELETE");
    if (!strcmp(url, "/health")) {
        count_http(s, "/health", 200);
        return get ? handle_health(s, c) : send_error(s, c, 405, NULL, NULL, "use GET /health");
    }
    if (!strcmp(url, "/metrics")) {
        if (!get) return send_error(s, c, 405, NULL, NULL, "use GET /metrics");
        count_http(s, "/metrics", 200);
        char *text = br_metrics_render(s->metrics);
        if (!text) return send_error(s, c, 503, NULL, NULL, "out of memory");
        return send_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", text);
    }
    bool gen = !strcmp(url, "/v1/completions") || !strcmp(url, "/v1/chat/completions");
    bool models = !strcmp(url, "/v1/models");
    bool ad = !strcmp(url, "/v1/adapters") || !strncmp(url, "/v1/adapters/", 13);
    if (!gen && !models && !ad) {
        count_http(s, "other", 404);
        return send_error(s, c, 404, "unknown_url", NULL, "Unknown request URL: %s %.200s", method, url);
    }
    br_tenant_t *tenant = br_tenants_auth(s->tenants, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"));
    if (!tenant) {
        count_http(s, url, 401);
        return send_error(s, c, 401, "invalid_api_key", NULL,
                          "Incorrect or missing API key: send 'Authorization: Bearer KEY' with a key from the tenants file");
    }
    if (gen) {
        if (!post) return send_error(s, c, 405, NULL, NULL, "use POST %s", url);
        count_http(s, url, 200);
        return handle_generate(s, c, cs, tenant, url[4] == 'c' && url[5] == 'h');
    }
    if (models) {
        count_http(s, "/v1/models", 200);
        return get ? handle_models(s, c, tenant) : send_error(s, c, 405, NULL, NULL, "use GET /v1/models");
    }
    count_http(s, "/v1/adapters", 200);
    if (!strcmp(url, "/v1/adapters"))
        return post ? handle_adapter_post(s, c, cs, tenant) : send_error(s, c, 405, NULL, NULL, "use POST /v1/adapters");
    return del ? handle_adapter_delete(s, c, url + 13, tenant)
               : send_error(s, c, 405, NULL, NULL, "use DELETE /v1/adapters/NAME");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    br_server_t *s = cls;
    conn_t *cs = *con_cls;
    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs) return MHD_NO;
        *con_cls = cs;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body) cs->too_big = true;
        if (!cs->too_big) return MHD_YES;
    }
    if (*upload_size) {
        if (!cs->too_big && cs->len + *upload_size > s->o.max_body) {
            cs->too_big = true;
            free(cs->body);
            cs->body = NULL;
            cs->len = cs->cap = 0;
        }
        if (!cs->too_big) {
            buf_t b = {cs->body, cs->len, cs->cap};
            if (!buf_add(&b, upload, *upload_size)) return MHD_NO;
            cs->body = b.s;
            cs->len = b.len;
            cs->cap = b.cap;
        }
        *upload_size = 0;
        if (!cs->too_big) return MHD_YES;
    }
    if (cs->too_big) {
        count_http(s, "other", 413);
        return send_error(s, c, 413, "request_too_large", NULL, "the request body is larger than %zu bytes", s->o.max_body);
    }
    bool gen = !strncmp(url, "/v1/", 4);
    if (gen && !cs->counted) {
        cs->counted = true;
        atomic_fetch_add(&s->inflight, 1);
    }
    if (gen && atomic_load(&s->draining))
        return send_error(s, c, 503, NULL, NULL, "the server is shutting down");
    return route(s, c, url, method, cs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    br_server_t *s = cls;
    conn_t *cs = *con_cls;
    if (!cs) return;
    if (cs->counted) atomic_fetch_sub(&s->inflight, 1);
    free(cs->body);
    free(cs);
    *con_cls = NULL;
}

/* ---- start / stop ---- */

static br_status parse_guard(br_server_t *s, br_sched_opts_t *so, const char *spec)
{
    so->guard_threshold = BR_PARDEN_DEFAULT_THRESHOLD;
    so->guard_template = BR_PARDEN_PLAIN;
    if (!spec) return BR_OK;
    if (strncmp(spec, "parden", 6) || (spec[6] && spec[6] != ':'))
        return br_error(BR_EINVAL, "--guard '%s': want parden[:threshold[:template]]", spec);
    s->guard = so->guard = true;
    if (!spec[6]) return BR_OK;
    char *end;
    double th = strtod(spec + 7, &end);
    if (end == spec + 7 || !(th >= 0 && th <= 1) || (*end && *end != ':'))
        return br_error(BR_EINVAL, "--guard '%s': the threshold must be a number in [0, 1]", spec);
    so->guard_threshold = th;
    if (*end == ':') {
        br_parden_template t;
        BR_TRY(br_parden_template_parse(end + 1, &t));
        so->guard_template = (int)t;
    }
    return BR_OK;
}

static bool loopback(const char *host)
{
    return !strcmp(host, "127.0.0.1") || !strcmp(host, "localhost") || !strncmp(host, "127.", 4);
}

br_status br_server_start(br_server_t **out, const br_server_opts_t *o_in)
{
    *out = NULL;
    br_server_t *s = calloc(1, sizeof *s);
    if (!s) return br_error(BR_ENOMEM, "out of memory");
    s->o = *o_in;
    br_server_opts_t *o = &s->o;
    if (!o->host) o->host = "127.0.0.1";
    if (!o->max_batch_tokens) o->max_batch_tokens = 256;
    if (o->kv_mem_mb <= 0) o->kv_mem_mb = 256;
    if (!o->max_body) o->max_body = 1 << 20;
    if (!o->page_tokens) o->page_tokens = 16;
    if (!o->max_running) o->max_running = 64;
    if (o->max_connections <= 0) o->max_connections = 256;
    s->created = time(NULL);
    atomic_init(&s->inflight, 0);
    atomic_init(&s->draining, false);
    atomic_init(&s->next_id, (unsigned long)time(NULL));
    br_status st = BR_OK;
    br_sched_opts_t so = {0};
    if (!o->tenants_file && !loopback(o->host))
        st = br_error(BR_EINVAL, "without --tenants the server is open to anyone: it listens on loopback only "
                                 "(--host %s refused)", o->host);
    if (st == BR_OK) st = parse_guard(s, &so, o->guard);
    if (st == BR_OK) st = br_metrics_create(&s->metrics);
    if (st == BR_OK) st = o->tenants_file ? br_tenants_load(&s->tenants, o->tenants_file) : br_tenants_open(&s->tenants);
    if (st == BR_OK) st = br_model_load(&s->model, o->model_dir, false);
    char tokpath[4096];
    if (st == BR_OK) {
        if (o->tokenizer) snprintf(tokpath, sizeof tokpath, "%s", o->tokenizer);
        else st = br_path_join(tokpath, sizeof tokpath, o->model_dir, "tokenizer.json");
    }
    if (st == BR_OK) st = br_tokenizer_load(&s->tok, tokpath);
    if (st == BR_OK && br_tokenizer_vocab_size(s->tok) > (size_t)s->model->cfg.vocab_size)
        st = br_error(BR_EINVAL, "tokenizer %s has %zu ids but the model's vocabulary is %d", tokpath,
                      br_tokenizer_vocab_size(s->tok), s->model->cfg.vocab_size);
    if (st == BR_OK) {
        if (o->model_name) snprintf(s->model_name, sizeof s->model_name, "%s", o->model_name);
        else {
            const char *b = o->model_dir + strlen(o->model_dir);
            while (b > o->model_dir && b[-1] == '/') b--;
            const char *e = b;
            while (b > o->model_dir && b[-1] != '/') b--;
            snprintf(s->model_name, sizeof s->model_name, "%.*s", (int)(e - b), b);
        }
        s->start_token = s->model->cfg.bos_token_id >= 0 ? s->model->cfg.bos_token_id : br_tokenizer_eos_id(s->tok);
        br_adapters_opts_t ao = {.dir = o->adapters_dir,
                                 .shapes = br_lora_shapes_from_config(&s->model->cfg),
                                 .mem_budget = (size_t)(o->adapter_mem_mb * 1e6),
                                 .idle_s = o->adapter_idle_s,
                                 .metrics = s->metrics};
        st = br_adapters_create(&s->adapters, &ao);
    }
    if (st == BR_OK) {
        so.model = s->model;
        so.tok = s->tok;
        so.adapters = s->adapters;
        so.tenants = s->tenants;
        so.metrics = s->metrics;
        so.max_batch_tokens = o->max_batch_tokens;
        so.kv_budget_bytes = (size_t)(o->kv_mem_mb * 1e6);
        so.page_tokens = o->page_tokens;
        so.max_running = o->max_running;
        so.seed = o->seed ? o->seed : (uint64_t)(br_wall_time() * 1e6);
        st = br_sched_create(&s->sched, &so);
    }
    if (st == BR_OK) {
        s->m_requests = br_metrics_counter(s->metrics, "braid_requests_total",
                                           "Completion requests by tenant, adapter and HTTP status", "tenant,adapter,code");
        s->m_http = br_metrics_counter(s->metrics, "braid_http_requests_total", "HTTP requests by endpoint",
                                       "endpoint,code");
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
        const char *host = !strcmp(o->host, "localhost") ? "127.0.0.1" : o->host;
        if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
            st = br_error(BR_EINVAL, "--host %s: want an IPv4 address such as 127.0.0.1 or 0.0.0.0", o->host);
        if (st == BR_OK) {
            s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                                        MHD_USE_POLL,
                                    (uint16_t)o->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &addr,
                                    MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
                                    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_NOTIFY_COMPLETED,
                                    on_completed, s, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
            if (!s->d) st = br_error(BR_EIO, "cannot listen on %s:%d (%s)", o->host, o->port, strerror(errno));
        }
    }
    if (st != BR_OK) {
        br_server_free(s);
        return st;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    BR_INFO("serving %s on http://%s:%d (%s tenants, guard %s)", s->model_name, o->host, s->port,
            br_tenants_is_open(s->tenants) ? "open" : "keyed", s->guard ? "parden" : "off");
    *out = s;
    return BR_OK;
}

int br_server_port(const br_server_t *s) { return s->port; }

void br_server_shutdown(br_server_t *s, double timeout_s)
{
    if (!s || s->shut) return;
    s->shut = true;
    atomic_store(&s->draining, true);
    if (s->d) {
        MHD_socket fd = MHD_quiesce_daemon(s->d);
        if (fd != MHD_INVALID_SOCKET) close(fd);
    }
    if (s->sched) br_sched_drain(s->sched);
    double t0 = br_now();
    while (atomic_load(&s->inflight) > 0 && br_now() - t0 < timeout_s) usleep(20000);
    if (atomic_load(&s->inflight) > 0) BR_WARN("shutdown: %d requests still running after %.0f s", atomic_load(&s->inflight), timeout_s);
    if (s->d) MHD_stop_daemon(s->d);
    s->d = NULL;
}

void br_server_free(br_server_t *s)
{
    if (!s) return;
    br_server_shutdown(s, 30);
    br_sched_free(s->sched);
    br_adapters_free(s->adapters);
    br_tokenizer_free(s->tok);
    br_model_free(s->model);
    br_tenants_free(s->tenants);
    br_metrics_free(s->metrics);
    free(s);
}
