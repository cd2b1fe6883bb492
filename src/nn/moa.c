/* Mixture of attention (BAM, Zhang et al. 2024): n attention experts under a soft router,
 * computed as one grouped-query attention over the experts' stacked heads (see nn/moe.h for
 * the head layout that makes expert-KV and shared-KV both plain GQA). */
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "kernels/gemm.h"
#include "nn/moe.h"
#include "nn/nn.h"

br_status br_moa_cfg_check(const br_moa_cfg_t *c)
{
    if (!c->C || !c->NH || !c->NKV || !c->hd || !c->n)
        return br_error(BR_EINVAL, "moa: C, heads, kv heads, head dim and experts must all be > 0");
    if (c->NH % c->NKV)
        return br_error(BR_EINVAL, "moa: %zu query heads is not a multiple of %zu kv heads", c->NH, c->NKV);
    if (c->hd % 2) return br_error(BR_EINVAL, "moa: head dim %zu must be even (RoPE)", c->hd);
    if (c->n > 256) return br_error(BR_EINVAL, "moa: %zu attention experts is more than 256", c->n);
    if (!(c->beta >= 0)) return br_error(BR_EINVAL, "moa: z-loss coefficient must be >= 0");
    return BR_OK;
}

size_t br_moa_q_heads(const br_moa_cfg_t *c) { return c->n * c->NH; }
size_t br_moa_kv_heads(const br_moa_cfg_t *c) { return c->shared_kv ? c->NKV : c->n * c->NKV; }

size_t br_moa_head(const br_moa_cfg_t *c, size_t j, size_t h)
{
    return c->shared_kv ? h * c->n + j : j * c->NH + h;
}

size_t br_moa_head_expert(const br_moa_cfg_t *c, size_t head)
{
    return c->shared_kv ? head % c->n : head / c->NH;
}

size_t br_moa_nparams(const br_moa_cfg_t *c)
{
    size_t Q = br_moa_q_heads(c) * c->hd, KV = br_moa_kv_heads(c) * c->hd;
    return (c->n > 1 ? c->n * c->C : 0) + 2 * Q * c->C + 2 * KV * c->C;
}

void br_moa_params_bind(br_moa_params_t *p, float *buf, const br_moa_cfg_t *c)
{
    size_t Q = br_moa_q_heads(c) * c->hd, KV = br_moa_kv_heads(c) * c->hd;
    p->router = c->n > 1 ? buf : NULL;
    buf += c->n > 1 ? c->n * c->C : 0;
    p->wq = buf, buf += Q * c->C;
    p->wk = buf, buf += KV * c->C;
    p->wv = buf, buf += KV * c->C;
    p->wo = buf;
}

void br_moa_ws_free(br_moa_ws_t *ws)
{
    if (ws->ag != ws->a) br_free(ws->ag);
    ws->ag = NULL;
    float **f[] = {&ws->logits, &ws->g, &ws->lse, &ws->qe, &ws->q, &ws->k, &ws->v, &ws->att, &ws->a,
                   &ws->dag, &ws->da, &ws->dq, &ws->dk, &ws->dv, &ws->dg, &ws->dlogits};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        br_free(*f[i]);
        *f[i] = NULL;
    }
    br_free(ws->pos);
    ws->pos = NULL;
    ws->cap_B = ws->cap_T = 0;
}

static float *falloc(size_t n, bool *bad)
{
    size_t bytes;
    if (n == 0) return NULL;
    if (br_mul_size(&bytes, n, sizeof(float)) != BR_OK) {
        *bad = true;
        return NULL;
    }
    float *p = br_alloc(bytes);
    if (!p) *bad = true;
    return p;
}

