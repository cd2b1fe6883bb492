/* braid rl mfos: M-FOS (meta-game opponent shaping, ES or PPO) on an iterated matrix game.
 * Writes OUT/log.jsonl (per iteration: shaper's and opponent's mean per-step payoffs) and
 * OUT/summary.json (final evaluation, baselines, the extortion check). */
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
#include "rl/mfos.h"
#include "rl_cmds.h"

static void write_rec(void *p, const br_mfos_log_t *r)
{
    fprintf((FILE *)p, "{\"iteration\":%d,\"shaper\":%.6f,\"opponent\":%.6f,\"wall_s\":%.3f}\n",
            r->iteration, r->shaper, r->opponent, r->wall_s);
}

static void on_progress(void *p, int it, double shaper)
{
    br_progress_updatef(p, it, "shaper %.3f", shaper);
}

static json_t *vec5(const double *v)
{
    json_t *a = json_array();
    for (int i = 0; i < 5; i++) json_array_append_new(a, json_real(v[i]));
    return a;
}

int rl_mfos(int argc, char **argv)
{
    br_mfos_config_t c;
    br_mfos_config_default(&c);
    const char *game = "ipd", *opponent = "naive", *algo = "es", *out = NULL;
    long long seed = 1;
    const opt_t opts[] = {
        {"game", OPT_STR, &game, "NAME", "iterated game: ipd (default), matching-pennies, chicken, stag-hunt, battle-of-the-sexes", false},
        {"opponent", OPT_STR, &opponent, "KIND", "opponent learner: naive (default) or lola", false},
        {"algo", OPT_STR, &algo, "NAME", "meta-learner: es (default) or ppo", false},
        {"iterations", OPT_INT, &c.iterations, "N", "ES generations / PPO updates (default 150)", false},
        {"batch", OPT_INT, &c.batch, "N", "games per meta-episode batch (default 16)", false},
        {"meta-len", OPT_INT, &c.meta_len, "N", "meta-steps (opponent updates) per meta-episode (default 50)", false},
        {"population", OPT_INT, &c.population, "N", "ES perturbations per generation, even (default 32)", false},
        {"sigma", OPT_DOUBLE, &c.sigma, "S", "ES perturbation scale (default 0.1)", false},
        {"lr", OPT_DOUBLE, &c.lr, "LR", "AdamW learning rate (default 0.03; use ~3e-4 with ppo)", false},
        {"hidden", OPT_INT, &c.hidden, "N", "width of the shaper's two hidden layers (default 32)", false},
        {"ppo-epochs", OPT_INT, &c.ppo_epochs, "N", "PPO epochs per update (default 4)", false},
        {"ppo-minibatch", OPT_INT, &c.ppo_minibatch, "N", "PPO minibatch rows (default 256)", false},
        {"opp-lr", OPT_DOUBLE, &c.opp_lr, "LR", "opponent's gradient step size (default 1)", false},
        {"gamma", OPT_DOUBLE, &c.gamma, "G", "inner-game discount (default 0.96)", false},
        {"eval-games", OPT_INT, &c.eval_games, "N", "fresh opponents in the final evaluation (default 256)", false},
        {"seed", OPT_LONG, &seed, "N", "random seed (default 1)", false},
        {"out", OPT_STR, &out, "DIR", "output directory: log.jsonl and summary.json", true},
    };
    cmd_spec_t spec = {"braid rl mfos --out DIR [options]",
                       "M-FOS: a shaper network on the meta-state (both players' memory-1 "
                       "policies) learns, by ES or PPO, to set its memory-1 policy each meta-step "
                       "so that a learning opponent (naive gradient or LOLA, exact gradients) ends "
                       "up where the shaper wants.  Inner values are exact (4x4 solve, discount "
                       "0.96).  Reports the shaper's and opponent's per-step payoffs, naive and "
                       "LOLA baselines on the same opponents, and the extortion check (shaper "
                       "above mutual cooperation and above the opponent).",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    br_status st = br_game_find(game, &c.game);
    if (st) return fail_status(st, "rl mfos");
    if ((st = br_learner_parse(opponent, &c.opponent))) return fail_status(st, "rl mfos --opponent");
    if (!strcmp(algo, "es")) c.algo = BR_MFOS_ES;
    else if (!strcmp(algo, "ppo")) c.algo = BR_MFOS_PPO;
    else {
        fprintf(stderr, "braid: error: --algo must be es or ppo (got '%s')\n", algo);
        return 2;
    }
    if (seed < 0) {
        fprintf(stderr, "braid: error: --seed must be >= 0\n");
        return 2;
    }
    c.seed = (uint64_t)seed;
    if ((st = br_mfos_check(&c))) return fail_status(st, "rl mfos");
    if ((st = br_mkdir_p(out))) return fail_status(st, "rl mfos");
    br_buf_t path = BR_BUF_INIT;
    br_atomic_file_t af;
    st = br_buf_path(&path, out, "log.jsonl");
    if (!st) st = br_atomic_open(&af, br_buf_str(&path));
    br_buf_free(&path);
    if (st) return fail_status(st, "rl mfos");
    br_progress_t pb;
    br_progress_start(&pb, c.algo == BR_MFOS_ES ? "mfos es" : "mfos ppo", c.iterations, "it");
    br_mfos_result_t r;
    st = br_mfos_run(&c, write_rec, af.f, on_progress, &pb, &r);
    br_progress_finish(&pb);
    if (st) {
        br_atomic_abort(&af);
        return fail_status(st, "rl mfos");
    }
    if ((st = br_atomic_commit(&af))) return fail_status(st, "rl mfos");
    json_t *j = json_object();
    json_object_set_new(j, "game", json_string(c.game->name));
    json_object_set_new(j, "opponent", json_string(opponent));
    json_object_set_new(j, "algo", json_string(algo));
    json_object_set_new(j, "seed", json_integer(seed));
    json_object_set_new(j, "iterations", json_integer(c.iterations));
    json_object_set_new(j, "batch", json_integer(c.batch));
    json_object_set_new(j, "meta_len", json_integer(c.meta_len));
    json_object_set_new(j, "shaper_payoff", json_real(r.shaper));
    json_object_set_new(j, "opponent_payoff", json_real(r.opponent));
    json_object_set_new(j, "shaper_payoff_last", json_real(r.shaper_last));
    json_object_set_new(j, "opponent_payoff_last", json_real(r.opponent_last));
    json_object_set_new(j, "shaper_policy_last", vec5(r.shaper_policy));
    json_object_set_new(j, "opponent_policy_last", vec5(r.opponent_policy));
    json_object_set_new(j, "naive_shaper_payoff", json_real(r.naive_shaper));
    json_object_set_new(j, "naive_opponent_payoff", json_real(r.naive_opponent));
    json_object_set_new(j, "lola_shaper_payoff", json_real(r.lola_shaper));
    json_object_set_new(j, "lola_opponent_payoff", json_real(r.lola_opponent));
    json_object_set_new(j, "mutual_cooperation_payoff", json_real(r.mutual_cooperation));
    json_object_set_new(j, "extortion", json_boolean(r.extortion));
    json_object_set_new(j, "wall_s", json_real(r.wall_s));
    json_object_set_new(j, "inner_games_per_s", json_real(r.inner_games_per_s));
    char *txt = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(j);
    if (!txt) {
        fprintf(stderr, "braid: error: rl mfos: out of memory\n");
        return 1;
    }
    st = br_buf_path(&path, out, "summary.json");
    if (!st) st = br_write_file_atomic(br_buf_str(&path), txt, strlen(txt));
    br_buf_free(&path);
    if (!st) printf("%s\n", txt);
    free(txt);
    if (st) return fail_status(st, "rl mfos");
    print_plot_hint(out);
    return 0;
}
