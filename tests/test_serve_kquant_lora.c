/* LoRA on a Q4_K GGUF base, end to end (issue 14):
 *   - `braid serve` (the server, over HTTP): a Q4_K GGUF base with a PEFT adapter serves the
 *     same greedy completion as the same adapter on the F32 GGUF of the Q4_K file's exact values
 *     (br_model_load_gguf), and so does the base without the adapter; the adapter changes the
 *     completion (so the comparison is not vacuous).  The two bases compute the same function
 *     but for the k-quant kernels' 8-bit activation rounding (1-1.5% of the logits' size,
 *     tests/test_serve_qlora.c); the model's embedding and head are scaled up so greedy margins
 *     are far above that, and equal ids over 24 tokens are the tolerance this checks.
 *   - `braid lora-train --base FILE.gguf` on the Q4_K file (QLoRA: the base stays Q4_K, the
 *     adapter trains in F32 through matmul_dinp): the loss falls and the adapter it writes
 *     loads on that base. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lm/gguf.h"
#include "serve/fixture.h"
#include "serve/server.h"
#include "shard_fixture.h"
#include "shell_fixture.h"

static br_model_config_t config(void)
{
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 352; /* tests/ref/serve_tokenizer.json */
    c.hidden_size = 256, c.intermediate_size = 512, c.num_hidden_layers = 2;
    c.num_attention_heads = 4, c.num_key_value_heads = 2, c.max_position_embeddings = 256;
    c.initializer_range = 0.02f;
    return c;
}

/* The Q4_K GGUF (q4k) of a random model with large greedy margins (embedding and head at 50x
 * the init, as tests/test_lm_gguf.c's oracle model) and the F32 GGUF of its exact values. */
static void write_bases(const char *q4k, const char *f32)
{
    br_model_config_t c = config();
    br_model_t *m = NULL, *d = NULL;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return;
    br_model_init_random(m, 31);
    const char *big[] = {"model.embed_tokens.weight", "lm_head.weight"};
    for (int b = 0; b < 2; b++) {
        int ti = br_model_find_tensor(m, big[b]);
        for (size_t j = 0; j < m->tensors[ti].numel; j++) m->params[m->tensors[ti].offset + j] *= 50;
    }
    CHECK_OK(br_model_save_gguf(m, q4k, BR_WT_Q4_K));
    CHECK_OK(br_model_load_gguf(&d, q4k));
    if (d) CHECK_OK(br_model_save_gguf(d, f32, BR_WT_F32));
    br_model_free(m), br_model_free(d);
}

/* The adapter "ad" (rank 8 on every projection) in adapters_dir. */
static void write_adapter(void)
{
    br_model_config_t c = config();
    br_lora_shapes_t shapes = br_lora_shapes_from_config(&c);
    br_lora_adapter_t *a = NULL;
    CHECK_OK(br_lora_create(&a, &shapes, 8, 16, (1u << BR_PROJ_COUNT) - 1, false, 4));
    if (!a) return;
    br_rng_t rng;
    br_rng_seed(&rng, 9);
    br_rng_fill_normal(&rng, a->params, a->n_params, 0.3f);
    char dir[256];
    snprintf(dir, sizeof dir, "%s/ad", adapters_dir);
    CHECK_OK(br_lora_save(a, dir));
    br_lora_free(a);
}

/* The greedy completion text of `model` (an adapter name or "model") from the server on base. */
static char *complete(const char *base, const char *model)
{
    br_server_opts_t o = {.model_dir = base, .adapters_dir = adapters_dir, .tokenizer = "tests/ref/serve_tokenizer.json",
                          .model_name = "model", .port = 0};
    br_server_t *s = NULL;
    CHECK_OK(br_server_start(&s, &o));
    if (!s) return NULL;
    char body[256];
    snprintf(body, sizeof body, "{\"model\": \"%s\", \"prompt\": \"The License\", \"max_tokens\": 24, \"temperature\": 0}",
             model);
    resp_t r = http_at(br_server_port(s), "POST", "/v1/completions", NULL, body, strlen(body));
    CHECK_MSG(r.status == 200, "%s on %s: HTTP %ld %s", model, base, r.status, r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    const char *t = json_string_value(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "text"));
    char *text = t ? strdup(t) : NULL;
    json_decref(j);
    free(r.body);
    br_server_free(s);
    return text;
}

