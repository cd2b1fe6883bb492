/* F32 GEMM through OpenBLAS, split across the one OpenMP pool (docs/threads.md): the GEMM of the
 * avx2 and avx512 kernel tables. */
#include "kernels/gemm.h"

#include <omp.h>

#include <cblas.h>

#include "base/threads.h"

static void blas(bool ta, bool tb, size_t M, size_t N, size_t K, float alpha, const float *A,
                 size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/* Below this many FLOPs a GEMM runs on the calling thread (a parallel region costs ~5-20 us). */
#define GEMM_PAR_FLOPS 4e6
#define GEMM_BLOCK 256 /* rows (or columns) of C per task */

void br_sgemm_blas(bool ta, bool tb, size_t M, size_t N, size_t K, float alpha,
                   const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                   size_t ldc)
{
    if (M == 0 || N == 0) return;
    if (K == 0) { /* C = beta C (BLAS would reject lda = 0) */
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
        return;
    }
    int nt = br_get_threads();
    if (omp_in_parallel() || 2.0 * (double)M * (double)N * (double)K < GEMM_PAR_FLOPS) {
        blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* Split the longer side of C into blocks of GEMM_BLOCK rows/columns handed out dynamically:
     * on a shared machine a thread that loses its core for a while leaves its blocks to the
     * others instead of stalling the whole GEMM.  The blocks depend on the shape only, never on
     * the thread count, so results are bit-identical with any number of threads (OpenBLAS's
     * per-element result depends on the block's size).  Smaller blocks re-pack the other
     * operand too often (docs/threads.md). */
    bool by_rows = M >= N;
    size_t len = by_rows ? M : N, blk = GEMM_BLOCK;
    size_t nblk = (len + blk - 1) / blk;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (size_t b = 0; b < nblk; b++) {
        size_t s0 = b * blk, s1 = s0 + blk < len ? s0 + blk : len;
        if (by_rows)
            blas(ta, tb, s1 - s0, N, K, alpha, ta ? A + s0 : A + s0 * lda, lda, B, ldb, beta,
                 C + s0 * ldc, ldc);
        else
            blas(ta, tb, M, s1 - s0, K, alpha, A, lda, tb ? B + s0 * ldb : B + s0, ldb, beta,
                 C + s0, ldc);
    }
}
