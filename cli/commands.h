/* Every top-level `braid` command: int cmd_NAME(int argc, char **argv), argv[0] = "NAME".
 * Return 0 on success, 1 on failure (message printed), 2 on a usage error. */
#ifndef BR_CLI_COMMANDS_H
#define BR_CLI_COMMANDS_H

/* foundation */
int cmd_inspect(int argc, char **argv);
int cmd_quantize(int argc, char **argv);

int cmd_bench(int argc, char **argv);

/* data and tokenizer */
int cmd_data(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);

/* dense LM */
int cmd_train(int argc, char **argv);
/* braid train on a group of ranks (comm: data-parallel; branch runs one group per expert) */
struct br_comm;
int cmd_train_in(int argc, char **argv, struct br_comm *comm);
int cmd_eval(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_generate(int argc, char **argv);
/* plots (cli/cmd_plot.c): the command, and the two lines a training command prints at its end
 * (where its log is and the command that plots it; nothing when run_dir has no log) */
int cmd_plot(int argc, char **argv);
void print_plot_hint(const char *run_dir);

/* upcycling */
int cmd_branch(int argc, char **argv);
int cmd_upcycle(int argc, char **argv);
int cmd_extend(int argc, char **argv);
int cmd_btm(int argc, char **argv);

/* serving */
int cmd_serve(int argc, char **argv);
int cmd_lora_train(int argc, char **argv);

/* guard */
int cmd_parden(int argc, char **argv);

/* rl */
int cmd_rl(int argc, char **argv);

#endif
