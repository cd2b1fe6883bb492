/* MoE FFN: linear router + softmax + top-k, counting-sort bucketing per expert, one GEMM chain
 * per expert over its rows, weighted scatter-add; backward reuses the permutation.
 * See nn/moe.h for the maths and the auxiliary losses.
 *
 * Threads: only the GEMMs run in parallel (BLAS).  The gather/scatter loops are memory-bound
 * and stay on one thread on purpose: an OpenMP region between BLAS calls leaves its workers
 * spinning while BLAS's own threads need the cores (measured 2x slower on 2 busy cores). */
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/threads.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "nn/moe.h"
#include "nn/nn.h"

br_status br_moe_cfg_check(const br_moe_cfg_t *c)
{
    if (!c->C || !c->F) return br_error(BR_EINVAL, "moe: width C=%zu and expert width F=%zu must be > 0", c->C, c->F);
    if (c->E < 1) return br_error(BR_EINVAL, "moe: number of experts must be >= 1");
    if (c->E > 4096) return br_error(BR_EINVAL, "moe: %zu experts is more than the 4096 supported", c->E);
    if (c->k < 1 || c->k > c->E)
        return br_error(BR_EINVAL, "moe: top-k must be between 1 and the number of experts (%zu), got %zu", c->E, c->k);
    if (!(c->alpha >= 0) || !(c->beta >= 0))
        return br_error(BR_EINVAL, "moe: auxiliary loss coefficients must be >= 0 (alpha %g, beta %g)", c->alpha, c->beta);
    return BR_OK;
}

size_t br_moe_nparams(const br_moe_cfg_t *c)
{
    size_t router = c->E > 1 ? c->E * c->C : 0;
    return router + 3 * c->E * c->F * c->C + 3 * c->Fs * c->C;
}

size_t br_moe_nparams_active(const br_moe_cfg_t *c)
{
    size_t router = c->E > 1 ? c->E * c->C : 0;
    return router + 3 * c->k * c->F * c->C + 3 * c->Fs * c->C;
}

void br_moe_params_bind(br_moe_params_t *p, float *buf, const br_moe_cfg_t *c)
{
    size_t EFC = c->E * c->F * c->C, FsC = c->Fs * c->C;
    p->router = c->E > 1 ? buf : NULL;
    buf += c->E > 1 ? c->E * c->C : 0;
    p->w_gate = buf, buf += EFC;
    p->w_up = buf, buf += EFC;
    p->w_down = buf, buf += EFC;
    p->s_gate = c->Fs ? buf : NULL, buf += FsC;
    p->s_up = c->Fs ? buf : NULL, buf += FsC;
    p->s_down = c->Fs ? buf : NULL;
    p->wt_gate = p->wt_up = p->wt_down = BR_WT_F32;
}

void br_moe_ws_free(br_moe_ws_t *ws)
{
    void **ptrs[] = {(void **)&ws->logits, (void **)&ws->probs, (void **)&ws->lse,
                     (void **)&ws->topk, (void **)&ws->topw, (void **)&ws->count,
                     (void **)&ws->offset, (void **)&ws->perm, (void **)&ws->pos,
                     (void **)&ws->xs, (void **)&ws->hg, (void **)&ws->hu, (void **)&ws->act,
                     (void **)&ws->ys, (void **)&ws->sg, (void **)&ws->su, (void **)&ws->sact,
                     (void **)&ws->dys, (void **)&ws->dact, (void **)&ws->dhg,
                     (void **)&ws->dhu, (void **)&ws->dsact, (void **)&ws->dsg,
                     (void **)&ws->dsu, (void **)&ws->dtopw, (void **)&ws->dprobs,
                     (void **)&ws->dlogits};
    for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++) {
        br_free(*ptrs[i]);
        *ptrs[i] = NULL;
    }
    ws->cap = ws->N = 0;
}

/* br_alloc of n elements of size sz; NULL request (n == 0) is fine, a failure flags *bad. */
static void *alloc_n(size_t n, size_t sz, bool *bad)
{
    if (n == 0) return NULL;
    size_t bytes;
    if (br_mul_size(&bytes, n, sz) != BR_OK) {
        *bad = true;
        return NULL;
    }
    void *p = br_alloc(bytes);
    if (!p) *bad = true;
    return p;
}

