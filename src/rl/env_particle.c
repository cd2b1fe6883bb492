/* Particle world `simple_reference` (Lowe et al. 2017, openai/multiagent-particle-envs,
 * scenarios/simple_reference.py + core.py + environment.py), batched.
 *
 * Two agents and three landmarks (red, green, blue), all placed uniformly in [-1,1]^2; agents
 * start at rest with a silent channel.  Agent i knows goal_b[i], a landmark drawn uniformly,
 * which the *other* agent must reach; it sees that landmark's colour and must tell the other
 * agent through a 10-symbol channel.  Shared reward after each step (collaborative world:
 * the sum of both agents' rewards):  r = -sum_i |p_other(i) - landmark[goal_b[i]]|^2
 * (squared distances, as the original).  25 steps, never terminal.
 *
 * Physics (core.py World/Entity defaults, environment.py discrete actions): dt 0.1, damping
 * 0.25, mass 1, no maximum speed, no noise, no collisions (collide = False in the scenario);
 * a movement action is a unit force along one axis times sensitivity 5.0; per step
 *   v <- v (1 - damping) + (F / m) dt;   p <- p + v dt;   c <- one-hot(symbol).
 * Discrete action a = move * 10 + symbol, move 0 none, 1 +x, 2 -x, 3 +y, 4 -y (the order of
 * environment.py: u[0] = a[1] - a[2], u[1] = a[3] - a[4]).
 *
 * Observation of agent i (21): v_i (2), landmark positions relative to p_i (3 x 2), the colour
 * of landmark goal_b[i] (3), the other agent's last symbol one-hot (10, zeros before its
 * first step).
 * State (40): p (2x2), v (2x2), landmarks (3x2) continuous; goal_b[i] one-hot (2 x 3);
 * last symbols one-hot (2 x 10, binary: zeros at the start). */
#include <string.h>

#include "base/alloc.h"
#include "rl/dec_pomdp.h"

#define PR_DT 0.1f
#define PR_DAMPING 0.25f
#define PR_MASS 1.0f
#define PR_SENSITIVITY 5.0f
#define PR_EPISODE 25

typedef struct {
    float p[2][2], v[2][2], lm[BR_PR_LANDMARKS][2];
    int8_t goal[2], comm[2];
} particle_t;

static const float lm_color[BR_PR_LANDMARKS][3] = {
    {0.75f, 0.25f, 0.25f}, {0.25f, 0.75f, 0.25f}, {0.25f, 0.25f, 0.75f}};

br_status br_env_particle_spec(br_env_spec_t *spec, int n)
{
    if (n <= 0) n = 2;
    if (n != 2) return br_error(BR_EINVAL, "simple-reference has exactly 2 agents, got %d", n);
    spec->kind = BR_ENV_SIMPLE_REFERENCE;
    spec->name = "simple-reference";
    spec->n_agents = 2;
    spec->n_actions = BR_PR_MOVES * BR_PR_SYMBOLS;
    spec->episode_limit = PR_EPISODE;
    spec->state_dim = 14 + 6 + 20;
    spec->state_groups[0] = (br_feat_group_t){BR_FEAT_CONTINUOUS, 14};
    spec->state_groups[1] = (br_feat_group_t){BR_FEAT_CATEGORICAL, 3};
    spec->state_groups[2] = (br_feat_group_t){BR_FEAT_CATEGORICAL, 3};
    spec->state_groups[3] = (br_feat_group_t){BR_FEAT_BINARY, 20};
    spec->n_state_groups = 4;
    spec->obs_dim = 2 + 6 + 3 + BR_PR_SYMBOLS;
    spec->obs_groups[0] = (br_feat_group_t){BR_FEAT_CONTINUOUS, 11};
    spec->obs_groups[1] = (br_feat_group_t){BR_FEAT_BINARY, BR_PR_SYMBOLS};
    spec->n_obs_groups = 2;
    return BR_OK;
}

br_status br_env_particle_init(br_env_t *e)
{
    e->impl = br_alloc((size_t)e->batch * sizeof(particle_t));
    if (!e->impl) return br_error(BR_ENOMEM, "out of memory for %d particle environments", e->batch);
    return BR_OK;
}

