/* br_sgemm_blas (OpenBLAS) and br_sgemm_portable against a double-precision triple loop, for
 * every transpose combination, odd sizes, padded leading dimensions, alpha/beta, and the
 * threading situations: split across the OpenMP threads (large), on the calling thread (small),
 * from inside an OpenMP region (each thread its own single-threaded BLAS call), and many
 * concurrent calls.
 * Also br_expf against libm's exp. */
#include <omp.h>
#include <stdlib.h>

#include "base/rng.h"
#include "harness.h"
#include "base/threads.h"
#include "kernels/gemm.h"
#include "kernels/vmath.h"

static br_rng_t rng;

static void naive(bool ta, bool tb, size_t M, size_t N, size_t K, float alpha, const float *A,
                  size_t lda, const float *B, size_t ldb, float beta, double *C, size_t ldc)
{
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double s = 0;
            for (size_t k = 0; k < K; k++)
                s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) *
                     (tb ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * ldc + j] = alpha * s + beta * C[i * ldc + j];
        }
}

/* Max |got - want| / (sum_k |a||b| scale) over the M x N block, with the worst element. */
static void compare(const char *what, const float *got, const double *want, size_t M, size_t N,
                    size_t ldc, size_t K, bool ta, bool tb, double tol)
{
    double worst = 0;
    size_t wi = 0, wj = 0;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double e = fabs(got[i * ldc + j] - want[i * ldc + j]) / (double)(K + 1);
            if (e > worst) worst = e, wi = i, wj = j;
        }
    CHECK_MSG(worst <= tol, "%s ta=%d tb=%d M=%zu N=%zu K=%zu: error/(K+1) %.3g > %.1g at "
              "(%zu,%zu): got %.8g want %.8g", what, ta, tb, M, N, K, worst, tol, wi, wj,
              got[wi * ldc + wj], want[wi * ldc + wj]);
}

static void one_case(bool ta, bool tb, size_t M, size_t N, size_t K, float alpha, float beta)
{
    size_t pad = 3;
    size_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (ta ? K : M) * lda, nb = (tb ? N : K) * ldb, nc = M * ldc;
    float *A = malloc(na * 4 + 4), *B = malloc(nb * 4 + 4), *C0 = malloc(nc * 4 + 4);
    float *C1 = malloc(nc * 4 + 4), *C2 = malloc(nc * 4 + 4), *C3 = malloc(nc * 4 + 4);
    double *W = malloc(nc * 8 + 8);
    br_rng_fill_uniform(&rng, A, na, -1, 1);
    br_rng_fill_uniform(&rng, B, nb, -1, 1);
    br_rng_fill_uniform(&rng, C0, nc, -1, 1);
    for (size_t i = 0; i < nc; i++) W[i] = C0[i];
    memcpy(C1, C0, nc * 4), memcpy(C2, C0, nc * 4), memcpy(C3, C0, nc * 4);
    naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, W, ldc);
    br_sgemm_blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C1, ldc);
    br_sgemm_portable(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C2, ldc);
    compare("br_sgemm_blas", C1, W, M, N, ldc, K, ta, tb, 1e-6);
    compare("br_sgemm_portable", C2, W, M, N, ldc, K, ta, tb, 1e-6);
    /* padding columns untouched */
    bool pad_ok = true;
    for (size_t i = 0; i < M; i++)
        for (size_t j = N; j < ldc; j++)
            pad_ok &= C1[i * ldc + j] == C0[i * ldc + j] && C2[i * ldc + j] == C0[i * ldc + j];
    CHECK_MSG(pad_ok, "gemm wrote outside the N columns (ta=%d tb=%d M=%zu N=%zu K=%zu)", ta,
              tb, M, N, K);
    /* inside a parallel region, each thread on half of the rows (br_sgemm_blas, then the portable one) */
    for (int ref = 0; ref < 2; ref++) {
        memcpy(C3, C0, nc * 4);
#pragma omp parallel num_threads(2)
        {
            int t = omp_get_thread_num(), n = omp_get_num_threads();
            size_t r0 = M * t / n, r1 = M * (t + 1) / n;
            const float *Ar = ta ? A + r0 : A + r0 * lda;
            if (r1 > r0 && !ref)
                br_sgemm_blas(ta, tb, r1 - r0, N, K, alpha, Ar, lda, B, ldb, beta, C3 + r0 * ldc, ldc);
            if (r1 > r0 && ref)
                br_sgemm_portable(ta, tb, r1 - r0, N, K, alpha, Ar, lda, B, ldb, beta, C3 + r0 * ldc, ldc);
        }
        compare(ref ? "br_sgemm_portable in omp region" : "br_sgemm_blas in omp region", C3, W, M, N, ldc,
                K, ta, tb, 1e-6);
    }
    free(A), free(B), free(C0), free(C1), free(C2), free(C3), free(W);
}

