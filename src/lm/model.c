/* The dense model: parameter table, init, the projection function, the block parts, and the
 * training forward/backward (llm.c style: one allocation for parameters, one for activations,
 * no allocation inside a step once the buffers have grown to the batch shape). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/dtype.h"
#include "base/rng.h"
#include "kernels/kernels.h"
#include "lm/config_hf.h"
#include "lm/config_moe.h"
#include "lm/model_internal.h"

static br_dims_t dims_of(const br_model_config_t *c)
{
    br_dims_t d;
    d.V = (size_t)c->vocab_size;
    d.C = (size_t)c->hidden_size;
    d.F = (size_t)c->intermediate_size;
    d.L = (size_t)c->num_hidden_layers;
    d.NH = (size_t)c->num_attention_heads;
    d.NKV = (size_t)c->num_key_value_heads;
    d.hd = (size_t)c->head_dim;
    if (br_config_has_moa(c)) {
        /* a mixture of attention is one attention over every expert's heads (nn/moe.h) */
        br_moa_cfg_t a = br_config_moa(c);
        d.NH = br_moa_q_heads(&a);
        d.NKV = br_moa_kv_heads(&a);
    }
    d.Dq = d.NH * d.hd;
    d.Dkv = d.NKV * d.hd;
    d.maxpos = (size_t)c->max_position_embeddings;
    return d;
}

br_dims_t br_model_dims(const br_model_t *m) { return dims_of(&m->cfg); }

/* ---------------------------------------------------------------------------------------
 * Parameter table */

/* The table under construction: entries past `cap` are only counted (n entries, *off floats),
 * so a loader can size everything from a config before allocating anything. */
typedef struct {
    const br_model_config_t *cfg;
    br_tensor_info_t *t; /* (cap) */
    size_t cap, n;
} table_t;

static void add_tensor(table_t *tb, size_t *off, const char *name, int ndim, size_t d0, size_t d1,
                       bool is_norm)
{
    size_t numel = ndim == 2 ? d0 * d1 : d0;
    if (tb->n < tb->cap) {
        br_tensor_info_t *t = &tb->t[tb->n];
        snprintf(t->name, sizeof t->name, "%s", name);
        t->ndim = ndim;
        t->shape[0] = (int64_t)d0;
        t->shape[1] = ndim == 2 ? (int64_t)d1 : 0;
        t->numel = numel;
        t->offset = *off;
        t->decay = !is_norm;
        t->is_norm = is_norm;
    }
    tb->n++;
    /* keep every tensor 64-byte aligned (16 floats) */
    *off += (numel + 15) & ~(size_t)15;
}

/* Experts' matrices are added back to back (no padding between them) so that expert j's
 * matrix is expert 0's pointer + j * numel, the stacked layout the nn/ mixture layers take. */
static void add_experts(table_t *tb, size_t *off, const char *pattern, size_t l, size_t n,
                        const char *proj, size_t d0, size_t d1)
{
    if (n && tb->n >= tb->cap) { /* counting only: the same sizes without formatting n names */
        tb->n += n;
        *off += (n - 1) * d0 * d1 + ((d0 * d1 + 15) & ~(size_t)15);
        return;
    }
    char name[BR_TENSOR_NAME_MAX];
    for (size_t j = 0; j < n; j++) {
        size_t start = *off;
        snprintf(name, sizeof name, pattern, (int)l, (int)j, proj);
        add_tensor(tb, off, name, 2, d0, d1, false);
        if (j + 1 < n) *off = start + d0 * d1;
    }
}

/* Attention part of layer l for a mixture of attention (BAM). */
static void table_moa(table_t *tb, size_t *off, size_t l)
{
    br_moa_cfg_t a = br_config_moa(tb->cfg);
    char name[BR_TENSOR_NAME_MAX];
    size_t Dq = a.NH * a.hd, Dkv = a.NKV * a.hd;
    snprintf(name, sizeof name, BR_NAME_MOA_ROUTER, (int)l);
    add_tensor(tb, off, name, 2, a.n, a.C, false);
    add_experts(tb, off, BR_NAME_MOA_EXPERT, l, a.n, "q_proj", Dq, a.C);
    if (a.shared_kv) {
        snprintf(name, sizeof name, "model.layers.%zu.self_attn.k_proj.weight", l);
        add_tensor(tb, off, name, 2, Dkv, a.C, false);
        snprintf(name, sizeof name, "model.layers.%zu.self_attn.v_proj.weight", l);
        add_tensor(tb, off, name, 2, Dkv, a.C, false);
    } else {
        add_experts(tb, off, BR_NAME_MOA_EXPERT, l, a.n, "k_proj", Dkv, a.C);
        add_experts(tb, off, BR_NAME_MOA_EXPERT, l, a.n, "v_proj", Dkv, a.C);
    }
    add_experts(tb, off, BR_NAME_MOA_EXPERT, l, a.n, "o_proj", a.C, Dq);
}

/* FFN part of layer l for an MoE FFN (Mixtral names). */
static void table_moe(table_t *tb, size_t *off, size_t l)
{
    const br_model_config_t *c = tb->cfg;
    br_moe_cfg_t f = br_config_moe_ffn(c);
    char name[BR_TENSOR_NAME_MAX];
    if (c->router_nexus) {
        snprintf(name, sizeof name, BR_NAME_NEXUS_IN, (int)l);
        add_tensor(tb, off, name, 2, 2 * (size_t)c->nexus_hidden_size, (size_t)c->nexus_domain_dim, false);
        snprintf(name, sizeof name, BR_NAME_NEXUS_OUT, (int)l);
        add_tensor(tb, off, name, 2, f.C, (size_t)c->nexus_hidden_size, false);
    } else {
        snprintf(name, sizeof name, BR_NAME_MOE_ROUTER, (int)l);
        add_tensor(tb, off, name, 2, f.E, f.C, false);
    }
    add_experts(tb, off, BR_NAME_MOE_EXPERT, l, f.E, "w1", f.F, f.C);
    add_experts(tb, off, BR_NAME_MOE_EXPERT, l, f.E, "w3", f.F, f.C);
    add_experts(tb, off, BR_NAME_MOE_EXPERT, l, f.E, "w2", f.C, f.F);
    if (f.Fs) {
        static const char *const sp[3] = {"gate_proj", "up_proj", "down_proj"};
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, BR_NAME_MOE_SHARED, (int)l, sp[i]);
            add_tensor(tb, off, name, 2, i < 2 ? f.Fs : f.C, i < 2 ? f.C : f.Fs, false);
        }
    }
}

