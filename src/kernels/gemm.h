/* F32 GEMM, row-major throughout:
 *
 *   C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C
 *   op(A) = A (M,K, lda >= K) or A^T with A stored (K,M, lda >= M); likewise B.
 *
 * br_sgemm runs the active kernel table's GEMM (kernels/kernels.h): OpenBLAS in the avx2 and
 * avx512 tables, the portable blocked loops in the portable one.
 *
 * Threading (docs/threads.md): one pool, OpenMP.  OpenBLAS is single-threaded; br_sgemm_blas
 * splits a large GEMM across the OpenMP threads itself, and may be called from inside a
 * parallel region (then it runs on the calling thread) or from any thread. */
#ifndef BR_KERNELS_GEMM_H
#define BR_KERNELS_GEMM_H
#include <stdbool.h>
#include <stddef.h>

void br_sgemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
              size_t ldc);
/* OpenBLAS, split across the OpenMP threads by blocks of C fixed by the shape. */
void br_sgemm_blas(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha,
                   const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                   size_t ldc);
/* Portable C (blocked, OpenMP over rows of C), built for the compiler's baseline target. */
void br_sgemm_portable(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha,
                       const float *A, size_t lda, const float *B, size_t ldb, float beta,
                       float *C, size_t ldc);
/* What the active table runs GEMMs with: "openblas" or "portable". */
const char *br_gemm_backend(void);
#endif
