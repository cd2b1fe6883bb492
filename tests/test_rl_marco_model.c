/* MARCO's world model: the ensemble fits the switch riddle's transitions exactly where they
 * are deterministic (visited set, light, reward, terminal) and learns the uniform law of the
 * next prisoner; it fits the particle physics of simple_reference; the simulator starts from
 * real initial states, respects the episode limit, and the disagreement bonus is zero for a
 * one-member ensemble and positive for an untrained ensemble. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "base/threads.h"
#include "rl/marco_model.h"
#include "rl/vdn.h"

static br_vd_t *random_policy(const br_env_spec_t *spec, int act_batch)
{
    br_vd_config_t c = br_vd_default_config(BR_MIXER_VDN);
    c.hidden = 4, c.act_batch = act_batch;
    br_vd_t *vd = NULL;
    CHECK_OK(br_vd_create(&vd, spec, &c, 1));
    return vd;
}

static void collect(br_vd_t *vd, br_env_t *env, br_episodes_t *data, int rounds, br_rng_t *r)
{
    br_episodes_t stage;
    CHECK_OK(br_episodes_create(&stage, &env->spec, (size_t)env->batch));
    br_sim_t sim = br_sim_real(env);
    for (int k = 0; k < rounds; k++) {
        br_vd_collect(vd, &sim, &stage, 1.0f, r, NULL);
        br_episodes_push(data, &stage, (size_t)env->batch);
    }
    br_episodes_free(&stage);
}

static void test_switch_fit(void)
{
    br_env_t *env;
    CHECK_OK(br_env_create(&env, "switch", 3, 32, 21));
    br_vd_t *vd = random_policy(&env->spec, 32);
    br_episodes_t data, fresh;
    CHECK_OK(br_episodes_create(&data, &env->spec, 1024));
    CHECK_OK(br_episodes_create(&fresh, &env->spec, 64));
    br_rng_t r;
    br_rng_seed(&r, 4);
    collect(vd, env, &data, 24, &r); /* 768 random episodes */
    br_marco_model_config_t mc = br_marco_model_defaults();
    mc.members = 2, mc.hidden = 64, mc.max_epochs = 150, mc.patience = 15, mc.lr = 3e-3f;
    br_marco_model_t *m;
    CHECK_OK(br_marco_model_create(&m, &env->spec, &mc, 7));
    br_marco_fit_stats_t fs;
    CHECK_OK(br_marco_model_fit(m, &data, &fs));
    CHECK(fs.holdout_rows > 0 && fs.train_rows > fs.holdout_rows);
    printf("switch fit: %d epochs, holdout loss %.4f\n", fs.epochs, fs.holdout_loss);
    /* fresh transitions never seen in training */
    collect(vd, env, &fresh, 2, &r);
    const int T = env->spec.episode_limit, sd = 7;
    long det_wrong = 0, total = 0, rew_wrong = 0, term_wrong = 0;
    double room_dev = 0;
    long room_n = 0;
    for (size_t i = 0; i < fresh.count; i++)
        for (int t = 0; t < fresh.length[i]; t++, total++) {
            const float *s = fresh.state + (i * (T + 1) + t) * sd, *s1 = s + sd;
            float mu[2 * 7], rw, pt;
            br_marco_model_predict(m, s, fresh.actions + (i * T + t) * 3, mu, &rw, &pt);
            int term = fresh.terminated[i * T + t];
            for (int k = 0; k < 2; k++) {
                /* visited bits and light are deterministic given (s, a) */
                if (!term)
                    for (int j = 0; j < 4; j++) det_wrong += (mu[k * 7 + j] > 0.5f) != (s1[j] > 0.5f);
                if (!term) /* after a tell the episode is over and the state frozen */
                    for (int j = 0; j < 3; j++) room_dev += fabs(mu[k * 7 + 4 + j] - 1.0 / 3), room_n++;
            }
            rew_wrong += fabsf(rw - fresh.reward[i * T + t]) > 0.25f;
            term_wrong += (pt > 0.5f) != term;
        }
    CHECK(total > 100);
    CHECK_MSG(det_wrong == 0, "switch model: %ld deterministic features wrong", det_wrong);
    CHECK_MSG(rew_wrong <= total / 100, "switch model: %ld of %ld rewards off by > 0.25", rew_wrong, total);
    CHECK_MSG(term_wrong == 0, "switch model: %ld of %ld terminals wrong", term_wrong, total);
    room_dev /= room_n;
    CHECK_MSG(room_dev < 0.1, "switch model: next prisoner law off uniform by %.3f on average", room_dev);

    /* the simulator: real initial states, the limit, sampled terminals */
    br_marco_sim_t *sim;
    CHECK_OK(br_marco_sim_create(&sim, m, &data, 16, 0.0f, 3));
    br_sim_t s = {br_marco_sim_view(sim), br_marco_sim_reset, br_marco_sim_step, sim};
    br_marco_sim_reset(sim);
    int start_ok = 1;
    for (int b = 0; b < 16; b++) {
        const float *st = br_marco_sim_view(sim)->state + b * sd;
        start_ok &= st[0] == 0 && st[1] == 0 && st[2] == 0 && st[3] == 0; /* nobody visited, light off */
    }
    CHECK(start_ok);
    br_episodes_t sims;
    CHECK_OK(br_episodes_create(&sims, &env->spec, 16));
    double ret;
    br_vd_collect(vd, &s, &sims, 1.0f, &r, &ret);
    int len_ok = 1;
    for (int b = 0; b < 16; b++) len_ok &= sims.length[b] >= 1 && sims.length[b] <= T;
    CHECK(len_ok);
    CHECK(ret < 0); /* random telling loses in the model as in reality */
    CHECK_NEAR(br_marco_sim_take_disagreement(sim), 0, 0); /* beta 0: not computed */
    br_marco_sim_set_beta(sim, 3.0f);
    br_vd_collect(vd, &s, &sims, 1.0f, &r, NULL);
    double dis = br_marco_sim_take_disagreement(sim);
    CHECK(dis >= 0 && dis < 0.05); /* trained members agree */
    br_episodes_free(&sims);
    br_marco_sim_free(sim);
    br_marco_model_free(m);
    /* an untrained ensemble disagrees; a single member never does */
    for (int K = 1; K <= 3; K += 2) {
        mc.members = K;
        CHECK_OK(br_marco_model_create(&m, &env->spec, &mc, 9));
        CHECK_OK(br_marco_sim_create(&sim, m, &data, 16, 3.0f, 3));
        br_sim_t s2 = {br_marco_sim_view(sim), br_marco_sim_reset, br_marco_sim_step, sim};
        br_episodes_t e2;
        CHECK_OK(br_episodes_create(&e2, &env->spec, 16));
        br_vd_collect(vd, &s2, &e2, 1.0f, &r, NULL);
        double d = br_marco_sim_take_disagreement(sim);
        if (K == 1) CHECK_NEAR(d, 0, 1e-12);
        else CHECK(d > 1e-4);
        br_episodes_free(&e2);
        br_marco_sim_free(sim);
        br_marco_model_free(m);
    }
    br_episodes_free(&data), br_episodes_free(&fresh);
    br_vd_free(vd);
    br_env_free(env);
}

