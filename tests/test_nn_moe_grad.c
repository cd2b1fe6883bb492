/* MoE layers (nn/moe.h): forward against straightforward double-precision references (no
 * bucketing, per-expert attention with its own matrices), and every backward against central
 * finite differences of those references in double precision.
 *
 * The loss is L = sum(out * P) + alpha*lb + beta*z with a fixed random P, so dout = P. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/rng.h"
#include "harness.h"
#include "nn/moe.h"
#include "nn/nn.h"

static br_rng_t rng;

static float *randn(size_t n, float std)
{
    float *p = br_alloc((n ? n : 1) * sizeof(float));
    br_rng_fill_normal(&rng, p, n, std);
    return p;
}

static double *to_d(const float *x, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* Worst |a - f| / (|f| + floor) over a gradient, floor = 1e-2 * max|f| + 1e-7. */
static void check_grad(const char *what, const float *an, const double *fd, size_t n, double tol)
{
    double mx = 0, worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(fd[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs(an[i] - fd[i]) / (fabs(fd[i]) + 1e-2 * mx + 1e-7);
        if (e > worst) worst = e, wi = i;
    }
    CHECK_MSG(worst <= tol && mx > 0, "%s: worst relative error %.3g at %zu (analytic %.8g, numeric %.8g, max|g| %.3g)",
              what, worst, wi, n ? an[wi] : 0.0, n ? fd[wi] : 0.0, mx);
}

static double silu(double x) { return x / (1 + exp(-x)); }

/* =====================  MoE FFN reference (double, no bucketing)  ===================== */

typedef struct {
    double *router, *wg, *wu, *wd, *sg, *su, *sd; /* same shapes as br_moe_params_t */
} dmoe_t;

static void dffn(double *y /* (C) += scale * FFN(x) */, double scale, const double *x,
                 const double *wg, const double *wu, const double *wd, size_t C, size_t F)
{
    double *a = malloc(F * sizeof(double));
    for (size_t f = 0; f < F; f++) {
        double g = 0, u = 0;
        for (size_t i = 0; i < C; i++) g += wg[f * C + i] * x[i], u += wu[f * C + i] * x[i];
        a[f] = silu(g) * u;
    }
    for (size_t i = 0; i < C; i++) {
        double s = 0;
        for (size_t f = 0; f < F; f++) s += wd[i * F + f] * a[f];
        y[i] += scale * s;
    }
    free(a);
}

/* Same order as br_moe_params_bind. */
static void dmoe_bind(dmoe_t *d, double *buf, const br_moe_cfg_t *c)
{
    size_t EFC = c->E * c->F * c->C, FsC = c->Fs * c->C;
    d->router = c->E > 1 ? buf : NULL;
    buf += c->E > 1 ? c->E * c->C : 0;
    d->wg = buf, buf += EFC;
    d->wu = buf, buf += EFC;
    d->wd = buf, buf += EFC;
    d->sg = buf, buf += FsC;
    d->su = buf, buf += FsC;
    d->sd = buf;
}

/* Returns L = sum(out*P) + alpha*lb + beta*z; out (N,C) when not NULL. */
static double ref_moe(double *out, const double *x, const dmoe_t *p, const double *P,
                      const br_moe_cfg_t *c, size_t N, double *lb_out, double *z_out)
{
    size_t C = c->C, E = c->E, k = c->k;
    double *o = calloc(N * C, sizeof(double));
    double *probs = calloc(N * E, sizeof(double));
    double *cnt = calloc(E, sizeof(double));
    double z = 0;
    for (size_t t = 0; t < N; t++) {
        const double *xt = x + t * C;
        if (c->Fs) dffn(o + t * C, 1, xt, p->sg, p->su, p->sd, C, c->Fs);
        if (E == 1) {
            dffn(o + t * C, 1, xt, p->wg, p->wu, p->wd, C, c->F);
            continue;
        }
        double lg[64], mx = -1e300, s = 0;
        for (size_t e = 0; e < E; e++) {
            lg[e] = 0;
            for (size_t i = 0; i < C; i++) lg[e] += p->router[e * C + i] * xt[i];
            mx = fmax(mx, lg[e]);
        }
        for (size_t e = 0; e < E; e++) s += exp(lg[e] - mx);
        double lse = mx + log(s);
        z += lse * lse;
        double *pr = probs + t * E;
        for (size_t e = 0; e < E; e++) pr[e] = exp(lg[e] - lse);
        /* top-k by repeated argmax (ties to the lower index) */
        int chosen[64] = {0};
        size_t idx[64];
        double S = 0;
        for (size_t j = 0; j < k; j++) {
            size_t best = E;
            for (size_t e = 0; e < E; e++)
                if (!chosen[e] && (best == E || pr[e] > pr[best])) best = e;
            chosen[best] = 1;
            idx[j] = best;
            S += pr[best];
            cnt[best] += 1;
        }
        for (size_t j = 0; j < k; j++) {
            size_t e = idx[j];
            double w = c->renorm ? pr[e] / S : pr[e];
            dffn(o + t * C, w, xt, p->wg + e * c->F * C, p->wu + e * c->F * C,
                 p->wd + e * C * c->F, C, c->F);
        }
    }
    double L = 0, lb = 0;
    for (size_t i = 0; i < N * C; i++) L += o[i] * P[i];
    if (E > 1) {
        for (size_t e = 0; e < E; e++) {
            double Pm = 0;
            for (size_t t = 0; t < N; t++) Pm += probs[t * E + e];
            lb += cnt[e] / (double)(N * k) * Pm / (double)N;
        }
        lb *= (double)E;
        z /= (double)N;
        L += c->alpha * lb + c->beta * z;
    }
    if (lb_out) *lb_out = lb;
    if (z_out) *z_out = z;
    if (out) memcpy(out, o, N * C * sizeof(double));
    free(o), free(probs), free(cnt);
    return L;
}

/* Central differences of ref_moe w.r.t. every entry of buffer `v` (n values). */
static void fd_moe(double *fd, double *v, size_t n, const double *x, const dmoe_t *p,
                   const double *P, const br_moe_cfg_t *c, size_t N)
{
    const double h = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double keep = v[i];
        v[i] = keep + h;
        double lp = ref_moe(NULL, x, p, P, c, N, NULL, NULL);
        v[i] = keep - h;
        double lm = ref_moe(NULL, x, p, P, c, N, NULL, NULL);
        v[i] = keep;
        fd[i] = (lp - lm) / (2 * h);
    }
}

