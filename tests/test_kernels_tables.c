/* Every entry of every kernel table this CPU runs (kernels/kernels.h: avx512, avx2, portable)
 * against a float64 reference, on odd sizes (vector tails) and on sizes that take the threaded
 * paths.  The layer references are the double build of the very same templates
 * (kernels/<layer>.inc with NN_DOUBLE, checked by finite differences in test_nn_grad.c); GEMM,
 * matvec, paged attention, elementwise and AdamW have plain double loops here.  Inputs are
 * rounded to float first, so only the arithmetic differs.  Also: selection (BRAID_KERNELS,
 * br_kernels_use), weight types refused with a message, and the memory entries.
 *
 * Prints which tables were tested; a table this CPU cannot run is a visible skip. */
#define NN_DOUBLE
#include "kernels/real.h"
#include "kernels/attention.inc"
#include "kernels/embedding.inc"
#include "kernels/linear.inc"
#include "kernels/rmsnorm.inc"
#include "kernels/rope.inc"
#include "kernels/softmax.inc"
#include "kernels/swiglu.inc"
#include "kernels/xent.inc"

#include <stdlib.h>

#include "base/dtype.h"
#include "base/rng.h"
#include "base/threads.h"
#include "harness.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "nn/nn.h"

#define TOL 2e-6 /* max |float - double| / max |double|, per output */

static br_rng_t rng;
static const char *tname; /* table under test, for messages */

