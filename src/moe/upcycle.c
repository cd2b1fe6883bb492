/* Upcycling dense checkpoints into an MoE, and adding an expert later (moe/upcycle.h). */
#include "moe/upcycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/fileio.h"
#include "base/rng.h"
#include "base/safetensors.h"
#include "lm/config_moe.h"
#include "lm/model.h"

static const char *const method_names[] = {"sparse", "btx", "bam", "bam-shared-kv", "nexus"};

br_status br_upcycle_method_parse(const char *name, br_upcycle_method *out)
{
    for (int i = 0; i < 5; i++)
        if (name && !strcmp(name, method_names[i])) {
            *out = (br_upcycle_method)i;
            return BR_OK;
        }
    return br_error(BR_EINVAL, "unknown upcycling method '%s' (use sparse, btx, bam, bam-shared-kv or nexus)",
                    name ? name : "");
}

const char *br_upcycle_method_name(br_upcycle_method m)
{
    return (unsigned)m < 5 ? method_names[m] : "?";
}

/* ---- checkpoints ---- */

typedef struct {
    const char *dir; /* the caller's string (upcycle options), for messages */
    br_model_config_t cfg;
    br_safetensors_t *st;
} ckpt_t;

static br_status ckpt_open(ckpt_t *c, const char *dir, const char *what)
{
    memset(c, 0, sizeof *c);
    if (!dir || !*dir) return br_error(BR_EINVAL, "%s: no checkpoint directory given", what);
    if (!br_dir_exists(dir)) return br_error(BR_ENOTFOUND, "%s: '%s' is not a directory", what, dir);
    c->dir = dir;
    br_buf_t path = BR_BUF_INIT;
    br_status s = br_buf_path(&path, dir, "config.json");
    if (!s) s = br_config_load(&c->cfg, br_buf_str(&path));
    if (!s) s = br_buf_path(&path, dir, "model.safetensors");
    if (!s) s = br_st_open(&c->st, br_buf_str(&path));
    br_buf_free(&path);
    if (s) return br_error_wrap(s, "%s", what);
    /* every tensor the config needs, with its shape (the lm loader checks them all): a missing
     * or mis-shaped tensor is named here instead of being copied into the output */
    br_model_t *m = NULL;
    s = br_model_load(&m, dir, false);
    br_model_free(m);
    if (s) return br_error_wrap(s, "%s", what);
    return BR_OK;
}

static void ckpt_close(ckpt_t *c)
{
    br_st_close(c->st);
    c->st = NULL;
}

br_status br_upcycle_check_compatible(const br_model_config_t *b, const br_model_config_t *x,
                                      const char *what)
{
#define SAME(field)                                                                               \
    if (b->field != x->field)                                                                      \
        return br_error(BR_EINVAL, "%s: " #field " is %d but the base has %d: experts must be "    \
                        "branches of the same seed", what, (int)x->field, (int)b->field);
    SAME(vocab_size) SAME(hidden_size) SAME(intermediate_size) SAME(num_hidden_layers)
    SAME(num_attention_heads) SAME(num_key_value_heads) SAME(head_dim) SAME(tie_word_embeddings)
#undef SAME
    if (b->block != x->block)
        return br_error(BR_EINVAL, "%s: block type is %s but the base's is %s", what,
                        x->block == BR_BLOCK_PARALLEL ? "parallel" : "sequential",
                        b->block == BR_BLOCK_PARALLEL ? "parallel" : "sequential");
    return BR_OK;
}

static bool is_dense(const br_model_config_t *c)
{
    return !br_config_has_moe_ffn(c) && !br_config_has_moa(c);
}

/* ---- tensor helpers (output buffers live in an arena until the writer saved) ---- */

typedef struct {
    br_st_writer_t *w;
    br_arena_t arena;
    br_rng_t rng;
} out_t;

static br_status read_f32(br_arena_t *a, const br_st_tensor_t *t, float **out)
{
    *out = br_arena_alloc(a, (t->numel ? t->numel : 1) * sizeof(float));
    if (!*out) return br_error(BR_ENOMEM, "out of memory reading '%s'", t->name);
    return br_st_read_f32(t, *out, t->numel);
}