static void test_moe_case(const char *name, br_moe_cfg_t c, size_t N, bool dead_expert)
{
    size_t C = c.C;
    float *buf = randn(br_moe_nparams(&c), 0.4f);
    br_moe_params_t p;
    br_moe_params_bind(&p, buf, &c);
    if (c.E > 1) br_rng_fill_normal(&rng, p.router, c.E * C, 0.8f);
    float *x = randn(N * C, 1.0f);
    if (dead_expert) {
        /* every x has a large first component that pushes expert E-1's logit far down:
         * its bucket stays empty */
        for (size_t t = 0; t < N; t++) x[t * C] = 3.0f + fabsf(x[t * C]);
        for (size_t i = 0; i < C; i++) p.router[(c.E - 1) * C + i] = i ? 0.0f : -4.0f;
    }
    float *P = randn(N * C, 1.0f);
    float *out = br_alloc(N * C * sizeof(float));
    br_moe_ws_t ws;
    CHECK_OK(br_moe_ws_init(&ws, &c, N, true));
    br_moe_ffn_forward(out, &ws, x, &p, &c, N);

    /* double copies */
    size_t np = br_moe_nparams(&c);
    double *dbuf = to_d(buf, np), *dx = to_d(x, N * C), *dP = to_d(P, N * C);
    dmoe_t dp;
    dmoe_bind(&dp, dbuf, &c);
    double *rout = malloc(N * C * sizeof(double)), lb, z;
    ref_moe(rout, dx, &dp, dP, &c, N, &lb, &z);
    double ferr = 0;
    for (size_t i = 0; i < N * C; i++) ferr = fmax(ferr, fabs(out[i] - rout[i]) / (1 + fabs(rout[i])));
    CHECK_MSG(ferr < 1e-5, "%s: forward differs from the reference by %.3g", name, ferr);
    if (c.E > 1) {
        CHECK_NEAR(ws.lb, lb, 1e-5);
        CHECK_NEAR(ws.z, z, 1e-5 * (1 + z));
        /* bucketing invariants: counts add up, perm is a permutation, buckets are stable */
        size_t tot = 0;
        for (size_t e = 0; e < c.E; e++) tot += ws.count[e];
        CHECK_INT(tot, N * c.k);
        int ok = 1;
        for (size_t a = 0; a < N * c.k; a++) ok &= ws.perm[ws.pos[a]] == (int32_t)a;
        for (size_t e = 0; e < c.E; e++)
            for (size_t r = ws.offset[e]; r < ws.offset[e + 1]; r++) {
                ok &= ws.topk[ws.perm[r]] == (int32_t)e;
                if (r > ws.offset[e]) ok &= ws.perm[r] > ws.perm[r - 1];
            }
        CHECK_MSG(ok, "%s: bucketing permutation is inconsistent", name);
    }

    /* analytic gradients */
    float *gbuf = br_alloc(np * sizeof(float)), *gx = br_alloc(N * C * sizeof(float));
    br_moe_params_t g;
    br_moe_params_bind(&g, gbuf, &c);
    br_moe_ffn_backward(gx, &g, P, x, &p, &ws, &c, N, 1.0f);

    double *fd = malloc((np > N * C ? np : N * C) * sizeof(double));
    char what[128];
    fd_moe(fd, dx, N * C, dx, &dp, dP, &c, N);
    snprintf(what, sizeof what, "%s: d inp", name);
    check_grad(what, gx, fd, N * C, 2e-3);
    fd_moe(fd, dbuf, np, dx, &dp, dP, &c, N);
    size_t off = 0;
    if (c.E > 1) {
        snprintf(what, sizeof what, "%s: d router", name);
        check_grad(what, g.router, fd, c.E * C, 2e-3);
        off += c.E * C;
    }
    snprintf(what, sizeof what, "%s: d experts (gate, up, down)", name);
    check_grad(what, g.w_gate, fd + off, 3 * c.E * c.F * C, 2e-3);
    off += 3 * c.E * c.F * C;
    if (c.Fs) {
        snprintf(what, sizeof what, "%s: d shared expert", name);
        check_grad(what, g.s_gate, fd + off, 3 * c.Fs * C, 2e-3);
    }
    if (dead_expert) {
        CHECK_INT(ws.count[c.E - 1], 0);
        double s = 0;
        for (size_t i = 0; i < c.F * C; i++)
            s += fabs(g.w_gate[(c.E - 1) * c.F * C + i]) + fabs(g.w_up[(c.E - 1) * c.F * C + i]) +
                 fabs(g.w_down[(c.E - 1) * c.F * C + i]);
        CHECK_MSG(s == 0, "%s: an unused expert got gate gradient %g", name, s);
    }
    br_moe_ws_free(&ws);
    br_free(buf), br_free(x), br_free(P), br_free(out), br_free(gbuf), br_free(gx);
    free(dbuf), free(dx), free(dP), free(rout), free(fd);
}

