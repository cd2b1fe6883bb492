#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

char *proc_join_argv(char *const argv[])
{
    size_t n = 1;
    for (int i = 0; argv[i]; i++) n += strlen(argv[i]) + 1;
    char *s = malloc(n), *p = s;
    for (int i = 0; s && argv[i]; i++) p += sprintf(p, "%s%s", i ? " " : "", argv[i]);
    if (s) *p = 0;
    return s;
}

/* Reads fd to its end into a new NUL-terminated string; NULL on a read error or out of memory. */
static char *read_all(int fd)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) break;
            buf = nb;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r == 0) {
            buf[n] = 0;
            return buf;
        }
        if (r < 0 && errno != EINTR) break;
        if (r > 0) n += (size_t)r;
    }
    free(buf);
    return NULL;
}

int proc_run(char *const argv[], const char *env_extra, int flags, char **out)
{
    if (out) *out = NULL;
    int fds[2] = {-1, -1};
    if (out && pipe2(fds, O_CLOEXEC) != 0) return -1;
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0) {
        if (out) close(fds[0]), close(fds[1]);
        return -1;
    }
    if (out) posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    else if (flags & PROC_STDOUT_NULL) posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    if (flags & PROC_STDERR_NULL) posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    char **envp = environ, **own = NULL;
    if (env_extra) { /* first, so that it wins over an inherited value of the same name */
        size_t n = 0;
        while (environ[n]) n++;
        own = malloc((n + 2) * sizeof *own);
        if (own) {
            own[0] = (char *)env_extra;
            memcpy(own + 1, environ, (n + 1) * sizeof *own);
            envp = own;
        }
    }
    pid_t pid;
    int rc = env_extra && !own ? ENOMEM : posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(own);
    if (out) close(fds[1]);
    if (rc != 0) {
        if (out) close(fds[0]);
        return -1;
    }
    char *captured = NULL;
    if (out) {
        captured = read_all(fds[0]);
        close(fds[0]);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) {
            free(captured);
            return -1;
        }
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || (out && !captured)) {
        free(captured);
        return -1;
    }
    if (out) *out = captured;
    return 0;
}
