/* GEMM: OpenBLAS cblas_sgemm when available, a portable blocked fallback otherwise (and as the
 * test reference).  Row-major throughout.
 *
 *   C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C
 *   op(A) = A (M,K, lda >= K) or A^T with A stored (K,M, lda >= M); likewise B.
 *
 * Threading: see docs/threads.md (OpenBLAS and OpenMP never both spin on the cores). */
#ifndef BR_KERNELS_GEMM_H
#define BR_KERNELS_GEMM_H
#include <stdbool.h>
#include <stddef.h>

void br_sgemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha,
              const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
              size_t ldc);
/* Inside an OpenMP parallel region br_sgemm runs the portable kernel (no nested pools), except
 * between br_blas_serial_begin() and br_blas_serial_end(), called outside the region: there
 * OpenBLAS is switched to one thread and each OpenMP thread calls it on its own small GEMM
 * (attention's per-head products).  Calls nest (a counter). */
void br_blas_serial_begin(void);
void br_blas_serial_end(void);
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
