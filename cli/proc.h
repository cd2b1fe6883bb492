/* Running an external program from an argument vector: no shell, so no quoting of paths or
 * names (cli/proc.c).  Used by `data fetch` (dpkg-query, apt-get, npm, tar) and by the
 * benchmarks' peers (node). */
#ifndef BR_CLI_PROC_H
#define BR_CLI_PROC_H

enum { PROC_STDOUT_NULL = 1, PROC_STDERR_NULL = 2 };

/* Runs the program argv[0] (looked up in PATH) with the arguments argv (NULL-terminated), no
 * shell, and waits for it.  env_extra ("NAME=value" or NULL) is added to its environment.
 * With out != NULL its standard output is captured into *out (free it); otherwise
 * PROC_STDOUT_NULL / PROC_STDERR_NULL send those streams to /dev/null (PROC_STDERR_NULL also
 * applies when out is given).  Returns 0 when the program exited with status 0 (only then is
 * *out set), -1 otherwise. */
int proc_run(char *const argv[], const char *env_extra, int flags, char **out);

/* The words of argv joined by spaces, for messages (free it); NULL when out of memory. */
char *proc_join_argv(char *const argv[]);
#endif
