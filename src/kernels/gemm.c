#include "kernels/gemm.h"

#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <cblas.h>

/* OpenBLAS and our OpenMP kernels share the cores by taking turns: a GEMM call is never made
 * from inside one of our parallel regions, and BLAS runs with the same thread count as
 * OpenMP.  Debian's libopenblas0-pthread keeps its own pthread pool; between calls its
 * threads sleep, so the two pools do not spin against each other. */
static int n_threads;
static atomic_int blas_serial; /* > 0: OpenBLAS is single-threaded, callable from our threads */

void br_set_threads(int n)
{
    if (n < 1) n = 1;
    n_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int br_get_threads(void)
{
    if (n_threads == 0) {
        const char *e = getenv("BRAID_THREADS");
        int n = e ? atoi(e) : 0;
        br_set_threads(n > 0 ? n : omp_get_num_procs());
    }
    return n_threads;
}

void br_blas_serial_begin(void)
{
    if (n_threads == 0) br_get_threads();
    if (atomic_fetch_add(&blas_serial, 1) == 0) openblas_set_num_threads(1);
}

void br_blas_serial_end(void)
{
    if (atomic_fetch_sub(&blas_serial, 1) == 1) openblas_set_num_threads(n_threads);
}

const char *br_gemm_backend(void) { return "openblas"; }

void br_sgemm(bool ta, bool tb, size_t M, size_t N, size_t K, float alpha, const float *A,
              size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    if (M == 0 || N == 0) return;
    if (n_threads == 0) br_get_threads();
    if (omp_in_parallel() && atomic_load_explicit(&blas_serial, memory_order_relaxed) == 0) {
        /* inside a parallel region: stay on this thread (no nested pools) */
        br_sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/* Portable fallback: C = alpha op(A) op(B) + beta C, blocked over K and N so that rows of B
 * (or of B^T, copied into a panel) stream through cache; parallel over rows of C. */
void br_sgemm_ref(bool ta, bool tb, size_t M, size_t N, size_t K, float alpha, const float *A,
                  size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    enum { KB = 256 };
#pragma omp parallel for schedule(static) if (M * N * K > 32768 && !omp_in_parallel())
    for (size_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (beta == 0) for (size_t j = 0; j < N; j++) c[j] = 0;
        else if (beta != 1) for (size_t j = 0; j < N; j++) c[j] *= beta;
        for (size_t k0 = 0; k0 < K; k0 += KB) {
            size_t k1 = k0 + KB < K ? k0 + KB : K;
            if (!tb) {
                for (size_t k = k0; k < k1; k++) {
                    float a = alpha * (ta ? A[k * lda + i] : A[i * lda + k]);
                    const float *b = B + k * ldb;
                    for (size_t j = 0; j < N; j++) c[j] += a * b[j];
                }
            } else {
                for (size_t j = 0; j < N; j++) {
                    const float *b = B + j * ldb;
                    float s = 0;
                    if (!ta) {
                        const float *a = A + i * lda;
                        for (size_t k = k0; k < k1; k++) s += a[k] * b[k];
                    } else {
                        for (size_t k = k0; k < k1; k++) s += A[k * lda + i] * b[k];
                    }
                    c[j] += alpha * s;
                }
            }
        }
    }
}
