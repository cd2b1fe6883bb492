#include "rl/marco_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "nn/nn.h"

br_marco_model_config_t br_marco_model_defaults(void)
{
    br_marco_model_config_t c = {5, 128, 1e-3f, 256, 100, 10, 0};
    return c;
}

typedef struct {
    float *p, *m, *v, *best; /* (n_params) each */
    int t;
} net_t;

struct br_marco_model {
    br_marco_model_config_t cfg;
    br_env_spec_t spec;
    int n, A, sd, od, in_dyn, out_dyn, in_obs, out_obs;
    br_mlp_t dyn, obsn;
    net_t mem[BR_MARCO_MAX_MEMBERS], oh;
    float *g;                 /* gradient buffer (max n_params) */
    /* workspace for up to W rows */
    size_t W;
    float *acts, *scratch, *dout, *xin;
    /* dataset (rebuilt by each fit) */
    size_t rows, rows_cap, orows, orows_cap;
    float *X, *Y, *Rw;        /* (rows, in_dyn), (rows, sd), (rows) */
    uint8_t *Dn, *hold;       /* (rows) terminal, held out */
    float *XO, *YO;           /* (orows, in_obs), (orows, od) */
    uint8_t *YA, *ohold;      /* (orows, A), (orows) */
    uint32_t *perm;
    size_t perm_cap;
    br_rng_t rng;
};

static void net_free(net_t *n)
{
    br_free(n->p), br_free(n->m), br_free(n->v), br_free(n->best);
    memset(n, 0, sizeof *n);
}

static int net_alloc(net_t *n, size_t P)
{
    n->p = br_alloc(P * sizeof(float));
    n->m = br_alloc(P * sizeof(float));
    n->v = br_alloc(P * sizeof(float));
    n->best = br_alloc(P * sizeof(float));
    return n->p && n->m && n->v && n->best;
}

void br_marco_model_free(br_marco_model_t *m)
{
    if (!m) return;
    for (int k = 0; k < BR_MARCO_MAX_MEMBERS; k++) net_free(&m->mem[k]);
    net_free(&m->oh);
    br_free(m->g), br_free(m->acts), br_free(m->scratch), br_free(m->dout), br_free(m->xin);
    free(m->X), free(m->Y), free(m->Rw), free(m->Dn), free(m->hold);
    free(m->XO), free(m->YO), free(m->YA), free(m->ohold), free(m->perm);
    free(m);
}

static int ensure_work(br_marco_model_t *m, size_t rows)
{
    if (rows <= m->W) return 1;
    br_free(m->acts), br_free(m->scratch), br_free(m->dout), br_free(m->xin);
    size_t wa = br_mlp_acts_size(&m->dyn, rows), wb = br_mlp_acts_size(&m->obsn, rows);
    size_t mw = m->dyn.max_width > m->obsn.max_width ? m->dyn.max_width : m->obsn.max_width;
    size_t ow = (size_t)(m->out_dyn > m->out_obs ? m->out_dyn : m->out_obs);
    size_t iw = (size_t)(m->in_dyn > m->in_obs ? m->in_dyn : m->in_obs);
    m->acts = br_alloc((wa > wb ? wa : wb) * sizeof(float));
    m->scratch = br_alloc(2 * rows * mw * sizeof(float));
    m->dout = br_alloc(rows * ow * sizeof(float));
    m->xin = br_alloc(rows * iw * sizeof(float));
    m->W = rows;
    return m->acts && m->scratch && m->dout && m->xin;
}

