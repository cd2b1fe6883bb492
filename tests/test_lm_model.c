/* The dense model beyond the PyTorch dump: finite differences through a whole tiny model,
 * KV-cached decoding == full recompute, batched rows of different sequences at different
 * positions == separate runs, checkpoint and optimizer round trips, the LoRA hook seam, and
 * clear errors on bad input. */
#include <stdlib.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fileio.h"
#include "base/rng.h"
#include "base/safetensors.h"
#include "harness.h"
#include "base/threads.h"
#include "lm/generate.h"
#include "lm/model.h"
#include "model_fixture.h"

static br_model_config_t tiny(br_block_kind block, bool tied)
{
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 37;
    c.hidden_size = 24;
    c.intermediate_size = 30;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 6;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 40;
    c.rms_norm_eps = 1e-5f;
    c.initializer_range = 0.3f;
    c.tie_word_embeddings = tied;
    c.block = block;
    return c;
}

/* Central differences of the mean loss against the analytic gradient, on a sample of entries
 * of every tensor.  Float32 forward: h = 1e-2 keeps rounding noise ~1e-5. */
static void finite_difference(br_block_kind block, bool tied)
{
    br_model_config_t c = tiny(block, tied);
    br_model_t *m;
    CHECK_OK(br_model_create(&m, &c, true));
    br_model_init_random(m, 7);
    /* norms away from 1 so their gradients matter */
    br_rng_t r;
    br_rng_seed(&r, 3);
    for (size_t i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].is_norm)
            for (size_t j = 0; j < m->tensors[i].numel; j++)
                m->params[m->tensors[i].offset + j] += 0.3f * (br_rng_float(&r) - 0.5f);
    enum { B = 2, T = 6 };
    int32_t in[B * T], tg[B * T];
    fill_tokens(in, B * T, c.vocab_size, 11);
    fill_tokens(tg, B * T, c.vocab_size, 12);
    tg[3] = -1;
    float loss, lp, lm, losses[B * T];
    br_model_zero_grad(m);
    CHECK_OK(br_model_train_step(m, in, tg, B, T, NULL, &loss));
    double worst = 0;
    const char *worst_name = "";
    size_t checked = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const br_tensor_info_t *t = &m->tensors[i];
        for (int k = 0; k < 6; k++) {
            size_t j = t->offset + br_rng_below(&r, t->numel);
            float keep = m->params[j], h = 1e-2f;
            m->params[j] = keep + h;
            br_model_forward_loss(m, in, tg, B, T, NULL, losses, &lp);
            m->params[j] = keep - h;
            br_model_forward_loss(m, in, tg, B, T, NULL, losses, &lm);
            m->params[j] = keep;
            double fd = ((double)lp - lm) / (2.0 * h), an = m->grads[j];
            double err = fabs(fd - an) / fmax(fabs(fd) + fabs(an), 1e-2);
            if (err > worst) {
                worst = err;
                worst_name = t->name;
            }
            checked++;
        }
    }
    CHECK_MSG(worst < 2e-2, "finite differences (%s, %s): worst relative error %.3g in %s",
              block == BR_BLOCK_PARALLEL ? "parallel" : "sequential", tied ? "tied" : "untied",
              worst, worst_name);
    CHECK(checked >= 6 * m->n_tensors);
    br_model_free(m);
}

/* KV-cached decoding (prefill a chunk, then one token at a time, small pages) gives the same
 * logits as recomputing the whole sequence. */
static void cached_equals_full(br_block_kind block)
{
    br_model_config_t c = tiny(block, false);
    br_model_t *m;
    CHECK_OK(br_model_create(&m, &c, false));
    br_model_init_random(m, 5);
    double worst = cached_vs_full(m, &c, 23, 7, 6);
    CHECK_MSG(worst < 2e-5, "cached vs full recompute: max logit difference %.3g", worst);
    br_model_free(m);
}

