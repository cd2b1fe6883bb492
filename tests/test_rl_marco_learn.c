/* Value-decomposition learners: mixer gradients (VDN, QMIX) and the whole TD loss's gradient
 * (agents through time + mixer) against finite differences; QMIX weights non-negative and
 * Q_tot monotonic in every Q_i; episode collection bookkeeping; VDN learns the switch riddle
 * with n = 2 agents. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "harness.h"
#include "rl/qmix.h"
#include "rl/vdn.h"

static double mix_loss(const br_mixer_t *m, const float *p, const float *q, const float *s,
                       const float *c, size_t N, float *scratch)
{
    float qt[16];
    br_mixer_forward(m, p, qt, NULL, q, s, scratch, N);
    double l = 0;
    for (size_t r = 0; r < N; r++) l += (double)c[r] * qt[r];
    return l;
}

static void test_mixer_grad(br_mixer_kind kind)
{
    enum { N = 5, n = 3, sd = 4, E = 6 };
    br_mixer_t m;
    br_mixer_init(&m, kind, n, sd, E);
    br_rng_t r;
    br_rng_seed(&r, 17);
    size_t P = m.n_params;
    float *p = calloc(P + 1, sizeof(float)), *g = calloc(P + 1, sizeof(float));
    br_mixer_init_params(&m, p, &r);
    float q[N * n], s[N * sd], c[N], dq[N * n] = {0}, qt[N];
    br_rng_fill_uniform(&r, q, N * n, -2, 2);
    br_rng_fill_uniform(&r, s, N * sd, -1, 1);
    br_rng_fill_uniform(&r, c, N, -1, 1);
    float *saved = calloc(N * (m.saved_per_row + 1), sizeof(float));
    float *scratch = calloc(N * (n * E + 3 * E + 1), sizeof(float));
    br_mixer_forward(&m, p, qt, saved, q, s, scratch, N);
    br_mixer_backward(&m, p, g, dq, c, saved, q, s, scratch, N);
    int bad = 0;
    double worst = 0;
    const float eps = 1e-3f;
    for (size_t k = 0; k < P + N * n; k++) {
        float *v = k < P ? &p[k] : &q[k - P];
        float an = k < P ? g[k] : dq[k - P], keep = *v;
        *v = keep + eps;
        double lp = mix_loss(&m, p, q, s, c, N, scratch);
        *v = keep - eps;
        double lm = mix_loss(&m, p, q, s, c, N, scratch);
        *v = keep;
        double fd = (lp - lm) / (2 * eps), err = fabs(fd - an) / fmax(fabs(fd), 1e-2);
        if (err > worst) worst = err;
        bad += err > 1e-2;
    }
    CHECK_MSG(bad == 0, "%s mixer: %d gradients off (worst rel err %.3g)",
              kind == BR_MIXER_QMIX ? "QMIX" : "VDN", bad, worst);
    if (kind == BR_MIXER_VDN) CHECK_NEAR(qt[0], q[0] + q[1] + q[2], 1e-6);
    free(p), free(g), free(saved), free(scratch);
}

static void test_qmix_monotonic(void)
{
    enum { N = 64, n = 3, sd = 7, E = 8 };
    br_mixer_t m;
    br_mixer_init(&m, BR_MIXER_QMIX, n, sd, E);
    br_rng_t r;
    br_rng_seed(&r, 23);
    float *p = calloc(m.n_params, sizeof(float));
    br_mixer_init_params(&m, p, &r);
    /* push hypernetwork weights far negative: the weights must still come out >= 0 */
    for (size_t k = 0; k < m.n_params; k++) p[k] -= 0.5f;
    float s[N * sd], w1[N * n * E], wf[N * E];
    br_rng_fill_uniform(&r, s, N * sd, -3, 3);
    br_mixer_weights(&m, p, w1, wf, s, N);
    int neg = 0;
    for (int k = 0; k < N * n * E; k++) neg += w1[k] < 0;
    for (int k = 0; k < N * E; k++) neg += wf[k] < 0;
    CHECK_INT(neg, 0);
    /* dQ_tot/dQ_i >= 0 everywhere */
    float q[N * n], dq[N * n] = {0}, ones[N], qt[N];
    br_rng_fill_uniform(&r, q, N * n, -5, 5);
    for (int k = 0; k < N; k++) ones[k] = 1;
    float *saved = calloc(N * m.saved_per_row, sizeof(float));
    float *scratch = calloc(N * (n * E + 3 * E + 1), sizeof(float));
    float *g = calloc(m.n_params, sizeof(float));
    br_mixer_forward(&m, p, qt, saved, q, s, scratch, N);
    br_mixer_backward(&m, p, g, dq, ones, saved, q, s, scratch, N);
    int dec = 0;
    for (int k = 0; k < N * n; k++) dec += dq[k] < 0;
    CHECK_INT(dec, 0);
    free(p), free(saved), free(scratch), free(g);
}

