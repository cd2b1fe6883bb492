#include "rl/rfos.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/rng.h"
#include "base/timer.h"
#include "rl/rmax.h"

void br_rfos_config_default(br_rfos_config_t *c)
{
    memset(c, 0, sizeof *c);
    br_game_find("matching-pennies", &c->game);
    c->kind = BR_RFOS_HISTORY;
    c->history = 2;
    c->grid = 4;
    c->action_levels = 2;
    c->opp_epsilon = 0.1;
    c->opp_q0 = 0.5;
    c->opp_alpha = 0.75;
    c->gamma = 0.8;
    c->epsilon = 0.2;
    c->delta = 0.2;
    c->rmax = 1;
    c->m = -1;
    c->temperature = 0.25;
    c->vi_tol = 1e-6;
    c->vi_max_sweeps = 1000;
    c->episode_len = 10;
    c->seed = 1;
    c->max_steps = 20000000000LL;
    c->after_known = 1000000;
    c->eval_steps = 1000000;
    c->block = 10000;
    c->near_tol = 0.05;
    c->log_every = 0;
}

br_status br_rfos_check(const br_rfos_config_t *c, int64_t *S, int64_t *A, uint32_t *m)
{
    if (!c->game) return br_error(BR_EINVAL, "no inner game (known: %s)", br_game_names());
    double s;
    if (c->kind == BR_RFOS_HISTORY) {
        if (c->history < 1) return br_error(BR_EINVAL, "history h = %d must be >= 1", c->history);
        if (c->history > 15) return br_error(BR_ENOMEM, "history h = %d gives 4^%d meta-states: the table cannot be allocated", c->history, c->history);
        s = pow(4, c->history);
    } else {
        if (c->grid < 1 || c->grid > 4096) return br_error(BR_EINVAL, "grid K = %d must be in [1, 4096]", c->grid);
        s = (double)(c->grid + 1) * (c->grid + 1);
    }
    if (c->action_levels < 2 || c->action_levels > 64)
        return br_error(BR_EINVAL, "action levels %d must be in [2, 64]", c->action_levels);
    if (!(c->opp_epsilon >= 0 && c->opp_epsilon <= 1)) return br_error(BR_EINVAL, "opponent epsilon %g must be in [0, 1]", c->opp_epsilon);
    if (!(c->opp_alpha > 0 && c->opp_alpha <= 1)) return br_error(BR_EINVAL, "opponent learning rate %g must be in (0, 1]", c->opp_alpha);
    if (!(c->opp_q0 >= 0 && c->opp_q0 <= 1)) return br_error(BR_EINVAL, "opponent initial Q %g must be in [0, 1] (payoffs are rescaled to [0, 1])", c->opp_q0);
    if (c->episode_len < 1) return br_error(BR_EINVAL, "meta-episode length %d must be >= 1", c->episode_len);
    if (c->max_steps < 1) return br_error(BR_EINVAL, "max meta-steps must be >= 1");
    if (c->after_known < 0 || c->eval_steps < 0 || c->log_every < 0) return br_error(BR_EINVAL, "step counts must be >= 0");
    if (c->block < 1) return br_error(BR_EINVAL, "block %lld must be >= 1", (long long)c->block);
    if (!isfinite(c->temperature)) return br_error(BR_EINVAL, "temperature must be finite");
    if (!(c->rmax > 0)) return br_error(BR_EINVAL, "rmax %g must be > 0", c->rmax);
    if (c->m == 0) return br_error(BR_EINVAL, "the known threshold m must be >= 1 (0 would mark every pair known before any sample)");
    if (c->m > (int64_t)UINT32_MAX) return br_error(BR_EINVAL, "the known threshold m = %lld is too large", (long long)c->m);
    double bytes = br_rmax_bytes((int64_t)s, c->action_levels);
    double cap = c->max_bytes ? (double)c->max_bytes : 4.0 * (1ull << 30);
    if (bytes > cap)
        return br_error(BR_ENOMEM, "a meta-MDP of %.0f states x %d actions needs %.3g GiB of R-max tables (limit %.3g GiB): use a smaller history or grid",
                        s, c->action_levels, bytes / (1ull << 30), cap / (1ull << 30));
    uint32_t mm;
    if (c->m < 0) BR_TRY(br_rmax_threshold(&mm, (int64_t)s, c->epsilon, c->delta, c->gamma));
    else {
        if (!(c->gamma >= 0 && c->gamma < 1)) return br_error(BR_EINVAL, "gamma %g must be in [0, 1)", c->gamma);
        mm = (uint32_t)c->m;
    }
    *S = (int64_t)s;
    *A = c->action_levels;
    *m = mm;
    return BR_OK;
}

