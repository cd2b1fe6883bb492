/* The portable GEMM: plain C, built for the compiler's baseline target (Makefile: *_portable.o
 * get no -march), so the portable kernel table runs on any CPU and needs no BLAS. */
#include <omp.h>

#include "kernels/gemm.h"

/* Portable fallback: C = alpha op(A) op(B) + beta C, blocked over K and N so that rows of B
 * (or of B^T, copied into a panel) stream through cache; parallel over rows of C. */
void br_sgemm_portable(bool ta, bool tb, size_t M, size_t N, size_t K, float alpha,
                       const float *A, size_t lda, const float *B, size_t ldb, float beta,
                       float *C, size_t ldc)
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