br_status br_moe_ws_init(br_moe_ws_t *ws, const br_moe_cfg_t *c, size_t cap, bool training)
{
    memset(ws, 0, sizeof *ws);
    BR_TRY(br_moe_cfg_check(c));
    if (cap == 0) return br_error(BR_EINVAL, "moe: workspace for 0 rows");
    bool bad = false;
    size_t E = c->E, k = c->k, A = cap * k, C = c->C, F = c->F, Fs = c->Fs;
    bool routed = E > 1;
    ws->cap = cap;
    ws->training = training;
    ws->count = alloc_n(E, sizeof(size_t), &bad);
    ws->offset = alloc_n(E + 1, sizeof(size_t), &bad);
    if (routed) {
        ws->logits = alloc_n(cap * E, sizeof(float), &bad);
        ws->probs = alloc_n(cap * E, sizeof(float), &bad);
        ws->lse = alloc_n(cap, sizeof(float), &bad);
        ws->topk = alloc_n(A, sizeof(int32_t), &bad);
        ws->topw = alloc_n(A, sizeof(float), &bad);
        ws->perm = alloc_n(A, sizeof(int32_t), &bad);
        ws->pos = alloc_n(A, sizeof(int32_t), &bad);
        ws->xs = alloc_n(A * C, sizeof(float), &bad);
        ws->ys = alloc_n(A * C, sizeof(float), &bad);
    }
    ws->hg = alloc_n(A * F, sizeof(float), &bad);
    ws->hu = alloc_n(A * F, sizeof(float), &bad);
    ws->act = alloc_n(A * F, sizeof(float), &bad);
    ws->sg = alloc_n(cap * Fs, sizeof(float), &bad);
    ws->su = alloc_n(cap * Fs, sizeof(float), &bad);
    ws->sact = alloc_n(cap * Fs, sizeof(float), &bad);
    if (training) {
        if (routed) {
            ws->dys = alloc_n(A * C, sizeof(float), &bad);
            ws->dtopw = alloc_n(A, sizeof(float), &bad);
            ws->dprobs = alloc_n(cap * E, sizeof(float), &bad);
            ws->dlogits = alloc_n(cap * E, sizeof(float), &bad);
        }
        ws->dact = alloc_n(A * F, sizeof(float), &bad);
        ws->dhg = alloc_n(A * F, sizeof(float), &bad);
        ws->dhu = alloc_n(A * F, sizeof(float), &bad);
        ws->dsact = alloc_n(cap * Fs, sizeof(float), &bad);
        ws->dsg = alloc_n(cap * Fs, sizeof(float), &bad);
        ws->dsu = alloc_n(cap * Fs, sizeof(float), &bad);
    }
    if (bad) {
        br_moe_ws_free(ws);
        return br_error(BR_ENOMEM, "moe: out of memory for a workspace of %zu rows x %zu experts", cap, E);
    }
    return BR_OK;
}

/* ---- shared helpers ---- */

void br_topk_rows(int32_t *idx, const float *p, size_t N, size_t E, size_t k)
{
    for (size_t t = 0; t < N; t++) {
        const float *row = p + t * E;
        int32_t *out = idx + t * k;
        /* insertion into a sorted list of k: E is small (<= a few dozen in practice) */
        size_t m = 0;
        for (size_t e = 0; e < E; e++) {
            float v = row[e];
            if (m == k && !(v > row[out[k - 1]])) continue;
            size_t j = m < k ? m++ : k - 1;
            while (j > 0 && v > row[out[j - 1]]) {
                out[j] = out[j - 1];
                j--;
            }
            out[j] = (int32_t)e;
        }
    }
}

void br_logsumexp_rows(float *lse, const float *logits, size_t N, size_t E)
{
    for (size_t t = 0; t < N; t++) {
        const float *r = logits + t * E;
        float mx = r[0];
        for (size_t e = 1; e < E; e++) mx = r[e] > mx ? r[e] : mx;
        double s = 0;
        for (size_t e = 0; e < E; e++) s += exp((double)(r[e] - mx));
        lse[t] = mx + (float)log(s);
    }
}

