/* Upcycling dense checkpoints into an MoE, and adding an expert later (moe/upcycle.h). */
#include "moe/upcycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/rng.h"
#include "base/safetensors.h"
#include "lm/config_moe.h"
#include "lm/model.h"
#include "lm/model_internal.h"
#include "moe/stream.h"
#include "moe/tokcheck.h"

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

/* ---- checkpoints: model folders, mapped, every tensor checked against the config ---- */

typedef struct {
    const char *dir; /* the caller's string (upcycle options), for messages */
    br_model_config_t cfg;
    br_lm_folder_t f;
    bool open;
} ckpt_t;

static br_status ckpt_open(ckpt_t *c, const char *dir, const char *what)
{
    memset(c, 0, sizeof *c);
    if (!dir || !*dir) return br_error(BR_EINVAL, "%s: no checkpoint directory given", what);
    if (!br_dir_exists(dir)) return br_error(BR_ENOTFOUND, "%s: '%s' is not a directory", what, dir);
    c->dir = dir;
    br_status s = br_lm_folder_open(&c->f, dir);
    if (s) return br_error_wrap(s, "%s", what);
    c->open = true;
    c->cfg = c->f.cfg;
    /* every tensor the config needs, with its shape, from the headers alone: a missing or
     * mis-shaped tensor is named here instead of being copied into the output */
    const br_st_tensor_t **found = NULL;
    s = br_lm_check_tensors(&c->cfg, c->f.tensors, c->f.n_tensors, c->f.label, &found);
    free(found);
    if (s) return br_error_wrap(s, "%s", what);
    return BR_OK;
}

static void ckpt_close(ckpt_t *c)
{
    if (c->open) br_lm_folder_close(&c->f);
    c->open = false;
}

static const br_st_tensor_t *ckpt_find(const ckpt_t *c, const char *name)
{
    for (size_t i = 0; i < c->f.n_shards; i++) {
        const br_st_tensor_t *t = br_st_find(c->f.shards[i], name);
        if (t) return t;
    }
    return NULL;
}

static void shape_str(char *buf, size_t cap, const br_st_tensor_t *t)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* Tensor `name` of c, which must have like's shape (like NULL: any); else the error names the
 * tensor, both shapes and the folder. */
static const br_st_tensor_t *need(const ckpt_t *c, const char *name, const br_st_tensor_t *like, br_status *s)
{
    const br_st_tensor_t *t = ckpt_find(c, name);
    if (!t) {
        *s = br_error(BR_EFORMAT, "%s: tensor '%s' is missing (the base has it)", c->dir, name);
        return NULL;
    }
    if (like && (t->ndim != like->ndim || memcmp(t->shape, like->shape, (size_t)t->ndim * sizeof(int64_t)))) {
        char a[64], b[64];
        shape_str(a, sizeof a, t);
        shape_str(b, sizeof b, like);
        *s = br_error(BR_EFORMAT, "%s: tensor '%s' has shape %s, the base's %s: experts must share the base's shapes",
                      c->dir, name, a, b);
        return NULL;
    }
    return t;
}