/* Three sequences at different positions in one call == each run alone. */
static void batched_equals_separate(void)
{
    br_model_config_t c = tiny(BR_BLOCK_SEQUENTIAL, true);
    br_model_t *m;
    CHECK_OK(br_model_create(&m, &c, false));
    br_model_init_random(m, 8);
    size_t V = (size_t)c.vocab_size;
    enum { NS = 3, LEN = 30 };
    int32_t toks[NS][LEN];
    for (int s = 0; s < NS; s++) fill_tokens(toks[s], LEN, c.vocab_size, 100 + (uint64_t)s);
    /* prefixes already cached: 0, 9, 17 tokens; then runs of 5, 1, 8 new tokens */
    const size_t pre[NS] = {0, 9, 17}, run[NS] = {5, 1, 8};
    br_kv_pool_t *ka, *kb;
    CHECK_OK(br_kv_pool_create(&ka, &c, 8, 1 << 20));
    CHECK_OK(br_kv_pool_create(&kb, &c, 8, 1 << 20));
    int32_t pa[NS][4], pb[NS][4];
    for (int s = 0; s < NS; s++)
        for (int i = 0; i < 4; i++) {
            CHECK_OK(br_kv_pool_alloc_page(ka, &pa[s][i]));
            CHECK_OK(br_kv_pool_alloc_page(kb, &pb[s][i]));
        }
    float *sep = malloc(32 * V * sizeof(float)), *bat = malloc(32 * V * sizeof(float));
    size_t rows = 0;
    for (int s = 0; s < NS; s++) {
        if (pre[s]) {
            br_seq_t p = {toks[s], pre[s], 0, pa[s], 4, BR_LOGITS_NONE};
            CHECK_OK(br_model_forward_batch(m, ka, &p, 1, NULL, NULL));
            br_seq_t q = {toks[s], pre[s], 0, pb[s], 4, BR_LOGITS_NONE};
            CHECK_OK(br_model_forward_batch(m, kb, &q, 1, NULL, NULL));
        }
        br_seq_t one = {toks[s] + pre[s], run[s], pre[s], pa[s], 4, s == 1 ? BR_LOGITS_LAST : BR_LOGITS_ALL};
        CHECK_OK(br_model_forward_batch(m, ka, &one, 1, NULL, sep + rows * V));
        rows += s == 1 ? 1 : run[s];
    }
    br_seq_t all[NS];
    for (int s = 0; s < NS; s++)
        all[s] = (br_seq_t){toks[s] + pre[s], run[s], pre[s], pb[s], 4, s == 1 ? BR_LOGITS_LAST : BR_LOGITS_ALL};
    CHECK_OK(br_model_forward_batch(m, kb, all, NS, NULL, bat));
    double worst = 0;
    for (size_t i = 0; i < rows * V; i++) worst = fmax(worst, fabs(sep[i] - bat[i]));
    CHECK_MSG(worst < 1e-5, "batched vs separate: max logit difference %.3g", worst);
    /* and against a full recompute of sequence 2 */
    float *full = malloc(LEN * V * sizeof(float));
    CHECK_OK(br_model_forward_logits(m, toks[2], 1, pre[2] + run[2], NULL, full));
    worst = 0;
    for (size_t i = 0; i < run[2] * V; i++) worst = fmax(worst, fabs(full[pre[2] * V + i] - bat[(5 + 1) * V + i]));
    CHECK_MSG(worst < 2e-5, "batched vs full recompute: max logit difference %.3g", worst);

    /* pool accounting and errors */
    size_t nfree = br_kv_pool_pages_free(ka);
    br_kv_pool_free_page(ka, pa[0][0]);
    CHECK_INT(br_kv_pool_pages_free(ka), nfree + 1);
    br_kv_pool_free_page(ka, pa[0][0]); /* double free: ignored */
    CHECK_INT(br_kv_pool_pages_free(ka), nfree + 1);
    br_seq_t stale = {toks[0], 2, 0, pa[0], 4, BR_LOGITS_NONE};
    CHECK_STATUS(br_model_forward_batch(m, ka, &stale, 1, NULL, NULL), BR_EINVAL);
    int32_t bad_tok[2] = {1, (int32_t)V};
    br_seq_t badt = {bad_tok, 2, 0, pb[0], 4, BR_LOGITS_NONE};
    CHECK_STATUS(br_model_forward_batch(m, kb, &badt, 1, NULL, NULL), BR_ERANGE);
    CHECK(strstr(br_errmsg(), "outside the vocabulary") != NULL);
    br_seq_t toolong = {toks[0], 5, 38, pb[0], 4, BR_LOGITS_NONE};
    CHECK_STATUS(br_model_forward_batch(m, kb, &toolong, 1, NULL, NULL), BR_ERANGE);
    CHECK(strstr(br_errmsg(), "context") != NULL);
    br_seq_t short_pt = {toks[0], 5, 30, pb[0], 4, BR_LOGITS_NONE};
    CHECK_STATUS(br_model_forward_batch(m, kb, &short_pt, 1, NULL, NULL), BR_EINVAL);
    br_kv_pool_t *full_pool;
    CHECK_OK(br_kv_pool_create(&full_pool, &c, 8, br_kv_pool_page_bytes(ka)));
    int32_t pg;
    CHECK_OK(br_kv_pool_alloc_page(full_pool, &pg));
    CHECK_STATUS(br_kv_pool_alloc_page(full_pool, &pg), BR_EBUSY);
    br_kv_pool_t *tiny_pool = NULL;
    CHECK_STATUS(br_kv_pool_create(&tiny_pool, &c, 8, 100), BR_ENOMEM);
    CHECK(tiny_pool == NULL);
    br_kv_pool_free(full_pool);
    br_kv_pool_free(ka);
    br_kv_pool_free(kb);
    free(sep);
    free(bat);
    free(full);
    br_model_free(m);
}