size_t br_model_table(const br_model_config_t *cfg, br_tensor_info_t *tensors, size_t cap,
                      size_t *n_tensors)
{
    table_t tb = {cfg, tensors, tensors ? cap : 0, 0};
    br_dims_t d = dims_of(cfg);
    size_t off = 0;
    char name[BR_TENSOR_NAME_MAX];
    add_tensor(&tb, &off, "model.embed_tokens.weight", 2, d.V, d.C, false);
    for (size_t l = 0; l < d.L; l++) {
#define T(suffix, nd, a, b, norm)                                                   \
    do {                                                                            \
        snprintf(name, sizeof name, "model.layers.%zu.%s", l, suffix);             \
        add_tensor(&tb, &off, name, nd, a, b, norm);                                \
    } while (0)
        T("input_layernorm.weight", 1, d.C, 0, true);
        if (br_config_has_moa(cfg)) {
            table_moa(&tb, &off, l);
        } else {
            T("self_attn.q_proj.weight", 2, d.Dq, d.C, false);
            T("self_attn.k_proj.weight", 2, d.Dkv, d.C, false);
            T("self_attn.v_proj.weight", 2, d.Dkv, d.C, false);
            T("self_attn.o_proj.weight", 2, d.C, d.Dq, false);
            if (cfg->qkv_bias) {
                T("self_attn.q_proj.bias", 1, d.Dq, 0, false);
                T("self_attn.k_proj.bias", 1, d.Dkv, 0, false);
                T("self_attn.v_proj.bias", 1, d.Dkv, 0, false);
            }
            if (cfg->qk_norm) {
                T("self_attn.q_norm.weight", 1, d.hd, 0, true);
                T("self_attn.k_norm.weight", 1, d.hd, 0, true);
            }
        }
        if (cfg->block == BR_BLOCK_SEQUENTIAL) T("post_attention_layernorm.weight", 1, d.C, 0, true);
        if (br_config_has_moe_ffn(cfg)) {
            table_moe(&tb, &off, l);
        } else {
            T("mlp.gate_proj.weight", 2, d.F, d.C, false);
            T("mlp.up_proj.weight", 2, d.F, d.C, false);
            T("mlp.down_proj.weight", 2, d.C, d.F, false);
        }
#undef T
    }
    add_tensor(&tb, &off, "model.norm.weight", 1, d.C, 0, true);
    if (!cfg->tie_word_embeddings) add_tensor(&tb, &off, "lm_head.weight", 2, d.V, d.C, false);
    if (cfg->router_nexus && br_config_has_moe_ffn(cfg)) {
        /* fixed (never updated: no gradient reaches them, no weight decay) */
        add_tensor(&tb, &off, BR_NAME_NEXUS_DOMAINS, 2, (size_t)cfg->num_local_experts,
                   (size_t)cfg->nexus_domain_dim, false);
        if (tb.n <= tb.cap) tensors[tb.n - 1].decay = false;
    }
    *n_tensors = tb.n;
    return off;
}

/* Points a br_weights_t into `base` following the table order of br_model_table, or, when
 * ptrs is not NULL, at ptrs[i] for tensor i (a memory-mapped checkpoint). */
static void carve(const br_model_t *m, float *base, float *const *ptrs, br_weights_t *w)
{
    if (!base && !ptrs) {
        br_layer_weights_t *keep = w->layers;
        memset(w, 0, sizeof *w);
        w->layers = keep;
        if (keep) memset(keep, 0, sizeof *keep * (size_t)m->cfg.num_hidden_layers);
        return;
    }
    size_t i = 0;
    const br_tensor_info_t *t = m->tensors;
#define AT(j) (ptrs ? ptrs[j] : base + t[j].offset)
    w->embed = AT(i++);
    for (int l = 0; l < m->cfg.num_hidden_layers; l++) {
        br_layer_weights_t *lw = &w->layers[l];
        const br_model_config_t *c = &m->cfg;
        size_t na = br_config_has_moa(c) ? (size_t)c->num_attention_experts : 1;
        size_t nkv = c->attention_shared_kv ? 1 : na;
        size_t nf = br_config_has_moe_ffn(c) ? (size_t)c->num_local_experts : 1;
        lw->attn_norm = AT(i++);
        lw->attn_router = na > 1 ? AT(i++) : NULL;
        lw->attn.wq = AT(i), i += na;
        lw->attn.wk = AT(i), i += nkv;
        lw->attn.wv = AT(i), i += nkv;
        lw->attn.wo = AT(i), i += na;
        lw->attn.bq = lw->attn.bk = lw->attn.bv = lw->attn.q_norm = lw->attn.k_norm = NULL;
        if (c->qkv_bias) {
            lw->attn.bq = AT(i++);
            lw->attn.bk = AT(i++);
            lw->attn.bv = AT(i++);
        }
        if (c->qk_norm) {
            lw->attn.q_norm = AT(i++);
            lw->attn.k_norm = AT(i++);
        }
        lw->ffn_norm = m->cfg.block == BR_BLOCK_SEQUENTIAL ? AT(i++) : NULL;
        lw->ffn_router = lw->nexus_in = lw->nexus_out = NULL;
        if (nf > 1 && c->router_nexus) {
            lw->nexus_in = AT(i++);
            lw->nexus_out = AT(i++);
        } else if (nf > 1) {
            lw->ffn_router = AT(i++);
        }
        lw->ffn.gate = AT(i), i += nf;
        lw->ffn.up = AT(i), i += nf;
        lw->ffn.down = AT(i), i += nf;
        memset(&lw->shared, 0, sizeof lw->shared);
        if (nf > 1 && c->shared_expert_intermediate_size) {
            lw->shared.gate = AT(i++);
            lw->shared.up = AT(i++);
            lw->shared.down = AT(i++);
        }
    }
    w->final_norm = AT(i++);
    w->lm_head = m->cfg.tie_word_embeddings ? w->embed : AT(i++);
    w->nexus_domains = m->cfg.router_nexus && br_config_has_moe_ffn(&m->cfg) ? AT(i++) : NULL;
#undef AT
    BR_ASSERT(i == m->n_tensors);
}

/* The model without its parameter storage: config, table, layer arrays, RoPE tables, and the
 * weights carved from `params` or pointed at `ptrs` (see carve). */
static br_status create_shell(br_model_t **out, const br_model_config_t *cfg_in, float *const *ptrs)
{
    *out = NULL;
    br_model_config_t cfg = *cfg_in;
    BR_TRY(br_config_validate(&cfg));
    br_model_t *m = calloc(1, sizeof *m);
    if (!m) return br_error(BR_ENOMEM, "out of memory");
    m->cfg = cfg;
    size_t L = (size_t)cfg.num_hidden_layers, n_tensors;
    br_model_table(&cfg, NULL, 0, &n_tensors);
    m->tensors = calloc(n_tensors, sizeof *m->tensors);
    m->proj_wt = calloc(L * BR_PROJ_COUNT, sizeof *m->proj_wt); /* BR_WT_F32 == 0 */
    m->w.layers = calloc(L, sizeof *m->w.layers);
    m->g.layers = calloc(L, sizeof *m->g.layers);
    br_dims_t d = br_model_dims(m);
    m->rope_cos = br_alloc(d.maxpos * d.hd / 2 * sizeof(float));
    m->rope_sin = br_alloc(d.maxpos * d.hd / 2 * sizeof(float));
    if (!m->tensors || !m->proj_wt || !m->w.layers || !m->g.layers || !m->rope_cos || !m->rope_sin) {
        br_model_free(m);
        return br_error(BR_ENOMEM, "out of memory");
    }
    m->n_params = br_model_table(&m->cfg, m->tensors, n_tensors, &m->n_tensors);
    if (!ptrs) {
        size_t bytes;
        if (br_mul_size(&bytes, m->n_params, sizeof(float)) || !(m->params = br_alloc(bytes))) {
            br_model_free(m);
            return br_error(BR_ENOMEM, "model: cannot allocate %zu parameters", m->n_params);
        }
    }
    carve(m, m->params, ptrs, &m->w);
    br_status ms = br_moe_rt_create(m);
    if (ms) {
        br_model_free(m);
        return ms;
    }
    br_config_rope_tables(&m->cfg, m->rope_cos, m->rope_sin);
    *out = m;
    return BR_OK;
}