/* n floats uniform in [-scale, scale] and their exact double copy. */
static float *frand(size_t n, double scale, double **d)
{
    float *f = malloc((n ? n : 1) * sizeof *f);
    *d = malloc((n ? n : 1) * sizeof **d);
    for (size_t i = 0; i < n; i++) {
        f[i] = (float)(scale * (2 * br_rng_double(&rng) - 1));
        (*d)[i] = f[i];
    }
    return f;
}
static float *frand1(size_t n, double scale)
{
    double *d;
    float *f = frand(n, scale, &d);
    free(d);
    return f;
}
static float *fzero(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static double *dzero(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

static void cmp(const char *what, const float *f, const double *d, size_t n, double tol)
{
    double worst = 0, scale = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(d[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs(f[i] - d[i]);
        if (!(e <= worst)) worst = e, wi = i; /* NaN counts as worst */
    }
    double err = worst / (scale > 1e-30 ? scale : 1e-30);
    CHECK_MSG(err <= tol, "%s: %s: rel err %.3g > tol %.1g (element %zu: %.9g vs %.12g)", tname,
              what, err, tol, wi, n ? f[wi] : 0.0, n ? d[wi] : 0.0);
}

/* ---- matrix products ---- */

static void gemm_case(const br_kernels_t *k, bool ta, bool tb, size_t M, size_t N, size_t K,
                      float alpha, float beta)
{
    size_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
    double *A, *B, *C;
    float *fA = frand((ta ? K : M) * lda, 1, &A), *fB = frand((tb ? N : K) * ldb, 1, &B);
    float *fC = frand(M * ldc, 1, &C);
    brd_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    k->sgemm(ta, tb, M, N, K, alpha, fA, lda, fB, ldb, beta, fC, ldc);
    char what[96];
    snprintf(what, sizeof what, "sgemm ta=%d tb=%d %zux%zux%zu a=%g b=%g", ta, tb, M, N, K,
             alpha, beta);
    cmp(what, fC, C, M * ldc, TOL * 4);
    free(fA), free(fB), free(fC), free(A), free(B), free(C);
}

/* y = x W^T with W stored BF16 or F16 (16-bit weights, F32 activations, F32 accumulate)
 * against double loops over the exactly widened weights; matvec must equal the one-row matmul
 * bit for bit (N >= 5 takes the prefill path, which widens W by jobs of 16 rows and runs 3 x
 * rows at a time), and 1 and 2 threads must agree.  W mixes normal values with F16 subnormals, zeros and a negative zero. */
static void half_case(const br_kernels_t *k, br_wtype wt, size_t N, size_t C, size_t OC)
{
    double *x;
    float *fx = frand(N * C, 1, &x);
    uint16_t *w = malloc(OC * C * sizeof *w);
    double *wd = malloc(OC * C * sizeof *wd), *y = dzero(N * OC);
    float *fy = fzero(N * OC), *fv = fzero(OC), *fv2 = fzero(N * OC);
    for (size_t i = 0; i < OC * C; i++) {
        float v = (float)(2 * br_rng_double(&rng) - 1);
        if (i % 11 == 3) v *= 1e-6f; /* F16 subnormal range */
        if (i % 37 == 5) v = i % 2 ? -0.0f : 0.0f;
        w[i] = wt == BR_WT_BF16 ? br_f32_to_bf16(v) : br_f32_to_f16(v);
        wd[i] = wt == BR_WT_BF16 ? br_bf16_to_f32(w[i]) : br_f16_to_f32(w[i]);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t o = 0; o < OC; o++) {
            double s = 0;
            for (size_t c = 0; c < C; c++) s += x[i * C + c] * wd[o * C + c];
            y[i * OC + o] = s;
        }
    char what[64];
    snprintf(what, sizeof what, "matmul %s %zux%zux%zu", br_wtype_name(wt), N, C, OC);
    CHECK_OK(br_kernels_matmul_check(k, wt));
    int old = br_get_threads();
    br_set_threads(2);
    k->matmul[wt](fy, fx, w, N, C, OC);
    br_set_threads(1);
    k->matmul[wt](fv2, fx, w, N, C, OC);
    br_set_threads(old);
    cmp(what, fy, y, N * OC, TOL * (C > 1000 ? 4 : 1));
    CHECK_MSG(!memcmp(fy, fv2, N * OC * sizeof *fy), "%s: %s differs with 1 and 2 threads", tname, what);
    bool same = true;
    for (size_t i = 0; i < N; i++) {
        k->matvec[wt](fv, fx + i * C, w, C, OC);
        same &= !memcmp(fv, fy + i * OC, OC * sizeof *fv);
    }
    CHECK_MSG(same, "%s: %s: matvec differs from the matmul row", tname, what);
    /* the transposed product (training through frozen 16-bit weights): dx (N,C) += dy W,
     * onto a non-zero dx */
    double *dy, *dx;
    float *fdy = frand(N * OC, 1, &dy), *fdx = frand(N * C, 1, &dx);
    for (size_t i = 0; i < N; i++)
        for (size_t c = 0; c < C; c++) {
            double s = 0;
            for (size_t o = 0; o < OC; o++) s += dy[i * OC + o] * wd[o * C + c];
            dx[i * C + c] += s;
        }
    snprintf(what, sizeof what, "matmul_t %s %zux%zux%zu", br_wtype_name(wt), N, C, OC);
    void (*mt)(float *, const float *, const void *, size_t, size_t, size_t) =
        k->matmul_dinp[wt];
    CHECK_MSG(mt != NULL, "%s: %s: no entry", tname, what);
    if (mt) mt(fdx, fdy, w, N, C, OC);
    cmp(what, fdx, dx, N * C, TOL * (OC > 1000 ? 4 : 1));
    free(fdy), free(dy), free(fdx), free(dx);
    free(fx), free(x), free(w), free(wd), free(y), free(fy), free(fv), free(fv2);
}

/* y = x W^T with W stored Q8_0, Q4_0 (kernels/matmul_quant.inc), Q4_K or Q6_K
 * (kernels/matmul_kquant.inc).  The reference is double
 * loops over the dequantised weights (br_wtype_dequantize, exact) and the float activations.
 * The kernel also quantises each block b of an activation row to 8 bits (scale
 * d_b = amax_b / 127, |x - x_q| <= d_b / 2), so it may differ from the reference by at most
 *   sum_b d_b / 2 * sum_{c in b} |w_c|
 * per output, blocks of 32 values for Q8_0/Q4_0 and of 256 for the k-quants (their super-blocks:
 * the avx2/avx512 kernels quantise activations per 256 as llama.cpp's Q8_K does; the portable
 * ones per 32, inside that bound); the test allows that bound (+0.1% for the F32 block scales) plus the usual F32
 * accumulation slack.  The bound is tight enough to catch a wrong nibble order, a wrong sign or
 * offset, or a wrong scale (each moves outputs by O(|w| |x|) per value, not O(|w| |x| / 254)).
 * matvec must equal the one-row matmul bit for bit, and 1 and 2 threads must agree. */
static void quant_case(const br_kernels_t *k, br_wtype wt, size_t N, size_t C, size_t OC)
{
    size_t rb;
    CHECK_OK(br_wtype_row_bytes(wt, C, &rb));
    double *x;
    float *fx = frand(N * C, 1, &x), *fw = frand1(OC * C, 1), *wdq = fzero(OC * C);
    for (size_t i = 0; i < OC * C; i++) {
        if (i / 32 % 7 == 3) fw[i] = 0;                          /* all-zero blocks: d = 0 */
        if (i / 32 % 5 == 2) fw[i] *= 1e-3f;                      /* small scales */
    }
    for (size_t i = 0; i < N * C; i++)
        if (i / 32 % 9 == 4) fx[i] = 0, x[i] = 0;                 /* zero activation blocks */
    uint8_t *w = malloc(OC * rb);
    CHECK_OK(br_wtype_quantize(wt, w, fw, OC, C));
    CHECK_OK(br_wtype_dequantize(wt, wdq, w, OC, C));
    double *y = dzero(N * OC), *bound = dzero(N * OC), scale = 0;
    size_t qb = wt == BR_WT_Q4_K || wt == BR_WT_Q6_K ? 256 : 32; /* activation block */
    for (size_t i = 0; i < N; i++)
        for (size_t o = 0; o < OC; o++) {
            double s = 0, e = 0;
            for (size_t b = 0; b < C / qb; b++) {
                double amax = 0, wsum = 0;
                for (size_t j = b * qb; j < b * qb + qb; j++) {
                    s += x[i * C + j] * wdq[o * C + j];
                    amax = fmax(amax, fabs(x[i * C + j]));
                    wsum += fabs(wdq[o * C + j]);
                }
                e += amax / 254 * wsum;
            }
            y[i * OC + o] = s, bound[i * OC + o] = e * 1.001;
            scale = fmax(scale, fabs(s));
        }
    float *fy[2], *fv = fzero(OC);
    int old = br_get_threads();
    for (int r = 0; r < 2; r++) {
        br_set_threads(r + 1);
        fy[r] = fzero(N * OC);
        k->matmul[wt](fy[r], fx, w, N, C, OC);
    }
    br_set_threads(old);
    char what[64];
    snprintf(what, sizeof what, "matmul %s %zux%zux%zu", br_wtype_name(wt), N, C, OC);
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < N * OC; i++) {
        double over = fabs(fy[0][i] - y[i]) - bound[i] - TOL * 4 * scale;
        if (!(over <= worst)) worst = over, wi = i;
    }
    CHECK_MSG(worst <= 0, "%s: %s: element %zu: %.9g vs %.12g, beyond the activation "
              "quantisation bound %.3g", tname, what, wi, fy[0][wi], y[wi], bound[wi]);
    CHECK_MSG(!memcmp(fy[0], fy[1], N * OC * sizeof *fv), "%s: %s differs with 1 and 2 threads",
              tname, what);
    bool same = true;
    for (size_t i = 0; i < N; i++) {
        k->matvec[wt](fv, fx + i * C, w, C, OC);
        same &= !memcmp(fv, fy[0] + i * OC, OC * sizeof *fv);
    }
    CHECK_MSG(same, "%s: %s: matvec differs from the matmul row", tname, what);
    free(fx), free(x), free(fw), free(wdq), free(w), free(y), free(bound), free(fy[0]);
    free(fy[1]), free(fv);
}

/* QLoRA's frozen-base input gradient: dinp (N,C) += dout (N,OC) W for a Q8_0/Q4_0/Q4_K/Q6_K W, against
 * double loops over W's dequantised values (exact: no activation rounding in this direction),
 * with 1 and 2 threads giving the same bits. */
static void dinp_case(const br_kernels_t *k, br_wtype wt, size_t N, size_t C, size_t OC)
{
    size_t rb;
    CHECK_OK(br_wtype_row_bytes(wt, C, &rb));
    float *fw = frand1(OC * C, 1), *wdq = fzero(OC * C);
    for (size_t i = 0; i < OC * C; i++)
        if (i / 32 % 7 == 3) fw[i] = 0; /* all-zero blocks: d = 0 */
    uint8_t *w = malloc(OC * rb);
    CHECK_OK(br_wtype_quantize(wt, w, fw, OC, C));
    CHECK_OK(br_wtype_dequantize(wt, wdq, w, OC, C));
    double *dy, *dx;
    float *fdy = frand(N * OC, 1, &dy), *fdx = frand(N * C, 1, &dx), *f2 = fzero(N * C);
    memcpy(f2, fdx, N * C * sizeof *f2);
    for (size_t i = 0; i < N; i++)
        for (size_t c = 0; c < C; c++) {
            double s = 0;
            for (size_t o = 0; o < OC; o++) s += dy[i * OC + o] * wdq[o * C + c];
            dx[i * C + c] += s;
        }
    CHECK_MSG(k->matmul_dinp[wt] != NULL, "%s: no matmul_dinp for %s", tname, br_wtype_name(wt));
    if (!k->matmul_dinp[wt]) return;
    int old = br_get_threads();
    br_set_threads(1);
    k->matmul_dinp[wt](fdx, fdy, w, N, C, OC);
    br_set_threads(2);
    k->matmul_dinp[wt](f2, fdy, w, N, C, OC);
    br_set_threads(old);
    char what[64];
    snprintf(what, sizeof what, "matmul_dinp %s %zux%zux%zu", br_wtype_name(wt), N, C, OC);
    cmp(what, fdx, dx, N * C, TOL);
    CHECK_MSG(!memcmp(fdx, f2, N * C * sizeof *f2), "%s: %s differs with 1 and 2 threads", tname, what);
    free(fw), free(wdq), free(w), free(dy), free(dx), free(fdy), free(fdx), free(f2);
}

/* The activations' 8-bit rounding is round-half-away-from-zero (roundf, Q8_0's reference) in
 * every kernel, SIMD ones included: with block scales of exactly 1 (activation and weight
 * amax 127, Q4_0 weight extreme -8) every product and sum is an exact integer, so the outputs
 * must equal sum qw * round(x) exactly, for ties (+-0.5, 2.5, -3.5, ...) and for the largest
 * float below a tie.  Rows in groups of four and a remainder, 1 and 2 activation rows. */
/* Q4_K/Q6_K with activations the 8-bit rounding keeps exactly (integers in [-127, 127], every
 * 32-value block holding +-127: dx = 1, q = x): the kernel's integer sums, scales and mins must
 * then give the float64 product over the dequantised weights up to F32 rounding (relative
 * 1e-5 of sum |w x|), negative partial sums included -- an error of one scale unit in any
 * sub-block sum (a sign or lane mix-up the activation bound of quant_case can hide) fails. */
static void kquant_exact_case(const br_kernels_t *k, br_wtype wt, size_t N, size_t C, size_t OC)
{
    size_t rb;
    CHECK_OK(br_wtype_row_bytes(wt, C, &rb));
    float *x = fzero(N * C), *fw = frand1(OC * C, 1), *wdq = fzero(OC * C), *y = fzero(N * OC), *v = fzero(OC);
    for (size_t i = 0; i < N * C; i++)
        x[i] = i % 32 == 0 ? (i / 32 % 2 ? -127.0f : 127.0f) : (float)((int)((i * 53 + i / C) % 255) - 127);
    uint8_t *w = malloc(OC * rb);
    CHECK_OK(br_wtype_quantize(wt, w, fw, OC, C));
    CHECK_OK(br_wtype_dequantize(wt, wdq, w, OC, C));
    k->matmul[wt](y, x, w, N, C, OC);
    double worst = 0;
    bool same = true;
    for (size_t i = 0; i < N; i++) {
        k->matvec[wt](v, x + i * C, w, C, OC);
        for (size_t o = 0; o < OC; o++) {
            double s = 0, mag = 0;
            for (size_t c = 0; c < C; c++) s += (double)wdq[o * C + c] * x[i * C + c], mag += fabs((double)wdq[o * C + c] * x[i * C + c]);
            worst = fmax(worst, fabs(y[i * OC + o] - s) / mag);
            same &= v[o] == y[i * OC + o];
        }
    }
    CHECK_MSG(worst <= 1e-5, "%s: %s %zux%zux%zu on exactly quantised activations: rel err %.3g", tname,
              br_wtype_name(wt), N, C, OC, worst);
    CHECK_MSG(same, "%s: %s: matvec differs from the matmul row", tname, br_wtype_name(wt));
    free(x), free(fw), free(wdq), free(y), free(v), free(w);
}

/* W = fw quantised to wt: matmul and matvec of x (N,C) must both equal the float64 sum of the
 * dequantised weights times round(x) exactly (the cases make every sum an exact integer). */
static void quant_exact_check(const br_kernels_t *k, br_wtype wt, const float *x, const float *fw, size_t N,
                              size_t C, size_t OC, const char *what)
{
    size_t rb;
    CHECK_OK(br_wtype_row_bytes(wt, C, &rb));
    uint8_t *w = malloc(OC * rb);
    float *wdq = malloc(OC * C * sizeof *wdq), *y = malloc(N * OC * sizeof *y), *v = malloc(OC * sizeof *v);
    CHECK_OK(br_wtype_quantize(wt, w, fw, OC, C));
    CHECK_OK(br_wtype_dequantize(wt, wdq, w, OC, C));
    k->matmul[wt](y, x, w, N, C, OC);
    bool exact = true, vexact = true;
    for (size_t i = 0; i < N; i++) {
        k->matvec[wt](v, x + i * C, w, C, OC);
        for (size_t o = 0; o < OC; o++) {
            double s = 0;
            for (size_t c = 0; c < C; c++) s += (double)wdq[o * C + c] * round((double)x[i * C + c]);
            exact &= y[i * OC + o] == (float)s;
            vexact &= v[o] == (float)s;
        }
    }
    CHECK_MSG(exact && vexact, "%s: %s: %s (matmul %s, matvec %s)", tname, br_wtype_name(wt), what,
              exact ? "exact" : "differs", vexact ? "exact" : "differs");
    free(w), free(wdq), free(y), free(v);
}

static void quant_rounding_case(const br_kernels_t *k, br_wtype wt)
{
    enum { N = 3, C = 64, OC = 7 };
    static const float ties[] = {0.5f, -0.5f, 2.5f, -2.5f, 3.5f, -3.5f, 0.49999997f, -1.4999999f,
                                 126.5f, -126.5f, 1.5f, 0, -0.49999997f, 5.5f, -6.5f, 7.25f};
    float x[N * C], fw[OC * C];
    for (size_t i = 0; i < N * C; i++)
        x[i] = i % C % 32 == 0 ? (i / C % 2 ? -127.0f : 127.0f) : ties[(i * 7 + i / C) % 16];
    for (size_t i = 0; i < OC * C; i++) {
        int m = wt == BR_WT_Q8_0 ? 127 : 8;
        fw[i] = i % 32 == 5 ? (float)-m : (float)((int)((i * 37) % (2 * m - 1)) - (m - 1));
    }
    quant_exact_check(k, wt, x, fw, N, C, OC, "activation rounding is not roundf's");
}

/* Q8_0/Q4_0 at the integer sums' extremes, through the 8-row decode kernel (OC = 16) and the
 * GEMM (N = 6): block scales of exactly 1 (weight extreme -8 / -127, activation amax 127), every
 * other weight at its largest (Q4_0 nibble 15, Q8_0 127) against activations +-127 in runs, so
 * the per-row partial sums the kernels add in 16 bits (Q4_0's unsigned nibble pair sums,
 * 2 x 15 x 127) are as large as they get; each output is an exact integer below 2^24. */
static void quant_extreme_case(const br_kernels_t *k, br_wtype wt)
{
    enum { N = 6, C = 256, OC = 16 };
    float x[N * C], fw[OC * C];
    int m = wt == BR_WT_Q8_0 ? 127 : 8;
    for (size_t i = 0; i < N * C; i++) x[i] = (i / C + i % C / 64) % 2 ? -127.0f : 127.0f;
    for (size_t i = 0; i < OC * C; i++) fw[i] = i % 32 == i / C % 32 ? (float)-m : (float)(m - 1 + (m == 127));
    quant_exact_check(k, wt, x, fw, N, C, OC, "wrong at the integer sums' extremes");
}

static void test_matmul(const br_kernels_t *k)
{
    static const size_t sizes[][3] = {{1, 1, 1}, {7, 13, 37}, {33, 17, 65}, {300, 129, 70}};
    for (int t = 0; t < 4; t++)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            gemm_case(k, t & 1, t >> 1, sizes[s][0], sizes[s][1], sizes[s][2], t ? 0.5f : 1,
                      t == 3 ? 1 : 0);
    gemm_case(k, false, false, 5, 6, 0, 1, 0.5f); /* K = 0: C = beta C */

    /* matmul / matvec (F32) and their backward: y = x W^T */
    size_t N = 19, C = 77, OC = 45;
    double *x, *w, *dy;
    float *fx = frand(N * C, 1, &x), *fw = frand(OC * C, 1, &w), *fdy = frand(N * OC, 1, &dy);
    double *y = dzero(N * OC), *dx, *dw;
    float *fy = fzero(N * OC), *fdx = frand(N * C, 1, &dx), *fdw = frand(OC * C, 1, &dw);
    brd_linear_forward(y, x, w, N, C, OC);
    CHECK(k->matmul[BR_WT_F32] && k->matvec[BR_WT_F32]);
    k->matmul[BR_WT_F32](fy, fx, fw, N, C, OC);
    cmp("matmul F32", fy, y, N * OC, TOL);
    memset(fy, 0, N * OC * sizeof *fy);
    for (size_t i = 0; i < N; i++) k->matvec[BR_WT_F32](fy + i * OC, fx + i * C, fw, C, OC);
    cmp("matvec F32 (row by row)", fy, y, N * OC, TOL);
    brd_linear_backward(dx, dw, dy, x, w, N, C, OC);
    k->matmul_backward(fdx, fdw, fdy, fx, fw, N, C, OC);
    cmp("matmul_backward dinp", fdx, dx, N * C, TOL);
    cmp("matmul_backward dw", fdw, dw, OC * C, TOL);
    free(fx), free(fw), free(fdy), free(fy), free(fdx), free(fdw);
    free(x), free(w), free(dy), free(y), free(dx), free(dw);
    /* {3, 2048, 600}: W is widened for matmul_t in two blocks of rows */
    /* N >= 5: the prefill path (jobs of 16 weight rows, 3 x rows at a time): N not a multiple
     * of 3, OC odd and not a multiple of 16, C with and without a 16-value tail */
    static const size_t hs[][3] = {{1, 1, 1},      {3, 15, 5},       {19, 77, 45},  {2, 2048, 300}, {40, 100, 64},
                                   {3, 2048, 600}, {8, 16, 3},       {13, 4096, 35}, {37, 257, 77},  {11, 32, 17},
                                   {4, 64, 19},    {5, 64, 19}};
    for (size_t s = 0; s < sizeof hs / sizeof *hs; s++) {
        half_case(k, BR_WT_BF16, hs[s][0], hs[s][1], hs[s][2]);
        half_case(k, BR_WT_F16, hs[s][0], hs[s][1], hs[s][2]);
    }
    /* 36 KiB of quantised activations per chunk: C = 4096 takes 8 rows at a time (N = 20: three
     * chunks), C = 32832 two segments of the row */
    /* N >= 5: the prefill GEMM (panels of 8 weight rows in jobs of 4 panels, 4 x rows at a
     * time, OC % 8 rows row by row): N not a multiple of 4, OC odd, one to several jobs, K = 32
     * to 4096, and a row of two segments (matvec continues the chain across them, the GEMM runs
     * it whole: the same bits) */
    static const size_t qs[][3] = {{1, 32, 1},     {3, 96, 5},     {19, 224, 45}, {2, 2048, 300}, {40, 160, 64},
                                   {20, 4096, 9},  {3, 32832, 3},  {8, 32, 7},    {13, 96, 33},   {21, 4096, 41},
                                   {37, 256, 77},  {9, 32832, 9},  {10, 768, 8},
                                   {4, 64, 19},    {5, 64, 19}};
    for (size_t s = 0; s < sizeof qs / sizeof *qs; s++) {
        quant_case(k, BR_WT_Q8_0, qs[s][0], qs[s][1], qs[s][2]);
        quant_case(k, BR_WT_Q4_0, qs[s][0], qs[s][1], qs[s][2]);
    }
    /* OC beyond one 128-row tile and not a multiple of it; the threaded path (N C OC > 32768) */
    static const size_t ds[][3] = {{1, 32, 1}, {3, 96, 5}, {19, 224, 300}, {40, 512, 129}};
    for (size_t s = 0; s < sizeof ds / sizeof *ds; s++) {
        dinp_case(k, BR_WT_Q8_0, ds[s][0], ds[s][1], ds[s][2]);
        dinp_case(k, BR_WT_Q4_0, ds[s][0], ds[s][1], ds[s][2]);
    }
    /* k-quants: rows of 1-3 super-blocks; OC past one 32-row tile; N past one 64-row job */
    static const size_t dk[][3] = {{1, 256, 1}, {3, 512, 5}, {19, 768, 45}, {70, 256, 33}, {130, 512, 64}};
    for (size_t s = 0; s < sizeof dk / sizeof *dk; s++) {
        dinp_case(k, BR_WT_Q4_K, dk[s][0], dk[s][1], dk[s][2]);
        dinp_case(k, BR_WT_Q6_K, dk[s][0], dk[s][1], dk[s][2]);
    }
    CHECK(k->matmul_dinp[BR_WT_F32] == NULL);
    quant_rounding_case(k, BR_WT_Q8_0);
    quant_rounding_case(k, BR_WT_Q4_0);
    quant_extreme_case(k, BR_WT_Q8_0);
    quant_extreme_case(k, BR_WT_Q4_0);
    /* k-quants: super-blocks of 256 (C = 33024: two segments of the row, the second 1 block) */
    static const size_t ks[][3] = {{1, 256, 1}, {3, 512, 5}, {19, 768, 45}, {2, 2048, 300},
                                   {20, 4096, 9}, {3, 33024, 3}};
    for (size_t s = 0; s < sizeof ks / sizeof *ks; s++) {
        quant_case(k, BR_WT_Q4_K, ks[s][0], ks[s][1], ks[s][2]);
        quant_case(k, BR_WT_Q6_K, ks[s][0], ks[s][1], ks[s][2]);
    }
    for (size_t s = 0; s < 4; s++) {
        kquant_exact_case(k, BR_WT_Q4_K, ks[s][0], ks[s][1], ks[s][2]);
        kquant_exact_case(k, BR_WT_Q6_K, ks[s][0], ks[s][1], ks[s][2]);
    }
    /* The k-quants' prefill GEMM (5 rows or more: panels of 8 weight rows, 4 x rows per tile): row
     * counts around the tile, OC % 8 rows left to the decode kernel, one panel and several jobs
     * per thread (1 and 2 threads), rows up to 3072, and a row past one segment of the decode
     * path (its chain continues across segments; the GEMM's runs through). */
    static const size_t kg[][3] = {{5, 256, 8},    {6, 512, 13},   {7, 3072, 17},  {9, 768, 45},
                                   {11, 1280, 64}, {13, 256, 203}, {17, 2048, 24}, {22, 512, 71},
                                   {37, 1024, 130}, {5, 33024, 9}};
    for (size_t s = 0; s < sizeof kg / sizeof *kg; s++) {
        quant_case(k, BR_WT_Q4_K, kg[s][0], kg[s][1], kg[s][2]);
        quant_case(k, BR_WT_Q6_K, kg[s][0], kg[s][1], kg[s][2]);
        kquant_exact_case(k, BR_WT_Q4_K, kg[s][0], kg[s][1], kg[s][2]);
        kquant_exact_case(k, BR_WT_Q6_K, kg[s][0], kg[s][1], kg[s][2]);
    }
}

/* ---- rows: embedding, rmsnorm, rope, swiglu, softmax, cross-entropy ---- */

static void test_rowwise(const br_kernels_t *k, size_t N, size_t C)
{
    double *x, *w, *g, *dx, *dw;
    float *fx = frand(N * C, 2, &x), *fw = frand(C, 1, &w), *fg = frand(N * C, 1, &g);
    float *fdx = frand(N * C, 1, &dx), *fdw = frand(C, 1, &dw);
    double *y = dzero(N * C), *rs = dzero(N);
    float *fy = fzero(N * C), *frs = fzero(N);
    brd_rmsnorm_forward(y, rs, x, w, 1e-5, N, C);
    k->rmsnorm_forward(fy, frs, fx, fw, 1e-5f, N, C);
    cmp("rmsnorm out", fy, y, N * C, TOL);
    cmp("rmsnorm rstd", frs, rs, N, TOL);
    brd_rmsnorm_backward(dx, dw, g, x, w, rs, N, C);
    k->rmsnorm_backward(fdx, fdw, fg, fx, fw, frs, N, C);
    cmp("rmsnorm dinp", fdx, dx, N * C, TOL);
    cmp("rmsnorm dw", fdw, dw, C, TOL * 4);

    brd_swiglu_forward(y, x, g, N * C);
    k->swiglu_forward(fy, fx, fg, N * C);
    cmp("swiglu out", fy, y, N * C, TOL);
    { /* backward over the first C values with dout = w */
        double *dup = dzero(C), *dg = dzero(C);
        float *fdup = fzero(C), *fdg = fzero(C);
        brd_swiglu_backward(dg, dup, w, x, g, C);
        k->swiglu_backward(fdg, fdup, fw, fx, fg, C);
        cmp("swiglu dgate", fdg, dg, C, TOL);
        cmp("swiglu dup", fdup, dup, C, TOL);
        free(dup), free(dg), free(fdup), free(fdg);
    }

    /* embedding: tokens repeat (the backward's scatter-add) */
    size_t V = 11;
    int32_t *tok = malloc(N * sizeof *tok);
    for (size_t i = 0; i < N; i++) tok[i] = (int32_t)br_rng_below(&rng, V);
    double *wte, *dwte;
    float *fwte = frand(V * C, 1, &wte), *fdwte = frand(V * C, 1, &dwte);
    brd_embedding_forward(y, tok, wte, N, C);
    k->embedding_forward(fy, tok, fwte, N, C);
    cmp("embedding out", fy, y, N * C, 0);
    brd_embedding_backward(dwte, g, tok, N, C);
    k->embedding_backward(fdwte, fg, tok, N, C);
    cmp("embedding dwte", fdwte, dwte, V * C, TOL);

    /* rope on (N, H, hd), positions out of order */
    size_t H = 3, hd = C / H / 2 * 2, maxpos = 40, half = hd / 2; /* H * hd <= C */
    float *cs = fzero(maxpos * half), *sn = fzero(maxpos * half);
    br_rope_tables(cs, sn, maxpos, hd, 10000.0f);
    double *dcs = dzero(maxpos * half), *dsn = dzero(maxpos * half);
    for (size_t i = 0; i < maxpos * half; i++) dcs[i] = cs[i], dsn[i] = sn[i];
    int32_t *pos = malloc(N * sizeof *pos);
    for (size_t i = 0; i < N; i++) pos[i] = (int32_t)((i * 7 + 3) % maxpos);
    memcpy(y, x, N * H * hd * sizeof *y);
    memcpy(fy, fx, N * H * hd * sizeof *fy);
    brd_rope_forward(y, pos, dcs, dsn, N, H, hd);
    k->rope_forward(fy, pos, cs, sn, N, H, hd);
    cmp("rope forward", fy, y, N * H * hd, TOL);
    brd_rope_backward(y, pos, dcs, dsn, N, H, hd);
    k->rope_backward(fy, pos, cs, sn, N, H, hd);
    cmp("rope backward", fy, y, N * H * hd, TOL);

    /* softmax and cross-entropy over C classes, some targets ignored */
    double *lg;
    float *flg = frand(N * C, 6, &lg);
    int32_t *tg = malloc(N * sizeof *tg);
    for (size_t i = 0; i < N; i++) tg[i] = i % 5 == 2 ? -1 : (int32_t)br_rng_below(&rng, C);
    brd_softmax_forward(y, lg, N, C);
    k->softmax_forward(fy, flg, N, C);
    cmp("softmax out", fy, y, N * C, TOL);
    brd_softmax_backward(dx, g, y, N, C);
    k->softmax_backward(fdx, fg, fy, N, C);
    cmp("softmax dinp", fdx, dx, N * C, TOL);
    double *ls = dzero(N), *pr = dzero(N * C), *dl = dzero(N * C);
    float *fls = fzero(N), *fpr = fzero(N * C), *fdl = fzero(N * C);
    double m = brd_xent_forward(ls, pr, lg, tg, N, C);
    float fm = k->xent_forward(fls, fpr, flg, tg, N, C);
    CHECK_MSG(fabs(fm - m) <= 1e-6 * fmax(1, fabs(m)), "%s: xent mean %.9g vs %.12g", tname, fm, m);
    cmp("xent losses", fls, ls, N, TOL);
    cmp("xent probs", fpr, pr, N * C, TOL);
    brd_xent_backward(dl, pr, tg, 0.25, N, C);
    k->xent_backward(fdl, fpr, tg, 0.25f, N, C);
    cmp("xent dlogits", fdl, dl, N * C, TOL);
    fm = k->xent_fused(fls, fdl, flg, tg, 0.25f, N, C);
    CHECK_MSG(fabs(fm - m) <= 1e-6 * fmax(1, fabs(m)), "%s: xent_fused mean %.9g vs %.12g", tname,
              fm, m);
    cmp("xent_fused dlogits", fdl, dl, N * C, TOL);

    free(fx), free(fw), free(fg), free(fdx), free(fdw), free(x), free(w), free(g), free(dx);
    free(dw), free(y), free(rs), free(fy), free(frs), free(tok), free(fwte), free(fdwte);
    free(wte), free(dwte), free(cs), free(sn), free(dcs), free(dsn), free(pos), free(flg);
    free(lg), free(tg), free(ls), free(pr), free(dl), free(fls), free(fpr), free(fdl);
}

/* ---- attention: training (full causal) and inference (paged KV) ---- */

static void test_attention(const br_kernels_t *k, size_t B, size_t T, size_t NH, size_t NKV,
                           size_t hd)
{
    size_t nq = B * T * NH * hd, nk = B * T * NKV * hd, na = B * NH * T * T;
    double *q, *kk, *v, *R, *dq, *dk, *dv;
    float *fq = frand(nq, 1, &q), *fk = frand(nk, 1, &kk), *fv = frand(nk, 1, &v);
    float *fR = frand(nq, 1, &R), *fdq = frand(nq, 1, &dq), *fdk = frand(nk, 1, &dk);
    float *fdv = frand(nk, 1, &dv);
    double *o = dzero(nq), *att = dzero(na);
    float *fo = fzero(nq), *fatt = fzero(na);
    brd_attention_forward(o, att, q, kk, v, B, T, NH, NKV, hd);
    k->attention_forward(fo, fatt, fq, fk, fv, B, T, NH, NKV, hd);
    cmp("attention out", fo, o, nq, TOL);
    cmp("attention probs", fatt, att, na, TOL);
    brd_attention_backward(dq, dk, dv, R, att, q, kk, v, B, T, NH, NKV, hd);
    k->attention_backward(fdq, fdk, fdv, fR, fatt, fq, fk, fv, B, T, NH, NKV, hd);
    cmp("attention dq", fdq, dq, nq, TOL);
    cmp("attention dk", fdk, dk, nk, TOL);
    cmp("attention dv", fdv, dv, nk, TOL);
    free(fq), free(fk), free(fv), free(fR), free(fdq), free(fdk), free(fdv), free(fo), free(fatt);
    free(q), free(kk), free(v), free(R), free(dq), free(dk), free(dv), free(o), free(att);
}

/* Paged attention against a float64 reference.  A pool of pages of (L, NKV, P, hd) for K and
 * for V (F32, or F16 with the reference on the same rounded values); three sequences with
 * scrambled page tables; rows: a prefill chunk of `chunk` rows of sequence 0 ending at `len`-1
 * (crossing pages and tiles), decode rows of the others and a few isolated positions.  The
 * unwritten parts of the pool hold NaN, so a kernel that reads past a row's data fails.  Then
 * every row again alone: the same bits (a row does not depend on its neighbours). */
static void paged_case(const br_kernels_t *k, size_t NH, size_t NKV, size_t hd, size_t P,
                       size_t len, size_t chunk, br_kv_type type)
{
    enum { L = 2, NSEQ = 3 };
    size_t npp = (len + P - 1) / P, npages = NSEQ * npp + 1, page = (size_t)L * NKV * P * hd;
    size_t D = NH * hd, esz = type == BR_KV_F16 ? 2 : 4;
    double *K = dzero(npages * page), *Vd = dzero(npages * page);
    void *fK = malloc(npages * page * esz), *fV = malloc(npages * page * esz);
    int32_t *tables = malloc(NSEQ * npp * sizeof *tables);
    for (size_t i = 0; i < NSEQ * npp; i++) tables[i] = (int32_t)((i * 7 + 3) % (NSEQ * npp)) + 1;
    int32_t rowseq[64], rowpos[64];
    size_t N = 0;
    for (size_t j = 0; j < chunk; j++) rowseq[N] = 0, rowpos[N++] = (int32_t)(len - chunk + j);
    rowseq[N] = 1, rowpos[N++] = (int32_t)(len - 1);
    rowseq[N] = 2, rowpos[N++] = 0;
    rowseq[N] = 2, rowpos[N++] = (int32_t)(len / 2);
    rowseq[N] = 1, rowpos[N++] = (int32_t)(P < len ? P : len - 1); /* first row of a page */
    size_t top[NSEQ] = {0}; /* positions with data: up to each sequence's largest row */
    for (size_t r = 0; r < N; r++)
        if ((size_t)rowpos[r] + 1 > top[rowseq[r]]) top[rowseq[r]] = (size_t)rowpos[r] + 1;
    for (size_t i = 0; i < npages * page; i++) { /* NaN everywhere, then data where written */
        if (type == BR_KV_F16) ((uint16_t *)fK)[i] = ((uint16_t *)fV)[i] = 0x7e00;
        else ((float *)fK)[i] = ((float *)fV)[i] = NAN;
    }
    for (size_t sq = 0; sq < NSEQ; sq++)
        for (size_t l = 0; l < L; l++)
            for (size_t h = 0; h < NKV; h++)
                for (size_t t = 0; t < top[sq]; t++) {
                    size_t off = tables[sq * npp + t / P] * page + ((l * NKV + h) * P + t % P) * hd;
                    for (size_t i = 0; i < hd; i++) {
                        float kf = (float)(2 * br_rng_double(&rng) - 1), vf = (float)(2 * br_rng_double(&rng) - 1);
                        if (type == BR_KV_F16) {
                            uint16_t kh = br_f32_to_f16(kf), vh = br_f32_to_f16(vf);
                            ((uint16_t *)fK)[off + i] = kh, ((uint16_t *)fV)[off + i] = vh;
                            K[off + i] = br_f16_to_f32(kh), Vd[off + i] = br_f16_to_f32(vh);
                        } else {
                            ((float *)fK)[off + i] = kf, ((float *)fV)[off + i] = vf;
                            K[off + i] = kf, Vd[off + i] = vf;
                        }
                    }
                }
    const int32_t *row_pages[64];
    for (size_t r = 0; r < N; r++) row_pages[r] = tables + rowseq[r] * npp;
    double *q, *sc = dzero(len);
    float *fq = frand(N * D, 2, &q), *fo = fzero(N * D), *f1 = fzero(D);
    double *o = dzero(N * D);
    size_t nt = (size_t)omp_get_max_threads();
    float *scratch = fzero(nt * BR_ATTN_PAGED_SCRATCH(hd));
    char what[160];
    for (size_t l = 0; l < L; l++) {
        for (size_t r = 0; r < N; r++)
            for (size_t h = 0; h < NH; h++) {
                size_t kvh = h / (NH / NKV), n = (size_t)rowpos[r] + 1;
                double mx = -INFINITY, sum = 0;
#define ROW(base, t) (base + (size_t)row_pages[r][(t) / P] * page + ((l * NKV + kvh) * P + (t) % P) * hd)
                for (size_t t = 0; t < n; t++) {
                    double s = 0;
                    for (size_t i = 0; i < hd; i++) s += q[r * D + h * hd + i] * ROW(K, t)[i];
                    sc[t] = s / sqrt((double)hd);
                    mx = fmax(mx, sc[t]);
                }
                for (size_t t = 0; t < n; t++) sum += sc[t] = exp(sc[t] - mx);
                for (size_t i = 0; i < hd; i++) {
                    double acc = 0;
                    for (size_t t = 0; t < n; t++) acc += sc[t] / sum * ROW(Vd, t)[i];
                    o[r * D + h * hd + i] = acc;
                }
#undef ROW
            }
        size_t lo = l * NKV * P * hd * esz;
        br_kv_pages_t view = {.k = (char *)fK + lo, .v = (char *)fV + lo, .type = type,
                              .page_rows = P, .page_stride = page, .head_stride = P * hd};
        k->attention_paged(fo, scratch, fq, &view, row_pages, rowpos, N, NH, NKV, hd);
        snprintf(what, sizeof what, "attention_paged %s NH %zu NKV %zu hd %zu P %zu len %zu layer %zu",
                 type == BR_KV_F16 ? "f16" : "f32", NH, NKV, hd, P, len, l);
        cmp(what, fo, o, N * D, TOL);
        size_t differ = 0;
        for (size_t r = 0; r < N; r++) { /* alone: rows of a chunk need their predecessors' data
                                          * only in the cache, which is there */
            k->attention_paged(f1, scratch, fq + r * D, &view, row_pages + r, rowpos + r, 1, NH, NKV, hd);
            size_t i = 0; /* the same values (+0 and -0 compare equal) */
            while (i < D && f1[i] == fo[r * D + i]) i++;
            differ += i < D;
        }
        CHECK_MSG(differ == 0, "%s: %s: %zu rows differ when run alone", tname, what, differ);
    }
    free(fK), free(fV), free(K), free(Vd), free(tables), free(fq), free(fo), free(f1), free(q);
    free(o), free(sc), free(scratch);
}

static void test_paged(const br_kernels_t *k)
{
    paged_case(k, 6, 2, 9, 4, 13, 5, BR_KV_F32);     /* odd hd, tiny pages */
    paged_case(k, 4, 4, 64, 16, 70, 40, BR_KV_F32);  /* MHA, pages = tiles */
    paged_case(k, 8, 2, 64, 5, 37, 20, BR_KV_F32);   /* GQA 4, pages cut tiles */
    paged_case(k, 16, 2, 128, 37, 90, 33, BR_KV_F32); /* GQA 8, pages longer than tiles */
    paged_case(k, 32, 1, 64, 16, 40, 6, BR_KV_F32);  /* MQA: a group wider than a block */
    paged_case(k, 8, 2, 128, 16, 50, 17, BR_KV_F16);
    paged_case(k, 6, 3, 64, 7, 29, 11, BR_KV_F16);
    paged_case(k, 6, 6, 48, 16, 45, 19, BR_KV_F32);  /* hd 48: column blocks of 16, 32 and 8 */
    paged_case(k, 4, 2, 40, 8, 33, 12, BR_KV_F16);   /* hd 40: a tail of 8 columns */
}

/* ---- elementwise, optimiser, memory ---- */

static void test_elementwise(const br_kernels_t *k, size_t n)
{
    double *a, *b, *c, *m, *v;
    float *fa = frand(n, 1, &a), *fb = frand(n, 1, &b), *fc = frand(n, 1, &c);
    float *fm = frand(n, 0.1, &m), *fv = frand(n, 0.1, &v);
    double *want = dzero(n);
    float *got = fzero(n);
    for (size_t i = 0; i < n; i++) want[i] = a[i] + b[i], v[i] = fv[i] = fabsf(fv[i]);
    k->add(got, fa, fb, n);
    cmp("add", got, want, n, 1e-7);
    k->add_inplace(got, fc, n);
    for (size_t i = 0; i < n; i++) want[i] = (double)(float)want[i] + c[i];
    cmp("add_inplace", got, want, n, 1e-7);
    k->scale_inplace(got, -0.375f, n);
    for (size_t i = 0; i < n; i++) want[i] *= -0.375;
    cmp("scale_inplace", got, want, n, 1e-7);
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += a[i] * a[i];
    double fss = k->sum_squares(fa, n);
    CHECK_MSG(fabs(fss - sqrt(ss)) <= 1e-12 * sqrt(ss), "%s: sum_squares %.17g vs %.17g", tname,
              fss, sqrt(ss));

    /* AdamW step t = 3 on p = a, g = b (torch.optim.AdamW's formula, in double) */
    double lr = 1e-2, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
    int t = 3;
    k->adamw_step(fa, fb, fm, fv, n, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd, t);
    double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
    for (size_t i = 0; i < n; i++) {
        double mi = m[i] + (1 - b1) * (b[i] - m[i]), vi = b2 * v[i] + (1 - b2) * b[i] * b[i];
        want[i] = a[i] * (1 - lr * wd) - lr / bc1 * mi / (sqrt(vi) / sqrt(bc2) + eps);
        m[i] = mi;
    }
    cmp("adamw p", fa, want, n, 1e-6);
    cmp("adamw m", fm, m, n, 1e-6);
    free(fa), free(fb), free(fc), free(fm), free(fv), free(a), free(b), free(c), free(m), free(v);
    free(want), free(got);
}

static void test_memory(const br_kernels_t *k)
{
    size_t n = 1001;
    float host[1001], back[1001];
    for (size_t i = 0; i < n; i++) host[i] = (float)i * 0.5f;
    float *dev = k->alloc(n * sizeof *dev);
    CHECK(dev != NULL && ((uintptr_t)dev & 63) == 0);
    k->upload(dev, host, n * sizeof *dev);
    k->sync();
    k->download(back, dev, n * sizeof *dev);
    CHECK(memcmp(back, host, sizeof host) == 0);
    k->free(dev);
    k->free(NULL);
}

/* The contract: the same bits with 1 and 2 threads (GEMM blocks, reductions and dw columns are
 * split by shape, never by thread count).  Shapes large enough to take the threaded paths. */
static void test_threads(const br_kernels_t *k)
{
    size_t B = 2, T = 70, NH = 4, NKV = 2, hd = 16, N = B * T, C = 600, OC = 700, V = 517;
    size_t nq = N * NH * hd, nk = N * NKV * hd, na = B * NH * T * T;
    float *q = frand1(nq, 1), *kk = frand1(nk, 1), *v = frand1(nk, 1);
    float *x = frand1(N * C, 1), *w = frand1(OC * C, 1), *lg = frand1(N * V, 4);
    int32_t *tg = malloc(N * sizeof *tg);
    for (size_t i = 0; i < N; i++) tg[i] = (int32_t)br_rng_below(&rng, V);
    float *out[2], *att[2], *y[2], *dl[2], ls[2][140], mean[2];
    double ss[2];
    int old = br_get_threads();
    for (int r = 0; r < 2; r++) {
        br_set_threads(r + 1);
        out[r] = fzero(nq), att[r] = fzero(na), y[r] = fzero(N * OC), dl[r] = fzero(N * V);
        k->attention_forward(out[r], att[r], q, kk, v, B, T, NH, NKV, hd);
        k->matmul[BR_WT_F32](y[r], x, w, N, C, OC);
        mean[r] = k->xent_fused(ls[r], dl[r], lg, tg, 0.5f, N, V);
        ss[r] = k->sum_squares(w, OC * C);
    }
    br_set_threads(old);
    CHECK_MSG(memcmp(out[0], out[1], nq * 4) == 0, "%s: attention differs with 1 and 2 threads",
              tname);
    CHECK_MSG(memcmp(y[0], y[1], N * OC * 4) == 0, "%s: matmul differs with 1 and 2 threads",
              tname);
    CHECK_MSG(memcmp(dl[0], dl[1], N * V * 4) == 0 && mean[0] == mean[1],
              "%s: xent_fused differs with 1 and 2 threads", tname);
    CHECK_MSG(ss[0] == ss[1], "%s: sum_squares differs with 1 and 2 threads", tname);
    for (int r = 0; r < 2; r++) free(out[r]), free(att[r]), free(y[r]), free(dl[r]);
    free(q), free(kk), free(v), free(x), free(w), free(lg), free(tg);
}

static void test_table(const br_kernels_t *k)
{
    tname = k->name;
    int before = th_failed;
    test_matmul(k);
    test_rowwise(k, 7, 37);    /* one thread, odd tails */
    test_rowwise(k, 67, 517);  /* threaded paths (N*C > NN_PAR_MIN) */
    test_attention(k, 2, 13, 4, 2, 10);
    test_attention(k, 1, 70, 3, 1, 8); /* several row blocks in the float build */
    test_paged(k);
    test_elementwise(k, 37);
    test_elementwise(k, 70001);
    test_memory(k);
    test_threads(k);
    printf("table %-8s (gemm %s): %s\n", k->name, k->gemm_name,
           th_failed == before ? "every entry matches the float64 reference" : "FAILED");
}

/* Q8_0 / Q4_0 bytes as llama.cpp's reference quantisers write them (GGUF layouts), and the
 * round trip's error bound on random rows. */
static void test_quant_layout(void)
{
    float x[32], y[32];
    uint8_t b[34];
    /* Q8_0: amax 127 -> d = 1 (fp16 0x3c00), q = roundf(x): ties away from zero */
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    x[0] = 127, x[1] = 2.5f, x[2] = -2.5f, x[3] = -127;
    CHECK_OK(br_wtype_quantize(BR_WT_Q8_0, b, x, 1, 32));
    CHECK(b[0] == 0x00 && b[1] == 0x3c);
    CHECK((int8_t)b[2] == 127 && (int8_t)b[3] == 3 && (int8_t)b[4] == -3 && (int8_t)b[5] == -127);
    CHECK((int8_t)b[2 + 20] == 4);
    CHECK_OK(br_wtype_dequantize(BR_WT_Q8_0, y, b, 1, 32));
    CHECK(y[0] == 127 && y[1] == 3 && y[20] == 4);
    /* Q4_0: the first value of largest magnitude (-8) gives d = -8 / -8 = 1; byte j holds value j
     * in its low nibble and value j + 16 in its high one, offset by 8 */
    for (int j = 0; j < 16; j++) x[j] = (float)(j - 8), x[16 + j] = (float)(7 - j);
    CHECK_OK(br_wtype_quantize(BR_WT_Q4_0, b, x, 1, 32));
    CHECK(b[0] == 0x00 && b[1] == 0x3c);
    bool nib = true;
    for (int j = 0; j < 16; j++) nib &= b[2 + j] == (uint8_t)(j | (15 - j) << 4);
    CHECK_MSG(nib, "Q4_0 nibble order: byte 0 = %#x, byte 15 = %#x", b[2], b[17]);
    CHECK_OK(br_wtype_dequantize(BR_WT_Q4_0, y, b, 1, 32));
    CHECK(y[0] == -8 && y[15] == 7 && y[16] == 7 && y[31] == -8);
    /* a positive maximum first: d = 8 / -8 = -1, its opposite -8 clamps to q = 15 (-7) */
    memset(x, 0, sizeof x);
    x[0] = 8, x[1] = -8, x[2] = 3;
    CHECK_OK(br_wtype_quantize(BR_WT_Q4_0, b, x, 1, 32));
    CHECK(b[0] == 0x00 && b[1] == 0xbc); /* fp16 -1 */
    CHECK_OK(br_wtype_dequantize(BR_WT_Q4_0, y, b, 1, 32));
    CHECK(y[0] == 8 && y[1] == -7 && y[2] == 3 && y[5] == 0);
    /* round trips: |x - deq| <= d / 2 (Q8_0; d = amax / 127) or <= |d| (Q4_0, whose clamp at 15
     * costs one step; |d| = amax / 8), plus the fp16 rounding of d (2^-11 relative, times q) */
    size_t rows = 5, C = 96;
    float *f = frand1(rows * C, 3), *g = fzero(rows * C);
    uint8_t *q = malloc(rows * C * 2); /* >= 34 bytes per 32 values */
    for (int t = 0; t < 2; t++) {
        br_wtype wt = t ? BR_WT_Q4_0 : BR_WT_Q8_0;
        CHECK_OK(br_wtype_quantize(wt, q, f, rows, C));
        CHECK_OK(br_wtype_dequantize(wt, g, q, rows, C));
        bool ok = true;
        for (size_t blk = 0; blk < rows * C / 32; blk++) {
            double amax = 0;
            for (size_t j = blk * 32; j < blk * 32 + 32; j++) amax = fmax(amax, fabs(f[j]));
            double d = t ? amax / 8 : amax / 127, lim = (t ? d : d / 2) + (t ? 8 : 127) * d * 0x1p-11;
            for (size_t j = blk * 32; j < blk * 32 + 32; j++) ok &= fabs(f[j] - g[j]) <= lim;
        }
        CHECK_MSG(ok, "%s round trip beyond its error bound", br_wtype_name(wt));
    }
    CHECK_STATUS(br_wtype_quantize(BR_WT_Q8_0, q, f, 1, 33), BR_EINVAL);
    CHECK_STATUS(br_wtype_dequantize(BR_WT_COUNT, g, q, 1, 32), BR_EINVAL);
    free(f), free(g), free(q);
}

/* Selection: the environment, br_kernels_use, and weight types refused with a message. */
static void test_selection(void)
{
    CHECK_STR(br_kernels()->name, "portable"); /* main set BRAID_KERNELS=portable first */
    CHECK_STR(br_gemm_backend(), "portable");
    CHECK_STATUS(br_kernels_use("sse9"), BR_ENOTFOUND);
    CHECK(strstr(br_errmsg(), "sse9") != NULL);
    for (const char *const *n = br_kernels_names(); *n; n++)
        if (!br_kernels_find(*n)) {
            CHECK_STATUS(br_kernels_use(*n), BR_EUNSUPPORTED);
            CHECK(strstr(br_errmsg(), *n) != NULL);
        }
    CHECK_OK(br_kernels_use("auto"));
    const br_kernels_t *best = br_kernels(), *want = NULL;
    for (const char *const *n = br_kernels_names(); *n && !want; n++) want = br_kernels_find(*n);
    CHECK(best == want);
    printf("best table on this CPU: %s\n", best->name);

    for (int wt = 0; wt < BR_WT_COUNT; wt++) CHECK_OK(br_kernels_matmul_check(best, (br_wtype)wt));
    /* a table lacking a type is refused with a message naming it, before y is touched */
    br_kernels_t lacking = *best;
    lacking.matmul[BR_WT_Q4_K] = NULL;
    CHECK_STATUS(br_kernels_matmul_check(&lacking, BR_WT_Q4_K), BR_EUNSUPPORTED);
    CHECK_MSG(strstr(br_errmsg(), "Q4_K") != NULL, "message names Q4_K: %s", br_errmsg());
    float y7 = 7, x1 = 1;
    CHECK_INT(br_matmul(BR_WT_COUNT, &y7, &x1, &x1, 1, 32, 1), BR_EINVAL);
    CHECK(y7 == 7); /* untouched */
    CHECK_STATUS(br_kernels_matmul_check(best, BR_WT_COUNT), BR_EINVAL);
    size_t bytes = 0;
    CHECK_OK(br_wtype_row_bytes(BR_WT_F32, 5, &bytes));
    CHECK_INT(bytes, 20);
    CHECK_OK(br_wtype_row_bytes(BR_WT_BF16, 5, &bytes));
    CHECK_INT(bytes, 10);
    CHECK_OK(br_wtype_row_bytes(BR_WT_Q8_0, 64, &bytes));
    CHECK_INT(bytes, 68);
    CHECK_OK(br_wtype_row_bytes(BR_WT_Q4_0, 96, &bytes));
    CHECK_INT(bytes, 54);
    CHECK_OK(br_wtype_row_bytes(BR_WT_Q4_K, 512, &bytes));
    CHECK_INT(bytes, 288);
    CHECK_STATUS(br_wtype_row_bytes(BR_WT_Q4_K, 300, &bytes), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "256") != NULL);
    CHECK_STR(br_wtype_name(BR_WT_Q4_K), "Q4_K");
    CHECK_OK(br_wtype_row_bytes(BR_WT_Q6_K, 512, &bytes));
    CHECK_INT(bytes, 420);
    CHECK_STR(br_wtype_name(BR_WT_Q6_K), "Q6_K");

    /* the F32 path through the active table */
    float w[6] = {1, 2, 3, 4, 5, 6}, x[3] = {1, -1, 2}, y[2] = {0};
    CHECK_OK(br_matmul(BR_WT_F32, y, x, w, 1, 3, 2));
    CHECK(y[0] == 5 && y[1] == 11);
    /* br_matmul_dinp: dinp += dout W; F32 through matmul_backward, Q4_K through the table (a
     * zero block adds nothing), a type out of range refused */
    float dy[2] = {1, 2}, dx[3] = {1, 0, 0};
    CHECK_OK(br_matmul_dinp(BR_WT_F32, dx, dy, w, 1, 3, 2));
    CHECK(dx[0] == 10 && dx[1] == 12 && dx[2] == 15);
    uint8_t q4k[144] = {0};
    float dk256[256] = {10};
    CHECK_OK(br_matmul_dinp(BR_WT_Q4_K, dk256, dy, q4k, 1, 256, 1));
    CHECK(dk256[0] == 10 && dk256[255] == 0);
    CHECK_STATUS(br_matmul_dinp(BR_WT_COUNT, dx, dy, q4k, 1, 256, 1), BR_EUNSUPPORTED);
    CHECK(dx[0] == 10);
}

int main(void)
{
    br_rng_seed(&rng, 17);
    setenv("BRAID_KERNELS", "portable", 1); /* before the first kernel call */
    test_selection();
    test_quant_layout();
    int tested = 0;
    for (const char *const *n = br_kernels_names(); *n; n++) {
        const br_kernels_t *k = br_kernels_find(*n);
        if (!k) {
            SKIP("kernel table %s: this CPU lacks its instruction set", *n);
            continue;
        }
        test_table(k);
        tested++;
    }
    printf("tested %d kernel table%s on this CPU\n", tested, tested == 1 ? "" : "s");
    CHECK(tested >= 1);
    return th_exit();
}
