/* braid bench parden: PARDEN scoring throughput (pairs/s) on the 1,072 stored history pairs,
 * braid vs NLTK (bench/parden_nltk.py under /usr/bin/python3, a child process) in alternating
 * rounds, one thread each, with a checksum (sum of scores) showing both did the same work;
 * the reported ratio is the median of the per-round ratios.  Goal: >= 100x NLTK.
 * Skips (exit 0) when ../shared/data/parden is absent. */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "base/csv.h"
#include "bench_cmds.h"
#include "guard/parden.h"

typedef struct {
    const char **ref, **hyp;
    size_t n;
} pairs_t;

static br_status load_pairs(const char *dir, br_csv_t cs[2], pairs_t *p)
{
    const char *files[2] = {"benign_dataset.csv", "mistral_output.csv"};
    const char *cols[2] = {"output", "mistral_output"};
    br_buf_t path = BR_BUF_INIT;
    size_t total = 0, co[2], cr[2];
    br_status s = BR_OK;
    for (int f = 0; f < 2 && !s; f++) {
        s = br_buf_printf(&path, "%s/history/71add30/%s", dir, files[f]);
        if (!s) s = br_csv_read(br_buf_str(&path), &cs[f]);
        if (!s) s = br_csv_column(&cs[f], cols[f], br_buf_str(&path), &co[f]);
        if (!s) s = br_csv_column(&cs[f], "repeated", br_buf_str(&path), &cr[f]);
        if (!s) total += cs[f].nrows;
        br_buf_clear(&path);
    }
    br_buf_free(&path);
    if (s) return s;
    p->ref = malloc(sizeof(char *) * total);
    p->hyp = malloc(sizeof(char *) * total);
    if (!p->ref || !p->hyp) return br_error(BR_ENOMEM, "out of memory");
    p->n = 0;
    for (int f = 0; f < 2; f++)
        for (size_t i = 0; i < cs[f].nrows; i++) {
            p->ref[p->n] = br_csv_cell(&cs[f], i, co[f]);
            p->hyp[p->n++] = br_csv_cell(&cs[f], i, cr[f]);
        }
    return BR_OK;
}

/* CPU seconds of this thread: the machine is shared, so both sides are timed on CPU time
 * (wall time under load measures the neighbours). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* pairs/s of one metric over whole passes lasting at least min_s CPU-seconds; *sum = sum of one pass */
static br_status time_metric(const pairs_t *p, bool trunc, double min_s, double *rate, double *sum)
{
    br_parden_opts_t po;
    br_parden_opts_default(&po);
    size_t reps = 0;
    double t0 = cpu_now(), dt;
    do {
        double s = 0;
        for (size_t i = 0; i < p->n; i++) {
            double v;
            BR_TRY(trunc ? br_parden_score_trunc(p->ref[i], p->hyp[i], &v) : br_parden_score(&po, p->ref[i], p->hyp[i], &v));
            s += v;
        }
        *sum = s;
        reps++;
        dt = cpu_now() - t0;
    } while (dt < min_s);
    *rate = (double)(reps * p->n) / dt;
    return BR_OK;
}

/* The NLTK side: a bench/parden_nltk.py process answering "METRIC SECONDS" lines. */
typedef struct {
    pid_t pid;
    FILE *to, *from;
} nltk_t;

