#include "rl/vdn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "nn/gru.h"
#include "nn/mlp.h"
#include "nn/nn.h"

/* agent parameters, one flat buffer:
 * fc1_w (H,in) fc1_b (H) | w_ih (3H,H) w_hh (3H,H) b_ih (3H) b_hh (3H) | fc2_w (A,H) fc2_b (A) */
typedef struct {
    float *fc1_w, *fc1_b, *w_ih, *w_hh, *b_ih, *b_hh, *fc2_w, *fc2_b;
} agent_p;

struct br_vd {
    br_vd_config_t cfg;
    br_env_spec_t spec;
    int in_dim, H, n, A;
    size_t n_agent, n_params;
    br_mixer_t mixer;
    float *params, *target, *grads, *m, *v; /* (n_params) each */
    int adam_t;
    long updates;
    /* training workspace for cfg.batch episodes of T+1 steps; R = batch * n rows per step */
    float *x, *a1, *gates, *h, *q;   /* (T+1, R, in|H|4H|H(T+2)|A) */
    float *qt, *ht;                  /* target net: q (T+1,R,A), h (R,H) x 2 */
    float *scratch;                  /* (R, 6H) */
    float *dq, *dh, *dhp, *da1;      /* (R,A) (R,H) (R,H) (R,H) */
    float *chosen, *tq, *s0, *s1, *qtot, *ttot, *msaved, *mscratch, *dchosen, *dqtot;
    /* acting workspace for cfg.act_batch environments */
    float *ax, *aa1, *agates, *ah, *ahn, *aq, *ascratch;
    int32_t *alast, *aact;
    uint8_t *adone;
    /* training gathers: obs (R,od), states (Bt,sd), last actions (R), target a1/gates */
    float *obs_t, *st_t, *a1t, *gt;
    int32_t *last;
};

static agent_p agent_layout(const br_vd_t *vd, float *p)
{
    const size_t H = vd->H, in = vd->in_dim, A = vd->A;
    agent_p a;
    a.fc1_w = p, p += H * in;
    a.fc1_b = p, p += H;
    a.w_ih = p, p += 3 * H * H;
    a.w_hh = p, p += 3 * H * H;
    a.b_ih = p, p += 3 * H;
    a.b_hh = p, p += 3 * H;
    a.fc2_w = p, p += A * H;
    a.fc2_b = p;
    return a;
}

br_vd_config_t br_vd_default_config(br_mixer_kind mixer)
{
    br_vd_config_t c = {mixer, 64, 32, 0.99f, 5e-4f, 10.0f, 32, 200, 0, 32};
    return c;
}

const br_vd_config_t *br_vd_config(const br_vd_t *vd) { return &vd->cfg; }
long br_vd_updates(const br_vd_t *vd) { return vd->updates; }
size_t br_vd_n_params(const br_vd_t *vd) { return vd->n_params; }
float *br_vd_params(br_vd_t *vd) { return vd->params; }
float *br_vd_grads(br_vd_t *vd) { return vd->grads; }
const br_mixer_t *br_vd_mixer(const br_vd_t *vd) { return &vd->mixer; }

void br_vd_free(br_vd_t *vd)
{
    if (!vd) return;
    float **bufs[] = {&vd->params, &vd->target, &vd->grads, &vd->m, &vd->v, &vd->x, &vd->a1,
                      &vd->gates, &vd->h, &vd->q, &vd->qt, &vd->ht, &vd->scratch, &vd->dq,
                      &vd->dh, &vd->dhp, &vd->da1, &vd->chosen, &vd->tq, &vd->s0, &vd->s1,
                      &vd->qtot, &vd->ttot, &vd->msaved, &vd->mscratch, &vd->dchosen,
                      &vd->dqtot, &vd->ax, &vd->aa1, &vd->agates, &vd->ah, &vd->ahn, &vd->aq,
                      &vd->ascratch, &vd->obs_t, &vd->st_t, &vd->a1t, &vd->gt};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) br_free(*bufs[i]);
    br_free(vd->alast), br_free(vd->aact), br_free(vd->adone), br_free(vd->last);
    free(vd);
}