static const br_st_tensor_t *need(const ckpt_t *c, const char *name, const br_st_tensor_t *like,
                                  br_status *s)
{
    const br_st_tensor_t *t = br_st_find(c->st, name);
    if (!t) {
        *s = br_error(BR_EFORMAT, "%s: tensor '%s' is missing", c->dir, name);
        return NULL;
    }
    if (like && (t->ndim != like->ndim || t->numel != like->numel ||
                 memcmp(t->shape, like->shape, (size_t)t->ndim * sizeof(int64_t)))) {
        *s = br_error(BR_EFORMAT, "%s: tensor '%s' has a different shape than the base's", c->dir, name);
        return NULL;
    }
    return t;
}

static br_status put(out_t *o, const char *name, int ndim, const int64_t *shape, const float *d)
{
    return br_st_writer_add_f32(o->w, name, BR_DT_F32, ndim, shape, d);
}

/* Element-wise weighted sum over checkpoints of tensor `name`: out = sum_i wts[i] * src_i. */
static br_status put_mix(out_t *o, const char *out_name, const char *name, ckpt_t *const *src,
                         const double *wts, size_t n)
{
    br_status s = BR_OK;
    const br_st_tensor_t *t0 = need(src[0], name, NULL, &s);
    if (!t0) return s;
    float *acc = br_arena_alloc(&o->arena, (t0->numel ? t0->numel : 1) * sizeof(float));
    float *tmp = malloc((t0->numel ? t0->numel : 1) * sizeof(float));
    if (!acc || !tmp) {
        free(tmp);
        return br_error(BR_ENOMEM, "out of memory merging '%s'", name);
    }
    for (size_t i = 0; i < n && s == BR_OK; i++) {
        const br_st_tensor_t *t = need(src[i], name, t0, &s);
        if (!t) break;
        s = br_st_read_f32(t, tmp, t->numel);
        for (size_t j = 0; s == BR_OK && j < t->numel; j++) acc[j] += (float)wts[i] * tmp[j];
    }
    free(tmp);
    if (s) return s;
    return put(o, out_name, t0->ndim, t0->shape, acc);
}

static br_status put_copy(out_t *o, const char *out_name, ckpt_t *src, const char *name)
{
    double one = 1;
    return put_mix(o, out_name, name, &src, &one, 1);
}

static br_status put_random(out_t *o, const char *name, int64_t d0, int64_t d1, float std)
{
    float *p = br_arena_alloc(&o->arena, (size_t)(d0 * d1) * sizeof(float));
    if (!p) return br_error(BR_ENOMEM, "out of memory");
    br_rng_fill_normal(&o->rng, p, (size_t)(d0 * d1), std);
    int64_t shape[2] = {d0, d1};
    return put(o, name, 2, shape, p);
}

static br_status put_rows(out_t *o, const char *name, const float *rows, int64_t d0, int64_t d1)
{
    float *p = br_arena_alloc(&o->arena, (size_t)(d0 * d1) * sizeof(float));
    if (!p) return br_error(BR_ENOMEM, "out of memory");
    memcpy(p, rows, (size_t)(d0 * d1) * sizeof(float));
    int64_t shape[2] = {d0, d1};
    return put(o, name, 2, shape, p);
}

/* Tensor kinds of a dense Llama checkpoint. */
typedef enum { T_OTHER, T_ATTN, T_FFN } tkind;
static tkind classify(const char *name, int *layer, char *proj /* [16] */)
{
    char rest[64];
    int n = 0;
    if (sscanf(name, "model.layers.%d.mlp.%15[a-z]_proj.weigh%1[t]%n", layer, proj, rest, &n) == 3 && !name[n])
        return T_FFN;
    if (sscanf(name, "model.layers.%d.self_attn.%15[a-z]_proj.weigh%1[t]%n", layer, proj, rest, &n) == 3 && !name[n])
        return T_ATTN;
    return T_OTHER;
}

static const char *mixtral_w(const char *proj)
{
    return !strcmp(proj, "gate") ? "w1" : !strcmp(proj, "down") ? "w2" : "w3";
}

