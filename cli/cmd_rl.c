/* braid rl: multi-agent RL experiments.  Each area adds its subcommands as entries in the
 * table (one line each, inside its block). */
#include "args.h"
#include "commands.h"
#include "rl_cmds.h"

static const subcmd_t rl_cmds[] = {
    /* opponent shaping */
    {"rfos", rl_rfos, "R-FOS: tabular opponent shaping with an R-max meta-learner"},
    {"mfos", rl_mfos, "M-FOS: meta-game opponent shaping with PPO or ES on matrix games"},

    /* MARCO and value decomposition */
    {"vdn", rl_vdn, "model-free VDN with recurrent agents on a Dec-POMDP task"},
    {"qmix", rl_qmix, "model-free QMIX with recurrent agents on a Dec-POMDP task"},
    {"marco", rl_marco, "MARCO: centralized model ensemble + exploration policy (model-based)"},

};

int cmd_rl(int argc, char **argv)
{
    return run_subcommand("rl", rl_cmds, sizeof rl_cmds / sizeof *rl_cmds, argc, argv);
}
