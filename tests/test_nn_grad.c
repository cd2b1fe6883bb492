/* Finite-difference gradient checks for every backward in nn/, in double precision.
 *
 * The layer kernels are written once (src/kernels/<layer>.inc) and compiled twice: for float into
 * libbraid (what the model runs) and, here, for double (NN_DOUBLE, names brd_*).  So the code
 * checked here is the code that runs, only the scalar type differs; in double, central
 * differences are accurate to ~1e-10, which allows a tight tolerance (TOL) that float checks
 * could never use.  Each check:
 *   - draws random inputs and a random projection R of the output, loss L = sum(out * R);
 *   - runs the backward with dout = R into gradients pre-filled with random values G0 (so the
 *     "+=" contract is checked too), subtracts G0;
 *   - compares every element with (L(x+h) - L(x-h)) / 2h and reports
 *       rel err = max_i |analytic_i - numeric_i| / max_i |numeric_i|
 *     and the worst element.
 * The float build is then compared with the double build on the same inputs (tests that the
 * BLAS calls, br_expf and the threading of the float path agree with the checked algorithm). */
#define NN_DOUBLE
/* Small row blocks so that the attention's block loop runs several blocks at T = 7. */
#define NN_ATT_BUF 21
#include "kernels/real.h"
#include "kernels/linear.inc"
#include "kernels/embedding.inc"
#include "kernels/rmsnorm.inc"
#include "kernels/rope.inc"
#include "kernels/attention.inc"
#include "kernels/swiglu.inc"
#include "kernels/softmax.inc"
#include "kernels/xent.inc"

#include <stdlib.h>

#include "base/rng.h"
#include "harness.h"
#include "nn/nn.h"

#define TOL 1e-8 /* normalised max error allowed for double central differences */
#define FD_H 1e-5

static br_rng_t rng;

static double *dalloc(size_t n) { return calloc(n ? n : 1, sizeof(double)); }
static double *drand_new(size_t n, double scale)
{
    double *x = dalloc(n);
    for (size_t i = 0; i < n; i++) x[i] = scale * (2 * br_rng_double(&rng) - 1);
    return x;
}
static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* One check: x (n) is perturbed in place, loss() recomputes L, analytic (n) holds dL/dx. */
typedef double (*loss_fn)(void *ctx);
static void check_grad(const char *name, loss_fn loss, void *ctx, double *x, size_t n,
                       const double *analytic)
{
    double maxnum = 0, maxdiff = 0, wa = 0, wn = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        double save = x[i];
        x[i] = save + FD_H;
        double lp = loss(ctx);
        x[i] = save - FD_H;
        double lm = loss(ctx);
        x[i] = save;
        double num = (lp - lm) / (2 * FD_H), d = fabs(num - analytic[i]);
        if (fabs(num) > maxnum) maxnum = fabs(num);
        if (d >= maxdiff) {
            maxdiff = d;
            worst = i;
            wa = analytic[i];
            wn = num;
        }
    }
    double err = maxdiff / (maxnum > 1e-12 ? maxnum : 1e-12);
    printf("  %-26s n=%-5zu max|g|=%-9.3g rel err %.2e\n", name, n, maxnum, err);
    CHECK_MSG(err <= TOL && maxnum > 0,
              "%s: rel err %.3g > tol %.1g (worst element %zu: analytic %.12g, numeric %.12g; "
              "max|numeric| %.3g)", name, err, TOL, worst, wa, wn, maxnum);
}

/* analytic = g - g0 where the backward added into g pre-filled with g0. */
static void sub_in(double *g, const double *g0, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] -= g0[i];
}

/* ---------------- linear ---------------- */
typedef struct { size_t N, C, OC; double *inp, *w, *out, *R; } lin_t;
static double lin_loss(void *p)
{
    lin_t *c = p;
    brd_linear_forward(c->out, c->inp, c->w, c->N, c->C, c->OC);
    return dot(c->out, c->R, c->N * c->OC);
}
static void test_linear(void)
{
    lin_t c = {5, 7, 3, 0, 0, 0, 0};
    c.inp = drand_new(c.N * c.C, 1);
    c.w = drand_new(c.OC * c.C, 1);
    c.out = dalloc(c.N * c.OC);
    c.R = drand_new(c.N * c.OC, 1);
    double *g0i = drand_new(c.N * c.C, 1), *g0w = drand_new(c.OC * c.C, 1);
    double *gi = dalloc(c.N * c.C), *gw = dalloc(c.OC * c.C);
    memcpy(gi, g0i, c.N * c.C * sizeof *gi);
    memcpy(gw, g0w, c.OC * c.C * sizeof *gw);
    brd_linear_backward(gi, gw, c.R, c.inp, c.w, c.N, c.C, c.OC);
    sub_in(gi, g0i, c.N * c.C);
    sub_in(gw, g0w, c.OC * c.C);
    check_grad("linear dinp", lin_loss, &c, c.inp, c.N * c.C, gi);
    check_grad("linear dw", lin_loss, &c, c.w, c.OC * c.C, gw);
    free(c.inp), free(c.w), free(c.out), free(c.R), free(g0i), free(g0w), free(gi), free(gw);
}

