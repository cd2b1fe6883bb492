#include "kernels/gemm.h"

#include <omp.h>
#include <stdlib.h>

#include <cblas.h>

/* One thread pool: OpenMP.  OpenBLAS always runs single-threaded (set once, here); a large GEMM
 * is split by br_sgemm into one block of rows (or columns) per OpenMP thread, each thread
 * calling OpenBLAS on its block.  So the cores are never shared by two pools (Debian's
 * libopenblas0-pthread would otherwise keep its own pthread workers spinning between calls,
 * against our OpenMP threads), BLAS is callable from inside our parallel regions (attention's
 * per-head GEMMs) and from any other thread.  Measurements: docs/threads.md. */
static int n_threads;

void br_set_threads(int n)
{
    if (n < 1) n = 1;
    n_threads = n;
    /* BLAS first: in an OpenMP build of OpenBLAS (libopenblas0-openmp) this call also sets the
     * OpenMP thread count, which the next line then restores for our kernels. */
    openblas_set_num_threads(1);
    omp_set_num_threads(n);
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

const char *br_gemm_backend(void) { return "openblas"; }

static void blas(bool ta, bool tb, size_t M, size_t N, size_t K, float alpha, const float *A,
                 size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/* Below this many FLOPs a GEMM runs on the calling thread (a parallel region costs ~5-20 us). */
#define GEMM_PAR_FLOPS 4e6
#define GEMM_BLOCK 256 /* rows (or columns) of C per task */

void br_sgemm(bool ta, bool tb, size_t M, size_t N, size_t K, float alpha, const float *A,
              size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    if (M == 0 || N == 0) return;
    if (K == 0) { /* C = beta C (BLAS would reject lda = 0) */
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
        return;
    }
    int nt = n_threads ? n_threads : br_get_threads();
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
