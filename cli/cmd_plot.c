/* braid plot: an SVG of one or several run folders (plot/runs.h), and the hint the training
 * commands print at their end. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "base/fileio.h"
#include "commands.h"
#include "plot/runs.h"

void print_plot_hint(const char *run_dir)
{
    char log[4200];
    if (!run_dir || br_plot_log_path(run_dir, log, sizeof log)) return;
    fprintf(stderr, "braid: log %s\nbraid: plot it with: braid plot %s  (writes %s/plot.svg)\n", log, run_dir, run_dir);
}

int cmd_plot(int argc, char **argv)
{
    const char *out = NULL, *routing = NULL, *title = NULL;
    bool logx = false, logy = false;
    double smooth = 0.05;
    const opt_t opts[] = {
        {"out", OPT_STR, &out, "FILE.svg", "the SVG to write (default: RUN_DIR/plot.svg for one run, plot.svg for several)", false},
        {"log-x", OPT_BOOL, &logx, NULL, "log10 x axis (tokens or steps; helps when early steps matter); rfos always uses one", false},
        {"log-y", OPT_BOOL, &logy, NULL, "log10 y axis for the loss (or return) panel", false},
        {"smooth", OPT_DOUBLE, &smooth, "F", "train-loss smoothing: moving-average span as a fraction of the steps (default 0.05)", false},
        {"routing", OPT_STR, &routing, "EVAL.json", "MoE routing heat maps from `braid eval --json` (default: RUN_DIR/eval.json when present)", false},
        {"title", OPT_STR, &title, "TEXT", "chart title (default: the run names)", false},
    };
    cmd_spec_t spec = {
        "braid plot RUN_DIR... [--out FILE.svg] [options]",
        "Draws run folders as one SVG.  Training runs (braid train, branch, lora-train: RUN_DIR/train_log.jsonl): "
        "loss against training tokens (train loss smoothed over its faint raw curve, validation per "
        "domain), learning rate, tokens/s and (MoE) the load-balancing loss below; with routing data of an MoE (braid eval --json) one "
        "heat map per layer of the share of each domain's tokens sent to each expert.  RL runs (braid rl "
        "vdn, qmix, marco, rfos, mfos: RUN_DIR/log.jsonl): the return (or reward, payoffs) curve.  Several "
        "runs of the same kind share the charts, one colour per run.  Malformed log lines are skipped and "
        "counted.  Colours are the Okabe-Ito colour-blind-safe palette.  Every training command prints the "
        "plot command of its run when it ends.",
        opts, sizeof opts / sizeof *opts, 1, -1};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!(smooth > 0 && smooth <= 1)) {
        fprintf(stderr, "braid: error: --smooth must be in (0, 1]\n");
        return 2;
    }
    char def[4200];
    if (!out && npos == 1) {
        br_status s = br_path_join(def, sizeof def, pos[0], "plot.svg");
        if (s) return fail_status(s, "plot");
        out = def;
    } else if (!out) {
        out = "plot.svg";
    }
    br_plot_opts_t o = {out, logx, logy, smooth, routing, title};
    br_plot_info_t info;
    br_status s = br_plot_runs((const char *const *)pos, (size_t)npos, &o, &info);
    if (s) return fail_status(s, "plot");
    if (info.skipped)
        fprintf(stderr, "braid: warning: skipped %zu malformed log line%s (first: %s)\n", info.skipped,
                info.skipped == 1 ? "" : "s", info.first_skipped);
    printf("wrote %s (%zu run%s, %s, %zu records%s)\n", out, info.runs, info.runs == 1 ? "" : "s",
           br_run_kind_name(info.kind), info.points, info.heatmaps ? ", routing heat maps" : "");
    return 0;
}
