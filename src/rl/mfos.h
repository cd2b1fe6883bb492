/* M-FOS (Lu et al., ICML 2022): model-free opponent shaping in the continuous meta-game that
 * R-FOS discretises.
 *
 * Inner game: an iterated 2x2 game between memory-1 policies, valued exactly (rl/games.h,
 * discount gamma, per-step payoffs).  One meta-step = one inner game: the shaper's meta-action
 * is its 5 memory-1 logits th0; the meta-reward is its value V0(th0, th1); then the opponent
 * (a naive learner or LOLA, rl/learners.h) takes one exact gradient step on th1.  A meta-
 * episode is meta_len meta-steps against an opponent whose logits start N(0, 1) (one draw per
 * game); batches of such games run side by side.
 *
 * Meta-state (11 features): sigmoid(previous th0) (5), sigmoid(th1) (5), t / meta_len.
 * Shaper: a ReLU MLP (nn/mlp.h) from the meta-state to the mean of th0, trained by
 *  - ES: antithetic Gaussian perturbations of the MLP's parameters, centred-rank fitness
 *    (mean meta-reward over the batch, common opponent draws), AdamW ascent; or
 *  - PPO: Gaussian policy (learned state-independent log-std), a separate value MLP, GAE,
 *    clipped surrogate, AdamW. */
#ifndef BR_RL_MFOS_H
#define BR_RL_MFOS_H
#include <stdint.h>
#include "base/status.h"
#include "rl/games.h"
#include "rl/learners.h"

typedef enum { BR_MFOS_ES, BR_MFOS_PPO } br_mfos_algo;

typedef struct {
    const br_game_t *game;
    br_learner_kind opponent;
    double opp_lr;        /* opponent's step size (M-FOS: 1) */
    double opp_lookahead; /* LOLA opponent: the step size it assumes for the shaper */
    double gamma;         /* inner discount (0.96) */
    br_mfos_algo algo;
    int hidden;           /* MLP width (two hidden layers) */
    int batch;            /* games per meta-episode batch */
    int meta_len;         /* meta-steps per meta-episode */
    int iterations;       /* ES generations / PPO updates */
    int population;       /* ES: perturbations per generation (even) */
    double sigma;         /* ES: perturbation scale */
    double lr;            /* AdamW learning rate */
    int ppo_epochs, ppo_minibatch;
    double ppo_clip, meta_gamma, gae_lambda, entropy, init_log_std;
    int eval_games;       /* games in the final evaluation */
    uint64_t seed;
} br_mfos_config_t;

void br_mfos_config_default(br_mfos_config_t *c);

typedef struct {
    int iteration;
    double shaper, opponent; /* mean per-step payoffs over the meta-episode (training batch) */
    double wall_s;
} br_mfos_log_t;

typedef void (*br_mfos_log_fn)(void *ctx, const br_mfos_log_t *rec);

typedef struct {
    /* Final evaluation (deterministic shaper, eval_games fresh opponents): mean per-step
     * payoffs over the whole meta-episode and over its last meta-step. */
    double shaper, opponent, shaper_last, opponent_last;
    double shaper_policy[5], opponent_policy[5]; /* mean P(action 0) at the last meta-step:
                                                     first round, after CC, CD, DC, DD */
    /* Baselines on the same opponent draws: a naive learner and LOLA in the shaper's seat. */
    double naive_shaper, naive_opponent, lola_shaper, lola_opponent;
    double mutual_cooperation;  /* payoff[0][0][0] */
    int extortion;              /* shaper > mutual cooperation and shaper > opponent */
    double wall_s;
    double inner_games_per_s;   /* exact inner-game values + opponent updates per second */
} br_mfos_result_t;

br_status br_mfos_check(const br_mfos_config_t *c);
br_status br_mfos_run(const br_mfos_config_t *c, br_mfos_log_fn log, void *log_ctx,
                      void (*progress)(void *ctx, int it, double shaper), void *progress_ctx,
                      br_mfos_result_t *res);
#endif