static br_status write_all(out_t *o, const char *dir, const br_model_config_t *cfg)
{
    BR_TRY(br_mkdir_p(dir));
    br_buf_t path = BR_BUF_INIT;
    br_status s = br_buf_path(&path, dir, "model.safetensors");
    if (!s) s = br_st_writer_save(o->w, br_buf_str(&path));
    if (!s) s = br_buf_path(&path, dir, "config.json");
    if (!s) s = br_config_save(cfg, br_buf_str(&path));
    br_buf_free(&path);
    return s;
}

/* ---- upcycle ---- */

static br_status check_opts(const br_upcycle_opts_t *o, const ckpt_t *base, ckpt_t *ex,
                            size_t *E_out)
{
    br_upcycle_method m = o->method;
    if ((unsigned)m >= 5) return br_error(BR_EINVAL, "unknown upcycling method %d", (int)m);
    if (!o->out || !*o->out) return br_error(BR_EINVAL, "upcycle: no output directory given");
    if (!is_dense(&base->cfg)) return br_error(BR_EINVAL, "upcycle: the base %s is already a mixture of experts", base->dir);
    if (m != BR_UPCYCLE_SPARSE && o->n_experts == 0)
        return br_error(BR_EINVAL, "upcycle --method %s: no experts given (--experts DIR,DIR,...)", br_upcycle_method_name(m));
    for (size_t i = 0; i < o->n_experts; i++) {
        br_buf_t what = BR_BUF_INIT;
        br_status s = br_buf_printf(&what, "expert %s", ex[i].dir);
        if (!s) s = br_upcycle_check_compatible(&base->cfg, &ex[i].cfg, br_buf_str(&what));
        if (!s && !is_dense(&ex[i].cfg))
            s = br_error(BR_EINVAL, "%s is a mixture of experts, not a dense expert", br_buf_str(&what));
        br_buf_free(&what);
        BR_TRY(s);
    }
    size_t E = m == BR_UPCYCLE_SPARSE ? (o->num_experts > 0 ? (size_t)o->num_experts : o->n_experts ? o->n_experts : 4)
                                      : o->n_experts + (o->base_as_expert ? 1 : 0);
    if (E < 2) return br_error(BR_EINVAL, "upcycle: a mixture needs at least 2 experts (got %zu)", E);
    if (E > 256) return br_error(BR_EINVAL, "upcycle: %zu experts is more than 256", E);
    if (o->top_k < 0 || (size_t)o->top_k > E)
        return br_error(BR_EINVAL, "upcycle: --top-k %d must be between 1 and the number of experts (%zu)", o->top_k, E);
    if ((m == BR_UPCYCLE_BAM || m == BR_UPCYCLE_BAM_SHARED_KV) && base->cfg.block != BR_BLOCK_PARALLEL)
        return br_error(BR_EINVAL, "upcycle --method %s needs parallel blocks (BAM): train the seed with --block parallel",
                        br_upcycle_method_name(m));
    if (m == BR_UPCYCLE_NEXUS) {
        if (o->base_as_expert) return br_error(BR_EINVAL, "upcycle --method nexus: the base is already the shared expert; drop --base-as-expert");
        if (!o->check_only && (!o->domain_emb || o->domain_dim <= 0))
            return br_error(BR_EINVAL, "upcycle --method nexus: domain embeddings are required (one per expert)");
    }
    if (o->shared_expert && m != BR_UPCYCLE_BTX && m != BR_UPCYCLE_SPARSE)
        return br_error(BR_EINVAL, "upcycle --shared-expert: only for btx and sparse (nexus always has one)");
    if (!(o->alpha >= 0) || !(o->beta >= 0)) return br_error(BR_EINVAL, "upcycle: loss coefficients must be >= 0");
    *E_out = E;
    return BR_OK;
}

/* The mixture's config: the seed's, plus E experts, top-k, router coefficients and the method's
 * extras (attention experts, Nexus sizes); BR_EINVAL when the result is inconsistent. */
