#include "rl/vdn_run.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/progress.h"
#include "base/timer.h"
#include "rl/dec_pomdp.h"
#include "rl/replay.h"
#include "rl/vdn.h"

br_vd_run_config_t br_vd_run_defaults(void)
{
    br_vd_run_config_t c;
    memset(&c, 0, sizeof c);
    c.mixer = BR_MIXER_VDN;
    c.envs = 4, c.updates_per_collect = 4, c.batch = 32, c.buffer = 5000, c.target_every = 200;
    c.hidden = 64, c.lr = 5e-4f, c.eval_episodes = 64;
    return c;
}

br_status br_vd_run_check(const br_vd_run_config_t *c)
{
    br_env_spec_t spec;
    BR_TRY(br_env_spec(&spec, c->env, c->n_agents));
    if (!c->out_dir || !*c->out_dir) return br_error(BR_EINVAL, "no output folder given (--out DIR)");
    if (c->envs < 1 || c->envs > 4096) return br_error(BR_EINVAL, "--envs must be in [1, 4096], got %d", c->envs);
    if (c->batch < 1 || c->batch > 4096) return br_error(BR_EINVAL, "--batch must be in [1, 4096], got %d", c->batch);
    if (c->buffer < c->batch) return br_error(BR_EINVAL, "--buffer (%d episodes) is smaller than --batch (%d)", c->buffer, c->batch);
    if (c->hidden < 1 || c->hidden > 4096) return br_error(BR_EINVAL, "--hidden must be in [1, 4096], got %d", c->hidden);
    if (!(c->lr > 0 && c->lr < 1)) return br_error(BR_EINVAL, "--lr must be in (0, 1), got %g", c->lr);
    if (c->updates_per_collect < 0 || c->target_every < 1)
        return br_error(BR_EINVAL, "updates per collection must be >= 0 and the target interval >= 1");
    if (c->eps_anneal < 0 || c->eval_every < 0)
        return br_error(BR_EINVAL, "--eps-anneal and --eval-every must be >= 0 (0: the default)");
    if (c->eval_episodes < 1 || c->eval_episodes > 4096)
        return br_error(BR_EINVAL, "--eval-episodes must be in [1, 4096], got %d", c->eval_episodes);
    long one_batch = (long)c->batch * spec.episode_limit;
    if (c->real_steps < one_batch)
        return br_error(BR_EINVAL, "--real-steps %ld is smaller than one training batch (%d episodes "
                        "x %d steps = %ld real steps on %s)", c->real_steps, c->batch,
                        spec.episode_limit, one_batch, spec.name);
    return BR_OK;
}

/* ---- run log ---- */
struct br_runlog {
    char *dir; /* heap, any length */
    char *text;
    size_t len, cap;
    double final_ret, best_ret;
    long best_steps, n;
    double t0;
};

br_status br_runlog_open(br_runlog_t **out, const char *dir)
{
    *out = NULL;
    BR_TRY(br_mkdir_p(dir));
    br_runlog_t *l = calloc(1, sizeof *l);
    if (l) l->dir = strdup(dir);
    if (!l || !l->dir) {
        free(l);
        return br_error(BR_ENOMEM, "out of memory");
    }
    l->best_ret = -HUGE_VAL;
    l->t0 = br_now();
    *out = l;
    return BR_OK;
}

void br_runlog_free(br_runlog_t *l)
{
    if (!l) return;
    free(l->dir);
    free(l->text);
    free(l);
}

static br_status write_json_file(const char *dir, const char *name, const char *text, size_t len)
{
    br_buf_t path = BR_BUF_INIT;
    br_status s = br_buf_path(&path, dir, name);
    if (!s) s = br_write_file_atomic(br_buf_str(&path), text, len);
    br_buf_free(&path);
    return s;
}

