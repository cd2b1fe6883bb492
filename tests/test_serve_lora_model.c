/* Batched LoRA inside the real model: one br_model_forward_batch over sequences with different
 * adapters (mixed ranks, different targets) and none, against the merged model (W + scale B A)
 * run alone; and the LoRA gradient through the whole model (train step with a frozen base)
 * against finite differences of the loss. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "harness.h"
#include "lm/model.h"
#include "nn/lora.h"
#include "serve/adapters.h"

static br_model_config_t tiny_config(void)
{
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 64;
    c.hidden_size = 32;
    c.intermediate_size = 48;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 64;
    return c;
}

/* Logits of every position of `toks` run alone through the model (one seq, fresh pages). */
static br_status run_alone(br_model_t *m, br_kv_pool_t *kv, const int32_t *toks, size_t n, const br_lora_adapter_t *a,
                           float *logits)
{
    int32_t pages[8];
    size_t np = (n + 15) / 16;
    for (size_t i = 0; i < np; i++) BR_TRY(br_kv_pool_alloc_page(kv, &pages[i]));
    br_seq_t q = {toks, n, 0, pages, np, BR_LOGITS_ALL};
    br_lora_batch_t *b = NULL;
    BR_TRY(br_lora_batch_create(&b));
    const br_lora_adapter_t *rows[64];
    for (size_t i = 0; i < n; i++) rows[i] = a;
    br_status st = br_lora_batch_set(b, rows, n);
    br_lora_hook_t h = br_lora_batch_hook(b);
    if (st == BR_OK) st = br_model_forward_batch(m, kv, &q, 1, a ? &h : NULL, logits);
    br_lora_batch_free(b);
    for (size_t i = 0; i < np; i++) br_kv_pool_free_page(kv, pages[i]);
    return st;
}

static void test_batched_equals_merged(void)
{
    br_model_config_t cfg = tiny_config();
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &cfg, false));
    if (!m) return;
    br_model_init_random(m, 11);
    br_lora_shapes_t shapes = br_lora_shapes_from_config(&m->cfg);
    CHECK_INT(shapes.out[BR_PROJ_K], 16);
    br_lora_adapter_t *ad[2] = {0};
    br_rng_t rng;
    br_rng_seed(&rng, 5);
    CHECK_OK(br_lora_create(&ad[0], &shapes, 4, 8, (1u << BR_PROJ_Q) | (1u << BR_PROJ_V) | (1u << BR_PROJ_DOWN), false, 1));
    CHECK_OK(br_lora_create(&ad[1], &shapes, 2, 3, (1u << BR_PROJ_COUNT) - 1, true, 2));
    if (!ad[0] || !ad[1]) return;
    for (int i = 0; i < 2; i++) br_rng_fill_normal(&rng, ad[i]->params, ad[i]->n_params, 0.1f);
    br_kv_pool_t *kv = NULL;
    CHECK_OK(br_kv_pool_create(&kv, &m->cfg, 16, 1 << 22));
    if (!kv) return;

    /* three sequences: adapter 0 (prefill 7 tokens), none (5), adapter 1 (9); then one decode
     * step of each, all in one batch, against each run alone on its merged model */
    enum { NS = 3 };
    size_t lens[NS] = {7, 5, 9};
    const br_lora_adapter_t *which[NS] = {ad[0], NULL, ad[1]};
    int32_t toks[NS][10];
    for (int s = 0; s < NS; s++)
        for (size_t i = 0; i < lens[s] + 1; i++) toks[s][i] = (int32_t)br_rng_below(&rng, 64);
    int32_t pages[NS][2];
    br_seq_t seqs[NS];
    const br_lora_adapter_t *rows[32];
    size_t N = 0;
    for (int s = 0; s < NS; s++) {
        CHECK_OK(br_kv_pool_alloc_page(kv, &pages[s][0]));
        seqs[s] = (br_seq_t){toks[s], lens[s], 0, pages[s], 1, BR_LOGITS_ALL};
        for (size_t i = 0; i < lens[s]; i++) rows[N++] = which[s];
    }
    br_lora_batch_t *b = NULL;
    CHECK_OK(br_lora_batch_create(&b));
    CHECK_OK(br_lora_batch_set(b, rows, N));
    br_lora_hook_t h = br_lora_batch_hook(b);
    float *lb = malloc(32 * 64 * sizeof(float)), *la = malloc(32 * 64 * sizeof(float));
    CHECK_OK(br_model_forward_batch(m, kv, seqs, NS, &h, lb));
    /* decode step: one row per sequence, each with its own adapter (BGMV rows) */
    float dec[NS * 64];
    for (int s = 0; s < NS; s++) {
        seqs[s] = (br_seq_t){&toks[s][lens[s]], 1, lens[s], pages[s], 1, BR_LOGITS_LAST};
        rows[s] = which[s];
    }
    CHECK_OK(br_lora_batch_set(b, rows, NS));
    CHECK_OK(br_model_forward_batch(m, kv, seqs, NS, &h, dec));

    size_t off = 0;
    for (int s = 0; s < NS; s++) {
        if (which[s]) br_lora_merge_into_model(m, which[s], 1.0f);
        CHECK_OK(run_alone(m, kv, toks[s], lens[s] + 1, NULL, la));
        double err = 0, mag = 0;
        for (size_t i = 0; i < lens[s] * 64; i++) {
            err = fmax(err, fabs(lb[off * 64 + i] - la[i]));
            mag = fmax(mag, fabs(la[i]));
        }
        for (size_t v = 0; v < 64; v++) err = fmax(err, fabs(dec[s * 64 + v] - la[lens[s] * 64 + v]));
        CHECK_MSG(err < 2e-4 * fmax(1, mag), "seq %d: batched LoRA vs merged model: max err %g (|logit| %g)", s, err, mag);
        if (which[s]) {
            /* the adapter changes the output (so the comparison above is not vacuous) */
            br_lora_merge_into_model(m, which[s], -1.0f);
            CHECK_OK(run_alone(m, kv, toks[s], lens[s], NULL, la));
            double diff = 0;
            for (size_t i = 0; i < lens[s] * 64; i++) diff = fmax(diff, fabs(lb[off * 64 + i] - la[i]));
            CHECK_MSG(diff > 1e-3, "seq %d: adapter made no difference (%g)", s, diff);
        }
        off += lens[s];
    }
    free(lb);
    free(la);
    br_lora_batch_free(b);
    br_kv_pool_free(kv);
    br_lora_free(ad[0]);
    br_lora_free(ad[1]);
    br_model_free(m);
}

