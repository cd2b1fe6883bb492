/* nn/ layers against direct formulas and naive references (the float build):
 * AdamW (hand-computed steps and PyTorch's numbers), gradient clipping, the cosine schedule,
 * RoPE (Hugging Face formula, tables), causal GQA attention (naive reference, masking),
 * cross-entropy with ignored targets, softmax, elementwise. */
#include <stdlib.h>

#include "base/rng.h"
#include "harness.h"
#include "base/threads.h"
#include "kernels/gemm.h"
#include "nn/nn.h"

static br_rng_t rng;

static float *frand(size_t n, float scale)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    br_rng_fill_uniform(&rng, x, n, -scale, scale);
    return x;
}

/* ---------------- AdamW ---------------- */
static void test_adamw(void)
{
    /* Three steps, lr 0.1, betas (0.9, 0.999), eps 1e-8, wd 0.01.  Expected values printed by
     *   p = torch.tensor([1.0, -2.0, 0.5]); opt = torch.optim.AdamW([p], lr=0.1, betas=(0.9,
     *   0.999), eps=1e-8, weight_decay=0.01); p.grad = g; opt.step()   (torch 2.x, Debian) */
    static const float grads[3][3] = {{0.5f, 0.1f, -3.0f}, {-0.25f, 0.2f, 1.0f}, {0.0f, 0.3f, -0.5f}};
    static const double torch_p[3][3] = {{0.899000049, -2.09800005, 0.5995},
                                         {0.871467352, -2.19242024, 0.638922334},
                                         {0.850007951, -2.28602791, 0.678825974}};
    float p[3] = {1.0f, -2.0f, 0.5f}, m[3] = {0}, v[3] = {0};
    double hp[3] = {1.0, -2.0, 0.5}, hm[3] = {0}, hv[3] = {0};
    /* the float hyperparameters, exactly as the kernel receives them */
    const double lr = 0.1f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f;
    for (int t = 1; t <= 3; t++) {
        br_adamw_step(p, grads[t - 1], m, v, 3, (float)lr, (float)b1, (float)b2, (float)eps,
                      (float)wd, t);
        for (int i = 0; i < 3; i++) { /* the textbook form, in double */
            double g = grads[t - 1][i];
            hp[i] -= lr * wd * hp[i];
            hm[i] = b1 * hm[i] + (1 - b1) * g;
            hv[i] = b2 * hv[i] + (1 - b2) * g * g;
            double mh = hm[i] / (1 - pow(b1, t)), vh = hv[i] / (1 - pow(b2, t));
            hp[i] -= lr * mh / (sqrt(vh) + eps);
            CHECK_REL(p[i], hp[i], 1e-6, 1e-6);
            CHECK_REL(p[i], torch_p[t - 1][i], 2e-7, 1e-6);
            CHECK_REL(m[i], hm[i], 1e-6, 1e-9);
            CHECK_REL(v[i], hv[i], 1e-6, 1e-12);
        }
    }
    /* Decoupled decay: with zero gradient and zero moments only p *= 1 - lr*wd happens (an L2
     * penalty folded into the gradient would instead move p by about lr). */
    float q[2] = {3.0f, -1.0f}, z[2] = {0}, zm[2] = {0}, zv[2] = {0};
    br_adamw_step(q, z, zm, zv, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 0.1f, 1);
    CHECK_REL(q[0], 3.0 * (1 - 0.1f * 0.1f), 1e-7, 1e-7);
    CHECK_REL(q[1], -1.0 * (1 - 0.1f * 0.1f), 1e-7, 1e-7);
    /* weight_decay 0 (norm weights): plain Adam, first step moves by lr * sign(g) */
    float r[1] = {1.0f}, gr[1] = {-4.0f}, rm[1] = {0}, rv[1] = {0};
    br_adamw_step(r, gr, rm, rv, 1, 0.01f, 0.9f, 0.95f, 1e-8f, 0.0f, 1);
    CHECK_REL(r[0], 1.01, 1e-6, 1e-6);
    /* the threaded path agrees with the serial one */
    size_t n = 300001;
    float *P = frand(n, 1), *G = frand(n, 1), *M = calloc(n, 4), *Vv = calloc(n, 4);
    float one_p = P[n - 7], one_g = G[n - 7], one_m = 0, one_v = 0;
    br_adamw_step(P, G, M, Vv, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1);
    br_adamw_step(&one_p, &one_g, &one_m, &one_v, 1, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1);
    CHECK(P[n - 7] == one_p && M[n - 7] == one_m && Vv[n - 7] == one_v);
    free(P), free(G), free(M), free(Vv);
}