static void test_serve(const char *q4k, const char *f32)
{
    char *a_q = complete(q4k, "ad"), *a_f = complete(f32, "ad"), *b_q = complete(q4k, "model"),
         *b_f = complete(f32, "model");
    printf("greedy completions (24 tokens, bytes): adapter on Q4_K %zu, on F32 %zu; base Q4_K %zu, F32 %zu\n",
           a_q ? strlen(a_q) : 0, a_f ? strlen(a_f) : 0, b_q ? strlen(b_q) : 0, b_f ? strlen(b_f) : 0);
    CHECK_MSG(a_q && a_f && !strcmp(a_q, a_f), "LoRA on the Q4_K base serves another completion than on its F32 values");
    CHECK_MSG(b_q && b_f && !strcmp(b_q, b_f), "the Q4_K base serves another completion than its F32 values");
    CHECK_MSG(a_q && b_q && strcmp(a_q, b_q), "the adapter does not change the completion (the check is vacuous)");
    free(a_q), free(a_f), free(b_q), free(b_f);
}

/* A number after `key` in the file at path (the last occurrence), or NAN. */
static double last_number(const char *path, const char *key)
{
    char *text = NULL;
    size_t len = 0;
    if (br_read_file(path, &text, &len)) return NAN;
    double v = NAN;
    for (const char *p = strstr(text, key); p; p = strstr(p + 1, key)) v = strtod(p + strlen(key), NULL);
    free(text);
    return v;
}

static void test_lora_train(const char *q4k)
{
    const char *braid = getenv("BRAID");
    if (!braid) {
        SKIP("BRAID not set (run through make test): lora-train on a Q4_K GGUF not run");
        return;
    }
    if (!write_license_domain(tmp, "gpl", "GPL-3")) {
        SKIP("no /usr/share/common-licenses/GPL-3: lora-train on a Q4_K GGUF not run");
        return;
    }
    char out[200], log[200];
    snprintf(out, sizeof out, "%s/trained", tmp);
    snprintf(log, sizeof log, "%s/train.log", tmp);
    int rc = sh("%s lora-train --base %s --data %s/tok --mix gpl=1 --rank 4 --steps 12 --lr 3e-3 --batch 2 --seq 32 "
                "--val-batches 1 --out %s >%s 2>&1",
                braid, q4k, tmp, out, log);
    CHECK_MSG(rc == 0, "lora-train on a Q4_K GGUF base exited %d (log: %s)", rc, log);
    br_model_t *m = NULL;
    CHECK_OK(br_model_open_gguf(&m, q4k));
    if (m) {
        CHECK(!m->params && m->wt == BR_WT_Q4_K);
        br_lora_shapes_t s = br_lora_shapes_from_config(&m->cfg);
        br_lora_adapter_t *a = NULL;
        CHECK_OK(br_lora_load(&a, out, &s));
        br_lora_free(a);
    }
    br_model_free(m);
    double before = last_number(log, "(before training "), after = last_number(log, "base + adapter ");
    printf("lora-train on the Q4_K base: validation loss %.4f before, %.4f with the adapter\n", before, after);
    CHECK_MSG(isfinite(before) && isfinite(after) && after < before - 0.5,
              "lora-train on a Q4_K base did not lower the validation loss (%g -> %g)", before, after);
}

int main(void)
{
    CHECK_OK(fixture_setup("braid_kq_lora_"));
    char q4k[200], f32[200];
    snprintf(q4k, sizeof q4k, "%s/base-q4_k.gguf", tmp);
    snprintf(f32, sizeof f32, "%s/base-f32.gguf", tmp);
    write_bases(q4k, f32);
    write_adapter();
    test_serve(q4k, f32);
    test_lora_train(q4k);
    if (getenv("BRAID_TEST_KEEP")) printf("kept %s\n", tmp);
    else fixture_teardown();
    return th_exit();
}
