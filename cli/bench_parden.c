/* braid bench parden: PARDEN scoring throughput (pairs/s) on the 1,072 stored history pairs,
 * braid vs NLTK (bench/parden_nltk.py under /usr/bin/python3) in the same run, one thread
 * each, with a checksum (sum of scores) showing both did the same work.  Goal: >= 100x NLTK.
 * Skips (exit 0) when ../shared/data/parden is absent. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    char path[4200];
    size_t total = 0, co[2], cr[2];
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, "%s/history/71add30/%s", dir, files[f]);
        BR_TRY(br_csv_read(path, &cs[f]));
        BR_TRY(br_csv_column(&cs[f], cols[f], path, &co[f]));
        BR_TRY(br_csv_column(&cs[f], "repeated", path, &cr[f]));
        total += cs[f].nrows;
    }
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

/* pairs/s of one metric, repeated until min_s seconds passed; *sum = sum of one pass */
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

int bench_parden(int argc, char **argv)
{
    double min_s = 2.0;
    bool no_nltk = false;
    const opt_t opts[] = {
        {"seconds", OPT_DOUBLE, &min_s, "S", "minimum timing per metric and side (default 2)", false},
        {"no-nltk", OPT_BOOL, &no_nltk, NULL, "skip the NLTK side", false},
    };
    cmd_spec_t spec = {"braid bench parden [options]",
                       "PARDEN scoring throughput on the stored history pairs (60-word window and the early "
                       "character-truncated score), braid vs NLTK 3.8 in the same run, one thread each.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    char dir[4096];
    if (br_parden_data_dir(dir, sizeof dir) != BR_OK) {
        printf("bench parden: skipped (%s)\n", br_errmsg());
        return 0;
    }
    br_csv_t cs[2];
    memset(cs, 0, sizeof cs);
    pairs_t p = {0};
    br_status s = load_pairs(dir, cs, &p);
    double rate[2] = {0}, sum[2] = {0};
    for (int m = 0; s == BR_OK && m < 2; m++) s = time_metric(&p, m == 1, min_s, &rate[m], &sum[m]);
    if (s != BR_OK) {
        free(p.ref);
        free(p.hyp);
        br_csv_free(&cs[0]);
        br_csv_free(&cs[1]);
        return fail_status(s, "bench parden");
    }
    double nrate[2] = {0}, nsum[2] = {0};
    bool have_nltk = false;
    if (!no_nltk) {
        char cmd[4400];
        snprintf(cmd, sizeof cmd, "nice -n 0 /usr/bin/python3 bench/parden_nltk.py '%s' %g", dir, min_s);
        FILE *f = popen(cmd, "r");
        char buf[2048] = "";
        size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        buf[got] = 0;
        if (f) pclose(f);
        json_t *j = json_loads(buf, 0, NULL);
        if (j) {
            nrate[0] = json_number_value(json_object_get(j, "window_pairs_per_s"));
            nsum[0] = json_number_value(json_object_get(j, "window_sum"));
            nrate[1] = json_number_value(json_object_get(j, "trunc_pairs_per_s"));
            nsum[1] = json_number_value(json_object_get(j, "trunc_sum"));
            have_nltk = nrate[0] > 0;
            json_decref(j);
        } else {
            printf("bench parden: NLTK side unavailable (run from the repository root with /usr/bin/python3 + nltk)\n");
        }
    }
    const char *names[2] = {"window-60 (final metric)", "trunc-chars (stored bleu)"};
    printf("PARDEN scoring, %zu stored pairs, 1 thread, pairs per CPU-second\n", p.n);
    printf("%-28s %14s %14s %9s  %s\n", "metric", "braid pairs/s", "NLTK pairs/s", "ratio", "checksum (braid / NLTK)");
    for (int m = 0; m < 2; m++) {
        if (have_nltk)
            printf("%-28s %14.0f %14.0f %8.0fx  %.12g / %.12g%s\n", names[m], rate[m], nrate[m], rate[m] / nrate[m],
                   sum[m], nsum[m], fabs(sum[m] - nsum[m]) < 1e-9 ? "" : "  MISMATCH");
        else printf("%-28s %14.0f %14s %9s  %.12g\n", names[m], rate[m], "-", "-", sum[m]);
    }
    if (have_nltk) {
        double worst = fmin(rate[0] / nrate[0], rate[1] / nrate[1]);
        printf("goal >= 100x NLTK: %s (worst %.0fx)\n", worst >= 100 ? "met" : "NOT met", worst);
    }
    free(p.ref);
    free(p.hyp);
    br_csv_free(&cs[0]);
    br_csv_free(&cs[1]);
    return 0;
}