br_status br_moa_ws_init(br_moa_ws_t *ws, const br_moa_cfg_t *c, size_t cap_B, size_t cap_T,
                         bool training)
{
    memset(ws, 0, sizeof *ws);
    BR_TRY(br_moa_cfg_check(c));
    if (!cap_B || !cap_T) return br_error(BR_EINVAL, "moa: workspace for 0 rows");
    bool bad = false;
    size_t N = cap_B * cap_T, n = c->n, HQ = br_moa_q_heads(c), HKV = br_moa_kv_heads(c);
    size_t Qw = HQ * c->hd, KVw = HKV * c->hd;
    ws->cap_B = cap_B;
    ws->cap_T = cap_T;
    ws->training = training;
    ws->pos = br_alloc(N * sizeof(int32_t));
    if (!ws->pos) bad = true;
    if (n > 1) {
        ws->logits = falloc(N * n, &bad);
        ws->g = falloc(N * n, &bad);
        ws->lse = falloc(N, &bad);
    }
    if (c->shared_kv && n > 1) ws->qe = falloc(N * Qw, &bad);
    ws->q = falloc(N * Qw, &bad);
    ws->k = falloc(N * KVw, &bad);
    ws->v = falloc(N * KVw, &bad);
    ws->att = falloc(cap_B * HQ * cap_T * cap_T, &bad);
    ws->a = falloc(N * Qw, &bad);
    ws->ag = n > 1 ? falloc(N * Qw, &bad) : ws->a;
    if (training) {
        ws->dag = falloc(N * Qw, &bad);
        ws->da = n > 1 ? falloc(N * Qw, &bad) : NULL;
        ws->dq = falloc(N * Qw, &bad);
        ws->dk = falloc(N * KVw, &bad);
        ws->dv = falloc(N * KVw, &bad);
        if (n > 1) {
            ws->dg = falloc(N * n, &bad);
            ws->dlogits = falloc(N * n, &bad);
        }
    }
    if (bad) {
        br_moa_ws_free(ws);
        return br_error(BR_ENOMEM, "moa: out of memory for a workspace of %zu x %zu tokens", cap_B, cap_T);
    }
    return BR_OK;
}

void br_moa_router_forward(float *g, float *logits, const float *inp, const float *router,
                           const br_moa_cfg_t *c, size_t N)
{
    size_t n = c->n;
    if (n == 1) {
        for (size_t t = 0; t < N; t++) g[t] = 1;
        return;
    }
    br_sgemm(false, true, N, n, c->C, 1, inp, c->C, router, c->C, 0, logits, n);
    br_softmax_forward(g, logits, N, n);
}

void br_moa_q_to_heads(float *q, const float *qe, const br_moa_cfg_t *c, size_t N)
{
    size_t HQ = br_moa_q_heads(c), hd = c->hd;
    if (!c->shared_kv || c->n == 1) {
        if (q != qe) memcpy(q, qe, N * HQ * hd * sizeof(float));
        return;
    }
#pragma omp parallel for if (N * HQ * hd > 65536)
    for (size_t t = 0; t < N; t++)
        for (size_t j = 0; j < c->n; j++)
            for (size_t h = 0; h < c->NH; h++)
                memcpy(q + (t * HQ + br_moa_head(c, j, h)) * hd, qe + (t * HQ + j * c->NH + h) * hd,
                       hd * sizeof(float));
}

void br_moa_gate_forward(float *ag, const float *a, const float *g, const br_moa_cfg_t *c,
                         size_t N)
{
    size_t HQ = br_moa_q_heads(c), hd = c->hd, n = c->n;
#pragma omp parallel for if (N * HQ * hd > 65536)
    for (size_t t = 0; t < N; t++)
        for (size_t j = 0; j < n; j++)
            for (size_t h = 0; h < c->NH; h++) {
                float w = g[t * n + j];
                const float *src = a + (t * HQ + br_moa_head(c, j, h)) * hd;
                float *dst = ag + (t * HQ + j * c->NH + h) * hd;
                for (size_t i = 0; i < hd; i++) dst[i] = w * src[i];
            }
}