/* Payoffs rescaled to [0, 1] per player, indexed by joint action j = 2 a1 + a2. */
static void rescale(const br_game_t *g, double R[2][4])
{
    for (int p = 0; p < 2; p++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int j = 0; j < 4; j++) {
            lo = fmin(lo, g->payoff[p][j >> 1][j & 1]);
            hi = fmax(hi, g->payoff[p][j >> 1][j & 1]);
        }
        for (int j = 0; j < 4; j++) R[p][j] = hi > lo ? (g->payoff[p][j >> 1][j & 1] - lo) / (hi - lo) : 0;
    }
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* Everything the hot loop touches. */
typedef struct {
    int kind, A, L;
    int32_t mask;
    uint64_t x[4];           /* xoshiro256** state (same stream as base/rng.h) */
    int32_t s;
    double q[2];             /* opponent Q (history variant) */
    int lv[2];               /* opponent Q levels (qgrid variant) */
    double R1[4], R2[4];
    double alpha;
    uint32_t eps_thr;        /* 24-bit */
    uint32_t thr1[64];       /* 15-bit threshold of inner action 1 per meta-action */
    int32_t *nl;             /* (4, L) next level after joint action j */
    br_rmax_t *rm;
    int32_t *greedy;         /* (S) for evaluation */
    const uint8_t *bad;      /* (S) qgrid: 1 where the current policy is not epsilon-optimal */
    int64_t nbad;            /* learning meta-steps taken from such a state */
} sim_t;

/* Runs n meta-steps.  learn: R-max samples unknown pairs (calling `ev` after each pair that
 * becomes known); greedy: use sim->greedy instead of R-max's action choice.  Returns the sum
 * of meta-rewards.  kind and A2 are compile-time constants at every call site. */
static inline __attribute__((always_inline)) double
sim_steps(sim_t *sim, const int kind, const int A2, int64_t n, int learn, int greedy,
          int64_t *step_ctr, void (*ev)(void *, int64_t), void *ev_ctx)
{
    uint64_t x0 = sim->x[0], x1 = sim->x[1], x2 = sim->x[2], x3 = sim->x[3];
    int32_t s = sim->s;
    double q0 = sim->q[0], q1 = sim->q[1];
    int l0 = sim->lv[0], l1 = sim->lv[1];
    const int A = sim->A, L = sim->L;
    const int32_t mask = sim->mask;
    const double alpha = sim->alpha, beta = 1 - sim->alpha;
    const uint32_t eps_thr = sim->eps_thr;
    br_rmax_t *rm = sim->rm;
    const uint8_t *known = rm->known;
    const uint32_t *cdf = rm->cdf;
    const uint8_t *bad = sim->bad;
    int64_t nbad = 0;
    double acc = 0;
    int64_t base = *step_ctr;
    for (int64_t i = 0; i < n; i++) {
        uint64_t u = rotl(x1 * 5, 7) * 9, t = x1 << 17;
        x2 ^= x0;
        x3 ^= x1;
        x1 ^= x2;
        x0 ^= x3;
        x2 ^= t;
        x3 = rotl(x3, 45);
        uint32_t um = (uint32_t)(u & 0xFFFFFF);
        int a;
        if (greedy) a = sim->greedy[s];
        else if (A2) a = um >= cdf[(size_t)s * 2];
        else a = br_rmax_act(rm, s, um);
        int a1 = ((uint32_t)(u >> 49) & 0x7FFF) < sim->thr1[a];
        int explore = ((uint32_t)(u >> 24) & 0xFFFFFF) < eps_thr;
        int g = kind == BR_RFOS_HISTORY ? q1 > q0 : l1 > l0;
        int a2 = explore ? (int)((u >> 48) & 1) : g;
        int j = a1 * 2 + a2;
        double r1 = sim->R1[j];
        int32_t s2;
        if (kind == BR_RFOS_HISTORY) {
            double qa = a2 ? q1 : q0;
            qa = alpha * sim->R2[j] + beta * qa;
            q0 = a2 ? q0 : qa;
            q1 = a2 ? qa : q1;
            s2 = ((s << 2) | j) & mask;
        } else {
            int la = a2 ? l1 : l0;
            la = sim->nl[j * L + la];
            l0 = a2 ? l0 : la;
            l1 = a2 ? la : l1;
            s2 = l0 * L + l1;
        }
        acc += r1;
        if (kind == BR_RFOS_QGRID && learn) nbad += bad[s];
        size_t pair = (size_t)s * A + a;
        if (learn && !known[pair]) {
            if (br_rmax_observe(rm, pair, r1, s2)) {
                cdf = rm->cdf;
                if (ev) ev(ev_ctx, base + i + 1);
            }
        }
        s = s2;
    }
    *step_ctr = base + n;
    sim->nbad += nbad;
    sim->x[0] = x0;
    sim->x[1] = x1;
    sim->x[2] = x2;
    sim->x[3] = x3;
    sim->s = s;
    sim->q[0] = q0;
    sim->q[1] = q1;
    sim->lv[0] = l0;
    sim->lv[1] = l1;
    return acc;
}