/* Whether the experts run side by side, one per thread with single-threaded GEMMs (each
 * expert's rows and gradient slices are its own), instead of one after another with every
 * GEMM split across the threads.  Splitting a GEMM of a few hundred rows repacks the weights
 * per thread for little work each (4 experts x 256 rows, 2 threads: 1.45x the dense FFN's
 * time instead of 1.05x); side by side is better whenever the experts share the threads
 * evenly or are small. */
static bool expert_parallel(size_t E, size_t rows)
{
    size_t nt = (size_t)br_get_threads();
    return nt > 1 && E >= nt && (E % nt == 0 || rows / E < 1024);
}

/* An expert's LoRA site: the hook (NULL: none), the rows' assignment ids, layer, expert. */
typedef struct {
    const br_lora_hook_t *h;
    const int32_t *asg;
    size_t k;
    int layer, expert;
} xlora_t;

static const xlora_t no_lora = {NULL, NULL, 1, 0, 0};

static void xlora_apply(const xlora_t *x, float *out, const float *inp, size_t n, size_t C, size_t OC,
                        br_proj p)
{
    if (x->h && x->h->apply_expert)
        x->h->apply_expert(x->h, out, OC, inp, C, x->asg, x->k, n, C, OC, x->layer, x->expert, p);
}

static void xlora_backward(const xlora_t *x, float *dinp, const float *dout, const float *inp, size_t n, size_t C,
                           size_t OC, br_proj p)
{
    if (x->h && x->h->backward_expert)
        x->h->backward_expert(x->h, dinp, dout, OC, inp, C, x->asg, x->k, n, C, OC, x->layer, x->expert, p);
}

/* The three matrices of one expert's FFN and their stored types. */
typedef struct {
    const float *g, *u, *d;
    br_wtype tg, tu, td;
} xw_t;

/* Expert e of a stack of (rows, cols) matrices of type wt. */
static const float *expert_w(const float *w, br_wtype wt, size_t e, size_t rows, size_t cols)
{
    if (wt == BR_WT_F32) return w + e * rows * cols;
    size_t rb = 0;
    br_status s = br_wtype_row_bytes(wt, cols, &rb);
    BR_ASSERT(s == BR_OK); /* br_model_create_view checked the stack's layout */
    return (const float *)(const void *)((const uint8_t *)(const void *)w + e * rows * rb);
}

static xw_t expert_ws(const br_moe_params_t *p, size_t e, size_t C, size_t F)
{
    xw_t w = {expert_w(p->w_gate, p->wt_gate, e, F, C), expert_w(p->w_up, p->wt_up, e, F, C),
              expert_w(p->w_down, p->wt_down, e, C, F), p->wt_gate, p->wt_up, p->wt_down};
    return w;
}

/* y (n,OC) = beta*y + x (n,C) W^T with W (OC,C) of type wt (a typed W needs beta 0: only the
 * routed experts, which write their own rows, are typed). */
static void mm(float *y, float beta, const float *x, const float *w, br_wtype wt, size_t n, size_t C, size_t OC)
{
    if (wt == BR_WT_F32) {
        br_sgemm(false, true, n, OC, C, 1, x, C, w, C, beta, y, OC);
        return;
    }
    BR_ASSERT(beta == 0);
    br_status s = br_matmul(wt, y, x, w, n, C, OC);
    BR_ASSERT(s == BR_OK);
}

/* dx (n,C) = beta*dx + dy (n,OC) W with W (OC,C) of type wt. */
static void mm_dinp(float *dx, float beta, const float *dy, const float *w, br_wtype wt, size_t n, size_t C,
                    size_t OC)
{
    if (wt == BR_WT_F32) {
        br_sgemm(false, false, n, C, OC, 1, dy, OC, w, C, beta, dx, C);
        return;
    }
    if (beta == 0) memset(dx, 0, n * C * sizeof(float));
    br_status s = br_matmul_dinp(wt, dx, dy, w, n, C, OC);
    BR_ASSERT(s == BR_OK); /* br_model_train_step checked the type */
}

