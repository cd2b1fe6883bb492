/* braid plot (plot/runs.h, plot/chart.h, base/svg.h): nice ticks; plots of real run folders
 * written in this test by tiny `braid train`, `braid lora-train` and `braid rl` runs (one LM
 * run, two on one chart, a log with malformed lines, a LoRA adapter, an rfos, a vdn and an mfos
 * run); the SVG parses as XML (python3's
 * xml.etree), has the expected series and legend labels, and its axes contain the data; MoE
 * routing heat maps from an eval JSON; errors for what is not a run; the training commands
 * print the plot command at their end. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/svg.h"
#include "harness.h"
#include "plot/runs.h"
#include "shard_fixture.h"
#include "shell_fixture.h"

static char tmp[64];
static const char *braid;

static void test_ticks(void)
{
    double t[32], lo = 0.13, hi = 0.97;
    size_t n = br_svg_ticks(&lo, &hi, t, 6);
    CHECK(n >= 3 && n <= 6);
    CHECK(lo <= 0.13 && hi >= 0.97 && t[0] == lo && t[n - 1] == hi);
    for (size_t i = 1; i < n; i++) CHECK_NEAR(t[i] - t[i - 1], t[1] - t[0], 1e-12);
    CHECK_NEAR(t[1] - t[0], 0.2, 1e-12);
    lo = 2048, hi = 40960;
    n = br_svg_ticks(&lo, &hi, t, 8);
    CHECK(lo <= 2048 && hi >= 40960 && n <= 8 && n >= 3);
    lo = 0, hi = 616; /* room for 8 ticks: steps of 100, not 200 */
    n = br_svg_ticks(&lo, &hi, t, 8);
    CHECK(lo == 0 && hi == 700 && n == 8);
    lo = hi = 3; /* one value */
    n = br_svg_ticks(&lo, &hi, t, 6);
    CHECK(n >= 2 && lo < 3 && hi > 3);
    lo = 30, hi = 2e6; /* powers of ten inside the range, which stays the data's */
    n = br_svg_log_ticks(&lo, &hi, t, 32);
    CHECK(lo == 30 && hi == 2e6 && n == 5 && t[0] == 100 && t[4] == 1e6);
    lo = 3, hi = 80; /* under three decades: 1, 2, 5 steps */
    n = br_svg_log_ticks(&lo, &hi, t, 32);
    CHECK(n == 4 && t[0] == 5 && t[1] == 10 && t[2] == 20 && t[3] == 50);
    lo = 3, hi = 4; /* no 1-2-5 value inside: the ends */
    n = br_svg_log_ticks(&lo, &hi, t, 32);
    CHECK(n == 2 && t[0] == 3 && t[1] == 4);
    char lab[32];
    br_svg_tick_label(lab, sizeof lab, 40000);
    CHECK_STR(lab, "40k");
    br_svg_tick_label(lab, sizeof lab, 2.5e6);
    CHECK_STR(lab, "2.5M");
    br_svg_tick_label(lab, sizeof lab, 0.25);
    CHECK_STR(lab, "0.25");
    br_svg_tick_label(lab, sizeof lab, 5e-4);
    CHECK_STR(lab, "0.0005");
    br_svg_tick_label(lab, sizeof lab, 3e-5);
    CHECK_STR(lab, "3e-05");
}

/* Escaping: the document stays well-formed whatever the text. */
static void test_svg_escape(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/escape.svg", tmp);
    br_svg_t s;
    br_svg_begin(&s, 100, 50);
    br_svg_text(&s, 1, 20, BR_SVG_START, 12, 0, "#000", "a < b & c > \"d\" \x01");
    br_svg_line(&s, 0, 0, 10, 10, "#000", 1, "4,2");
    CHECK_OK(br_svg_save(&s, path));
    CHECK_INT(sh("/usr/bin/python3 -c 'import sys,xml.etree.ElementTree as E; E.parse(sys.argv[1])' %s", path), 0);
}