br_status br_model_create(br_model_t **out, const br_model_config_t *cfg_in, bool with_grads)
{
    BR_TRY(create_shell(out, cfg_in, NULL));
    br_status s = with_grads ? br_model_alloc_grads(*out) : BR_OK;
    if (s) {
        br_model_free(*out);
        *out = NULL;
    }
    return s;
}

/* The matrix of layer l's projection p (a mixture's routed experts: expert 0 of the stack). */
static const float *proj_ptr(const br_layer_weights_t *lw, br_proj p)
{
    const float *w[BR_PROJ_COUNT] = {lw->attn.wq, lw->attn.wk, lw->attn.wv, lw->attn.wo,
                                     lw->ffn.gate, lw->ffn.up, lw->ffn.down};
    return w[p];
}

br_wtype br_model_proj_wt(const br_model_t *m, int layer, br_proj p)
{
    return layer < 0 ? m->head_wt : m->proj_wt[(size_t)layer * BR_PROJ_COUNT + p];
}

/* Index of the tensor at p in ptrs (n entries), or n. */
static size_t tensor_at(const float *p, float *const *ptrs, size_t n)
{
    size_t i = 0;
    while (i < n && ptrs[i] != p) i++;
    return i;
}

/* Sets the view's per-matrix types from wts (table order) and checks that the kernels can run
 * them: every matrix the projections, the embedding and the LM head use takes its tensor's
 * type; a mixture's routed experts of one kind must share a type and lie one after the other
 * (GGUF's 3-D stacks: nn/moe_ffn.c steps from expert to expert by the matrix's bytes); every
 * other matrix (routers, shared experts) must be F32.  covered (n) is scratch. */
static br_status set_types(br_model_t *m, float *const *ptrs, const br_wtype *wts, bool *covered)
{
    size_t n = m->n_tensors, nf = br_config_has_moe_ffn(&m->cfg) ? (size_t)m->cfg.num_local_experts : 1;
    size_t counts[BR_WT_COUNT] = {0};
    for (size_t i = 0; i < n; i++) covered[i] = m->tensors[i].ndim == 1;
    size_t ie = tensor_at(m->w.embed, ptrs, n), ih = tensor_at(m->w.lm_head, ptrs, n);
    BR_ASSERT(ie < n && ih < n);
    m->embed_wt = wts[ie], m->head_wt = wts[ih];
    covered[ie] = covered[ih] = true;
    counts[m->embed_wt]++, counts[m->head_wt] += ih != ie;
    for (int l = 0; l < m->cfg.num_hidden_layers; l++)
        for (int p = 0; p < BR_PROJ_COUNT; p++) {
            size_t i = tensor_at(proj_ptr(&m->w.layers[l], (br_proj)p), ptrs, n), ne = p >= BR_PROJ_GATE ? nf : 1;
            BR_ASSERT(i + ne <= n);
            br_wtype wt = wts[i];
            size_t rows = (size_t)m->tensors[i].shape[0], rb;
            BR_TRY(br_wtype_row_bytes(wt, (size_t)m->tensors[i].shape[1], &rb));
            for (size_t e = 0; e < ne; e++) {
                if (wts[i + e] != wt || (const uint8_t *)ptrs[i + e] != (const uint8_t *)ptrs[i] + e * rows * rb)
                    return br_error(BR_EUNSUPPORTED, "'%s' is not stored as the next matrix of its experts' stack "
                                    "of %s (load the model as F32)", m->tensors[i + e].name, br_wtype_name(wt));
                covered[i + e] = true;
            }
            m->proj_wt[(size_t)l * BR_PROJ_COUNT + p] = wt;
            counts[wt]++;
        }
    for (size_t i = 0; i < n; i++)
        if (!covered[i] && wts[i] != BR_WT_F32)
            return br_error(BR_EUNSUPPORTED, "'%s' is %s; braid runs it in F32 only (load the model as F32)",
                            m->tensors[i].name, br_wtype_name(wts[i]));
    m->wt = BR_WT_F32; /* the type most matrices have, F32 only when all are */
    for (int t = 1; t < BR_WT_COUNT; t++) {
        if (counts[t]) BR_TRY(br_kernels_matmul_check(br_kernels(), (br_wtype)t));
        if (counts[t] > (m->wt == BR_WT_F32 ? 0 : counts[m->wt])) m->wt = (br_wtype)t;
    }
    return BR_OK;
}

br_status br_model_create_view(br_model_t **out, const br_model_config_t *cfg, br_wtype wt,
                               float *const *ptrs, const br_wtype *wts)
{
    *out = NULL;
    if (br_config_has_moa(cfg) || (br_config_has_moe_ffn(cfg) && cfg->router_nexus))
        return br_error(BR_EUNSUPPORTED, "a mixture of attention experts or a Nexus router cannot run on %s "
                        "weights in place (load it as F32)", br_wtype_name(wt));
    BR_TRY(create_shell(out, cfg, ptrs));
    br_model_t *m = *out;
    br_wtype *all = wts ? NULL : malloc(m->n_tensors * sizeof *all);
    bool *covered = malloc(m->n_tensors * sizeof *covered);
    br_status s = covered && (wts || all) ? BR_OK : br_error(BR_ENOMEM, "out of memory");
    for (size_t i = 0; all && i < m->n_tensors; i++) all[i] = m->tensors[i].ndim == 1 ? BR_WT_F32 : wt;
    if (!s) s = set_types(m, ptrs, wts ? wts : all, covered);
    free(all), free(covered);
    if (s) {
        br_model_free(m);
        *out = NULL;
    }
    return s;
}

/* A view has no parameter storage of its own: what needs one refuses it. */
static br_status need_params(const br_model_t *m, const char *what)
{
    if (m->params) return BR_OK;
    return br_error(BR_EUNSUPPORTED, "%s needs F32 parameters, but this model was opened for inference "
                    "with its %s weights in place (load it with br_model_load instead)", what,
                    br_wtype_name(m->wt));
}

br_status br_model_alloc_grads(br_model_t *m)
{
    if (m->grads) return BR_OK;
    BR_TRY(need_params(m, "training"));
    m->grads = br_alloc(m->n_params * sizeof(float));
    if (!m->grads) return br_error(BR_ENOMEM, "model: cannot allocate gradients (%zu floats)", m->n_params);
    carve(m, m->grads, NULL, &m->g);
    return BR_OK;
}

static void free_acts(br_model_t *m);
void br_lm_infer_free(br_model_t *m); /* infer.c */

