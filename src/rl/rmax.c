#include "rl/rmax.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

br_status br_rmax_threshold(uint32_t *m, int64_t S, double epsilon, double delta, double gamma)
{
    if (S < 1) return br_error(BR_EINVAL, "R-max: the meta-MDP needs at least one state");
    if (!(epsilon > 0)) return br_error(BR_EINVAL, "R-max: epsilon %g must be > 0", epsilon);
    if (!(delta > 0 && delta < 1)) return br_error(BR_EINVAL, "R-max: delta %g must be in (0, 1)", delta);
    if (!(gamma >= 0 && gamma < 1)) return br_error(BR_EINVAL, "R-max: gamma %g must be in [0, 1)", gamma);
    double e = epsilon * (1 - gamma);
    double v = floor((double)S * log(1 / delta) / (e * e));
    if (v < 1) return br_error(BR_EINVAL, "R-max: the known threshold m = floor(%g) is 0; use a smaller epsilon or delta", v);
    if (v > 4e9) return br_error(BR_ERANGE, "R-max: the known threshold m = %.3g is too large", v);
    *m = (uint32_t)v;
    return BR_OK;
}

double br_rmax_bytes(int64_t S, int64_t A)
{
    double P = (double)S * (double)A;
    return P * (double)S * 4 + P * (4 + 8 + 1 + 4 + 4 + 8 + 8 + 4) + (double)S * 8;
}

void br_rmax_free(br_rmax_t *r)
{
    if (!r) return;
    free(r->n);
    free(r->rsum);
    free(r->nsas);
    free(r->known);
    free(r->off);
    free(r->len);
    free(r->succ);
    free(r->prob);
    free(r->rhat);
    free(r->Q);
    free(r->V);
    free(r->cdf);
    memset(r, 0, sizeof *r);
}

br_status br_rmax_init(br_rmax_t *r, const br_rmax_config_t *c)
{
    memset(r, 0, sizeof *r);
    if (c->S < 1 || c->A < 1) return br_error(BR_EINVAL, "R-max: need S >= 1 and A >= 1 (got %d, %d)", c->S, c->A);
    if (c->m == 0) return br_error(BR_EINVAL, "R-max: the known threshold m must be >= 1");
    if (!(c->gamma >= 0 && c->gamma < 1)) return br_error(BR_EINVAL, "R-max: gamma %g must be in [0, 1)", c->gamma);
    if (!(c->rmax > 0)) return br_error(BR_EINVAL, "R-max: rmax %g must be > 0", c->rmax);
    size_t S = (size_t)c->S, A = (size_t)c->A, P = S * A;
    double bytes = br_rmax_bytes(c->S, c->A);
    double cap = c->max_bytes ? (double)c->max_bytes : 4.0 * (1ull << 30);
    if (bytes > cap)
        return br_error(BR_ENOMEM, "R-max: a table of %zu states x %zu actions needs %.3g GiB "
                        "(limit %.3g GiB); use a smaller history or grid", S, A,
                        bytes / (1ull << 30), cap / (1ull << 30));
    r->S = c->S;
    r->A = c->A;
    r->m = c->m;
    r->gamma = c->gamma;
    r->rmax = c->rmax;
    r->vmax = c->rmax / (1 - c->gamma);
    r->temperature = c->temperature;
    r->vi_tol = c->vi_tol > 0 ? c->vi_tol : 1e-6;
    r->vi_max_sweeps = c->vi_max_sweeps > 0 ? c->vi_max_sweeps : 1000;
    r->n = calloc(P, sizeof *r->n);
    r->rsum = calloc(P, sizeof *r->rsum);
    r->nsas = calloc(P * S, sizeof *r->nsas);
    r->known = calloc(P, 1);
    r->off = calloc(P, sizeof *r->off);
    r->len = calloc(P, sizeof *r->len);
    r->rhat = calloc(P, sizeof *r->rhat);
    r->Q = malloc(P * sizeof *r->Q);
    r->V = malloc(S * sizeof *r->V);
    r->cdf = malloc(P * sizeof *r->cdf);
    r->cap = P < 1024 ? 1024 : P;
    r->succ = malloc(r->cap * sizeof *r->succ);
    r->prob = malloc(r->cap * sizeof *r->prob);
    if (!r->n || !r->rsum || !r->nsas || !r->known || !r->off || !r->len || !r->rhat || !r->Q ||
        !r->V || !r->cdf || !r->succ || !r->prob) {
        br_rmax_free(r);
        return br_error(BR_ENOMEM, "R-max: out of memory for %zu states x %zu actions", S, A);
    }
    for (size_t i = 0; i < S; i++) r->V[i] = r->vmax;
    br_rmax_plan(r);
    return BR_OK;
}