/* ---------------- clipping ---------------- */
static void test_clip(void)
{
    float g[2] = {3, 4};
    CHECK_NEAR(br_sum_squares(g, 2), 5.0, 1e-12);
    float norm = br_clip_grad_norm(g, 2, 1.0f);
    CHECK_NEAR(norm, 5.0, 1e-6);
    CHECK_REL(g[0], 0.6 * 5 / (5 + 1e-6), 1e-6, 1e-6);
    CHECK_REL(g[1], 0.8 * 5 / (5 + 1e-6), 1e-6, 1e-6);
    CHECK_NEAR(br_sum_squares(g, 2), 1.0, 1e-6);
    float h[2] = {3, 4};
    CHECK_NEAR(br_clip_grad_norm(h, 2, 10.0f), 5.0, 1e-6); /* under the limit: untouched */
    CHECK(h[0] == 3 && h[1] == 4);
    CHECK_NEAR(br_clip_grad_norm(h, 2, 0.0f), 5.0, 1e-6); /* max_norm 0: no clipping */
    CHECK(h[0] == 3 && h[1] == 4);
    size_t n = 1000003;
    float *big = malloc(n * 4);
    double want = 0;
    for (size_t i = 0; i < n; i++) big[i] = (float)((int)(i % 13) - 6) * 0.01f, want += (double)big[i] * big[i];
    CHECK_REL(br_sum_squares(big, n), sqrt(want), 1e-10, 1e-12);
    br_clip_grad_norm(big, n, 0.5f);
    CHECK_REL(br_sum_squares(big, n), 0.5, 1e-5, 1e-6);
    free(big);
}

/* ---------------- schedule ---------------- */
static void test_schedule(void)
{
    CHECK_REL(br_lr_cosine(0, 10, 110, 1.0f, 0.1f), 0.1, 1e-6, 1e-6);
    CHECK_REL(br_lr_cosine(4, 10, 110, 1.0f, 0.1f), 0.5, 1e-6, 1e-6);
    CHECK_REL(br_lr_cosine(9, 10, 110, 1.0f, 0.1f), 1.0, 1e-6, 1e-6);
    CHECK_REL(br_lr_cosine(10, 10, 110, 1.0f, 0.1f), 1.0, 1e-6, 1e-6);
    CHECK_REL(br_lr_cosine(60, 10, 110, 1.0f, 0.1f), 0.55, 1e-6, 1e-6);
    CHECK_REL(br_lr_cosine(35, 10, 110, 1.0f, 0.1f), 0.1 + 0.9 * 0.5 * (1 + cos(M_PI / 4)), 1e-6, 1e-6);
    CHECK_REL(br_lr_cosine(110, 10, 110, 1.0f, 0.1f), 0.1, 1e-6, 1e-6);
    CHECK_REL(br_lr_cosine(500, 10, 110, 1.0f, 0.1f), 0.1, 1e-6, 1e-6);
    CHECK_REL(br_lr_cosine(0, 0, 100, 2.0f, 0.0f), 2.0, 1e-6, 1e-6); /* no warmup */
    CHECK_REL(br_lr_cosine(5, 10, 10, 1.0f, 0.0f), 0.6, 1e-6, 1e-6); /* warmup only */
    CHECK_REL(br_lr_cosine(10, 10, 10, 1.0f, 0.0f), 0.0, 1e-6, 1e-6);
    float prev = 2;
    bool mono = true;
    for (long s = 10; s <= 110; s++) {
        float lr = br_lr_cosine(s, 10, 110, 1.0f, 0.1f);
        mono &= lr <= prev;
        prev = lr;
    }
    CHECK_MSG(mono, "cosine decay is not monotone after warmup");
}

