/* The mixture parts of the model's blocks: an MoE FFN (linear or Nexus router, optional
 * shared expert) and a mixture of attention (BAM), wired into the attention/FFN part seams of
 * model.c (training, evaluation) and infer.c (batched inference over the paged KV cache).
 * The layers themselves are nn/moe_ffn.c, nn/moa.c, nn/nexus.c; this file owns their
 * workspaces and maps the model's parameter table onto them. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "lm/config_moe.h"
#include "lm/model_internal.h"

struct br_model_moe {
    br_moe_cfg_t fcfg;
    br_moa_cfg_t acfg;
    br_nexus_cfg_t ncfg;
    bool has_ffn, has_moa, nexus;
    size_t L;
    /* training / evaluation: one workspace per layer (train) or one shared (eval) */
    size_t B, T, nslots;
    bool train;
    br_moe_ws_t *fws; /* (nslots) */
    br_moa_ws_t *aws; /* (nslots) */
    float *R, *z, *h; /* Nexus per layer: router rows (L,E,C), projector values (L,E,2H), (L,E,H) */
    float *dR, *dz, *dh; /* (E,C), (E,2H), (E,H) backward scratch */
    /* batched inference */
    size_t capN;
    br_moe_ws_t iws;
    float *g, *lg;    /* (capN, n) attention router weights, logits */
    float *qe, *ag;   /* (capN, n*NH*hd) */
};

br_status br_moe_rt_create(br_model_t *m)
{
    const br_model_config_t *c = &m->cfg;
    if (!br_config_has_moe_ffn(c) && !br_config_has_moa(c)) return BR_OK;
    br_model_moe_t *rt = calloc(1, sizeof *rt);
    if (!rt) return br_error(BR_ENOMEM, "out of memory");
    rt->fcfg = br_config_moe_ffn(c);
    rt->acfg = br_config_moa(c);
    rt->ncfg = br_config_nexus(c);
    rt->has_ffn = br_config_has_moe_ffn(c);
    rt->has_moa = br_config_has_moa(c);
    rt->nexus = rt->has_ffn && c->router_nexus;
    rt->L = (size_t)c->num_hidden_layers;
    m->moe = rt;
    if (rt->has_ffn) BR_TRY(br_moe_cfg_check(&rt->fcfg));
    if (rt->has_moa) BR_TRY(br_moa_cfg_check(&rt->acfg));
    return BR_OK;
}

static void free_slots(br_model_moe_t *rt)
{
    for (size_t i = 0; rt->fws && i < rt->nslots; i++) br_moe_ws_free(&rt->fws[i]);
    for (size_t i = 0; rt->aws && i < rt->nslots; i++) br_moa_ws_free(&rt->aws[i]);
    free(rt->fws);
    free(rt->aws);
    float **f[] = {&rt->R, &rt->z, &rt->h, &rt->dR, &rt->dz, &rt->dh};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        br_free(*f[i]);
        *f[i] = NULL;
    }
    rt->fws = NULL;
    rt->aws = NULL;
    rt->nslots = rt->B = rt->T = 0;
}

static void free_infer(br_model_moe_t *rt)
{
    br_moe_ws_free(&rt->iws);
    br_free(rt->g), br_free(rt->lg), br_free(rt->qe), br_free(rt->ag);
    rt->g = rt->lg = rt->qe = rt->ag = NULL;
    rt->capN = 0;
}

void br_moe_rt_free(br_model_t *m)
{
    if (!m->moe) return;
    free_slots(m->moe);
    free_infer(m->moe);
    free(m->moe);
    m->moe = NULL;
}

static float *falloc(size_t n, bool *bad)
{
    float *p = br_alloc((n ? n : 1) * sizeof(float));
    if (!p) *bad = true;
    return p;
}

/* Nexus router rows of every layer, recomputed each forward (the projector trains). */
static br_status alloc_nexus(br_model_moe_t *rt)
{
    if (!rt->nexus) return BR_OK;
    bool bad = false;
    size_t E = rt->ncfg.E, C = rt->ncfg.C, H = rt->ncfg.H, L = rt->L;
    rt->R = falloc(L * E * C, &bad);
    rt->z = falloc(L * E * 2 * H, &bad);
    rt->h = falloc(L * E * H, &bad);
    rt->dR = falloc(E * C, &bad);
    rt->dz = falloc(E * 2 * H, &bad);
    rt->dh = falloc(E * H, &bad);
    return bad ? br_error(BR_ENOMEM, "out of memory for the Nexus router") : BR_OK;
}