void br_moa_out_forward(float *out, const float *ag, const float *wo, const br_moa_cfg_t *c,
                        size_t N)
{
    size_t C = c->C, D = c->NH * c->hd, Qw = c->n * D;
    for (size_t j = 0; j < c->n; j++)
        br_sgemm(false, true, N, C, D, 1, ag + j * D, Qw, wo + j * C * D, D, j ? 1 : 0, out, C);
}

/* ---- LoRA on the attention experts (each expert's block of the stacked projections) ---- */

void br_moa_lora_qkv(const br_lora_hook_t *h, float *qe, float *k, float *v, const float *inp,
                     const br_moa_cfg_t *c, size_t N, int layer)
{
    if (!h) return;
    size_t n = c->n, C = c->C, D = c->NH * c->hd, Dkv = c->NKV * c->hd;
    if (h->apply_expert)
        for (size_t j = 0; j < n; j++) h->apply_expert(h, qe + j * D, n * D, inp, C, NULL, 1, N, C, D, layer, (int)j, BR_PROJ_Q);
    if (c->shared_kv) { /* one plain K and V (self_attn.{k,v}_proj) */
        if (h->apply) {
            h->apply(h, k, inp, N, C, Dkv, layer, BR_PROJ_K);
            h->apply(h, v, inp, N, C, Dkv, layer, BR_PROJ_V);
        }
    } else if (h->apply_expert) {
        for (size_t j = 0; j < n; j++) {
            h->apply_expert(h, k + j * Dkv, n * Dkv, inp, C, NULL, 1, N, C, Dkv, layer, (int)j, BR_PROJ_K);
            h->apply_expert(h, v + j * Dkv, n * Dkv, inp, C, NULL, 1, N, C, Dkv, layer, (int)j, BR_PROJ_V);
        }
    }
}

void br_moa_lora_out(const br_lora_hook_t *h, float *out, const float *ag, const br_moa_cfg_t *c, size_t N,
                     int layer)
{
    if (!h || !h->apply_expert) return;
    size_t n = c->n, D = c->NH * c->hd;
    for (size_t j = 0; j < n; j++) h->apply_expert(h, out, c->C, ag + j * D, n * D, NULL, 1, N, D, c->C, layer, (int)j, BR_PROJ_O);
}

/* Backward of br_moa_lora_qkv: dinp (N,C) +=; dqe, dk, dv the projections' gradients. */
static void lora_qkv_backward(const br_lora_hook_t *h, float *dinp, const float *dqe, const float *dk,
                              const float *dv, const float *inp, const br_moa_cfg_t *c, size_t N, int layer)
{
    if (!h) return;
    size_t n = c->n, C = c->C, D = c->NH * c->hd, Dkv = c->NKV * c->hd;
    if (h->backward_expert)
        for (size_t j = 0; j < n; j++)
            h->backward_expert(h, dinp, dqe + j * D, n * D, inp, C, NULL, 1, N, C, D, layer, (int)j, BR_PROJ_Q);
    if (c->shared_kv) {
        if (h->backward) {
            h->backward(h, dinp, dk, inp, N, C, Dkv, layer, BR_PROJ_K);
            h->backward(h, dinp, dv, inp, N, C, Dkv, layer, BR_PROJ_V);
        }
    } else if (h->backward_expert) {
        for (size_t j = 0; j < n; j++) {
            h->backward_expert(h, dinp, dk + j * Dkv, n * Dkv, inp, C, NULL, 1, N, C, Dkv, layer, (int)j, BR_PROJ_K);
            h->backward_expert(h, dinp, dv + j * Dkv, n * Dkv, inp, C, NULL, 1, N, C, Dkv, layer, (int)j, BR_PROJ_V);
        }
    }
}

void br_moa_forward(float *out, br_moa_ws_t *ws, const float *inp, const br_moa_params_t *p,
                    const br_moa_cfg_t *c, const float *rope_cos, const float *rope_sin,
                    size_t B, size_t T)
{
    br_moa_forward_lora(out, ws, inp, p, c, rope_cos, rope_sin, B, T, NULL, 0);
}