void br_model_free(br_model_t *m)
{
    if (!m) return;
    free_acts(m);
    br_lm_infer_free(m);
    br_lm_map_free(m->map);
    br_moe_rt_free(m);
    br_free(m->params);
    br_free(m->grads);
    br_free(m->adam_m);
    br_free(m->adam_v);
    br_free(m->rope_cos);
    br_free(m->rope_sin);
    free(m->tensors);
    free(m->proj_wt);
    free(m->w.layers);
    free(m->g.layers);
    free(m);
}

void br_model_init_random(br_model_t *m, uint64_t seed)
{
    BR_ASSERT(m->params); /* an inference view (br_model_open) has no parameters to fill */
    for (size_t i = 0; i < m->n_tensors; i++) {
        const br_tensor_info_t *t = &m->tensors[i];
        float *p = m->params + t->offset;
        if (t->is_norm) {
            for (size_t j = 0; j < t->numel; j++) p[j] = 1.0f;
        } else {
            br_rng_t r;
            br_rng_seed_stream(&r, seed, i); /* one stream per tensor: independent of order */
            br_rng_fill_normal(&r, p, t->numel, m->cfg.initializer_range);
        }
    }
}

int br_model_find_tensor(const br_model_t *m, const char *name)
{
    for (size_t i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return (int)i;
    return -1;
}

br_status br_model_check_tokens(const br_model_t *m, const int32_t *tokens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab_size)
            return br_error(BR_ERANGE, "token id %d at index %zu is outside the vocabulary [0, %d)",
                            tokens[i], i, m->cfg.vocab_size);
    return BR_OK;
}

/* ---------------------------------------------------------------------------------------
 * The projection and the block parts */

void br_model_proj_forward(float *out, const float *inp, const float *w, size_t N, size_t C,
                           size_t OC, const br_lora_hook_t *lora, int layer, br_proj proj)
{
    /* Decode rows: OpenBLAS 0.3.21's sgemm packs all of W even for one row; sgemv streams it
     * once (2.5x faster for a 8192 x 512 W on the reference machine). */
    if (N <= 2 && C <= INT32_MAX / 2 && OC <= INT32_MAX / 2) {
        for (size_t i = 0; i < N; i++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)OC, (int)C, 1.0f, w, (int)C, inp + i * C, 1,
                        0.0f, out + i * OC, 1);
    } else {
        br_linear_forward(out, inp, w, N, C, OC);
    }
    if (lora && lora->apply) lora->apply(lora, out, inp, N, C, OC, layer, proj);
}

void br_model_proj_backward(float *dinp, float *dw, const float *dout, const float *inp,
                            const float *w, size_t N, size_t C, size_t OC,
                            const br_lora_hook_t *lora, int layer, br_proj proj)
{
    br_linear_backward(dinp, dw, dout, inp, w, N, C, OC);
    if (lora && lora->backward) lora->backward(lora, dinp, dout, inp, N, C, OC, layer, proj);
}

void br_model_proj(const br_model_t *m, float *out, const float *inp, const float *w, size_t N,
                   size_t C, size_t OC, const br_lora_hook_t *lora, int layer, br_proj proj)
{
    br_wtype wt = br_model_proj_wt(m, layer, proj);
    if (wt == BR_WT_F32) {
        br_model_proj_forward(out, inp, w, N, C, OC, lora, layer, proj);
        return;
    }
    br_status s = br_matmul(wt, out, inp, w, N, C, OC);
    BR_ASSERT(s == BR_OK); /* br_model_create_view checked the table has this type */
    if (lora && lora->apply) lora->apply(lora, out, inp, N, C, OC, layer, proj);
}

void br_model_embed(const br_model_t *m, float *out, const int32_t *tokens, size_t N)
{
    size_t C = (size_t)m->cfg.hidden_size;
    br_wtype wt = m->embed_wt;
    if (wt == BR_WT_F32) {
        br_embedding_forward(out, tokens, m->w.embed, N, C);
        return;
    }
    if (wt != BR_WT_BF16 && wt != BR_WT_F16) { /* block types (br_model_quantize) */
        size_t rb;
        br_status s = br_wtype_row_bytes(wt, C, &rb);
        for (size_t i = 0; i < N && !s; i++)
            s = br_wtype_dequantize(wt, out + i * C,
                                    (const uint8_t *)(const void *)m->w.embed + (size_t)tokens[i] * rb, 1, C);
        BR_ASSERT(s == BR_OK); /* br_model_quantize checked the row size */
        return;
    }
    const uint16_t *e = (const uint16_t *)(const void *)m->w.embed;
    for (size_t i = 0; i < N; i++) {
        const uint16_t *row = e + (size_t)tokens[i] * C;
        float *o = out + i * C;
        if (wt == BR_WT_BF16)
            for (size_t c = 0; c < C; c++) o[c] = br_bf16_to_f32(row[c]);
        else
            for (size_t c = 0; c < C; c++) o[c] = br_f16_to_f32(row[c]);
    }
}

/* x (N, D) += b (D) on every row. */
static void add_bias(float *x, const float *b, size_t N, size_t D)
{
    for (size_t r = 0; r < N; r++) br_add_inplace(x + r * D, b, D);
}

/* What training keeps of the q/k RMSNorm (Qwen3) for its backward; NULL members (inference,
 * or a config without q/k norms): normalised in place. */
typedef struct {
    float *q, *k;         /* (N,Dq), (N,Dkv) the projections (+ biases) before the norm */
    float *rq, *rk;       /* (N*NH), (N*NKV) their per-head 1/rms */
} qk_pre_t;

static void attn_qkv(const br_model_t *m, int l, float *q, float *k, float *v, const float *xn,
                     const int32_t *pos, size_t N, const br_lora_hook_t *lora, const qk_pre_t *pre)
{
    br_dims_t d = br_model_dims(m);
    const br_attn_weights_t *a = &m->w.layers[l].attn;
    bool keep = a->q_norm && pre && pre->q;
    float *qp = keep ? pre->q : q, *kp = keep ? pre->k : k;
    br_model_proj(m, qp, xn, a->wq, N, d.C, d.Dq, lora, l, BR_PROJ_Q);
    br_model_proj(m, kp, xn, a->wk, N, d.C, d.Dkv, lora, l, BR_PROJ_K);
    br_model_proj(m, v, xn, a->wv, N, d.C, d.Dkv, lora, l, BR_PROJ_V);
    if (a->bq) { /* Qwen2: biases after the (LoRA-adapted) projections, as nn.Linear + PEFT */
        add_bias(qp, a->bq, N, d.Dq);
        add_bias(kp, a->bk, N, d.Dkv);
        add_bias(v, a->bv, N, d.Dkv);
    }
    if (a->q_norm) { /* Qwen3: RMSNorm over each head's hd values, before RoPE */
        float eps = m->cfg.rms_norm_eps;
        br_rmsnorm_forward(q, keep ? pre->rq : NULL, qp, a->q_norm, eps, N * d.NH, d.hd);
        br_rmsnorm_forward(k, keep ? pre->rk : NULL, kp, a->k_norm, eps, N * d.NKV, d.hd);
    }
    br_rope_forward(q, pos, m->rope_cos, m->rope_sin, N, d.NH, d.hd);
    br_rope_forward(k, pos, m->rope_cos, m->rope_sin, N, d.NKV, d.hd);
}

