/* Episode storage for recurrent value-decomposition learners (pymarl-style episode replay):
 * whole episodes padded to the task's episode limit T, with T+1 state/observation slots
 * (slot t+1 is what follows step t).  Steps after the episode ended have filled = 0, zero
 * observations and no available action. */
#ifndef BR_RL_REPLAY_H
#define BR_RL_REPLAY_H
#include <stddef.h>
#include <stdint.h>
#include "base/rng.h"
#include "base/status.h"
#include "rl/dec_pomdp.h"

typedef struct {
    int n, A, od, sd, T;   /* agents, actions, obs dim, state dim, episode limit */
    size_t cap;            /* episodes allocated */
    size_t count;          /* episodes held (a ring once full) */
    size_t next;           /* ring write position */
    float *state;          /* (cap, T+1, sd) */
    float *obs;            /* (cap, T+1, n, od) */
    uint8_t *avail;        /* (cap, T+1, n, A) */
    int32_t *actions;      /* (cap, T, n) */
    float *reward;         /* (cap, T) */
    uint8_t *terminated;   /* (cap, T) */
    uint8_t *filled;       /* (cap, T) */
    int32_t *length;       /* (cap) steps taken */
} br_episodes_t;

br_status br_episodes_create(br_episodes_t *e, const br_env_spec_t *spec, size_t cap);
void br_episodes_free(br_episodes_t *e);
/* Empties the buffer (keeps the memory). */
void br_episodes_clear(br_episodes_t *e);
/* Zeroes episode slot i (before writing a new episode into it). */
void br_episodes_zero(br_episodes_t *e, size_t i);
/* Copies episode i of src to slot j of dst (same spec). */
void br_episodes_copy(br_episodes_t *dst, size_t j, const br_episodes_t *src, size_t i);
/* Appends episodes [0, k) of src to the ring dst (overwriting the oldest when full). */
void br_episodes_push(br_episodes_t *dst, const br_episodes_t *src, size_t k);
/* Fills dst slots [0, k) with k episodes drawn uniformly (with replacement) from src;
 * dst->count = k.  src->count must be > 0. */
void br_episodes_sample(br_episodes_t *dst, const br_episodes_t *src, size_t k, br_rng_t *rng);
/* Real steps (filled transitions) in episodes [0, count). */
long br_episodes_steps(const br_episodes_t *e);
#endif
