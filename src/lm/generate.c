/* Sampling (temperature, top-k, top-p) and the KV-cached generation loop. */
#include "lm/generate.h"

#include <math.h>
#include "lm/model_internal.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    float p;
    int32_t id;
} cand_t;

static int by_prob_desc(const void *a, const void *b)
{
    const cand_t *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int32_t br_sample(float *logits, size_t V, const br_sampler_t *s, br_rng_t *rng)
{
    size_t best = 0;
    for (size_t i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (s->temperature <= 0) return (int32_t)best;
    float mx = logits[best], inv_t = 1.0f / s->temperature;
    double sum = 0;
    for (size_t i = 0; i < V; i++) {
        logits[i] = expf((logits[i] - mx) * inv_t);
        sum += logits[i];
    }
    size_t k = s->top_k > 0 && (size_t)s->top_k < V ? (size_t)s->top_k : V;
    bool nucleus = s->top_p > 0 && s->top_p < 1;
    if (k == V && !nucleus) {
        double u = br_rng_double(rng) * sum, acc = 0;
        for (size_t i = 0; i < V; i++) {
            acc += logits[i];
            if (u < acc) return (int32_t)i;
        }
        return (int32_t)best;
    }
    cand_t *c = malloc(V * sizeof *c);
    if (!c) return (int32_t)best;
    for (size_t i = 0; i < V; i++) c[i] = (cand_t){logits[i], (int32_t)i};
    qsort(c, V, sizeof *c, by_prob_desc);
    double keep = 0;
    size_t n = 0;
    while (n < k) {
        keep += c[n].p;
        n++;
        if (nucleus && keep >= s->top_p * sum) break;
    }
    double u = br_rng_double(rng) * keep, acc = 0;
    int32_t pick = c[n - 1].id;
    for (size_t i = 0; i < n; i++) {
        acc += c[i].p;
        if (u < acc) {
            pick = c[i].id;
            break;
        }
    }
    free(c);
    return pick;
}

br_status br_generate(br_model_t *m, const int32_t *prompt, size_t n_prompt, size_t max_new,
                      const br_sampler_t *s, uint64_t seed, int32_t stop_id, br_token_cb cb,
                      void *cb_ctx, int32_t **out, size_t *n_out)
{
    return br_generate_stops(m, prompt, n_prompt, max_new, s, seed, &stop_id, stop_id >= 0, cb, cb_ctx, out, n_out);
}

static bool is_stop(int32_t tok, const int32_t *stops, size_t n_stops)
{
    for (size_t i = 0; i < n_stops; i++)
        if (stops[i] == tok) return true;
    return false;
}

br_status br_generate_stops(br_model_t *m, const int32_t *prompt, size_t n_prompt, size_t max_new,
                            const br_sampler_t *s, uint64_t seed, const int32_t *stops, size_t n_stops,
                            br_token_cb cb, void *cb_ctx, int32_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    size_t ctx = (size_t)m->cfg.max_position_embeddings, V = (size_t)m->cfg.vocab_size;
    if (n_prompt == 0) return br_error(BR_EINVAL, "empty prompt");
    if (n_prompt > ctx)
        return br_error(BR_ERANGE, "prompt of %zu tokens is longer than the context (%zu)", n_prompt, ctx);
    BR_TRY(br_model_check_tokens(m, prompt, n_prompt));
    size_t total = n_prompt + max_new > ctx ? ctx : n_prompt + max_new;
    const size_t P = 64;
    size_t npages = (total + P - 1) / P;
    br_kv_pool_t *kv;
    /* KV heads from the model's dims: a mixture of attention caches every expert's heads */
    size_t esz = m->kv_type == BR_KV_F16 ? 2 : sizeof(float);
    BR_TRY(br_kv_pool_create_typed(&kv, &m->cfg, P, npages * 2 * (size_t)m->cfg.num_hidden_layers *
                                                        br_model_dims(m).NKV * P * (size_t)m->cfg.head_dim * esz,
                                   m->kv_type));
    int32_t *pages = malloc(npages * sizeof *pages), *gen = malloc((max_new + 1) * sizeof *gen);
    float *logits = malloc(V * sizeof *logits);
    br_status st = BR_OK;
    if (!pages || !gen || !logits) st = br_error(BR_ENOMEM, "out of memory");
    for (size_t i = 0; i < npages && !st; i++) st = br_kv_pool_alloc_page(kv, &pages[i]);
    br_rng_t rng;
    br_rng_seed(&rng, seed);
    size_t ng = 0;
    if (!st) {
        br_seq_t sq = {prompt, n_prompt, 0, pages, npages, BR_LOGITS_LAST};
        st = br_model_forward_batch(m, kv, &sq, 1, NULL, logits);
    }
    size_t pos = n_prompt;
    while (!st && ng < max_new) {
        int32_t tok = br_sample(logits, V, s, &rng);
        if (is_stop(tok, stops, n_stops)) break;
        gen[ng++] = tok;
        if (cb && !cb(cb_ctx, tok)) break;
        if (ng == max_new || pos >= total) break; /* done, or the context is full */
        br_seq_t sq = {&gen[ng - 1], 1, pos, pages, npages, BR_LOGITS_LAST};
        st = br_model_forward_batch(m, kv, &sq, 1, NULL, logits);
        pos++;
    }
    br_kv_pool_free(kv);
    free(pages);
    free(logits);
    if (st) {
        free(gen);
        return st;
    }
    *out = gen;
    *n_out = ng;
    return BR_OK;
}