br_status br_moe_rt_ensure(br_model_t *m, size_t B, size_t T, bool train)
{
    br_model_moe_t *rt = m->moe;
    if (!rt) return BR_OK;
    if (rt->nslots && rt->B == B && rt->T == T && rt->train == train) return BR_OK;
    free_slots(rt);
    size_t ns = train ? rt->L : 1;
    br_status s = BR_OK;
    if (rt->has_ffn && !(rt->fws = calloc(ns, sizeof *rt->fws))) s = br_error(BR_ENOMEM, "out of memory");
    if (!s && rt->has_moa && !(rt->aws = calloc(ns, sizeof *rt->aws))) s = br_error(BR_ENOMEM, "out of memory");
    rt->nslots = ns;
    for (size_t i = 0; !s && i < ns; i++) {
        if (rt->has_ffn) s = br_moe_ws_init(&rt->fws[i], &rt->fcfg, B * T, train);
        if (!s && rt->has_moa) s = br_moa_ws_init(&rt->aws[i], &rt->acfg, B, T, train);
    }
    if (!s) s = alloc_nexus(rt);
    if (s) {
        free_slots(rt);
        return s;
    }
    rt->B = B;
    rt->T = T;
    rt->train = train;
    return BR_OK;
}

br_status br_moe_rt_ensure_rows(br_model_t *m, size_t N)
{
    br_model_moe_t *rt = m->moe;
    if (!rt || rt->capN >= N) return BR_OK;
    free_infer(rt);
    bool bad = false;
    if (rt->has_ffn && br_moe_ws_init(&rt->iws, &rt->fcfg, N, false)) bad = true;
    if (rt->has_moa) {
        size_t n = rt->acfg.n, Qw = br_moa_q_heads(&rt->acfg) * rt->acfg.hd;
        rt->g = falloc(N * n, &bad);
        rt->lg = falloc(N * n, &bad);
        rt->qe = falloc(N * Qw, &bad);
        rt->ag = falloc(N * Qw, &bad);
    }
    if (!bad && !rt->R && alloc_nexus(rt)) bad = true;
    if (bad) {
        free_infer(rt);
        return br_error(BR_ENOMEM, "out of memory for MoE inference buffers (%zu rows)", N);
    }
    rt->capN = N;
    return BR_OK;
}

/* ---- parameter views ---- */

/* Layer l's FFN parameters (w: its weights, or their gradients, F32) with the stored types of
 * the model's experts when types (m) is set. */
static br_moe_params_t ffn_view(const br_layer_weights_t *w, float *router, const br_model_t *types, int l)
{
    br_moe_params_t p = {
        .router = router ? router : w->ffn_router,
        .w_gate = w->ffn.gate, .w_up = w->ffn.up, .w_down = w->ffn.down,
        .s_gate = w->shared.gate, .s_up = w->shared.up, .s_down = w->shared.down,
    };
    if (types) {
        p.wt_gate = br_model_proj_wt(types, l, BR_PROJ_GATE);
        p.wt_up = br_model_proj_wt(types, l, BR_PROJ_UP);
        p.wt_down = br_model_proj_wt(types, l, BR_PROJ_DOWN);
    }
    return p;
}

static br_moa_params_t moa_view(const br_layer_weights_t *w)
{
    br_moa_params_t p = {.router = w->attn_router, .wq = w->attn.wq, .wk = w->attn.wk,
                         .wv = w->attn.wv, .wo = w->attn.wo};
    return p;
}

static void count_routes(br_model_t *m, int l, const br_moe_ws_t *ws, size_t N)
{
    if (!m->route_counts) return;
    size_t E = m->moe->fcfg.E, k = m->moe->fcfg.k;
    uint64_t *c = m->route_counts + (size_t)l * E;
    if (E == 1) {
        c[0] += N;
        return;
    }
    for (size_t a = 0; a < N * k; a++) c[ws->topk[a]]++;
}

static float *nexus_rows(br_model_t *m, int l)
{
    br_model_moe_t *rt = m->moe;
    size_t E = rt->ncfg.E, C = rt->ncfg.C, H = rt->ncfg.H;
    const br_layer_weights_t *w = &m->w.layers[l];
    float *R = rt->R + (size_t)l * E * C;
    br_nexus_forward(R, rt->z + (size_t)l * E * 2 * H, rt->h + (size_t)l * E * H, m->w.nexus_domains,
                     w->nexus_in, w->nexus_out, &rt->ncfg);
    return R;
}

/* ---- training / evaluation ---- */

void br_moe_ffn_part(br_model_t *m, int l, size_t slot, float *out, const float *xn, size_t N,
                     const br_lora_hook_t *lora)
{
    br_model_moe_t *rt = m->moe;
    br_moe_params_t p = ffn_view(&m->w.layers[l], rt->nexus ? nexus_rows(m, l) : NULL, m, l);
    br_moe_ffn_forward_lora(out, &rt->fws[slot], xn, &p, &rt->fcfg, N, lora, l);
    count_routes(m, l, &rt->fws[slot], N);
}