static void roundtrip(void)
{
    char dir[] = "/tmp/braid_lm_test_XXXXXX";
    if (!mkdtemp(dir)) {
        SKIP("mkdtemp failed");
        return;
    }
    br_model_config_t c = tiny(BR_BLOCK_PARALLEL, false);
    c.eos_token_id = 3;
    br_model_t *m, *l = NULL;
    CHECK_OK(br_model_create(&m, &c, true));
    br_model_init_random(m, 1);
    enum { B = 2, T = 5 };
    int32_t in[B * T], tg[B * T];
    fill_tokens(in, B * T, c.vocab_size, 1);
    fill_tokens(tg, B * T, c.vocab_size, 2);
    float loss;
    br_adamw_opts_t o = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f};
    br_model_zero_grad(m);
    CHECK_OK(br_model_train_step(m, in, tg, B, T, NULL, &loss));
    CHECK_OK(br_model_adamw(m, &o, NULL));
    CHECK_OK(br_model_save(m, dir, BR_DT_F32));
    CHECK_OK(br_model_save_optimizer(m, dir, "{\"k\": 1}"));
    CHECK_OK(br_model_load(&l, dir, true));
    if (l) {
        CHECK(l->cfg.block == BR_BLOCK_PARALLEL && l->cfg.eos_token_id == 3 && !l->cfg.tie_word_embeddings);
        CHECK(memcmp(l->params, m->params, m->n_params * sizeof(float)) == 0);
        char *extra = NULL;
        CHECK_OK(br_model_load_optimizer(l, dir, &extra));
        CHECK_STR(extra, "{\"k\": 1}");
        free(extra);
        CHECK_INT(l->step, 1);
        CHECK(memcmp(l->adam_v, m->adam_v, m->n_params * sizeof(float)) == 0);
        /* the next step is identical */
        float l1, l2;
        br_model_zero_grad(m);
        br_model_zero_grad(l);
        CHECK_OK(br_model_train_step(m, in, tg, B, T, NULL, &l1));
        CHECK_OK(br_model_train_step(l, in, tg, B, T, NULL, &l2));
        CHECK_OK(br_model_adamw(m, &o, NULL));
        CHECK_OK(br_model_adamw(l, &o, NULL));
        CHECK(l1 == l2 && memcmp(l->params, m->params, m->n_params * sizeof(float)) == 0);
        br_model_free(l);
    }
    /* BF16 save loads back as the rounded values */
    CHECK_OK(br_model_save(m, dir, BR_DT_BF16));
    CHECK_OK(br_model_load(&l, dir, false));
    if (l) {
        size_t bad = 0;
        for (size_t i = 0; i < m->n_params; i++)
            bad += l->params[i] != br_bf16_to_f32(br_f32_to_bf16(m->params[i]));
        CHECK_INT(bad, 0);
        br_model_free(l);
    }

    /* a checkpoint with a missing tensor, a mis-shaped tensor, an extra tensor */
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    for (int kase = 0; kase < 3; kase++) {
        br_st_writer_t *w;
        CHECK_OK(br_st_writer_create(&w));
        for (size_t i = 0; i < m->n_tensors; i++) {
            const br_tensor_info_t *t = &m->tensors[i];
            int64_t shape[2] = {t->shape[0], t->shape[1]};
            bool target = !strcmp(t->name, "model.layers.1.mlp.up_proj.weight");
            if (kase == 0 && target) continue;
            if (kase == 1 && target) {
                shape[0] = t->shape[1];
                shape[1] = t->shape[0];
            }
            br_st_writer_add(w, t->name, BR_DT_F32, t->ndim, shape, m->params + t->offset);
        }
        int64_t one = 1;
        if (kase == 2) br_st_writer_add(w, "model.layers.9.mlp.up_proj.weight", BR_DT_F32, 1, &one, m->params);
        CHECK_OK(br_st_writer_save(w, path));
        br_st_writer_free(w);
        CHECK_STATUS(br_model_load(&l, dir, false), BR_EFORMAT);
        CHECK(strstr(br_errmsg(), kase == 2 ? "model.layers.9.mlp.up_proj.weight" : "model.layers.1.mlp.up_proj.weight") != NULL);
        CHECK(strstr(br_errmsg(), kase == 0 ? "missing" : kase == 1 ? "has shape [24, 30], the config needs [30, 24]" : "unexpected") != NULL);
    }
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    CHECK(system(path) == 0);
    br_model_free(m);
}