/* python3 reads the SVG: prints "series=N legend=L1|L2|..." of the first panel into OUT. */
static bool svg_summary(const char *svg, char *out, size_t cap)
{
    char cmd[2048], res[600];
    snprintf(res, sizeof res, "%s.summary", svg);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c '\n"
             "import sys, xml.etree.ElementTree as E\n"
             "ns = \"{http://www.w3.org/2000/svg}\"\n"
             "root = E.parse(sys.argv[1]).getroot()\n"
             "p = [g for g in root.iter(ns + \"g\") if g.get(\"class\") == \"panel\"][0]\n"
             "s = [g for g in p if g.get(\"class\") == \"series\"]\n"
             "leg = [t.text for g in p if g.get(\"class\") == \"legend\" for t in g.iter(ns + \"text\")]\n"
             "hm = [g for g in root.iter(ns + \"g\") if g.get(\"class\") == \"heatmap\"]\n"
             "print(\"series=%%d heatmaps=%%d legend=%%s\" %% (len(s), len(hm), \"|\".join(leg)))\n"
             "' %s > %s 2>&1",
             svg, res);
    bool ok = sh("%s", cmd) == 0;
    out[0] = 0;
    char *text;
    size_t n;
    if (!br_read_file(res, &text, &n)) {
        snprintf(out, cap, "%s", text);
        free(text);
    }
    if (!ok) fprintf(stderr, "svg check of %s: %s\n", svg, out);
    return ok;
}

/* Range of the loss (or tokens) of the step records of a train log. */
static void log_range(const char *dir, const char *key, double *lo, double *hi)
{
    char path[512], *text;
    size_t n;
    *lo = HUGE_VAL, *hi = -HUGE_VAL;
    snprintf(path, sizeof path, "%s/train_log.jsonl", dir);
    if (br_read_file(path, &text, &n)) return;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL), *v = json_object_get(j, key);
        if (json_is_number(v)) *lo = fmin(*lo, json_number_value(v)), *hi = fmax(*hi, json_number_value(v));
        json_decref(j);
    }
    free(text);
}

/* Plots the one run folder dir into out (routing: an eval JSON or NULL). */
static br_status plot1(const char *dir, const char *out, const char *routing, br_plot_info_t *info)
{
    br_plot_opts_t o = {out, false, false, 0, routing, NULL};
    const char *one[] = {dir};
    return br_plot_runs(one, 1, &o, info);
}

static void test_lm_runs(void)
{
    char a[128], b[128], out[256], sum[1024];
    snprintf(a, sizeof a, "%s/run-a", tmp);
    snprintf(b, sizeof b, "%s/run-b", tmp);
    br_plot_opts_t o = {out, false, false, 0, NULL, NULL};
    br_plot_info_t info;
    snprintf(out, sizeof out, "%s/a.svg", tmp);
    CHECK_OK(plot1(a, out, NULL, &info));
    CHECK_INT(info.kind, BR_RUN_LM);
    CHECK_INT(info.series, 4); /* train, val gpl, val mpl, val mean */
    CHECK_INT(info.points, 16 + 4);
    CHECK_INT(info.skipped, 0);
    CHECK_INT(info.heatmaps, 0);
    CHECK(!info.moe_panel); /* a dense model */
    double lo, hi;
    log_range(a, "tokens", &lo, &hi);
    CHECK(lo >= info.x0 && hi <= info.x1 && hi > lo);
    log_range(a, "loss", &lo, &hi);
    CHECK(lo >= info.y0 && hi <= info.y1 && hi > lo);
    CHECK_MSG(info.y1 - info.y0 < 3 * (hi - lo) + 1, "loss axis %g..%g far wider than the data %g..%g", info.y0,
              info.y1, lo, hi);
    CHECK(svg_summary(out, sum, sizeof sum));
    CHECK_MSG(strstr(sum, "series=4 heatmaps=0 legend=train|val gpl|val mpl|val mean") != NULL, "%s", sum);

    const char *two[] = {a, b};
    snprintf(out, sizeof out, "%s/ab.svg", tmp);
    o.logx = true;
    CHECK_OK(br_plot_runs(two, 2, &o, &info));
    CHECK_INT(info.runs, 2);
    CHECK_INT(info.series, 8);
    CHECK(info.x0 > 0);
    CHECK(svg_summary(out, sum, sizeof sum));
    CHECK_MSG(strstr(sum, "series=8") && strstr(sum, "legend=run-a train|run-a val gpl") && strstr(sum, "|run-b train|"),
              "%s", sum);
}

