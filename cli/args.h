/* Flag parsing shared by every subcommand: --name VALUE, --name=VALUE, boolean --name,
 * -h/--help; strict number parsing; unknown flags and missing values are errors that name
 * the flag.  Positional arguments are collected in order. */
#ifndef BR_CLI_ARGS_H
#define BR_CLI_ARGS_H
#include <stdbool.h>
#include <stddef.h>

typedef enum { OPT_STR, OPT_INT, OPT_LONG, OPT_FLOAT, OPT_DOUBLE, OPT_BOOL } opt_kind;

typedef struct {
    const char *name;    /* without dashes: "vocab-size"; a one-letter alias may follow a '|': "n|max-tokens" */
    opt_kind kind;
    void *dest;          /* const char **, int *, long *, float *, double *, bool * */
    const char *metavar; /* "N", "PATH"; NULL for booleans */
    const char *help;    /* one line; mention the default */
    bool required;
} opt_t;

typedef struct {
    const char *usage;   /* "braid inspect [options] FILE.safetensors" */
    const char *summary; /* one paragraph shown under the usage line */
    const opt_t *opts;
    size_t nopts;
    int min_pos, max_pos; /* positional argument count bounds (max -1: unbounded) */
} cmd_spec_t;

/* Parses argv[1..argc) (argv[0] is the subcommand name).  Returns 0 to run, 1 when help was
 * printed (exit 0), 2 on a usage error (message already printed; exit 2).
 * On 0, *pos / *npos hold the positional arguments: argv is reordered in place so that they
 * come first (after argv[0]); nothing is allocated. */
int args_parse(const cmd_spec_t *spec, int argc, char **argv, char ***pos, int *npos);
void args_print_help(const cmd_spec_t *spec);

/* Runs a table of sub-subcommands ("braid bench gemm"). */
typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} subcmd_t;
int run_subcommand(const char *group, const subcmd_t *subs, size_t n, int argc, char **argv);

/* Prints "braid: error: <message>" for a failed library call and returns 1. */
int fail_status(int status, const char *what);
#endif