br_status br_marco_model_create(br_marco_model_t **out, const br_env_spec_t *spec,
                                const br_marco_model_config_t *cfg, uint64_t seed)
{
    *out = NULL;
    if (cfg->members < 1 || cfg->members > BR_MARCO_MAX_MEMBERS || cfg->hidden < 1 ||
        cfg->hidden > 4096 || cfg->minibatch < 1 || cfg->max_epochs < 1 || cfg->patience < 1 ||
        !(cfg->lr > 0))
        return br_error(BR_EINVAL, "model: members must be in [1, %d], hidden in [1, 4096], "
                        "minibatch, epochs and patience >= 1, lr > 0", BR_MARCO_MAX_MEMBERS);
    br_marco_model_t *m = calloc(1, sizeof *m);
    if (!m) return br_error(BR_ENOMEM, "out of memory");
    m->cfg = *cfg;
    m->spec = *spec;
    m->n = spec->n_agents, m->A = spec->n_actions, m->sd = spec->state_dim, m->od = spec->obs_dim;
    m->in_dyn = m->sd + m->n * m->A, m->out_dyn = m->sd + 2;
    m->in_obs = m->sd + m->n, m->out_obs = m->od + m->A;
    int sd_[4] = {m->in_dyn, cfg->hidden, cfg->hidden, m->out_dyn};
    int so_[4] = {m->in_obs, cfg->hidden, cfg->hidden, m->out_obs};
    br_mlp_init(&m->dyn, 3, sd_);
    br_mlp_init(&m->obsn, 3, so_);
    br_rng_seed_stream(&m->rng, seed, 0x6d6f64u);
    int ok = 1;
    for (int k = 0; k < cfg->members && ok; k++) {
        ok = net_alloc(&m->mem[k], m->dyn.n_params);
        if (ok) br_mlp_init_params(&m->dyn, m->mem[k].p, &m->rng);
    }
    ok = ok && net_alloc(&m->oh, m->obsn.n_params);
    if (ok) br_mlp_init_params(&m->obsn, m->oh.p, &m->rng);
    size_t P = m->dyn.n_params > m->obsn.n_params ? m->dyn.n_params : m->obsn.n_params;
    m->g = br_alloc(P * sizeof(float));
    if (!ok || !m->g || !ensure_work(m, (size_t)cfg->minibatch)) {
        br_marco_model_free(m);
        return br_error(BR_ENOMEM, "out of memory for the world model");
    }
    *out = m;
    return BR_OK;
}