br_status br_upcycle_check_compatible(const br_model_config_t *b, const br_model_config_t *x,
                                      const char *what)
{
    if (b->arch != x->arch)
        return br_error(BR_EINVAL, "%s: model_type is %s but the base's is %s: experts must share the base's "
                        "architecture", what, br_arch_name(x->arch), br_arch_name(b->arch));
#define SAME(field)                                                                               \
    if (b->field != x->field)                                                                      \
        return br_error(BR_EINVAL, "%s: " #field " is %d but the base has %d: experts must be "    \
                        "branches of the same seed", what, (int)x->field, (int)b->field);
    SAME(vocab_size) SAME(hidden_size) SAME(intermediate_size) SAME(num_hidden_layers)
    SAME(num_attention_heads) SAME(num_key_value_heads) SAME(head_dim) SAME(tie_word_embeddings)
    SAME(qkv_bias) SAME(qk_norm) SAME(rope_type) SAME(sliding_window)
#undef SAME
#define SAMEF(field)                                                                              \
    if (b->field != x->field)                                                                      \
        return br_error(BR_EINVAL, "%s: " #field " is %g but the base has %g: experts must share the " \
                        "base's architecture", what, (double)x->field, (double)b->field);
    SAMEF(rope_theta) SAMEF(rms_norm_eps) SAMEF(rope_factor)
#undef SAMEF
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

/* The output dtype: opts' or the stored embedding's (16-bit stays 16-bit, else F32). */
static br_status out_dtype(const char *opt, const ckpt_t *c, br_dtype *dt)
{
    if (opt) return br_moe_dtype_parse(opt, dt);
    const br_st_tensor_t *t = ckpt_find(c, "model.embed_tokens.weight");
    *dt = t && (t->dtype == BR_DT_BF16 || t->dtype == BR_DT_F16) ? t->dtype : BR_DT_F32;
    return BR_OK;
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

/* ---- routers: the one place a router starts (wip-router's --router-init plugs in here) ---- */

typedef struct {
    br_upcycle_method method;
    const br_model_config_t *cfg; /* the mixture's */
    br_rng_t rng;
    float std;
    const float *domain_emb;      /* nexus */
    const br_router_init_t *rows; /* hidden-state rows of every linear router (moe/router_init.h);
                                     NULL: random */
} router_init_t;

/* A (rows, cols) matrix N(0, std^2) named name. */
static br_status put_random(br_moe_out_t *w, router_init_t *ri, const char *name, int64_t rows, int64_t cols)
{
    size_t n = (size_t)rows * (size_t)cols;
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) return br_error(BR_ENOMEM, "out of memory");
    br_rng_fill_normal(&ri->rng, p, n, ri->std);
    br_status s = br_moe_out_rows(w, name, NULL, p, rows, cols);
    free(p);
    return s;
}

/* An (E, C) linear router of layer l: hidden-state rows when the options carry them, else random. */
static br_status put_router(br_moe_out_t *w, router_init_t *ri, const char *name, int l, int64_t E, int64_t C)
{
    if (!ri->rows) return put_random(w, ri, name, E, C);
    float *p = malloc((size_t)(E * C) * sizeof(float));
    if (!p) return br_error(BR_ENOMEM, "out of memory");
    br_status s = br_router_init_rows(ri->rows, l, (size_t)E, (size_t)C, p);
    if (!s) s = br_moe_out_rows(w, name, NULL, p, E, C);
    free(p);
    return s;
}

/* Every router of layer l of a new mixture: the FFN router (linear rows, or the Nexus
 * projector) and, for BAM, the attention router. */
static br_status init_routers(br_moe_out_t *w, router_init_t *ri, int l)
{
    const br_model_config_t *c = ri->cfg;
    int64_t C = c->hidden_size, E = c->num_local_experts;
    char name[256];
    if (ri->method == BR_UPCYCLE_NEXUS) {
        int64_t H = c->nexus_hidden_size, D = c->nexus_domain_dim;
        snprintf(name, sizeof name, BR_NAME_NEXUS_IN, l);
        BR_TRY(put_random(w, ri, name, 2 * H, D));
        snprintf(name, sizeof name, BR_NAME_NEXUS_OUT, l);
        BR_TRY(put_random(w, ri, name, C, H));
    } else {
        snprintf(name, sizeof name, BR_NAME_MOE_ROUTER, l);
        BR_TRY(put_router(w, ri, name, l, E, C));
    }
    if (br_config_has_moa(c)) {
        snprintf(name, sizeof name, BR_NAME_MOA_ROUTER, l);
        BR_TRY(put_router(w, ri, name, l, c->num_attention_experts, C));
    }
    return BR_OK;
}

/* The router row of a new expert E of layer l (extend): linear router only. */
static void init_router_row(router_init_t *ri, int l, float *row /* (C) */)
{
    (void)l;
    br_rng_fill_normal(&ri->rng, row, (size_t)ri->cfg->hidden_size, ri->std);
}

/* ---- upcycle ---- */

size_t br_upcycle_num_experts(const br_upcycle_opts_t *o)
{
    if (o->method == BR_UPCYCLE_SPARSE) return o->num_experts > 0 ? (size_t)o->num_experts : o->n_experts ? o->n_experts : 4;
    return o->n_experts + (o->base_as_expert ? 1 : 0);
}

static br_status check_opts(const br_upcycle_opts_t *o, const ckpt_t *base, ckpt_t *ex,
                            size_t *E_out)
{
    br_upcycle_method m = o->method;
    if ((unsigned)m >= 5) return br_error(BR_EINVAL, "unknown upcycling method %d", (int)m);
    if (!o->out || !*o->out) return br_error(BR_EINVAL, "upcycle: no output directory given");
    if (!is_dense(&base->cfg)) return br_error(BR_EINVAL, "upcycle: the base %s is already a mixture of experts", base->dir);
    if (base->cfg.arch != BR_ARCH_LLAMA && base->cfg.arch != BR_ARCH_MISTRAL)
        return br_error(BR_EUNSUPPORTED, "upcycle: the base %s is a %s model (%s); braid upcycles llama and mistral "
                        "models, whose layers Mixtral's layout holds", base->dir, br_arch_name(base->cfg.arch),
                        base->cfg.qkv_bias ? "q/k/v biases" : "q/k RMSNorm");
    if (m != BR_UPCYCLE_SPARSE && o->n_experts == 0)
        return br_error(BR_EINVAL, "upcycle --method %s: no experts given (--experts DIR,DIR,...)", br_upcycle_method_name(m));
    for (size_t i = 0; i < o->n_experts; i++) {
        br_buf_t what = BR_BUF_INIT;
        br_status s = br_buf_printf(&what, "expert %s", ex[i].dir);
        if (!s) s = br_upcycle_check_compatible(&base->cfg, &ex[i].cfg, br_buf_str(&what));
        if (!s && !is_dense(&ex[i].cfg))
            s = br_error(BR_EINVAL, "%s is a mixture of experts, not a dense expert", br_buf_str(&what));
        if (!s) s = br_moe_tokenizer_check(base->dir, ex[i].dir, br_buf_str(&what));
        br_buf_free(&what);
        BR_TRY(s);
    }
    size_t E = br_upcycle_num_experts(o);
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
    br_dtype dt;
    BR_TRY(out_dtype(o->dtype, base, &dt));
    if (o->router_init && (m == BR_UPCYCLE_NEXUS || o->router_init->E != E))
        return br_error(BR_EINVAL, m == BR_UPCYCLE_NEXUS ? "upcycle: a Nexus router comes from its projector; hidden-state rows are for linear routers"
                                                         : "upcycle: hidden-state router rows for %zu experts, the mixture has %zu",
                        o->router_init->E, E);
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

/* Everything the output holds, described tensor by tensor (the writer computes it later). */
typedef struct {
    const br_upcycle_opts_t *o;
    br_moe_out_t *w;
    router_init_t ri;
    size_t E, nsrc;
    ckpt_t *base, *slot[256], *srcs[257];
    double wts[257];
} plan_t;

/* Output tensors of one expert-kind input tensor tn (kind FFN or, for BAM, attention). */
static br_status plan_experts(plan_t *p, const br_st_tensor_t *bt, int l, const char *proj, tkind kind)
{
    br_status s = BR_OK;
    char name[256], pp[32];
    double one = 1;
    snprintf(pp, sizeof pp, "%s_proj", proj);
    for (size_t j = 0; j < p->E && !s; j++) {
        const br_st_tensor_t *t = need(p->slot[j], bt->name, bt, &s);
        if (!t) break;
        if (kind == T_FFN) snprintf(name, sizeof name, BR_NAME_MOE_EXPERT, l, (int)j, mixtral_w(proj));
        else snprintf(name, sizeof name, BR_NAME_MOA_EXPERT, l, (int)j, pp);
        s = br_moe_out_mix(p->w, name, &t, &one, 1, false);
    }
    if (!s && kind == T_FFN && (p->o->method == BR_UPCYCLE_NEXUS || p->o->shared_expert)) { /* the seed's FFN: the shared expert */
        snprintf(name, sizeof name, BR_NAME_MOE_SHARED, l, pp);
        s = br_moe_out_mix(p->w, name, &bt, &one, 1, false);
    }
    if (!s && kind == T_FFN && !strcmp(proj, "down")) s = init_routers(p->w, &p->ri, l);
    return s;
}

/* name = the merge inputs' average (their distances to it measured). */
static br_status plan_mix(plan_t *p, const br_st_tensor_t *bt)
{
    const br_st_tensor_t *src[257];
    br_status s = BR_OK;
    for (size_t i = 0; i < p->nsrc; i++)
        if (!(src[i] = need(p->srcs[i], bt->name, bt, &s))) return s;
    return br_moe_out_mix(p->w, bt->name, src, p->wts, p->nsrc, p->nsrc > 1);
}

static br_status plan_upcycle(plan_t *p)
{
    br_upcycle_method m = p->o->method;
    bool bam = m == BR_UPCYCLE_BAM || m == BR_UPCYCLE_BAM_SHARED_KV;
    const br_lm_folder_t *f = &p->base->f;
    br_status s = BR_OK;
    for (size_t i = 0; i < f->n_tensors && !s; i++) {
        const br_st_tensor_t *bt = f->tensors[i];
        int l;
        char proj[16];
        tkind kind = classify(bt->name, &l, proj);
        bool shared_kv = m == BR_UPCYCLE_BAM_SHARED_KV && (!strcmp(proj, "k") || !strcmp(proj, "v"));
        if (kind == T_FFN || (kind == T_ATTN && bam && !shared_kv)) s = plan_experts(p, bt, l, proj, kind);
        else s = plan_mix(p, bt); /* attention (BAM shared KV: one K, V), embeddings, norms, head */
    }
    if (!s && m == BR_UPCYCLE_NEXUS && p->o->domain_emb)
        s = br_moe_out_rows(p->w, BR_NAME_NEXUS_DOMAINS, NULL, p->o->domain_emb, (int64_t)p->E,
                            p->ri.cfg->nexus_domain_dim);
    return s;
}

br_status br_upcycle(const br_upcycle_opts_t *o, br_model_config_t *out_cfg)
{
    ckpt_t base;
    ckpt_t *ex = calloc(o->n_experts ? o->n_experts : 1, sizeof *ex);
    plan_t p = {.o = o, .base = &base};
    br_status s = BR_OK;
    memset(&base, 0, sizeof base);
    if (!ex) {
        s = br_error(BR_ENOMEM, "out of memory");
        goto done;
    }
    if ((s = ckpt_open(&base, o->base, "base"))) goto done;
    for (size_t i = 0; i < o->n_experts; i++) {
        char what[64];
        snprintf(what, sizeof what, "expert %zu", i + 1);
        if ((s = ckpt_open(&ex[i], o->experts[i], what))) goto done;
    }
    if ((s = check_opts(o, &base, ex, &p.E))) goto done;
    br_upcycle_opts_t mo = *o; /* check_only for Nexus: a stand-in width, no embeddings yet */
    if (o->method == BR_UPCYCLE_NEXUS && !o->domain_emb) mo.domain_dim = 1;
    br_model_config_t cfg;
    if ((s = mixture_config(&mo, &base.cfg, p.E, &cfg))) goto done;
    /* expert slot -> checkpoint (sparse: the base every time) and the merge set */
    for (size_t j = 0; j < p.E; j++)
        p.slot[j] = o->method == BR_UPCYCLE_SPARSE ? &base
                    : o->base_as_expert ? (j == 0 ? &base : &ex[j - 1]) : &ex[j];
    if (o->method == BR_UPCYCLE_SPARSE) p.srcs[p.nsrc++] = &base;
    else
        for (size_t j = 0; j < p.E; j++) p.srcs[p.nsrc++] = p.slot[j];
    for (size_t i = 0; i < p.nsrc; i++) p.wts[i] = 1.0 / (double)p.nsrc;
    br_dtype dt;
    if ((s = out_dtype(o->dtype, &base, &dt))) goto done;
    if ((s = br_moe_out_create(&p.w, dt, o->shard_size, p.nsrc > 1 ? p.nsrc : 0))) goto done;
    p.ri = (router_init_t){.method = o->method, .cfg = &cfg, .domain_emb = o->domain_emb, .rows = o->router_init,
                           .std = base.cfg.initializer_range > 0 ? base.cfg.initializer_range : 0.02f};
    br_rng_seed(&p.ri.rng, o->seed);
    if ((s = plan_upcycle(&p)) || o->check_only) goto done;
    s = br_moe_out_commit(p.w, o->out, &cfg, o->base, o->report);
    if (s == BR_OK && out_cfg) *out_cfg = cfg;
done:
    br_moe_out_free(p.w);
    ckpt_close(&base);
    for (size_t i = 0; ex && i < o->n_experts; i++) ckpt_close(&ex[i]);
    free(ex);
    return s;
}

/* ---- extend ---- */

static br_status check_extend(const br_extend_opts_t *o, const ckpt_t *moe, const ckpt_t *nw)
{
    if (!br_config_has_moe_ffn(&moe->cfg))
        return br_error(BR_EINVAL, "extend: %s is not a mixture of experts (no num_local_experts)", o->moe);
    if (br_config_has_moa(&moe->cfg))
        return br_error(BR_EUNSUPPORTED, "extend: adding an expert to a mixture of attention (BAM) is not supported; "
                        "use a btx, sparse or nexus MoE");
    if (!is_dense(&nw->cfg)) return br_error(BR_EINVAL, "extend: the new expert %s is not a dense model", o->expert);
    /* the mixture's dense view: its config with the FFN experts taken away */
    br_model_config_t dense = moe->cfg;
    dense.arch = nw->cfg.arch == BR_ARCH_MISTRAL ? BR_ARCH_MISTRAL : BR_ARCH_LLAMA;
    BR_TRY(br_upcycle_check_compatible(&dense, &nw->cfg, "new expert"));
    BR_TRY(br_moe_tokenizer_check(o->moe, o->expert, "new expert"));
    if (moe->cfg.router_nexus && !o->domain_emb)
        return br_error(BR_EINVAL, "extend: a Nexus MoE needs the new domain's embedding (--domain-data)");
    if (moe->cfg.num_local_experts >= 256) return br_error(BR_EINVAL, "extend: the mixture already has 256 experts");
    if (o->router_init && (moe->cfg.router_nexus || o->router_init->E != (size_t)moe->cfg.num_local_experts + 1))
        return br_error(BR_EINVAL, moe->cfg.router_nexus
                                       ? "extend: a Nexus router comes from its projector; hidden-state rows are for linear routers"
                                       : "extend: hidden-state router rows need one domain sample per expert of the result "
                                         "(%d: the current experts' in order, then the new one's), %zu given",
                        moe->cfg.num_local_experts + 1, o->router_init->E);
    br_dtype dt;
    return out_dtype(o->dtype, moe, &dt);
}

/* One tensor of the mixture, in the extended one. */
static br_status plan_extend_tensor(br_moe_out_t *w, router_init_t *ri, const ckpt_t *nw, const br_st_tensor_t *t,
                                    const float *domain_emb)
{
    const br_model_config_t *c = ri->cfg; /* the extended config */
    int E = c->num_local_experts - 1, l, n = 0;
    double one = 1, lambda = 1.0 / (E + 1), w2[2] = {1 - lambda, lambda};
    char name[256];
    if (sscanf(t->name, "model.layers.%d.block_sparse_moe.%n", &l, &n) == 1 && n > 0) {
        snprintf(name, sizeof name, BR_NAME_MOE_ROUTER, l);
        if (strcmp(t->name, name)) return br_moe_out_mix(w, t->name, &t, &one, 1, false); /* experts, projector */
        if (ri->rows) return put_router(w, ri, t->name, l, E + 1, c->hidden_size); /* all E + 1 rows re-derived */
        float *row = malloc((size_t)c->hidden_size * sizeof(float));
        if (!row) return br_error(BR_ENOMEM, "out of memory");
        init_router_row(ri, l, row);
        br_status s = br_moe_out_rows(w, t->name, t, row, 1, c->hidden_size);
        free(row);
        return s;
    }
    if (!strcmp(t->name, BR_NAME_NEXUS_DOMAINS)) return br_moe_out_rows(w, t->name, t, domain_emb, 1, c->nexus_domain_dim);
    /* non-FFN weights: (1 - lambda) * current + lambda * new */
    br_status s = BR_OK;
    const br_st_tensor_t *pair[2] = {t, need(nw, t->name, t, &s)};
    if (!pair[1]) return s;
    return br_moe_out_mix(w, t->name, pair, w2, 2, true);
}

br_status br_extend(const br_extend_opts_t *o, br_model_config_t *out_cfg)
{
    ckpt_t moe, nw;
    memset(&moe, 0, sizeof moe);
    memset(&nw, 0, sizeof nw);
    br_moe_out_t *w = NULL;
    br_status s;
    if (!o->out || !*o->out) return br_error(BR_EINVAL, "extend: no output directory given");
    if ((s = ckpt_open(&moe, o->moe, "moe"))) goto done;
    if ((s = ckpt_open(&nw, o->expert, "new expert"))) goto done;
    if ((s = check_extend(o, &moe, &nw))) goto done;
    int E = moe.cfg.num_local_experts;
    br_model_config_t cfg = moe.cfg;
    cfg.num_local_experts = E + 1;
    br_dtype dt;
    if ((s = out_dtype(o->dtype, &moe, &dt)) || (s = br_moe_out_create(&w, dt, o->shard_size, 2))) goto done;
    router_init_t ri = {.cfg = &cfg, .std = cfg.initializer_range > 0 ? cfg.initializer_range : 0.02f,
                        .rows = o->router_init};
    br_rng_seed(&ri.rng, o->seed);
    for (size_t i = 0; i < moe.f.n_tensors && s == BR_OK; i++)
        s = plan_extend_tensor(w, &ri, &nw, moe.f.tensors[i], o->domain_emb);
    /* the new expert's FFN becomes expert E of every layer */
    static const char *const projs[3][2] = {{"gate", "w1"}, {"down", "w2"}, {"up", "w3"}};
    double one = 1;
    char name[256];
    for (int l = 0; l < cfg.num_hidden_layers && s == BR_OK; l++)
        for (int p = 0; p < 3 && s == BR_OK; p++) {
            char src[128];
            snprintf(src, sizeof src, "model.layers.%d.mlp.%s_proj.weight", l, projs[p][0]);
            snprintf(name, sizeof name, BR_NAME_MOE_EXPERT, l, 0, projs[p][1]);
            const br_st_tensor_t *like = need(&moe, name, NULL, &s), *t = like ? need(&nw, src, like, &s) : NULL;
            snprintf(name, sizeof name, BR_NAME_MOE_EXPERT, l, E, projs[p][1]);
            if (t) s = br_moe_out_mix(w, name, &t, &one, 1, false);
        }
    if (s == BR_OK) s = br_moe_out_commit(w, o->out, &cfg, o->moe, o->report);
    if (s == BR_OK && out_cfg) *out_cfg = cfg;
done:
    br_moe_out_free(w);
    ckpt_close(&moe);
    ckpt_close(&nw);
    return s;
}