static br_status mixture_config(const br_upcycle_opts_t *o, const br_model_config_t *base, size_t E,
                                br_model_config_t *out)
{
    br_upcycle_method m = o->method;
    br_model_config_t cfg = *base;
    int k = o->top_k ? o->top_k : m == BR_UPCYCLE_BTX || m == BR_UPCYCLE_SPARSE ? 2 : 1;
    cfg.num_local_experts = (int)E;
    cfg.num_experts_per_tok = k;
    cfg.norm_topk_prob = o->renorm < 0 ? k > 1 : o->renorm != 0;
    cfg.router_aux_loss_coef = o->alpha;
    cfg.router_z_loss_coef = o->beta;
    if (m == BR_UPCYCLE_BAM || m == BR_UPCYCLE_BAM_SHARED_KV) {
        cfg.num_attention_experts = (int)E;
        cfg.attention_shared_kv = m == BR_UPCYCLE_BAM_SHARED_KV;
    }
    if (m == BR_UPCYCLE_NEXUS) {
        cfg.router_nexus = 1;
        cfg.nexus_domain_dim = o->domain_dim;
        cfg.nexus_hidden_size = o->nexus_hidden > 0 ? o->nexus_hidden : cfg.hidden_size;
        cfg.shared_expert_intermediate_size = cfg.intermediate_size;
    }
    if (o->shared_expert) cfg.shared_expert_intermediate_size = cfg.intermediate_size;
    char bad[512] = "";
    size_t nb = 0;
    br_config_moe_validate(&cfg, bad, sizeof bad, &nb);
    if (nb) return br_error(BR_EINVAL, "upcycle: %s", bad + 2);
    *out = cfg;
    return BR_OK;
}

