#include "rl/mfos.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/timer.h"
#include "nn/mlp.h"
#include "nn/nn.h"

#define NF 11 /* meta-state features */
#define NA 5  /* meta-action: the shaper's memory-1 logits */

void br_mfos_config_default(br_mfos_config_t *c)
{
    memset(c, 0, sizeof *c);
    br_game_find("ipd", &c->game);
    c->opponent = BR_LEARNER_NAIVE;
    c->opp_lr = 1.0;
    c->opp_lookahead = 1.0;
    c->gamma = 0.96;
    c->algo = BR_MFOS_ES;
    c->hidden = 32;
    c->batch = 16;
    c->meta_len = 50;
    c->iterations = 150;
    c->population = 32;
    c->sigma = 0.1;
    c->lr = 0.03;
    c->ppo_epochs = 4;
    c->ppo_minibatch = 256;
    c->ppo_clip = 0.2;
    c->meta_gamma = 0.99;
    c->gae_lambda = 0.95;
    c->entropy = 0.0;
    c->init_log_std = -0.5;
    c->eval_games = 256;
    c->seed = 1;
}

br_status br_mfos_check(const br_mfos_config_t *c)
{
    if (!c->game) return br_error(BR_EINVAL, "no inner game (known: %s)", br_game_names());
    if (!(c->gamma >= 0 && c->gamma < 1)) return br_error(BR_EINVAL, "inner discount %g must be in [0, 1)", c->gamma);
    if (!(c->opp_lr > 0) || !isfinite(c->opp_lr)) return br_error(BR_EINVAL, "opponent learning rate %g must be > 0", c->opp_lr);
    if (c->hidden < 1 || c->hidden > 4096) return br_error(BR_EINVAL, "hidden width %d must be in [1, 4096]", c->hidden);
    if (c->batch < 1 || c->batch > 65536) return br_error(BR_EINVAL, "batch %d must be in [1, 65536]", c->batch);
    if (c->meta_len < 1 || c->meta_len > 100000) return br_error(BR_EINVAL, "meta-episode length %d must be in [1, 100000]", c->meta_len);
    if ((double)c->batch * c->meta_len > 1e8) return br_error(BR_ENOMEM, "batch x meta-episode length = %.3g rows is too large", (double)c->batch * c->meta_len);
    if (c->iterations < 0) return br_error(BR_EINVAL, "iterations must be >= 0");
    if (c->algo == BR_MFOS_ES && (c->population < 2 || c->population % 2))
        return br_error(BR_EINVAL, "ES population %d must be even and >= 2", c->population);
    if (c->algo == BR_MFOS_ES && !(c->sigma > 0)) return br_error(BR_EINVAL, "ES sigma must be > 0");
    if (!(c->lr > 0)) return br_error(BR_EINVAL, "learning rate must be > 0");
    if (c->algo == BR_MFOS_PPO && (c->ppo_epochs < 1 || c->ppo_minibatch < 1))
        return br_error(BR_EINVAL, "PPO epochs and minibatch must be >= 1");
    if (c->eval_games < 1) return br_error(BR_EINVAL, "eval games must be >= 1");
    return BR_OK;
}

static double sigm(double x) { return 1 / (1 + exp(-x)); }

typedef struct {
    const br_mfos_config_t *c;
    br_mlp_t pi, vf;
    float *acts, *x, *scratch;     /* scratch for one batch forward */
    long inner_games;
} ctx_t;

/* Rollout outputs for PPO (any may be NULL). */
typedef struct {
    float *S;    /* (T, B, NF) */
    float *A;    /* (T, B, NA) */
    float *R;    /* (T, B) */
    float *LP;   /* (T, B) */
} traj_t;

/* Summary of a batch of meta-episodes. */
typedef struct {
    double shaper, opponent;          /* mean per-step payoffs over all meta-steps */
    double shaper_last, opponent_last;
    double pol0[5], pol1[5];          /* mean P(action 0) at the last meta-step */
} stats_t;

static void features(float *x, const double *th0_prev, const double *th1, int t, int T)
{
    for (int i = 0; i < 5; i++) {
        x[i] = (float)sigm(th0_prev[i]);
        x[5 + i] = (float)sigm(th1[i]);
    }
    x[10] = (float)t / (float)T;
}

/* Plays B games for T meta-steps.  Shaper: params (MLP mean; plus Gaussian noise with
 * log-std logstd when rng is given), or, when params is NULL, a memory-1 learner of kind
 * `shaper_kind` starting from th0_init.  th1_init (B, 5): the opponents' initial logits. */
