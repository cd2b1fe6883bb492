/* braid bench rl-env: agent-steps per second of the batched Dec-POMDP environments on one
 * core (random available actions chosen inside the timed loop; finished episodes reset). */
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "base/rng.h"
#include "base/timer.h"
#include "bench_cmds.h"
#include "rl/dec_pomdp.h"

static double bench_one(const char *name, int batch, double min_time, double *episodes_out)
{
    br_env_t *e;
    if (br_env_create(&e, name, 0, batch, 1) != BR_OK) return -1;
    const int n = e->spec.n_agents, A = e->spec.n_actions;
    int32_t *act = calloc((size_t)batch * n, sizeof *act);
    br_rng_t r;
    br_rng_seed(&r, 2);
    long steps = 0, episodes = 0;
    double t0 = br_now(), el;
    do {
        for (int rep = 0; rep < 16; rep++) {
            for (int b = 0; b < batch; b++) {
                uint64_t bits = br_rng_u64(&r);
                for (int i = 0; i < n; i++, bits >>= 8) {
                    const uint8_t *av = e->avail + ((size_t)b * n + i) * A;
                    int a = (int)((bits & 0xff) % (unsigned)A);
                    while (!av[a]) a = a + 1 == A ? 0 : a + 1;
                    act[(size_t)b * n + i] = a;
                }
            }
            br_env_step_unchecked(e, act);
            steps += batch;
            for (int b = 0; b < batch; b++)
                if (e->done[b]) br_env_reset_one(e, b), episodes++;
        }
        el = br_now() - t0;
    } while (el < min_time);
    *episodes_out = episodes / el;
    double agent_steps = (double)steps * n / el;
    free(act);
    br_env_free(e);
    return agent_steps;
}

int bench_rl_env(int argc, char **argv)
{
    int batch = 1024;
    double seconds = 1.0;
    const opt_t opts[] = {
        {"batch", OPT_INT, &batch, "B", "environments stepped together (default 1024)", false},
        {"seconds", OPT_DOUBLE, &seconds, "S", "minimum time per task (default 1.0)", false},
    };
    const cmd_spec_t spec = {"braid bench rl-env [options]",
                             "Agent-steps per second of each Dec-POMDP task on one core (batched "
                             "stepping, random available actions, automatic resets).",
                             opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos;
    int rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (batch < 1 || seconds <= 0) {
        fprintf(stderr, "braid: error: --batch must be >= 1 and --seconds > 0\n");
        return 2;
    }
    const char *names[] = {"switch", "switch-bridges", "simple-reference"};
    printf("%-18s %8s %16s %14s %8s\n", "task", "batch", "agent-steps/s", "episodes/s", "goal");
    for (int k = 0; k < 3; k++) {
        double eps;
        double sps = bench_one(names[k], batch, seconds, &eps);
        if (sps < 0) return fail_status(1, names[k]);
        printf("%-18s %8d %16.3e %14.3e %8s\n", names[k], batch, sps, eps,
               k < 2 ? (sps >= 1e7 ? ">=1e7 ok" : "<1e7") : "-");
    }
    return 0;
}