static void test_moe(void)
{
    br_moe_cfg_t c = {.C = 8, .F = 6, .E = 4, .k = 2, .alpha = 0.1f, .beta = 0.05f};
    test_moe_case("top-2 plain", c, 11, false);
    c.renorm = true;
    c.Fs = 5;
    test_moe_case("top-2 renorm + shared", c, 11, false);
    c.k = 1;
    c.renorm = false;
    test_moe_case("top-1 + shared (Nexus/BAM style)", c, 13, false);
    c.renorm = true;
    c.Fs = 0;
    test_moe_case("top-1 renorm (router gets only aux gradients)", c, 9, false);
    c.E = 3, c.k = 3, c.renorm = true;
    test_moe_case("top-3 of 3", c, 7, false);
    c.E = 5, c.k = 2, c.renorm = false;
    test_moe_case("top-2 of 5 with an empty expert", c, 6, true);
    br_moe_cfg_t d = {.C = 8, .F = 12, .E = 1, .k = 1};
    test_moe_case("dense (E = 1)", d, 10, false);
    d.Fs = 4;
    test_moe_case("dense + shared", d, 10, false);

    br_moe_cfg_t bad = {.C = 8, .F = 6, .E = 4, .k = 5};
    CHECK_STATUS(br_moe_cfg_check(&bad), BR_EINVAL);
    bad.k = 0;
    CHECK_STATUS(br_moe_cfg_check(&bad), BR_EINVAL);
    bad.k = 1, bad.E = 0;
    CHECK_STATUS(br_moe_cfg_check(&bad), BR_EINVAL);
}

