/* braid rl vdn | braid rl qmix: model-free value-decomposition Q-learning (recurrent agents)
 * on a Dec-POMDP task, measured in real environment steps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/threads.h"
#include "commands.h"
#include "rl/vdn_run.h"
#include "rl_cmds.h"

static int run_vd(int argc, char **argv, br_mixer_kind mixer)
{
    br_vd_run_config_t c = br_vd_run_defaults();
    c.mixer = mixer;
    const char *env = NULL, *out = NULL;
    long steps = 0, seed = 1;
    bool quiet = false;
    const opt_t opts[] = {
        {"env", OPT_STR, &env, "ENV", "task: switch, switch-bridges, switch-bridges-L (bridge length L), simple-reference", true},
        {"real-steps", OPT_LONG, &steps, "N", "budget of real environment steps", true},
        {"seed", OPT_LONG, &seed, "S", "random seed (default 1)", false},
        {"out", OPT_STR, &out, "DIR", "output folder (log.jsonl, summary.json)", true},
        {"agents", OPT_INT, &c.n_agents, "N", "agents (default: the task's, 3 for switch)", false},
        {"envs", OPT_INT, &c.envs, "B", "environments collected in parallel (default 4)", false},
        {"updates", OPT_INT, &c.updates_per_collect, "K", "gradient steps per collection of --envs episodes (default 4: one per episode)", false},
        {"batch", OPT_INT, &c.batch, "E", "episodes per gradient step (default 32)", false},
        {"buffer", OPT_INT, &c.buffer, "E", "replay buffer in episodes (default 5000)", false},
        {"hidden", OPT_INT, &c.hidden, "H", "GRU width (default 64)", false},
        {"lr", OPT_FLOAT, &c.lr, "LR", "Adam learning rate (default 5e-4)", false},
        {"target-every", OPT_INT, &c.target_every, "K", "gradient steps between target copies (default 200)", false},
        {"eps-anneal", OPT_LONG, &c.eps_anneal, "N", "real steps to anneal epsilon 1 -> 0.05 (default min(budget/3, 50000))", false},
        {"eval-every", OPT_LONG, &c.eval_every, "N", "real steps between evaluations (default budget/20)", false},
        {"eval-episodes", OPT_INT, &c.eval_episodes, "E", "greedy episodes per evaluation (default 64)", false},
        {"quiet", OPT_BOOL, &quiet, NULL, "no progress bar", false},
    };
    char usage[128];
    snprintf(usage, sizeof usage, "braid rl %s --env ENV --real-steps N --out DIR [options]",
             mixer == BR_MIXER_QMIX ? "qmix" : "vdn");
    const cmd_spec_t spec = {
        usage,
        mixer == BR_MIXER_QMIX
            ? "Model-free QMIX (monotonic hypernetwork mixer) with recurrent GRU agents, double "
              "Q-learning and a target network, trained in the real environment.  Writes one "
              "log line per evaluation (real steps, greedy return) and a summary."
            : "Model-free VDN (sum of agent Q values) with recurrent GRU agents, double "
              "Q-learning and a target network, trained in the real environment.  Writes one "
              "log line per evaluation (real steps, greedy return) and a summary.",
        opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos;
    int rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    c.env = env, c.out_dir = out, c.real_steps = steps, c.seed = (uint64_t)seed, c.quiet = quiet;
    /* tiny matrices: one thread unless BRAID_THREADS says otherwise (seeds run in parallel) */
    if (!getenv("BRAID_THREADS")) br_set_threads(1);
    br_status s = br_vd_run_check(&c);
    if (s != BR_OK) return fail_status(s, NULL);
    s = br_vd_run(&c);
    if (s != BR_OK) return fail_status(s, NULL);
    print_plot_hint(out);
    return 0;
}

int rl_vdn(int argc, char **argv) { return run_vd(argc, argv, BR_MIXER_VDN); }
int rl_qmix(int argc, char **argv) { return run_vd(argc, argv, BR_MIXER_QMIX); }
