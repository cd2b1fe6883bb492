/* Mixtures inside the model (lm/model_moe.c) and upcycling (moe/upcycle.c):
 *  - finite differences through whole tiny MoE / MoA / Nexus models (every mixture tensor);
 *  - KV-cached batched inference == the training forward for every kind;
 *  - config.json and checkpoint round trips, Mixtral names, routing counts;
 *  - upcycling builds exactly the paper's weights (copies, averages, shared K/V, shared
 *    expert), identical experts give back the seed's outputs, extend merges with 1/(n+1);
 *  - bad input (shapes, vocab, block type, method, empty expert list) fails before writing. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/fileio.h"
#include "base/rng.h"
#include "base/safetensors.h"
#include "harness.h"
#include "lm/config_moe.h"
#include "lm/generate.h"
#include "lm/model.h"
#include "moe/upcycle.h"
#include "model_fixture.h"

static br_model_config_t tiny(br_block_kind block)
{
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 29;
    c.hidden_size = 16;
    c.intermediate_size = 12;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 32;
    c.rms_norm_eps = 1e-5f;
    c.initializer_range = 0.3f;
    c.block = block;
    return c;
}

typedef enum { K_BTX, K_BAM, K_BAM_SKV, K_NEXUS, K_COUNT } kind_t;
static const char *const kind_names[] = {"btx (sequential, top-2 of 2)", "bam expert-KV",
                                         "bam shared-KV", "nexus + shared expert"};

static br_model_config_t moe_cfg(kind_t k)
{
    br_model_config_t c = tiny(k == K_BTX ? BR_BLOCK_SEQUENTIAL : BR_BLOCK_PARALLEL);
    c.num_local_experts = 2;
    c.num_experts_per_tok = 2; /* every expert chosen: finite differences never flip routing */
    c.norm_topk_prob = true;
    if (k == K_BAM || k == K_BAM_SKV) {
        c.num_attention_experts = 3;
        c.attention_shared_kv = k == K_BAM_SKV;
    }
    if (k == K_NEXUS) {
        c.router_nexus = 1;
        c.nexus_domain_dim = 16;
        c.nexus_hidden_size = 8;
        c.shared_expert_intermediate_size = 12;
        c.norm_topk_prob = false;
    }
    return c;
}

static void finite_difference(kind_t kind)
{
    br_model_config_t c = moe_cfg(kind);
    br_model_t *m;
    CHECK_OK(br_model_create(&m, &c, true));
    if (!m) return;
    br_model_init_random(m, 7);
    enum { B = 2, T = 5 };
    int32_t in[B * T], tg[B * T];
    fill_tokens(in, B * T, c.vocab_size, 11);
    fill_tokens(tg, B * T, c.vocab_size, 12);
    float loss, lp, lm, losses[B * T];
    br_model_zero_grad(m);
    CHECK_OK(br_model_train_step(m, in, tg, B, T, NULL, &loss));
    br_rng_t r;
    br_rng_seed(&r, 3);
    double worst = 0;
    const char *worst_name = "";
    size_t mixture_tensors = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const br_tensor_info_t *t = &m->tensors[i];
        bool mix = strstr(t->name, "experts") || strstr(t->name, "router") ||
                   strstr(t->name, "gate.weight") || strstr(t->name, "nexus") ||
                   strstr(t->name, "shared_expert");
        if (!mix && strcmp(t->name, "model.embed_tokens.weight")) continue;
        if (!strcmp(t->name, BR_NAME_NEXUS_DOMAINS)) continue; /* fixed, no gradient */
        mixture_tensors += mix;
        for (int k = 0; k < 5; k++) {
            size_t j = t->offset + br_rng_below(&r, t->numel);
            float keep = m->params[j], h = 1e-2f;
            m->params[j] = keep + h;
            br_model_forward_loss(m, in, tg, B, T, NULL, losses, &lp);
            m->params[j] = keep - h;
            br_model_forward_loss(m, in, tg, B, T, NULL, losses, &lm);
            m->params[j] = keep;
            double fd = ((double)lp - lm) / (2.0 * h), an = m->grads[j];
            double err = fabs(fd - an) / fmax(fabs(fd) + fabs(an), 1e-2);
            if (err > worst) worst = err, worst_name = t->name;
        }
    }
    CHECK_MSG(worst < 3e-2, "%s: finite differences through the model: worst relative error %.3g in %s",
              kind_names[kind], worst, worst_name);
    CHECK_MSG(mixture_tensors >= 8, "%s: only %zu mixture tensors in the table", kind_names[kind], mixture_tensors);
    br_model_free(m);
}