/* ---------------- embedding ---------------- */
typedef struct { size_t N, C; const int32_t *tok; double *wte, *out, *R; } emb_t;
static double emb_loss(void *p)
{
    emb_t *c = p;
    brd_embedding_forward(c->out, c->tok, c->wte, c->N, c->C);
    return dot(c->out, c->R, c->N * c->C);
}
static void test_embedding(void)
{
    static const int32_t tok[] = {3, 0, 3, 5, 1, 3}; /* repeats: scatter-add must sum */
    size_t V = 6, N = 6, C = 5;
    emb_t c = {N, C, tok, drand_new(V * C, 1), dalloc(N * C), drand_new(N * C, 1)};
    double *g0 = drand_new(V * C, 1), *g = dalloc(V * C);
    memcpy(g, g0, V * C * sizeof *g);
    brd_embedding_backward(g, c.R, tok, N, C);
    sub_in(g, g0, V * C);
    check_grad("embedding dwte", emb_loss, &c, c.wte, V * C, g);
    free(c.wte), free(c.out), free(c.R), free(g0), free(g);
}

/* ---------------- RMSNorm ---------------- */
typedef struct { size_t N, C; double *inp, *w, *out, *rstd, *R; } rms_t;
static double rms_loss(void *p)
{
    rms_t *c = p;
    brd_rmsnorm_forward(c->out, c->rstd, c->inp, c->w, 1e-5, c->N, c->C);
    return dot(c->out, c->R, c->N * c->C);
}
static void test_rmsnorm(void)
{
    rms_t c = {4, 9, drand_new(36, 1), drand_new(9, 1), dalloc(36), dalloc(4), drand_new(36, 1)};
    rms_loss(&c);
    double *g0i = drand_new(36, 1), *g0w = drand_new(9, 1), *gi = dalloc(36), *gw = dalloc(9);
    memcpy(gi, g0i, 36 * sizeof *gi);
    memcpy(gw, g0w, 9 * sizeof *gw);
    brd_rmsnorm_backward(gi, gw, c.R, c.inp, c.w, c.rstd, c.N, c.C);
    sub_in(gi, g0i, 36);
    sub_in(gw, g0w, 9);
    check_grad("rmsnorm dinp", rms_loss, &c, c.inp, 36, gi);
    check_grad("rmsnorm dw", rms_loss, &c, c.w, 9, gw);
    free(c.inp), free(c.w), free(c.out), free(c.rstd), free(c.R);
    free(g0i), free(g0w), free(gi), free(gw);
}

/* ---------------- RoPE ---------------- */
typedef struct { size_t N, H, hd; const int32_t *pos; double *cos, *sin, *x, *y, *R; } rope_t;
static double rope_loss(void *p)
{
    rope_t *c = p;
    size_t n = c->N * c->H * c->hd;
    memcpy(c->y, c->x, n * sizeof *c->y);
    brd_rope_forward(c->y, c->pos, c->cos, c->sin, c->N, c->H, c->hd);
    return dot(c->y, c->R, n);
}
static void test_rope(void)
{
    static const int32_t pos[] = {0, 3, 1, 7};
    size_t N = 4, H = 3, hd = 8, half = hd / 2, maxpos = 8, n = N * H * hd;
    rope_t c = {N, H, hd, pos, dalloc(maxpos * half), dalloc(maxpos * half), drand_new(n, 1),
                dalloc(n), drand_new(n, 1)};
    for (size_t p = 0; p < maxpos; p++)
        for (size_t i = 0; i < half; i++) {
            double a = (double)p * pow(10000.0, -2.0 * (double)i / (double)hd);
            c.cos[p * half + i] = cos(a);
            c.sin[p * half + i] = sin(a);
        }
    double *g = dalloc(n);
    memcpy(g, c.R, n * sizeof *g);
    brd_rope_backward(g, pos, c.cos, c.sin, N, H, hd); /* in place: dx = R^T dout */
    check_grad("rope dx", rope_loss, &c, c.x, n, g);
    free(c.cos), free(c.sin), free(c.x), free(c.y), free(c.R), free(g);
}