/* d loss / d (A, B) from the train step with a frozen base vs central differences. */
static void test_train_gradient(void)
{
    br_model_config_t cfg = tiny_config();
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &cfg, false));
    if (!m) return;
    br_model_init_random(m, 3);
    br_lora_shapes_t shapes = br_lora_shapes_from_config(&m->cfg);
    br_lora_adapter_t *a = NULL;
    CHECK_OK(br_lora_create(&a, &shapes, 3, 6, (1u << BR_PROJ_Q) | (1u << BR_PROJ_V) | (1u << BR_PROJ_UP) | (1u << BR_PROJ_O),
                            false, 9));
    if (!a) return;
    br_rng_t rng;
    br_rng_seed(&rng, 8);
    br_rng_fill_normal(&rng, a->params, a->n_params, 0.2f);
    CHECK_OK(br_lora_alloc_grads(a));
    enum { B = 2, T = 6 };
    int32_t in[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) {
        in[i] = (int32_t)br_rng_below(&rng, 64);
        tg[i] = (int32_t)br_rng_below(&rng, 64);
    }
    br_lora_batch_t *lb = NULL;
    CHECK_OK(br_lora_batch_create(&lb));
    const br_lora_adapter_t *rows[B * T];
    for (int i = 0; i < B * T; i++) rows[i] = a;
    CHECK_OK(br_lora_batch_set(lb, rows, B * T));
    br_lora_hook_t h = br_lora_batch_hook(lb);
    br_train_opts_t to = {.lora = &h, .train_base = false, .loss_scale = 1};
    float loss = 0;
    CHECK_OK(br_model_train_step(m, in, tg, B, T, &to, &loss));
    CHECK(isfinite(loss) && loss > 0);
    double worst = 0, gmax = 0;
    float losses[B * T];
    const double eps = 1e-2;
    for (size_t i = 0; i < a->n_params; i += 37) {
        float keep = a->params[i];
        float lp, lm;
        a->params[i] = keep + (float)eps;
        CHECK_OK(br_model_forward_loss(m, in, tg, B, T, &h, losses, &lp));
        a->params[i] = keep - (float)eps;
        CHECK_OK(br_model_forward_loss(m, in, tg, B, T, &h, losses, &lm));
        a->params[i] = keep;
        double fd = ((double)lp - lm) / (2 * eps);
        worst = fmax(worst, fabs(fd - a->grads[i]) / fmax(0.05, fabs(fd)));
        gmax = fmax(gmax, fabs(a->grads[i]));
    }
    CHECK_MSG(worst < 3e-2, "LoRA gradient through the model vs finite differences: worst rel err %g", worst);
    CHECK(gmax > 1e-4);
    br_lora_batch_free(lb);
    br_lora_free(a);
    br_model_free(m);
}

int main(void)
{
    test_batched_equals_merged();
    test_train_gradient();
    return th_exit();
}