/* lora-train keeps the trainer's log beside its adapter: train loss per step, validation over
 * the mix before and after. */
static void test_lora_run(void)
{
    char dir[128], out[256], sum[1024];
    snprintf(dir, sizeof dir, "%s/lora", tmp);
    CHECK_INT(sh("%s lora-train --base %s/run-a --data %s/tok --mix gpl=1 --rank 2 --steps 6 --batch 2 --seq 32 "
                 "--val-batches 1 --out %s > /dev/null 2> %s/lora.err",
                 braid, tmp, tmp, dir, tmp),
              0);
    CHECK_INT(sh("grep -q 'braid plot %s' %s/lora.err", dir, tmp), 0);
    snprintf(out, sizeof out, "%s/lora.svg", tmp);
    br_plot_info_t info;
    CHECK_OK(plot1(dir, out, NULL, &info));
    CHECK_INT(info.kind, BR_RUN_LM);
    CHECK_INT(info.series, 2); /* train, val (over the mix) */
    CHECK_INT(info.points, 6 + 2);
    CHECK_INT(info.skipped, 0);
    CHECK(info.x0 <= 0); /* the validation before training, at 0 tokens */
    CHECK(svg_summary(out, sum, sizeof sum));
    CHECK_MSG(strstr(sum, "legend=train|val\n") != NULL, "%s", sum);
}

/* A 50000-step log: every record read, the lines drawn at most ~2 points per pixel column
 * (the file stays small), the axis still holds the extremes. */