/* y (n,C) = beta*y + SwiGLU FFN(x (n,C)) (+ the expert's LoRA updates); saves hg, hu, act (n,F). */
static void ffn_forward(float *y, float beta, float *hg, float *hu, float *act, const float *x,
                        const xw_t *w, size_t n, size_t C, size_t F, const xlora_t *lo)
{
    if (n == 0) return;
    mm(hg, 0, x, w->g, w->tg, n, C, F);
    xlora_apply(lo, hg, x, n, C, F, BR_PROJ_GATE);
    mm(hu, 0, x, w->u, w->tu, n, C, F);
    xlora_apply(lo, hu, x, n, C, F, BR_PROJ_UP);
    br_swiglu_forward(act, hg, hu, n * F);
    mm(y, beta, act, w->d, w->td, n, F, C);
    xlora_apply(lo, y, act, n, F, C, BR_PROJ_DOWN);
}

/* Backward of ffn_forward: dx (n,C) = dx_beta*dx + ..., dwg/dwu (F,C) +=, dwd (C,F) +=
 * (NULL: skipped); dact, dhg, dhu (n,F) scratch. */
static void ffn_backward(float *dx, float dx_beta, float *dwg, float *dwu, float *dwd,
                         const float *dy, const float *x, const float *hg, const float *hu,
                         const float *act, const xw_t *w, float *dact, float *dhg, float *dhu,
                         size_t n, size_t C, size_t F, const xlora_t *lo)
{
    if (n == 0) return;
    mm_dinp(dact, 0, dy, w->d, w->td, n, F, C);
    xlora_backward(lo, dact, dy, act, n, F, C, BR_PROJ_DOWN);
    if (dwd) br_sgemm(true, false, C, F, n, 1, dy, C, act, F, 1, dwd, F);
    memset(dhg, 0, n * F * sizeof(float));
    memset(dhu, 0, n * F * sizeof(float));
    br_swiglu_backward(dhg, dhu, dact, hg, hu, n * F);
    if (dx) {
        mm_dinp(dx, dx_beta, dhg, w->g, w->tg, n, C, F);
        mm_dinp(dx, 1, dhu, w->u, w->tu, n, C, F);
    }
    /* the LoRA parts read x (never aliased with dx) and add into dx (NULL: dA/dB only) */
    xlora_backward(lo, dx, dhg, x, n, C, F, BR_PROJ_GATE);
    xlora_backward(lo, dx, dhu, x, n, C, F, BR_PROJ_UP);
    if (dwg) br_sgemm(true, false, F, C, n, 1, dhg, F, x, C, 1, dwg, C);
    if (dwu) br_sgemm(true, false, F, C, n, 1, dhu, F, x, C, 1, dwu, C);
}

/* ---- forward ---- */

static void route(br_moe_ws_t *ws, const float *inp, const float *router, const br_moe_cfg_t *c,
                  size_t N)
{
    size_t E = c->E, k = c->k, C = c->C;
    br_sgemm(false, true, N, E, C, 1, inp, C, router, C, 0, ws->logits, E);
    br_logsumexp_rows(ws->lse, ws->logits, N, E);
    for (size_t t = 0; t < N; t++)
        for (size_t e = 0; e < E; e++)
            ws->probs[t * E + e] = expf(ws->logits[t * E + e] - ws->lse[t]);
    br_topk_rows(ws->topk, ws->probs, N, E, k);
    for (size_t t = 0; t < N; t++) {
        float s = 0;
        for (size_t j = 0; j < k; j++) s += ws->probs[t * E + ws->topk[t * k + j]];
        for (size_t j = 0; j < k; j++) {
            float pj = ws->probs[t * E + ws->topk[t * k + j]];
            ws->topw[t * k + j] = c->renorm ? pj / s : pj;
        }
    }
    /* counting sort of the N*k assignments by expert (stable) */
    memset(ws->count, 0, E * sizeof(size_t));
    for (size_t a = 0; a < N * k; a++) ws->count[ws->topk[a]]++;
    ws->offset[0] = 0;
    for (size_t e = 0; e < E; e++) ws->offset[e + 1] = ws->offset[e] + ws->count[e];
    size_t fill[4096];
    memcpy(fill, ws->offset, E * sizeof(size_t));
    for (size_t a = 0; a < N * k; a++) {
        size_t r = fill[ws->topk[a]]++;
        ws->perm[r] = (int32_t)a;
        ws->pos[a] = (int32_t)r;
    }
    /* auxiliary losses */
    double lb = 0, z = 0;
    for (size_t e = 0; e < E; e++) {
        double P = 0;
        for (size_t t = 0; t < N; t++) P += ws->probs[t * E + e];
        lb += (double)ws->count[e] / (double)(N * k) * (P / (double)N);
    }
    for (size_t t = 0; t < N; t++) z += (double)ws->lse[t] * ws->lse[t];
    ws->lb = (float)(lb * E);
    ws->z = (float)(z / N);
}