static double run_n(sim_t *sim, int64_t n, int learn, int greedy, int64_t *ctr,
                    void (*ev)(void *, int64_t), void *ctx)
{
    /* Specialised copies: kind x (A == 2) x greedy. */
    if (greedy) {
        if (sim->kind == BR_RFOS_HISTORY) return sim_steps(sim, BR_RFOS_HISTORY, 0, n, 0, 1, ctr, NULL, NULL);
        return sim_steps(sim, BR_RFOS_QGRID, 0, n, 0, 1, ctr, NULL, NULL);
    }
    if (sim->kind == BR_RFOS_HISTORY) {
        if (sim->A == 2) return sim_steps(sim, BR_RFOS_HISTORY, 1, n, learn, 0, ctr, ev, ctx);
        return sim_steps(sim, BR_RFOS_HISTORY, 0, n, learn, 0, ctr, ev, ctx);
    }
    if (sim->A == 2) return sim_steps(sim, BR_RFOS_QGRID, 1, n, learn, 0, ctr, ev, ctx);
    return sim_steps(sim, BR_RFOS_QGRID, 0, n, learn, 0, ctr, ev, ctx);
}

/* ---- the exact qgrid meta-MDP ---- */
typedef struct {
    int64_t S, A;
    int L;
    double pa1[64];    /* P(a1 = 1 | meta-action) */
    double eps;
    const double *R1;
    const int32_t *nl;
} qmdp_t;

/* Expected reward and successor distribution of (s, a): up to 4 outcomes. */
static int qmdp_outcomes(const qmdp_t *q, int64_t s, int a, double *p, int32_t *nx, double *r)
{
    int L = q->L, l[2] = {(int)(s / L), (int)(s % L)};
    int g = l[1] > l[0];
    double pa2[2];
    pa2[g] = 1 - q->eps + q->eps / 2;
    pa2[1 - g] = q->eps / 2;
    int k = 0;
    *r = 0;
    for (int a1 = 0; a1 < 2; a1++)
        for (int a2 = 0; a2 < 2; a2++) {
            double pr = (a1 ? q->pa1[a] : 1 - q->pa1[a]) * pa2[a2];
            if (pr == 0) continue;
            int j = a1 * 2 + a2, ll[2] = {l[0], l[1]};
            ll[a2] = q->nl[j * L + ll[a2]];
            p[k] = pr;
            nx[k] = ll[0] * L + ll[1];
            *r += pr * q->R1[j];
            k++;
        }
    return k;
}

/* Marks the states reachable from s0 under any actions and outcomes; returns their count. */
static int64_t qmdp_reachable(const qmdp_t *q, int64_t s0, uint8_t *reach)
{
    int64_t *stack = malloc((size_t)q->S * sizeof *stack), top = 0, n = 0;
    if (!stack) return -1;
    memset(reach, 0, (size_t)q->S);
    reach[s0] = 1;
    stack[top++] = s0;
    while (top) {
        int64_t s = stack[--top];
        n++;
        for (int a = 0; a < q->A; a++) {
            double p[4], r;
            int32_t nx[4];
            int k = qmdp_outcomes(q, s, a, p, nx, &r);
            for (int i = 0; i < k; i++)
                if (!reach[nx[i]]) {
                    reach[nx[i]] = 1;
                    stack[top++] = nx[i];
                }
        }
    }
    free(stack);
    return n;
}