br_status br_vd_create(br_vd_t **out, const br_env_spec_t *spec, const br_vd_config_t *cfg,
                       uint64_t seed)
{
    *out = NULL;
    if (cfg->hidden < 1 || cfg->embed < 1 || cfg->embed > 1024 || cfg->batch < 1 ||
        cfg->act_batch < 1 || cfg->target_every < 1 || !(cfg->lr > 0) ||
        !(cfg->gamma >= 0 && cfg->gamma <= 1))
        return br_error(BR_EINVAL, "value-decomposition learner: bad configuration (hidden %d, "
                        "embed %d, batch %d, lr %g, gamma %g)", cfg->hidden, cfg->embed,
                        cfg->batch, cfg->lr, cfg->gamma);
    br_vd_t *vd = calloc(1, sizeof *vd);
    if (!vd) return br_error(BR_ENOMEM, "out of memory");
    vd->cfg = *cfg;
    vd->spec = *spec;
    vd->n = spec->n_agents, vd->A = spec->n_actions, vd->H = cfg->hidden;
    vd->in_dim = (cfg->state_input ? spec->state_dim : spec->obs_dim) + vd->A + vd->n;
    const size_t H = vd->H, in = vd->in_dim, A = vd->A, n = vd->n;
    vd->n_agent = H * (in + 1) + 2 * 3 * H * H + 2 * 3 * H + A * (H + 1);
    br_mixer_init(&vd->mixer, cfg->mixer, vd->n, spec->state_dim, cfg->embed);
    vd->n_params = vd->n_agent + vd->mixer.n_params;
    const size_t P = vd->n_params, T = spec->episode_limit, T1 = T + 1;
    const size_t R = (size_t)cfg->batch * n, Ra = (size_t)cfg->act_batch * n;
    const size_t NB = (size_t)cfg->batch * T, E = cfg->embed;
    const size_t mscr = NB * (n * E + 3 * E + 1);
#define ALLOC(ptr, count) (vd->ptr = br_alloc((count) * sizeof(float)))
    int ok = ALLOC(params, P) && ALLOC(target, P) && ALLOC(grads, P) && ALLOC(m, P) &&
             ALLOC(v, P) && ALLOC(x, T1 * R * in) && ALLOC(a1, T1 * R * H) &&
             ALLOC(gates, T1 * R * 4 * H) && ALLOC(h, (T1 + 1) * R * H) && ALLOC(q, T1 * R * A) &&
             ALLOC(qt, T1 * R * A) && ALLOC(ht, 2 * R * H) && ALLOC(scratch, R * 6 * H) && ALLOC(obs_t, R * spec->obs_dim) &&
             ALLOC(st_t, (size_t)cfg->batch * spec->state_dim) && ALLOC(a1t, R * H) &&
             ALLOC(gt, R * 4 * H) &&
             ALLOC(dq, R * A) && ALLOC(dh, R * H) && ALLOC(dhp, R * H) && ALLOC(da1, R * H) &&
             ALLOC(chosen, NB * n) && ALLOC(tq, NB * n) && ALLOC(s0, NB * spec->state_dim) &&
             ALLOC(s1, NB * spec->state_dim) && ALLOC(qtot, NB) && ALLOC(ttot, NB) &&
             ALLOC(msaved, NB * (vd->mixer.saved_per_row + 1)) && ALLOC(mscratch, mscr) &&
             ALLOC(dchosen, NB * n) && ALLOC(dqtot, NB) && ALLOC(ax, Ra * in) &&
             ALLOC(aa1, Ra * H) && ALLOC(agates, Ra * 4 * H) && ALLOC(ah, Ra * H) &&
             ALLOC(ahn, Ra * H) && ALLOC(aq, Ra * A) && ALLOC(ascratch, Ra * 6 * H);
#undef ALLOC
    vd->alast = br_alloc(Ra * sizeof(int32_t));
    vd->aact = br_alloc(Ra * sizeof(int32_t));
    vd->adone = br_alloc((size_t)cfg->act_batch);
    vd->last = br_alloc(R * sizeof(int32_t));
    if (!ok || !vd->alast || !vd->aact || !vd->adone || !vd->last) {
        br_vd_free(vd);
        return br_error(BR_ENOMEM, "out of memory for the value-decomposition learner");
    }
    br_rng_t rng;
    br_rng_seed_stream(&rng, seed, 0x5644u);
    agent_p a = agent_layout(vd, vd->params);
    br_dense_init(a.fc1_w, a.fc1_b, in, H, &rng);
    /* nn.GRUCell init: U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias */
    float k = 1.0f / sqrtf((float)H);
    br_rng_fill_uniform(&rng, a.w_ih, 3 * H * H * 2 + 6 * H, -k, k);
    br_dense_init(a.fc2_w, a.fc2_b, H, A, &rng);
    br_mixer_init_params(&vd->mixer, vd->params + vd->n_agent, &rng);
    br_vd_update_target(vd);
    *out = vd;
    return BR_OK;
}