static void rollout(ctx_t *cx, const float *params, const float *logstd, br_rng_t *rng,
                    int shaper_kind, const double *th0_init, const double *th1_init, int B,
                    traj_t *tr, stats_t *st)
{
    const br_mfos_config_t *c = cx->c;
    int T = c->meta_len;
    double *th0 = malloc((size_t)B * 5 * sizeof *th0), *th1 = malloc((size_t)B * 5 * sizeof *th1);
    double *prev = malloc((size_t)B * 5 * sizeof *prev);
    BR_ASSERT(th0 && th1 && prev); /* sizes bounded by br_mfos_check */
    memcpy(th1, th1_init, (size_t)B * 5 * sizeof *th1);
    for (int i = 0; i < B * 5; i++) prev[i] = th0_init ? th0_init[i] : 0;
    if (!params && th0_init) memcpy(th0, th0_init, (size_t)B * 5 * sizeof *th0);
    memset(st, 0, sizeof *st);
    for (int t = 0; t < T; t++) {
        if (params) {
            for (int b = 0; b < B; b++) features(cx->x + (size_t)b * NF, prev + b * 5, th1 + b * 5, t, T);
            const float *mu = br_mlp_forward(&cx->pi, params, cx->acts, cx->x, (size_t)B);
            for (int b = 0; b < B; b++) {
                double lp = 0;
                for (int i = 0; i < NA; i++) {
                    double a = mu[b * NA + i];
                    if (rng) {
                        double z = br_rng_normal(rng), s = exp(logstd[i]);
                        a += s * z;
                        lp += -0.5 * z * z - logstd[i] - 0.9189385332046727;
                    }
                    if (tr && tr->A) tr->A[((size_t)t * B + b) * NA + i] = (float)a;
                    th0[b * 5 + i] = fmax(-30, fmin(30, a));
                }
                if (tr && tr->S) memcpy(tr->S + ((size_t)t * B + b) * NF, cx->x + (size_t)b * NF, NF * sizeof(float));
                if (tr && tr->LP) tr->LP[(size_t)t * B + b] = (float)lp;
            }
        }
        for (int b = 0; b < B; b++) {
            double v[2], *a0 = th0 + b * 5, *a1 = th1 + b * 5;
            br_iterated_value_grad(v, NULL, c->game, 0, 0, a0, a1, c->gamma);
            st->shaper += v[0];
            st->opponent += v[1];
            if (t == T - 1) {
                st->shaper_last += v[0];
                st->opponent_last += v[1];
                for (int i = 0; i < 5; i++) {
                    st->pol0[i] += sigm(a0[i]);
                    st->pol1[i] += sigm(a1[i]);
                }
            }
            if (tr && tr->R) tr->R[(size_t)t * B + b] = (float)v[0];
            double old1[5];
            memcpy(old1, a1, sizeof old1);
            br_m1_learner_step(c->opponent, a1, a0, 1, c->game, c->gamma, c->opp_lr, c->opp_lookahead);
            memcpy(prev + b * 5, a0, 5 * sizeof *prev);
            if (!params) br_m1_learner_step((br_learner_kind)shaper_kind, a0, old1, 0, c->game, c->gamma, c->opp_lr, c->opp_lr);
        }
        cx->inner_games += B;
    }
    st->shaper /= (double)B * T;
    st->opponent /= (double)B * T;
    st->shaper_last /= B;
    st->opponent_last /= B;
    for (int i = 0; i < 5; i++) {
        st->pol0[i] /= B;
        st->pol1[i] /= B;
    }
    free(th0);
    free(th1);
    free(prev);
}

static void draw_opponents(double *th1, int B, br_rng_t *rng)
{
    for (int i = 0; i < B * 5; i++) th1[i] = br_rng_normal(rng);
}

/* Centred ranks in [-0.5, 0.5]. */
static void centred_ranks(double *out, const double *f, int n)
{
    for (int i = 0; i < n; i++) {
        int r = 0;
        for (int j = 0; j < n; j++) r += f[j] < f[i] || (f[j] == f[i] && j < i);
        out[i] = n > 1 ? (double)r / (n - 1) - 0.5 : 0;
    }
}