/* aux_scale = 0 leaves the auxiliary gradients out: router gradient equals the one with
 * alpha = beta = 0. */
static void test_moe_aux_scale(void)
{
    br_moe_cfg_t c = {.C = 6, .F = 4, .E = 3, .k = 1, .alpha = 0.5f, .beta = 0.5f};
    br_moe_cfg_t c0 = c;
    c0.alpha = c0.beta = 0;
    size_t N = 8, np = br_moe_nparams(&c);
    float *buf = randn(np, 0.5f), *x = randn(N * 6, 1), *P = randn(N * 6, 1);
    float *out = br_alloc(N * 6 * 4), *gx = br_alloc(N * 6 * 4);
    float *g1 = br_alloc(np * 4), *g2 = br_alloc(np * 4);
    br_moe_params_t p, ga, gb;
    br_moe_params_bind(&p, buf, &c);
    br_moe_params_bind(&ga, g1, &c);
    br_moe_params_bind(&gb, g2, &c);
    br_moe_ws_t ws;
    CHECK_OK(br_moe_ws_init(&ws, &c, N, true));
    br_moe_ffn_forward(out, &ws, x, &p, &c, N);
    br_moe_ffn_backward(gx, &ga, P, x, &p, &ws, &c, N, 0.0f);
    br_moe_ffn_forward(out, &ws, x, &p, &c0, N);
    br_moe_ffn_backward(gx, &gb, P, x, &p, &ws, &c0, N, 1.0f);
    double d = 0, s = 0;
    for (size_t i = 0; i < 3 * 6; i++) d += fabs(g1[i] - g2[i]), s += fabs(g1[i]);
    CHECK_MSG(d <= 1e-6 * (1 + s), "aux_scale 0 vs alpha=beta=0: router gradients differ by %g", d);
    br_moe_ws_free(&ws);
    br_free(buf), br_free(x), br_free(P), br_free(out), br_free(gx), br_free(g1), br_free(g2);
}

static void test_topk(void)
{
    float p[] = {0.1f, 0.4f, 0.4f, 0.1f, /**/ 0.7f, 0.1f, 0.1f, 0.1f};
    int32_t idx[4];
    br_topk_rows(idx, p, 2, 4, 2);
    CHECK_INT(idx[0], 1);
    CHECK_INT(idx[1], 2);
    CHECK_INT(idx[2], 0);
    CHECK_INT(idx[3], 1);
    br_topk_rows(idx, p, 2, 4, 1);
    CHECK_INT(idx[0], 1);
    CHECK_INT(idx[1], 0);
}

/* ============================  Nexus: projector + MoE  ============================ */

static double ref_nexus_moe(const double *W1, const double *W2, const double *dom,
                            const br_nexus_cfg_t *nc, double *router, const double *x,
                            dmoe_t *p, const double *P, const br_moe_cfg_t *c, size_t N)
{
    size_t H = nc->H, D = nc->D;
    for (size_t e = 0; e < nc->E; e++) {
        double *h = malloc(H * sizeof(double));
        for (size_t j = 0; j < H; j++) {
            double zg = 0, zu = 0;
            for (size_t i = 0; i < D; i++)
                zg += W1[j * D + i] * dom[e * D + i], zu += W1[(H + j) * D + i] * dom[e * D + i];
            h[j] = silu(zg) * zu;
        }
        for (size_t o = 0; o < nc->C; o++) {
            double s = 0;
            for (size_t j = 0; j < H; j++) s += W2[o * H + j] * h[j];
            router[e * nc->C + o] = s;
        }
        free(h);
    }
    p->router = router;
    return ref_moe(NULL, x, p, P, c, N, NULL, NULL);
}