void br_attn_part_qkv(const br_model_t *m, int l, float *q, float *k, float *v, const float *xn,
                      const int32_t *pos, size_t N, const br_lora_hook_t *lora)
{
    if (br_moe_has_moa(m)) {
        br_moe_infer_qkv(m, l, q, k, v, xn, pos, N, lora);
        return;
    }
    attn_qkv(m, l, q, k, v, xn, pos, N, lora, NULL);
}

void br_attn_part_out(const br_model_t *m, int l, float *out, const float *ao, size_t N,
                      const br_lora_hook_t *lora)
{
    if (br_moe_has_moa(m)) {
        br_moe_infer_attn_out(m, l, out, ao, N, lora);
        return;
    }
    br_dims_t d = br_model_dims(m);
    br_model_proj(m, out, ao, m->w.layers[l].attn.wo, N, d.Dq, d.C, lora, l, BR_PROJ_O);
}

void br_ffn_part_forward(const br_model_t *m, int l, float *out, const float *xn, float *gate,
                         float *up, float *act, size_t N, const br_lora_hook_t *lora)
{
    br_dims_t d = br_model_dims(m);
    const br_ffn_weights_t *f = &m->w.layers[l].ffn;
    br_model_proj(m, gate, xn, f->gate, N, d.C, d.F, lora, l, BR_PROJ_GATE);
    br_model_proj(m, up, xn, f->up, N, d.C, d.F, lora, l, BR_PROJ_UP);
    br_swiglu_forward(act, gate, up, N * d.F);
    br_model_proj(m, out, act, f->down, N, d.F, d.C, lora, l, BR_PROJ_DOWN);
}

/* ---------------------------------------------------------------------------------------
 * Activations.  Training keeps every layer's values for backward (nslots = L); forward-only
 * calls reuse one slot for every layer. */

typedef struct {
    float *xn1;   /* (N,C) Norm1(x) */
    float *rstd1; /* (N) */
    float *q;     /* (N,Dq) after RoPE */
    float *k;     /* (N,Dkv) after RoPE */
    float *v;     /* (N,Dkv) */
    float *att;   /* (B,NH,T,T) softmax probabilities */
    float *ao;    /* (N,Dq) attention output before o_proj */
    float *h;     /* (N,C) x + attention (sequential only) */
    float *xn2;   /* (N,C) Norm2(h) (sequential only) */
    float *rstd2; /* (N) */
    float *gate;  /* (N,F) */
    float *up;    /* (N,F) */
    float *act;   /* (N,F) silu(gate) * up */
    qk_pre_t qk;  /* q/k before their RMSNorm, and its 1/rms (training with q/k norms), else NULL */
} layer_acts_t;

struct br_model_acts {
    size_t B, T;      /* shape the buffers were sized for (capacity N = B*T) */
    bool train;       /* all layers kept */
    float *mem;       /* one allocation */
    layer_acts_t *la; /* (nslots) */
    size_t nslots;
    float **x;        /* (L+1 or 2) residual stream buffers, each (N,C) */
    size_t nx;
    float *xf;        /* (N,C) final norm output */
    float *rstdf;     /* (N) */
    float *tmp;       /* (N,C) projection output before the residual add */
    float *tmp2;      /* (N,C) FFN output in parallel blocks */
    float *logits;    /* (chunk,V) head chunk */
    int32_t *pos;     /* (N) positions 0..T-1 per row */
    /* backward */
    float *dres;      /* (N,C) gradient of the residual stream */
    float *dxn;       /* (N,C) */
    float *dxf;       /* (N,C) */
    float *dq, *dk, *dv, *dao; /* (N,Dq) (N,Dkv) (N,Dkv) (N,Dq) */
    float *dgate, *dup, *dact; /* (N,F) */
    float *dkpre;     /* (N,Dkv) gradient of k before its RMSNorm (q/k norms), else NULL */
    float aux_scale;  /* multiplies the MoE auxiliary-loss gradients (the step's loss_scale) */
};

#define HEAD_CHUNK 512 /* rows of logits held at once */

static void free_acts(br_model_t *m)
{
    if (!m->acts) return;
    br_free(m->acts->mem);
    free(m->acts->la);
    free(m->acts->x);
    free(m->acts);
    m->acts = NULL;
}

static br_status ensure_acts(br_model_t *m, size_t B, size_t T, bool train)
{
    br_model_acts_t *a = m->acts;
    if (a && a->B == B && a->T == T && (a->train || !train)) return br_moe_rt_ensure(m, B, T, a->train);
    free_acts(m);
    br_dims_t d = br_model_dims(m);
    size_t N = B * T, nslots = train ? d.L : 1, nx = train ? d.L + 1 : 2;
    size_t chunk = N < HEAD_CHUNK ? N : HEAD_CHUNK;
    bool seq = m->cfg.block == BR_BLOCK_SEQUENTIAL;
    /* mixture parts keep their own activations (model_moe.c): none here for them */
    bool moa = br_moe_has_moa(m), moe = br_moe_has_ffn(m);
    size_t Dq = moa ? 0 : d.Dq, Dkv = moa ? 0 : d.Dkv, NH = moa ? 0 : d.NH, F = moe ? 0 : d.F;
    /* sizes in floats, each rounded to 16 */
#define R16(x) (((x) + 15) & ~(size_t)15)
    /* training keeps q and k before a q/k RMSNorm for its backward */
    bool qk = train && m->cfg.qk_norm && !moa;
    size_t per_slot = R16(N * d.C) + R16(N) + R16(N * Dq) * 2 + R16(N * Dkv) * 2 +
                      R16(B * NH * T * T) + (seq ? R16(N * d.C) * 2 + R16(N) : 0) + R16(N * F) * 3 +
                      (qk ? R16(N * Dq) + R16(N * Dkv) + R16(N * NH) + R16(N * d.NKV) : 0);
    size_t rest = nx * R16(N * d.C) + R16(N * d.C) * 3 + R16(N) + R16(chunk * d.V) + R16(N);
    if (train)
        rest += R16(N * d.C) * 3 + R16(N * Dq) * 2 + R16(N * Dkv) * 2 + R16(N * F) * 3 + (qk ? R16(N * Dkv) : 0);
    double total = ((double)per_slot * nslots + rest) * sizeof(float);
    if (total > 1e15) return br_error(BR_ENOMEM, "activations for B=%zu T=%zu are too large", B, T);
    a = calloc(1, sizeof *a);
    if (!a) return br_error(BR_ENOMEM, "out of memory");
    a->la = calloc(nslots, sizeof *a->la);
    a->x = calloc(nx, sizeof *a->x);
    a->mem = br_alloc((size_t)total);
    if (!a->la || !a->x || !a->mem) {
        br_free(a->mem);
        free(a->la);
        free(a->x);
        free(a);
        return br_error(BR_ENOMEM, "cannot allocate %.0f MB of activations for B=%zu T=%zu",
                        total / 1e6, B, T);
    }
    float *p = a->mem;
#define TAKE(n) (p += R16(n), p - R16(n))
    for (size_t s = 0; s < nslots; s++) {
        layer_acts_t *la = &a->la[s];
        la->xn1 = TAKE(N * d.C);
        la->rstd1 = TAKE(N);
        la->q = TAKE(N * Dq);
        la->ao = TAKE(N * Dq);
        la->k = TAKE(N * Dkv);
        la->v = TAKE(N * Dkv);
        la->att = TAKE(B * NH * T * T);
        if (seq) {
            la->h = TAKE(N * d.C);
            la->xn2 = TAKE(N * d.C);
            la->rstd2 = TAKE(N);
        }
        la->gate = TAKE(N * F);
        la->up = TAKE(N * F);
        la->act = TAKE(N * F);
        if (qk) {
            la->qk.q = TAKE(N * Dq);
            la->qk.k = TAKE(N * Dkv);
            la->qk.rq = TAKE(N * NH);
            la->qk.rk = TAKE(N * d.NKV);
        }
    }
    for (size_t i = 0; i < nx; i++) a->x[i] = TAKE(N * d.C);
    a->xf = TAKE(N * d.C);
    a->tmp = TAKE(N * d.C);
    a->tmp2 = TAKE(N * d.C);
    a->rstdf = TAKE(N);
    a->logits = TAKE(chunk * d.V);
    a->pos = (int32_t *)TAKE(N);
    if (train) {
        a->dres = TAKE(N * d.C);
        a->dxn = TAKE(N * d.C);
        a->dxf = TAKE(N * d.C);
        a->dq = TAKE(N * Dq);
        a->dao = TAKE(N * Dq);
        a->dk = TAKE(N * Dkv);
        a->dv = TAKE(N * Dkv);
        a->dgate = TAKE(N * F);
        a->dup = TAKE(N * F);
        a->dact = TAKE(N * F);
        if (qk) a->dkpre = TAKE(N * Dkv);
    }
#undef TAKE
#undef R16
    BR_ASSERT((size_t)(p - a->mem) * sizeof(float) <= (size_t)total);
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) a->pos[b * T + t] = (int32_t)t;
    a->B = B;
    a->T = T;
    a->train = train;
    a->nslots = nslots;
    a->nx = nx;
    m->acts = a;
    return br_moe_rt_ensure(m, B, T, train);
}