static br_status train_es(ctx_t *cx, float *phi, br_rng_t *rng, br_mfos_log_fn log, void *lctx,
                          void (*progress)(void *, int, double), void *pctx, double t0)
{
    const br_mfos_config_t *c = cx->c;
    size_t n = cx->pi.n_params;
    int K = c->population / 2, B = c->batch;
    float *eps = malloc((size_t)K * n * sizeof *eps), *cand = malloc(n * sizeof *cand);
    float *g = malloc(n * sizeof *g), *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    double *f = malloc((size_t)c->population * sizeof *f), *rk = malloc((size_t)c->population * sizeof *rk);
    double *th1 = malloc((size_t)B * 5 * sizeof *th1);
    if (!eps || !cand || !g || !m || !v || !f || !rk || !th1) {
        free(eps), free(cand), free(g), free(m), free(v), free(f), free(rk), free(th1);
        return br_error(BR_ENOMEM, "M-FOS ES: out of memory");
    }
    for (int it = 0; it < c->iterations; it++) {
        draw_opponents(th1, B, rng);
        double mean_s = 0, mean_o = 0;
        for (int k = 0; k < K; k++) {
            br_rng_fill_normal(rng, eps + (size_t)k * n, n, 1.0f);
            for (int sgn = 0; sgn < 2; sgn++) {
                for (size_t j = 0; j < n; j++)
                    cand[j] = phi[j] + (sgn ? -1.0f : 1.0f) * (float)c->sigma * eps[(size_t)k * n + j];
                stats_t st;
                rollout(cx, cand, NULL, NULL, 0, NULL, th1, B, NULL, &st);
                f[2 * k + sgn] = st.shaper;
                mean_s += st.shaper;
                mean_o += st.opponent;
            }
        }
        centred_ranks(rk, f, c->population);
        memset(g, 0, n * sizeof *g);
        for (int k = 0; k < K; k++) {
            float w = (float)((rk[2 * k] - rk[2 * k + 1]) / (c->population * c->sigma));
            for (size_t j = 0; j < n; j++) g[j] -= w * eps[(size_t)k * n + j]; /* ascent */
        }
        br_adamw_step(phi, g, m, v, n, (float)c->lr, 0.9f, 0.999f, 1e-8f, 0.0f, it + 1);
        br_mfos_log_t rec = {it + 1, mean_s / c->population, mean_o / c->population, br_now() - t0};
        if (log) log(lctx, &rec);
        if (progress) progress(pctx, it + 1, rec.shaper);
    }
    free(eps), free(cand), free(g), free(m), free(v), free(f), free(rk), free(th1);
    return BR_OK;
}

