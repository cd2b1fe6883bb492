/* GEMM: OpenBLAS cblas_sgemm when available, a portable blocked fallback otherwise (and as the
 * test reference).  Row-major throughout.
 *
 *   C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C
 *   op(A) = A (M,K, lda >= K) or A^T with A stored (K,M, lda >= M); likewise B.
 *
 * Threading (docs/threads.md): one pool, OpenMP.  OpenBLAS is single-threaded; br_sgemm splits a
 * large GEMM across the OpenMP threads itself, and may be called from inside a parallel region
 * (then it runs on the calling thread) or from any thread. */
#ifndef BR_KERNELS_GEMM_H
#define BR_KERNELS_GEMM_H
#include <stdbool.h>
#include <stddef.h>

void br_sgemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
              size_t ldc);
/* Portable reference (blocked, OpenMP over rows of C). */
void br_sgemm_ref(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha,
                  const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                  size_t ldc);
/* Threads used by GEMM and by our OpenMP kernels (default: all cores, or BRAID_THREADS). */
void br_set_threads(int n);
int br_get_threads(void);
/* Name of the active backend: "openblas" or "portable". */
const char *br_gemm_backend(void);
#endif
