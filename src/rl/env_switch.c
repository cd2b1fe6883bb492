/* The switch riddle (Foerster, Assael, de Freitas, Whiteson 2016, "Learning to communicate with
 * deep multi-agent reinforcement learning") and its bridges variant (MARCO, Zhang et al. 2022).
 *
 * Switch riddle, n prisoners: every day one prisoner, drawn uniformly at random, is in the
 * interrogation room.  It sees the light bulb and may switch it on, switch it off, do nothing
 * or "tell" (announce that every prisoner has been in the room).  Telling ends the episode
 * with +1 if all n have been in the room (today counts), else -1.  After 4n-6 days without a
 * tell the episode ends with 0.  Prisoners outside the room observe nothing and can only do
 * nothing.  The light starts off.
 *
 * Bridges: before the riddle, every agent stands at the start of its own bridge of length L
 * (3 for "switch-bridges", L for "switch-bridges-L") and must walk right L times (left is the
 * wrong move); any wrong move ends the episode with -1.  All agents move at once, so the riddle
 * starts after exactly L steps; the limit is 4n-6+L.  Reaching the riddle at random has
 * probability 2^-(Ln).
 *
 * State (what a centralized model sees):
 *   bridges only: pos_i one-hot over {0..L} for each agent (categorical groups)
 *   visited_i: prisoner i was in the room on an earlier day of the riddle (binary, n)
 *   light (binary, 1)
 *   in_room one-hot (categorical, n): today's prisoner (drawn every step, ignored on bridges)
 * With visited counting *earlier* days, every feature but in_room is a deterministic function
 * of (state, joint action): a model can sample in_room alone and stay consistent.
 * Observation of agent i: bridges only: its position one-hot over {0..L-1} while on the bridge
 * (zeros after); then [in_room_i, light if in the room else 0]. */
#include <string.h>

#include "base/alloc.h"
#include "rl/dec_pomdp.h"

#define SW_MAX_AGENTS 16

typedef struct {
    uint8_t *room;     /* (B) */
    uint8_t *light;    /* (B) */
    uint8_t *pos;      /* (B) bridge position, the same for every agent (they move together) */
    uint32_t *visited; /* (B) bit i: prisoner i was in the room on an earlier day */
    int L; /* bridge length (0: no bridges) */
} switch_impl_t;

static const char *const BRIDGE_NAMES[BR_BRIDGE_MAX + 1] = {
    "switch", "switch-bridges-1", "switch-bridges-2", "switch-bridges", "switch-bridges-4",
    "switch-bridges-5", "switch-bridges-6", "switch-bridges-7", "switch-bridges-8",
    "switch-bridges-9"};

br_status br_env_switch_spec(br_env_spec_t *spec, int n, int L)
{
    if (L < 0 || L > BR_BRIDGE_MAX)
        return br_error(BR_EINVAL, "switch bridges must have length 0..%d, got %d", BR_BRIDGE_MAX, L);
    const int bridges = L > 0;
    if (n <= 0) n = 3;
    if (n < 2)
        return br_error(BR_EINVAL, "switch%s needs at least 2 agents, got %d",
                        bridges ? "-bridges" : "", n);
    if (n > SW_MAX_AGENTS)
        return br_error(BR_EINVAL, "switch%s supports at most %d agents, got %d",
                        bridges ? "-bridges" : "", SW_MAX_AGENTS, n);
    spec->kind = bridges ? BR_ENV_SWITCH_BRIDGES : BR_ENV_SWITCH;
    spec->name = BRIDGE_NAMES[L];
    spec->bridge_len = L;
    spec->n_agents = n;
    spec->n_actions = bridges ? 6 : 4;
    spec->episode_limit = 4 * n - 6 + L;
    if (spec->episode_limit < 1) spec->episode_limit = 1; /* n = 2 without bridges: 4n-6 = 2 */
    int g = 0;
    if (bridges)
        for (int i = 0; i < n; i++) spec->state_groups[g++] = (br_feat_group_t){BR_FEAT_CATEGORICAL, L + 1};
    spec->state_groups[g++] = (br_feat_group_t){BR_FEAT_BINARY, n + 1};
    spec->state_groups[g++] = (br_feat_group_t){BR_FEAT_CATEGORICAL, n};
    spec->n_state_groups = g;
    spec->state_dim = (bridges ? n * (L + 1) : 0) + 2 * n + 1;
    spec->obs_dim = L + 2;
    spec->obs_groups[0] = (br_feat_group_t){BR_FEAT_BINARY, spec->obs_dim};
    spec->n_obs_groups = 1;
    return BR_OK;
}

