#include "rl/marco.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/progress.h"
#include "rl/dec_pomdp.h"
#include "rl/replay.h"
#include "rl/vdn.h"

br_marco_config_t br_marco_defaults(void)
{
    br_marco_config_t c;
    memset(&c, 0, sizeof c);
    c.base = br_vd_run_defaults();
    c.explore = true;
    c.beta = 3.0f;
    c.policy_updates = 500;
    c.explore_updates = 200;
    c.model_envs = 8;
    c.real_eps = 0.1f;
    c.model = br_marco_model_defaults();
    return c;
}

br_status br_marco_check(const br_marco_config_t *c)
{
    BR_TRY(br_vd_run_check(&c->base));
    if (c->init_steps > c->base.real_steps)
        return br_error(BR_EINVAL, "--init-steps %ld exceeds the budget --real-steps %ld",
                        c->init_steps, c->base.real_steps);
    if (c->policy_updates < 1 || c->explore_updates < 0 || c->model_envs < 1 || c->model_envs > 4096)
        return br_error(BR_EINVAL, "--policy-updates must be >= 1, --explore-updates >= 0, "
                        "--model-envs in [1, 4096]");
    if (!(c->beta >= 0) || !(c->real_eps >= 0 && c->real_eps <= 1))
        return br_error(BR_EINVAL, "--beta must be >= 0 and --real-eps in [0, 1]");
    const br_marco_model_config_t *m = &c->model;
    if (m->members < 1 || m->members > BR_MARCO_MAX_MEMBERS || m->hidden < 1 || m->hidden > 4096 ||
        m->max_epochs < 1 || m->patience < 1 || m->minibatch < 1 || !(m->lr > 0))
        return br_error(BR_EINVAL, "model: --members in [1, %d], --model-hidden in [1, 4096], "
                        "--model-epochs and --patience >= 1", BR_MARCO_MAX_MEMBERS);
    return BR_OK;
}

static double mean_return(const br_episodes_t *e, double *std)
{
    double s = 0, s2 = 0;
    for (size_t b = 0; b < e->count; b++) {
        double r = 0;
        for (int t = 0; t < e->length[b]; t++) r += e->reward[b * e->T + t];
        s += r, s2 += r * r;
    }
    double n = (double)e->count, m = s / n;
    *std = sqrt(fmax(0, s2 / n - m * m));
    return m;
}

/* collects about `steps` real steps with `vd` (epsilon eps) into the dataset; returns steps */
static long collect_real(br_vd_t *vd, br_env_t *env, br_episodes_t *stage, br_episodes_t *data,
                         long steps, float eps, br_rng_t *rng)
{
    br_sim_t sim = br_sim_real(env);
    long done = 0;
    while (done < steps) {
        done += br_vd_collect(vd, &sim, stage, eps, rng, NULL);
        br_episodes_push(data, stage, (size_t)env->batch);
    }
    return done;
}

/* `updates` gradient steps of vd on episodes rolled out in the model simulator */
static br_status train_in_model(br_vd_t *vd, br_marco_sim_t *sim, br_episodes_t *stage,
                                br_episodes_t *buf, br_episodes_t *batch, int updates,
                                long *update_count, long anneal, br_rng_t *rng, double *ret)
{
    br_sim_t s = {br_marco_sim_view(sim), br_marco_sim_reset, br_marco_sim_step, sim};
    const int B = br_marco_sim_view(sim)->batch;
    const size_t bs = batch->cap;
    double rsum = 0;
    int rcount = 0;
    for (int u = 0; u < updates;) {
        float eps = *update_count >= anneal ? 0.05f : 1.0f - 0.95f * (float)*update_count / (float)anneal;
        double r;
        br_vd_collect(vd, &s, stage, eps, rng, &r);
        rsum += r, rcount++;
        br_episodes_push(buf, stage, (size_t)B);
        if (buf->count < bs) continue;
        br_episodes_sample(batch, buf, bs, rng);
        BR_TRY(br_vd_train(vd, batch, NULL));
        (*update_count)++;
        u++;
    }
    if (ret) *ret = rcount ? rsum / rcount : 0;
    return BR_OK;
}

