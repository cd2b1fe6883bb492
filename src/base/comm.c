/* Collectives over MPI, or over one process (base/comm.h). */
#include "base/comm.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/timer.h"

#ifdef BR_HAVE_MPI
#include <mpi.h>
#endif

struct br_comm {
    int rank, size;
    bool world;
    double seconds; /* inside collectives */
#ifdef BR_HAVE_MPI
    MPI_Comm mc;    /* MPI_COMM_NULL: the single-process world */
#endif
};

static br_comm_t g_world = {0, 1, true, 0
#ifdef BR_HAVE_MPI
                            , MPI_COMM_NULL
#endif
};
static bool g_world_ready;

bool br_comm_have_mpi(void)
{
#ifdef BR_HAVE_MPI
    return true;
#else
    return false;
#endif
}

bool br_comm_launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 1) return true;
    }
    return false;
}

int br_comm_rank(const br_comm_t *c) { return c ? c->rank : 0; }
int br_comm_size(const br_comm_t *c) { return c ? c->size : 1; }
double br_comm_seconds(const br_comm_t *c) { return c ? c->seconds : 0; }
void br_comm_reset_seconds(br_comm_t *c)
{
    if (c) c->seconds = 0;
}

/* Element counts for MPI (int) in *cnt (2 * size: counts, then displacements; free *cnt). */
static br_status int_counts(const br_comm_t *c, const size_t *counts, int **cnt, int **displs)
{
    int *v = malloc(2 * (size_t)c->size * sizeof *v);
    if (!v) return br_error(BR_ENOMEM, "out of memory");
    size_t off = 0;
    for (int r = 0; r < c->size; r++) {
        if (counts[r] > INT_MAX || off > INT_MAX) {
            free(v);
            return br_error(BR_ERANGE, "a part of %zu floats at offset %zu is too large for one MPI call (max %d): "
                                       "use smaller buckets", counts[r], off, INT_MAX);
        }
        v[r] = (int)counts[r];
        v[c->size + r] = (int)off;
        off += counts[r];
    }
    *cnt = v;
    *displs = v + c->size;
    return BR_OK;
}

#ifdef BR_HAVE_MPI
static br_status mpi_status(int rc, const char *what)
{
    if (rc == MPI_SUCCESS) return BR_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return br_error(BR_EIO, "MPI %s failed: %.*s", what, len, msg);
}

static void finalize_at_exit(void)
{
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}
#endif

br_status br_comm_world(br_comm_t **out)
{
    *out = &g_world;
    if (g_world_ready) return BR_OK;
#ifdef BR_HAVE_MPI
    if (br_comm_launched()) {
        int provided = 0, inited = 0;
        MPI_Initialized(&inited);
        if (!inited && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return br_error(BR_EIO, "MPI_Init failed (was this process started by mpirun?)");
        if (!inited) atexit(finalize_at_exit);
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        g_world.mc = MPI_COMM_WORLD;
        MPI_Comm_rank(MPI_COMM_WORLD, &g_world.rank);
        MPI_Comm_size(MPI_COMM_WORLD, &g_world.size);
    }
#else
    if (br_comm_launched())
        return br_error(BR_EUNSUPPORTED, "started by mpirun as one of several processes, but this braid was built "
                                         "without MPI: install Open MPI (make deps: openmpi-bin, libopenmpi-dev) and "
                                         "rebuild (make clean && make)");
#endif
    g_world_ready = true;
    return BR_OK;
}

br_status br_comm_split(br_comm_t *c, int color, int key, br_comm_t **out)
{
    *out = NULL;
    br_comm_t *n = calloc(1, sizeof *n);
    if (!n) return br_error(BR_ENOMEM, "out of memory");
    *n = (br_comm_t){.rank = 0, .size = 1};
#ifdef BR_HAVE_MPI
    n->mc = MPI_COMM_NULL;
    if (c->size > 1) {
        br_status s = mpi_status(MPI_Comm_split(c->mc, color, key, &n->mc), "Comm_split");
        if (s) {
            free(n);
            return s;
        }
        MPI_Comm_set_errhandler(n->mc, MPI_ERRORS_RETURN);
        MPI_Comm_rank(n->mc, &n->rank);
        MPI_Comm_size(n->mc, &n->size);
    }
#else
    (void)c, (void)color, (void)key;
#endif
    *out = n;
    return BR_OK;
}

void br_comm_free(br_comm_t *c)
{
    if (!c || c->world) return;
#ifdef BR_HAVE_MPI
    if (c->mc != MPI_COMM_NULL) MPI_Comm_free(&c->mc);
#endif
    free(c);
}

/* The collectives: one process is a copy (or nothing); several go to MPI. */
#ifdef BR_HAVE_MPI
#define MULTI(c) ((c)->size > 1)
#else
#define MULTI(c) false
#endif

/* In place sum of n elements of `size` bytes (4: float, 8: double). */
static br_status allreduce(br_comm_t *c, void *buf, size_t n, size_t size)
{
    if (!MULTI(c) || !n) return BR_OK;
    if (n > INT_MAX) return br_error(BR_ERANGE, "all-reduce of %zu elements: more than one MPI call takes", n);
    br_status s = BR_OK;
    double t = br_now();
#ifdef BR_HAVE_MPI
    s = mpi_status(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, size == 8 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, c->mc),
                   "Allreduce");
#else
    (void)buf, (void)size;
#endif
    c->seconds += br_now() - t;
    return s;
}