static void test_long_log(void)
{
    char dir[128], path[256], out[256], sum[1024];
    snprintf(dir, sizeof dir, "%s/long", tmp);
    CHECK_OK(br_mkdir_p(dir));
    snprintf(path, sizeof path, "%s/train_log.jsonl", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    const int n = 50000;
    for (int i = 1; i <= n; i++)
        fprintf(f, "{\"step\": %d, \"loss\": %.6f, \"lr\": 0.001, \"tokens\": %d, \"tok_per_s\": 1000}\n", i,
                5.0 - 2.0 * i / n + (i == n / 2 ? 3.0 : 0.3 * sin(i)), 512 * i);
    fclose(f);
    snprintf(out, sizeof out, "%s/long.svg", tmp);
    br_plot_info_t info;
    CHECK_OK(plot1(dir, out, NULL, &info));
    CHECK_INT(info.points, n);
    CHECK(info.y1 >= 5.0 - 1.0 + 3.0); /* the spike at n/2 */
    CHECK(info.x1 >= 512.0 * n);
    char *svg;
    size_t size = 0;
    CHECK_OK(br_read_file(out, &svg, &size));
    if (size) free(svg);
    CHECK_MSG(size < 400000, "a 50000-step plot is %zu bytes", size);
    CHECK(svg_summary(out, sum, sizeof sum));
}

static void test_malformed(void)
{
    char c[128], out[256], sum[1024];
    snprintf(c, sizeof c, "%s/run-c", tmp);
    CHECK_INT(sh("mkdir -p %s && cp %s/run-a/train_log.jsonl %s/ && cd %s && printf 'not json\\n\\n{\"step\": 3}\\n[1,2]\\n"
                 "{\"step\": 17, \"loss\": 2.' >> train_log.jsonl",
                 c, tmp, c, c),
              0);
    snprintf(out, sizeof out, "%s/c.svg", tmp);
    br_plot_info_t info;
    CHECK_OK(plot1(c, out, NULL, &info));
    CHECK_INT(info.skipped, 4);
    char want[256];
    snprintf(want, sizeof want, "%s/train_log.jsonl:21", c); /* 20 good lines, then "not json" */
    CHECK_STR(info.first_skipped, want);
    CHECK_INT(info.points, 20);
    CHECK(svg_summary(out, sum, sizeof sum));
    /* the command says so and still writes the plot */
    CHECK_INT(sh("%s plot %s > %s/c.out 2> %s/c.err && grep -q 'skipped 4 malformed log lines' %s/c.err && "
                 "test -s %s/plot.svg",
                 braid, c, tmp, tmp, tmp, c),
              0);
}

static void test_errors(void)
{
    char d[128], out[256];
    snprintf(out, sizeof out, "%s/err.svg", tmp);
    CHECK_STATUS(plot1("/nonexistent/run", out, NULL, NULL), BR_ENOTFOUND);
    CHECK(strstr(br_errmsg(), "no such folder") != NULL);
    snprintf(d, sizeof d, "%s/tok", tmp); /* a folder, but not a run */
    CHECK_STATUS(plot1(d, out, NULL, NULL), BR_ENOTFOUND);
    CHECK(strstr(br_errmsg(), "not a run folder") != NULL);
    snprintf(d, sizeof d, "%s/empty", tmp);
    CHECK_INT(sh("mkdir -p %s && : > %s/train_log.jsonl", d, d), 0);
    CHECK_STATUS(plot1(d, out, NULL, NULL), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "no records yet") != NULL);
    CHECK_INT(sh("printf 'garbage\\n{\"x\": 1}\\n' > %s/train_log.jsonl", d), 0);
    CHECK_STATUS(plot1(d, out, NULL, NULL), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "every line is malformed") != NULL);
    char a[128], r[128];
    snprintf(a, sizeof a, "%s/run-a", tmp);
    snprintf(r, sizeof r, "%s/rfos", tmp);
    const char *mixed[] = {a, r};
    br_plot_opts_t o = {out, false, false, 0, NULL, NULL};
    CHECK_STATUS(br_plot_runs(mixed, 2, &o, NULL), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "plot them separately") != NULL);
    CHECK(!br_file_exists(out));
    /* the command: usage and failures */
    CHECK_INT(sh("%s plot --help > %s/help.txt 2>&1 && grep -q -- '--log-x' %s/help.txt && grep -q -- '--routing' %s/help.txt",
                 braid, tmp, tmp, tmp),
              0);
    CHECK_INT(sh("%s plot 2>/dev/null", braid), 2);
    CHECK_INT(sh("%s plot --smooth 0 %s 2>/dev/null", braid, a), 2);
    CHECK_INT(sh("%s plot /nonexistent/run 2> %s/e.txt; test $? = 1 && grep -q 'braid: error: .*no such folder' %s/e.txt",
                 braid, tmp, tmp),
              0);
}

/* A real MoE: the two runs upcycled (BTX), finetuned, evaluated with `braid eval --json` into
 * the run folder; `braid plot` finds RUN/eval.json and draws one heat map per layer. */
