#include "rl/replay.h"

#include <string.h>

#include "base/alloc.h"

br_status br_episodes_create(br_episodes_t *e, const br_env_spec_t *spec, size_t cap)
{
    memset(e, 0, sizeof *e);
    e->n = spec->n_agents, e->A = spec->n_actions, e->od = spec->obs_dim;
    e->sd = spec->state_dim, e->T = spec->episode_limit;
    e->cap = cap;
    size_t T1 = (size_t)e->T + 1, T = (size_t)e->T, n = (size_t)e->n;
    e->state = br_alloc(cap * T1 * e->sd * sizeof(float));
    e->obs = br_alloc(cap * T1 * n * e->od * sizeof(float));
    e->avail = br_alloc(cap * T1 * n * e->A);
    e->actions = br_alloc(cap * T * n * sizeof(int32_t));
    e->reward = br_alloc(cap * T * sizeof(float));
    e->terminated = br_alloc(cap * T);
    e->filled = br_alloc(cap * T);
    e->length = br_alloc(cap * sizeof(int32_t));
    if (!cap || !e->state || !e->obs || !e->avail || !e->actions || !e->reward ||
        !e->terminated || !e->filled || !e->length) {
        br_episodes_free(e);
        return br_error(BR_ENOMEM, "out of memory for %zu episodes of %s", cap, spec->name);
    }
    return BR_OK;
}

void br_episodes_free(br_episodes_t *e)
{
    br_free(e->state), br_free(e->obs), br_free(e->avail), br_free(e->actions);
    br_free(e->reward), br_free(e->terminated), br_free(e->filled), br_free(e->length);
    memset(e, 0, sizeof *e);
}

void br_episodes_clear(br_episodes_t *e) { e->count = e->next = 0; }

/* per-episode strides */
#define S_STATE(e) ((size_t)((e)->T + 1) * (e)->sd)
#define S_OBS(e) ((size_t)((e)->T + 1) * (e)->n * (e)->od)
#define S_AVAIL(e) ((size_t)((e)->T + 1) * (e)->n * (e)->A)
#define S_ACT(e) ((size_t)(e)->T * (e)->n)

void br_episodes_zero(br_episodes_t *e, size_t i)
{
    memset(e->state + i * S_STATE(e), 0, S_STATE(e) * sizeof(float));
    memset(e->obs + i * S_OBS(e), 0, S_OBS(e) * sizeof(float));
    memset(e->avail + i * S_AVAIL(e), 0, S_AVAIL(e));
    memset(e->actions + i * S_ACT(e), 0, S_ACT(e) * sizeof(int32_t));
    memset(e->reward + i * e->T, 0, (size_t)e->T * sizeof(float));
    memset(e->terminated + i * e->T, 0, (size_t)e->T);
    memset(e->filled + i * e->T, 0, (size_t)e->T);
    e->length[i] = 0;
}

void br_episodes_copy(br_episodes_t *d, size_t j, const br_episodes_t *s, size_t i)
{
    memcpy(d->state + j * S_STATE(d), s->state + i * S_STATE(s), S_STATE(s) * sizeof(float));
    memcpy(d->obs + j * S_OBS(d), s->obs + i * S_OBS(s), S_OBS(s) * sizeof(float));
    memcpy(d->avail + j * S_AVAIL(d), s->avail + i * S_AVAIL(s), S_AVAIL(s));
    memcpy(d->actions + j * S_ACT(d), s->actions + i * S_ACT(s), S_ACT(s) * sizeof(int32_t));
    memcpy(d->reward + j * d->T, s->reward + i * s->T, (size_t)s->T * sizeof(float));
    memcpy(d->terminated + j * d->T, s->terminated + i * s->T, (size_t)s->T);
    memcpy(d->filled + j * d->T, s->filled + i * s->T, (size_t)s->T);
    d->length[j] = s->length[i];
}

void br_episodes_push(br_episodes_t *dst, const br_episodes_t *src, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        br_episodes_copy(dst, dst->next, src, i);
        dst->next = (dst->next + 1) % dst->cap;
        if (dst->count < dst->cap) dst->count++;
    }
}

void br_episodes_sample(br_episodes_t *dst, const br_episodes_t *src, size_t k, br_rng_t *rng)
{
    BR_ASSERT(src->count > 0 && k <= dst->cap);
    for (size_t j = 0; j < k; j++) br_episodes_copy(dst, j, src, br_rng_below(rng, src->count));
    dst->count = k;
}

long br_episodes_steps(const br_episodes_t *e)
{
    long s = 0;
    for (size_t i = 0; i < e->count; i++) s += e->length[i];
    return s;
}