static void write_outputs(br_env_t *e, const particle_t *w, int b)
{
    float *st = e->state + (size_t)b * e->spec.state_dim;
    memset(st, 0, (size_t)e->spec.state_dim * sizeof(float));
    for (int i = 0; i < 2; i++) {
        st[2 * i] = w->p[i][0], st[2 * i + 1] = w->p[i][1];
        st[4 + 2 * i] = w->v[i][0], st[4 + 2 * i + 1] = w->v[i][1];
        st[14 + 3 * i + w->goal[i]] = 1;
        if (w->comm[i] >= 0) st[20 + BR_PR_SYMBOLS * i + w->comm[i]] = 1;
    }
    for (int k = 0; k < BR_PR_LANDMARKS; k++) st[8 + 2 * k] = w->lm[k][0], st[9 + 2 * k] = w->lm[k][1];

    const int od = e->spec.obs_dim;
    float *ob = e->obs + (size_t)b * 2 * od;
    memset(ob, 0, 2 * (size_t)od * sizeof(float));
    for (int i = 0; i < 2; i++, ob += od) {
        ob[0] = w->v[i][0], ob[1] = w->v[i][1];
        for (int k = 0; k < BR_PR_LANDMARKS; k++) {
            ob[2 + 2 * k] = w->lm[k][0] - w->p[i][0];
            ob[3 + 2 * k] = w->lm[k][1] - w->p[i][1];
        }
        for (int c = 0; c < 3; c++) ob[8 + c] = lm_color[w->goal[i]][c];
        if (w->comm[1 - i] >= 0) ob[11 + w->comm[1 - i]] = 1;
    }
}

void br_env_particle_reset(br_env_t *e, int b)
{
    particle_t *w = (particle_t *)e->impl + b;
    br_rng_t *r = &e->rng[b];
    for (int i = 0; i < 2; i++) w->goal[i] = (int8_t)br_rng_below(r, BR_PR_LANDMARKS);
    for (int i = 0; i < 2; i++) {
        w->p[i][0] = 2 * br_rng_float(r) - 1, w->p[i][1] = 2 * br_rng_float(r) - 1;
        w->v[i][0] = w->v[i][1] = 0;
        w->comm[i] = -1;
    }
    for (int k = 0; k < BR_PR_LANDMARKS; k++)
        w->lm[k][0] = 2 * br_rng_float(r) - 1, w->lm[k][1] = 2 * br_rng_float(r) - 1;
    memset(e->avail + (size_t)b * 2 * e->spec.n_actions, 1, 2 * (size_t)e->spec.n_actions);
    write_outputs(e, w, b);
}

void br_env_particle_step(br_env_t *e, const int32_t *actions)
{
    particle_t *ws = e->impl;
    for (int b = 0; b < e->batch; b++) {
        if (e->done[b]) continue;
        particle_t *w = ws + b;
        for (int i = 0; i < 2; i++) {
            int a = actions[2 * b + i], move = a / BR_PR_SYMBOLS;
            float u[2] = {0, 0};
            if (move == 1) u[0] = 1;
            else if (move == 2) u[0] = -1;
            else if (move == 3) u[1] = 1;
            else if (move == 4) u[1] = -1;
            for (int d = 0; d < 2; d++) {
                w->v[i][d] = w->v[i][d] * (1 - PR_DAMPING) + (u[d] * PR_SENSITIVITY / PR_MASS) * PR_DT;
                w->p[i][d] += w->v[i][d] * PR_DT;
            }
            w->comm[i] = (int8_t)(a % BR_PR_SYMBOLS);
        }
        float r = 0;
        for (int i = 0; i < 2; i++) {
            const float *target = w->lm[w->goal[i]];
            float dx = w->p[1 - i][0] - target[0], dy = w->p[1 - i][1] - target[1];
            r -= dx * dx + dy * dy;
        }
        e->reward[b] = r;
        if (++e->t[b] >= PR_EPISODE) e->done[b] = 1;
        write_outputs(e, w, b);
    }
}