/* Paged, KV-cached batched inference (prefill + one token at a time) == training forward. */
static void cached_equals_full(kind_t kind)
{
    br_model_config_t c = moe_cfg(kind);
    c.num_experts_per_tok = 1; /* real top-1 routing here */
    br_model_t *m;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return;
    br_model_init_random(m, 5);
    double worst = cached_vs_full(m, &c, 13, 5, 4);
    CHECK_MSG(worst < 5e-5, "%s: cached vs full: max logit difference %.3g", kind_names[kind], worst);
    br_model_free(m);
}

static bool make_tmp(char *dir)
{
    if (!mkdtemp(dir)) {
        SKIP("mkdtemp failed");
        return false;
    }
    return true;
}

static void rm_rf(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* Checkpoint + config round trip, names, routing counts, training lowers the loss. */
static void roundtrip(kind_t kind, const char *root)
{
    br_model_config_t c = moe_cfg(kind);
    c.num_experts_per_tok = 1;
    c.router_aux_loss_coef = 0.01f;
    br_model_t *m, *m2;
    CHECK_OK(br_model_create(&m, &c, true));
    if (!m) return;
    br_model_init_random(m, 1);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/rt%d", root, (int)kind);
    CHECK_OK(br_mkdir_p(dir));
    CHECK_OK(br_model_save(m, dir, BR_DT_F32));
    CHECK_OK(br_model_load(&m2, dir, false));
    if (!m2) return;
    CHECK_INT(m2->cfg.num_local_experts, c.num_local_experts);
    CHECK_INT(m2->cfg.num_attention_experts, c.num_attention_experts);
    CHECK_INT(m2->cfg.attention_shared_kv, c.attention_shared_kv);
    CHECK_INT(m2->cfg.router_nexus, c.router_nexus);
    CHECK_INT(m2->cfg.shared_expert_intermediate_size, c.shared_expert_intermediate_size);
    CHECK_INT(m2->n_params, m->n_params);
    CHECK_INT(br_config_num_params(&c) <= m->n_params, 1);
    if (kind == K_BTX) {
        CHECK(br_model_find_tensor(m2, "model.layers.1.block_sparse_moe.gate.weight") >= 0);
        CHECK(br_model_find_tensor(m2, "model.layers.0.block_sparse_moe.experts.1.w2.weight") >= 0);
        char *text;
        size_t n;
        char path[4300];
        snprintf(path, sizeof path, "%s/config.json", dir);
        CHECK_OK(br_read_file(path, &text, &n));
        CHECK(text && strstr(text, "\"model_type\": \"mixtral\""));
        free(text);
    }
    enum { B = 2, T = 8 };
    int32_t in[B * T], tg[B * T];
    fill_tokens(in, B * T, c.vocab_size, 21);
    for (int i = 0; i < B * T; i++) tg[i] = in[(i + 1) % (B * T)];
    float l1, l2, losses[B * T];
    CHECK_OK(br_model_forward_loss(m, in, tg, B, T, NULL, losses, &l1));
    CHECK_OK(br_model_forward_loss(m2, in, tg, B, T, NULL, losses, &l2));
    CHECK_NEAR(l1, l2, 1e-6);
    /* KV-cached generation sizes its cache for every attention expert's heads */
    {
        br_sampler_t smp = {0};
        int32_t *gen = NULL;
        size_t ngen = 0;
        CHECK_OK(br_generate(m2, in, 4, 6, &smp, 1, -1, NULL, NULL, &gen, &ngen));
        CHECK_INT(ngen, 6);
        free(gen);
    }
    /* routing counts: every layer sees B*T*k assignments */
    uint64_t counts[2 * 2] = {0};
    m2->route_counts = counts;
    CHECK_OK(br_model_forward_loss(m2, in, tg, B, T, NULL, losses, &l2));
    m2->route_counts = NULL;
    CHECK_INT(counts[0] + counts[1], B * T);
    CHECK_INT(counts[2] + counts[3], B * T);
    /* a few AdamW steps on one batch lower the loss */
    br_adamw_opts_t o = {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.0f, .clip = 1.0f};
    float first = 0, last = 0;
    for (int step = 0; step < 15; step++) {
        br_model_zero_grad(m);
        CHECK_OK(br_model_train_step(m, in, tg, B, T, NULL, &last));
        if (step == 0) first = last;
        CHECK_OK(br_model_adamw(m, &o, NULL));
    }
    CHECK_MSG(last < first - 0.1f, "%s: loss %g -> %g after 15 steps", kind_names[kind], first, last);
    br_model_free(m);
    br_model_free(m2);
}

/* ------------------------------------------------------------------------------------------
 * Upcycling */

static void save_model(br_model_t *m, const char *root, const char *name, char *out /* 4200 */)
{
    snprintf(out, 4200, "%s/%s", root, name);
    CHECK_OK(br_mkdir_p(out));
    CHECK_OK(br_model_save(m, out, BR_DT_F32));
}

/* Seed + two branches that differ from it in every tensor. */
static void make_family(const char *root, br_block_kind block, char seed[4200], char e1[4200],
                        char e2[4200])
{
    br_model_config_t c = tiny(block);
    br_model_t *m;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return;
    br_model_init_random(m, 100);
    save_model(m, root, block == BR_BLOCK_PARALLEL ? "seed_par" : "seed_seq", seed);
    br_model_t *e;
    for (int i = 0; i < 2; i++) {
        CHECK_OK(br_model_create(&e, &c, false));
        br_model_init_random(e, 200 + (uint64_t)i);
        for (size_t j = 0; j < e->n_params; j++) e->params[j] = m->params[j] + 0.1f * e->params[j];
        save_model(e, root, i == 0 ? (block == BR_BLOCK_PARALLEL ? "e1_par" : "e1_seq")
                                   : (block == BR_BLOCK_PARALLEL ? "e2_par" : "e2_seq"),
                   i == 0 ? e1 : e2);
        br_model_free(e);
    }
    br_model_free(m);
}

static float *tensor_of(br_model_t *m, const char *name)
{
    int i = br_model_find_tensor(m, name);
    CHECK_MSG(i >= 0, "tensor %s missing", name);
    return i >= 0 ? m->params + m->tensors[i].offset : NULL;
}

static size_t numel_of(br_model_t *m, const char *name)
{
    int i = br_model_find_tensor(m, name);
    return i >= 0 ? m->tensors[i].numel : 0;
}

/* max |a - (wa*x + wb*y)| over a tensor */
static double mix_err(const float *a, const float *x, const float *y, double wa, double wb, size_t n)
{
    double e = 0;
    if (!a || !x || (!y && wb != 0)) return 1e9;
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs(a[i] - (wa * x[i] + (y ? wb * y[i] : 0))));
    return e;
}

