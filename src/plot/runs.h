/* Plots of run folders (`braid plot`): one SVG for one or several runs of the same kind.
 *
 *   LM runs (braid train, branch: DIR/train_log.jsonl, lm/train.h): loss against training
 *       tokens (train, smoothed over a faint raw line, and validation per domain), learning
 *       rate, tokens/s and (MoE runs) the load-balancing loss below it on the same x axis;
 *       with routing data (the JSON of
 *       `braid eval --json` of an MoE: opts.routing, or DIR/eval.json) one heat map per layer
 *       of the share of each domain's tokens sent to each FFN expert.
 *   RL runs (braid rl ...: DIR/log.jsonl): vdn, qmix, marco: greedy return (± std) against
 *       real environment steps; rfos: mean reward and known pairs against meta-steps (log
 *       axis: the log is geometrically spaced); mfos: shaper's and opponent's payoffs per
 *       iteration.
 *
 * The logs are read by field name; lines that are not a record of the run's kind (a partial
 * last line of a run in progress, a corrupted line) are skipped and counted, never fatal.
 * The library prints nothing: the counts come back in br_plot_info_t. */
#ifndef BR_PLOT_RUNS_H
#define BR_PLOT_RUNS_H
#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

typedef enum { BR_RUN_LM, BR_RUN_RL_RETURN, BR_RUN_RFOS, BR_RUN_MFOS } br_run_kind;

typedef struct {
    const char *out;     /* the SVG to write (atomically) */
    bool logx;           /* log10 x axis (tokens, steps); rfos runs always use one */
    bool logy;           /* log10 y axis for the loss / return panel */
    double smooth;       /* train-loss smoothing: EMA span as a fraction of the steps (0: 0.05) */
    const char *routing; /* braid eval --json of an MoE, or NULL: RUN/eval.json when present */
    const char *title;   /* NULL: the run names */
} br_plot_opts_t;

typedef struct {
    br_run_kind kind;
    size_t runs;
    size_t series;           /* labelled series of the main panel (loss or return) */
    size_t points;           /* records plotted, all runs */
    size_t skipped;          /* malformed lines skipped, all runs */
    char first_skipped[512]; /* "DIR/train_log.jsonl:7" of the first skipped line ("" when none) */
    size_t heatmaps;         /* routing heat maps drawn (one per MoE layer) */
    bool moe_panel;          /* the MoE load-balancing loss was drawn (a run's log has it) */
    double x0, x1, y0, y1;   /* axis ranges of the main panel */
} br_plot_info_t;

/* Reads the n run folders and writes the plot to opts->out; info (may be NULL) says what was
 * drawn.  Errors name the folder: not found, not a run folder (neither log), a log with no
 * records, runs of different kinds, unreadable routing data. */
br_status br_plot_runs(const char *const *dirs, size_t n, const br_plot_opts_t *opts, br_plot_info_t *info);

/* The log a run folder's plot reads (DIR/train_log.jsonl or DIR/log.jsonl) into path, or
 * BR_ENOTFOUND when it has neither. */
br_status br_plot_log_path(const char *dir, char *path, size_t cap);

/* A name for the kind ("LM training", "rl vdn/qmix/marco", "rl rfos", "rl mfos"). */
const char *br_run_kind_name(br_run_kind k);
#endif