static void test_moe_run(const char *train_flags)
{
    char dir[128], out[256], sum[1024];
    snprintf(dir, sizeof dir, "%s/moe-ft", tmp);
    CHECK_INT(sh("%s upcycle --method btx --base %s/run-a --experts %s/run-a,%s/run-b --out %s/moe > /dev/null 2>&1", braid,
                 tmp, tmp, tmp, tmp),
              0);
    CHECK_INT(sh("%s train --init %s/moe %s --steps 4 --lr 1e-3 --out %s 2>/dev/null", braid, tmp, train_flags, dir), 0);
    CHECK_INT(sh("%s eval --model %s --data %s/tok --max-tokens 512 --batch 2 --json %s/eval.json > /dev/null 2>&1", braid,
                 dir, tmp, dir),
              0);
    snprintf(out, sizeof out, "%s/moe.svg", tmp);
    br_plot_info_t info;
    CHECK_OK(plot1(dir, out, NULL, &info));
    CHECK_INT(info.heatmaps, 1); /* the config above has one layer */
    CHECK(info.moe_panel);
    CHECK_INT(info.series, 4);
    CHECK(svg_summary(out, sum, sizeof sum));
    CHECK_MSG(strstr(sum, "heatmaps=1") != NULL, "%s", sum);
}

/* Routing heat maps from the JSON `braid eval --json` writes for an MoE (moe/routing_report.c). */
static void test_routing(void)
{
    char a[128], ev[256], out[256], sum[1024];
    snprintf(a, sizeof a, "%s/run-a", tmp);
    snprintf(ev, sizeof ev, "%s/eval-moe.json", tmp);
    const char *json = "{\"model\": \"m\", \"domains\": {}, \"routing\": {\"layers\": ["
                       "{\"domains\": {\"gpl\": [0.7, 0.2, 0.1], \"mpl\": [0.1, 0.1, 0.8]}, \"load\": [0.4, 0.15, 0.45]},"
                       "{\"domains\": {\"gpl\": [0.5, 0.5, 0.0], \"mpl\": [0.2, 0.3, 0.5]}, \"load\": [0.35, 0.4, 0.25]}],"
                       "\"expert_domains\": [\"gpl\", null, \"mpl\"]}}";
    CHECK_OK(br_write_file_atomic(ev, json, strlen(json)));
    snprintf(out, sizeof out, "%s/routing.svg", tmp);
    br_plot_info_t info;
    CHECK_OK(plot1(a, out, ev, &info));
    CHECK_INT(info.heatmaps, 2);
    CHECK(svg_summary(out, sum, sizeof sum));
    CHECK_MSG(strstr(sum, "heatmaps=2") != NULL, "%s", sum);
    /* a row of the wrong length is refused, naming the file */
    const char *bad = "{\"routing\": {\"layers\": [{\"domains\": {\"gpl\": [0.5, 0.5], \"mpl\": [1.0]}}]}}";
    CHECK_OK(br_write_file_atomic(ev, bad, strlen(bad)));
    CHECK_STATUS(plot1(a, out, ev, &info), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "eval-moe.json") && strstr(br_errmsg(), "domain mpl"));
}