static br_status check_batch(br_model_t *m, const int32_t *inputs, const int32_t *targets,
                             size_t B, size_t T)
{
    if (B == 0 || T == 0) return br_error(BR_EINVAL, "empty batch (B=%zu, T=%zu)", B, T);
    if (T > (size_t)m->cfg.max_position_embeddings)
        return br_error(BR_ERANGE, "sequence length %zu is longer than the context (max_position_embeddings %d)",
                        T, m->cfg.max_position_embeddings);
    BR_TRY(br_model_check_tokens(m, inputs, B * T));
    if (targets)
        for (size_t i = 0; i < B * T; i++)
            if (targets[i] >= m->cfg.vocab_size)
                return br_error(BR_ERANGE, "target id %d at index %zu is outside the vocabulary [0, %d)",
                                targets[i], i, m->cfg.vocab_size);
    return BR_OK;
}

/* Forward through the blocks; leaves the final normed rows in a->xf. */
static void forward_blocks(br_model_t *m, const int32_t *inputs, const br_lora_hook_t *lora)
{
    br_model_acts_t *a = m->acts;
    br_dims_t d = br_model_dims(m);
    size_t B = a->B, T = a->T, N = B * T;
    float eps = m->cfg.rms_norm_eps;
    bool seq = m->cfg.block == BR_BLOCK_SEQUENTIAL;
    br_model_embed(m, a->x[0], inputs, N);
    for (size_t l = 0; l < d.L; l++) {
        layer_acts_t *la = &a->la[l % a->nslots];
        const br_layer_weights_t *lw = &m->w.layers[l];
        float *x = a->x[l % a->nx], *y = a->x[(l + 1) % a->nx];
        size_t slot = l % a->nslots;
        br_rmsnorm_forward(la->xn1, la->rstd1, x, lw->attn_norm, eps, N, d.C);
        if (br_moe_has_moa(m)) {
            br_moe_attn_part(m, (int)l, slot, a->tmp, la->xn1, B, T, lora);
        } else {
            attn_qkv(m, (int)l, la->q, la->k, la->v, la->xn1, a->pos, N, lora, &la->qk);
            br_attention_forward(la->ao, la->att, la->q, la->k, la->v, B, T, d.NH, d.NKV, d.hd);
            br_attn_part_out(m, (int)l, a->tmp, la->ao, N, lora);
        }
        if (seq) {
            br_add(la->h, x, a->tmp, N * d.C);
            br_rmsnorm_forward(la->xn2, la->rstd2, la->h, lw->ffn_norm, eps, N, d.C);
            if (br_moe_has_ffn(m)) br_moe_ffn_part(m, (int)l, slot, a->tmp, la->xn2, N, lora);
            else br_ffn_part_forward(m, (int)l, a->tmp, la->xn2, la->gate, la->up, la->act, N, lora);
            br_add(y, la->h, a->tmp, N * d.C);
        } else {
            if (br_moe_has_ffn(m)) br_moe_ffn_part(m, (int)l, slot, a->tmp2, la->xn1, N, lora);
            else br_ffn_part_forward(m, (int)l, a->tmp2, la->xn1, la->gate, la->up, la->act, N, lora);
            br_add(y, x, a->tmp, N * d.C);
            br_add_inplace(y, a->tmp2, N * d.C);
        }
    }
    br_rmsnorm_forward(a->xf, a->rstdf, a->x[d.L % a->nx], m->w.final_norm, eps, N, d.C);
}

/* br_model_proj_backward for a matrix of the model's weight type: a frozen 16-bit or block-
 * quantised matrix (a base run in its stored type, LoRA-only training) passes its input
 * gradient through br_matmul_dinp and has no weight gradient (dw NULL; br_model_train_step
 * checked the type is supported). */
static void proj_backward(const br_model_t *m, float *dinp, float *dw, const float *dout, const float *inp,
                          const float *w, size_t N, size_t C, size_t OC, const br_lora_hook_t *lora, int layer,
                          br_proj proj)
{
    br_wtype wt = br_model_proj_wt(m, layer, proj);
    if (wt == BR_WT_F32) {
        br_model_proj_backward(dinp, dw, dout, inp, w, N, C, OC, lora, layer, proj);
        return;
    }
    BR_ASSERT(!dw);
    br_status s = br_matmul_dinp(wt, dinp, dout, w, N, C, OC);
    BR_ASSERT(s == BR_OK);
    if (lora && lora->backward) lora->backward(lora, dinp, dout, inp, N, C, OC, layer, proj);
}