br_status br_upcycle(const br_upcycle_opts_t *o, br_model_config_t *out_cfg)
{
    ckpt_t base;
    ckpt_t *ex = calloc(o->n_experts ? o->n_experts : 1, sizeof *ex);
    ckpt_t **srcs = calloc(o->n_experts + 1, sizeof *srcs);
    double *wts = calloc(o->n_experts + 1, sizeof *wts);
    out_t out = {0};
    br_arena_init(&out.arena, 1 << 20);
    br_status s = BR_OK;
    memset(&base, 0, sizeof base);
    if (!ex || !srcs || !wts) {
        s = br_error(BR_ENOMEM, "out of memory");
        goto done;
    }
    if ((s = ckpt_open(&base, o->base, "base"))) goto done;
    for (size_t i = 0; i < o->n_experts; i++) {
        char what[64];
        snprintf(what, sizeof what, "expert %zu", i + 1);
        if ((s = ckpt_open(&ex[i], o->experts[i], what))) goto done;
    }
    size_t E = 0;
    if ((s = check_opts(o, &base, ex, &E)) || o->check_only) goto done;

    br_upcycle_method m = o->method;
    bool bam = m == BR_UPCYCLE_BAM || m == BR_UPCYCLE_BAM_SHARED_KV;
    br_model_config_t cfg;
    if ((s = mixture_config(o, &base.cfg, E, &cfg))) goto done;
    /* expert slot -> checkpoint (sparse: the base every time) and the merge set */
    size_t nsrc = 0;
    ckpt_t *slot[256];
    for (size_t j = 0; j < E; j++)
        slot[j] = m == BR_UPCYCLE_SPARSE ? &base
                  : o->base_as_expert ? (j == 0 ? &base : &ex[j - 1]) : &ex[j];
    if (m == BR_UPCYCLE_SPARSE) {
        srcs[nsrc++] = &base;
    } else {
        for (size_t j = 0; j < E; j++) srcs[nsrc++] = slot[j];
    }
    for (size_t i = 0; i < nsrc; i++) wts[i] = 1.0 / (double)nsrc;

    if ((s = br_st_writer_create(&out.w))) goto done;
    br_rng_seed(&out.rng, o->seed);
    float std = base.cfg.initializer_range > 0 ? base.cfg.initializer_range : 0.02f;
    int64_t C = cfg.hidden_size;
    char name[256];
    for (size_t i = 0; i < br_st_count(base.st) && s == BR_OK; i++) {
        const char *tn = br_st_tensor(base.st, i)->name;
        int l;
        char proj[16];
        tkind kind = classify(tn, &l, proj);
        if (kind == T_FFN) {
            for (size_t j = 0; j < E && s == BR_OK; j++) {
                snprintf(name, sizeof name, BR_NAME_MOE_EXPERT, l, (int)j, mixtral_w(proj));
                s = put_copy(&out, name, slot[j], tn);
            }
            if (s == BR_OK && (m == BR_UPCYCLE_NEXUS || o->shared_expert)) {
                char sp[32];
                snprintf(sp, sizeof sp, "%s_proj", proj);
                snprintf(name, sizeof name, BR_NAME_MOE_SHARED, l, sp);
                s = put_copy(&out, name, &base, tn);
            }
            /* one router per layer, written with the layer's down projection */
            if (s == BR_OK && !strcmp(proj, "down")) {
                if (m == BR_UPCYCLE_NEXUS) {
                    int64_t H = cfg.nexus_hidden_size, D = cfg.nexus_domain_dim;
                    snprintf(name, sizeof name, BR_NAME_NEXUS_IN, l);
                    s = put_random(&out, name, 2 * H, D, std);
                    snprintf(name, sizeof name, BR_NAME_NEXUS_OUT, l);
                    if (s == BR_OK) s = put_random(&out, name, C, H, std);
                } else {
                    snprintf(name, sizeof name, BR_NAME_MOE_ROUTER, l);
                    s = put_random(&out, name, (int64_t)E, C, std);
                }
            }
        } else if (kind == T_ATTN && bam) {
            bool shared = m == BR_UPCYCLE_BAM_SHARED_KV && (!strcmp(proj, "k") || !strcmp(proj, "v"));
            if (shared) {
                s = put_mix(&out, tn, tn, srcs, wts, nsrc); /* one K, V: the experts' average */
            } else {
                char pp[32];
                snprintf(pp, sizeof pp, "%s_proj", proj);
                for (size_t j = 0; j < E && s == BR_OK; j++) {
                    snprintf(name, sizeof name, BR_NAME_MOA_EXPERT, l, (int)j, pp);
                    s = put_copy(&out, name, slot[j], tn);
                }
            }
            if (s == BR_OK && !strcmp(proj, "o")) {
                snprintf(name, sizeof name, BR_NAME_MOA_ROUTER, l);
                s = put_random(&out, name, (int64_t)E, C, std);
            }
        } else {
            s = put_mix(&out, tn, tn, srcs, wts, nsrc);
        }
    }
    if (s == BR_OK && m == BR_UPCYCLE_NEXUS)
        s = put_rows(&out, BR_NAME_NEXUS_DOMAINS, o->domain_emb, (int64_t)E, cfg.nexus_domain_dim);
    if (s == BR_OK) s = write_all(&out, o->out, &cfg);
    if (s == BR_OK && out_cfg) *out_cfg = cfg;
done:
    br_st_writer_free(out.w);
    br_arena_free(&out.arena);
    ckpt_close(&base);
    for (size_t i = 0; ex && i < o->n_experts; i++) ckpt_close(&ex[i]);
    free(ex), free(srcs), free(wts);
    return s;
}

/* ---- extend ---- */

