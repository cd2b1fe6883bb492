/* braid rl marco: model-based MARL with a centralized model ensemble and an exploration
 * policy (MARCO), measured in real environment steps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/threads.h"
#include "commands.h"
#include "rl/marco.h"
#include "rl_cmds.h"

int rl_marco(int argc, char **argv)
{
    br_marco_config_t c = br_marco_defaults();
    br_vd_run_config_t *b = &c.base;
    const char *env = NULL, *out = NULL, *mixer = "auto";
    long steps = 0, seed = 1;
    bool quiet = false, no_explore = false;
    const opt_t opts[] = {
        {"env", OPT_STR, &env, "ENV", "task: switch, switch-bridges, switch-bridges-L (bridge length L), simple-reference", true},
        {"real-steps", OPT_LONG, &steps, "N", "budget of real environment steps", true},
        {"seed", OPT_LONG, &seed, "S", "random seed (default 1)", false},
        {"out", OPT_STR, &out, "DIR", "output folder (log.jsonl, summary.json)", true},
        {"no-explore", OPT_BOOL, &no_explore, NULL, "ablation: collect real data with the task policy, no exploration policy", false},
        {"mixer", OPT_STR, &mixer, "M", "vdn, qmix or auto (default: vdn for switch tasks, qmix for simple-reference, as the paper)", false},
        {"agents", OPT_INT, &b->n_agents, "N", "agents (default: the task's, 3 for switch)", false},
        {"init-steps", OPT_LONG, &c.init_steps, "N", "random real steps before the first model fit, i.e. the real steps at the first evaluation of a trained policy (default budget/10)", false},
        {"collect-steps", OPT_LONG, &c.collect_steps, "N", "real steps collected per iteration (default budget/10)", false},
        {"policy-updates", OPT_INT, &c.policy_updates, "K", "task-policy gradient steps in the model per iteration (default 500)", false},
        {"explore-updates", OPT_INT, &c.explore_updates, "K", "exploration-policy gradient steps per iteration (default 200)", false},
        {"beta", OPT_FLOAT, &c.beta, "B", "weight of the ensemble disagreement bonus (default 3.0)", false},
        {"real-eps", OPT_FLOAT, &c.real_eps, "E", "epsilon while collecting real data (default 0.1)", false},
        {"model-envs", OPT_INT, &c.model_envs, "B", "model episodes rolled out per gradient step (default 8)", false},
        {"members", OPT_INT, &c.model.members, "K", "ensemble size (default 5)", false},
        {"model-hidden", OPT_INT, &c.model.hidden, "H", "model hidden width, two layers (default 128)", false},
        {"model-epochs", OPT_INT, &c.model.max_epochs, "N", "most epochs per model fit (default 100)", false},
        {"patience", OPT_INT, &c.model.patience, "N", "early stopping: epochs without held-out improvement (default 10)", false},
        {"model-rows", OPT_LONG, &c.model.max_rows_per_epoch, "N", "cap on transitions visited per model epoch (default all)", false},
        {"envs", OPT_INT, &b->envs, "B", "real environments collected in parallel (default 4)", false},
        {"batch", OPT_INT, &b->batch, "E", "episodes per gradient step (default 32)", false},
        {"buffer", OPT_INT, &b->buffer, "E", "model-episode replay in episodes (default 5000)", false},
        {"hidden", OPT_INT, &b->hidden, "H", "GRU width (default 64)", false},
        {"lr", OPT_FLOAT, &b->lr, "LR", "Adam learning rate of the policies (default 5e-4)", false},
        {"target-every", OPT_INT, &b->target_every, "K", "gradient steps between target copies (default 200)", false},
        {"eps-anneal", OPT_LONG, &c.eps_anneal_updates, "K", "policy gradient steps to anneal model epsilon 1 -> 0.05 (default 2 x policy-updates)", false},
        {"eval-every", OPT_LONG, &b->eval_every, "N", "evaluate at the first iteration end past every N real steps (default 0: after every iteration; the last is always evaluated)", false},
        {"eval-episodes", OPT_INT, &b->eval_episodes, "E", "greedy episodes per evaluation (default 64)", false},
        {"quiet", OPT_BOOL, &quiet, NULL, "no progress bar", false},
    };
    const cmd_spec_t spec = {
        "braid rl marco --env ENV --real-steps N --out DIR [--no-explore] [options]",
        "MARCO: fit a centralized model ensemble (next state, reward, terminal, per-agent "
        "observations and available actions) to every real transition, train the decentralised "
        "task policy (recurrent VDN/QMIX) inside the model, and collect new real data with a "
        "centralized exploration policy trained on reward + beta x ensemble disagreement.  One "
        "log line per iteration (real steps, greedy return in the real task, model fit).",
        opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos;
    int rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!strcmp(mixer, "auto")) b->mixer = env && !strcmp(env, "simple-reference") ? BR_MIXER_QMIX : BR_MIXER_VDN;
    else if (!strcmp(mixer, "vdn")) b->mixer = BR_MIXER_VDN;
    else if (!strcmp(mixer, "qmix")) b->mixer = BR_MIXER_QMIX;
    else {
        fprintf(stderr, "braid: error: --mixer must be vdn, qmix or auto, got '%s'\n", mixer);
        return 2;
    }
    b->env = env, b->out_dir = out, b->real_steps = steps, b->seed = (uint64_t)seed;
    b->quiet = quiet;
    c.explore = !no_explore;
    if (!getenv("BRAID_THREADS")) br_set_threads(1);
    br_status s = br_marco_check(&c);
    if (s != BR_OK) return fail_status(s, NULL);
    s = br_marco_run(&c);
    if (s != BR_OK) return fail_status(s, NULL);
    print_plot_hint(out);
    return 0;
}
