/* The KV cache stored as F16 (br_kv_pool_create_typed, --kv-type f16) against the F32 cache:
 * the same prompt + decode logits within a tolerance the rounding explains, the same greedy
 * ids on the fixture models (where their margins exceed twice the logit difference, checked),
 * twice the pages for the same budget, refusals, and `braid generate --kv-type` end to end.
 *
 * Tolerance: F16 stores K and V with a relative rounding of at most 2^-11 (4.9e-4).  An
 * attention output is a convex combination of V rows, so V's rounding moves it by <= 2^-11
 * max|V|; K's rounding moves each score by <= 2^-11 |q||k| / sqrt(hd), which on these models'
 * O(1) scores perturbs the probabilities by ~1e-3 relative.  Through the residual stream and
 * the head, logits then move by ~1e-3 relative: measured 6e-6..5.3e-4 on these fixtures; the
 * bound 5e-3 leaves room and still fails for a wrong layout or an unconverted half (O(1)). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lm/generate.h"
#include "lm/model.h"
#include "shell_fixture.h"

enum { PROMPT = 21, DECODE = 12, NEW = 16 };
#define RTOL 5e-3

/* Logits (PROMPT + DECODE rows, V) of a prefill of PROMPT tokens (every row's logits) then
 * DECODE single-token steps, through a pool of `type` with pages of 8 positions. */
static float *run_cached(br_model_t *m, const int32_t *toks, br_kv_type type)
{
    size_t V = (size_t)m->cfg.vocab_size, T = PROMPT + DECODE;
    float *lg = malloc(T * V * sizeof *lg);
    br_kv_pool_t *kv = NULL;
    CHECK_OK(br_kv_pool_create_typed(&kv, &m->cfg, 8, 1 << 22, type));
    if (!kv || !lg) {
        free(lg);
        return NULL;
    }
    CHECK(br_kv_pool_type(kv) == type);
    int32_t pages[(PROMPT + DECODE + 7) / 8];
    size_t np = sizeof pages / sizeof *pages;
    for (size_t i = 0; i < np; i++) CHECK_OK(br_kv_pool_alloc_page(kv, &pages[i]));
    br_seq_t s = {toks, PROMPT, 0, pages, np, BR_LOGITS_ALL};
    CHECK_OK(br_model_forward_batch(m, kv, &s, 1, NULL, lg));
    for (size_t t = PROMPT; t < T; t++) {
        br_seq_t d = {toks + t, 1, t, pages, np, BR_LOGITS_LAST};
        CHECK_OK(br_model_forward_batch(m, kv, &d, 1, NULL, lg + t * V));
    }
    br_kv_pool_free(kv);
    return lg;
}

static double margin(const float *row, size_t V)
{
    double a = -INFINITY, b = -INFINITY;
    for (size_t v = 0; v < V; v++) {
        if (row[v] > a) b = a, a = row[v];
        else if (row[v] > b) b = row[v];
    }
    return a - b;
}

static void check_model(br_model_t *m, const char *name)
{
    size_t V = (size_t)m->cfg.vocab_size, T = PROMPT + DECODE;
    int32_t toks[PROMPT + DECODE];
    for (size_t i = 0; i < T; i++) toks[i] = (int32_t)((i * 37 + 11) % V);
    float *a = run_cached(m, toks, BR_KV_F32), *b = run_cached(m, toks, BR_KV_F16);
    if (!a || !b) {
        free(a), free(b);
        return;
    }
    double e = 0, scale = 0;
    for (size_t i = 0; i < T * V; i++) e = fmax(e, fabs((double)a[i] - b[i])), scale = fmax(scale, fabs(a[i]));
    printf("%-10s f16 KV logits: max |diff| %.3g of max |logit| %.3g (rel %.3g, allowed %.1g)\n", name, e,
           scale, e / scale, RTOL);
    CHECK_MSG(e <= RTOL * scale && e > 0, "%s: F16 KV logits rel diff %.3g (want 0 < diff <= %.1g)", name,
              e / scale, RTOL);

    /* greedy ids: equal, on a path whose F32 margins exceed twice the difference */
    br_sampler_t g = {.temperature = 0, .top_k = 0, .top_p = 1};
    int32_t *i32 = NULL, *i16 = NULL;
    size_t n32 = 0, n16 = 0;
    m->kv_type = BR_KV_F32;
    CHECK_OK(br_generate(m, toks, 5, NEW, &g, 1, -1, NULL, NULL, &i32, &n32));
    m->kv_type = BR_KV_F16;
    CHECK_OK(br_generate(m, toks, 5, NEW, &g, 1, -1, NULL, NULL, &i16, &n16));
    m->kv_type = BR_KV_F32;
    CHECK_MSG(n32 == NEW && n16 == NEW, "%s: generated %zu and %zu tokens", name, n32, n16);
    if (n32 == NEW && n16 == NEW) {
        int32_t seq[5 + NEW];
        memcpy(seq, toks, 5 * sizeof *seq);
        memcpy(seq + 5, i32, NEW * sizeof *seq);
        float *lg = malloc((5 + NEW) * V * sizeof *lg);
        CHECK_OK(br_model_forward_logits(m, seq, 1, 5 + NEW, NULL, lg));
        double mm = INFINITY;
        for (size_t t = 4; t < 4 + NEW; t++) mm = fmin(mm, margin(lg + t * V, V));
        printf("%-10s greedy: min F32 margin %.3g\n", name, mm);
        CHECK_MSG(mm > 2 * e, "%s: fixture margins (%.3g) too small for the difference %.3g", name, mm, e);
        CHECK_MSG(!memcmp(i32, i16, NEW * sizeof *i32), "%s: greedy ids with an F16 KV cache differ", name);
        free(lg);
    }
    free(i32), free(i16), free(a), free(b);
}

