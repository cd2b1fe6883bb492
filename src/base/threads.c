#include "base/threads.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>

#include <cblas.h>

/* One thread pool: OpenMP.  OpenBLAS always runs single-threaded (set once, here); a large GEMM
 * is split by the kernels (kernels/gemm.c) into one block of rows (or columns) per OpenMP
 * thread, each thread calling OpenBLAS on its block.  So the cores are never shared by two
 * pools (Debian's libopenblas0-pthread would otherwise keep its own pthread workers spinning
 * between calls, against our OpenMP threads), BLAS is callable from inside our parallel regions
 * (attention's per-head GEMMs) and from any other thread.  Measurements: docs/threads.md. */
static int n_threads;

/* OpenBLAS's pthread build starts its workers when the library loads; an idle worker spins on
 * sched_yield for its timeout (about 0.1 s) before it sleeps, on a core our threads want (a
 * 2-thread prefill of a small model lasts about that long).  braid never gives OpenBLAS more
 * than one thread, so the workers are stopped outright.  Weak: other builds (serial) lack it. */
extern int blas_thread_shutdown_(void) __attribute__((weak));

/* Once per process: setting the count again after the workers stopped would start them again
 * (measured: 165 us per br_set_threads(1)/(2) pair, the pair a decode step makes). */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single(void)
{
    openblas_set_num_threads(1);
    if (blas_thread_shutdown_) blas_thread_shutdown_();
}

void br_set_threads(int n)
{
    if (n < 1) n = 1;
    n_threads = n;
    /* BLAS first: in an OpenMP build of OpenBLAS (libopenblas0-openmp) its call also sets the
     * OpenMP thread count, which the next line then restores for our kernels. */
    pthread_once(&blas_once, blas_single);
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