void br_moa_forward_lora(float *out, br_moa_ws_t *ws, const float *inp, const br_moa_params_t *p,
                         const br_moa_cfg_t *c, const float *rope_cos, const float *rope_sin,
                         size_t B, size_t T, const br_lora_hook_t *lora, int layer)
{
    BR_ASSERT(B <= ws->cap_B && T <= ws->cap_T);
    size_t N = B * T, C = c->C, n = c->n, hd = c->hd;
    size_t HQ = br_moa_q_heads(c), HKV = br_moa_kv_heads(c), Qw = HQ * hd, KVw = HKV * hd;
    ws->B = B;
    ws->T = T;
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) ws->pos[b * T + t] = (int32_t)t;
    if (n > 1) {
        br_sgemm(false, true, N, n, C, 1, inp, C, p->router, C, 0, ws->logits, n);
        br_logsumexp_rows(ws->lse, ws->logits, N, n);
        double z = 0;
        for (size_t t = 0; t < N; t++) {
            for (size_t j = 0; j < n; j++) ws->g[t * n + j] = expf(ws->logits[t * n + j] - ws->lse[t]);
            z += (double)ws->lse[t] * ws->lse[t];
        }
        ws->z = (float)(z / (double)N);
    } else {
        ws->z = 0;
    }
    float *qe = ws->qe ? ws->qe : ws->q; /* expert-major; the attention order unless shared-KV */
    br_sgemm(false, true, N, Qw, C, 1, inp, C, p->wq, C, 0, qe, Qw);
    br_sgemm(false, true, N, KVw, C, 1, inp, C, p->wk, C, 0, ws->k, KVw);
    br_sgemm(false, true, N, KVw, C, 1, inp, C, p->wv, C, 0, ws->v, KVw);
    br_moa_lora_qkv(lora, qe, ws->k, ws->v, inp, c, N, layer);
    if (ws->qe) br_moa_q_to_heads(ws->q, ws->qe, c, N);
    br_rope_forward(ws->q, ws->pos, rope_cos, rope_sin, N, HQ, hd);
    br_rope_forward(ws->k, ws->pos, rope_cos, rope_sin, N, HKV, hd);
    br_attention_forward(ws->a, ws->att, ws->q, ws->k, ws->v, B, T, HQ, HKV, hd);
    if (n > 1) br_moa_gate_forward(ws->ag, ws->a, ws->g, c, N);
    br_moa_out_forward(out, ws->ag, p->wo, c, N);
    br_moa_lora_out(lora, out, ws->ag, c, N, layer);
}

void br_moa_backward(float *dinp, br_moa_params_t *g, const float *dout, const float *inp,
                     const br_moa_params_t *p, br_moa_ws_t *ws, const br_moa_cfg_t *c,
                     const float *rope_cos, const float *rope_sin, size_t B, size_t T,
                     float aux_scale)
{
    br_moa_backward_lora(dinp, g, dout, inp, p, ws, c, rope_cos, rope_sin, B, T, aux_scale, NULL, 0);
}

