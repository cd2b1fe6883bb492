/* Matrix games, exact memory-1 values against rollouts, exact gradients and mixed second
 * derivatives against finite differences, the LOLA step, and the Q-learner's updates. */
#include <math.h>
#include <stdlib.h>

#include "base/rng.h"
#include "harness.h"
#include "rl/games.h"
#include "rl/learners.h"

static double sig(double x) { return 1 / (1 + exp(-x)); }

/* Expected discounted per-step value by propagating the state distribution T steps. */
static void propagate(double v[2], const br_game_t *g, const double *t0, const double *t1,
                      double gamma, int T)
{
    static const int swap[4] = {0, 2, 1, 3};
    double x[4], y[4], disc = 1;
    for (int s = 0; s < 4; s++) {
        double p0 = sig(t0[0]), p1 = sig(t1[0]);
        x[s] = ((s >> 1) ? 1 - p0 : p0) * ((s & 1) ? 1 - p1 : p1);
    }
    v[0] = v[1] = 0;
    for (int t = 0; t < T; t++) {
        for (int s = 0; s < 4; s++)
            for (int p = 0; p < 2; p++) v[p] += (1 - gamma) * disc * x[s] * g->payoff[p][s >> 1][s & 1];
        for (int j = 0; j < 4; j++) y[j] = 0;
        for (int s = 0; s < 4; s++) {
            double p0 = sig(t0[1 + s]), p1 = sig(t1[1 + swap[s]]);
            for (int j = 0; j < 4; j++)
                y[j] += x[s] * ((j >> 1) ? 1 - p0 : p0) * ((j & 1) ? 1 - p1 : p1);
        }
        for (int j = 0; j < 4; j++) x[j] = y[j];
        disc *= gamma;
    }
}