/* Value iteration (pol == NULL: optimal, filling pol_out) or policy evaluation (pol given). */
static void qmdp_solve(const qmdp_t *q, double gamma, const int32_t *pol, double *V, int32_t *pol_out)
{
    for (int64_t s = 0; s < q->S; s++) V[s] = 0;
    for (int it = 0; it < 100000; it++) {
        double delta = 0;
        for (int64_t s = 0; s < q->S; s++) {
            double best = -INFINITY;
            int besta = 0;
            for (int a = 0; a < q->A; a++) {
                if (pol && pol[s] != a) continue;
                double p[4], r;
                int32_t nx[4];
                int k = qmdp_outcomes(q, s, a, p, nx, &r);
                double v = r;
                for (int i = 0; i < k; i++) v += gamma * p[i] * V[nx[i]];
                if (v > best) {
                    best = v;
                    besta = a;
                }
            }
            delta = fmax(delta, fabs(best - V[s]));
            V[s] = best;
            if (pol_out) pol_out[s] = besta;
        }
        if (delta < 1e-12) break;
    }
}

/* Long-run mean reward of a policy from s0: Cesaro average of the chain's expected reward. */
static double qmdp_mean_reward(const qmdp_t *q, const int32_t *pol, int64_t s0, int T)
{
    double *x = calloc((size_t)q->S, sizeof *x), *y = calloc((size_t)q->S, sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        return NAN;
    }
    x[s0] = 1;
    double tot = 0;
    for (int t = 0; t < T; t++) {
        memset(y, 0, (size_t)q->S * sizeof *y);
        for (int64_t s = 0; s < q->S; s++) {
            if (x[s] == 0) continue;
            double p[4], r;
            int32_t nx[4];
            int k = qmdp_outcomes(q, s, pol[s], p, nx, &r);
            tot += x[s] * r;
            for (int i = 0; i < k; i++) y[nx[i]] += x[s] * p[i];
        }
        double *tmp = x;
        x = y;
        y = tmp;
    }
    free(x);
    free(y);
    return tot / T;
}

/* Exact discounted value of the policy R-max executes (its action distribution, cdf, as the
 * simulator samples it) in the true meta-MDP. */
static void qmdp_eval_cdf(const qmdp_t *q, double gamma, const uint32_t *cdf, double *V)
{
    const double unit = 1.0 / (double)(1u << 24);
    for (int64_t s = 0; s < q->S; s++) V[s] = 0;
    for (int it = 0; it < 100000; it++) {
        double delta = 0;
        for (int64_t s = 0; s < q->S; s++) {
            double v = 0;
            uint32_t lo = 0;
            for (int a = 0; a < q->A; a++) {
                uint32_t hi = cdf[s * q->A + a];
                double pa = (double)(hi - lo) * unit;
                lo = hi;
                if (pa == 0) continue;
                double p[4], rw;
                int32_t nx[4];
                int k = qmdp_outcomes(q, s, a, p, nx, &rw);
                double qa = rw;
                for (int i = 0; i < k; i++) qa += gamma * p[i] * V[nx[i]];
                v += pa * qa;
            }
            delta = fmax(delta, fabs(v - V[s]));
            V[s] = v;
        }
        if (delta < 1e-12) break;
    }
}

/* One run's state: the learner, the simulator, the exact meta-MDP where there is one, and the
 * per-block reward log.  Everything is released by run_free(). */
typedef struct {
    const br_rfos_config_t *c;
    int64_t S, A;
    br_rmax_t rm;
    sim_t sim;
    double R[2][4];
    qmdp_t qm;
    double *Vq;           /* (S) value of the exact meta-MDP (qgrid) */
    int32_t *polq;        /* (S) its optimal policy */
    int64_t reachable;    /* states reachable from s_start (S when unknown) */
    int32_t s_start;
    float *blocks;        /* mean reward of every full block, for samples_to_near_final */
    size_t nblocks, cap_blocks;
    /* The PAC count (qgrid): states where V^pi < V* - epsilon for R-max's current policy pi. */
    double *Vstar, *Vpi;  /* (S) */
    uint8_t *bad;         /* (S) */
    int64_t last_event;   /* meta-step at which the latest pair became known */
} run_t;

