/* Shared by the serve tests: a tiny random model with the committed byte-level BPE
 * tokenizer, LoRA adapters written with br_lora_save (a1 rank 4 owned by acme, a2 rank 8 owned
 * by beta, shared1 rank 2 shared; broken: bad safetensors; mismatch: wrong base shapes), a
 * tenants file (acme, beta, slow: 0.5 rps, ops: admin), and a libcurl client. */
#ifndef BR_TESTS_SERVE_FIXTURE_H
#define BR_TESTS_SERVE_FIXTURE_H
#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/dtype.h"
#include "base/fileio.h"
#include "base/rng.h"
#include "lm/model.h"
#include "lm/peft.h"
#include "nn/lora.h"
#include "serve/adapters.h"

static char tmp[64], model_dir[128], adapters_dir[128], tenants_path[128];
static int port;

/* ---- fixtures ---- */

static __attribute__((unused)) br_status make_model(void)
{
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 352; /* tests/ref/serve_tokenizer.json */
    c.hidden_size = 64;
    c.intermediate_size = 128;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 1024;
    br_model_t *m = NULL;
    BR_TRY(br_model_create(&m, &c, false));
    br_model_init_random(m, 42);
    br_status st = br_model_save(m, model_dir, BR_DT_F32);
    br_lora_shapes_t shapes = br_lora_shapes_from_config(&m->cfg);
    br_model_free(m);
    BR_TRY(st);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp tests/ref/serve_tokenizer.json %s/tokenizer.json", model_dir);
    if (system(cmd)) return br_error(BR_EIO, "cannot copy the tokenizer");
    /* adapters: a1 (rank 4, q/v), a2 (rank 8, every projection), shared1 (rank 2, o/down),
     * broken (bad safetensors), mismatch (the PEFT fixture: wrong base shapes) */
    struct { const char *name; int rank; unsigned targets; } ads[] = {
        {"a1", 4, (1u << BR_PROJ_Q) | (1u << BR_PROJ_V)},
        {"a2", 8, (1u << BR_PROJ_COUNT) - 1},
        {"shared1", 2, (1u << BR_PROJ_O) | (1u << BR_PROJ_DOWN)},
    };
    br_rng_t rng;
    br_rng_seed(&rng, 7);
    for (size_t i = 0; i < 3; i++) {
        br_lora_adapter_t *a = NULL;
        BR_TRY(br_lora_create(&a, &shapes, ads[i].rank, 2.0f * ads[i].rank, ads[i].targets, false, i + 1));
        br_rng_fill_normal(&rng, a->params, a->n_params, 0.3f);
        char dir[256];
        snprintf(dir, sizeof dir, "%s/%s", adapters_dir, ads[i].name);
        st = br_lora_save(a, dir);
        br_lora_free(a);
        BR_TRY(st);
    }
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/broken %s/mismatch && cp %s/a1/adapter_config.json %s/broken/ && "
             "echo junk > %s/broken/adapter_model.safetensors && cp tests/ref/lora_peft/* %s/mismatch/",
             adapters_dir, adapters_dir, adapters_dir, adapters_dir, adapters_dir, adapters_dir);
    if (system(cmd)) return br_error(BR_EIO, "cannot write the adapters");
    const char *tenants =
        "{\"tenants\": [\n"
        " {\"name\": \"acme\", \"keys\": [\"sk-acme-test-1\"], \"adapters\": [\"a1\"]},\n"
        " {\"name\": \"beta\", \"keys\": [\"sk-beta-test-1\"], \"adapters\": [\"a2\"], \"weight\": 2},\n"
        " {\"name\": \"slow\", \"keys\": [\"sk-slow-test-1\"], \"rps\": 0.5},\n"
        " {\"name\": \"ops\", \"keys\": [\"sk-ops-test-01\"], \"admin\": true}]}\n";
    return br_write_file_atomic(tenants_path, tenants, strlen(tenants));
}

/* ---- HTTP client ---- */

typedef struct {
    long status;
    char *body;
    size_t len;
    char retry_after[32];
} resp_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    char *nb = realloc(r->body, r->len + sz * n + 1);
    if (!nb) return 0;
    r->body = nb;
    memcpy(r->body + r->len, p, sz * n);
    r->len += sz * n;
    r->body[r->len] = 0;
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    if (!strncasecmp(p, "Retry-After:", 12)) snprintf(r->retry_after, sizeof r->retry_after, "%.*s", (int)(sz * n - 12), p + 12);
    return sz * n;
}

static resp_t http_at(int at_port, const char *method, const char *path, const char *key, const char *body, size_t blen)
{
    resp_t r = {0};
    CURL *c = curl_easy_init();
    char url[256], auth[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", at_port, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r.body) r.body = calloc(1, 1);
    return r;
}

static __attribute__((unused)) resp_t http(const char *method, const char *path, const char *key, const char *body)
{
    return http_at(port, method, path, key, body, body ? strlen(body) : 0);
}

/* The error object's code (or type) when the response is an OpenAI error. */
static __attribute__((unused)) bool is_error(const resp_t *r, long status, const char *code)
{
    json_t *j = json_loads(r->body, JSON_ALLOW_NUL, NULL);
    json_t *e = json_object_get(j, "error");
    bool ok = r->status == status && json_is_string(json_object_get(e, "message")) &&
              json_is_string(json_object_get(e, "type")) &&
              (!code || (json_is_string(json_object_get(e, "code")) && !strcmp(json_string_value(json_object_get(e, "code")), code)));
    json_decref(j);
    return ok;
}

/* A fresh folder /tmp/<prefix>XXXXXX with the model, adapters and tenants file; curl ready. */
static __attribute__((unused)) br_status fixture_setup(const char *prefix)
{
    snprintf(tmp, sizeof tmp, "/tmp/%sXXXXXX", prefix);
    if (!mkdtemp(tmp)) return br_error(BR_EIO, "mkdtemp %s failed", tmp);
    snprintf(model_dir, sizeof model_dir, "%s/model", tmp);
    snprintf(adapters_dir, sizeof adapters_dir, "%s/adapters", tmp);
    snprintf(tenants_path, sizeof tenants_path, "%s/tenants.json", tmp);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return make_model();
}

static __attribute__((unused)) void fixture_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (tmp[0] && system(cmd)) fprintf(stderr, "cannot remove %s\n", tmp);
    curl_global_cleanup();
}

#endif
