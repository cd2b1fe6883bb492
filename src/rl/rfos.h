/* R-FOS (Fung et al., AAMAS 2024): opponent shaping as a tabular meta-MDP solved by R-max.
 *
 * Inner game: a one-shot 2x2 matrix game (payoffs rescaled to [0, 1] per player).  The
 * opponent is the stateless epsilon-greedy Q-learner of rl/learners.h, never reset.  One
 * meta-step = one inner round: the shaper's meta-action picks its inner action (pure, or one
 * of `action_levels` mixed strategies), the opponent acts and learns, the meta-reward is the
 * shaper's rescaled payoff.  Meta-episodes (episode_len meta-steps) are a unit of logging;
 * nothing is reset between them.
 *
 * Meta-state, two variants:
 *  - BR_RFOS_HISTORY: the last h joint actions, |S| = 4^h (starts at "all (0,0)").  Not exactly
 *    Markov (the opponent's real state is its Q-table), as in the paper.
 *  - BR_RFOS_QGRID: the opponent's Q-table on a grid of step 1/K (K + 1 levels per entry,
 *    |S| = (K+1)^2).  The opponent's Q-values are rounded to the grid after every update, so
 *    this meta-MDP is exactly Markov and known: br_rfos_run solves it by value iteration and
 *    scores R-max's final policy against the exact optimum.
 *
 * The hot loop does one 64-bit xoshiro draw per meta-step, table lookups and no doubles
 * beyond the opponent's Q update (history variant). */
#ifndef BR_RL_RFOS_H
#define BR_RL_RFOS_H
#include <stdint.h>
#include "base/status.h"
#include "rl/games.h"

typedef enum { BR_RFOS_HISTORY, BR_RFOS_QGRID } br_rfos_state_kind;

typedef struct {
    const br_game_t *game;
    br_rfos_state_kind kind;
    int history;           /* h >= 1 (history variant) */
    int grid;              /* K >= 1 (qgrid variant) */
    int action_levels;     /* >= 2; 2 = pure actions, N: P(action 1) in {0, 1/(N-1), ..., 1} */
    double opp_epsilon, opp_q0, opp_alpha;
    double gamma, epsilon, delta, rmax;
    int64_t m;             /* known threshold; < 0: the formula of br_rmax_threshold */
    double temperature;    /* Boltzmann temperature; <= 0: greedy */
    double vi_tol;
    int vi_max_sweeps;
    int episode_len;       /* meta-steps per meta-episode */
    uint64_t seed;
    int64_t max_steps;     /* hard cap on training meta-steps */
    int64_t after_known;   /* meta-steps to keep training once every pair is known */
    int64_t eval_steps;    /* greedy evaluation meta-steps after training (0: none) */
    int64_t block;         /* meta-steps per block for the near-optimal check */
    double near_tol;       /* near-optimal: a block's mean reward >= optimal - near_tol */
    int64_t log_every;     /* a log record every this many meta-steps (0: geometric, x1.25),
                              and at the end of every block in which pairs became known */
    size_t max_bytes;      /* R-max table limit (0: 4 GiB) */
} br_rfos_config_t;

/* Reference defaults (matching pennies, h = 2, R-max gamma 0.8, epsilon 0.2, delta 0.2). */
void br_rfos_config_default(br_rfos_config_t *c);

typedef struct {
    int64_t episode, steps;   /* meta-episodes / meta-steps so far */
    int64_t known;            /* known (state, action) pairs */
    double mean_reward;       /* mean meta-reward since the previous record */
    int event;                /* 1: pairs became known since the previous record */
    int64_t eps_bad;          /* qgrid: eps_bad_steps so far (see br_rfos_result_t); -1 otherwise */
} br_rfos_log_t;

typedef void (*br_rfos_log_fn)(void *ctx, const br_rfos_log_t *rec);