static br_status train_ppo(ctx_t *cx, float *phi, br_rng_t *rng, br_mfos_log_fn log, void *lctx,
                           void (*progress)(void *, int, double), void *pctx, double t0)
{
    const br_mfos_config_t *c = cx->c;
    int B = c->batch, T = c->meta_len;
    size_t N = (size_t)B * T, np = cx->pi.n_params, nv = cx->vf.n_params;
    size_t MB = (size_t)c->ppo_minibatch < N ? (size_t)c->ppo_minibatch : N;
    traj_t tr = {malloc(N * NF * sizeof(float)), malloc(N * NA * sizeof(float)),
                 malloc(N * sizeof(float)), malloc(N * sizeof(float))};
    float *val = malloc(N * sizeof(float)), *adv = malloc(N * sizeof(float)), *ret = malloc(N * sizeof(float));
    float *psi = malloc(nv * sizeof(float));
    float *gp = malloc(np * sizeof(float)), *gv = malloc(nv * sizeof(float));
    float *mp = calloc(np, sizeof(float)), *vp = calloc(np, sizeof(float));
    float *mv = calloc(nv, sizeof(float)), *vv = calloc(nv, sizeof(float));
    size_t wmax = cx->pi.max_width > cx->vf.max_width ? cx->pi.max_width : cx->vf.max_width;
    float *xa = malloc(MB * NF * sizeof(float)), *aa = malloc(MB * NA * sizeof(float));
    float *pacts = malloc(br_mlp_acts_size(&cx->pi, MB) * sizeof(float));
    float *vacts = malloc(br_mlp_acts_size(&cx->vf, N > MB ? N : MB) * sizeof(float));
    float *dmu = malloc(MB * NA * sizeof(float)), *dvv = malloc(MB * sizeof(float));
    float *scr = malloc(2 * MB * wmax * sizeof(float));
    size_t *idx = malloc(N * sizeof(size_t));
    double *th1 = malloc((size_t)B * 5 * sizeof *th1);
    float logstd[NA], glog[NA], mls[NA] = {0}, vls[NA] = {0};
    br_status st = BR_OK;
    if (!tr.S || !tr.A || !tr.R || !tr.LP || !val || !adv || !ret || !psi || !gp || !gv || !mp ||
        !vp || !mv || !vv || !xa || !aa || !pacts || !vacts || !dmu || !dvv || !scr || !idx || !th1) {
        st = br_error(BR_ENOMEM, "M-FOS PPO: out of memory");
        goto done;
    }
    for (int i = 0; i < NA; i++) logstd[i] = (float)c->init_log_std;
    br_mlp_init_params(&cx->vf, psi, rng);
    int step = 0;
    for (int it = 0; it < c->iterations; it++) {
        draw_opponents(th1, B, rng);
        stats_t s;
        rollout(cx, phi, logstd, rng, 0, NULL, th1, B, &tr, &s);
        /* Values of every state, then GAE backwards in time per game (no bootstrap at T:
         * the meta-episode ends; t/T is in the state). */
        const float *vo = br_mlp_forward(&cx->vf, psi, vacts, tr.S, N);
        memcpy(val, vo, N * sizeof(float));
        double mean = 0, sq = 0;
        for (int b = 0; b < B; b++) {
            double a = 0;
            for (int t = T - 1; t >= 0; t--) {
                size_t k = (size_t)t * B + b;
                double vnext = t + 1 < T ? val[k + B] : 0;
                double delta = tr.R[k] + c->meta_gamma * vnext - val[k];
                a = delta + c->meta_gamma * c->gae_lambda * a;
                adv[k] = (float)a;
                ret[k] = (float)(a + val[k]);
            }
        }
        for (size_t k = 0; k < N; k++) mean += adv[k];
        mean /= (double)N;
        for (size_t k = 0; k < N; k++) sq += (adv[k] - mean) * (adv[k] - mean);
        double sd = sqrt(sq / (double)N) + 1e-8;
        for (size_t k = 0; k < N; k++) adv[k] = (float)((adv[k] - mean) / sd);
        for (int ep = 0; ep < c->ppo_epochs; ep++) {
            for (size_t k = 0; k < N; k++) idx[k] = k;
            for (size_t k = N - 1; k > 0; k--) {
                size_t j = (size_t)br_rng_below(rng, k + 1), tmp = idx[k];
                idx[k] = idx[j];
                idx[j] = tmp;
            }
            for (size_t off = 0; off + MB <= N; off += MB) {
                for (size_t r = 0; r < MB; r++) {
                    memcpy(xa + r * NF, tr.S + idx[off + r] * NF, NF * sizeof(float));
                    memcpy(aa + r * NA, tr.A + idx[off + r] * NA, NA * sizeof(float));
                }
                const float *mu = br_mlp_forward(&cx->pi, phi, pacts, xa, MB);
                memset(glog, 0, sizeof glog);
                for (size_t r = 0; r < MB; r++) {
                    size_t k = idx[off + r];
                    double lp = 0, z[NA];
                    for (int i = 0; i < NA; i++) {
                        z[i] = (aa[r * NA + i] - mu[r * NA + i]) / exp(logstd[i]);
                        lp += -0.5 * z[i] * z[i] - logstd[i] - 0.9189385332046727;
                    }
                    double ratio = exp(lp - tr.LP[k]), A = adv[k];
                    /* loss = -min(ratio A, clip(ratio) A) / MB; gradient flows through the
                     * unclipped term only when it is the active minimum. */
                    int active = A >= 0 ? ratio <= 1 + c->ppo_clip : ratio >= 1 - c->ppo_clip;
                    double dlp = active ? -ratio * A / (double)MB : 0;
                    for (int i = 0; i < NA; i++) {
                        double sdv = exp(logstd[i]);
                        dmu[r * NA + i] = (float)(dlp * z[i] / sdv);
                        glog[i] += (float)(dlp * (z[i] * z[i] - 1));
                    }
                }
                for (int i = 0; i < NA; i++) glog[i] -= (float)c->entropy; /* -d(entropy)/dlogstd */
                memset(gp, 0, np * sizeof(float));
                br_mlp_backward(&cx->pi, phi, gp, NULL, pacts, xa, dmu, scr, MB);
                br_clip_grad_norm(gp, np, 1.0f);
                step++;
                br_adamw_step(phi, gp, mp, vp, np, (float)c->lr, 0.9f, 0.999f, 1e-8f, 0.0f, step);
                br_adamw_step(logstd, glog, mls, vls, NA, (float)c->lr, 0.9f, 0.999f, 1e-8f, 0.0f, step);
                for (int i = 0; i < NA; i++) logstd[i] = fmaxf(-3.0f, fminf(1.0f, logstd[i]));
                const float *vq = br_mlp_forward(&cx->vf, psi, vacts, xa, MB);
                for (size_t r = 0; r < MB; r++) dvv[r] = (vq[r] - ret[idx[off + r]]) / (float)MB;
                memset(gv, 0, nv * sizeof(float));
                br_mlp_backward(&cx->vf, psi, gv, NULL, vacts, xa, dvv, scr, MB);
                br_clip_grad_norm(gv, nv, 1.0f);
                br_adamw_step(psi, gv, mv, vv, nv, (float)c->lr, 0.9f, 0.999f, 1e-8f, 0.0f, step);
            }
        }
        br_mfos_log_t rec = {it + 1, s.shaper, s.opponent, br_now() - t0};
        if (log) log(lctx, &rec);
        if (progress) progress(pctx, it + 1, rec.shaper);
    }
done:
    free(tr.S), free(tr.A), free(tr.R), free(tr.LP), free(val), free(adv), free(ret), free(psi);
    free(gp), free(gv), free(mp), free(vp), free(mv), free(vv), free(xa), free(aa), free(pacts);
    free(vacts), free(dmu), free(dvv), free(scr), free(idx), free(th1);
    return st;
}