static void upcycle_weights(const char *root)
{
    char seed[4200], e1[4200], e2[4200], sp[4200], ss[4200], s1[4200], s2[4200], out[4200];
    make_family(root, BR_BLOCK_PARALLEL, sp, e1, e2);
    make_family(root, BR_BLOCK_SEQUENTIAL, ss, s1, s2);
    (void)seed;
    br_model_t *S, *A, *Bm;
    const char *ex[2] = {e1, e2};
    CHECK_OK(br_model_load(&S, sp, false));
    CHECK_OK(br_model_load(&A, e1, false));
    CHECK_OK(br_model_load(&Bm, e2, false));
    if (!S || !A || !Bm) return;
    for (int method = 0; method < 5; method++) {
        br_upcycle_opts_t o = {.method = (br_upcycle_method)method, .base = sp, .experts = ex,
                               .n_experts = 2, .renorm = -1, .alpha = 0.01f, .seed = 3};
        float dom[2 * 16];
        for (int i = 0; i < 32; i++) dom[i] = (float)(i % 7) * 0.1f;
        if (method == BR_UPCYCLE_NEXUS) o.domain_emb = dom, o.domain_dim = 16, o.nexus_hidden = 8;
        snprintf(out, sizeof out, "%s/up_%s", root, br_upcycle_method_name(o.method));
        o.out = out;
        br_model_config_t mc;
        CHECK_OK(br_upcycle(&o, &mc));
        br_model_t *M;
        CHECK_OK(br_model_load(&M, out, false));
        if (!M) continue;
        const char *mn = br_upcycle_method_name(o.method);
        size_t nF = numel_of(S, "model.layers.1.mlp.down_proj.weight");
        size_t nQ = numel_of(S, "model.layers.1.self_attn.q_proj.weight");
        size_t nK = numel_of(S, "model.layers.1.self_attn.k_proj.weight");
        size_t nE = numel_of(S, "model.embed_tokens.weight");
        const float *f1 = tensor_of(M, "model.layers.1.block_sparse_moe.experts.1.w2.weight");
        const float *src1 = tensor_of(method == BR_UPCYCLE_SPARSE ? S : Bm, "model.layers.1.mlp.down_proj.weight");
        CHECK_MSG(mix_err(f1, src1, NULL, 1, 0, nF) == 0, "%s: expert 1's down projection is not copied", mn);
        const float *emb = tensor_of(M, "model.embed_tokens.weight");
        if (method == BR_UPCYCLE_SPARSE)
            CHECK_MSG(mix_err(emb, tensor_of(S, "model.embed_tokens.weight"), NULL, 1, 0, nE) == 0, "%s: embeddings not the seed's", mn);
        else
            CHECK_MSG(mix_err(emb, tensor_of(A, "model.embed_tokens.weight"), tensor_of(Bm, "model.embed_tokens.weight"), 0.5, 0.5, nE) < 1e-6,
                      "%s: embeddings are not the experts' average", mn);
        if (method == BR_UPCYCLE_BAM || method == BR_UPCYCLE_BAM_SHARED_KV) {
            CHECK_INT(M->cfg.num_attention_experts, 2);
            const float *q1 = tensor_of(M, "model.layers.1.self_attn.experts.1.q_proj.weight");
            CHECK_MSG(mix_err(q1, tensor_of(Bm, "model.layers.1.self_attn.q_proj.weight"), NULL, 1, 0, nQ) == 0, "%s: attention expert 1 is not expert 2's attention", mn);
            if (method == BR_UPCYCLE_BAM_SHARED_KV) {
                const float *k = tensor_of(M, "model.layers.1.self_attn.k_proj.weight");
                CHECK_MSG(mix_err(k, tensor_of(A, "model.layers.1.self_attn.k_proj.weight"), tensor_of(Bm, "model.layers.1.self_attn.k_proj.weight"), 0.5, 0.5, nK) < 1e-6,
                          "%s: shared K is not the experts' average", mn);
            } else {
                CHECK(br_model_find_tensor(M, "model.layers.1.self_attn.experts.0.k_proj.weight") >= 0);
            }
        } else {
            const float *q = tensor_of(M, "model.layers.1.self_attn.q_proj.weight");
            if (method == BR_UPCYCLE_SPARSE)
                CHECK(mix_err(q, tensor_of(S, "model.layers.1.self_attn.q_proj.weight"), NULL, 1, 0, nQ) == 0);
            else
                CHECK_MSG(mix_err(q, tensor_of(A, "model.layers.1.self_attn.q_proj.weight"), tensor_of(Bm, "model.layers.1.self_attn.q_proj.weight"), 0.5, 0.5, nQ) < 1e-6,
                          "%s: attention is not the experts' average", mn);
        }
        if (method == BR_UPCYCLE_NEXUS) {
            const float *sh = tensor_of(M, "model.layers.0.block_sparse_moe.shared_expert.up_proj.weight");
            CHECK_MSG(mix_err(sh, tensor_of(S, "model.layers.0.mlp.up_proj.weight"), NULL, 1, 0, nF) == 0, "nexus: shared expert is not the seed's FFN");
            const float *d = tensor_of(M, BR_NAME_NEXUS_DOMAINS);
            CHECK(d && d[17] == dom[17]);
            CHECK_INT(M->cfg.num_experts_per_tok, 1);
        }
        CHECK_INT(M->cfg.num_experts_per_tok, method == BR_UPCYCLE_BTX || method == BR_UPCYCLE_SPARSE ? 2 : 1);
        br_model_free(M);
    }
    /* BTX + shared expert (the linear-router control for Nexus): the experts' FFNs, the seed's
     * FFN as the shared expert, a linear router; other methods refuse the flag */
    {
        br_upcycle_opts_t o = {.method = BR_UPCYCLE_BTX, .base = sp, .experts = ex, .n_experts = 2,
                               .top_k = 1, .renorm = -1, .alpha = 0.01f, .seed = 3, .shared_expert = true};
        snprintf(out, sizeof out, "%s/up_btx_shared", root);
        o.out = out;
        CHECK_OK(br_upcycle(&o, NULL));
        br_model_t *M = NULL;
        CHECK_OK(br_model_load(&M, out, false));
        if (M) {
            size_t nF = numel_of(S, "model.layers.0.mlp.up_proj.weight");
            CHECK_INT(M->cfg.shared_expert_intermediate_size, S->cfg.intermediate_size);
            CHECK_INT(M->cfg.router_nexus, 0);
            CHECK_INT(M->cfg.num_experts_per_tok, 1);
            const float *sh = tensor_of(M, "model.layers.0.block_sparse_moe.shared_expert.up_proj.weight");
            CHECK_MSG(mix_err(sh, tensor_of(S, "model.layers.0.mlp.up_proj.weight"), NULL, 1, 0, nF) == 0,
                      "btx --shared-expert: shared expert is not the seed's FFN");
            const float *f0 = tensor_of(M, "model.layers.0.block_sparse_moe.experts.0.w3.weight");
            CHECK(mix_err(f0, tensor_of(A, "model.layers.0.mlp.up_proj.weight"), NULL, 1, 0, nF) == 0);
            CHECK(br_model_find_tensor(M, "model.layers.0.block_sparse_moe.gate.weight") >= 0);
        }
        br_model_free(M);
        o.method = BR_UPCYCLE_BAM;
        snprintf(out, sizeof out, "%s/up_bam_shared", root);
        CHECK_STATUS(br_upcycle(&o, NULL), BR_EINVAL);
        CHECK(!br_file_exists(out));
    }
    /* identical experts: BTX (renormalised top-2), sparse and BAM give back the seed */
    const char *same[2] = {sp, sp};
    int methods[3] = {BR_UPCYCLE_BTX, BR_UPCYCLE_SPARSE, BR_UPCYCLE_BAM_SHARED_KV};
    for (int i = 0; i < 3; i++) {
        br_upcycle_opts_t o = {.method = (br_upcycle_method)methods[i], .base = sp, .experts = same,
                               .n_experts = 2, .renorm = 1, .top_k = methods[i] == BR_UPCYCLE_BAM_SHARED_KV ? 1 : 2,
                               .seed = 4};
        snprintf(out, sizeof out, "%s/same_%d", root, i);
        o.out = out;
        CHECK_OK(br_upcycle(&o, NULL));
        br_model_t *M;
        CHECK_OK(br_model_load(&M, out, false));
        if (!M) continue;
        enum { T = 9 };
        int32_t toks[T];
        fill_tokens(toks, T, 29, 77);
        float a[T * 29], b[T * 29];
        CHECK_OK(br_model_forward_logits(S, toks, 1, T, NULL, a));
        CHECK_OK(br_model_forward_logits(M, toks, 1, T, NULL, b));
        double w = 0;
        for (int j = 0; j < T * 29; j++) w = fmax(w, fabs(a[j] - b[j]));
        CHECK_MSG(w < 1e-4, "%s of identical experts differs from the seed by %.3g",
                  br_upcycle_method_name(o.method), w);
        br_model_free(M);
    }
    /* extend: a third expert; non-FFN weights (2/3) current + (1/3) new */
    {
        char btx[4200];
        snprintf(btx, sizeof btx, "%s/up_btx", root);
        snprintf(out, sizeof out, "%s/btx_plus", root);
        br_extend_opts_t xo = {.moe = btx, .expert = sp, .seed = 9, .out = out};
        br_model_config_t mc;
        CHECK_OK(br_extend(&xo, &mc));
        CHECK_INT(mc.num_local_experts, 3);
        br_model_t *M, *P;
        CHECK_OK(br_model_load(&M, btx, false));
        CHECK_OK(br_model_load(&P, out, false));
        if (M && P) {
            size_t nQ = numel_of(S, "model.layers.0.self_attn.q_proj.weight");
            CHECK_MSG(mix_err(tensor_of(P, "model.layers.0.self_attn.q_proj.weight"), tensor_of(M, "model.layers.0.self_attn.q_proj.weight"),
                              tensor_of(S, "model.layers.0.self_attn.q_proj.weight"), 2.0 / 3, 1.0 / 3, nQ) < 1e-6,
                      "extend: attention is not (2/3) current + (1/3) new");
            size_t nF = numel_of(S, "model.layers.0.mlp.gate_proj.weight");
            CHECK(mix_err(tensor_of(P, "model.layers.0.block_sparse_moe.experts.2.w1.weight"), tensor_of(S, "model.layers.0.mlp.gate_proj.weight"), NULL, 1, 0, nF) == 0);
            CHECK(mix_err(tensor_of(P, "model.layers.0.block_sparse_moe.experts.0.w1.weight"), tensor_of(M, "model.layers.0.block_sparse_moe.experts.0.w1.weight"), NULL, 1, 0, nF) == 0);
            const float *r0 = tensor_of(M, "model.layers.1.block_sparse_moe.gate.weight");
            const float *r1 = tensor_of(P, "model.layers.1.block_sparse_moe.gate.weight");
            CHECK(mix_err(r1, r0, NULL, 1, 0, 2 * 16) == 0);
        }
        br_model_free(M);
        br_model_free(P);
        /* nexus extend: the new domain embedding is appended */
        char nx[4200];
        snprintf(nx, sizeof nx, "%s/up_nexus", root);
        snprintf(out, sizeof out, "%s/nexus_plus", root);
        float d3[16];
        for (int i = 0; i < 16; i++) d3[i] = (float)i;
        br_extend_opts_t no = {.moe = nx, .expert = e1, .domain_emb = d3, .seed = 9, .out = out};
        CHECK_OK(br_extend(&no, &mc));
        CHECK_OK(br_model_load(&P, out, false));
        if (P) CHECK(tensor_of(P, BR_NAME_NEXUS_DOMAINS)[2 * 16 + 5] == 5.0f);
        br_model_free(P);
        no.domain_emb = NULL;
        CHECK_STATUS(br_extend(&no, NULL), BR_EINVAL);
    }
    /* bad input: each fails before anything is written */
    {
        snprintf(out, sizeof out, "%s/never", root);
        const char *mixed[2] = {e1, s1}; /* parallel + sequential */
        br_upcycle_opts_t o = {.method = BR_UPCYCLE_BTX, .base = sp, .experts = mixed, .n_experts = 2, .renorm = -1, .out = out};
        CHECK_STATUS(br_upcycle(&o, NULL), BR_EINVAL);
        CHECK(strstr(br_errmsg(), "block type") != NULL);
        o.experts = ex;
        o.n_experts = 0;
        CHECK_STATUS(br_upcycle(&o, NULL), BR_EINVAL);
        o.n_experts = 2;
        o.base = ss;
        o.method = BR_UPCYCLE_BAM;
        CHECK_STATUS(br_upcycle(&o, NULL), BR_EINVAL); /* block type again: base sequential */
        const char *seqs[2] = {s1, s2};
        o.experts = seqs;
        CHECK_STATUS(br_upcycle(&o, NULL), BR_EINVAL); /* BAM needs parallel blocks */
        CHECK(strstr(br_errmsg(), "parallel") != NULL);
        br_upcycle_method bad;
        CHECK_STATUS(br_upcycle_method_parse("btm-x", &bad), BR_EINVAL);
        /* an expert with another vocabulary */
        br_model_config_t c = tiny(BR_BLOCK_PARALLEL);
        c.vocab_size = 31;
        br_model_t *v;
        CHECK_OK(br_model_create(&v, &c, false));
        char vdir[4200];
        save_model(v, root, "vocab31", vdir);
        br_model_free(v);
        const char *vx[2] = {e1, vdir};
        br_upcycle_opts_t o2 = {.method = BR_UPCYCLE_BTX, .base = sp, .experts = vx, .n_experts = 2, .renorm = -1, .out = out};
        CHECK_STATUS(br_upcycle(&o2, NULL), BR_EINVAL);
        CHECK(strstr(br_errmsg(), "vocab_size") != NULL);
        CHECK(!br_dir_exists(out));
    }
    br_model_free(S);
    br_model_free(A);
    br_model_free(Bm);
}

