/* The one thread pool (docs/threads.md): OpenMP.  BLAS always runs single-threaded inside it.
 *
 * br_get_threads() is the number of OpenMP threads every parallel kernel uses: all cores by
 * default, or BRAID_THREADS, or the last br_set_threads().  Text, serving and kernel code ask
 * here; none of them needs to know about GEMM or BLAS. */
#ifndef BR_BASE_THREADS_H
#define BR_BASE_THREADS_H

/* Sets the OpenMP thread count (n < 1 means 1) and pins OpenBLAS to one thread.  Not meant to
 * be called while other threads run kernels (it changes the process-wide OpenMP default). */
void br_set_threads(int n);
/* Threads used by parallel kernels; the first call reads BRAID_THREADS (default: all cores). */
int br_get_threads(void);
#endif