typedef struct {
    int64_t S, A, pairs;
    int64_t reachable_pairs;          /* pairs reachable from the start (qgrid: by search) */
    uint32_t m;
    int64_t steps, episodes;
    int64_t samples_to_all_known;     /* every reachable pair known; -1: not within max_steps */
    int64_t samples_to_near_optimal;  /* first block with mean >= optimal - near_tol; -1: not
                                         reached or no exact optimum */
    int64_t samples_to_near_final;    /* first block with mean >= final_mean_reward - near_tol */
    /* The quantity the PAC bound is about (qgrid only, where V* is exact): learning meta-steps
     * taken from a state s where the policy R-max executes at that moment (Boltzmann or greedy
     * over its optimistic Q) has V^pi(s) < V*(s) - epsilon in discounted value.  -1 otherwise. */
    int64_t eps_bad_steps;
    int64_t eps_bad_after_known;      /* of those, after every reachable pair was known (block
                                         granularity); -1 when that never happened */
    int eps_censored;                 /* 1: max_steps ended the run with pairs still unknown, so the
                                         policy could still change: eps_bad_steps is a lower bound */
    double final_mean_reward;         /* training reward over the after_known phase (or the last block) */
    double greedy_mean_reward;        /* greedy policy, eval_steps meta-steps (NaN when none) */
    double optimal_mean_reward;       /* exact (qgrid); NaN when not computable */
    double upper_bound_mean_reward;   /* matching pennies: 1 - opp_epsilon/2, the full-
                                         information optimum (match the opponent's greedy
                                         action); NaN otherwise */
    const char *optimal_how;          /* how optimal_mean_reward was obtained */
    double optimal_value, policy_value, model_value; /* discounted values from the start state:
                                         exact optimum, R-max's greedy policy in the true
                                         meta-MDP (qgrid only, else NaN), R-max's own model */
    double wall_s, train_s, meta_steps_per_s;
    double cpu_s, meta_steps_per_cpu_s; /* this thread's CPU time (the machine may be shared) */
    long vi_runs, vi_sweeps;
} br_rfos_result_t;

/* Checks every parameter and the table size before any work (BR_EINVAL / BR_ENOMEM with a
 * message naming the problem).  Returns the meta-MDP size in *S, *A. */
br_status br_rfos_check(const br_rfos_config_t *c, int64_t *S, int64_t *A, uint32_t *m);

/* Runs R-max on the meta-MDP.  `log` (may be NULL) receives records; `progress` (may be NULL)
 * is called about once a second with (steps, known). */
br_status br_rfos_run(const br_rfos_config_t *c, br_rfos_log_fn log, void *log_ctx,
                      void (*progress)(void *ctx, int64_t steps, int64_t known, int64_t pairs),
                      void *progress_ctx, br_rfos_result_t *res);

/* The best deterministic policy of the history meta-state, by brute force: every one of the
 * 2^(4^h) maps from the last h joint actions to a pure action (h <= 2, pure actions only) is
 * simulated against a fresh opponent (burn-in 1000 meta-steps), by successive quartering: all
 * for steps/4^rounds meta-steps (at least 2000), the best quarter for 4x as many, and so on, each
 * round on one common random stream; the survivor is re-run for `steps` meta-steps on an
 * independent stream in 10 batches (standard error from the batch means).  This checks R-max's "near-optimal" on the
 * variant that value iteration cannot solve: the meta-state is not Markov, but a policy over it
 * is still a fixed policy whose long-run mean reward can be measured. */
typedef struct {
    int64_t policies;
    double best_mean_reward, best_stderr;
    uint64_t best_policy;        /* bit s: the action in meta-state s */
} br_rfos_brute_t;

br_status br_rfos_brute_force(const br_rfos_config_t *c, int64_t steps, br_rfos_brute_t *out);
/* The argument checks of br_rfos_brute_force alone (to fail before a long run). */
br_status br_rfos_brute_check(const br_rfos_config_t *c, int64_t steps);
#endif