/* ---------------- RoPE ---------------- */
static void test_rope(void)
{
    size_t maxpos = 2048, hd = 64, half = hd / 2, H = 3, N = 5;
    float *cs = malloc(maxpos * half * 4), *sn = malloc(maxpos * half * 4);
    br_rope_tables(cs, sn, maxpos, hd, 10000.0f);
    double worst = 0;
    for (size_t p = 0; p < maxpos; p++)
        for (size_t i = 0; i < half; i++) {
            double a = (double)p * pow(10000.0, -2.0 * (double)i / (double)hd);
            worst = fmax(worst, fmax(fabs(cs[p * half + i] - cos(a)), fabs(sn[p * half + i] - sin(a))));
        }
    /* float32 angles (as HF computes them) lose ~pos * 2^-24 */
    CHECK_MSG(worst < 3e-4, "rope tables differ from cos/sin(pos*theta^(-2i/hd)) by %.3g", worst);
    static const int32_t pos[] = {0, 1, 17, 1000, 2047};
    float *x = frand(N * H * hd, 1), *y = malloc(N * H * hd * 4);
    memcpy(y, x, N * H * hd * 4);
    br_rope_forward(y, pos, cs, sn, N, H, hd);
    double err = 0;
    for (size_t n = 0; n < N; n++)
        for (size_t h = 0; h < H; h++)
            for (size_t d = 0; d < hd; d++) {
                /* HF: q * cat(cos, cos) + rotate_half(q) * cat(sin, sin),
                 * rotate_half(q) = cat(-q[half:], q[:half]) */
                const float *q = x + (n * H + h) * hd;
                size_t i = d % half;
                double c = cs[pos[n] * half + i], s = sn[pos[n] * half + i];
                double rot = d < half ? -q[d + half] : q[d - half];
                double want = q[d] * c + rot * s;
                err = fmax(err, fabs(y[(n * H + h) * hd + d] - want));
            }
    CHECK_MSG(err < 1e-6, "rope forward vs HF formula: max abs error %.3g", err);
    /* position 0 is the identity; backward undoes forward (orthogonal) */
    bool id = true;
    for (size_t d = 0; d < H * hd; d++) id &= y[d] == x[d];
    CHECK_MSG(id, "rope at position 0 is not the identity");
    br_rope_backward(y, pos, cs, sn, N, H, hd);
    double back = 0;
    for (size_t i = 0; i < N * H * hd; i++) back = fmax(back, fabs(y[i] - x[i]));
    CHECK_MSG(back < 1e-6, "rope backward(forward(x)) != x: max abs error %.3g", back);
    free(cs), free(sn), free(x), free(y);
}