static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }
static inline float softplus(float x) { return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

/* Loss of one output row over feature groups; writes dL/dz into g when not NULL.
 * base: residual for continuous groups (NULL: none).  *units, *wrong count prediction units
 * (bit, category group, continuous value) and the mispredicted ones. */
static double groups_loss(const br_feat_group_t *grp, int ngroups, const float *z,
                          const float *y, const float *base, float *g, long *units, long *wrong)
{
    double L = 0;
    int off = 0;
    for (int k = 0; k < ngroups; k++) {
        const int d = grp[k].dim;
        const float *zz = z + off, *yy = y + off;
        float *gg = g ? g + off : NULL;
        if (grp[k].kind == BR_FEAT_BINARY) {
            for (int j = 0; j < d; j++) {
                L += softplus(zz[j]) - yy[j] * zz[j];
                if (gg) gg[j] = sigm(zz[j]) - yy[j];
                *wrong += (zz[j] > 0) != (yy[j] > 0.5f);
            }
            *units += d;
        } else if (grp[k].kind == BR_FEAT_CATEGORICAL) {
            float mx = zz[0];
            int am = 0, ay = 0;
            for (int j = 1; j < d; j++) {
                if (zz[j] > mx) mx = zz[j], am = j;
                if (yy[j] > yy[ay]) ay = j;
            }
            double s = 0;
            for (int j = 0; j < d; j++) s += exp(zz[j] - mx);
            double ls = log(s) + mx;
            for (int j = 0; j < d; j++) {
                L -= yy[j] * (zz[j] - ls);
                if (gg) gg[j] = (float)exp(zz[j] - ls) - yy[j];
            }
            *units += 1;
            *wrong += am != ay;
        } else {
            for (int j = 0; j < d; j++) {
                float pred = zz[j] + (base ? base[off + j] : 0.0f), e = pred - yy[j];
                L += (double)e * e;
                if (gg) gg[j] = 2 * e;
                *wrong += fabsf(e) > 0.05f;
            }
            *units += d;
        }
        off += d;
    }
    return L;
}

/* dynamics loss of one row: state groups + reward (squared) + terminal (BCE) */
static double dyn_row_loss(const br_marco_model_t *m, const float *z, const float *x,
                           const float *y, float r, uint8_t term, float *g, long *units,
                           long *wrong, double *rerr)
{
    double L = groups_loss(m->spec.state_groups, m->spec.n_state_groups, z, y, x, g, units, wrong);
    float e = z[m->sd] - r, zt = z[m->sd + 1];
    L += (double)e * e + softplus(zt) - term * zt;
    if (g) g[m->sd] = 2 * e, g[m->sd + 1] = sigm(zt) - term;
    if (rerr) *rerr += fabsf(e);
    return L;
}

static double obs_row_loss(const br_marco_model_t *m, const float *z, const float *yo,
                           const uint8_t *ya, float *g, long *units, long *wrong)
{
    double L = groups_loss(m->spec.obs_groups, m->spec.n_obs_groups, z, yo, NULL, g, units, wrong);
    for (int a = 0; a < m->A; a++) {
        float za = z[m->od + a];
        L += softplus(za) - ya[a] * za;
        if (g) g[m->od + a] = sigm(za) - ya[a];
    }
    return L;
}

static int grow(size_t *cap, size_t need, const size_t elem_bytes_per_row[], int nbuf,
                void **bufs[])
{
    if (need <= *cap) return 1;
    size_t nc = need + need / 2 + 64;
    for (int i = 0; i < nbuf; i++) {
        void *t = realloc(*bufs[i], nc * elem_bytes_per_row[i]);
        if (!t) return 0;
        *bufs[i] = t;
    }
    *cap = nc;
    return 1;
}

/* builds the transition and observation datasets from the episodes */
static br_status build_dataset(br_marco_model_t *m, const br_episodes_t *e)
{
    const int n = m->n, A = m->A, sd = m->sd, od = m->od, T = e->T;
    size_t rows = 0, orows = 0;
    for (size_t i = 0; i < e->count; i++) {
        rows += (size_t)e->length[i];
        orows += (size_t)(e->length[i] + 1) * n;
    }
    size_t rb[5] = {(size_t)m->in_dyn * sizeof(float), (size_t)sd * sizeof(float), sizeof(float), 1, 1};
    void **rbufs[5] = {(void **)&m->X, (void **)&m->Y, (void **)&m->Rw, (void **)&m->Dn, (void **)&m->hold};
    size_t ob[4] = {(size_t)m->in_obs * sizeof(float), (size_t)od * sizeof(float), (size_t)A, 1};
    void **obufs[4] = {(void **)&m->XO, (void **)&m->YO, (void **)&m->YA, (void **)&m->ohold};
    if (!grow(&m->rows_cap, rows, rb, 5, rbufs) || !grow(&m->orows_cap, orows, ob, 4, obufs))
        return br_error(BR_ENOMEM, "out of memory for the model's dataset (%zu transitions)", rows);
    size_t need = rows > orows ? rows : orows;
    if (need + 1 > m->perm_cap) {
        uint32_t *p = realloc(m->perm, (need + 64) * sizeof(uint32_t));
        if (!p) return br_error(BR_ENOMEM, "out of memory for the model's dataset");
        m->perm = p, m->perm_cap = need + 64;
    }
    size_t r = 0, o = 0;
    for (size_t i = 0; i < e->count; i++) {
        uint64_t key = i;
        uint8_t hold = e->count >= 10 && br_hash64(&key, sizeof key, 0x686f6c64u) % 10 == 0;
        const float *st = e->state + i * (size_t)(T + 1) * sd;
        const float *ob_ = e->obs + i * (size_t)(T + 1) * n * od;
        const uint8_t *av = e->avail + i * (size_t)(T + 1) * n * A;
        for (int t = 0; t < e->length[i]; t++, r++) {
            float *x = m->X + r * m->in_dyn;
            memcpy(x, st + (size_t)t * sd, sd * sizeof(float));
            memset(x + sd, 0, (size_t)n * A * sizeof(float));
            for (int a = 0; a < n; a++) x[sd + a * A + e->actions[(i * T + t) * n + a]] = 1;
            memcpy(m->Y + r * sd, st + (size_t)(t + 1) * sd, sd * sizeof(float));
            m->Rw[r] = e->reward[i * T + t];
            m->Dn[r] = e->terminated[i * T + t];
            m->hold[r] = hold;
        }
        for (int t = 0; t <= e->length[i]; t++)
            for (int a = 0; a < n; a++, o++) {
                float *x = m->XO + o * m->in_obs;
                memcpy(x, st + (size_t)t * sd, sd * sizeof(float));
                memset(x + sd, 0, n * sizeof(float));
                x[sd + a] = 1;
                memcpy(m->YO + o * od, ob_ + ((size_t)t * n + a) * od, od * sizeof(float));
                memcpy(m->YA + o * A, av + ((size_t)t * n + a) * A, A);
                m->ohold[o] = hold;
            }
    }
    m->rows = rows, m->orows = orows;
    return BR_OK;
}

/* m->perm[0..n) = the rows of one split (hold[r] == 0: training, shuffled and capped at
 * max_rows_per_epoch; hold[r] == 1: held out, in order); returns n. */
static size_t select_rows(br_marco_model_t *m, const uint8_t *hold, size_t rows, int train)
{
    size_t nsel = 0;
    for (size_t r = 0; r < rows; r++)
        if (hold[r] == !train) m->perm[nsel++] = (uint32_t)r;
    if (train)
        for (size_t i = nsel; i > 1; i--) {
            size_t j = br_rng_below(&m->rng, i);
            uint32_t t = m->perm[i - 1];
            m->perm[i - 1] = m->perm[j], m->perm[j] = t;
        }
    if (train && m->cfg.max_rows_per_epoch > 0 && nsel > (size_t)m->cfg.max_rows_per_epoch)
        nsel = (size_t)m->cfg.max_rows_per_epoch;
    return nsel;
}

/* one epoch (train) or evaluation (hold) of dynamics member k over its split;
 * returns the mean row loss */
static double dyn_pass(br_marco_model_t *m, int k, int train, long *units, long *wrong,
                       double *rerr, long *count)
{
    net_t *net = &m->mem[k];
    const size_t mb = (size_t)m->cfg.minibatch;
    size_t nsel = select_rows(m, m->hold, m->rows, train);
    double L = 0;
    for (size_t s = 0; s < nsel; s += mb) {
        size_t B = nsel - s < mb ? nsel - s : mb;
        for (size_t i = 0; i < B; i++)
            memcpy(m->xin + i * m->in_dyn, m->X + (size_t)m->perm[s + i] * m->in_dyn, m->in_dyn * sizeof(float));
        float *z = br_mlp_forward(&m->dyn, net->p, m->acts, m->xin, B);
        double Lb = 0;
        for (size_t i = 0; i < B; i++) {
            size_t r = m->perm[s + i];
            Lb += dyn_row_loss(m, z + i * m->out_dyn, m->X + r * m->in_dyn, m->Y + r * m->sd,
                               m->Rw[r], m->Dn[r], train ? m->dout + i * m->out_dyn : NULL, units,
                               wrong, rerr);
        }
        L += Lb;
        if (train) {
            for (size_t i = 0; i < B * m->out_dyn; i++) m->dout[i] /= (float)B;
            memset(m->g, 0, m->dyn.n_params * sizeof(float));
            br_mlp_backward(&m->dyn, net->p, m->g, NULL, m->acts, m->xin, m->dout, m->scratch, B);
            br_adamw_step(net->p, m->g, net->m, net->v, m->dyn.n_params, m->cfg.lr, 0.9f, 0.999f,
                          1e-8f, 0.0f, ++net->t);
        }
    }
    if (count) *count = (long)nsel;
    return nsel ? L / (double)nsel : 0;
}

static double obs_pass(br_marco_model_t *m, int train, long *units, long *wrong)
{
    net_t *net = &m->oh;
    const size_t mb = (size_t)m->cfg.minibatch;
    size_t nsel = select_rows(m, m->ohold, m->orows, train);
    double L = 0;
    for (size_t s = 0; s < nsel; s += mb) {
        size_t B = nsel - s < mb ? nsel - s : mb;
        for (size_t i = 0; i < B; i++)
            memcpy(m->xin + i * m->in_obs, m->XO + (size_t)m->perm[s + i] * m->in_obs, m->in_obs * sizeof(float));
        float *z = br_mlp_forward(&m->obsn, net->p, m->acts, m->xin, B);
        for (size_t i = 0; i < B; i++) {
            size_t r = m->perm[s + i];
            L += obs_row_loss(m, z + i * m->out_obs, m->YO + r * m->od, m->YA + r * m->A,
                              train ? m->dout + i * m->out_obs : NULL, units, wrong);
        }
        if (train) {
            for (size_t i = 0; i < B * m->out_obs; i++) m->dout[i] /= (float)B;
            memset(m->g, 0, m->obsn.n_params * sizeof(float));
            br_mlp_backward(&m->obsn, net->p, m->g, NULL, m->acts, m->xin, m->dout, m->scratch, B);
            br_adamw_step(net->p, m->g, net->m, net->v, m->obsn.n_params, m->cfg.lr, 0.9f, 0.999f,
                          1e-8f, 0.0f, ++net->t);
        }
    }
    return nsel ? L / (double)nsel : 0;
}

br_status br_marco_model_fit(br_marco_model_t *m, const br_episodes_t *data,
                             br_marco_fit_stats_t *stats)
{
    if (data->count < 1) return br_error(BR_EINVAL, "model fit: no real episodes yet");
    BR_TRY(build_dataset(m, data));
    const int K = m->cfg.members;
    long nhold = 0;
    for (size_t r = 0; r < m->rows; r++) nhold += m->hold[r];
    const int use_hold = nhold > 0;
    /* the held-out split doubles as the training split when it is empty (tiny data) */
    if (!use_hold) memset(m->hold, 0, m->rows), memset(m->ohold, 0, m->orows);
    double best = HUGE_VAL, train_loss = 0;
    int since = 0, ep;
    for (ep = 0; ep < m->cfg.max_epochs; ep++) {
        long u = 0, w = 0;
        train_loss = 0;
        for (int k = 0; k < K; k++) train_loss += dyn_pass(m, k, 1, &u, &w, NULL, NULL) / K;
        train_loss += obs_pass(m, 1, &u, &w);
        double hl = 0;
        for (int k = 0; k < K; k++) {
            long c;
            hl += dyn_pass(m, k, !use_hold, &u, &w, NULL, &c) / K;
        }
        hl += obs_pass(m, !use_hold, &u, &w);
        if (!isfinite(best) || hl < best - 1e-6 * fabs(best)) {
            best = hl, since = 0;
            for (int k = 0; k < K; k++) memcpy(m->mem[k].best, m->mem[k].p, m->dyn.n_params * sizeof(float));
            memcpy(m->oh.best, m->oh.p, m->obsn.n_params * sizeof(float));
        } else if (++since >= m->cfg.patience) {
            ep++;
            break;
        }
    }
    for (int k = 0; k < K; k++) memcpy(m->mem[k].p, m->mem[k].best, m->dyn.n_params * sizeof(float));
    memcpy(m->oh.p, m->oh.best, m->obsn.n_params * sizeof(float));
    if (stats) {
        long u = 0, w = 0, c = 0;
        double rerr = 0;
        dyn_pass(m, 0, !use_hold, &u, &w, &rerr, &c);
        stats->epochs = ep;
        stats->train_loss = train_loss;
        stats->holdout_loss = best;
        stats->holdout_state_err = u ? (double)w / (double)u : 0;
        stats->holdout_reward_mae = c ? rerr / (double)c : 0;
        stats->holdout_rows = use_hold ? nhold : 0;
        stats->train_rows = (long)m->rows - (use_hold ? nhold : 0);
    }
    return BR_OK;
}

void br_marco_model_predict(br_marco_model_t *m, const float *state, const int32_t *actions,
                            float *means, float *reward, float *p_terminal)
{
    float *x = m->xin;
    memcpy(x, state, m->sd * sizeof(float));
    memset(x + m->sd, 0, (size_t)m->n * m->A * sizeof(float));
    for (int a = 0; a < m->n; a++) x[m->sd + a * m->A + actions[a]] = 1;
    for (int k = 0; k < m->cfg.members; k++) {
        float *z = br_mlp_forward(&m->dyn, m->mem[k].p, m->acts, x, 1);
        float *mu = means + (size_t)k * m->sd;
        int off = 0;
        for (int gi = 0; gi < m->spec.n_state_groups; gi++) {
            const br_feat_group_t *g = &m->spec.state_groups[gi];
            if (g->kind == BR_FEAT_BINARY)
                for (int j = 0; j < g->dim; j++) mu[off + j] = sigm(z[off + j]);
            else if (g->kind == BR_FEAT_CATEGORICAL) {
                float mx = z[off], s = 0;
                for (int j = 1; j < g->dim; j++) mx = fmaxf(mx, z[off + j]);
                for (int j = 0; j < g->dim; j++) s += mu[off + j] = expf(z[off + j] - mx);
                for (int j = 0; j < g->dim; j++) mu[off + j] /= s;
            } else
                for (int j = 0; j < g->dim; j++) mu[off + j] = state[off + j] + z[off + j];
            off += g->dim;
        }
        if (k == 0) {
            *reward = z[m->sd];
            *p_terminal = sigm(z[m->sd + 1]);
        }
    }
}

/* ---------------- simulator ---------------- */
struct br_marco_sim {
    br_env_t view;
    br_marco_model_t *m;
    const br_episodes_t *starts;
    float beta;
    br_rng_t rng;
    int *member;     /* (B) */
    int *rows;       /* (B) gather list */
    float *x;        /* (B, in_dyn) */
    float *z;        /* (K, B, out_dyn) or (B, out_dyn) */
    float *mu;       /* (K, B, sd) next-state means for disagreement */
    float *xo;       /* (B n, in_obs) */
    float *acts, *tmpx;
    double dis_sum;
    long dis_n;
};

br_env_t *br_marco_sim_view(br_marco_sim_t *s) { return &s->view; }
void br_marco_sim_set_beta(br_marco_sim_t *s, float beta) { s->beta = beta; }

double br_marco_sim_take_disagreement(br_marco_sim_t *s)
{
    double d = s->dis_n ? s->dis_sum / (double)s->dis_n : 0;
    s->dis_sum = 0, s->dis_n = 0;
    return d;
}

void br_marco_sim_free(br_marco_sim_t *s)
{
    if (!s) return;
    br_env_t *e = &s->view;
    br_free(e->state), br_free(e->obs), br_free(e->avail), br_free(e->reward);
    br_free(e->done), br_free(e->terminated), br_free(e->t);
    br_free(s->member), br_free(s->rows), br_free(s->x), br_free(s->z), br_free(s->mu);
    br_free(s->xo), br_free(s->acts), br_free(s->tmpx);
    free(s);
}

br_status br_marco_sim_create(br_marco_sim_t **out, br_marco_model_t *m,
                              const br_episodes_t *starts, int batch, float beta, uint64_t seed)
{
    *out = NULL;
    if (batch < 1) return br_error(BR_EINVAL, "simulator batch must be >= 1");
    br_marco_sim_t *s = calloc(1, sizeof *s);
    if (!s) return br_error(BR_ENOMEM, "out of memory");
    s->m = m, s->starts = starts, s->beta = beta;
    br_rng_seed_stream(&s->rng, seed, 0x73696du);
    br_env_t *e = &s->view;
    e->spec = m->spec;
    e->batch = batch;
    const size_t B = (size_t)batch, n = m->n, K = m->cfg.members;
    e->state = br_alloc(B * m->sd * sizeof(float));
    e->obs = br_alloc(B * n * m->od * sizeof(float));
    e->avail = br_alloc(B * n * m->A);
    e->reward = br_alloc(B * sizeof(float));
    e->done = br_alloc(B);
    e->terminated = br_alloc(B);
    e->t = br_alloc(B * sizeof(int32_t));
    s->member = br_alloc(B * sizeof(int));
    s->rows = br_alloc(B * sizeof(int));
    s->x = br_alloc(B * m->in_dyn * sizeof(float));
    s->z = br_alloc(K * B * m->out_dyn * sizeof(float));
    s->mu = br_alloc(K * B * m->sd * sizeof(float));
    s->xo = br_alloc(B * n * m->in_obs * sizeof(float));
    size_t wa = br_mlp_acts_size(&m->dyn, B), wb = br_mlp_acts_size(&m->obsn, B * n);
    s->acts = br_alloc((wa > wb ? wa : wb) * sizeof(float));
    s->tmpx = br_alloc(B * m->in_dyn * sizeof(float));
    if (!e->state || !e->obs || !e->avail || !e->reward || !e->done || !e->terminated || !e->t ||
        !s->member || !s->rows || !s->x || !s->z || !s->mu || !s->xo || !s->acts || !s->tmpx) {
        br_marco_sim_free(s);
        return br_error(BR_ENOMEM, "out of memory for %d simulated environments", batch);
    }
    *out = s;
    return BR_OK;
}

/* obs and avail of every agent of env b from the observation head outputs zo (n, out_obs) */
static void decode_obs(br_marco_sim_t *s, int b, const float *zo)
{
    br_marco_model_t *m = s->m;
    const int n = m->n, od = m->od, A = m->A;
    for (int i = 0; i < n; i++) {
        const float *z = zo + (size_t)i * m->out_obs;
        float *o = s->view.obs + ((size_t)b * n + i) * od;
        int off = 0;
        for (int gi = 0; gi < m->spec.n_obs_groups; gi++) {
            const br_feat_group_t *g = &m->spec.obs_groups[gi];
            if (g->kind == BR_FEAT_BINARY)
                for (int j = 0; j < g->dim; j++) o[off + j] = z[off + j] > 0 ? 1.0f : 0.0f;
            else if (g->kind == BR_FEAT_CATEGORICAL) {
                int am = 0;
                for (int j = 1; j < g->dim; j++)
                    if (z[off + j] > z[off + am]) am = j;
                for (int j = 0; j < g->dim; j++) o[off + j] = j == am;
            } else
                for (int j = 0; j < g->dim; j++) o[off + j] = z[off + j];
            off += g->dim;
        }
        uint8_t *av = s->view.avail + ((size_t)b * n + i) * A;
        int any = 0, am = 0;
        for (int a = 0; a < A; a++) {
            av[a] = z[od + a] > 0;
            any |= av[a];
            if (z[od + a] > z[od + am]) am = a;
        }
        if (!any) av[am] = 1;
    }
}

void br_marco_sim_reset(void *sim)
{
    br_marco_sim_t *s = sim;
    br_env_t *e = &s->view;
    const br_episodes_t *st = s->starts;
    const size_t n = s->m->n, sd = s->m->sd, od = s->m->od, A = s->m->A, T1 = st->T + 1;
    for (int b = 0; b < e->batch; b++) {
        size_t i = br_rng_below(&s->rng, st->count);
        memcpy(e->state + b * sd, st->state + i * T1 * sd, sd * sizeof(float));
        memcpy(e->obs + b * n * od, st->obs + i * T1 * n * od, n * od * sizeof(float));
        memcpy(e->avail + b * n * A, st->avail + i * T1 * n * A, n * A);
        e->reward[b] = 0, e->done[b] = 0, e->terminated[b] = 0, e->t[b] = 0;
    }
}

void br_marco_sim_step(void *sim, const int32_t *actions)
{
    br_marco_sim_t *s = sim;
    br_marco_model_t *m = s->m;
    br_env_t *e = &s->view;
    const int B = e->batch, n = m->n, A = m->A, sd = m->sd, K = m->cfg.members;
    const int od_out = m->out_dyn;
    int nact = 0;
    for (int b = 0; b < B; b++) {
        if (e->done[b]) continue;
        float *x = s->x + (size_t)nact * m->in_dyn;
        memcpy(x, e->state + (size_t)b * sd, sd * sizeof(float));
        memset(x + sd, 0, (size_t)n * A * sizeof(float));
        for (int i = 0; i < n; i++) x[sd + i * A + actions[b * n + i]] = 1;
        s->rows[nact] = b;
        s->member[nact] = (int)br_rng_below(&s->rng, (uint64_t)K);
        nact++;
    }
    if (!nact) return;
    /* z (K, nact, out): every member on every row when the disagreement is needed, else
     * each member only on the rows that drew it */
    if (s->beta > 0) {
        for (int k = 0; k < K; k++) {
            float *z = br_mlp_forward(&m->dyn, m->mem[k].p, s->acts, s->x, (size_t)nact);
            memcpy(s->z + (size_t)k * nact * od_out, z, (size_t)nact * od_out * sizeof(float));
        }
    } else {
        for (int k = 0; k < K; k++) {
            int cnt = 0;
            for (int r = 0; r < nact; r++)
                if (s->member[r] == k)
                    memcpy(s->tmpx + (size_t)cnt++ * m->in_dyn, s->x + (size_t)r * m->in_dyn, m->in_dyn * sizeof(float));
            if (!cnt) continue;
            float *z = br_mlp_forward(&m->dyn, m->mem[k].p, s->acts, s->tmpx, (size_t)cnt);
            cnt = 0;
            for (int r = 0; r < nact; r++)
                if (s->member[r] == k)
                    memcpy(s->z + ((size_t)k * nact + r) * od_out, z + (size_t)cnt++ * od_out, od_out * sizeof(float));
        }
    }
    for (int r = 0; r < nact; r++) {
        const int b = s->rows[r], k = s->member[r];
        const float *x = s->x + (size_t)r * m->in_dyn;
        float *ns = e->state + (size_t)b * sd;
        /* means of every member (disagreement) and sampling from member k */
        double dis = 0;
        int off = 0;
        for (int gi = 0; gi < m->spec.n_state_groups; gi++) {
            const br_feat_group_t *g = &m->spec.state_groups[gi];
            const int d = g->dim;
            for (int kk = (s->beta > 0 ? 0 : k); kk < (s->beta > 0 ? K : k + 1); kk++) {
                const float *z = s->z + ((size_t)kk * nact + r) * od_out + off;
                float *mu = s->mu + ((size_t)kk * nact + r) * sd + off;
                if (g->kind == BR_FEAT_BINARY)
                    for (int j = 0; j < d; j++) mu[j] = sigm(z[j]);
                else if (g->kind == BR_FEAT_CATEGORICAL) {
                    float mx = z[0], sum = 0;
                    for (int j = 1; j < d; j++) mx = fmaxf(mx, z[j]);
                    for (int j = 0; j < d; j++) sum += mu[j] = expf(z[j] - mx);
                    for (int j = 0; j < d; j++) mu[j] /= sum;
                } else
                    for (int j = 0; j < d; j++) mu[j] = x[off + j] + z[j];
            }
            if (s->beta > 0)
                for (int j = 0; j < d; j++) {
                    double mean = 0, var = 0;
                    for (int kk = 0; kk < K; kk++) mean += s->mu[((size_t)kk * nact + r) * sd + off + j];
                    mean /= K;
                    for (int kk = 0; kk < K; kk++) {
                        double dd = s->mu[((size_t)kk * nact + r) * sd + off + j] - mean;
                        var += dd * dd;
                    }
                    dis += var / K;
                }
            const float *mu = s->mu + ((size_t)k * nact + r) * sd + off;
            if (g->kind == BR_FEAT_BINARY)
                for (int j = 0; j < d; j++) ns[off + j] = br_rng_float(&s->rng) < mu[j] ? 1.0f : 0.0f;
            else if (g->kind == BR_FEAT_CATEGORICAL) {
                float u = br_rng_float(&s->rng), c = 0;
                int pick = d - 1;
                for (int j = 0; j < d; j++) {
                    c += mu[j];
                    if (u < c) { pick = j; break; }
                }
                for (int j = 0; j < d; j++) ns[off + j] = j == pick;
            } else
                for (int j = 0; j < d; j++) ns[off + j] = mu[j];
            off += d;
        }
        const float *z = s->z + ((size_t)k * nact + r) * od_out;
        e->reward[b] = z[sd] + (s->beta > 0 ? s->beta * (float)dis : 0.0f);
        if (s->beta > 0) s->dis_sum += dis, s->dis_n++;
        e->terminated[b] = br_rng_float(&s->rng) < sigm(z[sd + 1]);
        e->t[b]++;
        e->done[b] = e->terminated[b] || e->t[b] >= m->spec.episode_limit;
    }
    /* observations and available actions from the observation head */
    for (int r = 0; r < nact; r++) {
        const int b = s->rows[r];
        for (int i = 0; i < n; i++) {
            float *xo = s->xo + ((size_t)r * n + i) * m->in_obs;
            memcpy(xo, e->state + (size_t)b * sd, sd * sizeof(float));
            memset(xo + sd, 0, n * sizeof(float));
            xo[sd + i] = 1;
        }
    }
    float *zo = br_mlp_forward(&m->obsn, m->oh.p, s->acts, s->xo, (size_t)nact * n);
    for (int r = 0; r < nact; r++) decode_obs(s, s->rows[r], zo + (size_t)r * n * m->out_obs);
}