br_status br_mfos_run(const br_mfos_config_t *c, br_mfos_log_fn log, void *log_ctx,
                      void (*progress)(void *ctx, int it, double shaper), void *progress_ctx,
                      br_mfos_result_t *res)
{
    memset(res, 0, sizeof *res);
    BR_TRY(br_mfos_check(c));
    double t0 = br_now();
    ctx_t cx;
    memset(&cx, 0, sizeof cx);
    cx.c = c;
    int ps[4] = {NF, c->hidden, c->hidden, NA}, vs[4] = {NF, c->hidden, c->hidden, 1};
    br_mlp_init(&cx.pi, 3, ps);
    br_mlp_init(&cx.vf, 3, vs);
    int rows = c->batch > c->eval_games ? c->batch : c->eval_games;
    float *phi = malloc(cx.pi.n_params * sizeof *phi);
    cx.acts = malloc(br_mlp_acts_size(&cx.pi, (size_t)rows) * sizeof(float));
    cx.x = malloc((size_t)rows * NF * sizeof(float));
    double *th0 = malloc((size_t)c->eval_games * 5 * sizeof *th0), *th1 = malloc((size_t)c->eval_games * 5 * sizeof *th1);
    br_status st = BR_OK;
    if (!phi || !cx.acts || !cx.x || !th0 || !th1) {
        st = br_error(BR_ENOMEM, "M-FOS: out of memory");
        goto done;
    }
    br_rng_t rng;
    br_rng_seed(&rng, c->seed);
    br_mlp_init_params(&cx.pi, phi, &rng);
    /* Small last layer: the initial shaper is close to the uniform random memory-1 policy. */
    {
        size_t off = cx.pi.n_params - (size_t)NA * (c->hidden + 1);
        for (size_t j = off; j < cx.pi.n_params; j++) phi[j] *= 0.1f;
    }
    if (c->algo == BR_MFOS_ES) st = train_es(&cx, phi, &rng, log, log_ctx, progress, progress_ctx, t0);
    else st = train_ppo(&cx, phi, &rng, log, log_ctx, progress, progress_ctx, t0);
    if (st) goto done;

    /* Evaluation on fresh opponents (its own stream, so it does not depend on training). */
    br_rng_t er;
    br_rng_seed_stream(&er, c->seed, 99);
    draw_opponents(th1, c->eval_games, &er);
    for (int i = 0; i < c->eval_games * 5; i++) th0[i] = br_rng_normal(&er);
    stats_t s;
    rollout(&cx, phi, NULL, NULL, 0, NULL, th1, c->eval_games, NULL, &s);
    res->shaper = s.shaper;
    res->opponent = s.opponent;
    res->shaper_last = s.shaper_last;
    res->opponent_last = s.opponent_last;
    memcpy(res->shaper_policy, s.pol0, sizeof s.pol0);
    memcpy(res->opponent_policy, s.pol1, sizeof s.pol1);
    rollout(&cx, NULL, NULL, NULL, BR_LEARNER_NAIVE, th0, th1, c->eval_games, NULL, &s);
    res->naive_shaper = s.shaper;
    res->naive_opponent = s.opponent;
    rollout(&cx, NULL, NULL, NULL, BR_LEARNER_LOLA, th0, th1, c->eval_games, NULL, &s);
    res->lola_shaper = s.shaper;
    res->lola_opponent = s.opponent;
    res->mutual_cooperation = c->game->payoff[0][0][0];
    res->extortion = res->shaper > res->mutual_cooperation && res->shaper > res->opponent;
    res->wall_s = br_now() - t0;
    res->inner_games_per_s = (double)cx.inner_games / res->wall_s;
done:
    free(phi);
    free(cx.acts);
    free(cx.x);
    free(th0);
    free(th1);
    return st;
}
