/* Training runs measured in *real* environment steps, shared by `braid rl vdn|qmix` (model-free
 * value decomposition) and `braid rl marco`.  Each run writes, in its output folder:
 *   log.jsonl     one line per evaluation: {"real_steps", "eval_return", "eval_std", ...}
 *                 (rewritten atomically after every evaluation; no wall-clock fields, so the
 *                 same seed gives the same file)
 *   summary.json  method, task, seed, budget, final / best evaluation return, wall time,
 *                 the configuration */
#ifndef BR_RL_VDN_RUN_H
#define BR_RL_VDN_RUN_H
#include <stdbool.h>
#include <stdint.h>
#include "base/status.h"
#include "rl/qmix.h"

typedef struct {
    const char *env;        /* task name */
    int n_agents;           /* <= 0: the task's default */
    long real_steps;        /* budget of real environment steps (evaluation not counted) */
    uint64_t seed;
    const char *out_dir;
    br_mixer_kind mixer;
    int envs;               /* real environments collected in parallel (4) */
    int updates_per_collect;/* gradient steps per collected batch (4 = one per episode) */
    int batch;              /* episodes per gradient step (32) */
    int buffer;             /* replay capacity in episodes (5000) */
    int target_every;       /* gradient steps between target copies (200) */
    int hidden;             /* GRU width (64) */
    float lr;               /* 5e-4 */
    long eps_anneal;        /* real steps over which epsilon goes 1.0 -> 0.05 (<= 0: auto) */
    long eval_every;        /* real steps between evaluations (0: budget / 20; MARCO: 0 =
                             * after every iteration, else the first iteration end past each
                             * multiple, and always the last) */
    int eval_episodes;      /* greedy episodes per evaluation (64) */
    bool quiet;             /* no progress bar */
} br_vd_run_config_t;

/* Evaluation episodes draw their epsilon coin flips from this stream of the run seed and play
 * in their own environments (seed ^ 0xe7a1): evaluating never moves the training stream. */
#define BR_EVAL_STREAM 0x6576u

br_vd_run_config_t br_vd_run_defaults(void);
/* Checks the configuration and the task before any work (unknown task, fewer than 2 agents,
 * a budget smaller than one training batch of full episodes, bad numbers). */
br_status br_vd_run_check(const br_vd_run_config_t *c);
/* Model-free VDN/QMIX in the real environment. */
br_status br_vd_run(const br_vd_run_config_t *c);

/* FNV-1a hash of the learner's parameters: summary.json's "param_hash", which tells whether
 * two runs trained identically. */
struct br_vd;
uint64_t br_vd_param_hash(struct br_vd *vd);

/* ---- run log shared with MARCO ---- */
typedef struct br_runlog br_runlog_t;
br_status br_runlog_open(br_runlog_t **out, const char *dir);
/* Appends one evaluation line and rewrites log.jsonl atomically.  extra: a JSON object text
 * of further fields ("{}" or NULL for none). */
br_status br_runlog_add(br_runlog_t *l, long real_steps, double eval_return, double eval_std,
                        const char *extra);
/* Writes summary.json (atomically) from a JSON object text of run-specific fields, adding the
 * final and best evaluation returns.  Frees the log. */
br_status br_runlog_close(br_runlog_t *l, const char *summary_fields);
void br_runlog_free(br_runlog_t *l);
#endif
