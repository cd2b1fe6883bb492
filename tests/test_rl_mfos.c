/* M-FOS: ES and PPO shapers against a naive learner in the IPD (the extortion result, on a
 * reduced budget), determinism, and bad configurations. */
#include <math.h>

#include "harness.h"
#include "rl/mfos.h"

typedef struct {
    double first, last;
    int n;
} trace_t;

static void keep(void *p, const br_mfos_log_t *r)
{
    trace_t *t = p;
    if (t->n++ == 0) t->first = r->shaper;
    t->last = r->shaper;
}

int main(void)
{
    br_mfos_config_t c;
    br_mfos_result_t r1, r2;
    br_mfos_config_default(&c);
    c.iterations = 150;
    c.batch = 8;
    c.eval_games = 64;
    trace_t tr = {0};
    CHECK_OK(br_mfos_run(&c, keep, &tr, NULL, NULL, &r1));
    CHECK_INT(tr.n, 150);
    CHECK_MSG(tr.last > tr.first + 0.2, "ES shaper did not improve: %g -> %g", tr.first, tr.last);
    /* Extortion: above mutual cooperation (-1) and above the exploited naive opponent; the
     * naive-vs-naive baseline on the same opponents stays below mutual cooperation. */
    CHECK_MSG(r1.extortion, "shaper %g opponent %g", r1.shaper, r1.opponent);
    CHECK(r1.shaper > r1.naive_shaper + 0.3);
    CHECK(r1.naive_shaper < -1);
    CHECK_NEAR(r1.mutual_cooperation, -1, 0);
    CHECK(isfinite(r1.lola_shaper));
    CHECK_OK(br_mfos_run(&c, NULL, NULL, NULL, NULL, &r2));
    CHECK_NEAR(r1.shaper, r2.shaper, 0); /* same seed, same result */

    /* PPO learns too (smaller budget: only improvement is checked). */
    br_mfos_config_default(&c);
    c.algo = BR_MFOS_PPO;
    c.lr = 1e-3;
    c.batch = 32;
    c.iterations = 100;
    c.eval_games = 32;
    trace_t tp = {0};
    CHECK_OK(br_mfos_run(&c, keep, &tp, NULL, NULL, &r1));
    CHECK_MSG(tp.last > tp.first + 0.2, "PPO shaper did not improve: %g -> %g", tp.first, tp.last);
    CHECK(isfinite(r1.shaper) && isfinite(r1.opponent));

    /* Bad configurations. */
    br_mfos_config_default(&c);
    c.population = 7;
    CHECK_STATUS(br_mfos_check(&c), BR_EINVAL);
    br_mfos_config_default(&c);
    c.batch = 0;
    CHECK_STATUS(br_mfos_run(&c, NULL, NULL, NULL, NULL, &r1), BR_EINVAL);
    br_mfos_config_default(&c);
    c.game = NULL;
    CHECK_STATUS(br_mfos_check(&c), BR_EINVAL);
    br_mfos_config_default(&c);
    c.gamma = 1;
    CHECK_STATUS(br_mfos_check(&c), BR_EINVAL);
    br_mfos_config_default(&c);
    c.batch = 65536;
    c.meta_len = 100000;
    CHECK_STATUS(br_mfos_check(&c), BR_ENOMEM);
    return th_exit();
}
