/* braid rl rfos: R-FOS (tabular opponent shaping, R-max meta-learner) on a matrix game.
 * Writes OUT/log.jsonl (one record per line) and OUT/summary.json. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/buf.h"
#include "commands.h"
#include "base/fileio.h"
#include "base/progress.h"
#include "rl/rfos.h"
#include "rl_cmds.h"

typedef struct {
    FILE *f;
} logctx_t;

static void write_rec(void *p, const br_rfos_log_t *r)
{
    logctx_t *l = p;
    fprintf(l->f, "{\"meta_episode\":%lld,\"meta_steps\":%lld,\"known_pairs\":%lld,\"mean_reward\":%.6f,\"known_event\":%s",
            (long long)r->episode, (long long)r->steps, (long long)r->known, r->mean_reward,
            r->event ? "true" : "false");
    if (r->eps_bad >= 0) fprintf(l->f, ",\"eps_bad_steps\":%lld", (long long)r->eps_bad);
    fputs("}\n", l->f);
}

static void on_progress(void *p, int64_t steps, int64_t known, int64_t pairs)
{
    (void)pairs;
    br_progress_updatef(p, (double)known, "%.3g meta-steps", (double)steps);
}

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }
static json_t *count_or_null(int64_t v) { return v >= 0 ? json_integer(v) : json_null(); }

/* Flags the library's own check cannot judge (names, the meaning of -1); 1 after an error. */
static int check_flags(br_rfos_config_t *c, const char *state, long long seed, long long m)
{
    if (!strcmp(state, "history")) c->kind = BR_RFOS_HISTORY;
    else if (!strcmp(state, "qgrid")) c->kind = BR_RFOS_QGRID;
    else {
        fprintf(stderr, "braid: error: --state must be history or qgrid (got '%s')\n", state);
        return 1;
    }
    if (seed < 0) {
        fprintf(stderr, "braid: error: --seed must be >= 0\n");
        return 1;
    }
    c->seed = (uint64_t)seed;
    c->m = m;
    if (m == 0) {
        fprintf(stderr, "braid: error: --m must be >= 1 (0 would mark every pair known before any sample)\n");
        return 1;
    }
    if (m < -1) {
        fprintf(stderr, "braid: error: --m must be >= 1\n");
        return 1;
    }
    if (!(c->temperature >= 0)) {
        fprintf(stderr, "braid: error: --temperature must be >= 0 (0 is greedy)\n");
        return 1;
    }
    return 0;
}

/* summary.json: the configuration that matters for reading the result, then the result. */
static json_t *summary_json(const br_rfos_config_t *c, const char *state, long long seed,
                            const br_rfos_result_t *r, const br_rfos_brute_t *bf)
{
    json_t *j = json_object();
    json_object_set_new(j, "game", json_string(c->game->name));
    json_object_set_new(j, "state", json_string(state));
    json_object_set_new(j, "history", json_integer(c->history));
    if (c->kind == BR_RFOS_QGRID) json_object_set_new(j, "grid", json_integer(c->grid));
    json_object_set_new(j, "seed", json_integer(seed));
    json_object_set_new(j, "states", json_integer(r->S));
    json_object_set_new(j, "actions", json_integer(r->A));
    json_object_set_new(j, "pairs", json_integer(r->pairs));
    json_object_set_new(j, "reachable_pairs", json_integer(r->reachable_pairs));
    json_object_set_new(j, "m", json_integer(r->m));
    json_object_set_new(j, "gamma", json_real(c->gamma));
    json_object_set_new(j, "temperature", json_real(c->temperature));
    json_object_set_new(j, "meta_steps", json_integer(r->steps));
    json_object_set_new(j, "meta_episodes", json_integer(r->episodes));
    json_object_set_new(j, "samples_to_all_known", count_or_null(r->samples_to_all_known));
    json_object_set_new(j, "samples_to_near_optimal", count_or_null(r->samples_to_near_optimal));
    json_object_set_new(j, "samples_to_near_final", count_or_null(r->samples_to_near_final));
    json_object_set_new(j, "near_tol", json_real(c->near_tol));
    json_object_set_new(j, "epsilon", json_real(c->epsilon));
    json_object_set_new(j, "eps_bad_steps", count_or_null(r->eps_bad_steps));
    json_object_set_new(j, "eps_bad_after_known", count_or_null(r->eps_bad_after_known));
    json_object_set_new(j, "eps_censored", r->eps_bad_steps >= 0 ? json_boolean(r->eps_censored) : json_null());
    json_object_set_new(j, "final_mean_reward", num_or_null(r->final_mean_reward));
    json_object_set_new(j, "greedy_mean_reward", num_or_null(r->greedy_mean_reward));
    json_object_set_new(j, "optimal_mean_reward", num_or_null(r->optimal_mean_reward));
    json_object_set_new(j, "optimal_how", json_string(r->optimal_how));
    json_object_set_new(j, "upper_bound_mean_reward", num_or_null(r->upper_bound_mean_reward));
    json_object_set_new(j, "optimal_value", num_or_null(r->optimal_value));
    json_object_set_new(j, "policy_value", num_or_null(r->policy_value));
    json_object_set_new(j, "model_value", num_or_null(r->model_value));
    json_object_set_new(j, "vi_runs", json_integer(r->vi_runs));
    json_object_set_new(j, "vi_sweeps", json_integer(r->vi_sweeps));
    json_object_set_new(j, "wall_s", json_real(r->wall_s));
    json_object_set_new(j, "meta_steps_per_s", json_real(r->meta_steps_per_s));
    json_object_set_new(j, "cpu_s", json_real(r->cpu_s));
    json_object_set_new(j, "meta_steps_per_cpu_s", json_real(r->meta_steps_per_cpu_s));
    if (bf) {
        json_object_set_new(j, "brute_force_policies", json_integer(bf->policies));
        json_object_set_new(j, "brute_force_best_mean_reward", json_real(bf->best_mean_reward));
        json_object_set_new(j, "brute_force_best_stderr", json_real(bf->best_stderr));
        json_object_set_new(j, "brute_force_best_policy", json_integer((json_int_t)bf->best_policy));
    }
    return j;
}