br_status br_marco_run(const br_marco_config_t *c)
{
    BR_TRY(br_marco_check(c));
    const br_vd_run_config_t *b = &c->base;
    br_env_t *env = NULL, *eval = NULL;
    br_vd_t *task = NULL, *expl = NULL;
    br_marco_model_t *model = NULL;
    br_marco_sim_t *sim = NULL;
    br_runlog_t *log = NULL;
    br_episodes_t data = {0}, stage = {0}, mbuf = {0}, ebuf = {0}, batch = {0};
    br_status st;
    const long budget = b->real_steps;
    if ((st = br_env_create(&env, b->env, b->n_agents, b->envs, b->seed)) != BR_OK) goto done;
    if ((st = br_env_create(&eval, b->env, b->n_agents, b->eval_episodes, b->seed ^ 0xe7a1u)) != BR_OK) goto done;
    br_vd_config_t vc = br_vd_default_config(b->mixer);
    vc.hidden = b->hidden, vc.lr = b->lr, vc.batch = b->batch, vc.target_every = b->target_every;
    int ab = b->envs > b->eval_episodes ? b->envs : b->eval_episodes;
    vc.act_batch = ab > c->model_envs ? ab : c->model_envs;
    if ((st = br_vd_create(&task, &env->spec, &vc, b->seed)) != BR_OK) goto done;
    br_vd_config_t ec = vc;
    ec.state_input = 1;
    if (c->explore && (st = br_vd_create(&expl, &env->spec, &ec, b->seed ^ 0x6578u)) != BR_OK) goto done;
    if ((st = br_marco_model_create(&model, &env->spec, &c->model, b->seed)) != BR_OK) goto done;
    /* every real episode is kept (a ring of at most 50000 episodes) */
    size_t dcap = (size_t)(budget + 2L * b->envs);
    if (dcap > 50000) dcap = 50000;
    if ((st = br_episodes_create(&data, &env->spec, dcap)) != BR_OK) goto done;
    if ((st = br_episodes_create(&stage, &env->spec, (size_t)vc.act_batch)) != BR_OK) goto done;
    if ((st = br_episodes_create(&mbuf, &env->spec, (size_t)b->buffer)) != BR_OK) goto done;
    if ((st = br_episodes_create(&ebuf, &env->spec, (size_t)b->buffer)) != BR_OK) goto done;
    if ((st = br_episodes_create(&batch, &env->spec, (size_t)b->batch)) != BR_OK) goto done;
    if ((st = br_marco_sim_create(&sim, model, &data, c->model_envs, 0.0f, b->seed)) != BR_OK) goto done;
    if ((st = br_runlog_open(&log, b->out_dir)) != BR_OK) goto done;

    br_rng_t rng, erng; /* evaluation has its own stream: see BR_EVAL_STREAM */
    br_rng_seed_stream(&rng, b->seed, 0x6d72u);
    br_rng_seed_stream(&erng, b->seed, BR_EVAL_STREAM);
    const long init = c->init_steps > 0 ? c->init_steps : (budget / 10 > 1 ? budget / 10 : 1);
    const long per_iter = c->collect_steps > 0 ? c->collect_steps : (budget / 10 > 1 ? budget / 10 : 1);
    const long anneal = c->eps_anneal_updates > 0 ? c->eps_anneal_updates : 2L * c->policy_updates;
    const char *method = c->explore ? "marco" : "marco-no-explore";
    br_progress_t pb;
    br_progress_start(&pb, method, (double)budget, "step");
    pb.quiet |= b->quiet;
    br_sim_t sev = br_sim_real(eval);
    long steps = 0, task_updates = 0, expl_updates = 0;
    double dis = 0, expl_ret = 0; /* of the last exploration phase */
    int iter = 0;
    double m, sd;
    br_vd_collect(task, &sev, &stage, 0.0f, &erng, NULL);
    m = mean_return(&stage, &sd);
    if ((st = br_runlog_add(log, 0, m, sd, "{\"iteration\": 0}")) != BR_OK) goto done;
    long next_eval = b->eval_every; /* 0: after every iteration */
    steps += collect_real(task, env, &stage, &data, init, 1.0f, &rng);
    while (1) {
        iter++;
        br_marco_fit_stats_t fs;
        if ((st = br_marco_model_fit(model, &data, &fs)) != BR_OK) goto done;
        br_episodes_clear(&mbuf);
        double model_ret = 0;
        br_marco_sim_set_beta(sim, 0.0f);
        if ((st = train_in_model(task, sim, &stage, &mbuf, &batch, c->policy_updates, &task_updates,
                                 anneal, &rng, &model_ret)) != BR_OK) goto done;
        const int last = steps >= budget;
        if (last || steps >= next_eval) {
            while (b->eval_every > 0 && next_eval <= steps) next_eval += b->eval_every;
            br_vd_collect(task, &sev, &stage, 0.0f, &erng, NULL);
            m = mean_return(&stage, &sd);
            char extra[512];
            snprintf(extra, sizeof extra,
                     "{\"iteration\": %d, \"model_epochs\": %d, \"model_holdout_loss\": %.5f, "
                     "\"model_state_err\": %.5f, \"model_reward_mae\": %.5f, \"model_return\": %.5f, "
                     "\"policy_updates\": %ld, \"explore_return\": %.5f, \"disagreement\": %.6f}",
                     iter, fs.epochs, fs.holdout_loss, fs.holdout_state_err, fs.holdout_reward_mae,
                     model_ret, task_updates, expl_ret, dis);
            if ((st = br_runlog_add(log, steps, m, sd, extra)) != BR_OK) goto done;
            br_progress_updatef(&pb, (double)steps, "iter %d eval %.3f model %.3f", iter, m, model_ret);
        }
        if (last) break;
        long want = per_iter < budget - steps ? per_iter : budget - steps;
        if (c->explore) {
            br_episodes_clear(&ebuf);
            br_marco_sim_set_beta(sim, c->beta);
            if (c->explore_updates > 0 &&
                (st = train_in_model(expl, sim, &stage, &ebuf, &batch, c->explore_updates,
                                     &expl_updates, anneal, &rng, &expl_ret)) != BR_OK) goto done;
            dis = br_marco_sim_take_disagreement(sim);
            br_marco_sim_set_beta(sim, 0.0f);
            steps += collect_real(expl, env, &stage, &data, want, c->real_eps, &rng);
        } else {
            steps += collect_real(task, env, &stage, &data, want, c->real_eps, &rng);
        }
    }
    br_progress_finish(&pb);
    char fields[1536];
    snprintf(fields, sizeof fields,
             "{\"method\": \"%s\", \"env\": \"%s\", \"n_agents\": %d, \"seed\": %llu, "
             "\"mixer\": \"%s\", \"real_steps\": %ld, \"budget\": %ld, \"iterations\": %d, "
             "\"init_steps\": %ld, \"collect_steps\": %ld, \"policy_updates\": %d, "
             "\"explore_updates\": %d, \"beta\": %g, \"members\": %d, \"model_hidden\": %d, "
             "\"model_envs\": %d, \"real_eps\": %g, \"task_updates\": %ld, "
             "\"explore_updates_total\": %ld, \"batch\": %d, \"hidden\": %d, \"lr\": %g, "
             "\"eval_every\": %ld, \"param_hash\": \"%016llx\"}",
             method, env->spec.name, env->spec.n_agents, (unsigned long long)b->seed,
             b->mixer == BR_MIXER_QMIX ? "qmix" : "vdn", steps, budget, iter, init, per_iter,
             c->policy_updates, c->explore ? c->explore_updates : 0, c->beta, c->model.members,
             c->model.hidden, c->model_envs, c->real_eps, task_updates, expl_updates, b->batch,
             b->hidden, b->lr, b->eval_every, (unsigned long long)br_vd_param_hash(task));
    st = br_runlog_close(log, fields);
    log = NULL;
done:
    br_runlog_free(log);
    br_episodes_free(&data), br_episodes_free(&stage), br_episodes_free(&mbuf);
    br_episodes_free(&ebuf), br_episodes_free(&batch);
    br_marco_sim_free(sim);
    br_marco_model_free(model);
    br_vd_free(task), br_vd_free(expl);
    br_env_free(env), br_env_free(eval);
    return st;
}