/* ---------------- attention ---------------- */
typedef struct { size_t B, T, NH, NKV, hd; double *q, *k, *v, *out, *att, *R; } att_t;
static double att_loss(void *p)
{
    att_t *c = p;
    brd_attention_forward(c->out, c->att, c->q, c->k, c->v, c->B, c->T, c->NH, c->NKV, c->hd);
    return dot(c->out, c->R, c->B * c->T * c->NH * c->hd);
}
static void test_attention_case(size_t B, size_t T, size_t NH, size_t NKV, size_t hd)
{
    size_t nq = B * T * NH * hd, nk = B * T * NKV * hd;
    att_t c = {B, T, NH, NKV, hd, drand_new(nq, 1), drand_new(nk, 1), drand_new(nk, 1),
               dalloc(nq), dalloc(B * NH * T * T), drand_new(nq, 1)};
    att_loss(&c);
    double *g0q = drand_new(nq, 1), *g0k = drand_new(nk, 1), *g0v = drand_new(nk, 1);
    double *gq = dalloc(nq), *gk = dalloc(nk), *gv = dalloc(nk);
    memcpy(gq, g0q, nq * sizeof *gq);
    memcpy(gk, g0k, nk * sizeof *gk);
    memcpy(gv, g0v, nk * sizeof *gv);
    brd_attention_backward(gq, gk, gv, c.R, c.att, c.q, c.k, c.v, B, T, NH, NKV, hd);
    sub_in(gq, g0q, nq);
    sub_in(gk, g0k, nk);
    sub_in(gv, g0v, nk);
    char name[64];
    snprintf(name, sizeof name, "attention dq (NH%zu,KV%zu)", NH, NKV);
    check_grad(name, att_loss, &c, c.q, nq, gq);
    snprintf(name, sizeof name, "attention dk (NH%zu,KV%zu)", NH, NKV);
    check_grad(name, att_loss, &c, c.k, nk, gk);
    snprintf(name, sizeof name, "attention dv (NH%zu,KV%zu)", NH, NKV);
    check_grad(name, att_loss, &c, c.v, nk, gv);
    free(c.q), free(c.k), free(c.v), free(c.out), free(c.att), free(c.R);
    free(g0q), free(g0k), free(g0v), free(gq), free(gk), free(gv);
}

/* ---------------- SwiGLU ---------------- */
typedef struct { size_t n; double *gate, *up, *out, *R; } swi_t;
static double swi_loss(void *p)
{
    swi_t *c = p;
    brd_swiglu_forward(c->out, c->gate, c->up, c->n);
    return dot(c->out, c->R, c->n);
}
static void test_swiglu(void)
{
    size_t n = 40;
    swi_t c = {n, drand_new(n, 4), drand_new(n, 2), dalloc(n), drand_new(n, 1)};
    double *g0g = drand_new(n, 1), *g0u = drand_new(n, 1), *gg = dalloc(n), *gu = dalloc(n);
    memcpy(gg, g0g, n * sizeof *gg);
    memcpy(gu, g0u, n * sizeof *gu);
    brd_swiglu_backward(gg, gu, c.R, c.gate, c.up, n);
    sub_in(gg, g0g, n);
    sub_in(gu, g0u, n);
    check_grad("swiglu dgate", swi_loss, &c, c.gate, n, gg);
    check_grad("swiglu dup", swi_loss, &c, c.up, n, gu);
    free(c.gate), free(c.up), free(c.out), free(c.R), free(g0g), free(g0u), free(gg), free(gu);
}

/* ---------------- softmax ---------------- */
typedef struct { size_t N, V; double *inp, *out, *R; } sm_t;
static double sm_loss(void *p)
{
    sm_t *c = p;
    brd_softmax_forward(c->out, c->inp, c->N, c->V);
    return dot(c->out, c->R, c->N * c->V);
}
static void test_softmax(void)
{
    size_t N = 3, V = 11, n = N * V;
    sm_t c = {N, V, drand_new(n, 3), dalloc(n), drand_new(n, 1)};
    sm_loss(&c);
    double *g0 = drand_new(n, 1), *g = dalloc(n);
    memcpy(g, g0, n * sizeof *g);
    brd_softmax_backward(g, c.R, c.out, N, V);
    sub_in(g, g0, n);
    check_grad("softmax dinp", sm_loss, &c, c.inp, n, g);
    free(c.inp), free(c.out), free(c.R), free(g0), free(g);
}