int rl_rfos(int argc, char **argv)
{
    br_rfos_config_t c;
    br_rfos_config_default(&c);
    const char *game = "matching-pennies", *state = "history", *out = NULL;
    long long m = -1, seed = 1, max_steps = c.max_steps, after_known = c.after_known,
              eval_steps = c.eval_steps, block = c.block, log_every = c.log_every, brute = 0;
    bool greedy = false;
    const opt_t opts[] = {
        {"game", OPT_STR, &game, "NAME", "inner one-shot game: matching-pennies (default), ipd, chicken, stag-hunt, battle-of-the-sexes", false},
        {"state", OPT_STR, &state, "KIND", "meta-state: history (last h joint actions, default) or qgrid (opponent's Q-table on a grid)", false},
        {"history", OPT_INT, &c.history, "H", "h: joint actions in the meta-state, |S| = 4^h (default 2)", false},
        {"grid", OPT_INT, &c.grid, "K", "qgrid: Q-values rounded to multiples of 1/K, |S| = (K+1)^2 (default 4)", false},
        {"action-levels", OPT_INT, &c.action_levels, "N", "meta-actions: N mixed strategies P(action 1) = i/(N-1); 2 = pure actions (default 2)", false},
        {"seed", OPT_LONG, &seed, "N", "random seed (default 1)", false},
        {"m", OPT_LONG, &m, "N", "R-max known threshold (default floor(|S| ln(1/delta) / (epsilon (1-gamma))^2))", false},
        {"gamma", OPT_DOUBLE, &c.gamma, "G", "meta discount (default 0.8)", false},
        {"epsilon", OPT_DOUBLE, &c.epsilon, "E", "R-max accuracy epsilon for m (default 0.2)", false},
        {"delta", OPT_DOUBLE, &c.delta, "D", "R-max failure probability delta for m (default 0.2)", false},
        {"rmax", OPT_DOUBLE, &c.rmax, "R", "largest meta-reward; optimistic value rmax/(1-gamma) (default 1)", false},
        {"temperature", OPT_DOUBLE, &c.temperature, "T", "Boltzmann action-choice temperature (default 0.25)", false},
        {"greedy", OPT_BOOL, &greedy, NULL, "greedy action choice instead of Boltzmann", false},
        {"episode-len", OPT_INT, &c.episode_len, "N", "meta-steps per meta-episode (default 10)", false},
        {"opp-epsilon", OPT_DOUBLE, &c.opp_epsilon, "E", "opponent Q-learner exploration (default 0.1)", false},
        {"opp-q0", OPT_DOUBLE, &c.opp_q0, "Q", "opponent initial Q (default 0.5)", false},
        {"opp-alpha", OPT_DOUBLE, &c.opp_alpha, "A", "opponent learning rate: Q <- a r + (1-a) Q (default 0.75)", false},
        {"max-steps", OPT_LONG, &max_steps, "N", "cap on training meta-steps (default 2e10)", false},
        {"after-known", OPT_LONG, &after_known, "N", "meta-steps to keep training once every pair is known (default 1e6)", false},
        {"eval-steps", OPT_LONG, &eval_steps, "N", "greedy evaluation meta-steps after training (default 1e6)", false},
        {"block", OPT_LONG, &block, "N", "meta-steps per block of the near-optimal check (default 10000)", false},
        {"near-tol", OPT_DOUBLE, &c.near_tol, "X", "near-optimal: a block's mean reward >= optimal - X (default 0.05)", false},
        {"log-every", OPT_LONG, &log_every, "N", "log record every N meta-steps (default 0: geometric spacing)", false},
        {"vi-tol", OPT_DOUBLE, &c.vi_tol, "X", "value iteration stops when max |dV| < X (default 1e-6)", false},
        {"brute-force", OPT_LONG, &brute, "N", "history h <= 2: also find the best deterministic policy by simulating all 2^(4^h) for N meta-steps (the 16 best; the rest N/64)", false},
        {"out", OPT_STR, &out, "DIR", "output directory: log.jsonl and summary.json", true},
    };
    cmd_spec_t spec = {"braid rl rfos --out DIR [options]",
                       "R-FOS: the shaper learns, with R-max on a tabular meta-MDP, to steer an "
                       "epsilon-greedy Q-learner in a repeated matrix game.  One meta-step is one "
                       "round of the inner game.  Writes DIR/log.jsonl (meta_episode, meta_steps, "
                       "known_pairs, mean_reward) and DIR/summary.json (samples_to_all_known, "
                       "samples_to_near_optimal, final/greedy/optimal mean reward, wall_s, "
                       "meta_steps_per_s).  Defaults are the paper's reference configuration.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    br_status st = br_game_find(game, &c.game);
    if (st) return fail_status(st, "rl rfos");
    if (check_flags(&c, state, seed, m)) return 2;
    if (greedy) c.temperature = 0;
    c.max_steps = max_steps;
    c.after_known = after_known;
    c.eval_steps = eval_steps;
    c.block = block;
    c.log_every = log_every;
    int64_t S, A;
    uint32_t mm;
    if ((st = br_rfos_check(&c, &S, &A, &mm))) return fail_status(st, "rl rfos");
    if (brute && (st = br_rfos_brute_check(&c, brute))) return fail_status(st, "rl rfos --brute-force");
    if ((st = br_mkdir_p(out))) return fail_status(st, "rl rfos");
    br_buf_t path = BR_BUF_INIT;
    br_atomic_file_t af;
    st = br_buf_path(&path, out, "log.jsonl");
    if (!st) st = br_atomic_open(&af, br_buf_str(&path));
    br_buf_free(&path);
    if (st) return fail_status(st, "rl rfos");
    logctx_t lc = {af.f};
    br_progress_t pb;
    br_progress_start(&pb, "rfos known pairs", (double)(S * A), "pairs");
    br_rfos_result_t r;
    st = br_rfos_run(&c, write_rec, &lc, on_progress, &pb, &r);
    br_progress_finish(&pb);
    if (st) {
        br_atomic_abort(&af);
        return fail_status(st, "rl rfos");
    }
    if ((st = br_atomic_commit(&af))) return fail_status(st, "rl rfos");
    br_rfos_brute_t bf;
    if (brute > 0 && (st = br_rfos_brute_force(&c, brute, &bf))) return fail_status(st, "rl rfos --brute-force");

    json_t *j = summary_json(&c, state, seed, &r, brute > 0 ? &bf : NULL);
    char *txt = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(8));
    json_decref(j);
    if (!txt) {
        fprintf(stderr, "braid: error: rl rfos: out of memory\n");
        return 1;
    }
    size_t len = strlen(txt);
    st = br_buf_path(&path, out, "summary.json");
    if (!st) st = br_write_file_atomic(br_buf_str(&path), txt, len);
    br_buf_free(&path);
    if (!st) printf("%s\n", txt);
    free(txt);
    if (st) return fail_status(st, "rl rfos");
    print_plot_hint(out);
    return 0;
}
