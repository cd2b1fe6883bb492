/* Helpers shared by the model tests (test_lm_model.c, test_lm_moe.c). */
#ifndef BR_TEST_MODEL_FIXTURE_H
#define BR_TEST_MODEL_FIXTURE_H
#include <math.h>
#include <stdlib.h>

#include "base/rng.h"
#include "harness.h"
#include "lm/model.h"

/* n token ids below V from a seeded stream */
static inline void fill_tokens(int32_t *t, size_t n, int V, uint64_t seed)
{
    br_rng_t r;
    br_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) t[i] = (int32_t)br_rng_below(&r, (uint64_t)V);
}

/* Max |difference| between the logits of T random tokens computed in one full forward and
 * through the paged KV cache (a prompt of `prefix` tokens, then one token at a time);
 * npages pages of 4 positions (<= 8). */
static inline double cached_vs_full(br_model_t *m, const br_model_config_t *c, size_t T, size_t prefix, int npages)
{
    int32_t *toks = malloc(T * sizeof *toks);
    size_t V = (size_t)c->vocab_size;
    float *full = malloc(T * V * sizeof(float)), *inc = malloc(T * V * sizeof(float));
    double worst = INFINITY;
    br_kv_pool_t *kv = NULL;
    int32_t pages[8];
    if (!toks || !full || !inc || npages > 8) goto done;
    fill_tokens(toks, T, c->vocab_size, 9);
    CHECK_OK(br_model_forward_logits(m, toks, 1, T, NULL, full));
    CHECK_OK(br_kv_pool_create(&kv, c, 4, 1 << 20));
    if (!kv) goto done;
    for (int i = 0; i < npages; i++) CHECK_OK(br_kv_pool_alloc_page(kv, &pages[i]));
    br_seq_t s = {toks, prefix, 0, pages, npages, BR_LOGITS_ALL};
    CHECK_OK(br_model_forward_batch(m, kv, &s, 1, NULL, inc));
    for (size_t t = prefix; t < T; t++) {
        br_seq_t d = {toks + t, 1, t, pages, npages, BR_LOGITS_LAST};
        CHECK_OK(br_model_forward_batch(m, kv, &d, 1, NULL, inc + t * V));
    }
    worst = 0;
    for (size_t i = 0; i < T * V; i++) worst = fmax(worst, fabs(full[i] - inc[i]));
done:
    if (kv) br_kv_pool_free(kv);
    free(toks);
    free(full);
    free(inc);
    return worst;
}
#endif