/* ---------------- attention ---------------- */
/* Naive causal GQA attention in double: out (B,T,NH,hd). */
static void attention_naive(double *out, const float *q, const float *k, const float *v,
                            size_t B, size_t T, size_t NH, size_t NKV, size_t hd)
{
    double *s = malloc(T * sizeof *s);
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++) {
            size_t kh = h / (NH / NKV);
            for (size_t i = 0; i < T; i++) {
                const float *qi = q + ((b * T + i) * NH + h) * hd;
                double mx = -INFINITY, sum = 0;
                for (size_t j = 0; j <= i; j++) {
                    const float *kj = k + ((b * T + j) * NKV + kh) * hd;
                    double d = 0;
                    for (size_t c = 0; c < hd; c++) d += (double)qi[c] * kj[c];
                    s[j] = d / sqrt((double)hd);
                    mx = fmax(mx, s[j]);
                }
                for (size_t j = 0; j <= i; j++) sum += s[j] = exp(s[j] - mx);
                double *o = out + ((b * T + i) * NH + h) * hd;
                for (size_t c = 0; c < hd; c++) o[c] = 0;
                for (size_t j = 0; j <= i; j++) {
                    const float *vj = v + ((b * T + j) * NKV + kh) * hd;
                    for (size_t c = 0; c < hd; c++) o[c] += s[j] / sum * vj[c];
                }
            }
        }
    free(s);
}

static void test_attention_case(size_t B, size_t T, size_t NH, size_t NKV, size_t hd)
{
    size_t nq = B * T * NH * hd, nk = B * T * NKV * hd;
    float *q = frand(nq, 2), *k = frand(nk, 2), *v = frand(nk, 1);
    float *out = malloc(nq * 4), *att = malloc(B * NH * T * T * 4), *out2 = malloc(nq * 4);
    double *want = malloc(nq * 8);
    br_attention_forward(out, att, q, k, v, B, T, NH, NKV, hd);
    attention_naive(want, q, k, v, B, T, NH, NKV, hd);
    double err = 0;
    size_t wi = 0;
    for (size_t i = 0; i < nq; i++)
        if (fabs(out[i] - want[i]) > err) err = fabs(out[i] - want[i]), wi = i;
    CHECK_MSG(err < 2e-6, "attention B%zu T%zu NH%zu NKV%zu hd%zu vs naive: max abs error %.3g "
              "at %zu (%.8g vs %.8g)", B, T, NH, NKV, hd, err, wi, out[wi], want[wi]);
    /* probabilities: rows sum to 1, zero above the diagonal */
    double rowerr = 0;
    bool upper0 = true;
    for (size_t r = 0; r < B * NH * T; r++) {
        size_t i = r % T;
        double s = 0;
        for (size_t j = 0; j < T; j++) {
            s += att[r * T + j];
            if (j > i) upper0 &= att[r * T + j] == 0;
        }
        rowerr = fmax(rowerr, fabs(s - 1));
    }
    CHECK_MSG(rowerr < 1e-5, "attention rows do not sum to 1 (max error %.3g)", rowerr);
    CHECK_MSG(upper0, "attention probabilities above the diagonal are not 0");
    /* causality: changing keys/values at position t0 leaves outputs before t0 bit-identical */
    size_t t0 = T * 2 / 3;
    for (size_t b = 0; b < B; b++)
        for (size_t c = 0; c < NKV * hd; c++) {
            k[(b * T + t0) * NKV * hd + c] += 3;
            v[(b * T + t0) * NKV * hd + c] -= 5;
        }
    br_attention_forward(out2, att, q, k, v, B, T, NH, NKV, hd);
    bool before = true, after = false;
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < T * NH * hd; i++) {
            size_t t = i / (NH * hd), idx = b * T * NH * hd + i;
            if (t < t0) before &= out2[idx] == out[idx];
            else after |= out2[idx] != out[idx];
        }
    CHECK_MSG(before, "attention T%zu: a future key/value changed an earlier output", T);
    CHECK_MSG(after, "attention T%zu: changing key/value at t0 changed nothing after it", T);
    free(q), free(k), free(v), free(out), free(att), free(out2), free(want);
}