/* ---------------- cross-entropy ---------------- */
typedef struct { size_t N, V; const int32_t *tg; double scale, *logits, *probs, *losses; } xe_t;
static double xe_loss(void *p)
{
    xe_t *c = p;
    brd_xent_forward(c->losses, c->probs, c->logits, c->tg, c->N, c->V);
    double s = 0;
    for (size_t i = 0; i < c->N; i++) s += c->losses[i];
    return c->scale * s;
}
static void test_xent(void)
{
    static const int32_t tg[] = {2, -1, 0, 12, -100}; /* two ignored rows */
    size_t N = 5, V = 13, n = N * V;
    xe_t c = {N, V, tg, 1.0 / 3, drand_new(n, 3), dalloc(n), dalloc(N)};
    double mean = brd_xent_forward(c.losses, c.probs, c.logits, tg, N, V);
    CHECK_NEAR(mean, (c.losses[0] + c.losses[2] + c.losses[3]) / 3, 1e-12);
    CHECK(c.losses[1] == 0 && c.losses[4] == 0);
    double *g0 = drand_new(n, 1), *g = dalloc(n);
    memcpy(g, g0, n * sizeof *g);
    brd_xent_backward(g, c.probs, tg, c.scale, N, V);
    sub_in(g, g0, n);
    check_grad("xent dlogits", xe_loss, &c, c.logits, n, g);
    /* in place (dlogits == probs): overwritten, not added */
    double *p = dalloc(n), *l2 = dalloc(N);
    brd_xent_forward(l2, p, c.logits, tg, N, V);
    brd_xent_backward(p, p, tg, c.scale, N, V);
    check_grad("xent dlogits (in place)", xe_loss, &c, c.logits, n, p);
    /* fused forward+backward */
    double *f = dalloc(n);
    double fmean = brd_xent_fused(l2, f, c.logits, tg, c.scale, N, V);
    CHECK_NEAR(fmean, mean, 1e-12);
    check_grad("xent fused dlogits", xe_loss, &c, c.logits, n, f);
    free(c.logits), free(c.probs), free(c.losses), free(g0), free(g), free(p), free(l2), free(f);
}

/* ---------------- float build vs double build ---------------- */
static float *fcopy(const double *d, size_t n)
{
    float *f = malloc((n ? n : 1) * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)d[i];
    return f;
}
static double *dcopy(const float *f, size_t n)
{
    double *d = dalloc(n);
    for (size_t i = 0; i < n; i++) d[i] = f[i];
    return d;
}
/* max_i |f_i - d_i| / max_i |d_i| <= tol, reporting the worst element. */
static void cmp(const char *name, const float *f, const double *d, size_t n, double tol)
{
    double maxd = 0, maxdiff = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(d[i]) > maxd) maxd = fabs(d[i]);
        double e = fabs(f[i] - d[i]);
        if (e >= maxdiff) maxdiff = e, worst = i;
    }
    double err = maxdiff / (maxd > 1e-30 ? maxd : 1e-30);
    printf("  %-26s n=%-7zu rel err %.2e\n", name, n, err);
    CHECK_MSG(err <= tol, "%s: float vs double rel err %.3g > tol %.1g (worst element %zu: float "
              "%.9g, double %.12g)", name, err, tol, worst, n ? f[worst] : 0.0, n ? d[worst] : 0.0);
}

#define FTOL 5e-6 /* float build vs double build, normalised */