static void test_nexus(void)
{
    br_nexus_cfg_t nc = {.E = 3, .D = 8, .H = 5, .C = 8};
    br_moe_cfg_t c = {.C = 8, .F = 6, .E = 3, .k = 1, .Fs = 7, .alpha = 0.1f, .beta = 0.01f};
    size_t N = 12, np = br_moe_nparams(&c);
    float *W1 = randn(2 * nc.H * nc.D, 0.6f), *W2 = randn(nc.C * nc.H, 0.6f);
    float *dom = randn(nc.E * nc.D, 1.0f);
    float *buf = randn(np, 0.4f), *x = randn(N * c.C, 1), *P = randn(N * c.C, 1);
    float *R = br_alloc(nc.E * nc.C * 4), *z = br_alloc(nc.E * 2 * nc.H * 4), *h = br_alloc(nc.E * nc.H * 4);
    br_nexus_forward(R, z, h, dom, W1, W2, &nc);
    br_moe_params_t p, g;
    br_moe_params_bind(&p, buf, &c);
    p.router = R; /* the projector's output is the router */
    float *gbuf = br_alloc(np * 4), *dR = br_alloc(nc.E * nc.C * 4), *gx = br_alloc(N * c.C * 4);
    br_moe_params_bind(&g, gbuf, &c);
    g.router = dR;
    br_moe_ws_t ws;
    CHECK_OK(br_moe_ws_init(&ws, &c, N, true));
    float *out = br_alloc(N * c.C * 4);
    br_moe_ffn_forward(out, &ws, x, &p, &c, N);
    br_moe_ffn_backward(gx, &g, P, x, &p, &ws, &c, N, 1.0f);
    float *dW1 = br_alloc(2 * nc.H * nc.D * 4), *dW2 = br_alloc(nc.C * nc.H * 4);
    float *dz = br_alloc(nc.E * 2 * nc.H * 4), *dh = br_alloc(nc.E * nc.H * 4);
    br_nexus_backward(dW1, dW2, dR, dom, W1, W2, z, h, dz, dh, &nc);

    double *dW1d = to_d(W1, 2 * nc.H * nc.D), *dW2d = to_d(W2, nc.C * nc.H);
    double *domd = to_d(dom, nc.E * nc.D), *dbuf = to_d(buf, np), *xd = to_d(x, N * c.C);
    double *Pd = to_d(P, N * c.C), *router = malloc(nc.E * nc.C * sizeof(double));
    dmoe_t dp;
    dmoe_bind(&dp, dbuf, &c); /* its router slot is replaced by the projector's rows */
    /* router rows from the reference projector match the float ones */
    ref_nexus_moe(dW1d, dW2d, domd, &nc, router, xd, &dp, Pd, &c, N);
    double rerr = 0;
    for (size_t i = 0; i < nc.E * nc.C; i++) rerr = fmax(rerr, fabs(router[i] - R[i]));
    CHECK_MSG(rerr < 1e-5, "nexus: router rows differ from the reference by %g", rerr);
    const double hstep = 1e-6;
    double *fd1 = malloc(2 * nc.H * nc.D * sizeof(double)), *fd2 = malloc(nc.C * nc.H * sizeof(double));
    struct { double *v; double *fd; size_t n; } sets[] = {{dW1d, fd1, 2 * nc.H * nc.D}, {dW2d, fd2, nc.C * nc.H}};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < sets[s].n; i++) {
            double keep = sets[s].v[i];
            sets[s].v[i] = keep + hstep;
            double lp = ref_nexus_moe(dW1d, dW2d, domd, &nc, router, xd, &dp, Pd, &c, N);
            sets[s].v[i] = keep - hstep;
            double lm = ref_nexus_moe(dW1d, dW2d, domd, &nc, router, xd, &dp, Pd, &c, N);
            sets[s].v[i] = keep;
            sets[s].fd[i] = (lp - lm) / (2 * hstep);
        }
    check_grad("nexus: d W1 (projector in)", dW1, fd1, 2 * nc.H * nc.D, 2e-3);
    check_grad("nexus: d W2 (projector out)", dW2, fd2, nc.C * nc.H, 2e-3);
    br_moe_ws_free(&ws);
    br_free(W1), br_free(W2), br_free(dom), br_free(buf), br_free(x), br_free(P), br_free(R);
    br_free(z), br_free(h), br_free(gbuf), br_free(dR), br_free(gx), br_free(out), br_free(dW1);
    br_free(dW2), br_free(dz), br_free(dh);
    free(dW1d), free(dW2d), free(domd), free(dbuf), free(xd), free(Pd), free(router), free(fd1), free(fd2);
}