/* A Mixtral checkpoint written by PyTorch the way Hugging Face writes one
 * (tests/ref/gen_mixtral_ref.py): braid loads it and gives the same logits. */
static void mixtral_reference(void)
{
    br_model_t *m;
    CHECK_OK(br_model_load(&m, "tests/ref/mixtral_tiny", false));
    if (!m) return;
    CHECK_INT(m->cfg.num_local_experts, 4);
    CHECK_INT(m->cfg.num_experts_per_tok, 2);
    CHECK(m->cfg.norm_topk_prob);
    br_safetensors_t *st;
    CHECK_OK(br_st_open(&st, "tests/ref/mixtral_tiny/ref.safetensors"));
    if (!st) {
        br_model_free(m);
        return;
    }
    const br_st_tensor_t *ti = br_st_find(st, "inputs"), *tl = br_st_find(st, "logits");
    CHECK(ti && tl && ti->ndim == 2);
    if (ti && tl) {
        size_t B = (size_t)ti->shape[0], T = (size_t)ti->shape[1], V = (size_t)m->cfg.vocab_size;
        float *fin = malloc(B * T * sizeof(float)), *want = malloc(B * T * V * sizeof(float));
        float *got = malloc(B * T * V * sizeof(float));
        int32_t *in = malloc(B * T * sizeof(int32_t));
        CHECK_OK(br_st_read_f32(ti, fin, B * T));
        CHECK_OK(br_st_read_f32(tl, want, B * T * V));
        for (size_t i = 0; i < B * T; i++) in[i] = (int32_t)fin[i];
        CHECK_OK(br_model_forward_logits(m, in, B, T, NULL, got));
        double worst = 0;
        for (size_t i = 0; i < B * T * V; i++) worst = fmax(worst, fabs(got[i] - want[i]));
        CHECK_MSG(worst < 2e-4, "Mixtral reference logits: max difference %.3g", worst);
        free(fin), free(want), free(got), free(in);
    }
    br_st_close(st);
    br_model_free(m);
}

int main(void)
{
    mixtral_reference();
    for (int k = 0; k < K_COUNT; k++) {
        finite_difference((kind_t)k);
        cached_equals_full((kind_t)k);
    }
    char root[] = "/tmp/braid_moe_test_XXXXXX";
    if (make_tmp(root)) {
        for (int k = 0; k < K_COUNT; k++) roundtrip((kind_t)k, root);
        upcycle_weights(root);
        rm_rf(root);
    }
    return th_exit();
}