void br_vd_update_target(br_vd_t *vd) { memcpy(vd->target, vd->params, vd->n_params * sizeof(float)); }

/* x (rows, in): [obs or state | last action one-hot | agent id one-hot] for B envs */
static void build_inputs(const br_vd_t *vd, float *x, const float *obs, const float *state,
                         const int32_t *last, size_t B)
{
    const int n = vd->n, A = vd->A, od = vd->spec.obs_dim, sd = vd->spec.state_dim;
    const int in = vd->in_dim;
    memset(x, 0, B * n * in * sizeof(float));
    for (size_t b = 0; b < B; b++)
        for (int i = 0; i < n; i++) {
            float *r = x + (b * n + i) * in;
            int base;
            if (vd->cfg.state_input) {
                memcpy(r, state + b * sd, sd * sizeof(float));
                base = sd;
            } else {
                memcpy(r, obs + (b * n + i) * od, od * sizeof(float));
                base = od;
            }
            int32_t la = last[b * n + i];
            if (la >= 0) r[base + la] = 1;
            r[base + A + i] = 1;
        }
}

/* one agent-network step for R rows: q (R,A), h_out (R,H); a1 (R,H), gates (R,4H) saved */
static void agent_step(const br_vd_t *vd, const float *params, float *q, float *h_out,
                       float *a1, float *gates, const float *x, const float *h_in, float *scratch,
                       size_t R)
{
    agent_p a = agent_layout(vd, (float *)params);
    const size_t H = vd->H;
    br_dense_forward(a1, x, a.fc1_w, a.fc1_b, R, vd->in_dim, H);
    br_relu_inplace(a1, R * H);
    br_gru_forward(h_out, gates, a1, h_in, a.w_ih, a.w_hh, a.b_ih, a.b_hh, scratch, R, H, H);
    br_dense_forward(q, h_out, a.fc2_w, a.fc2_b, R, H, vd->A);
}

br_sim_t br_sim_real(br_env_t *env)
{
    br_sim_t s = {env, (void (*)(void *))br_env_reset,
                  (void (*)(void *, const int32_t *))br_env_step_unchecked, env};
    return s;
}

long br_vd_collect(br_vd_t *vd, const br_sim_t *sim, br_episodes_t *out, float eps,
                   br_rng_t *rng, double *mean_return)
{
    br_env_t *e = sim->view;
    const size_t B = (size_t)e->batch, n = vd->n, A = vd->A, H = vd->H;
    const size_t od = vd->spec.obs_dim, sd = vd->spec.state_dim;
    const int T = vd->spec.episode_limit;
    BR_ASSERT(B <= (size_t)vd->cfg.act_batch && B <= out->cap);
    sim->reset(sim->ctx);
    for (size_t b = 0; b < B; b++) br_episodes_zero(out, b);
    memset(vd->ah, 0, B * n * H * sizeof(float));
    for (size_t j = 0; j < B * n; j++) vd->alast[j] = -1;
    int32_t *act = vd->aact;
    double ret = 0;
    long steps = 0;
    const size_t S_ST = (size_t)(T + 1) * sd, S_OB = (size_t)(T + 1) * n * od;
    const size_t S_AV = (size_t)(T + 1) * n * A;
    for (int t = 0; t <= T; t++) {
        /* record slot t for every episode still running (or just finished at t) */
        for (size_t b = 0; b < B; b++) {
            if (t > 0 && !out->filled[b * T + t - 1]) continue;
            memcpy(out->state + b * S_ST + t * sd, e->state + b * sd, sd * sizeof(float));
            memcpy(out->obs + b * S_OB + t * n * od, e->obs + b * n * od, n * od * sizeof(float));
            memcpy(out->avail + b * S_AV + t * n * A, e->avail + b * n * A, n * A);
        }
        if (t == T) break;
        int alive = 0;
        for (size_t b = 0; b < B; b++) alive |= !e->done[b];
        if (!alive) break;
        int greedy = eps < 1.0f;
        if (greedy) {
            build_inputs(vd, vd->ax, e->obs, e->state, vd->alast, B);
            agent_step(vd, vd->params, vd->aq, vd->ahn, vd->aa1, vd->agates, vd->ax, vd->ah,
                       vd->ascratch, B * n);
            memcpy(vd->ah, vd->ahn, B * n * H * sizeof(float));
        }
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < n; i++) {
                const uint8_t *av = e->avail + (b * n + i) * A;
                int a = -1;
                if (!e->done[b]) {
                    if (!greedy || br_rng_float(rng) < eps) {
                        int cnt = 0;
                        for (size_t k = 0; k < A; k++) cnt += av[k];
                        int pick = cnt ? (int)br_rng_below(rng, (uint64_t)cnt) : 0;
                        for (size_t k = 0; k < A; k++)
                            if (av[k] && pick-- == 0) { a = (int)k; break; }
                    } else {
                        const float *qq = vd->aq + (b * n + i) * A;
                        for (size_t k = 0; k < A; k++)
                            if (av[k] && (a < 0 || qq[k] > qq[a])) a = (int)k;
                    }
                    if (a < 0) a = 0;
                }
                act[b * n + i] = a < 0 ? 0 : a;
            }
        uint8_t *was_done = vd->adone;
        memcpy(was_done, e->done, B);
        sim->step(sim->ctx, act);
        for (size_t b = 0; b < B; b++) {
            if (was_done[b]) continue;
            memcpy(out->actions + (b * T + t) * n, act + b * n, n * sizeof(int32_t));
            for (size_t i = 0; i < n; i++) vd->alast[b * n + i] = act[b * n + i];
            out->reward[b * T + t] = e->reward[b];
            out->terminated[b * T + t] = e->terminated[b];
            out->filled[b * T + t] = 1;
            out->length[b] = t + 1;
            ret += e->reward[b];
            steps++;
        }
    }
    out->count = B;
    if (mean_return) *mean_return = ret / (double)B;
    return steps;
}