static void build_policy(br_rmax_t *r)
{
    size_t A = (size_t)r->A;
    for (size_t s = 0; s < (size_t)r->S; s++) {
        const double *q = r->Q + s * A;
        uint32_t *c = r->cdf + s * A;
        if (r->temperature <= 0) {
            size_t best = 0;
            for (size_t a = 1; a < A; a++)
                if (q[a] > q[best]) best = a;
            for (size_t a = 0; a < A; a++) c[a] = a < best ? 0 : 1u << 24;
            continue;
        }
        double mx = q[0];
        for (size_t a = 1; a < A; a++) mx = fmax(mx, q[a]);
        double w[64], tot = 0;
        double *ww = A <= 64 ? w : NULL;
        for (size_t a = 0; a < A; a++) {
            double e = exp((q[a] - mx) / r->temperature);
            if (ww) ww[a] = e;
            tot += e;
        }
        double acc = 0;
        for (size_t a = 0; a < A; a++) {
            acc += (ww ? ww[a] : exp((q[a] - mx) / r->temperature)) / tot;
            double t = floor(acc * (double)(1u << 24) + 0.5);
            c[a] = a + 1 == A ? 1u << 24 : (uint32_t)fmin(t, (double)(1u << 24));
        }
    }
}

void br_rmax_plan(br_rmax_t *r)
{
    size_t S = (size_t)r->S, A = (size_t)r->A;
    double g = r->gamma;
    int sweep;
    for (sweep = 0; sweep < r->vi_max_sweeps; sweep++) {
        double delta = 0;
        for (size_t s = 0; s < S; s++) {
            double best = -INFINITY;
            for (size_t a = 0; a < A; a++) {
                size_t p = s * A + a;
                double q = r->vmax;
                if (r->known[p]) {
                    double acc = 0;
                    for (uint32_t k = r->off[p], e = r->off[p] + r->len[p]; k < e; k++)
                        acc += r->prob[k] * r->V[r->succ[k]];
                    q = r->rhat[p] + g * acc;
                }
                r->Q[p] = q;
                if (q > best) best = q;
            }
            double d = fabs(best - r->V[s]);
            if (d > delta) delta = d;
            r->V[s] = best; /* Gauss-Seidel: converges at least as fast as Jacobi */
        }
        if (delta < r->vi_tol) {
            sweep++;
            break;
        }
    }
    r->vi_runs++;
    r->vi_sweeps += sweep;
    build_policy(r);
}

void br_rmax_make_known(br_rmax_t *r, size_t p)
{
    size_t S = (size_t)r->S;
    /* Freeze the empirical model of this pair into the sparse rows. */
    const uint32_t *row = r->nsas + p * S;
    size_t nz = 0;
    for (size_t s = 0; s < S; s++) nz += row[s] != 0;
    if (r->nnz + nz > r->cap) {
        size_t cap = r->cap * 2 > r->nnz + nz ? r->cap * 2 : r->nnz + nz;
        int32_t *succ = realloc(r->succ, cap * sizeof *succ);
        if (succ) r->succ = succ;
        double *prob = realloc(r->prob, cap * sizeof *prob);
        if (prob) r->prob = prob;
        /* The sizes were checked at init (nnz <= S*A*S); failing here is an OOM invariant. */
        BR_ASSERT(succ && prob);
        r->cap = cap;
    }
    r->off[p] = (uint32_t)r->nnz;
    for (size_t s = 0; s < S; s++)
        if (row[s]) {
            r->succ[r->nnz] = (int32_t)s;
            r->prob[r->nnz] = (double)row[s] / r->m;
            r->nnz++;
        }
    r->len[p] = (uint32_t)nz;
    r->rhat[p] = r->rsum[p] / r->m;
    r->known[p] = 1;
    r->nknown++;
    br_rmax_plan(r);
}

int br_rmax_greedy(const br_rmax_t *r, int32_t s)
{
    const double *q = r->Q + (size_t)s * r->A;
    int best = 0;
    for (int a = 1; a < r->A; a++)
        if (q[a] > q[best]) best = a;
    return best;
}
