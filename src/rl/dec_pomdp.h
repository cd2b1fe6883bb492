/* Batched, seeded Dec-POMDP environments for cooperative multi-agent RL (MARCO, VDN, QMIX).
 *
 * One interface for every task: B environments are stepped together.  After br_env_reset or
 * br_env_step the env's arrays hold, for every environment b:
 *   state  (B, state_dim)       global state (what a centralized model and the QMIX mixer see)
 *   obs    (B, n, obs_dim)      each agent's observation
 *   avail  (B, n, n_actions)    1 where the action is available to that agent
 *   reward (B)                  shared reward of the last step
 *   done   (B)                  1 once the episode is over (terminal or time limit)
 *   terminated (B)              1 when it ended in a true terminal state (not the time limit:
 *                               bootstrapping stops only there)
 *   t      (B)                  steps taken in the current episode
 * Environments whose episode is over are left untouched by br_env_step until reset.
 *
 * The global state is a concatenation of feature groups (br_feat_group_t) so that a learned
 * model knows how to predict and sample each part: binary bits (Bernoulli), one-hot categories
 * (categorical) and continuous values (Gaussian mean).  Observations use the same description.
 *
 * Tasks (rules in docs/marco.md):
 *   "switch"           switch riddle, Foerster et al. 2016 (n agents, default 3)
 *   "switch-bridges"   the switch riddle after every agent crosses a bridge of length 3
 *   "switch-bridges-L" the same with bridges of length L (1 <= L <= 9)
 *   "simple-reference" particle world simple_reference (exactly 2 agents), original physics */
#ifndef BR_RL_DEC_POMDP_H
#define BR_RL_DEC_POMDP_H
#include <stdint.h>
#include "base/rng.h"
#include "base/status.h"

typedef enum { BR_FEAT_BINARY, BR_FEAT_CATEGORICAL, BR_FEAT_CONTINUOUS } br_feat_kind;
typedef struct {
    br_feat_kind kind;
    int dim;
} br_feat_group_t;

#define BR_ENV_MAX_GROUPS 32

typedef enum { BR_ENV_SWITCH, BR_ENV_SWITCH_BRIDGES, BR_ENV_SIMPLE_REFERENCE } br_env_kind;

typedef struct {
    br_env_kind kind;
    const char *name;
    int n_agents, n_actions, obs_dim, state_dim, episode_limit;
    int bridge_len; /* switch-bridges: steps on each bridge (0 for the other tasks) */
    int n_state_groups, n_obs_groups;
    br_feat_group_t state_groups[BR_ENV_MAX_GROUPS];
    br_feat_group_t obs_groups[BR_ENV_MAX_GROUPS];
} br_env_spec_t;

typedef struct {
    br_env_spec_t spec;
    int batch;
    float *state;        /* (B, state_dim) */
    float *obs;          /* (B, n, obs_dim) */
    uint8_t *avail;      /* (B, n, n_actions) */
    float *reward;       /* (B) */
    uint8_t *done;       /* (B) */
    uint8_t *terminated; /* (B) */
    int32_t *t;          /* (B) */
    br_rng_t *rng;       /* (B) one stream per environment */
    void *impl;          /* task-specific state */
} br_env_t;

/* Fills *spec for task `name` with n agents (n <= 0: the task's default).  Errors: unknown
 * name (the message lists the known ones), n < 2, n too large, or simple-reference with n != 2. */
br_status br_env_spec(br_env_spec_t *spec, const char *name, int n_agents);
/* Creates B environments seeded from `seed` (environment b uses stream b) and resets them. */
br_status br_env_create(br_env_t **out, const char *name, int n_agents, int batch, uint64_t seed);
void br_env_free(br_env_t *e);
void br_env_reset(br_env_t *e);               /* every environment */
void br_env_reset_one(br_env_t *e, int b);
/* actions (B, n): each must be available (checked: BR_EINVAL names env, agent and action);
 * environments already done are skipped. */
br_status br_env_step(br_env_t *e, const int32_t *actions);
/* The same without the availability check (hot loops that sample from avail themselves). */
void br_env_step_unchecked(br_env_t *e, const int32_t *actions);
/* Comma-separated list of task names, for messages. */
const char *br_env_names(void);

/* ---- per-task internals (used by dec_pomdp.c; rules in env_switch.c, env_particle.c) ---- */
/* bridge_len: 0 for the plain riddle, else the bridge length (1..BR_BRIDGE_MAX) */
br_status br_env_switch_spec(br_env_spec_t *spec, int n_agents, int bridge_len);
br_status br_env_switch_init(br_env_t *e);
void br_env_switch_reset(br_env_t *e, int b);
void br_env_switch_step(br_env_t *e, const int32_t *actions);
br_status br_env_particle_spec(br_env_spec_t *spec, int n_agents);
br_status br_env_particle_init(br_env_t *e);
void br_env_particle_reset(br_env_t *e, int b);
void br_env_particle_step(br_env_t *e, const int32_t *actions);

/* Switch riddle actions (the bridge actions exist only in switch-bridges). */
enum { BR_SW_NONE = 0, BR_SW_ON, BR_SW_OFF, BR_SW_TELL, BR_SW_LEFT, BR_SW_RIGHT };
#define BR_BRIDGE_LEN 3 /* default bridge length of "switch-bridges" */
#define BR_BRIDGE_MAX 9
/* simple_reference: action = move * 10 + symbol; move 0 none, 1 +x, 2 -x, 3 +y, 4 -y. */
#define BR_PR_MOVES 5
#define BR_PR_SYMBOLS 10
#define BR_PR_LANDMARKS 3
#endif