/* logits (N,V) = xf (N,C) lm_head^T (the F32 call as before; other types through the table). */
static void head_rows(const br_model_t *m, float *logits, const float *xf, size_t N)
{
    br_dims_t d = br_model_dims(m);
    if (m->head_wt == BR_WT_F32) br_linear_forward(logits, xf, m->w.lm_head, N, d.C, d.V);
    else br_model_proj(m, logits, xf, m->w.lm_head, N, d.C, d.V, NULL, -1, BR_PROJ_COUNT);
}

/* LM head + cross-entropy in row chunks (the (N,V) logits never exist at once).  With
 * bwd also backward of the head: dxf += dlogits Wh, dWh += (when dwh). */
static double head_loss(br_model_t *m, const int32_t *targets, float *losses, bool bwd,
                        float dscale, float *dwh, size_t *count_out)
{
    br_model_acts_t *a = m->acts;
    br_dims_t d = br_model_dims(m);
    size_t N = a->B * a->T;
    double sum = 0;
    size_t count = 0;
    for (size_t r0 = 0; r0 < N; r0 += HEAD_CHUNK) {
        size_t n = N - r0 < HEAD_CHUNK ? N - r0 : HEAD_CHUNK;
        head_rows(m, a->logits, a->xf + r0 * d.C, n);
        /* training: loss and dlogits = dscale * (softmax - onehot) in one pass, in place */
        float mean = bwd ? br_xent_fused(losses + r0, a->logits, a->logits, targets + r0, dscale, n, d.V)
                         : br_xent_forward(losses + r0, a->logits, a->logits, targets + r0, n, d.V);
        size_t c = 0;
        for (size_t i = 0; i < n; i++) c += targets[r0 + i] >= 0;
        sum += (double)mean * (double)c;
        count += c;
        if (bwd)
            proj_backward(m, a->dxf + r0 * d.C, dwh, a->logits, a->xf + r0 * d.C, m->w.lm_head, n, d.C,
                          d.V, NULL, -1, BR_PROJ_COUNT);
    }
    *count_out = count;
    return sum;
}

br_status br_model_forward_loss(br_model_t *m, const int32_t *inputs, const int32_t *targets,
                                size_t B, size_t T, const br_lora_hook_t *lora, float *losses,
                                float *mean_loss)
{
    BR_TRY(check_batch(m, inputs, targets, B, T));
    BR_TRY(ensure_acts(m, B, T, false));
    forward_blocks(m, inputs, lora);
    size_t count;
    double sum = head_loss(m, targets, losses, false, 0, NULL, &count);
    if (mean_loss) *mean_loss = count ? (float)(sum / (double)count) : 0.0f;
    return BR_OK;
}

br_status br_model_forward_hidden(br_model_t *m, const int32_t *inputs, size_t B, size_t T,
                                  float *hidden)
{
    BR_TRY(check_batch(m, inputs, NULL, B, T));
    BR_TRY(ensure_acts(m, B, T, false));
    forward_blocks(m, inputs, NULL);
    memcpy(hidden, m->acts->xf, B * T * (size_t)m->cfg.hidden_size * sizeof(float));
    return BR_OK;
}

br_status br_model_forward_ffn_inputs(br_model_t *m, const int32_t *inputs, size_t B, size_t T,
                                      float *xn)
{
    BR_TRY(check_batch(m, inputs, NULL, B, T));
    BR_TRY(ensure_acts(m, B, T, true)); /* training activations: one slot per layer */
    forward_blocks(m, inputs, NULL);
    br_dims_t d = br_model_dims(m);
    size_t N = B * T;
    bool seq = m->cfg.block == BR_BLOCK_SEQUENTIAL;
    for (size_t l = 0; l < d.L; l++)
        memcpy(xn + l * N * d.C, seq ? m->acts->la[l].xn2 : m->acts->la[l].xn1, N * d.C * sizeof(float));
    return BR_OK;
}

br_status br_model_forward_logits(br_model_t *m, const int32_t *inputs, size_t B, size_t T,
                                  const br_lora_hook_t *lora, float *logits)
{
    BR_TRY(check_batch(m, inputs, NULL, B, T));
    BR_TRY(ensure_acts(m, B, T, false));
    forward_blocks(m, inputs, lora);
    head_rows(m, logits, m->acts->xf, B * T);
    return BR_OK;
}

void br_model_zero_grad(br_model_t *m)
{
    if (m->grads) memset(m->grads, 0, m->n_params * sizeof(float));
}

/* Backward of the FFN part: dxn (N,C) += d/dxn given dout (N,C). */
static void ffn_part_backward(br_model_t *m, int l, float *dxn, const float *dout,
                              const float *xn, const layer_acts_t *la, size_t N,
                              const br_lora_hook_t *lora, bool base, bool routers)
{
    br_model_acts_t *a = m->acts;
    br_dims_t d = br_model_dims(m);
    if (br_moe_has_ffn(m)) {
        br_moe_ffn_part_backward(m, l, dxn, dout, xn, N, base, routers, a->aux_scale, lora);
        return;
    }
    const br_ffn_weights_t *f = &m->w.layers[l].ffn;
    const br_ffn_weights_t *g = &m->g.layers[l].ffn;
    memset(a->dact, 0, N * d.F * sizeof(float));
    proj_backward(m, a->dact, base ? g->down : NULL, dout, la->act, f->down, N, d.F, d.C, lora, l, BR_PROJ_DOWN);
    memset(a->dgate, 0, N * d.F * sizeof(float));
    memset(a->dup, 0, N * d.F * sizeof(float));
    br_swiglu_backward(a->dgate, a->dup, a->dact, la->gate, la->up, N * d.F);
    proj_backward(m, dxn, base ? g->gate : NULL, a->dgate, xn, f->gate, N, d.C, d.F, lora, l, BR_PROJ_GATE);
    proj_backward(m, dxn, base ? g->up : NULL, a->dup, xn, f->up, N, d.C, d.F, lora, l, BR_PROJ_UP);
}

/* db (D) += the column sums of dout (N,D): the gradient of a bias added to every row. */
static void bias_backward(float *db, const float *dout, size_t N, size_t D)
{
    for (size_t r = 0; r < N; r++) br_add_inplace(db, dout + r * D, D);
}