static void test_gemm(void)
{
    static const size_t sizes[][3] = {{1, 1, 1},     {1, 7, 3},      {7, 1, 5},
                                      {13, 17, 19},  {33, 31, 1},    {64, 65, 63},
                                      {129, 7, 257}, {200, 130, 300}, {37, 301, 250},
                                      /* split into 3 row blocks / 3 column blocks */
                                      {600, 100, 40}, {50, 700, 64}, {5, 6, 0}};
    static const float ab[][2] = {{1, 0}, {0.5f, 1}, {-2, 0.25f}};
    for (int t = 0; t < 4; t++)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (int a = 0; a < 3; a++)
                one_case(t & 1, t >> 1, sizes[s][0], sizes[s][1], sizes[s][2], ab[a][0], ab[a][1]);
    /* many concurrent single-threaded BLAS calls (attention's pattern) stay correct */
    size_t M = 96, N = 80, K = 64, reps = 32;
    float *A = malloc(M * K * 4), *B = malloc(K * N * 4), *C = calloc(reps * M * N, 4);
    double *W = calloc(M * N, 8);
    br_rng_fill_uniform(&rng, A, M * K, -1, 1);
    br_rng_fill_uniform(&rng, B, K * N, -1, 1);
    naive(false, false, M, N, K, 1, A, K, B, N, 0, W, N);
#pragma omp parallel for schedule(dynamic)
    for (size_t r = 0; r < reps; r++) br_sgemm_blas(false, false, M, N, K, 1, A, K, B, N, 0, C + r * M * N, N);
    for (size_t r = 0; r < reps; r++) compare("concurrent BLAS calls", C + r * M * N, W, M, N, N, K, 0, 0, 1e-6);
    free(A), free(B), free(C), free(W);
}

static void test_expf(void)
{
    double worst = 0, wx = 0;
    for (double x = -87.0; x < 88.3; x += 0.00137) {
        float xf = (float)x;
        double e = exp((double)xf), r = fabs(br_expf(xf) - e) / e;
        if (r > worst) worst = r, wx = xf;
    }
    CHECK_MSG(worst < 2e-7, "br_expf max rel error %.3g at x=%.7g", worst, wx);
    printf("br_expf max rel error %.3g (at x=%.6g)\n", worst, wx);
    CHECK(br_expf(0) == 1.0f);
    CHECK(br_expf(-100) == 0.0f);
    CHECK(br_expf(-INFINITY) == 0.0f);
    CHECK(isinf(br_expf(100)) && br_expf(100) > 0);
    CHECK(isnan(br_expf(NAN)));
    /* vectorised use (the loops in nn/ go through this path) */
    enum { n = 1027 };
    static float xs[n], ys[n];
    for (int i = 0; i < n; i++) xs[i] = -20 + 40.0f * (float)i / n;
    for (int i = 0; i < n; i++) ys[i] = br_expf(xs[i]);
    double w2 = 0;
    for (int i = 0; i < n; i++) w2 = fmax(w2, fabs(ys[i] - exp(xs[i])) / exp(xs[i]));
    CHECK_MSG(w2 < 2e-7, "br_expf (vector loop) max rel error %.3g", w2);
    double w3 = 0;
    for (int i = 0; i < n; i++) xs[i] = -87.0f * (float)i / n;
    for (int i = 0; i < n; i++) ys[i] = br_expf_neg(xs[i]);
    for (int i = 0; i < n; i++) w3 = fmax(w3, fabs(ys[i] - exp(xs[i])) / exp(xs[i]));
    CHECK_MSG(w3 < 2e-7, "br_expf_neg max rel error %.3g on [-87, 0]", w3);
    CHECK(br_expf_neg(-1000) == 0.0f && br_expf_neg(0) == 1.0f);
}

int main(void)
{
    br_rng_seed(&rng, 7);
    printf("br_sgemm_blas and br_sgemm_portable, %d threads\n", br_get_threads());
    test_gemm();
    test_expf();
    return th_exit();
}
