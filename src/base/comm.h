/* Collective communication between the processes of one job (data-parallel training,
 * docs/distributed.md), so that no other file includes mpi.h.
 *
 * Built with Open MPI (the Makefile defines BR_HAVE_MPI when its headers are present) and
 * started by `mpirun -np N`, br_comm_world() is MPI_COMM_WORLD; otherwise it is one process
 * (rank 0 of 1) and every collective is a copy or a no-op, so the same caller code runs
 * unchanged.  Floats are summed in whatever order MPI's algorithm picks (ring, tree...): the
 * results agree with one process to float summation tolerance, not bit for bit.
 *
 * MPI errors return (MPI_ERRORS_RETURN) as BR_EIO with MPI's message.  A process that dies
 * makes mpirun end the whole job ("mpirun noticed that process rank R ... exited on signal
 * 9"); a process that fails cleanly calls br_comm_abort so its peers do not wait for it in the
 * next collective.  Only the calling thread communicates (MPI_THREAD_FUNNELED). */
#ifndef BR_BASE_COMM_H
#define BR_BASE_COMM_H
#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

typedef struct br_comm br_comm_t;

/* True when this binary was built with MPI. */
bool br_comm_have_mpi(void);
/* True when an MPI launcher started this process as one of several (mpirun -np N, N > 1:
 * Open MPI's OMPI_COMM_WORLD_SIZE, or PMI_SIZE / PMIX_SIZE of other launchers). */
bool br_comm_launched(void);

/* The world: initialises MPI on the first call when launched by mpirun (MPI_Finalize runs at
 * exit); the single-process world otherwise.  BR_EUNSUPPORTED when launched as one of several
 * processes by a braid built without MPI (the message says how to rebuild).  The world is
 * never freed by the caller. */
br_status br_comm_world(br_comm_t **out);
/* The processes with the same color, ordered by key (MPI_Comm_split); free with br_comm_free. */
br_status br_comm_split(br_comm_t *c, int color, int key, br_comm_t **out);
void br_comm_free(br_comm_t *c); /* NULL and the world are no-ops */

int br_comm_rank(const br_comm_t *c);
int br_comm_size(const br_comm_t *c);

/* In place: buf (n) = the sum over processes of buf. */
br_status br_comm_allreduce_sum(br_comm_t *c, float *buf, size_t n);
br_status br_comm_allreduce_sum_f64(br_comm_t *c, double *buf, size_t n);
/* in (sum counts) summed over processes; this process receives its part, out (counts[rank]):
 * process r owns elements [sum counts[0..r), + counts[r]) of in. */
br_status br_comm_reduce_scatter_sum(br_comm_t *c, const float *in, float *out, const size_t *counts);
/* In place: every process holds its part of buf (sum counts) at its offset (as above); after
 * the call every process holds every part. */
br_status br_comm_allgather(br_comm_t *c, float *buf, const size_t *counts);
/* Every process's part mine (counts[rank]) into all (sum counts) on root (unused elsewhere). */
br_status br_comm_gather(br_comm_t *c, const float *mine, float *all, const size_t *counts, int root);
br_status br_comm_barrier(br_comm_t *c);
/* Ends every process of the job (MPI_Abort) with exit code `code`; returns only in the
 * single-process world (the caller then exits as usual).  For programs, never the library. */
void br_comm_abort(br_comm_t *c, int code);

/* Seconds this process has spent inside collectives of c (waiting included), and reset. */
double br_comm_seconds(const br_comm_t *c);
void br_comm_reset_seconds(br_comm_t *c);
#endif
