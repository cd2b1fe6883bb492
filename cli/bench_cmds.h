/* Benchmarks run by `braid bench NAME` (one function per file cli/bench_NAME.c). */
#ifndef BR_CLI_BENCH_CMDS_H
#define BR_CLI_BENCH_CMDS_H
#include <stddef.h>

int bench_gemm(int argc, char **argv);
int bench_nn(int argc, char **argv);
int bench_rl_env(int argc, char **argv);
int bench_train(int argc, char **argv);
int bench_tokenizer(int argc, char **argv);
int bench_moe(int argc, char **argv);
int bench_parden(int argc, char **argv);
int bench_serve(int argc, char **argv);
int bench_rfos(int argc, char **argv);
int bench_infer(int argc, char **argv);

/* Shared helpers (bench_util.c): qsort comparator for doubles (ascending), and the median of
 * v[0..n) (sorts v in place; 0 when n is 0). */
int bench_cmp_double(const void *a, const void *b);
double bench_median(double *v, size_t n);
#endif
