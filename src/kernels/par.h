/* How the CPU kernels split work across OpenMP threads (docs/threads.md).
 *
 * Work is cut into chunks of about NN_CHUNK elements handed out dynamically
 * (schedule(dynamic)): on a machine shared with other jobs, a thread that loses its core leaves
 * its chunks to the others instead of making the whole region wait for it (with static halves,
 * one descheduled thread stalled every region by a scheduler tick: 100x slower calls under
 * load).  Results never depend on which thread ran which chunk: reductions go through fixed
 * chunks combined in a fixed order. */
#ifndef BR_KERNELS_PAR_H
#define BR_KERNELS_PAR_H
#define NN_PAR_MIN 32768 /* elements below which a kernel stays on one thread */
#define NN_CHUNK 16384   /* elements per dynamically scheduled chunk */
/* rows per chunk for rows of C elements */
#define NN_ROWS(C) ((C) >= NN_CHUNK ? 1 : NN_CHUNK / (C))
#endif
