/* Benchmarks run by `braid bench NAME` (one function per file cli/bench_NAME.c). */
#ifndef BR_CLI_BENCH_CMDS_H
#define BR_CLI_BENCH_CMDS_H
int bench_gemm(int argc, char **argv);
int bench_nn(int argc, char **argv);
int bench_rl_env(int argc, char **argv);
int bench_train(int argc, char **argv);
int bench_tokenizer(int argc, char **argv);
int bench_moe(int argc, char **argv);
int bench_parden(int argc, char **argv);
int bench_serve(int argc, char **argv);
int bench_rfos(int argc, char **argv);
#endif