br_status br_comm_allreduce_sum(br_comm_t *c, float *buf, size_t n) { return allreduce(c, buf, n, sizeof *buf); }
br_status br_comm_allreduce_sum_f64(br_comm_t *c, double *buf, size_t n) { return allreduce(c, buf, n, sizeof *buf); }

/* The collectives over parts (counts[r] floats of process r, consecutive): in and out as the
 * public functions below take them. */
typedef enum { REDUCE_SCATTER, ALLGATHER, GATHER } parts_op;

static br_status parts(br_comm_t *c, parts_op op, const float *in, float *out, const size_t *counts, int root)
{
    if (!MULTI(c)) {
        if (op != ALLGATHER && counts[0] && in != out) memmove(out, in, counts[0] * sizeof *out);
        return BR_OK;
    }
    int *cnt = NULL, *displs = NULL;
    BR_TRY(int_counts(c, counts, &cnt, &displs));
    br_status s = BR_OK;
    double t = br_now();
#ifdef BR_HAVE_MPI
    static const char *const names[] = {"Reduce_scatter", "Allgatherv", "Gatherv"};
    int rc = op == REDUCE_SCATTER ? MPI_Reduce_scatter(in, out, cnt, MPI_FLOAT, MPI_SUM, c->mc)
             : op == ALLGATHER ? MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, cnt, displs, MPI_FLOAT, c->mc)
                               : MPI_Gatherv(in, cnt[c->rank], MPI_FLOAT, out, cnt, displs, MPI_FLOAT, root, c->mc);
    s = mpi_status(rc, names[op]);
#else
    (void)root;
#endif
    c->seconds += br_now() - t;
    free(cnt);
    return s;
}

br_status br_comm_reduce_scatter_sum(br_comm_t *c, const float *in, float *out, const size_t *counts)
{
    return parts(c, REDUCE_SCATTER, in, out, counts, 0);
}

br_status br_comm_allgather(br_comm_t *c, float *buf, const size_t *counts)
{
    return parts(c, ALLGATHER, buf, buf, counts, 0);
}

br_status br_comm_gather(br_comm_t *c, const float *mine, float *all, const size_t *counts, int root)
{
    return parts(c, GATHER, mine, all, counts, root);
}

br_status br_comm_barrier(br_comm_t *c)
{
    if (!MULTI(c)) return BR_OK;
    br_status s = BR_OK;
    double t = br_now();
#ifdef BR_HAVE_MPI
    s = mpi_status(MPI_Barrier(c->mc), "Barrier");
#endif
    c->seconds += br_now() - t;
    return s;
}

void br_comm_abort(br_comm_t *c, int code)
{
#ifdef BR_HAVE_MPI
    if (c && c->size > 1) MPI_Abort(c->mc, code);
#endif
    (void)c, (void)code;
}