/* the full TD loss's gradient (agent net through time + mixer) against finite differences */
static void test_learner_grad(br_mixer_kind kind)
{
    br_env_t *env;
    CHECK_OK(br_env_create(&env, "switch", 3, 4, 3));
    br_vd_config_t cfg = br_vd_default_config(kind);
    cfg.hidden = 6, cfg.embed = 4, cfg.batch = 4, cfg.act_batch = 4;
    br_vd_t *vd;
    CHECK_OK(br_vd_create(&vd, &env->spec, &cfg, 5));
    br_episodes_t eb;
    CHECK_OK(br_episodes_create(&eb, &env->spec, 4));
    br_rng_t r;
    br_rng_seed(&r, 1);
    br_sim_t sim = br_sim_real(env);
    br_vd_collect(vd, &sim, &eb, 1.0f, &r, NULL);
    /* a different target network, so the loss is not trivially small */
    float *p = br_vd_params(vd);
    size_t P = br_vd_n_params(vd);
    for (size_t k = 0; k < P; k++) p[k] += 0.05f * (float)(br_rng_double(&r) - 0.5);
    br_vd_loss_grad(vd, &eb);
    float *g = malloc(P * sizeof(float));
    memcpy(g, br_vd_grads(vd), P * sizeof(float));
    int bad = 0, tried = 0;
    double worst = 0;
    const float eps = 2e-3f;
    for (size_t k = 0; k < P; k += 1 + P / 400) {
        float keep = p[k];
        p[k] = keep + eps;
        double lp = br_vd_loss_grad(vd, &eb);
        p[k] = keep - eps;
        double lm = br_vd_loss_grad(vd, &eb);
        p[k] = keep;
        double fd = (lp - lm) / (2 * eps), err = fabs(fd - g[k]) / fmax(fabs(fd), 2e-2);
        tried++;
        if (err > 3e-2) bad++;
        if (err > worst) worst = err;
    }
    /* a double-Q argmax may flip under a perturbation: tolerate 2% such points */
    CHECK_MSG(bad <= tried / 50, "%s learner: %d of %d gradients off (worst rel err %.3g)",
              kind == BR_MIXER_QMIX ? "QMIX" : "VDN", bad, tried, worst);
    free(g);
    br_episodes_free(&eb);
    br_vd_free(vd);
    br_env_free(env);
}

static void test_collect(void)
{
    br_env_t *env;
    CHECK_OK(br_env_create(&env, "switch-bridges", 3, 8, 9));
    br_vd_config_t cfg = br_vd_default_config(BR_MIXER_VDN);
    cfg.act_batch = 8;
    br_vd_t *vd;
    CHECK_OK(br_vd_create(&vd, &env->spec, &cfg, 1));
    br_episodes_t eb;
    CHECK_OK(br_episodes_create(&eb, &env->spec, 8));
    br_rng_t r;
    br_rng_seed(&r, 2);
    double ret;
    long steps = br_vd_collect(vd, &(br_sim_t){env, (void (*)(void *))br_env_reset,
                                               (void (*)(void *, const int32_t *))br_env_step_unchecked, env},
                               &eb, 0.3f, &r, &ret);
    CHECK_INT(steps, br_episodes_steps(&eb));
    int bad = 0;
    const int T = env->spec.episode_limit, n = 3, A = 6;
    for (int b = 0; b < 8; b++) {
        int L = eb.length[b];
        bad += L < 1 || L > T;
        for (int t = 0; t < T; t++) {
            bad += eb.filled[b * T + t] != (t < L);
            if (t < L)
                for (int i = 0; i < n; i++) /* every stored action was available */
                    bad += !eb.avail[((b * (T + 1) + t) * n + i) * A + eb.actions[(b * T + t) * n + i]];
        }
        /* the last filled step ends the episode: terminal or at the limit */
        bad += !(eb.terminated[b * T + L - 1] || L == T);
    }
    CHECK_INT(bad, 0);
    br_episodes_free(&eb);
    br_vd_free(vd);
    br_env_free(env);
}

/* VDN on the 2-prisoner switch riddle (limit 2 days): the optimum is to tell on day 2 when the
 * prisoner was not in the room on day 1 (return 0.5); random play is below 0. */
static void test_learns_switch2(void)
{
    br_env_t *env, *ev;
    CHECK_OK(br_env_create(&env, "switch", 2, 16, 4));
    CHECK_OK(br_env_create(&ev, "switch", 2, 256, 5));
    br_vd_config_t cfg = br_vd_default_config(BR_MIXER_VDN);
    cfg.hidden = 16, cfg.act_batch = 256, cfg.lr = 3e-3f, cfg.target_every = 20;
    br_vd_t *vd;
    CHECK_OK(br_vd_create(&vd, &env->spec, &cfg, 8));
    br_episodes_t buf, stage, batch;
    CHECK_OK(br_episodes_create(&buf, &env->spec, 2000));
    CHECK_OK(br_episodes_create(&stage, &env->spec, 256));
    CHECK_OK(br_episodes_create(&batch, &env->spec, 32));
    br_rng_t r;
    br_rng_seed(&r, 3);
    br_sim_t sim = br_sim_real(env), sev = br_sim_real(ev);
    double before, after;
    br_vd_collect(vd, &sev, &stage, 1.0f, &r, &before);
    for (int it = 0; it < 600; it++) {
        float eps = it < 300 ? 1.0f - 0.95f * it / 300.0f : 0.05f;
        br_vd_collect(vd, &sim, &stage, eps, &r, NULL);
        br_episodes_push(&buf, &stage, 16);
        br_episodes_sample(&batch, &buf, 32, &r);
        CHECK_OK(br_vd_train(vd, &batch, NULL));
    }
    br_vd_collect(vd, &sev, &stage, 0.0f, &r, &after);
    CHECK_MSG(after > 0.4 && after > before + 0.3, "VDN switch n=2: random %.3f, learned %.3f", before, after);
    br_episodes_free(&buf), br_episodes_free(&stage), br_episodes_free(&batch);
    br_vd_free(vd);
    br_env_free(env), br_env_free(ev);
}

int main(void)
{
    test_mixer_grad(BR_MIXER_VDN);
    test_mixer_grad(BR_MIXER_QMIX);
    test_qmix_monotonic();
    test_learner_grad(BR_MIXER_VDN);
    test_learner_grad(BR_MIXER_QMIX);
    test_collect();
    test_learns_switch2();
    return th_exit();
}