br_status br_env_switch_init(br_env_t *e)
{
    size_t B = (size_t)e->batch;
    /* one allocation: the impl header followed by its arrays */
    size_t bytes = sizeof(switch_impl_t) + 64 + B * (3 + sizeof(uint32_t)) + 64;
    switch_impl_t *s = br_alloc(bytes);
    if (!s) return br_error(BR_ENOMEM, "out of memory for %zu switch environments", B);
    uint8_t *p = (uint8_t *)s + ((sizeof *s + 63) & ~(size_t)63);
    s->visited = (uint32_t *)p;
    p += B * sizeof(uint32_t);
    s->room = p;
    s->light = p + B;
    s->pos = p + 2 * B;
    s->L = e->spec.bridge_len;
    e->impl = s;
    return BR_OK;
}

static void write_outputs(br_env_t *e, const switch_impl_t *s, int b)
{
    const int n = e->spec.n_agents, A = e->spec.n_actions, od = e->spec.obs_dim;
    const int L = s->L, on_bridge = s->pos[b] < L;
    const int room = s->room[b];
    float *st = e->state + (size_t)b * e->spec.state_dim;
    if (L)
        for (int i = 0; i < n; i++, st += L + 1)
            for (int k = 0; k <= L; k++) st[k] = k == s->pos[b];
    for (int i = 0; i < n; i++) st[i] = (float)((s->visited[b] >> i) & 1u);
    st[n] = s->light[b];
    for (int i = 0; i < n; i++) st[n + 1 + i] = i == room;

    float *ob = e->obs + (size_t)b * n * od;
    uint8_t *av = e->avail + (size_t)b * n * A;
    memset(ob, 0, (size_t)n * od * sizeof(float));
    memset(av, 0, (size_t)n * A);
    for (int i = 0; i < n; i++, ob += od, av += A) {
        if (on_bridge) {
            ob[s->pos[b]] = 1;
            av[BR_SW_LEFT] = av[BR_SW_RIGHT] = 1;
            continue;
        }
        float *o = ob + L;
        av[BR_SW_NONE] = 1;
        if (i == room) {
            o[0] = 1;
            o[1] = s->light[b];
            av[BR_SW_ON] = av[BR_SW_OFF] = av[BR_SW_TELL] = 1;
        }
    }
}

void br_env_switch_reset(br_env_t *e, int b)
{
    switch_impl_t *s = e->impl;
    s->visited[b] = 0;
    s->light[b] = 0;
    s->pos[b] = 0;
    s->room[b] = (uint8_t)br_rng_below(&e->rng[b], (uint64_t)e->spec.n_agents);
    write_outputs(e, s, b);
}

void br_env_switch_step(br_env_t *e, const int32_t *actions)
{
    switch_impl_t *s = e->impl;
    const int n = e->spec.n_agents, limit = e->spec.episode_limit;
    const uint32_t all = n == 32 ? 0xffffffffu : (1u << n) - 1u;
    for (int b = 0; b < e->batch; b++) {
        if (e->done[b]) continue;
        const int32_t *act = actions + (size_t)b * n;
        e->t[b]++;
        e->reward[b] = 0;
        if (s->pos[b] < s->L) { /* bridges: everyone must step right */
            int wrong = 0;
            for (int i = 0; i < n; i++) wrong |= act[i] != BR_SW_RIGHT;
            if (wrong) {
                e->reward[b] = -1;
                e->done[b] = e->terminated[b] = 1;
                write_outputs(e, s, b);
                continue;
            }
            s->pos[b]++;
        } else {
            const int room = s->room[b];
            const int32_t a = act[room];
            if (a == BR_SW_TELL) {
                e->reward[b] = (s->visited[b] | (1u << room)) == all ? 1.0f : -1.0f;
                e->done[b] = e->terminated[b] = 1;
                write_outputs(e, s, b);
                continue;
            }
            if (a == BR_SW_ON) s->light[b] = 1;
            else if (a == BR_SW_OFF) s->light[b] = 0;
            s->visited[b] |= 1u << room;
        }
        s->room[b] = (uint8_t)br_rng_below(&e->rng[b], (uint64_t)n);
        if (e->t[b] >= limit) e->done[b] = 1;
        write_outputs(e, s, b);
    }
}
