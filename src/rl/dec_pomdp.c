/* Dec-POMDP task table, allocation and dispatch (rules live in env_switch.c, env_particle.c). */
#include "rl/dec_pomdp.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

const char *br_env_names(void) { return "switch, switch-bridges, switch-bridges-L (L = 1..9), simple-reference"; }

br_status br_env_spec(br_env_spec_t *spec, const char *name, int n_agents)
{
    memset(spec, 0, sizeof *spec);
    if (!name) return br_error(BR_EINVAL, "no environment given (known: %s)", br_env_names());
    if (!strcmp(name, "switch")) return br_env_switch_spec(spec, n_agents, 0);
    if (!strcmp(name, "switch-bridges")) return br_env_switch_spec(spec, n_agents, BR_BRIDGE_LEN);
    if (!strncmp(name, "switch-bridges-", 15) && name[15] >= '1' && name[15] <= '0' + BR_BRIDGE_MAX &&
        !name[16])
        return br_env_switch_spec(spec, n_agents, name[15] - '0');
    if (!strcmp(name, "simple-reference")) return br_env_particle_spec(spec, n_agents);
    return br_error(BR_EINVAL, "unknown environment '%s' (known: %s)", name, br_env_names());
}

void br_env_free(br_env_t *e)
{
    if (!e) return;
    br_free(e->state);
    br_free(e->obs);
    br_free(e->avail);
    br_free(e->reward);
    br_free(e->done);
    br_free(e->terminated);
    br_free(e->t);
    br_free(e->rng);
    br_free(e->impl);
    free(e);
}

br_status br_env_create(br_env_t **out, const char *name, int n_agents, int batch, uint64_t seed)
{
    *out = NULL;
    br_env_spec_t spec;
    BR_TRY(br_env_spec(&spec, name, n_agents));
    if (batch < 1 || batch > (1 << 24))
        return br_error(BR_EINVAL, "environment batch must be in [1, 16777216], got %d", batch);
    br_env_t *e = calloc(1, sizeof *e);
    if (!e) return br_error(BR_ENOMEM, "out of memory creating %d environments", batch);
    e->spec = spec;
    e->batch = batch;
    size_t B = (size_t)batch, n = (size_t)spec.n_agents;
    e->state = br_alloc(B * spec.state_dim * sizeof(float));
    e->obs = br_alloc(B * n * spec.obs_dim * sizeof(float));
    e->avail = br_alloc(B * n * spec.n_actions);
    e->reward = br_alloc(B * sizeof(float));
    e->done = br_alloc(B);
    e->terminated = br_alloc(B);
    e->t = br_alloc(B * sizeof(int32_t));
    e->rng = br_alloc(B * sizeof(br_rng_t));
    if (!e->state || !e->obs || !e->avail || !e->reward || !e->done || !e->terminated || !e->t ||
        !e->rng) {
        br_env_free(e);
        return br_error(BR_ENOMEM, "out of memory creating %d '%s' environments", batch, name);
    }
    for (size_t b = 0; b < B; b++) br_rng_seed_stream(&e->rng[b], seed, b);
    br_status s = spec.kind == BR_ENV_SIMPLE_REFERENCE ? br_env_particle_init(e)
                                                       : br_env_switch_init(e);
    if (s != BR_OK) {
        br_env_free(e);
        return s;
    }
    br_env_reset(e);
    *out = e;
    return BR_OK;
}

void br_env_reset_one(br_env_t *e, int b)
{
    e->reward[b] = 0;
    e->done[b] = 0;
    e->terminated[b] = 0;
    e->t[b] = 0;
    if (e->spec.kind == BR_ENV_SIMPLE_REFERENCE) br_env_particle_reset(e, b);
    else br_env_switch_reset(e, b);
}

void br_env_reset(br_env_t *e)
{
    for (int b = 0; b < e->batch; b++) br_env_reset_one(e, b);
}

void br_env_step_unchecked(br_env_t *e, const int32_t *actions)
{
    if (e->spec.kind == BR_ENV_SIMPLE_REFERENCE) br_env_particle_step(e, actions);
    else br_env_switch_step(e, actions);
}

br_status br_env_step(br_env_t *e, const int32_t *actions)
{
    const int n = e->spec.n_agents, A = e->spec.n_actions;
    for (int b = 0; b < e->batch; b++) {
        if (e->done[b]) continue;
        for (int i = 0; i < n; i++) {
            int32_t a = actions[(size_t)b * n + i];
            if (a < 0 || a >= A || !e->avail[((size_t)b * n + i) * A + a])
                return br_error(BR_EINVAL, "%s: environment %d, agent %d: action %d is not available",
                                e->spec.name, b, i, (int)a);
        }
    }
    br_env_step_unchecked(e, actions);
    return BR_OK;
}