void br_moe_ffn_forward(float *out, br_moe_ws_t *ws, const float *inp, const br_moe_params_t *p,
                        const br_moe_cfg_t *c, size_t N)
{
    br_moe_ffn_forward_lora(out, ws, inp, p, c, N, NULL, 0);
}

void br_moe_ffn_forward_lora(float *out, br_moe_ws_t *ws, const float *inp, const br_moe_params_t *p,
                             const br_moe_cfg_t *c, size_t N, const br_lora_hook_t *lora, int layer)
{
    BR_ASSERT(N <= ws->cap);
    size_t C = c->C, F = c->F, Fs = c->Fs, E = c->E, k = c->k;
    ws->N = N;
    if (N == 0) return;
    xw_t sw = {p->s_gate, p->s_up, p->s_down, BR_WT_F32, BR_WT_F32, BR_WT_F32}, w0 = expert_ws(p, 0, C, F);
    if (Fs) ffn_forward(out, 0, ws->sg, ws->su, ws->sact, inp, &sw, N, C, Fs, &no_lora);
    if (E == 1) {
        ws->count[0] = N;
        ws->offset[0] = 0;
        ws->offset[1] = N;
        ws->lb = 1;
        ws->z = 0;
        ffn_forward(out, Fs ? 1 : 0, ws->hg, ws->hu, ws->act, inp, &w0, N, C, F, &no_lora);
        return;
    }
    route(ws, inp, p->router, c, N);
    size_t A = N * k;
    for (size_t r = 0; r < A; r++)
        memcpy(ws->xs + r * C, inp + (size_t)(ws->perm[r] / (int32_t)k) * C, C * sizeof(float));
    /* the LoRA hook's scratch is one per batch: with expert adapters, one expert at a time */
    bool xl = lora && lora->apply_expert;
#pragma omp parallel for schedule(dynamic, 1) if (!xl && expert_parallel(E, A))
    for (size_t e = 0; e < E; e++) {
        size_t o = ws->offset[e], n = ws->count[e];
        xlora_t lo = {xl ? lora : NULL, ws->perm + o, k, layer, (int)e};
        xw_t we = expert_ws(p, e, C, F);
        ffn_forward(ws->ys + o * C, 0, ws->hg + o * F, ws->hu + o * F, ws->act + o * F,
                    ws->xs + o * C, &we, n, C, F, &lo);
    }
    /* weighted scatter-add in token order (each token's rows summed by one thread) */
    for (size_t t = 0; t < N; t++) {
        float *o = out + t * C;
        if (!Fs) memset(o, 0, C * sizeof(float));
        for (size_t j = 0; j < k; j++) {
            float w = ws->topw[t * k + j];
            const float *y = ws->ys + (size_t)ws->pos[t * k + j] * C;
            for (size_t i = 0; i < C; i++) o[i] += w * y[i];
        }
    }
}

/* ---- backward ---- */

void br_moe_ffn_backward(float *dinp, br_moe_params_t *g, const float *dout, const float *inp,
                         const br_moe_params_t *p, br_moe_ws_t *ws, const br_moe_cfg_t *c,
                         size_t N, float aux_scale)
{
    br_moe_ffn_backward_lora(dinp, g, dout, inp, p, ws, c, N, aux_scale, NULL, 0);
}

