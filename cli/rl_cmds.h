/* Multi-agent RL commands run by `braid rl NAME` (one function per file cli/rl_NAME.c).
 * Each area adds its declarations in its own block. */
#ifndef BR_CLI_RL_CMDS_H
#define BR_CLI_RL_CMDS_H
/* opponent shaping (R-FOS, M-FOS) */
int rl_rfos(int argc, char **argv);
int rl_mfos(int argc, char **argv);

/* MARCO and value-decomposition learners */
int rl_vdn(int argc, char **argv);
int rl_qmix(int argc, char **argv);
int rl_marco(int argc, char **argv);

#endif