/* Marks the states where the policy R-max now executes is not epsilon-optimal in discounted
 * value.  The policy changes only when a pair becomes known, so this runs at most S*A + 1 times. */
static void run_mark_bad(run_t *r)
{
    qmdp_eval_cdf(&r->qm, r->c->gamma, r->rm.cdf, r->Vpi);
    for (int64_t s = 0; s < r->S; s++) r->bad[s] = r->Vpi[s] < r->Vstar[s] - r->c->epsilon;
}

/* Called by the simulator after each pair becomes known (R-max has replanned). */
static void on_known(void *p, int64_t step)
{
    run_t *r = p;
    r->last_event = step;
    if (r->bad) run_mark_bad(r);
}

static void run_free(run_t *r)
{
    free(r->blocks);
    free(r->Vstar);
    free(r->Vpi);
    free(r->bad);
    free(r->Vq);
    free(r->polq);
    free(r->sim.greedy);
    free(r->sim.nl);
    br_rmax_free(&r->rm);
}

/* The simulator of the inner game and the opponent, seeded from the config. */
static br_status run_setup(run_t *r)
{
    const br_rfos_config_t *c = r->c;
    sim_t *sim = &r->sim;
    sim->kind = c->kind;
    sim->A = (int)r->A;
    sim->rm = &r->rm;
    rescale(c->game, r->R);
    memcpy(sim->R1, r->R[0], sizeof sim->R1);
    memcpy(sim->R2, r->R[1], sizeof sim->R2);
    sim->alpha = c->opp_alpha;
    sim->eps_thr = (uint32_t)llround(c->opp_epsilon * (double)(1u << 24));
    for (int a = 0; a < r->A; a++) {
        r->qm.pa1[a] = (double)a / (double)(r->A - 1);
        sim->thr1[a] = (uint32_t)llround(r->qm.pa1[a] * 32768.0);
    }
    br_rng_t rng;
    br_rng_seed(&rng, c->seed);
    memcpy(sim->x, rng.s, sizeof sim->x);
    sim->q[0] = sim->q[1] = c->opp_q0;
    int L = c->grid + 1;
    sim->L = L;
    sim->mask = c->kind == BR_RFOS_HISTORY ? (int32_t)(r->S - 1) : 0;
    sim->greedy = malloc((size_t)r->S * sizeof *sim->greedy);
    if (c->kind == BR_RFOS_QGRID) {
        sim->nl = malloc(4 * (size_t)L * sizeof *sim->nl);
        if (sim->nl)
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < L; l++) {
                    double v = c->opp_alpha * r->R[1][j] + (1 - c->opp_alpha) * l / (double)c->grid;
                    sim->nl[j * L + l] = (int32_t)lround(v * c->grid);
                }
        sim->lv[0] = sim->lv[1] = (int)lround(c->opp_q0 * c->grid);
        sim->s = sim->lv[0] * L + sim->lv[1];
    }
    if (!sim->greedy || (c->kind == BR_RFOS_QGRID && !sim->nl)) return br_error(BR_ENOMEM, "R-FOS: out of memory");
    r->s_start = sim->s;
    r->qm.S = r->S;
    r->qm.A = r->A;
    r->qm.L = L;
    r->qm.eps = c->opp_epsilon;
    r->qm.R1 = r->R[0];
    r->qm.nl = sim->nl;
    return BR_OK;
}

/* The optimum where it is known: exact value iteration on the qgrid meta-MDP (and the states
 * where R-max's initial policy is not epsilon-optimal); an upper bound for matching pennies
 * otherwise. */