br_status br_runlog_add(br_runlog_t *l, long real_steps, double eval_return, double eval_std,
                        const char *extra)
{
    char line[2048];
    int k = snprintf(line, sizeof line, "{\"real_steps\": %ld, \"eval_return\": %.6f, \"eval_std\": %.6f",
                     real_steps, eval_return, eval_std);
    if (extra && extra[0] == '{' && extra[1] && extra[1] != '}') {
        size_t el = strlen(extra);
        k += snprintf(line + k, sizeof line - (size_t)k, ", %.*s", (int)(el - 2), extra + 1);
    }
    k += snprintf(line + k, sizeof line - (size_t)k, "}\n");
    if (k >= (int)sizeof line) return br_error(BR_ERANGE, "log line too long");
    if (l->len + (size_t)k + 1 > l->cap) {
        size_t cap = (l->cap + (size_t)k + 1) * 2;
        char *t = realloc(l->text, cap);
        if (!t) return br_error(BR_ENOMEM, "out of memory for the run log");
        l->text = t, l->cap = cap;
    }
    memcpy(l->text + l->len, line, (size_t)k + 1);
    l->len += (size_t)k;
    l->final_ret = eval_return;
    if (eval_return > l->best_ret) l->best_ret = eval_return, l->best_steps = real_steps;
    l->n++;
    return write_json_file(l->dir, "log.jsonl", l->text, l->len);
}

br_status br_runlog_close(br_runlog_t *l, const char *fields)
{
    json_error_t err;
    json_t *o = json_loads(fields ? fields : "{}", 0, &err);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        br_runlog_free(l);
        return br_error(BR_EFORMAT, "summary fields are not a JSON object: %s", err.text);
    }
    json_object_set_new(o, "evaluations", json_integer(l->n));
    json_object_set_new(o, "final_eval_return", json_real(l->final_ret));
    json_object_set_new(o, "best_eval_return", json_real(l->n ? l->best_ret : 0));
    json_object_set_new(o, "best_at_real_steps", json_integer(l->best_steps));
    json_object_set_new(o, "wall_seconds", json_real(br_now() - l->t0));
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(o);
    br_status st = s ? write_json_file(l->dir, "summary.json", s, strlen(s))
                     : br_error(BR_ENOMEM, "out of memory writing the summary");
    free(s);
    br_runlog_free(l);
    return st;
}