void br_moe_ffn_part_backward(br_model_t *m, int l, float *dxn, const float *dout,
                              const float *xn, size_t N, bool base, bool routers, float aux_scale,
                              const br_lora_hook_t *lora)
{
    br_model_moe_t *rt = m->moe;
    const br_layer_weights_t *w = &m->w.layers[l];
    br_layer_weights_t *gl = &m->g.layers[l];
    size_t E = rt->ncfg.E, C = rt->ncfg.C, H = rt->ncfg.H;
    br_moe_params_t p = ffn_view(w, rt->nexus ? rt->R + (size_t)l * E * C : NULL, m, l);
    br_moe_params_t g = {0};
    if (base) g = ffn_view(gl, NULL, NULL, l);
    if (routers) { /* router-only training: the router (Nexus: its projector) alone */
        g.router = gl->ffn_router;
        if (rt->nexus) {
            memset(rt->dR, 0, E * C * sizeof(float));
            g.router = rt->dR;
        }
    }
    br_moe_ffn_backward_lora(dxn, &g, dout, xn, &p, &rt->fws[l], &rt->fcfg, N, aux_scale, lora, l);
    if (routers && rt->nexus)
        br_nexus_backward(gl->nexus_in, gl->nexus_out, rt->dR, m->w.nexus_domains, w->nexus_in,
                          w->nexus_out, rt->z + (size_t)l * E * 2 * H, rt->h + (size_t)l * E * H,
                          rt->dz, rt->dh, &rt->ncfg);
}

void br_moe_attn_part(br_model_t *m, int l, size_t slot, float *out, const float *xn, size_t B,
                      size_t T, const br_lora_hook_t *lora)
{
    br_model_moe_t *rt = m->moe;
    br_moa_params_t p = moa_view(&m->w.layers[l]);
    br_moa_forward_lora(out, &rt->aws[slot], xn, &p, &rt->acfg, m->rope_cos, m->rope_sin, B, T, lora, l);
}

void br_moe_attn_part_backward(br_model_t *m, int l, float *dxn, const float *dout,
                               const float *xn, size_t B, size_t T, bool base, bool routers,
                               float aux_scale, const br_lora_hook_t *lora)
{
    br_model_moe_t *rt = m->moe;
    br_moa_params_t p = moa_view(&m->w.layers[l]);
    br_moa_params_t g = {0};
    if (base) g = moa_view(&m->g.layers[l]);
    if (routers) g.router = m->g.layers[l].attn_router;
    br_moa_backward_lora(dxn, &g, dout, xn, &p, &rt->aws[l], &rt->acfg, m->rope_cos, m->rope_sin, B,
                         T, aux_scale, lora, l);
}

bool br_moe_has_ffn(const br_model_t *m) { return m->moe && m->moe->has_ffn; }
bool br_moe_has_moa(const br_model_t *m) { return m->moe && m->moe->has_moa; }

/* ---- batched inference (rows at arbitrary positions; attention runs in infer.c) ---- */

void br_moe_infer_qkv(const br_model_t *m, int l, float *q, float *k, float *v, const float *xn,
                      const int32_t *pos, size_t N, const br_lora_hook_t *lora)
{
    br_model_moe_t *rt = m->moe;
    const br_moa_cfg_t *c = &rt->acfg;
    const br_layer_weights_t *w = &m->w.layers[l];
    size_t C = c->C, HQ = br_moa_q_heads(c), HKV = br_moa_kv_heads(c), hd = c->hd;
    br_moa_router_forward(rt->g, rt->lg, xn, w->attn_router, c, N);
    br_linear_forward(rt->qe, xn, w->attn.wq, N, C, HQ * hd);
    br_linear_forward(k, xn, w->attn.wk, N, C, HKV * hd);
    br_linear_forward(v, xn, w->attn.wv, N, C, HKV * hd);
    br_moa_lora_qkv(lora, rt->qe, k, v, xn, c, N, l);
    br_moa_q_to_heads(q, rt->qe, c, N);
    br_rope_forward(q, pos, m->rope_cos, m->rope_sin, N, HQ, hd);
    br_rope_forward(k, pos, m->rope_cos, m->rope_sin, N, HKV, hd);
}

void br_moe_infer_attn_out(const br_model_t *m, int l, float *out, const float *ao, size_t N,
                           const br_lora_hook_t *lora)
{
    br_model_moe_t *rt = m->moe;
    const br_moa_cfg_t *c = &rt->acfg;
    br_moa_gate_forward(rt->ag, ao, rt->g, c, N);
    br_moa_out_forward(out, rt->ag, m->w.layers[l].attn.wo, c, N);
    br_moa_lora_out(lora, out, rt->ag, c, N, l);
}

void br_moe_infer_ffn(br_model_t *m, int l, float *out, const float *xn, size_t N, const br_lora_hook_t *lora)
{
    br_model_moe_t *rt = m->moe;
    br_moe_params_t p = ffn_view(&m->w.layers[l], rt->nexus ? nexus_rows(m, l) : NULL, m, l);
    br_moe_ffn_forward_lora(out, &rt->iws, xn, &p, &rt->fcfg, N, lora, l);
    count_routes(m, l, &rt->iws, N);
}

/* ---- last forward's auxiliary losses (for logging) ---- */

void br_model_moe_aux(const br_model_t *m, float *lb, float *z)
{
    br_model_moe_t *rt = m->moe;
    double a = 0, b = 0;
    size_t n = 0;
    for (size_t i = 0; rt && rt->has_ffn && i < rt->nslots; i++, n++) a += rt->fws[i].lb, b += rt->fws[i].z;
    if (lb) *lb = n ? (float)(a / (double)n) : 0;
    if (z) *z = n ? (float)(b / (double)n) : 0;
}