void br_moa_backward_lora(float *dinp, br_moa_params_t *g, const float *dout, const float *inp,
                          const br_moa_params_t *p, br_moa_ws_t *ws, const br_moa_cfg_t *c,
                          const float *rope_cos, const float *rope_sin, size_t B, size_t T,
                          float aux_scale, const br_lora_hook_t *lora, int layer)
{
    BR_ASSERT(ws->training && B == ws->B && T == ws->T);
    size_t N = B * T, C = c->C, n = c->n, hd = c->hd;
    size_t HQ = br_moa_q_heads(c), HKV = br_moa_kv_heads(c), Qw = HQ * hd, KVw = HKV * hd;
    size_t D = c->NH * hd;
    for (size_t j = 0; j < n; j++) {
        br_sgemm(false, false, N, D, C, 1, dout, C, p->wo + j * C * D, D, 0, ws->dag + j * D, Qw);
        if (g->wo) br_sgemm(true, false, C, D, N, 1, dout, C, ws->ag + j * D, Qw, 1, g->wo + j * C * D, D);
        if (lora && lora->backward_expert)
            lora->backward_expert(lora, ws->dag + j * D, dout, C, ws->ag + j * D, Qw, NULL, 1, N, D, C, layer, (int)j,
                                  BR_PROJ_O);
    }
    float *da = ws->dag;
    if (n > 1) {
        /* dag is expert-major; da, a are in attention head order */
        da = ws->da;
        memset(ws->dg, 0, N * n * sizeof(float));
#pragma omp parallel for if (N * Qw > 65536)
        for (size_t t = 0; t < N; t++)
            for (size_t j = 0; j < n; j++) {
                float w = ws->g[t * n + j];
                double dot = 0;
                for (size_t h = 0; h < c->NH; h++) {
                    size_t oe = (t * HQ + j * c->NH + h) * hd, oa = (t * HQ + br_moa_head(c, j, h)) * hd;
                    for (size_t i = 0; i < hd; i++) {
                        dot += (double)ws->dag[oe + i] * ws->a[oa + i];
                        da[oa + i] = w * ws->dag[oe + i];
                    }
                }
                ws->dg[t * n + j] = (float)dot;
            }
    }
    memset(ws->dq, 0, N * Qw * sizeof(float));
    memset(ws->dk, 0, N * KVw * sizeof(float));
    memset(ws->dv, 0, N * KVw * sizeof(float));
    br_attention_backward(ws->dq, ws->dk, ws->dv, da, ws->att, ws->q, ws->k, ws->v, B, T, HQ,
                          HKV, hd);
    br_rope_backward(ws->dq, ws->pos, rope_cos, rope_sin, N, HQ, hd);
    br_rope_backward(ws->dk, ws->pos, rope_cos, rope_sin, N, HKV, hd);
    float *dqe = ws->dq;
    if (ws->qe) { /* back to expert-major rows (dag is free scratch by now) */
        dqe = ws->dag;
        for (size_t t = 0; t < N; t++)
            for (size_t j = 0; j < n; j++)
                for (size_t h = 0; h < c->NH; h++)
                    memcpy(dqe + (t * HQ + j * c->NH + h) * hd, ws->dq + (t * HQ + br_moa_head(c, j, h)) * hd,
                           hd * sizeof(float));
    }
    lora_qkv_backward(lora, dinp, dqe, ws->dk, ws->dv, inp, c, N, layer);
    br_sgemm(false, false, N, C, Qw, 1, dqe, Qw, p->wq, C, 1, dinp, C);
    br_sgemm(false, false, N, C, KVw, 1, ws->dk, KVw, p->wk, C, 1, dinp, C);
    br_sgemm(false, false, N, C, KVw, 1, ws->dv, KVw, p->wv, C, 1, dinp, C);
    if (g->wq) br_sgemm(true, false, Qw, C, N, 1, dqe, Qw, inp, C, 1, g->wq, C);
    if (g->wk) br_sgemm(true, false, KVw, C, N, 1, ws->dk, KVw, inp, C, 1, g->wk, C);
    if (g->wv) br_sgemm(true, false, KVw, C, N, 1, ws->dv, KVw, inp, C, 1, g->wv, C);
    if (n > 1) {
        memset(ws->dlogits, 0, N * n * sizeof(float));
        br_softmax_backward(ws->dlogits, ws->dg, ws->g, N, n);
        float z_coef = aux_scale * c->beta * 2.0f / (float)N;
        if (z_coef != 0)
            for (size_t t = 0; t < N; t++)
                for (size_t j = 0; j < n; j++)
                    ws->dlogits[t * n + j] += z_coef * ws->lse[t] * ws->g[t * n + j];
        br_sgemm(false, false, N, C, n, 1, ws->dlogits, n, p->router, C, 1, dinp, C);
        if (g->router) br_sgemm(true, false, n, C, N, 1, ws->dlogits, n, inp, C, 1, g->router, C);
    }
}