/* Backward of the attention part: dxn (N,C) += d/dxn given dout (N,C). */
static void attn_part_backward(br_model_t *m, int l, float *dxn, const float *dout,
                               const float *xn, const layer_acts_t *la,
                               const br_lora_hook_t *lora, bool base, bool routers)
{
    br_model_acts_t *a = m->acts;
    br_dims_t d = br_model_dims(m);
    size_t B = a->B, T = a->T, N = B * T;
    if (br_moe_has_moa(m)) {
        br_moe_attn_part_backward(m, l, dxn, dout, xn, B, T, base, routers, a->aux_scale, lora);
        return;
    }
    const br_attn_weights_t *w = &m->w.layers[l].attn;
    const br_attn_weights_t *g = &m->g.layers[l].attn;
    memset(a->dao, 0, N * d.Dq * sizeof(float));
    proj_backward(m, a->dao, base ? g->wo : NULL, dout, la->ao, w->wo, N, d.Dq, d.C, lora, l, BR_PROJ_O);
    memset(a->dq, 0, N * d.Dq * sizeof(float));
    memset(a->dk, 0, N * d.Dkv * sizeof(float));
    memset(a->dv, 0, N * d.Dkv * sizeof(float));
    br_attention_backward(a->dq, a->dk, a->dv, a->dao, la->att, la->q, la->k, la->v, B, T, d.NH, d.NKV, d.hd);
    br_rope_backward(a->dq, a->pos, m->rope_cos, m->rope_sin, N, d.NH, d.hd);
    br_rope_backward(a->dk, a->pos, m->rope_cos, m->rope_sin, N, d.NKV, d.hd);
    float *dq = a->dq, *dk = a->dk; /* gradients of the projections (+ biases) */
    if (w->q_norm) {
        /* Qwen3: back through the per-head RMSNorm; dao is free again (attention is done) */
        dq = a->dao, dk = a->dkpre;
        memset(dq, 0, N * d.Dq * sizeof(float));
        memset(dk, 0, N * d.Dkv * sizeof(float));
        br_rmsnorm_backward(dq, base ? g->q_norm : NULL, a->dq, la->qk.q, w->q_norm, la->qk.rq, N * d.NH, d.hd);
        br_rmsnorm_backward(dk, base ? g->k_norm : NULL, a->dk, la->qk.k, w->k_norm, la->qk.rk, N * d.NKV, d.hd);
    }
    if (w->bq && base) { /* Qwen2: a bias's gradient is its output's, summed over rows */
        bias_backward(g->bq, dq, N, d.Dq);
        bias_backward(g->bk, dk, N, d.Dkv);
        bias_backward(g->bv, a->dv, N, d.Dkv);
    }
    proj_backward(m, dxn, base ? g->wq : NULL, dq, xn, w->wq, N, d.C, d.Dq, lora, l, BR_PROJ_Q);
    proj_backward(m, dxn, base ? g->wk : NULL, dk, xn, w->wk, N, d.C, d.Dkv, lora, l, BR_PROJ_K);
    proj_backward(m, dxn, base ? g->wv : NULL, a->dv, xn, w->wv, N, d.C, d.Dkv, lora, l, BR_PROJ_V);
}

br_status br_model_train_step(br_model_t *m, const int32_t *inputs, const int32_t *targets,
                              size_t B, size_t T, const br_train_opts_t *opts, float *loss)
{
    br_train_opts_t dflt = {NULL, true, 1.0f, false};
    if (!opts) opts = &dflt;
    bool base = opts->train_base, routers = base || opts->train_routers;
    if (routers || !opts->lora) BR_TRY(need_params(m, base ? "training the base weights" : "training the routers"));
    else /* a frozen base in its stored types: their input gradients must exist */
        for (size_t i = 0; i <= (size_t)m->cfg.num_hidden_layers * BR_PROJ_COUNT; i++) {
            br_wtype wt = i < (size_t)m->cfg.num_hidden_layers * BR_PROJ_COUNT ? m->proj_wt[i] : m->head_wt;
            if (wt != BR_WT_F32) BR_TRY(br_matmul_dinp(wt, NULL, NULL, NULL, 0, 0, 0));
        }
    if (routers && !m->grads) BR_TRY(br_model_alloc_grads(m));
    if (!targets) return br_error(BR_EINVAL, "training needs targets");
    BR_TRY(check_batch(m, inputs, targets, B, T));
    BR_TRY(ensure_acts(m, B, T, true));
    br_model_acts_t *a = m->acts;
    br_dims_t d = br_model_dims(m);
    size_t N = B * T;
    const br_lora_hook_t *lora = opts->lora;
    a->aux_scale = opts->loss_scale;
    forward_blocks(m, inputs, lora);

    size_t count = 0;
    for (size_t i = 0; i < N; i++) count += targets[i] >= 0;
    float dscale = count ? opts->loss_scale / (float)count : 0.0f;
    memset(a->dxf, 0, N * d.C * sizeof(float));
    size_t c2;
    /* the per-row losses go to dres, free until the backward starts */
    double sum = head_loss(m, targets, a->dres, true, dscale, base ? m->g.lm_head : NULL, &c2);
    *loss = count ? (float)(sum / (double)count) : 0.0f;

    memset(a->dres, 0, N * d.C * sizeof(float));
    br_rmsnorm_backward(a->dres, base ? m->g.final_norm : NULL, a->dxf, a->x[d.L], m->w.final_norm, a->rstdf, N, d.C);
    bool seq = m->cfg.block == BR_BLOCK_SEQUENTIAL;
    for (size_t li = d.L; li-- > 0;) {
        int l = (int)li;
        const layer_acts_t *la = &a->la[li];
        const br_layer_weights_t *lw = &m->w.layers[li];
        br_layer_weights_t *lg = &m->g.layers[li];
        if (seq) {
            /* y = h + FFN(Norm2(h)): dres is dy; after this it is dh */
            memset(a->dxn, 0, N * d.C * sizeof(float));
            ffn_part_backward(m, l, a->dxn, a->dres, la->xn2, la, N, lora, base, routers);
            br_rmsnorm_backward(a->dres, base ? lg->ffn_norm : NULL, a->dxn, la->h, lw->ffn_norm, la->rstd2, N, d.C);
            memset(a->dxn, 0, N * d.C * sizeof(float));
            attn_part_backward(m, l, a->dxn, a->dres, la->xn1, la, lora, base, routers);
        } else {
            memset(a->dxn, 0, N * d.C * sizeof(float));
            ffn_part_backward(m, l, a->dxn, a->dres, la->xn1, la, N, lora, base, routers);
            attn_part_backward(m, l, a->dxn, a->dres, la->xn1, la, lora, base, routers);
        }
        br_rmsnorm_backward(a->dres, base ? lg->attn_norm : NULL, a->dxn, a->x[li], lw->attn_norm, la->rstd1, N, d.C);
    }
    if (base) br_embedding_backward(m->g.embed, a->dres, inputs, N, d.C);
    return BR_OK;
}

br_status br_model_adamw(br_model_t *m, const br_adamw_opts_t *o, float *grad_norm)
{
    if (!m->grads) return br_error(BR_EINVAL, "model has no gradients");
    if (!m->adam_m) {
        m->adam_m = br_alloc(m->n_params * sizeof(float));
        m->adam_v = br_alloc(m->n_params * sizeof(float));
        if (!m->adam_m || !m->adam_v) {
            br_free(m->adam_m);
            br_free(m->adam_v);
            m->adam_m = m->adam_v = NULL;
            return br_error(BR_ENOMEM, "cannot allocate AdamW state (%zu floats)", m->n_params);
        }
    }
    float norm = br_clip_grad_norm(m->grads, m->n_params, o->clip);
    if (grad_norm) *grad_norm = norm;
    int t = (int)(m->step + 1);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const br_tensor_info_t *ti = &m->tensors[i];
        br_adamw_step(m->params + ti->offset, m->grads + ti->offset, m->adam_m + ti->offset,
                      m->adam_v + ti->offset, ti->numel, o->lr, o->beta1, o->beta2, o->eps,
                      ti->decay ? o->weight_decay : 0.0f, t);
    }
    m->step++;
    return BR_OK;
}