uint64_t br_vd_param_hash(br_vd_t *vd)
{
    const unsigned char *p = (const unsigned char *)br_vd_params(vd);
    const size_t n = br_vd_n_params(vd) * sizeof(float);
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* mean and std of the per-episode returns of episodes [0, count) */
static void episode_returns(const br_episodes_t *e, double *mean, double *std)
{
    double s = 0, s2 = 0;
    for (size_t b = 0; b < e->count; b++) {
        double r = 0;
        for (int t = 0; t < e->length[b]; t++) r += e->reward[b * e->T + t];
        s += r, s2 += r * r;
    }
    double n = (double)e->count;
    *mean = s / n;
    *std = sqrt(fmax(0, s2 / n - (s / n) * (s / n)));
}

br_status br_vd_run(const br_vd_run_config_t *c)
{
    BR_TRY(br_vd_run_check(c));
    br_env_t *env = NULL, *eval = NULL;
    br_vd_t *vd = NULL;
    br_runlog_t *log = NULL;
    br_episodes_t buf = {0}, stage = {0}, batch = {0};
    br_status st;
    if ((st = br_env_create(&env, c->env, c->n_agents, c->envs, c->seed)) != BR_OK) goto done;
    if ((st = br_env_create(&eval, c->env, c->n_agents, c->eval_episodes, c->seed ^ 0xe7a1u)) != BR_OK) goto done;
    br_vd_config_t vc = br_vd_default_config(c->mixer);
    vc.hidden = c->hidden, vc.lr = c->lr, vc.batch = c->batch, vc.target_every = c->target_every;
    vc.act_batch = c->envs > c->eval_episodes ? c->envs : c->eval_episodes;
    if ((st = br_vd_create(&vd, &env->spec, &vc, c->seed)) != BR_OK) goto done;
    if ((st = br_episodes_create(&buf, &env->spec, (size_t)c->buffer)) != BR_OK) goto done;
    if ((st = br_episodes_create(&stage, &env->spec, (size_t)vc.act_batch)) != BR_OK) goto done;
    if ((st = br_episodes_create(&batch, &env->spec, (size_t)c->batch)) != BR_OK) goto done;
    if ((st = br_runlog_open(&log, c->out_dir)) != BR_OK) goto done;

    /* evaluation draws from its own stream (and its own environments), so how often the run
     * is evaluated never changes what it trains on */
    br_rng_t rng, erng;
    br_rng_seed_stream(&rng, c->seed, 0x7275u);
    br_rng_seed_stream(&erng, c->seed, BR_EVAL_STREAM);
    const long budget = c->real_steps;
    const long anneal = c->eps_anneal > 0 ? c->eps_anneal : (budget / 3 < 50000 ? budget / 3 : 50000);
    const long eval_every = c->eval_every > 0 ? c->eval_every : (budget / 20 > 1 ? budget / 20 : 1);
    br_sim_t sim = br_sim_real(env), sev = br_sim_real(eval);
    br_progress_t pb;
    const char *method = c->mixer == BR_MIXER_QMIX ? "qmix" : "vdn";
    br_progress_start(&pb, method, (double)budget, "step");
    pb.quiet |= c->quiet;
    long steps = 0, next_eval = 0, episodes = 0;
    float loss = 0;
    double train_ret = 0;
    while (1) {
        if (steps >= next_eval) {
            double m, s;
            br_vd_collect(vd, &sev, &stage, 0.0f, &erng, NULL);
            episode_returns(&stage, &m, &s);
            char extra[256];
            snprintf(extra, sizeof extra, "{\"episodes\": %ld, \"updates\": %ld, \"loss\": %.6f, \"train_return\": %.6f}",
                     episodes, br_vd_updates(vd), loss, train_ret);
            if ((st = br_runlog_add(log, steps, m, s, extra)) != BR_OK) goto done;
            br_progress_updatef(&pb, (double)steps, "eval %.3f", m);
            next_eval += eval_every;
        }
        if (steps >= budget) break;
        float eps = steps >= anneal ? 0.05f : 1.0f - 0.95f * (float)steps / (float)anneal;
        /* the last collection may overshoot the budget by under one batch of episodes */
        steps += br_vd_collect(vd, &sim, &stage, eps, &rng, &train_ret);
        episodes += c->envs;
        br_episodes_push(&buf, &stage, (size_t)c->envs);
        if (buf.count >= (size_t)c->batch)
            for (int u = 0; u < c->updates_per_collect; u++) {
                br_episodes_sample(&batch, &buf, (size_t)c->batch, &rng);
                if ((st = br_vd_train(vd, &batch, &loss)) != BR_OK) goto done;
            }
        br_progress_updatef(&pb, (double)steps, "eps %.2f loss %.4f", eps, loss);
    }
    br_progress_finish(&pb);
    char fields[1024];
    snprintf(fields, sizeof fields,
             "{\"method\": \"%s\", \"env\": \"%s\", \"n_agents\": %d, \"seed\": %llu, "
             "\"real_steps\": %ld, \"budget\": %ld, \"episodes\": %ld, \"updates\": %ld, "
             "\"envs\": %d, \"batch\": %d, \"buffer\": %d, \"hidden\": %d, \"lr\": %g, "
             "\"eps_anneal\": %ld, \"target_every\": %d, \"updates_per_collect\": %d, "
             "\"eval_every\": %ld, \"param_hash\": \"%016llx\"}",
             method, env->spec.name, env->spec.n_agents, (unsigned long long)c->seed, steps,
             budget, episodes, br_vd_updates(vd), c->envs, c->batch, c->buffer, c->hidden,
             c->lr, anneal, c->target_every, c->updates_per_collect, eval_every,
             (unsigned long long)br_vd_param_hash(vd));
    st = br_runlog_close(log, fields);
    log = NULL;
done:
    br_runlog_free(log);
    br_episodes_free(&buf), br_episodes_free(&stage), br_episodes_free(&batch);
    br_vd_free(vd);
    br_env_free(env), br_env_free(eval);
    return st;
}