static bool nltk_start(nltk_t *nk, const char *dir)
{
    int in[2], out[2];
    if (pipe(in) != 0) return false;
    if (pipe(out) != 0) {
        close(in[0]);
        close(in[1]);
        return false;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char *argv[] = {"/usr/bin/python3", "bench/parden_nltk.py", (char *)dir, NULL};
    extern char **environ;
    int rc = posix_spawn(&nk->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
        close(in[1]);
        close(out[0]);
        return false;
    }
    nk->to = fdopen(in[1], "w");
    nk->from = fdopen(out[0], "r");
    return nk->to && nk->from;
}

/* one NLTK round; false when the process is gone (no python3-nltk, not at the repository root) */
static bool nltk_round(nltk_t *nk, const char *metric, double min_s, double *rate, double *sum)
{
    char line[512];
    if (fprintf(nk->to, "%s %g\n", metric, min_s) < 0 || fflush(nk->to) != 0) return false;
    if (!fgets(line, sizeof line, nk->from)) return false;
    json_t *j = json_loads(line, 0, NULL);
    if (!j) return false;
    *rate = json_number_value(json_object_get(j, "pairs_per_s"));
    *sum = json_number_value(json_object_get(j, "sum"));
    json_decref(j);
    return *rate > 0;
}

static void nltk_stop(nltk_t *nk)
{
    if (nk->to) fclose(nk->to); /* EOF ends the script */
    if (nk->from) fclose(nk->from);
    if (nk->pid > 0) waitpid(nk->pid, NULL, 0);
}

int bench_parden(int argc, char **argv)
{
    double min_s = 1.0;
    int rounds = 5;
    bool no_nltk = false;
    const opt_t opts[] = {
        {"seconds", OPT_DOUBLE, &min_s, "S", "CPU-seconds per round, metric and side (default 1)", false},
        {"rounds", OPT_INT, &rounds, "R", "rounds, braid and NLTK alternating (default 5)", false},
        {"no-nltk", OPT_BOOL, &no_nltk, NULL, "skip the NLTK side", false},
    };
    cmd_spec_t spec = {"braid bench parden [options]",
                       "PARDEN scoring throughput on the stored history pairs (60-word window and the early "
                       "character-truncated score), braid vs NLTK 3.8, one thread each, in alternating rounds "
                       "(so both see the same machine load); prints the median rates and the median of the "
                       "per-round ratios.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (rounds < 1 || rounds > 100 || !(min_s > 0 && min_s <= 60)) {
        fprintf(stderr, "bench parden: --rounds must be 1..100 and --seconds in (0, 60]\n");
        return 2;
    }
    br_buf_t dirb = BR_BUF_INIT;
    if (br_parden_data_dir(&dirb) != BR_OK) {
        printf("bench parden: skipped (%s)\n", br_errmsg());
        br_buf_free(&dirb);
        return 0;
    }
    const char *dir = br_buf_str(&dirb);
    br_csv_t cs[2];
    memset(cs, 0, sizeof cs);
    pairs_t p = {0};
    br_status s = load_pairs(dir, cs, &p);
    nltk_t nk = {0};
    signal(SIGPIPE, SIG_IGN); /* a child that died (no nltk) must fail a write, not kill us */
    bool have_nltk = !no_nltk && s == BR_OK && nltk_start(&nk, dir);
    const char *metric[2] = {"window", "trunc"};
    double rate[2][100], nrate[2][100], ratio[2][100], sum[2] = {0}, nsum[2] = {0};
    for (int r = 0; s == BR_OK && r < rounds; r++)
        for (int m = 0; s == BR_OK && m < 2; m++) {
            s = time_metric(&p, m == 1, min_s, &rate[m][r], &sum[m]);
            if (s == BR_OK && have_nltk) {
                have_nltk = nltk_round(&nk, metric[m], min_s, &nrate[m][r], &nsum[m]);
                if (have_nltk) ratio[m][r] = rate[m][r] / nrate[m][r];
            }
        }
    if (!no_nltk && !have_nltk && s == BR_OK)
        printf("bench parden: NLTK side unavailable (needs /usr/bin/python3 with python3-nltk, run from the "
               "repository root)\n");
    nltk_stop(&nk);
    br_buf_free(&dirb);
    if (s != BR_OK) {
        free(p.ref);
        free(p.hyp);
        br_csv_free(&cs[0]);
        br_csv_free(&cs[1]);
        return fail_status(s, "bench parden");
    }
    const char *names[2] = {"window-60 (final metric)", "trunc-chars (stored bleu)"};
    printf("PARDEN scoring, %zu stored pairs, 1 thread, pairs per CPU-second, median of %d alternating rounds\n", p.n,
           rounds);
    printf("%-28s %14s %14s %9s  %s\n", "metric", "braid pairs/s", "NLTK pairs/s", "ratio", "checksum (braid / NLTK)");
    double worst = INFINITY;
    for (int m = 0; m < 2; m++) {
        double b = bench_median(rate[m], (size_t)rounds);
        if (have_nltk) {
            double q = bench_median(ratio[m], (size_t)rounds);
            worst = fmin(worst, q);
            printf("%-28s %14.0f %14.0f %8.0fx  %.12g / %.12g%s\n", names[m], b, bench_median(nrate[m], (size_t)rounds), q, sum[m],
                   nsum[m], fabs(sum[m] - nsum[m]) < 1e-9 ? "" : "  MISMATCH");
        } else printf("%-28s %14.0f %14s %9s  %.12g\n", names[m], b, "-", "-", sum[m]);
    }
    if (have_nltk) {
        double lo = INFINITY, hi = 0;
        for (int m = 0; m < 2; m++)
            for (int r = 0; r < rounds; r++) {
                lo = fmin(lo, ratio[m][r]);
                hi = fmax(hi, ratio[m][r]);
            }
        printf("per-round ratios %.0fx..%.0fx; goal >= 100x NLTK (median): %s (worst metric %.0fx)\n", lo, hi,
               worst >= 100 ? "met" : "NOT met", worst);
    }
    free(p.ref);
    free(p.hyp);
    br_csv_free(&cs[0]);
    br_csv_free(&cs[1]);
    return 0;
}