/* ---------------- cross-entropy ---------------- */
static void test_xent(void)
{
    size_t N = 6, V = 50;
    float *logits = frand(N * V, 4), *probs = malloc(N * V * 4), *d = malloc(N * V * 4);
    float *losses = malloc(N * 4), *d2 = malloc(N * V * 4), *l2 = malloc(N * 4);
    static const int32_t tg[] = {5, -1, 49, -100, 0, 7};
    float mean = br_xent_forward(losses, probs, logits, tg, N, V);
    double want = 0;
    for (size_t i = 0; i < N; i++) {
        if (tg[i] < 0) {
            CHECK(losses[i] == 0);
            continue;
        }
        double mx = -INFINITY, s = 0;
        for (size_t j = 0; j < V; j++) mx = fmax(mx, logits[i * V + j]);
        for (size_t j = 0; j < V; j++) s += exp(logits[i * V + j] - mx);
        double l = log(s) + mx - logits[i * V + (size_t)tg[i]];
        CHECK_REL(losses[i], l, 1e-6, 1e-6);
        want += l / 4;
    }
    CHECK_REL(mean, want, 1e-6, 1e-6);
    for (size_t i = 0; i < N * V; i++) d[i] = 1.0f; /* backward adds */
    br_xent_backward(d, probs, tg, 0.25f, N, V);
    bool ign = true;
    for (size_t j = 0; j < V; j++) ign &= d[1 * V + j] == 1.0f && d[3 * V + j] == 1.0f;
    CHECK_MSG(ign, "xent backward touched an ignored row");
    double rowsum = 0;
    for (size_t j = 0; j < V; j++) rowsum += d[j] - 1.0;
    CHECK_NEAR(rowsum, 0, 1e-6); /* softmax - onehot sums to 0 */
    CHECK_REL(d[5] - 1.0, 0.25 * (probs[5] - 1), 1e-5, 1e-6);
    float fm = br_xent_fused(l2, d2, logits, tg, 0.25f, N, V);
    CHECK_REL(fm, mean, 1e-6, 1e-6);
    double err = 0;
    for (size_t i = 0; i < N * V; i++) err = fmax(err, fabs(d2[i] - (d[i] - 1.0f)));
    CHECK_MSG(err < 1e-7, "xent fused vs forward+backward: max abs error %.3g", err);
    for (size_t j = 0; j < V; j++) ign &= d2[1 * V + j] == 0 && d2[3 * V + j] == 0;
    CHECK_MSG(ign, "xent fused: ignored rows must have zero gradient");
    /* all rows ignored: mean 0, no NaN */
    static const int32_t none[] = {-1, -1, -1, -1, -1, -1};
    CHECK(br_xent_forward(losses, probs, logits, none, N, V) == 0);
    CHECK(br_xent_fused(losses, d2, logits, none, 1.0f, N, V) == 0);
    /* extreme logits stay finite */
    logits[0] = 1e4f, logits[1] = -1e4f;
    br_xent_forward(losses, probs, logits, tg, N, V);
    CHECK(isfinite(losses[0]) && losses[0] > 1e3f);
    free(logits), free(probs), free(d), free(losses), free(d2), free(l2);
}

static void test_elementwise(void)
{
    size_t n = 100003;
    float *a = frand(n, 1), *b = frand(n, 1), *o = malloc(n * 4);
    br_add(o, a, b, n);
    bool ok = true;
    for (size_t i = 0; i < n; i++) ok &= o[i] == a[i] + b[i];
    br_add_inplace(o, a, n);
    for (size_t i = 0; i < n; i++) ok &= o[i] == (a[i] + b[i]) + a[i];
    br_scale_inplace(b, -0.5f, n);
    br_scale_inplace(b, -2.0f, n);
    br_add(o, a, b, n);
    CHECK_MSG(ok, "br_add / br_add_inplace mismatch");
    free(a), free(b), free(o);
}