/* ==========================  Mixture of attention reference  ========================== */

/* Per-expert weights, each expert with its own matrices (shared-KV: one K, V). */
typedef struct {
    double *router;  /* (n,C) */
    double *wq[8];   /* (NH*hd, C) */
    double *wk[8];   /* (NKV*hd, C); shared-KV uses [0] */
    double *wv[8];
    double *wo[8];   /* (C, NH*hd) */
} dmoa_t;

static void drope(double *v /* (hd) */, size_t pos, size_t hd, double theta)
{
    size_t h2 = hd / 2;
    for (size_t i = 0; i < h2; i++) {
        double f = (double)pos * pow(theta, -2.0 * (double)i / (double)hd);
        double a = v[i], b = v[i + h2];
        v[i] = a * cos(f) - b * sin(f);
        v[i + h2] = b * cos(f) + a * sin(f);
    }
}

static double ref_moa(double *out, const double *u, const dmoa_t *p, const double *P,
                      const br_moa_cfg_t *c, size_t B, size_t T, double theta)
{
    size_t C = c->C, NH = c->NH, NKV = c->NKV, hd = c->hd, n = c->n, N = B * T;
    size_t r = NH / NKV;
    double *o = calloc(N * C, sizeof(double)), zsum = 0;
    double *g = malloc(N * n * sizeof(double));
    for (size_t t = 0; t < N; t++) {
        if (n == 1) {
            g[t] = 1;
            continue;
        }
        double lg[16], mx = -1e300, s = 0;
        for (size_t j = 0; j < n; j++) {
            lg[j] = 0;
            for (size_t i = 0; i < C; i++) lg[j] += p->router[j * C + i] * u[t * C + i];
            mx = fmax(mx, lg[j]);
        }
        for (size_t j = 0; j < n; j++) s += exp(lg[j] - mx);
        double lse = mx + log(s);
        zsum += lse * lse;
        for (size_t j = 0; j < n; j++) g[t * n + j] = exp(lg[j] - lse);
    }
    double *q = malloc(N * NH * hd * sizeof(double)), *k = malloc(N * NKV * hd * sizeof(double));
    double *v = malloc(N * NKV * hd * sizeof(double)), *a = malloc(N * NH * hd * sizeof(double));
    for (size_t j = 0; j < n; j++) {
        const double *wk = p->wk[c->shared_kv ? 0 : j], *wv = p->wv[c->shared_kv ? 0 : j];
        for (size_t t = 0; t < N; t++) {
            for (size_t m = 0; m < NH * hd; m++) {
                double s = 0;
                for (size_t i = 0; i < C; i++) s += p->wq[j][m * C + i] * u[t * C + i];
                q[t * NH * hd + m] = s;
            }
            for (size_t m = 0; m < NKV * hd; m++) {
                double s = 0, s2 = 0;
                for (size_t i = 0; i < C; i++) s += wk[m * C + i] * u[t * C + i], s2 += wv[m * C + i] * u[t * C + i];
                k[t * NKV * hd + m] = s, v[t * NKV * hd + m] = s2;
            }
            for (size_t h = 0; h < NH; h++) drope(q + (t * NH + h) * hd, t % T, hd, theta);
            for (size_t h = 0; h < NKV; h++) drope(k + (t * NKV + h) * hd, t % T, hd, theta);
        }
        for (size_t b = 0; b < B; b++)
            for (size_t h = 0; h < NH; h++)
                for (size_t t = 0; t < T; t++) {
                    double sc[64], mx = -1e300, s = 0;
                    const double *qq = q + ((b * T + t) * NH + h) * hd;
                    for (size_t s2 = 0; s2 <= t; s2++) {
                        const double *kk = k + ((b * T + s2) * NKV + h / r) * hd;
                        double d = 0;
                        for (size_t i = 0; i < hd; i++) d += qq[i] * kk[i];
                        sc[s2] = d / sqrt((double)hd);
                        mx = fmax(mx, sc[s2]);
                    }
                    for (size_t s2 = 0; s2 <= t; s2++) s += exp(sc[s2] - mx);
                    double *aa = a + ((b * T + t) * NH + h) * hd;
                    for (size_t i = 0; i < hd; i++) aa[i] = 0;
                    for (size_t s2 = 0; s2 <= t; s2++) {
                        double w = exp(sc[s2] - mx) / s;
                        const double *vv = v + ((b * T + s2) * NKV + h / r) * hd;
                        for (size_t i = 0; i < hd; i++) aa[i] += w * vv[i];
                    }
                }
        for (size_t t = 0; t < N; t++)
            for (size_t i = 0; i < C; i++) {
                double s = 0;
                for (size_t m = 0; m < NH * hd; m++) s += p->wo[j][i * NH * hd + m] * a[t * NH * hd + m];
                o[t * C + i] += g[t * n + j] * s;
            }
    }
    double L = 0;
    for (size_t i = 0; i < N * C; i++) L += o[i] * P[i];
    if (n > 1) L += c->beta * zsum / (double)N;
    if (out) memcpy(out, o, N * C * sizeof(double));
    free(o), free(g), free(q), free(k), free(v), free(a);
    return L;
}