static void bad_configs(void)
{
    br_model_config_t c;
    const char *bad[] = {
        "{\"vocab_size\": 10, \"hidden_size\": 30, \"intermediate_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 4}",
        "{\"vocab_size\": 10, \"hidden_size\": 32, \"intermediate_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"num_key_value_heads\": 3}",
        "{\"vocab_size\": 10, \"hidden_size\": 32, \"intermediate_size\": 8, \"num_hidden_layers\": 0, \"num_attention_heads\": 4}",
        "{\"vocab_size\": 10, \"hidden_size\": 32, \"intermediate_size\": 8, \"num_attention_heads\": 4}",
        "{\"vocab_size\": 10, \"hidden_size\": 32, \"intermediate_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"block\": \"diagonal\"}",
        "{\"vocab_size\": 10, \"hidden_size\": 32, \"intermediate_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"hidden_act\": \"gelu\"}",
        "{\"vocab_size\": \"ten\"}",
        "[1, 2",
    };
    const char *want[] = {"hidden_size (30) must be a multiple of num_attention_heads (4)",
                          "multiple of num_key_value_heads (3)", "num_hidden_layers must be > 0",
                          "missing required field 'num_hidden_layers'", "block must be",
                          "hidden_act", "'vocab_size' must be an integer", "line"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        br_status s = br_config_parse(&c, bad[i], strlen(bad[i]));
        CHECK_MSG(s != BR_OK && strstr(br_errmsg(), want[i]), "config %zu: got %s '%s', want '%s'", i,
                  br_status_name(s), br_errmsg(), want[i]);
    }
    const char *good = "{\"vocab_size\": 10, \"hidden_size\": 32, \"intermediate_size\": 8, "
                       "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"eos_token_id\": [2, 3]}";
    CHECK_OK(br_config_parse(&c, good, strlen(good)));
    CHECK_INT(c.head_dim, 8);
    CHECK_INT(c.num_key_value_heads, 4);
    CHECK_INT(c.eos_token_id, 2);

    /* token id >= vocab and T > context in training */
    br_model_config_t t = tiny(BR_BLOCK_SEQUENTIAL, false);
    br_model_t *m;
    CHECK_OK(br_model_create(&m, &t, true));
    int32_t in[4] = {1, 2, 37, 4}, tg[4] = {1, 2, 3, 4};
    float loss;
    CHECK_STATUS(br_model_train_step(m, in, tg, 1, 4, NULL, &loss), BR_ERANGE);
    CHECK(strstr(br_errmsg(), "token id 37 at index 2") != NULL);
    int32_t *big = calloc(41, sizeof *big);
    CHECK_STATUS(br_model_train_step(m, big, big, 1, 41, NULL, &loss), BR_ERANGE);
    free(big);
    br_model_free(m);
}

