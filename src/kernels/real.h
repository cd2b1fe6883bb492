/* Precision template for the layer kernels (src/kernels/NAME.inc).
 *
 * Each layer with a backward is written once, in terms of `real`, NN(name), EXP/LOG/SQRT and
 * GEMM, in src/kernels/<layer>.inc.  Two configurations include it:
 *   - NN_FLOAT: a CPU kernel table (kernels/table.inc, built once per instruction set:
 *     table_portable.c, table_avx2.c, table_avx512.c).  NN(x) = kc_x, static to that table's
 *     translation unit; EXP = br_expf (vectorisable); GEMM is the table's F32 GEMM, which the
 *     including file defines first (OpenBLAS or the portable blocked loops).
 *   - NN_DOUBLE: the gradient check (tests/test_nn_grad.c) and the kernel test's reference
 *     (tests/test_kernels_tables.c): NN(x) = brd_x (static), GEMM = a naive double GEMM,
 *     EXP = exp, so finite differences in double check the code that runs with a tolerance of
 *     ~1e-7 instead of float's ~1e-2.
 *
 * Include exactly one of the two configurations per translation unit. */
#ifndef BR_KERNELS_REAL_H
#define BR_KERNELS_REAL_H
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/par.h"
#include "kernels/vmath.h"

#if defined(NN_FLOAT)
#ifndef GEMM
#error "a float kernel table defines GEMM (its F32 GEMM) before including kernels/real.h"
#endif
typedef float real;
#define NN(name) kc_##name
#define NN_API static
#define EXP(x) br_expf(x)
#define EXPNEG(x) br_expf_neg(x) /* x <= 0 */
#define LOG(x) logf(x)
#define SQRT(x) sqrtf(x)
#elif defined(NN_DOUBLE)
typedef double real;
#define NN(name) brd_##name
#define NN_API static __attribute__((unused))
#define EXP(x) exp(x)
#define EXPNEG(x) exp(x)
#define LOG(x) log(x)
#define SQRT(x) sqrt(x)
#define GEMM brd_gemm
/* C (M,N) = alpha op(A) op(B) + beta C, row-major, double, plain loops (the reference). */
static __attribute__((unused)) void brd_gemm(bool ta, bool tb, size_t M, size_t N, size_t K,
                                             double alpha, const double *A, size_t lda,
                                             const double *B, size_t ldb, double beta,
                                             double *C, size_t ldc)
{
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double s = 0;
            for (size_t k = 0; k < K; k++)
                s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * C[i * ldc + j]);
        }
}
#else
#error "define NN_FLOAT or NN_DOUBLE before including kernels/real.h"
#endif
#endif
