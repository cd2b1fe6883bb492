/* R-max: the known threshold formula, known-set bookkeeping, the frozen empirical model, value
 * iteration on a tiny hand-solved MDP, the Boltzmann thresholds, and bad input. */
#include <math.h>
#include <stdlib.h>

#include "harness.h"
#include "rl/rmax.h"

static br_rmax_t make(int S, int A, uint32_t m, double gamma, double temp)
{
    br_rmax_t r;
    br_rmax_config_t c = {S, A, m, gamma, 1.0, temp, 1e-12, 10000, 0};
    CHECK_OK(br_rmax_init(&r, &c));
    return r;
}

int main(void)
{
    /* m = floor(|S| ln(1/delta) / (epsilon (1 - gamma))^2) with the paper's values. */
    uint32_t m;
    const long want[] = {4023, 16094, 64377, 257510};
    for (int h = 1; h <= 4; h++) {
        CHECK_OK(br_rmax_threshold(&m, (int64_t)pow(4, h), 0.2, 0.2, 0.8));
        CHECK_INT(m, want[h - 1]);
    }
    CHECK_STATUS(br_rmax_threshold(&m, 16, 0.2, 1.5, 0.8), BR_EINVAL);
    CHECK_STATUS(br_rmax_threshold(&m, 16, 0, 0.2, 0.8), BR_EINVAL);
    CHECK_STATUS(br_rmax_threshold(&m, 1, 100, 0.9, 0.0), BR_EINVAL); /* m would be 0 */

    /* Tiny MDP, gamma 0.5, rmax 1 (vmax 2), m = 2:
     *   s0: a0 -> reward 0, to s1;  a1 -> reward 0.5, stay in s0
     *   s1: a0 -> reward 1, to s0;  a1 -> reward 0, stay in s1
     * By hand: V0 = 0.5 + 0.5 V0 = 1 (a1), V1 = 1 + 0.5 V0 = 1.5 (a0);
     * Q(0,0) = 0.5 V1 = 0.75, Q(0,1) = 1, Q(1,0) = 1.5, Q(1,1) = 0.5 V1 = 0.75. */
    br_rmax_t r = make(2, 2, 2, 0.5, 0);
    CHECK_NEAR(r.vmax, 2.0, 1e-15);
    for (int p = 0; p < 4; p++) CHECK_NEAR(r.Q[p], 2.0, 1e-12);
    CHECK_INT(br_rmax_observe(&r, 0, 0.0, 1), 0);
    CHECK_INT(r.known[0], 0);
    CHECK_INT(r.nknown, 0);
    CHECK_INT(br_rmax_observe(&r, 0, 0.0, 1), 1);
    CHECK_INT(r.known[0], 1);
    CHECK_INT(r.nknown, 1);
    /* Known (0,0) leads to unknown s1, still worth vmax: Q = 0 + 0.5 * 2. */
    CHECK_NEAR(r.Q[0], 1.0, 1e-9);
    CHECK_NEAR(r.Q[1], 2.0, 1e-12);
    CHECK_INT(br_rmax_greedy(&r, 0), 1);
    CHECK_INT(br_rmax_act(&r, 0, 0), 1);          /* greedy thresholds: always action 1 */
    CHECK_INT(br_rmax_act(&r, 0, (1u << 24) - 1), 1);
    br_rmax_observe(&r, 1, 0.5, 0);
    br_rmax_observe(&r, 1, 0.5, 0);
    br_rmax_observe(&r, 2, 1.0, 0);
    br_rmax_observe(&r, 2, 1.0, 0);
    CHECK_INT(r.nknown, 3);
    br_rmax_observe(&r, 3, 0.0, 1);
    CHECK_INT(br_rmax_observe(&r, 3, 0.0, 1), 1);
    CHECK_INT(r.nknown, 4);
    CHECK_NEAR(r.V[0], 1.0, 1e-9);
    CHECK_NEAR(r.V[1], 1.5, 1e-9);
    CHECK_NEAR(r.Q[0], 0.75, 1e-9);
    CHECK_NEAR(r.Q[1], 1.0, 1e-9);
    CHECK_NEAR(r.Q[2], 1.5, 1e-9);
    CHECK_NEAR(r.Q[3], 0.75, 1e-9);
    CHECK_INT(br_rmax_greedy(&r, 0), 1);
    CHECK_INT(br_rmax_greedy(&r, 1), 0);
    br_rmax_free(&r);

    /* Stochastic pair: 4 samples (m = 4) to s0, s0, s1, s0 with rewards 1, 0, 1, 1. */
    r = make(2, 1, 4, 0.9, 0);
    br_rmax_observe(&r, 0, 1, 0);
    br_rmax_observe(&r, 0, 0, 0);
    br_rmax_observe(&r, 0, 1, 1);
    CHECK_INT(r.known[0], 0);
    br_rmax_observe(&r, 0, 1, 0);
    CHECK_INT(r.known[0], 1);
    CHECK_INT(r.len[0], 2);
    CHECK_NEAR(r.rhat[0], 0.75, 1e-15);
    CHECK_INT(r.succ[r.off[0]], 0);
    CHECK_NEAR(r.prob[r.off[0]], 0.75, 1e-15);
    CHECK_INT(r.succ[r.off[0] + 1], 1);
    CHECK_NEAR(r.prob[r.off[0] + 1], 0.25, 1e-15);
    /* s1 unknown (vmax 10): V0 = 0.75 + 0.9 (0.75 V0 + 0.25 * 10) -> V0 = 3 / 0.325. */
    CHECK_NEAR(r.V[0], 3.0 / 0.325, 1e-8);
    br_rmax_free(&r);

    /* Boltzmann thresholds: P(a) = softmax(Q / T) in 24-bit steps. */
    r = make(1, 3, 1, 0.5, 0.25);
    br_rmax_observe(&r, 0, 0.0, 0); /* a0: Q = 0 + 0.5 V, others unknown (2) */
    double q0 = r.Q[0], e0 = exp((q0 - 2) / 0.25), z = e0 + 2;
    CHECK_NEAR(r.cdf[0] / 16777216.0, e0 / z, 1e-6);
    CHECK_NEAR(r.cdf[1] / 16777216.0, (e0 + 1) / z, 1e-6);
    CHECK_INT(r.cdf[2], 1u << 24);
    int counts[3] = {0};
    for (uint32_t u = 0; u < (1u << 24); u += 97) counts[br_rmax_act(&r, 0, u)]++;
    double tot = counts[0] + counts[1] + counts[2];
    CHECK_NEAR(counts[0] / tot, e0 / z, 1e-3);
    br_rmax_free(&r);

    /* Bad input: m = 0, no states, a table that cannot be allocated. */
    br_rmax_config_t bad = {4, 2, 0, 0.8, 1, 0, 0, 0, 0};
    CHECK_STATUS(br_rmax_init(&r, &bad), BR_EINVAL);
    bad.m = 10;
    bad.S = 0;
    CHECK_STATUS(br_rmax_init(&r, &bad), BR_EINVAL);
    bad.S = 1 << 20;
    CHECK_STATUS(br_rmax_init(&r, &bad), BR_ENOMEM);
    CHECK(strstr(br_errmsg(), "GiB") != NULL);
    br_rmax_free(NULL);
    return th_exit();
}
