/* sh(fmt, ...): runs a printf-formatted shell command (system(3)) and returns its exit status,
 * -1 when it did not exit normally.  For the end-to-end tests that drive $BRAID. */
#ifndef BR_TEST_SHELL_FIXTURE_H
#define BR_TEST_SHELL_FIXTURE_H
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
#endif
