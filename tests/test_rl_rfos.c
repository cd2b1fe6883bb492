/* R-FOS end to end: same seed -> same log; bad input fails before any work; the qgrid variant
 * reaches the exact optimum of its (known) meta-MDP; the history variant's bookkeeping. */
#include <math.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "base/timer.h"
#include "harness.h"
#include "rl/rfos.h"

typedef struct {
    br_rfos_log_t rec[4096];
    int n;
} logbuf_t;

static void keep(void *p, const br_rfos_log_t *r)
{
    logbuf_t *b = p;
    if (b->n < 4096) b->rec[b->n++] = *r;
}

static int same_log(const logbuf_t *a, const logbuf_t *b)
{
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (a->rec[i].steps != b->rec[i].steps || a->rec[i].known != b->rec[i].known ||
            a->rec[i].mean_reward != b->rec[i].mean_reward)
            return 0;
    return 1;
}

int main(void)
{
    static logbuf_t l1, l2, l3;
    br_rfos_config_t c;
    br_rfos_result_t r1, r2, r3;
    br_rfos_config_default(&c);
    c.history = 1;
    c.after_known = 200000;
    c.eval_steps = 100000;
    c.log_every = 20000;
    c.seed = 5;
    CHECK_OK(br_rfos_run(&c, keep, &l1, NULL, NULL, &r1));
    CHECK_OK(br_rfos_run(&c, keep, &l2, NULL, NULL, &r2));
    c.seed = 6;
    CHECK_OK(br_rfos_run(&c, keep, &l3, NULL, NULL, &r3));
    CHECK(l1.n > 5);
    CHECK(same_log(&l1, &l2));
    CHECK(!same_log(&l1, &l3));
    CHECK_INT(r1.samples_to_all_known, r2.samples_to_all_known);
    CHECK_NEAR(r1.greedy_mean_reward, r2.greedy_mean_reward, 0);
    /* Bookkeeping: 4 states x 2 actions, m = 4023; every pair needs m samples. */
    CHECK_INT(r1.pairs, 8);
    CHECK_INT(r1.m, 4023);
    CHECK(r1.samples_to_all_known >= 8 * 4023);
    CHECK_INT(l1.rec[l1.n - 1].known, 8);
    int64_t prev = 0, mono = 1;
    for (int i = 0; i < l1.n; i++) {
        mono &= l1.rec[i].known >= prev && l1.rec[i].mean_reward >= 0 && l1.rec[i].mean_reward <= 1;
        prev = l1.rec[i].known;
    }
    CHECK(mono);
    CHECK(isnan(r1.optimal_mean_reward));
    CHECK_NEAR(r1.upper_bound_mean_reward, 0.95, 1e-12);
    /* h = 1 cannot beat alternating play by much: known policy values are well below 0.95. */
    CHECK(r1.greedy_mean_reward > 0.55 && r1.greedy_mean_reward < 0.95);

    /* qgrid K = 1: the meta-MDP is exactly Markov; after every pair is known, R-max's greedy
     * policy has the exact optimal discounted value (0.95 / (1 - 0.8) = 4.75). */
    br_rfos_config_default(&c);
    c.kind = BR_RFOS_QGRID;
    c.grid = 1;
    c.eval_steps = 200000;
    c.seed = 3;
    CHECK_OK(br_rfos_run(&c, NULL, NULL, NULL, NULL, &r1));
    CHECK(r1.samples_to_all_known > 0);
    CHECK_NEAR(r1.optimal_value, 4.75, 1e-9);
    CHECK_NEAR(r1.optimal_mean_reward, 0.95, 1e-9);
    CHECK_NEAR(r1.policy_value, r1.optimal_value, 1e-9);
    CHECK_NEAR(r1.greedy_mean_reward, 0.95, 0.005);
    CHECK(r1.samples_to_near_optimal > 0);
    /* R-max's own model value is within its epsilon of the truth. */
    CHECK_NEAR(r1.model_value, r1.optimal_value, 0.2);
    /* The PAC count: never more than the steps run; once every pair is known the policy is
     * epsilon-optimal everywhere it goes (no further bad steps), and the run is not censored. */
    CHECK(r1.eps_bad_steps >= 0 && r1.eps_bad_steps <= r1.steps);
    CHECK_INT(r1.eps_bad_after_known, 0);
    CHECK_INT(r1.eps_censored, 0);
    /* With a tiny epsilon every step before the first pair becomes known is counted (R-max's
     * initial policy is uniform, far from the optimum's value 4.75 at the start); with an epsilon
     * above the whole value range nothing is.  The log's running count never decreases. */
    static logbuf_t lq;
    c.m = 50;
    c.epsilon = 1e-9;
    c.log_every = 1000;
    c.eval_steps = 0;
    CHECK_OK(br_rfos_run(&c, keep, &lq, NULL, NULL, &r2));
    CHECK(r2.eps_bad_steps >= 50);
    int bad_mono = lq.n > 2;
    for (int i = 1; i < lq.n; i++) bad_mono &= lq.rec[i].eps_bad >= lq.rec[i - 1].eps_bad && lq.rec[i].eps_bad >= 0;
    CHECK(bad_mono);
    CHECK_INT(lq.rec[lq.n - 1].eps_bad, r2.eps_bad_steps);
    c.epsilon = 100;
    CHECK_OK(br_rfos_run(&c, NULL, NULL, NULL, NULL, &r2));
    CHECK_INT(r2.eps_bad_steps, 0);
    /* A step cap before every pair is known marks the count censored. */
    c.epsilon = 1e-9;
    c.max_steps = 120;
    CHECK_OK(br_rfos_run(&c, NULL, NULL, NULL, NULL, &r2));
    CHECK_INT(r2.eps_censored, 1);
    CHECK_INT(r2.eps_bad_after_known, -1);

    /* Brute force (h = 1: 16 deterministic policies).  R-max's greedy policy is one of them, so
     * the best cannot be worse than it beyond the noise of the two measurements. */
    br_rfos_config_default(&c);
    c.history = 1;
    c.eval_steps = 400000;
    c.after_known = 200000;
    CHECK_OK(br_rfos_run(&c, NULL, NULL, NULL, NULL, &r1));
    CHECK_INT(r1.eps_bad_steps, -1);
    br_rfos_brute_t bf;
    CHECK_OK(br_rfos_brute_force(&c, 400000, &bf));
    CHECK_INT(bf.policies, 16);
    CHECK(bf.best_stderr > 0 && bf.best_stderr < 0.01);
    CHECK_MSG(bf.best_mean_reward >= r1.greedy_mean_reward - 0.01, "brute %.4f vs R-max greedy %.4f",
              bf.best_mean_reward, r1.greedy_mean_reward);
    CHECK(bf.best_mean_reward < 0.95);
    c.history = 3;
    CHECK_STATUS(br_rfos_brute_force(&c, 400000, &bf), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "h <= 2") != NULL);

    /* Bad input: clear errors before any work. */
    int64_t S, A;
    uint32_t m;
    double t0 = br_now();
    br_rfos_config_default(&c);
    c.history = 0;
    CHECK_STATUS(br_rfos_run(&c, NULL, NULL, NULL, NULL, &r1), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "history") != NULL);
    c.history = 14;
    CHECK_STATUS(br_rfos_check(&c, &S, &A, &m), BR_ENOMEM);
    CHECK(strstr(br_errmsg(), "GiB") != NULL);
    c.history = 40;
    CHECK_STATUS(br_rfos_run(&c, NULL, NULL, NULL, NULL, &r1), BR_ENOMEM);
    c.history = 2;
    c.m = 0;
    CHECK_STATUS(br_rfos_run(&c, NULL, NULL, NULL, NULL, &r1), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "m must be") != NULL);
    c.m = -1;
    c.game = NULL;
    CHECK_STATUS(br_rfos_run(&c, NULL, NULL, NULL, NULL, &r1), BR_EINVAL);
    br_rfos_config_default(&c);
    c.action_levels = 1;
    CHECK_STATUS(br_rfos_check(&c, &S, &A, &m), BR_EINVAL);
    br_rfos_config_default(&c);
    c.kind = BR_RFOS_QGRID;
    c.grid = 0;
    CHECK_STATUS(br_rfos_check(&c, &S, &A, &m), BR_EINVAL);
    CHECK(br_now() - t0 < 1.0);

    /* The command line: same errors, exit status 1/2, nothing written. */
    const char *braid = getenv("BRAID");
    if (!braid) SKIP("BRAID not set: command-line checks need `make test`");
    else {
        char cmd[4096];
        const char *bad[] = {"--game tic-tac-toe", "--history 0", "--history 20", "--m 0",
                             "--state nope", "--history 3 --brute-force 100000"};
        for (int i = 0; i < 6; i++) {
            snprintf(cmd, sizeof cmd, "%s rl rfos %s --out /tmp/braid-test-rfos-bad >/dev/null 2>&1", braid, bad[i]);
            int rc = system(cmd);
            CHECK_MSG(WIFEXITED(rc) && (WEXITSTATUS(rc) == 1 || WEXITSTATUS(rc) == 2), "%s -> %d", bad[i], rc);
        }
        snprintf(cmd, sizeof cmd, "%s rl rfos --history 1 --after-known 1000 --eval-steps 1000 --out /tmp/braid-test-rfos >/dev/null 2>&1", braid);
        CHECK_INT(system(cmd), 0);
        FILE *f = fopen("/tmp/braid-test-rfos/summary.json", "r");
        CHECK(f != NULL);
        if (f) {
            char buf[8192];
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = 0;
            fclose(f);
            CHECK(strstr(buf, "\"samples_to_all_known\"") && strstr(buf, "\"meta_steps_per_s\""));
        }
    }
    return th_exit();
}
