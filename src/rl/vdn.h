/* Value-decomposition Q-learning with recurrent agents (VDN / QMIX, pymarl's QLearner):
 * one agent network shared by all agents (input: observation, last action one-hot, agent id
 * one-hot; fc 64 -> ReLU -> GRU 64 -> fc n_actions), a mixer (rl/qmix.h), double Q-learning
 * with a target network, TD(0) on whole episodes (backprop through time), masked padding,
 * bootstrapping cut only at true terminals, Adam, global-norm gradient clipping.
 *
 * With cfg.state_input the agents see the global state instead of their own observation: that
 * is MARCO's centralized exploration policy (it only ever acts in simulation or during data
 * collection, where the state is known).
 *
 * Episodes are produced by br_vd_collect from any simulator that exposes br_env_t's arrays:
 * the real batched environment or MARCO's learned model. */
#ifndef BR_RL_VDN_H
#define BR_RL_VDN_H
#include <stddef.h>
#include "base/rng.h"
#include "base/status.h"
#include "rl/dec_pomdp.h"
#include "rl/qmix.h"
#include "rl/replay.h"

typedef struct {
    br_mixer_kind mixer;
    int hidden;       /* GRU width (64) */
    int embed;        /* QMIX mixing embed (32) */
    float gamma;      /* 0.99 */
    float lr;         /* Adam learning rate (5e-4) */
    float grad_clip;  /* global norm (10) */
    int batch;        /* episodes per update (32) */
    int target_every; /* updates between target-network copies */
    int state_input;  /* 1: agents see the global state (centralized exploration policy) */
    int act_batch;    /* most environments acted on at once by br_vd_collect */
} br_vd_config_t;

/* pymarl's defaults (batch 32, lr 5e-4, gamma 0.99, clip 10, hidden 64, embed 32). */
br_vd_config_t br_vd_default_config(br_mixer_kind mixer);

typedef struct br_vd br_vd_t;

br_status br_vd_create(br_vd_t **out, const br_env_spec_t *spec, const br_vd_config_t *cfg,
                       uint64_t seed);
void br_vd_free(br_vd_t *vd);
const br_vd_config_t *br_vd_config(const br_vd_t *vd);
/* One gradient step on the episodes [0, batch->count) (count <= cfg.batch).  Returns the
 * masked mean squared TD error before the step in *loss (may be NULL). */
br_status br_vd_train(br_vd_t *vd, const br_episodes_t *batch, float *loss);
/* Copies the online parameters into the target network. */
void br_vd_update_target(br_vd_t *vd);
long br_vd_updates(const br_vd_t *vd);

/* A batched simulator: the arrays of `view` (state, obs, avail, reward, done, terminated, t)
 * are refreshed by reset() and step(); step skips environments already done. */
typedef struct {
    br_env_t *view;
    void (*reset)(void *ctx);
    void (*step)(void *ctx, const int32_t *actions);
    void *ctx;
} br_sim_t;
br_sim_t br_sim_real(br_env_t *env);

/* Plays one episode in each of the simulator's B environments (B <= cfg.act_batch) with the
 * epsilon-greedy policy (eps = 1: uniform over available actions; eps = 0: greedy), writes
 * them to slots [0, B) of out (out->count = B).  Returns the number of steps taken; the mean
 * episode return goes to *mean_return (may be NULL). */
long br_vd_collect(br_vd_t *vd, const br_sim_t *sim, br_episodes_t *out, float eps,
                   br_rng_t *rng, double *mean_return);

/* ---- parameter access (tests, checkpoints) ---- */
size_t br_vd_n_params(const br_vd_t *vd);
float *br_vd_params(br_vd_t *vd);   /* agent parameters then mixer parameters */
float *br_vd_grads(br_vd_t *vd);
const br_mixer_t *br_vd_mixer(const br_vd_t *vd);
/* Loss and gradients (into br_vd_grads, zeroed first) without an optimiser step. */
float br_vd_loss_grad(br_vd_t *vd, const br_episodes_t *batch);
#endif