/* LoRA seam: a hook that adds alpha * x . (sum of columns) to q_proj output; with a frozen
 * base the step leaves grads NULL and calls backward on the hook. */
typedef struct {
    int applied, backwarded;
    float alpha;
} hook_ctx;
static void hook_apply(const br_lora_hook_t *h, float *out, const float *inp, size_t N, size_t C,
                       size_t OC, int layer, br_proj proj)
{
    hook_ctx *c = h->ctx;
    (void)layer;
    if (proj != BR_PROJ_Q) return;
    c->applied++;
    for (size_t i = 0; i < N; i++) {
        float s = 0;
        for (size_t j = 0; j < C; j++) s += inp[i * C + j];
        for (size_t o = 0; o < OC; o++) out[i * OC + o] += c->alpha * s;
    }
}
static void hook_backward(const br_lora_hook_t *h, float *dinp, const float *dout, const float *inp,
                          size_t N, size_t C, size_t OC, int layer, br_proj proj)
{
    hook_ctx *c = h->ctx;
    (void)layer;
    (void)inp;
    if (proj != BR_PROJ_Q) return;
    c->backwarded++;
    if (!dinp) return;
    for (size_t i = 0; i < N; i++) {
        float s = 0;
        for (size_t o = 0; o < OC; o++) s += dout[i * OC + o];
        for (size_t j = 0; j < C; j++) dinp[i * C + j] += c->alpha * s;
    }
}

static void lora_seam(void)
{
    br_model_config_t c = tiny(BR_BLOCK_SEQUENTIAL, false);
    br_model_t *m;
    CHECK_OK(br_model_create(&m, &c, false));
    br_model_init_random(m, 4);
    hook_ctx hc = {0, 0, 0.05f};
    br_lora_hook_t hook = {.apply = hook_apply, .backward = hook_backward, .ctx = &hc};
    enum { B = 1, T = 6 };
    int32_t in[B * T], tg[B * T];
    fill_tokens(in, B * T, c.vocab_size, 21);
    fill_tokens(tg, B * T, c.vocab_size, 22);
    float l0, l1, losses[T];
    br_train_opts_t o = {&hook, false, 1.0f, false};
    CHECK_OK(br_model_train_step(m, in, tg, B, T, &o, &l1));
    CHECK(m->grads == NULL);
    CHECK_INT(hc.applied, 2);
    CHECK_INT(hc.backwarded, 2);
    CHECK_OK(br_model_forward_loss(m, in, tg, B, T, NULL, losses, &l0));
    CHECK(fabs(l0 - l1) > 1e-4); /* the hook changed the output */
    /* cached inference sees the hook too */
    br_kv_pool_t *kv;
    CHECK_OK(br_kv_pool_create(&kv, &c, 8, 1 << 20));
    int32_t pg;
    CHECK_OK(br_kv_pool_alloc_page(kv, &pg));
    size_t V = (size_t)c.vocab_size;
    float *a = malloc(T * V * sizeof(float)), *b = malloc(T * V * sizeof(float));
    br_seq_t s = {in, T, 0, &pg, 1, BR_LOGITS_ALL};
    CHECK_OK(br_model_forward_batch(m, kv, &s, 1, &hook, a));
    CHECK_OK(br_model_forward_logits(m, in, B, T, &hook, b));
    double worst = 0;
    for (size_t i = 0; i < T * V; i++) worst = fmax(worst, fabs(a[i] - b[i]));
    CHECK_MSG(worst < 2e-5, "hooked cached vs full: %.3g", worst);
    free(a);
    free(b);
    br_kv_pool_free(kv);
    br_model_free(m);
}