static br_status run_optimum(run_t *r, br_rfos_result_t *res)
{
    const br_rfos_config_t *c = r->c;
    res->optimal_mean_reward = NAN;
    res->optimal_value = res->policy_value = NAN;
    res->upper_bound_mean_reward = NAN;
    res->optimal_how = "not computable for this game and meta-state";
    r->reachable = r->S;
    if (c->kind == BR_RFOS_QGRID) {
        size_t S = (size_t)r->S;
        r->Vq = malloc(S * sizeof *r->Vq);
        r->polq = malloc(S * sizeof *r->polq);
        r->Vstar = malloc(S * sizeof *r->Vstar);
        r->Vpi = malloc(S * sizeof *r->Vpi);
        r->bad = malloc(S);
        uint8_t *reach = malloc(S);
        if (reach) r->reachable = qmdp_reachable(&r->qm, r->s_start, reach);
        free(reach);
        if (!r->Vq || !r->polq || !r->Vstar || !r->Vpi || !r->bad || !reach || r->reachable < 0)
            return br_error(BR_ENOMEM, "R-FOS: out of memory for the exact meta-MDP of %zu states", S);
        qmdp_solve(&r->qm, c->gamma, NULL, r->Vq, r->polq);
        memcpy(r->Vstar, r->Vq, S * sizeof *r->Vstar);
        run_mark_bad(r);
        r->sim.bad = r->bad;
        res->optimal_value = r->Vq[r->s_start];
        res->optimal_mean_reward = qmdp_mean_reward(&r->qm, r->polq, r->s_start, 20000);
        res->optimal_how = "exact: value iteration on the true (grid) meta-MDP; long-run mean reward of its optimal policy";
    } else {
        int mp = 1;
        for (int j = 0; j < 4; j++) mp &= r->R[0][j] == ((j >> 1) == (j & 1));
        if (mp) res->upper_bound_mean_reward = 1 - c->opp_epsilon / 2;
        res->optimal_how = "not computable: the last h joint actions are not a Markov state (the opponent's real state is its Q-table)";
    }
    return BR_OK;
}

static br_status log_block(run_t *r, float mean)
{
    if (r->nblocks == r->cap_blocks) {
        size_t nc = r->cap_blocks ? r->cap_blocks * 2 : 4096;
        float *nb = realloc(r->blocks, nc * sizeof *nb);
        if (!nb) return br_error(BR_ENOMEM, "R-FOS: out of memory for the reward log");
        r->blocks = nb;
        r->cap_blocks = nc;
    }
    r->blocks[r->nblocks++] = mean;
    return BR_OK;
}

/* The learning loop: blocks of meta-steps until max_steps, or after_known steps past the moment
 * every reachable (state, action) pair became known. */
static br_status run_learn(run_t *r, br_rfos_log_fn log, void *log_ctx,
                           void (*progress)(void *ctx, int64_t steps, int64_t known, int64_t pairs),
                           void *progress_ctx, br_rfos_result_t *res)
{
    const br_rfos_config_t *c = r->c;
    double rec_sum = 0;
    int64_t rec_from = 0, rec_known = 0, bad_at_known = -1;
    int64_t steps = 0, known_at = -1, near_at = -1, next_log = c->log_every ? c->log_every : c->block;
    double target = res->optimal_mean_reward - c->near_tol;
    double last_block = NAN, after_sum = 0, t_prog = br_now();
    int64_t after_n = 0;
    int64_t limit = c->max_steps;
    while (steps < limit) {
        int64_t n = c->block < limit - steps ? c->block : limit - steps;
        double rw = run_n(&r->sim, n, 1, 0, &steps, on_known, r);
        rec_sum += rw;
        last_block = rw / (double)n;
        if (known_at >= 0) {
            after_sum += rw;
            after_n += n;
        }
        if (near_at < 0 && !isnan(target) && n == c->block && last_block >= target) near_at = steps;
        if (n == c->block) BR_TRY(log_block(r, (float)last_block));
        if (known_at < 0 && (int64_t)r->rm.nknown == r->reachable * r->A) {
            known_at = r->last_event;
            bad_at_known = r->sim.nbad;
            int64_t end = steps + c->after_known;
            if (end < limit) limit = end;
        }
        int changed = (int64_t)r->rm.nknown != rec_known;
        if (log && (steps >= next_log || changed)) {
            br_rfos_log_t rec = {steps / c->episode_len, steps, (int64_t)r->rm.nknown,
                                 rec_sum / (double)(steps - rec_from), changed,
                                 r->bad ? r->sim.nbad : -1};
            log(log_ctx, &rec);
            rec_sum = 0;
            rec_from = steps;
            rec_known = (int64_t)r->rm.nknown;
            /* Fixed interval, or geometric (x1.25) so that log-axis plots are even. */
            while (next_log <= steps) next_log = c->log_every ? next_log + c->log_every : (int64_t)(next_log * 1.25) + 1;
        }
        double now = br_now();
        if (progress && now - t_prog > 0.5) {
            progress(progress_ctx, steps, (int64_t)r->rm.nknown, r->S * r->A);
            t_prog = now;
        }
    }
    if (log && steps > rec_from) {
        br_rfos_log_t rec = {steps / c->episode_len, steps, (int64_t)r->rm.nknown,
                             rec_sum / (double)(steps - rec_from), 0, r->bad ? r->sim.nbad : -1};
        log(log_ctx, &rec);
    }
    res->steps = steps;
    res->episodes = steps / c->episode_len;
    res->samples_to_all_known = known_at;
    res->samples_to_near_optimal = near_at;
    res->eps_bad_steps = r->bad ? r->sim.nbad : -1;
    res->eps_bad_after_known = r->bad && known_at >= 0 ? r->sim.nbad - bad_at_known : -1;
    res->eps_censored = r->bad && known_at < 0;
    res->final_mean_reward = after_n > 0 ? after_sum / (double)after_n : last_block;
    res->samples_to_near_final = -1;
    for (size_t b = 0; b < r->nblocks; b++)
        if (r->blocks[b] >= res->final_mean_reward - c->near_tol) {
            res->samples_to_near_final = (int64_t)(b + 1) * c->block;
            break;
        }
    return BR_OK;
}