int main(void)
{
    const br_game_t *g, *mp;
    CHECK_OK(br_game_find("ipd", &g));
    CHECK_OK(br_game_find("matching-pennies", &mp));
    CHECK_OK(br_game_find("pd", &g)); /* alias */
    CHECK_STATUS(br_game_find("tic-tac-toe", &g), BR_ENOTFOUND);
    CHECK(strstr(br_errmsg(), "unknown game 'tic-tac-toe'") && strstr(br_errmsg(), "stag-hunt"));
    CHECK_OK(br_game_find("ipd", &g));
    CHECK_NEAR(g->payoff[0][0][0], -1, 0);
    CHECK_NEAR(g->payoff[0][0][1], -3, 0);
    CHECK_NEAR(g->payoff[0][1][0], 0, 0);
    CHECK_NEAR(g->payoff[1][0][1], 0, 0); /* the defecting column player gets 0 */

    br_rng_t rng;
    br_rng_seed(&rng, 7);
    double t0[5], t1[5], v[2], w[2];
    for (int i = 0; i < 5; i++) {
        t0[i] = 2 * br_rng_normal(&rng);
        t1[i] = 2 * br_rng_normal(&rng);
    }
    /* Always-cooperate pair: -1 per step; always-defect: -2; TFT vs always-defect: the
     * cooperator is exploited once (-3 (1-g)) then -2 forever. */
    double C[5] = {30, 30, 30, 30, 30}, D[5] = {-30, -30, -30, -30, -30};
    double TFT[5] = {30, 30, -30, 30, -30}; /* cooperate after the other cooperated */
    CHECK_OK(br_iterated_values(v, g, C, C, 0.96));
    CHECK_NEAR(v[0], -1, 1e-9);
    CHECK_OK(br_iterated_values(v, g, D, D, 0.96));
    CHECK_NEAR(v[1], -2, 1e-9);
    CHECK_OK(br_iterated_values(v, g, TFT, D, 0.96));
    CHECK_NEAR(v[0], -3 * 0.04 - 2 * 0.96, 1e-9);
    CHECK_NEAR(v[1], 0 * 0.04 - 2 * 0.96, 1e-9);
    CHECK_STATUS(br_iterated_values(v, g, C, C, 1.0), BR_EINVAL);

    /* Exact solve vs the distribution rolled forward 3000 steps. */
    for (int game = 0; game < 2; game++) {
        const br_game_t *gg = game ? mp : g;
        CHECK_OK(br_iterated_values(v, gg, t0, t1, 0.96));
        propagate(w, gg, t0, t1, 0.96, 3000);
        CHECK_NEAR(v[0], w[0], 1e-10);
        CHECK_NEAR(v[1], w[1], 1e-10);
    }
    /* ... and vs sampled play: (1-g) sum g^t r_t = E[r_T] with T ~ Geometric(1-g). */
    {
        static const int swap[4] = {0, 2, 1, 3};
        double tot[2] = {0, 0}, sq = 0;
        const int N = 200000;
        CHECK_OK(br_iterated_values(v, g, t0, t1, 0.96));
        for (int n = 0; n < N; n++) {
            int a0 = br_rng_double(&rng) >= sig(t0[0]), a1 = br_rng_double(&rng) >= sig(t1[0]);
            while (br_rng_double(&rng) < 0.96) {
                int s = 2 * a0 + a1;
                a0 = br_rng_double(&rng) >= sig(t0[1 + s]);
                a1 = br_rng_double(&rng) >= sig(t1[1 + swap[s]]);
            }
            double r = g->payoff[0][a0][a1];
            tot[0] += r;
            tot[1] += g->payoff[1][a0][a1];
            sq += r * r;
        }
        double mean = tot[0] / N, se = sqrt((sq / N - mean * mean) / N);
        CHECK_NEAR(mean, v[0], 5 * se);
        CHECK_NEAR(tot[1] / N, v[1], 5 * se + 0.01);
    }

    /* Gradients and mixed second derivatives vs central differences. */
    for (int p = 0; p < 2; p++) {
        double d0[5], d1[5], h[25];
        br_iterated_grad(d0, d1, g, p, t0, t1, 0.96);
        br_iterated_mixed_hessian(h, g, p, t0, t1, 0.96);
        const double e = 1e-5;
        for (int i = 0; i < 5; i++) {
            double a[5], b[5], vp[2], vm[2];
            memcpy(a, t0, sizeof a);
            a[i] += e;
            br_iterated_values(vp, g, a, t1, 0.96);
            a[i] -= 2 * e;
            br_iterated_values(vm, g, a, t1, 0.96);
            CHECK_NEAR(d0[i], (vp[p] - vm[p]) / (2 * e), 1e-7);
            memcpy(b, t1, sizeof b);
            b[i] += e;
            br_iterated_values(vp, g, t0, b, 0.96);
            b[i] -= 2 * e;
            br_iterated_values(vm, g, t0, b, 0.96);
            CHECK_NEAR(d1[i], (vp[p] - vm[p]) / (2 * e), 1e-7);
            /* d/dth0[i] of dV/dth1 */
            double gp[5], gm[5];
            memcpy(a, t0, sizeof a);
            a[i] += e;
            br_iterated_grad(NULL, gp, g, p, a, t1, 0.96);
            a[i] -= 2 * e;
            br_iterated_grad(NULL, gm, g, p, a, t1, 0.96);
            for (int j = 0; j < 5; j++) CHECK_NEAR(h[i * 5 + j], (gp[j] - gm[j]) / (2 * e), 1e-6);
        }
    }

    /* The fast adjoint gradient equals the hyper-dual one, for every (p, q), in two games. */
    for (int game = 0; game < 2; game++) {
        const br_game_t *gg = game ? mp : g;
        for (int p = 0; p < 2; p++) {
            double d0[5], d1[5], f[5], fv[2];
            br_iterated_grad(d0, d1, gg, p, t0, t1, 0.96);
            br_iterated_value_grad(fv, f, gg, p, 0, t0, t1, 0.96);
            for (int i = 0; i < 5; i++) CHECK_NEAR(f[i], d0[i], 1e-12);
            br_iterated_value_grad(NULL, f, gg, p, 1, t0, t1, 0.96);
            for (int i = 0; i < 5; i++) CHECK_NEAR(f[i], d1[i], 1e-12);
            br_iterated_values(v, gg, t0, t1, 0.96);
            CHECK_NEAR(fv[0], v[0], 1e-12);
            CHECK_NEAR(fv[1], v[1], 1e-12);
        }
    }

    /* Naive step = lr * own gradient; LOLA adds lr * lr_other * (dV_me/dth_other)^T H_other. */
    {
        double a[5], b[5], d1[5], dd[5], h[25];
        memcpy(a, t1, sizeof a);
        br_m1_learner_step(BR_LEARNER_NAIVE, a, t0, 1, g, 0.96, 0.5, 0);
        br_iterated_grad(NULL, d1, g, 1, t0, t1, 0.96);
        for (int i = 0; i < 5; i++) CHECK_NEAR(a[i], t1[i] + 0.5 * d1[i], 1e-12);
        memcpy(b, t0, sizeof b);
        br_m1_learner_step(BR_LEARNER_LOLA, b, t1, 0, g, 0.96, 0.5, 2.0);
        double d0[5];
        br_iterated_grad(d0, dd, g, 0, t0, t1, 0.96);
        br_iterated_mixed_hessian(h, g, 1, t0, t1, 0.96);
        for (int i = 0; i < 5; i++) {
            double corr = 0;
            for (int j = 0; j < 5; j++) corr += h[i * 5 + j] * dd[j];
            CHECK_NEAR(b[i], t0[i] + 0.5 * (d0[i] + 2.0 * corr), 1e-12);
        }
        /* Player 1's LOLA correction against finite differences of the exact gradient:
         * corr_i = sum_j dV1/dth0_j * d/dth1_i (dV0/dth0_j). */
        memcpy(a, t1, sizeof a);
        br_m1_learner_step(BR_LEARNER_LOLA, a, t0, 1, g, 0.96, 0.5, 2.0);
        double c0[5];
        br_iterated_grad(c0, NULL, g, 1, t0, t1, 0.96);
        for (int i = 0; i < 5; i++) {
            double bp[5], gp[5], gm[5], e = 1e-5, corr = 0;
            memcpy(bp, t1, sizeof bp);
            bp[i] += e;
            br_iterated_grad(gp, NULL, g, 0, t0, bp, 0.96);
            bp[i] -= 2 * e;
            br_iterated_grad(gm, NULL, g, 0, t0, bp, 0.96);
            for (int j = 0; j < 5; j++) corr += c0[j] * (gp[j] - gm[j]) / (2 * e);
            CHECK_NEAR(a[i], t1[i] + 0.5 * (d1[i] + 2.0 * corr), 1e-6);
        }
    }
    br_learner_kind k;
    CHECK_OK(br_learner_parse("lola", &k));
    CHECK_STATUS(br_learner_parse("sgd", &k), BR_EINVAL);

    /* Q-learner: hand-computed updates Q[a] <- 0.75 r + 0.25 Q[a] from 0.5. */
    br_qlearner_t q;
    br_qlearner_init(&q, 0.5, 0.1, 0.75);
    CHECK_INT(br_qlearner_act(&q, 0.5, 0.9), 0); /* tie -> action 0 */
    br_qlearner_update(&q, 0, 1.0);
    CHECK_NEAR(q.q[0], 0.875, 1e-15);
    CHECK_INT(br_qlearner_act(&q, 0.5, 0.9), 0);
    br_qlearner_update(&q, 0, 0.0);
    CHECK_NEAR(q.q[0], 0.21875, 1e-15);
    CHECK_INT(br_qlearner_act(&q, 0.5, 0.9), 1); /* greedy: 0.5 > 0.21875 */
    CHECK_INT(br_qlearner_act(&q, 0.05, 0.2), 0); /* explores, uniform action 0 */
    CHECK_INT(br_qlearner_act(&q, 0.05, 0.7), 1);
    br_qlearner_update(&q, 1, 0.0);
    CHECK_NEAR(q.q[1], 0.125, 1e-15);
    CHECK_NEAR(q.q[0], 0.21875, 1e-15);
    return th_exit();
}