void br_moe_ffn_backward_lora(float *dinp, br_moe_params_t *g, const float *dout, const float *inp,
                              const br_moe_params_t *p, br_moe_ws_t *ws, const br_moe_cfg_t *c,
                              size_t N, float aux_scale, const br_lora_hook_t *lora, int layer)
{
    BR_ASSERT(ws->training && N == ws->N);
    size_t C = c->C, F = c->F, Fs = c->Fs, E = c->E, k = c->k;
    if (N == 0) return;
    xw_t sw = {p->s_gate, p->s_up, p->s_down, BR_WT_F32, BR_WT_F32, BR_WT_F32}, w0 = expert_ws(p, 0, C, F);
    if (Fs)
        ffn_backward(dinp, 1, g->s_gate, g->s_up, g->s_down, dout, inp, ws->sg, ws->su, ws->sact,
                     &sw, ws->dsact, ws->dsg, ws->dsu, N, C, Fs, &no_lora);
    if (E == 1) {
        ffn_backward(dinp, 1, g->w_gate, g->w_up, g->w_down, dout, inp, ws->hg, ws->hu, ws->act,
                     &w0, ws->dact, ws->dhg, ws->dhu, N, C, F, &no_lora);
        return;
    }
    size_t A = N * k;
    /* dys = w * dout (sorted rows); dtopw = dout . ys */
    for (size_t r = 0; r < A; r++) {
        size_t a = (size_t)ws->perm[r], t = a / k;
        float w = ws->topw[a];
        const float *d = dout + t * C, *y = ws->ys + r * C;
        float *dy = ws->dys + r * C;
        double dot = 0;
        for (size_t i = 0; i < C; i++) {
            dy[i] = w * d[i];
            dot += (double)d[i] * y[i];
        }
        ws->dtopw[a] = (float)dot;
    }
    /* experts: dys is consumed by the down-projection backward, then reused for dxs */
    bool xl = lora && lora->backward_expert;
#pragma omp parallel for schedule(dynamic, 1) if (!xl && expert_parallel(E, A))
    for (size_t e = 0; e < E; e++) {
        size_t o = ws->offset[e], n = ws->count[e];
        float *dys = ws->dys + o * C;
        xlora_t lo = {xl ? lora : NULL, ws->perm + o, k, layer, (int)e};
        xw_t we = expert_ws(p, e, C, F);
        ffn_backward(dys, 0, g->w_gate ? g->w_gate + e * F * C : NULL,
                     g->w_up ? g->w_up + e * F * C : NULL, g->w_down ? g->w_down + e * C * F : NULL,
                     dys, ws->xs + o * C, ws->hg + o * F, ws->hu + o * F, ws->act + o * F, &we,
                     ws->dact + o * F, ws->dhg + o * F, ws->dhu + o * F, n, C, F, &lo);
    }
    /* ffn_backward reads dy fully before writing dx (dact first), so the aliasing above is safe */
    for (size_t t = 0; t < N; t++) {
        float *d = dinp + t * C;
        for (size_t j = 0; j < k; j++) {
            const float *dx = ws->dys + (size_t)ws->pos[t * k + j] * C;
            for (size_t i = 0; i < C; i++) d[i] += dx[i];
        }
    }
    /* router: d topw -> d probs -> d logits (+ auxiliary losses) -> d router, d inp */
    float lb_coef = aux_scale * c->alpha * (float)E / (float)N; /* dlb/dp[t,i] = E f_i / N */
    float z_coef = aux_scale * c->beta * 2.0f / (float)N;
    for (size_t t = 0; t < N; t++) {
        float *dp = ws->dprobs + t * E;
        const float *pr = ws->probs + t * E;
        const int32_t *ix = ws->topk + t * k;
        const float *dw = ws->dtopw + t * k, *w = ws->topw + t * k;
        for (size_t e = 0; e < E; e++)
            dp[e] = lb_coef * (float)ws->count[e] / (float)A;
        if (c->renorm) {
            /* w_j = p_j / S: dp_j += (dw_j - sum_s dw_s w_s) / S */
            float S = 0, dot = 0;
            for (size_t j = 0; j < k; j++) S += pr[ix[j]], dot += dw[j] * w[j];
            for (size_t j = 0; j < k; j++) dp[ix[j]] += (dw[j] - dot) / S;
        } else {
            for (size_t j = 0; j < k; j++) dp[ix[j]] += dw[j];
        }
    }
    memset(ws->dlogits, 0, N * E * sizeof(float));
    br_softmax_backward(ws->dlogits, ws->dprobs, ws->probs, N, E);
    if (z_coef != 0)
        for (size_t t = 0; t < N; t++)
            for (size_t e = 0; e < E; e++)
                ws->dlogits[t * E + e] += z_coef * ws->lse[t] * ws->probs[t * E + e];
    br_sgemm(false, false, N, C, E, 1, ws->dlogits, E, p->router, C, 1, dinp, C);
    if (g->router) br_sgemm(true, false, E, C, N, 1, ws->dlogits, E, inp, C, 1, g->router, C);
}
