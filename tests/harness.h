/* Tiny test harness: one line per failing check (file:line, values, tolerance), and a
 * final "N passed, N failed[, N skipped]" line.  main() returns th_exit(). */
#ifndef BR_TEST_HARNESS_H
#define BR_TEST_HARNESS_H
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "base/status.h"

static int th_passed, th_failed, th_skipped;

#define TH_RECORD(ok, ...)                                                     \
    do {                                                                       \
        if (ok) th_passed++;                                                   \
        else {                                                                 \
            th_failed++;                                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);               \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

#define CHECK(cond) TH_RECORD((cond), "%s", #cond)
#define CHECK_MSG(cond, ...) TH_RECORD((cond), __VA_ARGS__)
#define CHECK_INT(a, b)                                                        \
    do {                                                                       \
        long long th_a = (long long)(a), th_b = (long long)(b);                \
        TH_RECORD(th_a == th_b, "%s == %s: %lld != %lld", #a, #b, th_a, th_b); \
    } while (0)
#define CHECK_STR(a, b)                                                        \
    do {                                                                       \
        const char *th_a = (a), *th_b = (b);                                   \
        TH_RECORD(th_a && th_b && strcmp(th_a, th_b) == 0,                     \
                  "%s == %s: \"%s\" != \"%s\"", #a, #b, th_a ? th_a : "(null)", \
                  th_b ? th_b : "(null)");                                     \
    } while (0)
/* |a-b| <= tol (absolute). */
#define CHECK_NEAR(a, b, tol)                                                  \
    do {                                                                       \
        double th_a = (double)(a), th_b = (double)(b), th_t = (double)(tol);   \
        TH_RECORD(fabs(th_a - th_b) <= th_t, "%s ~ %s: %.10g vs %.10g (diff %.3g > tol %.3g)", \
                  #a, #b, th_a, th_b, fabs(th_a - th_b), th_t);                \
    } while (0)
/* Relative error |a-b| / max(|a|,|b|,floor) <= tol. */
#define CHECK_REL(a, b, tol, floor)                                            \
    do {                                                                       \
        double th_a = (double)(a), th_b = (double)(b);                         \
        double th_d = fmax(fmax(fabs(th_a), fabs(th_b)), (double)(floor));     \
        double th_r = fabs(th_a - th_b) / th_d;                                \
        TH_RECORD(th_r <= (tol), "%s ~ %s: %.10g vs %.10g (rel err %.3g > tol %.3g)", \
                  #a, #b, th_a, th_b, th_r, (double)(tol));                    \
    } while (0)
/* A br_status call that must succeed; prints the library's message when it does not. */
#define CHECK_OK(expr)                                                         \
    do {                                                                       \
        br_status th_s = (expr);                                               \
        TH_RECORD(th_s == BR_OK, "%s -> %s: %s", #expr, br_status_name(th_s), br_errmsg()); \
    } while (0)
/* A call that must fail with a given status. */
#define CHECK_STATUS(expr, want)                                               \
    do {                                                                       \
        br_status th_s = (expr);                                               \
        TH_RECORD(th_s == (want), "%s -> %s (want %s): %s", #expr,             \
                  br_status_name(th_s), br_status_name(want), br_errmsg());    \
    } while (0)
#define SKIP(...)                                                              \
    do {                                                                       \
        th_skipped++;                                                          \
        fprintf(stderr, "skip %s:%d: ", __FILE__, __LINE__);                   \
        fprintf(stderr, __VA_ARGS__);                                          \
        fputc('\n', stderr);                                                   \
    } while (0)

static inline int th_exit(void)
{
    if (th_skipped) printf("%d passed, %d failed, %d skipped\n", th_passed, th_failed, th_skipped);
    else printf("%d passed, %d failed\n", th_passed, th_failed);
    return th_failed ? 1 : 0;
}

#ifdef TH_WANT_RUN
/* For end-to-end CLI tests: runs a shell command (printf format) with progress bars off,
 * captures the first cap-1 bytes of stdout+stderr into out; returns the exit status, or -1
 * when the command could not start or died from a signal. */
#include <stdarg.h>
#include <sys/wait.h>
static int th_run(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4), unused));
static int th_run(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[8400];
    snprintf(full, sizeof full, "BRAID_QUIET=1 %s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
#endif
#endif