static void float_vs_double(void)
{
    printf("float build vs double build (tol %g):\n", FTOL);
    /* attention with several row blocks in the float build (RB = 64) and GQA */
    size_t B = 2, T = 150, NH = 4, NKV = 2, hd = 16, nq = B * T * NH * hd, nk = B * T * NKV * hd;
    double *q = drand_new(nq, 1), *k = drand_new(nk, 1), *v = drand_new(nk, 1);
    double *R = drand_new(nq, 1), *o = dalloc(nq), *att = dalloc(B * NH * T * T);
    double *dq = dalloc(nq), *dk = dalloc(nk), *dv = dalloc(nk);
    float *fq = fcopy(q, nq), *fk = fcopy(k, nk), *fv = fcopy(v, nk), *fR = fcopy(R, nq);
    float *fo = calloc(nq, 4), *fatt = calloc(B * NH * T * T, 4);
    float *fdq = calloc(nq, 4), *fdk = calloc(nk, 4), *fdv = calloc(nk, 4);
    /* round the double inputs to the float values so that only the arithmetic differs */
    double *q2 = dcopy(fq, nq), *k2 = dcopy(fk, nk), *v2 = dcopy(fv, nk), *R2 = dcopy(fR, nq);
    brd_attention_forward(o, att, q2, k2, v2, B, T, NH, NKV, hd);
    brd_attention_backward(dq, dk, dv, R2, att, q2, k2, v2, B, T, NH, NKV, hd);
    br_attention_forward(fo, fatt, fq, fk, fv, B, T, NH, NKV, hd);
    br_attention_backward(fdq, fdk, fdv, fR, fatt, fq, fk, fv, B, T, NH, NKV, hd);
    cmp("attention out", fo, o, nq, FTOL);
    cmp("attention att", fatt, att, B * NH * T * T, FTOL);
    cmp("attention dq", fdq, dq, nq, FTOL);
    cmp("attention dk", fdk, dk, nk, FTOL);
    cmp("attention dv", fdv, dv, nk, FTOL);
    free(q), free(k), free(v), free(R), free(o), free(att), free(dq), free(dk), free(dv);
    free(fq), free(fk), free(fv), free(fR), free(fo), free(fatt), free(fdq), free(fdk), free(fdv);
    free(q2), free(k2), free(v2), free(R2);

    /* RMSNorm, SwiGLU, softmax, cross-entropy, linear at sizes that take the threaded paths */
    size_t N = 96, C = 768, V = 1000, OC = 200;
    double *x = drand_new(N * C, 2), *w = drand_new(C, 1), *g = drand_new(N * C, 1);
    float *fx = fcopy(x, N * C), *fw = fcopy(w, C), *fg = fcopy(g, N * C);
    double *x2 = dcopy(fx, N * C), *w2 = dcopy(fw, C), *g2 = dcopy(fg, N * C);
    double *y = dalloc(N * C), *rs = dalloc(N), *dx = dalloc(N * C), *dw = dalloc(C);
    float *fy = calloc(N * C, 4), *frs = calloc(N, 4), *fdx = calloc(N * C, 4), *fdw = calloc(C, 4);
    brd_rmsnorm_forward(y, rs, x2, w2, 1e-5, N, C);
    brd_rmsnorm_backward(dx, dw, g2, x2, w2, rs, N, C);
    br_rmsnorm_forward(fy, frs, fx, fw, 1e-5f, N, C);
    br_rmsnorm_backward(fdx, fdw, fg, fx, fw, frs, N, C);
    cmp("rmsnorm out", fy, y, N * C, FTOL);
    cmp("rmsnorm dinp", fdx, dx, N * C, FTOL);
    cmp("rmsnorm dw", fdw, dw, C, FTOL);

    memset(dx, 0, N * C * sizeof *dx), memset(fdx, 0, N * C * 4);
    double *dup = dalloc(N * C);
    float *fdup = calloc(N * C, 4);
    brd_swiglu_forward(y, x2, g2, N * C);
    brd_swiglu_backward(dx, dup, w2, x2, g2, C); /* first C entries with dout = w */
    br_swiglu_forward(fy, fx, fg, N * C);
    br_swiglu_backward(fdx, fdup, fw, fx, fg, C);
    cmp("swiglu out", fy, y, N * C, FTOL);
    cmp("swiglu dgate", fdx, dx, C, FTOL);
    cmp("swiglu dup", fdup, dup, C, FTOL);

    size_t nl = N * V;
    double *lg = drand_new(nl, 8), *pr = dalloc(nl), *ls = dalloc(N), *dl = dalloc(nl);
    float *flg = fcopy(lg, nl), *fpr = calloc(nl, 4), *fls = calloc(N, 4), *fdl = calloc(nl, 4);
    double *lg2 = dcopy(flg, nl);
    int32_t *tg = malloc(N * sizeof *tg);
    for (size_t i = 0; i < N; i++) tg[i] = i % 7 == 3 ? -1 : (int32_t)br_rng_below(&rng, V);
    brd_softmax_forward(pr, lg2, N, V);
    br_softmax_forward(fpr, flg, N, V);
    cmp("softmax out", fpr, pr, nl, FTOL);
    double m = brd_xent_forward(ls, pr, lg2, tg, N, V);
    float fm = br_xent_forward(fls, fpr, flg, tg, N, V);
    CHECK_REL(fm, m, 1e-6, 1e-6);
    cmp("xent losses", fls, ls, N, FTOL);
    brd_xent_backward(dl, pr, tg, 0.01, N, V);
    br_xent_backward(fdl, fpr, tg, 0.01f, N, V);
    cmp("xent dlogits", fdl, dl, nl, FTOL);
    memset(fdl, 0, nl * 4);
    fm = br_xent_fused(fls, fdl, flg, tg, 0.01f, N, V);
    CHECK_REL(fm, m, 1e-6, 1e-6);
    cmp("xent fused dlogits", fdl, dl, nl, FTOL);
    free(lg), free(pr), free(ls), free(dl), free(flg), free(fpr), free(fls), free(fdl), free(lg2);
    free(tg);

    double *W = drand_new(OC * C, 1), *out = dalloc(N * OC), *dW = dalloc(OC * C);
    float *fW = fcopy(W, OC * C), *fout = calloc(N * OC, 4), *fdW = calloc(OC * C, 4);
    double *W2 = dcopy(fW, OC * C);
    memset(dx, 0, N * C * sizeof *dx), memset(fdx, 0, N * C * 4);
    brd_linear_forward(out, x2, W2, N, C, OC);
    br_linear_forward(fout, fx, fW, N, C, OC);
    cmp("linear out", fout, out, N * OC, FTOL);
    brd_linear_backward(dx, dW, out, x2, W2, N, C, OC);
    br_linear_backward(fdx, fdW, fout, fx, fW, N, C, OC);
    cmp("linear dinp", fdx, dx, N * C, FTOL);
    cmp("linear dw", fdW, dW, OC * C, FTOL);
    free(W), free(out), free(dW), free(fW), free(fout), free(fdW), free(W2);
    free(x), free(w), free(g), free(fx), free(fw), free(fg), free(x2), free(w2), free(g2);
    free(y), free(rs), free(dx), free(dw), free(fy), free(frs), free(fdx), free(fdw);
    free(dup), free(fdup);
}