/* Stacked parameters (double mirror of the float buffer, expert-major) -> per-expert
 * matrices. */
static void moa_unstack(dmoa_t *d, const double *buf, const br_moa_cfg_t *c)
{
    size_t C = c->C, hd = c->hd, n = c->n, Qe = c->NH * hd * C, KVe = c->NKV * hd * C;
    const double *router = buf, *wq = buf + (n > 1 ? n * C : 0), *wk = wq + n * Qe;
    const double *wv = wk + (c->shared_kv ? 1 : n) * KVe, *wo = wv + (c->shared_kv ? 1 : n) * KVe;
    for (size_t i = 0; n > 1 && i < n * C; i++) d->router[i] = router[i];
    for (size_t j = 0; j < n; j++) {
        memcpy(d->wq[j], wq + j * Qe, Qe * sizeof(double));
        memcpy(d->wo[j], wo + j * Qe, Qe * sizeof(double));
        if (c->shared_kv && j > 0) continue;
        memcpy(d->wk[j], wk + j * KVe, KVe * sizeof(double));
        memcpy(d->wv[j], wv + j * KVe, KVe * sizeof(double));
    }
}

static void test_moa_case(const char *name, br_moa_cfg_t c, size_t B, size_t T)
{
    const float theta = 10000.0f;
    size_t C = c.C, N = B * T, np = br_moa_nparams(&c), n = c.n, hd = c.hd;
    float *buf = randn(np, 0.5f), *u = randn(N * C, 1), *P = randn(N * C, 1);
    br_moa_params_t p, g;
    br_moa_params_bind(&p, buf, &c);
    float *cosb = br_alloc(T * hd / 2 * 4), *sinb = br_alloc(T * hd / 2 * 4);
    br_rope_tables(cosb, sinb, T, hd, theta);
    br_moa_ws_t ws;
    CHECK_OK(br_moa_ws_init(&ws, &c, B, T, true));
    float *out = br_alloc(N * C * 4), *gbuf = br_alloc(np * 4), *du = br_alloc(N * C * 4);
    br_moa_params_bind(&g, gbuf, &c);
    br_moa_forward(out, &ws, u, &p, &c, cosb, sinb, B, T);
    br_moa_backward(du, &g, P, u, &p, &ws, &c, cosb, sinb, B, T, 1.0f);

    /* double per-expert copies */
    dmoa_t d = {0};
    size_t Qe = c.NH * hd * C, KVe = c.NKV * hd * C;
    d.router = malloc((n * C + 1) * sizeof(double));
    for (size_t j = 0; j < n; j++) {
        d.wq[j] = malloc(Qe * sizeof(double));
        d.wo[j] = malloc(Qe * sizeof(double));
        d.wk[j] = malloc(KVe * sizeof(double));
        d.wv[j] = malloc(KVe * sizeof(double));
    }
    double *pd = to_d(buf, np);
    moa_unstack(&d, pd, &c);
    double *ud = to_d(u, N * C), *Pd = to_d(P, N * C), *rout = malloc(N * C * sizeof(double));
    ref_moa(rout, ud, &d, Pd, &c, B, T, theta);
    double ferr = 0;
    for (size_t i = 0; i < N * C; i++) ferr = fmax(ferr, fabs(out[i] - rout[i]) / (1 + fabs(rout[i])));
    CHECK_MSG(ferr < 1e-5, "%s: forward differs from the per-expert reference by %.3g", name, ferr);

    /* finite differences w.r.t. u and w.r.t. every stacked parameter (perturb the float
     * layout, re-derive the per-expert doubles) */
    const double hstep = 1e-6;
    double *fdu = malloc(N * C * sizeof(double));
    for (size_t i = 0; i < N * C; i++) {
        double keep = ud[i];
        ud[i] = keep + hstep;
        double lp = ref_moa(NULL, ud, &d, Pd, &c, B, T, theta);
        ud[i] = keep - hstep;
        double lm = ref_moa(NULL, ud, &d, Pd, &c, B, T, theta);
        ud[i] = keep;
        fdu[i] = (lp - lm) / (2 * hstep);
    }
    char what[128];
    snprintf(what, sizeof what, "%s: d inp", name);
    check_grad(what, du, fdu, N * C, 2e-3);
    double *fdp = malloc(np * sizeof(double));
    for (size_t i = 0; i < np; i++) {
        double keep = pd[i], L[2];
        for (int s = 0; s < 2; s++) {
            pd[i] = keep + (s ? -hstep : hstep);
            moa_unstack(&d, pd, &c);
            L[s] = ref_moa(NULL, ud, &d, Pd, &c, B, T, theta);
        }
        pd[i] = keep;
        fdp[i] = (L[0] - L[1]) / (2 * hstep);
    }
    size_t off = 0;
    if (n > 1) {
        snprintf(what, sizeof what, "%s: d router", name);
        check_grad(what, g.router, fdp, n * C, 2e-3);
        off = n * C;
    }
    size_t Qw = n * c.NH * hd, KVw = br_moa_kv_heads(&c) * hd;
    snprintf(what, sizeof what, "%s: d wq", name);
    check_grad(what, g.wq, fdp + off, Qw * C, 2e-3);
    snprintf(what, sizeof what, "%s: d wk, wv", name);
    check_grad(what, g.wk, fdp + off + Qw * C, 2 * KVw * C, 2e-3);
    snprintf(what, sizeof what, "%s: d wo", name);
    check_grad(what, g.wo, fdp + off + Qw * C + 2 * KVw * C, Qw * C, 2e-3);

    br_moa_ws_free(&ws);
    for (size_t j = 0; j < n; j++) free(d.wq[j]), free(d.wo[j]), free(d.wk[j]), free(d.wv[j]);
    free(d.router), free(ud), free(Pd), free(rout), free(fdu), free(pd), free(fdp);
    br_free(buf), br_free(u), br_free(P), br_free(cosb), br_free(sinb), br_free(out);
    br_free(gbuf), br_free(du);
}

static void test_moa(void)
{
    br_moa_cfg_t c = {.C = 8, .NH = 2, .NKV = 1, .hd = 4, .n = 3, .shared_kv = false, .beta = 0.05f};
    test_moa_case("moa expert-KV", c, 2, 5);
    c.shared_kv = true;
    test_moa_case("moa shared-KV", c, 2, 5);
    c.NKV = 2;
    c.n = 2;
    test_moa_case("moa shared-KV, MHA", c, 1, 6);
    c.n = 1;
    c.shared_kv = false;
    test_moa_case("dense attention (n = 1)", c, 2, 4);
    br_moa_cfg_t bad = {.C = 8, .NH = 3, .NKV = 2, .hd = 4, .n = 2};
    CHECK_STATUS(br_moa_cfg_check(&bad), BR_EINVAL);
}

int main(void)
{
    br_rng_seed(&rng, 1234);
    test_topk();
    test_moe();
    test_moe_aux_scale();
    test_nexus();
    test_moa();
    return th_exit();
}