static void test_rl_runs(void)
{
    char out[256], sum[1024];
    /* rfos: mean reward against geometrically spaced meta-steps (log axis) */
    CHECK_INT(sh("%s rl rfos --history 1 --after-known 1000 --eval-steps 1000 --out %s/rfos > /dev/null 2> %s/rfos.err",
                 braid, tmp, tmp),
              0);
    CHECK_INT(sh("grep -q 'braid plot %s/rfos' %s/rfos.err", tmp, tmp), 0);
    /* vdn: greedy return against real steps */
    CHECK_INT(sh("BRAID_QUIET=1 %s rl vdn --env switch --real-steps 600 --batch 8 --hidden 16 --eval-episodes 16 "
                 "--out %s/vdn > /dev/null 2> %s/vdn.err",
                 braid, tmp, tmp),
              0);
    CHECK_INT(sh("grep -q 'braid plot %s/vdn' %s/vdn.err", tmp, tmp), 0);
    /* mfos: the shaper's and the opponent's payoffs per iteration */
    CHECK_INT(sh("BRAID_QUIET=1 %s rl mfos --iterations 5 --batch 4 --population 4 --meta-len 10 --eval-games 8 "
                 "--out %s/mfos > /dev/null 2> %s/mfos.err",
                 braid, tmp, tmp),
              0);
    CHECK_INT(sh("grep -q 'braid plot %s/mfos' %s/mfos.err", tmp, tmp), 0);
    const char *kinds[] = {"rfos", "vdn", "mfos"};
    const br_run_kind want[] = {BR_RUN_RFOS, BR_RUN_RL_RETURN, BR_RUN_MFOS};
    const size_t nseries[] = {1, 1, 2};
    for (int k = 0; k < 3; k++) {
        char dir[128];
        snprintf(dir, sizeof dir, "%s/%s", tmp, kinds[k]);
        snprintf(out, sizeof out, "%s/%s.svg", tmp, kinds[k]);
        br_plot_info_t info;
        CHECK_OK(plot1(dir, out, NULL, &info));
        CHECK_INT(info.kind, want[k]);
        CHECK_INT(info.series, nseries[k]);
        CHECK(info.points >= 2);
        CHECK_INT(info.skipped, 0);
        CHECK(k == 0 ? info.x0 > 0 : info.x0 <= 1); /* rfos: log axis; vdn from step 0, mfos from iteration 1 */
        CHECK(svg_summary(out, sum, sizeof sum));
        CHECK_MSG(strstr(sum, k == 2 ? "series=2 heatmaps=0 legend=shaper|opponent" : "series=1") != NULL, "%s", sum);
    }
}

int main(void)
{
    braid = getenv("BRAID");
    snprintf(tmp, sizeof tmp, "/tmp/braid_plot_XXXXXX");
    if (!mkdtemp(tmp)) {
        SKIP("mkdtemp failed");
        return th_exit();
    }
    test_ticks();
    test_svg_escape();
    if (!braid) {
        SKIP("BRAID not set: run-folder checks need `make test`");
    } else if (!write_license_domain(tmp, "gpl", "GPL-3") || !write_license_domain(tmp, "mpl", "MPL-1.1")) {
        SKIP("/usr/share/common-licenses not available");
    } else {
        char path[512];
        snprintf(path, sizeof path, "%s/cfg.json", tmp);
        const char *cfg = "{\"vocab_size\": 256, \"hidden_size\": 32, \"intermediate_size\": 64, "
                          "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 2, "
                          "\"max_position_embeddings\": 32, \"rms_norm_eps\": 1e-5}";
        CHECK_OK(br_write_file_atomic(path, cfg, strlen(cfg)));
        const char *flags = "--data %s/tok --mix gpl=1,mpl=1 --batch 4 --seq 32 --warmup 2 --eval-interval 4 "
                            "--eval-batches 1 --ckpt-interval 0 --threads 1";
        char f[512];
        snprintf(f, sizeof f, flags, tmp);
        setenv("BRAID_QUIET", "1", 1);
        CHECK_INT(sh("%s train --config %s %s --steps 16 --lr 3e-3 --out %s/run-a 2> %s/a.err", braid, path, f, tmp, tmp), 0);
        CHECK_INT(sh("%s train --config %s %s --steps 12 --lr 1e-3 --seed 2 --out %s/run-b 2>/dev/null", braid, path, f, tmp), 0);
        /* the run's last lines say where its log is and how to plot it */
        CHECK_INT(sh("grep -q 'braid: log %s/run-a/train_log.jsonl' %s/a.err && grep -q 'braid plot %s/run-a' %s/a.err",
                     tmp, tmp, tmp, tmp),
                  0);
        test_lm_runs();
        test_malformed();
        test_lora_run();
        test_long_log();
        test_routing();
        test_moe_run(f);
        test_rl_runs();
        test_errors();
    }
    if (!getenv("BRAID_TEST_KEEP")) sh("rm -rf '%s'", tmp);
    else fprintf(stderr, "kept %s\n", tmp);
    return th_exit();
}