/* A NaN anywhere in a row (vector body or tail) makes the whole softmax row NaN, as PyTorch
 * does, and the cross-entropy loss NaN; -inf entries (masked logits) are just zero. */
static void softmax_nonfinite(void)
{
    enum { V = 70 };
    float x[V], p[V];
    for (size_t at = 0; at < V; at += 23) {
        for (size_t j = 0; j < V; j++) x[j] = 0.01f * (float)j;
        x[at] = NAN;
        br_softmax_forward(p, x, 1, V);
        int nans = 0;
        for (size_t j = 0; j < V; j++) nans += isnan(p[j]);
        CHECK_MSG(nans == V, "softmax with NaN at %zu: %d of %d outputs NaN", at, nans, V);
        float loss, probs[V];
        int32_t tg = 3;
        float mean = br_xent_forward(&loss, probs, x, &tg, 1, V);
        CHECK_MSG(isnan(mean), "cross-entropy with a NaN logit at %zu: loss %g", at, (double)mean);
    }
    for (size_t j = 0; j < V; j++) x[j] = j % 2 ? -INFINITY : 0.0f;
    br_softmax_forward(p, x, 1, V);
    for (size_t j = 0; j < V; j++) CHECK(j % 2 ? p[j] == 0.0f : fabsf(p[j] - 1.0f / 35.0f) < 1e-6f);
}

int main(void)
{
    br_rng_seed(&rng, 42);
    softmax_nonfinite();
    printf("finite-difference gradient checks (double, h=%g, tol %g):\n", FD_H, TOL);
    test_linear();
    test_embedding();
    test_rmsnorm();
    test_rope();
    test_attention_case(2, 7, 2, 2, 4);  /* MHA, T=7 in row blocks of 3 */
    test_attention_case(2, 7, 4, 2, 3);  /* GQA: NH=4, NKV=2 */
    test_attention_case(1, 5, 3, 1, 2);  /* MQA */
    test_swiglu();
    test_softmax();
    test_xent();
    float_vs_double();
    return th_exit();
}