/* The learned greedy policy: its mean reward in simulation and its exact value (qgrid). */
static void run_evaluate(run_t *r, br_rfos_result_t *res)
{
    const br_rfos_config_t *c = r->c;
    for (int32_t s = 0; s < r->S; s++) r->sim.greedy[s] = br_rmax_greedy(&r->rm, s);
    res->greedy_mean_reward = NAN;
    if (c->eval_steps > 0) {
        int64_t ctr = 0;
        res->greedy_mean_reward = run_n(&r->sim, c->eval_steps, 0, 1, &ctr, NULL, NULL) / (double)c->eval_steps;
    }
    res->model_value = r->rm.V[r->s_start];
    if (c->kind == BR_RFOS_QGRID && r->Vq) {
        qmdp_solve(&r->qm, c->gamma, r->sim.greedy, r->Vq, NULL);
        res->policy_value = r->Vq[r->s_start];
    }
}

br_status br_rfos_run(const br_rfos_config_t *c, br_rfos_log_fn log, void *log_ctx,
                      void (*progress)(void *ctx, int64_t steps, int64_t known, int64_t pairs),
                      void *progress_ctx, br_rfos_result_t *res)
{
    memset(res, 0, sizeof *res);
    run_t r;
    memset(&r, 0, sizeof r);
    r.c = c;
    uint32_t m;
    BR_TRY(br_rfos_check(c, &r.S, &r.A, &m));
    double t_start = br_now();
    struct timespec cpu0, cpu1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
    br_rmax_config_t rc = {(int32_t)r.S, (int32_t)r.A, m, c->gamma, c->rmax, c->temperature,
                           c->vi_tol, c->vi_max_sweeps, c->max_bytes};
    BR_TRY(br_rmax_init(&r.rm, &rc));
    br_status s = run_setup(&r);
    if (!s) {
        s = run_optimum(&r, res);
        if (!s) s = run_learn(&r, log, log_ctx, progress, progress_ctx, res);
    }
    if (s) {
        run_free(&r);
        return s;
    }
    res->train_s = br_now() - t_start;
    run_evaluate(&r, res);
    res->S = r.S;
    res->A = r.A;
    res->pairs = r.S * r.A;
    res->reachable_pairs = r.reachable * r.A;
    res->m = m;
    res->vi_runs = r.rm.vi_runs;
    res->vi_sweeps = r.rm.vi_sweeps;
    res->wall_s = br_now() - t_start;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
    res->cpu_s = (double)(cpu1.tv_sec - cpu0.tv_sec) + 1e-9 * (double)(cpu1.tv_nsec - cpu0.tv_nsec);
    res->meta_steps_per_s = (double)(res->steps + c->eval_steps) / res->wall_s;
    res->meta_steps_per_cpu_s = (double)(res->steps + c->eval_steps) / res->cpu_s;
    run_free(&r);
    return BR_OK;
}

/* Mean reward of a fixed policy (bits of `pol`) from the simulator's state `s0`. */
static double brute_eval(run_t *r, const sim_t *s0, uint64_t pol, int64_t burn, int64_t n)
{
    r->sim = *s0;
    for (int64_t s = 0; s < r->S; s++) r->sim.greedy[s] = (int32_t)((pol >> s) & 1);
    int64_t ctr = 0;
    run_n(&r->sim, burn, 0, 1, &ctr, NULL, NULL);
    return run_n(&r->sim, n, 0, 1, &ctr, NULL, NULL) / (double)n;
}

