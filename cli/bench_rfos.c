/* braid bench rfos: R-FOS meta-steps per CPU-second (h = 2, reference configuration) of the
 * tight loop in rl/rfos.c, next to a straightforward loop with the same semantics built from
 * the library's generic pieces (one br_rng_double per random choice, br_qlearner_t, the
 * generic br_rmax_act) — the "obvious C port" of the paper's Python loop.  Goal: >= 50
 * million meta-steps/s on one core for h = 2. */
#include <stdio.h>
#include <time.h>

#include "args.h"
#include "base/rng.h"
#include "bench_cmds.h"
#include "rl/learners.h"
#include "rl/rfos.h"
#include "rl/rmax.h"

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The plain loop: returns meta-steps per CPU-second and the mean reward. */
static int plain_loop(long long steps, double *rate, double *mean)
{
    br_rmax_t rm;
    br_rmax_config_t rc = {16, 2, 16094, 0.8, 1.0, 0.25, 1e-6, 1000, 0};
    if (br_rmax_init(&rm, &rc)) return fail_status(1, "bench rfos");
    br_qlearner_t opp;
    br_qlearner_init(&opp, 0.5, 0.1, 0.75);
    br_rng_t rng;
    br_rng_seed(&rng, 1);
    int s = 0;
    double tot = 0, t0 = cpu_now();
    for (long long i = 0; i < steps; i++) {
        int a1 = br_rmax_act(&rm, s, (uint32_t)(br_rng_double(&rng) * 16777216.0));
        double ue = br_rng_double(&rng), ua = br_rng_double(&rng);
        int a2 = br_qlearner_act(&opp, ue, ua);
        double r1 = a1 == a2 ? 1.0 : 0.0;
        br_qlearner_update(&opp, a2, 1.0 - r1);
        int s2 = (s * 4 + a1 * 2 + a2) % 16;
        size_t pair = (size_t)s * 2 + (size_t)a1;
        if (!rm.known[pair]) br_rmax_observe(&rm, pair, r1, s2);
        tot += r1;
        s = s2;
    }
    double el = cpu_now() - t0;
    *rate = (double)steps / el;
    *mean = tot / (double)steps;
    br_rmax_free(&rm);
    return 0;
}

int bench_rfos(int argc, char **argv)
{
    long long steps = 100000000;
    const opt_t opts[] = {
        {"steps", OPT_LONG, &steps, "N", "meta-steps per loop (default 1e8)", false},
    };
    cmd_spec_t spec = {"braid bench rfos [options]",
                       "R-FOS meta-steps per CPU-second for h = 2 (reference configuration): the "
                       "tight loop of rl/rfos.c vs a plain loop with the same semantics, and "
                       "their ratio.  Goal: >= 50 million meta-steps/s on one core.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (steps < 1000000) {
        fprintf(stderr, "braid: error: --steps must be >= 1000000\n");
        return 2;
    }
    br_rfos_config_t c;
    br_rfos_config_default(&c);
    c.history = 2;
    c.max_steps = steps;
    c.after_known = steps;
    c.eval_steps = 0;
    br_rfos_result_t r;
    br_status st = br_rfos_run(&c, NULL, NULL, NULL, NULL, &r);
    if (st) return fail_status(st, "bench rfos");
    double prate = 0, pmean = 0;
    if (plain_loop(r.steps, &prate, &pmean)) return 1;
    printf("rfos h=2, %lld meta-steps each (CPU time of this thread):\n", (long long)r.steps);
    printf("  tight loop (rl/rfos.c)   %8.1f M meta-steps/s   mean reward %.4f\n", r.meta_steps_per_cpu_s / 1e6, r.final_mean_reward);
    printf("  plain loop (same model)  %8.1f M meta-steps/s   mean reward %.4f\n", prate / 1e6, pmean);
    printf("  ratio tight / plain      %8.2fx   goal >= 50 M/s: %s\n", r.meta_steps_per_cpu_s / prate,
           r.meta_steps_per_cpu_s >= 50e6 ? "met" : "NOT met");
    return 0;
}