static void test_particle_fit(void)
{
    br_env_t *env;
    CHECK_OK(br_env_create(&env, "simple-reference", 2, 16, 5));
    br_vd_t *vd = random_policy(&env->spec, 16);
    br_episodes_t data;
    CHECK_OK(br_episodes_create(&data, &env->spec, 160));
    br_rng_t r;
    br_rng_seed(&r, 6);
    collect(vd, env, &data, 10, &r); /* 160 episodes, 4000 transitions */
    br_marco_model_config_t mc = br_marco_model_defaults();
    mc.members = 1, mc.hidden = 64, mc.max_epochs = 150, mc.patience = 10, mc.lr = 2e-3f;
    br_marco_model_t *m;
    CHECK_OK(br_marco_model_create(&m, &env->spec, &mc, 7));
    br_marco_fit_stats_t fs;
    CHECK_OK(br_marco_model_fit(m, &data, &fs));
    /* one-step error of positions and velocities on fresh episodes, against no change */
    br_episodes_t fresh;
    CHECK_OK(br_episodes_create(&fresh, &env->spec, 16));
    collect(vd, env, &fresh, 1, &r);
    const int T = 25, sd = 40;
    double err = 0, base = 0, rerr = 0, rmean = 0;
    long cnt = 0;
    for (size_t i = 0; i < 16; i++)
        for (int t = 0; t < T; t++, cnt++) {
            const float *s = fresh.state + (i * (T + 1) + t) * sd, *s1 = s + sd;
            float mu[40], rw, pt;
            br_marco_model_predict(m, s, fresh.actions + (i * T + t) * 2, mu, &rw, &pt);
            for (int j = 0; j < 8; j++) {
                err += fabsf(mu[j] - s1[j]);
                base += fabsf(s[j] - s1[j]);
            }
            rerr += fabsf(rw - fresh.reward[i * T + t]);
            rmean += fresh.reward[i * T + t];
        }
    err /= cnt * 8, base /= cnt * 8, rerr /= cnt, rmean /= cnt;
    double rmad = 0;
    for (size_t i = 0; i < 16; i++)
        for (int t = 0; t < T; t++) rmad += fabs(fresh.reward[i * T + t] - rmean) / cnt;
    printf("particle fit: %d epochs, holdout loss %.4f\n", fs.epochs, fs.holdout_loss);
    CHECK_MSG(err < 0.25 * base, "particle model: position/velocity error %.4f vs %.4f for no change", err, base);
    /* the reward (squared distances to a landmark picked by the goal) needs far more than
     * 160 episodes to generalise well: only ask for better than the best constant */
    CHECK_MSG(rerr < 0.9 * rmad, "particle model: reward error %.3f vs %.3f for a constant", rerr, rmad);
    br_marco_model_free(m);
    br_episodes_free(&data), br_episodes_free(&fresh);
    br_vd_free(vd);
    br_env_free(env);
}

int main(void)
{
    br_set_threads(1);
    test_switch_fit();
    test_particle_fit();
    return th_exit();
}