br_status br_extend(const br_extend_opts_t *o, br_model_config_t *out_cfg)
{
    ckpt_t moe, nw;
    memset(&moe, 0, sizeof moe);
    memset(&nw, 0, sizeof nw);
    out_t out = {0};
    br_arena_init(&out.arena, 1 << 20);
    br_status s;
    if (!o->out || !*o->out) return br_error(BR_EINVAL, "extend: no output directory given");
    if ((s = ckpt_open(&moe, o->moe, "moe"))) goto done;
    if ((s = ckpt_open(&nw, o->expert, "new expert"))) goto done;
    if (!br_config_has_moe_ffn(&moe.cfg)) {
        s = br_error(BR_EINVAL, "extend: %s is not a mixture of experts (no num_local_experts)", o->moe);
        goto done;
    }
    if (br_config_has_moa(&moe.cfg)) {
        s = br_error(BR_EUNSUPPORTED, "extend: adding an expert to a mixture of attention (BAM) is not supported; "
                                      "use a btx, sparse or nexus MoE");
        goto done;
    }
    if (!is_dense(&nw.cfg)) {
        s = br_error(BR_EINVAL, "extend: the new expert %s is not a dense model", o->expert);
        goto done;
    }
    if ((s = br_upcycle_check_compatible(&moe.cfg, &nw.cfg, "new expert"))) goto done;
    bool nexus = moe.cfg.router_nexus != 0;
    if (nexus && !o->domain_emb) {
        s = br_error(BR_EINVAL, "extend: a Nexus MoE needs the new domain's embedding (--domain-data)");
        goto done;
    }
    int E = moe.cfg.num_local_experts;
    double lambda = 1.0 / (E + 1);
    br_model_config_t cfg = moe.cfg;
    cfg.num_local_experts = E + 1;
    if ((s = br_st_writer_create(&out.w))) goto done;
    br_rng_seed(&out.rng, o->seed);
    float std = cfg.initializer_range > 0 ? cfg.initializer_range : 0.02f;
    ckpt_t *pair[2] = {&moe, &nw};
    double w2[2] = {1 - lambda, lambda};
    char name[256];
    for (size_t i = 0; i < br_st_count(moe.st) && s == BR_OK; i++) {
        const br_st_tensor_t *t = br_st_tensor(moe.st, i);
        const char *tn = t->name;
        int l, n = 0;
        if (sscanf(tn, "model.layers.%d.block_sparse_moe.%n", &l, &n) == 1 && n > 0) {
            snprintf(name, sizeof name, BR_NAME_MOE_ROUTER, l);
            if (!strcmp(tn, name)) { /* linear router: one new random row */
                float *r = NULL;
                if ((s = read_f32(&out.arena, t, &r))) break;
                float *r2 = br_arena_alloc(&out.arena, (size_t)(E + 1) * (size_t)cfg.hidden_size * sizeof(float));
                if (!r2) {
                    s = br_error(BR_ENOMEM, "out of memory");
                    break;
                }
                memcpy(r2, r, (size_t)E * (size_t)cfg.hidden_size * sizeof(float));
                br_rng_fill_normal(&out.rng, r2 + (size_t)E * (size_t)cfg.hidden_size, (size_t)cfg.hidden_size, std);
                s = put_rows(&out, tn, r2, E + 1, cfg.hidden_size);
            } else { /* experts, shared expert, Nexus projector: unchanged */
                s = put_copy(&out, tn, &moe, tn);
            }
        } else if (!strcmp(tn, BR_NAME_NEXUS_DOMAINS)) {
            float *d = NULL;
            size_t D = (size_t)cfg.nexus_domain_dim;
            if ((s = read_f32(&out.arena, t, &d))) break;
            float *d2 = br_arena_alloc(&out.arena, (size_t)(E + 1) * D * sizeof(float));
            if (!d2) {
                s = br_error(BR_ENOMEM, "out of memory");
                break;
            }
            memcpy(d2, d, (size_t)E * D * sizeof(float));
            memcpy(d2 + (size_t)E * D, o->domain_emb, D * sizeof(float));
            s = put_rows(&out, tn, d2, E + 1, (int64_t)D);
        } else {
            /* non-FFN weights: (1 - lambda) * current + lambda * new */
            s = put_mix(&out, tn, tn, pair, w2, 2);
        }
    }
    /* the new expert's FFN becomes expert E of every layer */
    static const char *const projs[3][2] = {{"gate", "w1"}, {"down", "w2"}, {"up", "w3"}};
    for (int l = 0; l < cfg.num_hidden_layers && s == BR_OK; l++)
        for (int p = 0; p < 3 && s == BR_OK; p++) {
            char src[128];
            snprintf(src, sizeof src, "model.layers.%d.mlp.%s_proj.weight", l, projs[p][0]);
            snprintf(name, sizeof name, BR_NAME_MOE_EXPERT, l, E, projs[p][1]);
            s = put_copy(&out, name, &nw, src);
        }
    if (s == BR_OK) s = write_all(&out, o->out, &cfg);
    if (s == BR_OK && out_cfg) *out_cfg = cfg;
done:
    br_st_writer_free(out.w);
    br_arena_free(&out.arena);
    ckpt_close(&moe);
    ckpt_close(&nw);
    return s;
}