float br_vd_loss_grad(br_vd_t *vd, const br_episodes_t *eb)
{
    const size_t Bt = eb->count, n = vd->n, A = vd->A, H = vd->H, in = vd->in_dim;
    const size_t T = vd->spec.episode_limit, T1 = T + 1, R = Bt * n, NB = Bt * T;
    const size_t od = vd->spec.obs_dim, sd = vd->spec.state_dim;
    BR_ASSERT(Bt >= 1 && Bt <= (size_t)vd->cfg.batch);
    memset(vd->grads, 0, vd->n_params * sizeof(float));
    int32_t *last = vd->last;
    float *obs_t = vd->obs_t, *state_rows = vd->st_t;
    /* ---- forward, online and target, over all T+1 steps ---- */
    memset(vd->h, 0, R * H * sizeof(float));
    memset(vd->ht, 0, R * H * sizeof(float));
    for (size_t t = 0; t < T1; t++) {
        for (size_t b = 0; b < Bt; b++) {
            for (size_t i = 0; i < n; i++)
                last[b * n + i] = t == 0 ? -1 : eb->actions[(b * T + t - 1) * n + i];
            memcpy(obs_t + b * n * od, eb->obs + (b * T1 + t) * n * od, n * od * sizeof(float));
            memcpy(state_rows + b * sd, eb->state + (b * T1 + t) * sd, sd * sizeof(float));
        }
        float *xt = vd->x + t * R * in;
        build_inputs(vd, xt, obs_t, state_rows, last, Bt);
        agent_step(vd, vd->params, vd->q + t * R * A, vd->h + (t + 1) * R * H,
                   vd->a1 + t * R * H, vd->gates + t * R * 4 * H, xt, vd->h + t * R * H,
                   vd->scratch, R);
        float *hin = vd->ht + (t & 1) * R * H, *hout = vd->ht + ((t + 1) & 1) * R * H;
        agent_step(vd, vd->target, vd->qt + t * R * A, hout, vd->a1t, vd->gt, xt, hin,
                   vd->scratch, R);
    }
    /* ---- chosen Q, double-Q targets, mixer rows (b,t) ---- */
    for (size_t b = 0; b < Bt; b++)
        for (size_t t = 0; t < T; t++) {
            size_t row = b * T + t;
            memcpy(vd->s0 + row * sd, eb->state + (b * T1 + t) * sd, sd * sizeof(float));
            memcpy(vd->s1 + row * sd, eb->state + (b * T1 + t + 1) * sd, sd * sizeof(float));
            for (size_t i = 0; i < n; i++) {
                int32_t a = eb->actions[row * n + i];
                vd->chosen[row * n + i] = vd->q[(t * R + b * n + i) * A + a];
                const float *qn = vd->q + ((t + 1) * R + b * n + i) * A;
                const float *qtn = vd->qt + ((t + 1) * R + b * n + i) * A;
                const uint8_t *av = eb->avail + ((b * T1 + t + 1) * n + i) * A;
                int best = -1;
                for (size_t k = 0; k < A; k++)
                    if (av[k] && (best < 0 || qn[k] > qn[best])) best = (int)k;
                vd->tq[row * n + i] = best >= 0 ? qtn[best] : 0.0f;
            }
        }
    const float *mp = vd->params + vd->n_agent, *mt = vd->target + vd->n_agent;
    br_mixer_forward(&vd->mixer, mp, vd->qtot, vd->msaved, vd->chosen, vd->s0, vd->mscratch, NB);
    br_mixer_forward(&vd->mixer, mt, vd->ttot, NULL, vd->tq, vd->s1, vd->mscratch, NB);
    double msum = 0, lsum = 0;
    for (size_t r = 0; r < NB; r++) msum += eb->filled[r];
    if (msum < 1) return 0;
    for (size_t r = 0; r < NB; r++) {
        /* fixed-horizon tasks: no bootstrap past the episode's last step, terminal or limit
         * (the value after the limit is 0, and Q there is never trained) */
        const int cont = (int)(r % T) + 1 < eb->length[r / T] && !eb->terminated[r];
        float y = eb->reward[r] + (cont ? vd->cfg.gamma * vd->ttot[r] : 0.0f);
        float d = eb->filled[r] ? vd->qtot[r] - y : 0.0f;
        lsum += (double)d * d;
        vd->dqtot[r] = (float)(2.0 * d / msum);
    }
    /* ---- backward: mixer, then agents through time ---- */
    memset(vd->dchosen, 0, NB * n * sizeof(float));
    br_mixer_backward(&vd->mixer, mp, vd->grads + vd->n_agent, vd->dchosen, vd->dqtot,
                      vd->msaved, vd->chosen, vd->s0, vd->mscratch, NB);
    agent_p a = agent_layout(vd, vd->params), g = agent_layout(vd, vd->grads);
    memset(vd->dh, 0, R * H * sizeof(float));
    for (size_t tt = T; tt-- > 0;) {
        memset(vd->dq, 0, R * A * sizeof(float));
        for (size_t b = 0; b < Bt; b++)
            for (size_t i = 0; i < n; i++) {
                size_t row = b * T + tt;
                vd->dq[(b * n + i) * A + eb->actions[row * n + i]] = vd->dchosen[row * n + i];
            }
        const float *ht1 = vd->h + (tt + 1) * R * H;
        br_dense_backward(vd->dh, g.fc2_w, g.fc2_b, vd->dq, ht1, a.fc2_w, R, H, A);
        memset(vd->dhp, 0, R * H * sizeof(float));
        memset(vd->da1, 0, R * H * sizeof(float));
        br_gru_backward(vd->da1, vd->dhp, g.w_ih, g.w_hh, g.b_ih, g.b_hh, vd->dh,
                        vd->gates + tt * R * 4 * H, vd->a1 + tt * R * H, vd->h + tt * R * H,
                        a.w_ih, a.w_hh, vd->scratch, R, H, H);
        br_relu_backward_inplace(vd->da1, vd->a1 + tt * R * H, R * H);
        br_dense_backward(NULL, g.fc1_w, g.fc1_b, vd->da1, vd->x + tt * R * in, a.fc1_w, R, in, H);
        memcpy(vd->dh, vd->dhp, R * H * sizeof(float));
    }
    return (float)(lsum / msum);
}

br_status br_vd_train(br_vd_t *vd, const br_episodes_t *batch, float *loss)
{
    if (batch->count < 1 || batch->count > (size_t)vd->cfg.batch)
        return br_error(BR_EINVAL, "training batch of %zu episodes (want 1..%d)", batch->count,
                        vd->cfg.batch);
    float l = br_vd_loss_grad(vd, batch);
    if (loss) *loss = l;
    br_clip_grad_norm(vd->grads, vd->n_params, vd->cfg.grad_clip);
    br_adamw_step(vd->params, vd->grads, vd->m, vd->v, vd->n_params, vd->cfg.lr, 0.9f, 0.999f,
                  1e-8f, 0.0f, ++vd->adam_t);
    if (++vd->updates % vd->cfg.target_every == 0) br_vd_update_target(vd);
    return BR_OK;
}