/* Greedy KV-cached generation == greedy decoding by full recompute at every step; sampling
 * is reproducible from the seed; a prompt longer than the context is an error. */
static void generate_matches_recompute(void)
{
    br_model_config_t c = tiny(BR_BLOCK_SEQUENTIAL, false);
    c.initializer_range = 1.0f; /* peaky logits: no near-ties between candidates */
    br_model_t *m;
    CHECK_OK(br_model_create(&m, &c, false));
    br_model_init_random(m, 12);
    size_t V = (size_t)c.vocab_size;
    int32_t seq[40] = {3, 1, 4, 1, 5};
    size_t n = 5;
    br_sampler_t greedy = {0, 0, 1};
    int32_t *out;
    size_t nout;
    CHECK_OK(br_generate(m, seq, n, 20, &greedy, 1, -1, NULL, NULL, &out, &nout));
    CHECK_INT(nout, 20);
    float *logits = malloc(40 * V * sizeof(float));
    size_t agree = 0;
    for (size_t i = 0; i < nout; i++) {
        br_model_forward_logits(m, seq, 1, n, NULL, logits);
        float *last = logits + (n - 1) * V;
        size_t best = 0;
        for (size_t v = 1; v < V; v++)
            if (last[v] > last[best]) best = v;
        agree += out[i] == (int32_t)best;
        seq[n++] = (int32_t)best;
    }
    CHECK_INT(agree, nout);
    free(out);
    br_sampler_t hot = {0.9f, 10, 0.9f};
    int32_t *a, *b;
    size_t na, nb;
    CHECK_OK(br_generate(m, seq, 5, 15, &hot, 77, -1, NULL, NULL, &a, &na));
    CHECK_OK(br_generate(m, seq, 5, 15, &hot, 77, -1, NULL, NULL, &b, &nb));
    CHECK(na == nb && memcmp(a, b, na * sizeof *a) == 0);
    free(a);
    free(b);
    /* generation stops at the context end (40) */
    CHECK_OK(br_generate(m, seq, 30, 100, &greedy, 1, -1, NULL, NULL, &a, &na));
    CHECK_INT(na, 11);
    free(a);
    int32_t big[41] = {0};
    CHECK_STATUS(br_generate(m, big, 41, 1, &greedy, 1, -1, NULL, NULL, &a, &na), BR_ERANGE);
    CHECK(strstr(br_errmsg(), "longer than the context") != NULL);
    free(logits);
    br_model_free(m);
}

int main(void)
{
    br_set_threads(1); /* tiny shapes: threads only add overhead on a shared machine */
    finite_difference(BR_BLOCK_SEQUENTIAL, false);
    finite_difference(BR_BLOCK_PARALLEL, true);
    cached_equals_full(BR_BLOCK_SEQUENTIAL);
    cached_equals_full(BR_BLOCK_PARALLEL);
    batched_equals_separate();
    roundtrip();
    bad_configs();
    lora_seam();
    generate_matches_recompute();
    return th_exit();
}
