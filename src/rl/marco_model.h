/* MARCO's centralized world model (Zhang, Lu, Garg, Foerster 2022) and the simulator built on
 * it.  The model does not depend on any policy: it is fitted to every real transition seen.
 *
 *   dynamics ensemble, K members:  (s, joint action one-hot) -> [s' | r | terminal]
 *       s' per feature group: binary -> Bernoulli logits, categorical -> softmax logits,
 *       continuous -> s + delta (residual mean); r: mean; terminal: logit
 *   observation head:  (s', agent id one-hot) -> [o_i | available actions of i (logits)]
 * Losses: binary cross-entropy, categorical cross-entropy, squared error.  Adam; each fit
 * trains until the loss on a held-out 10% of the real episodes has not improved for
 * `patience` epochs (the best parameters are kept).
 *
 * The simulator (br_marco_sim_*) exposes br_env_t's arrays, so br_vd_collect plays episodes in
 * it exactly as in the real task: episodes start from real initial states (state, observations,
 * available actions of a random stored real episode), each step uses one ensemble member drawn
 * uniformly per environment, samples s' from the predicted distribution, ends on a sampled
 * terminal or at the task's episode limit.  With beta > 0 the reward is r + beta * d, where d
 * is the ensemble's disagreement: the variance across members of the predicted next-state
 * means (probabilities for discrete features), summed over features. */
#ifndef BR_RL_MARCO_MODEL_H
#define BR_RL_MARCO_MODEL_H
#include <stddef.h>
#include "base/rng.h"
#include "base/status.h"
#include "nn/mlp.h"
#include "rl/dec_pomdp.h"
#include "rl/replay.h"

#define BR_MARCO_MAX_MEMBERS 16

typedef struct {
    int members;     /* ensemble size (5) */
    int hidden;      /* width of the two hidden layers (128) */
    float lr;        /* Adam (1e-3) */
    int minibatch;   /* rows per step (256) */
    int max_epochs;  /* per fit (100) */
    int patience;    /* epochs without held-out improvement before stopping (10) */
    long max_rows_per_epoch; /* cap on rows visited per epoch, 0 = all (big datasets) */
} br_marco_model_config_t;

br_marco_model_config_t br_marco_model_defaults(void);

typedef struct br_marco_model br_marco_model_t;

br_status br_marco_model_create(br_marco_model_t **out, const br_env_spec_t *spec,
                                const br_marco_model_config_t *cfg, uint64_t seed);
void br_marco_model_free(br_marco_model_t *m);

typedef struct {
    int epochs;           /* epochs run in the last fit */
    double train_loss;    /* mean per-row loss on the training split (last epoch) */
    double holdout_loss;  /* best held-out loss (dynamics + observation head) */
    double holdout_state_err; /* fraction of held-out next-state features predicted wrongly
                                 (discrete: mode differs; continuous: |err| > 0.05) */
    double holdout_reward_mae;
    long train_rows, holdout_rows;
} br_marco_fit_stats_t;

/* Fits dynamics and observation head to episodes [0, data->count) (warm start from the
 * current parameters). */
br_status br_marco_model_fit(br_marco_model_t *m, const br_episodes_t *data,
                             br_marco_fit_stats_t *stats);

/* ---- simulator ---- */
typedef struct br_marco_sim br_marco_sim_t;
/* B simulated environments; `starts` supplies real initial states (slot 0 of its episodes;
 * it must stay alive and non-empty while the simulator is used).  beta: intrinsic bonus. */
br_status br_marco_sim_create(br_marco_sim_t **out, br_marco_model_t *m,
                              const br_episodes_t *starts, int batch, float beta, uint64_t seed);
void br_marco_sim_free(br_marco_sim_t *s);
void br_marco_sim_set_beta(br_marco_sim_t *s, float beta);
br_env_t *br_marco_sim_view(br_marco_sim_t *s);
void br_marco_sim_reset(void *sim);
void br_marco_sim_step(void *sim, const int32_t *actions);
/* Mean disagreement per simulated step since the last call (and resets the counter). */
double br_marco_sim_take_disagreement(br_marco_sim_t *s);

/* One prediction for tests: next-state means (K, sd) of every member, reward and terminal
 * probability of member k = 0, for one state and joint action. */
void br_marco_model_predict(br_marco_model_t *m, const float *state, const int32_t *actions,
                            float *means, float *reward, float *p_terminal);
#endif
