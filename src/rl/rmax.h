/* R-max (Brafman & Tennenholtz 2002) on a tabular MDP with S states and A actions.
 *
 * A pair (s, a) is "known" once it has been tried m times; its reward and transition
 * estimates are then frozen (empirical means).  Value iteration runs on the optimistic model:
 * unknown pairs are worth vmax = rmax / (1 - gamma); known pairs R(s,a) + gamma sum p V(s').
 * It reruns whenever a pair becomes known.  The action choice is greedy in Q (ties: lowest
 * action) or Boltzmann with a temperature; both are kept as per-state cumulative thresholds
 * on 24-bit uniforms so that the caller's hot loop does not touch doubles.
 *
 * Memory: transition counts are a dense (S*A, S) uint32 table while pairs are unknown; the
 * constructor refuses tables above `max_bytes` with a message naming the size. */
#ifndef BR_RL_RMAX_H
#define BR_RL_RMAX_H
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"

typedef struct {
    int32_t S, A;
    uint32_t m;             /* known threshold */
    double gamma, rmax, vmax;
    double temperature;     /* <= 0: greedy */
    double vi_tol;          /* value iteration stops when max |dV| < vi_tol ... */
    int vi_max_sweeps;      /* ... or after this many sweeps */

    uint32_t *n;            /* (S*A) samples so far (frozen at m) */
    double *rsum;           /* (S*A) reward sums */
    uint32_t *nsas;         /* (S*A, S) transition counts */
    uint8_t *known;         /* (S*A) */
    size_t nknown;
    /* Frozen model of known pairs, in sparse rows: pair -> [off, off+len) of succ/prob. */
    uint32_t *off, *len;    /* (S*A) */
    int32_t *succ;          /* (cap) */
    double *prob;           /* (cap) */
    size_t nnz, cap;
    double *rhat;           /* (S*A) */
    double *Q;              /* (S*A) */
    double *V;              /* (S) */
    uint32_t *cdf;          /* (S*A) cumulative 24-bit thresholds; the last of a row is 1<<24 */
    long vi_runs, vi_sweeps;
} br_rmax_t;

typedef struct {
    int32_t S, A;
    uint32_t m;
    double gamma, rmax, temperature, vi_tol;
    int vi_max_sweeps;
    size_t max_bytes;       /* 0: 4 GiB */
} br_rmax_config_t;

/* The R-FOS known threshold m = floor(S ln(1/delta) / (epsilon (1 - gamma))^2).
 * BR_EINVAL when a parameter is out of range, BR_ERANGE when m does not fit 32 bits. */
br_status br_rmax_threshold(uint32_t *m, int64_t S, double epsilon, double delta, double gamma);

/* Bytes br_rmax_init allocates for S states and A actions (before sparse growth). */
double br_rmax_bytes(int64_t S, int64_t A);

br_status br_rmax_init(br_rmax_t *r, const br_rmax_config_t *c);
void br_rmax_free(br_rmax_t *r);

/* Freezes pair's model (it has m samples) and replans.  Called by br_rmax_observe. */
void br_rmax_make_known(br_rmax_t *r, size_t pair);

/* Records one sample of an unknown pair (callers skip known pairs: r->known[pair]).
 * Returns 1 when this sample made the pair known (the model and policy were updated). */
static inline int br_rmax_observe(br_rmax_t *r, size_t pair, double reward, int32_t next)
{
    r->rsum[pair] += reward;
    r->nsas[pair * (size_t)r->S + (size_t)next]++;
    if (++r->n[pair] < r->m) return 0;
    br_rmax_make_known(r, pair);
    return 1;
}

/* Reruns value iteration on the current optimistic model and rebuilds the policy. */
void br_rmax_plan(br_rmax_t *r);

/* Action for state s given a 24-bit uniform u (0 <= u < 2^24). */
static inline int br_rmax_act(const br_rmax_t *r, int32_t s, uint32_t u)
{
    const uint32_t *c = r->cdf + (size_t)s * r->A;
    int a = 0;
    while (u >= c[a]) a++;
    return a;
}

/* Greedy action of the current Q (ties: lowest action). */
int br_rmax_greedy(const br_rmax_t *r, int32_t s);
#endif