/* Results do not depend on the thread count or schedule (bit-identical with 1 and 2 threads). */
static void test_determinism(void)
{
    size_t B = 2, T = 96, NH = 4, NKV = 2, hd = 16, N = 300, C = 256, V = 700;
    size_t nq = B * T * NH * hd, nk = B * T * NKV * hd;
    float *q = frand(nq, 1), *k = frand(nk, 1), *v = frand(nk, 1), *dout = frand(nq, 1);
    float *x = frand(N * C, 1), *w = frand(C, 1), *g = frand(N * C, 1), *lg = frand(N * V, 3);
    int32_t *tg = malloc(N * sizeof *tg);
    for (size_t i = 0; i < N; i++) tg[i] = (int32_t)(i * 7 % V);
    size_t OC = 600; /* linear: large enough for br_sgemm to split across threads */
    float *W = frand(OC * C, 0.1f), *lres[2][3];
    float *res[2][8];
    float mean[2];
    double norm[2];
    int old = br_get_threads();
    for (int r = 0; r < 2; r++) {
        br_set_threads(r + 1);
        float *o = calloc(nq, 4), *att = calloc(B * NH * T * T, 4), *dq = calloc(nq, 4);
        float *dk = calloc(nk, 4), *dv = calloc(nk, 4), *dx = calloc(N * C, 4), *dw = calloc(C, 4);
        float *rs = calloc(N, 4), *y = calloc(N * C, 4), *dl = calloc(N * V, 4), *ls = calloc(N, 4);
        br_attention_forward(o, att, q, k, v, B, T, NH, NKV, hd);
        br_attention_backward(dq, dk, dv, dout, att, q, k, v, B, T, NH, NKV, hd);
        br_rmsnorm_forward(y, rs, x, w, 1e-5f, N, C);
        br_rmsnorm_backward(dx, dw, g, x, w, rs, N, C);
        mean[r] = br_xent_fused(ls, dl, lg, tg, 1.0f / N, N, V);
        float *lo = calloc(N * OC, 4), *ldx = calloc(N * C, 4), *ldw = calloc(OC * C, 4);
        br_linear_forward(lo, x, W, N, C, OC);
        br_linear_backward(ldx, ldw, lo, x, W, N, C, OC);
        lres[r][0] = lo, lres[r][1] = ldx, lres[r][2] = ldw;
        norm[r] = br_sum_squares(lg, N * V);
        float *keep[8] = {o, dq, dk, dv, dx, dw, dl, ls};
        memcpy(res[r], keep, sizeof keep);
        free(att), free(rs), free(y);
    }
    br_set_threads(old);
    const size_t sz[8] = {nq, nq, nk, nk, N * C, C, N * V, N};
    static const char *names[8] = {"attention out", "dq", "dk", "dv", "rmsnorm dinp", "rmsnorm dw",
                                   "xent dlogits", "xent losses"};
    for (int i = 0; i < 8; i++) {
        CHECK_MSG(!memcmp(res[0][i], res[1][i], sz[i] * 4), "%s differs between 1 and 2 threads", names[i]);
        free(res[0][i]), free(res[1][i]);
    }
    const size_t lsz[3] = {N * OC, N * C, OC * C};
    for (int i = 0; i < 3; i++) {
        CHECK_MSG(!memcmp(lres[0][i], lres[1][i], lsz[i] * 4), "linear result %d differs between 1 and 2 threads", i);
        free(lres[0][i]), free(lres[1][i]);
    }
    free(W);
    CHECK(mean[0] == mean[1]);
    CHECK(norm[0] == norm[1]);
    free(q), free(k), free(v), free(dout), free(x), free(w), free(g), free(lg), free(tg);
}

int main(void)
{
    br_rng_seed(&rng, 3);
    test_adamw();
    test_clip();
    test_schedule();
    test_rope();
    test_attention_case(2, 130, 4, 2, 16); /* GQA, three row blocks */
    test_attention_case(3, 64, 4, 4, 32);  /* MHA, one full block */
    test_attention_case(1, 257, 2, 1, 8);  /* MQA, partial last block */
    test_attention_case(1, 1, 1, 1, 4);    /* a single token */
    test_xent();
    test_elementwise();
    test_determinism();
    return th_exit();
}