br_status br_rfos_brute_check(const br_rfos_config_t *c, int64_t steps)
{
    if (c->kind != BR_RFOS_HISTORY || c->history > 2 || c->action_levels != 2)
        return br_error(BR_EINVAL, "brute force needs the history meta-state with h <= 2 and pure actions "
                        "(2^(4^h) policies; h = 3 would be 2^64)");
    if (steps < 640) return br_error(BR_EINVAL, "brute force needs at least 640 meta-steps per policy (got %lld)", (long long)steps);
    return BR_OK;
}

br_status br_rfos_brute_force(const br_rfos_config_t *c, int64_t steps, br_rfos_brute_t *out)
{
    memset(out, 0, sizeof *out);
    BR_TRY(br_rfos_brute_check(c, steps));
    run_t r;
    memset(&r, 0, sizeof r);
    r.c = c;
    uint32_t m;
    BR_TRY(br_rfos_check(c, &r.S, &r.A, &m));
    br_status st = run_setup(&r);
    if (st) {
        run_free(&r);
        return st;
    }
    /* Successive quartering: every policy for n0 meta-steps, then the best quarter for 4x as
     * many, ... down to 16; each round on a fresh common random stream (all policies of a round
     * see the same draws, so their differences are measured with less noise). */
    enum { BATCHES = 10 };
    uint64_t npol = 1ull << r.S, nlive = npol;
    uint64_t *live = malloc(npol * sizeof *live);
    double *val = malloc(npol * sizeof *val);
    if (!live || !val) {
        free(live);
        free(val);
        run_free(&r);
        return br_error(BR_ENOMEM, "brute force: out of memory for %llu policies", (unsigned long long)npol);
    }
    for (uint64_t p = 0; p < npol; p++) live[p] = p;
    int rounds = 0;
    for (uint64_t k = npol; k > 1; k = k / 4 ? k / 4 : 1) rounds++;
    int64_t n = steps;
    for (int k = 0; k < rounds; k++) n /= 4;
    if (n < 2000) n = 2000;
    sim_t s0 = r.sim;
    br_rng_t rng;
    for (int round = 0; nlive > 1; round++, n *= 4) {
        br_rng_seed(&rng, c->seed + 0x5eedb7u * (uint64_t)(round + 1));
        memcpy(s0.x, rng.s, sizeof s0.x);
        for (uint64_t i = 0; i < nlive; i++) val[i] = brute_eval(&r, &s0, live[i], 1000, n);
        uint64_t keep = nlive / 4 ? nlive / 4 : 1;
        /* Partial selection sort: the best `keep` to the front. */
        for (uint64_t i = 0; i < keep; i++) {
            uint64_t b = i;
            for (uint64_t k = i + 1; k < nlive; k++)
                if (val[k] > val[b]) b = k;
            double tv = val[i];
            uint64_t tp = live[i];
            val[i] = val[b], live[i] = live[b];
            val[b] = tv, live[b] = tp;
        }
        nlive = keep;
    }
    /* The winner on an independent stream, in batches for a standard error. */
    br_rng_seed(&rng, c->seed ^ 0xb0a7u);
    memcpy(s0.x, rng.s, sizeof s0.x);
    out->best_policy = live[0];
    double b[BATCHES], mean = 0, var = 0;
    r.sim = s0;
    for (int64_t s = 0; s < r.S; s++) r.sim.greedy[s] = (int32_t)((live[0] >> s) & 1);
    int64_t ctr = 0;
    run_n(&r.sim, 1000, 0, 1, &ctr, NULL, NULL);
    for (int k = 0; k < BATCHES; k++) {
        b[k] = run_n(&r.sim, steps / BATCHES, 0, 1, &ctr, NULL, NULL) / (double)(steps / BATCHES);
        mean += b[k] / BATCHES;
    }
    for (int k = 0; k < BATCHES; k++) var += (b[k] - mean) * (b[k] - mean) / (BATCHES - 1);
    out->best_mean_reward = mean;
    out->best_stderr = sqrt(var / BATCHES);
    free(live);
    free(val);
    out->policies = (int64_t)npol;
    run_free(&r);
    return BR_OK;
}