int main(void)
{
    /* a random model with large margins (as tests/test_lm_quant.c) and the reference folders */
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 101, c.hidden_size = 64, c.intermediate_size = 96, c.num_hidden_layers = 2;
    c.num_attention_heads = 4, c.num_key_value_heads = 2, c.max_position_embeddings = 64;
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &c, false));
    if (m) {
        br_model_init_random(m, 5);
        /* embedding and head 50x the init (large greedy margins, as in test_lm_quant.c), q and k
         * 8x (scores of O(1), so the attention is far from uniform and K's rounding matters) */
        static const char *const big[] = {"model.embed_tokens.weight", "lm_head.weight",
                                          "model.layers.0.self_attn.q_proj.weight",
                                          "model.layers.0.self_attn.k_proj.weight",
                                          "model.layers.1.self_attn.q_proj.weight",
                                          "model.layers.1.self_attn.k_proj.weight"};
        for (size_t b = 0; b < sizeof big / sizeof *big; b++) {
            int ti = br_model_find_tensor(m, big[b]);
            CHECK(ti >= 0);
            for (size_t j = 0; ti >= 0 && j < m->tensors[ti].numel; j++)
                m->params[m->tensors[ti].offset + j] *= b < 2 ? 50 : 8;
        }
        check_model(m, "random");

        br_kv_pool_t *p32 = NULL, *p16 = NULL;
        CHECK_OK(br_kv_pool_create_typed(&p32, &c, 16, 1 << 20, BR_KV_F32));
        CHECK_OK(br_kv_pool_create_typed(&p16, &c, 16, 1 << 20, BR_KV_F16));
        if (p32 && p16) {
            CHECK(br_kv_pool_page_bytes(p16) * 2 == br_kv_pool_page_bytes(p32));
            CHECK(br_kv_pool_pages_total(p16) == 2 * br_kv_pool_pages_total(p32));
        }
        br_kv_pool_free(p32), br_kv_pool_free(p16);
        br_kv_pool_t *bad = (br_kv_pool_t *)&c;
        CHECK_STATUS(br_kv_pool_create_typed(&bad, &c, 16, 1 << 20, (br_kv_type)7), BR_EINVAL);
        CHECK(bad == NULL);
        br_model_free(m);
    }
    br_kv_type t = BR_KV_F16;
    CHECK_OK(br_kv_type_parse("f32", &t));
    CHECK(t == BR_KV_F32 && !strcmp(br_kv_type_name(t), "f32"));
    CHECK_OK(br_kv_type_parse("f16", &t));
    CHECK(t == BR_KV_F16 && !strcmp(br_kv_type_name(t), "f16"));
    CHECK_STATUS(br_kv_type_parse("q8_0", &t), BR_EINVAL);
    CHECK_MSG(strstr(br_errmsg(), "f32, f16"), "message names the choices: %s", br_errmsg());

    static const char *const dirs[] = {"tests/ref/llama_tiny", "tests/ref/hf_llama", "tests/ref/hf_qwen3"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        br_model_t *f = NULL;
        CHECK_OK(br_model_open(&f, dirs[i]));
        if (f) check_model(f, dirs[i] + 10);
        br_model_free(f);
    }

    const char *braid = getenv("BRAID");
    if (!braid) {
        SKIP("BRAID not set (run through make test): the --kv-type command-line checks did not run");
        return th_exit();
    }
    char tmp[] = "/tmp/braid_kv_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    const char *gen = "generate --model tests/ref/llama_tiny --prompt-ids '3 14 15 9 26 53 58' -n 12 --temperature 0 --ids";
    CHECK(sh("%s %s > %s/f32.txt", braid, gen, tmp) == 0);
    CHECK(sh("%s %s --kv-type f16 > %s/f16.txt", braid, gen, tmp) == 0);
    CHECK(sh("%s %s --kv-type f32 > %s/f32b.txt", braid, gen, tmp) == 0);
    CHECK(sh("cmp -s %s/f32.txt %s/f16.txt && cmp -s %s/f32.txt %s/f32b.txt && test -s %s/f32.txt", tmp, tmp,
             tmp, tmp, tmp) == 0);
    CHECK(sh("%s %s --kv-type q4 2> %s/err.txt", braid, gen, tmp) == 2);
    CHECK(sh("grep -q 'f32, f16' %s/err.txt", tmp) == 0);
    CHECK(sh("%s serve --model tests/ref/llama_tiny --kv-type bf16 2> %s/err.txt", braid, tmp) == 2);
    CHECK(sh("grep -q 'kv-type' %s/err.txt", tmp) == 0);
    sh("rm -rf %s", tmp);
    return th_exit();
}
