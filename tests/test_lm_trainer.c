/* The library's trainer and evaluator (lm/train.h, lm/eval.h) without the braid program, on
 * byte-level shards of two licence texts: the callbacks see every step, validation and
 * checkpoint phase, and each checkpoint writes config.json, optimizer.safetensors and
 * model.safetensors in that order; stale temporary files of our own pattern (and only those)
 * are removed when a run starts; --resume without a checkpoint is BR_ENOTFOUND; the evaluator's
 * BTM path with two copies of one model agrees with the model alone; LoRA-only training leaves
 * the base alone, starts as the base (B = 0) and lowers the validation loss; a communicator of
 * one process (base/comm.h, what `braid train` passes without mpirun) writes the same bytes
 * as none. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/dtype.h"
#include "base/fileio.h"
#include "base/threads.h"
#include "harness.h"
#include "text/data.h"
#include "shard_fixture.h"
#include "lm/eval.h"
#include "lm/train.h"
#include "serve/adapters.h"

static char tmp[64] = "/tmp/braid_trainer_XXXXXX";

static bool write_domain(const char *name, const char *license) { return write_license_domain(tmp, name, license); }

/* What the callbacks saw. */
typedef struct {
    int starts, steps, evals;
    long last_done, last_step;
    size_t stale_removed;
    char saves[64][32];
    int nsaves;
    bool moe_flag;
} seen_t;

static void on_start(void *ctx, const br_trainer_start_t *s)
{
    seen_t *v = ctx;
    v->starts++;
    v->stale_removed = s->stale_removed;
}

static void on_step(void *ctx, long done, const br_trainer_step_t *st)
{
    seen_t *v = ctx;
    v->steps++;
    v->last_done = done;
    v->last_step = st->step;
    v->moe_flag |= st->moe;
}

static void on_eval(void *ctx, long step, double mean, const char *json)
{
    seen_t *v = ctx;
    (void)step;
    v->evals += isfinite(mean) && strstr(json, "\"gpl\"") && strstr(json, "\"mpl\"");
}

static void on_save(void *ctx, long step, const char *file)
{
    seen_t *v = ctx;
    (void)step;
    if (v->nsaves < 64) snprintf(v->saves[v->nsaves++], sizeof v->saves[0], "%s", file);
}

static void touch(const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/run/%s", tmp, name);
    br_write_file_atomic(path, "x", 1);
}

static bool exists(const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/run/%s", tmp, name);
    return br_file_exists(path);
}

static br_trainer_opts_t opts(const char *cfg, const char *data, const char *out, seen_t *v)
{
    br_trainer_opts_t o;
    br_trainer_defaults(&o);
    o.config = cfg, o.data = data, o.mix = "gpl=2,mpl=1", o.out = out;
    o.steps = 6, o.batch = 4, o.seq = 32, o.accum = 2, o.lr = 3e-3f, o.min_lr = 3e-4f, o.warmup = 2;
    o.eval_interval = 3, o.eval_batches = 2, o.ckpt_interval = 3;
    o.hooks = (br_trainer_hooks_t){v, on_start, on_step, on_eval, on_save};
    return o;
}

static void check_trainer(const char *cfg, const char *data)
{
    char out[512], path[600];
    snprintf(out, sizeof out, "%s/run", tmp);
    CHECK_OK(br_mkdir_p(out));
    /* a stale temporary file of an interrupted save, and names that only look alike */
    touch("optimizer.safetensors.tmp.Qw3Er5");
    touch("notes.tmp.1234567");
    touch("notes.tmp.12345");
    touch(".tmp.ABCDEF");
    seen_t v = {0};
    br_trainer_opts_t o = opts(cfg, data, out, &v);
    long final = 0;
    CHECK_OK(br_trainer_run(&o, &final));
    CHECK_INT(final, 6);
    CHECK_INT(v.starts, 1);
    CHECK_INT(v.steps, 6);
    CHECK_INT(v.last_done, 6);
    CHECK_INT(v.last_step, 6);
    CHECK_INT(v.evals, 2);
    CHECK(!v.moe_flag);
    CHECK_INT(v.stale_removed, 1);
    CHECK(!exists("optimizer.safetensors.tmp.Qw3Er5"));
    CHECK(exists("notes.tmp.1234567") && exists("notes.tmp.12345") && exists(".tmp.ABCDEF"));
    /* two checkpoints (steps 3 and 6), each in the order a resume needs */
    static const char *const order[] = {"config.json", "optimizer.safetensors", "model.safetensors", ""};
    CHECK_INT(v.nsaves, 8);
    for (int i = 0; i < v.nsaves && i < 8; i++)
        CHECK_MSG(!strcmp(v.saves[i], order[i % 4]), "save phase %d is '%s', want '%s'", i, v.saves[i], order[i % 4]);
    /* the log: 6 step records and 2 validation records */
    snprintf(path, sizeof path, "%s/train_log.jsonl", out);
    char *text = NULL;
    size_t n;
    CHECK_OK(br_read_file(path, &text, &n));
    int steps = 0, vals = 0;
    for (char *p = text; p && (p = strstr(p, "{\"step\": ")); p++) {
        steps += strstr(p, "\"loss\":") && (!strchr(p, '\n') || strstr(p, "\"loss\":") < strchr(p, '\n'));
        vals += strstr(p, "\"val_loss\":") && (!strchr(p, '\n') || strstr(p, "\"val_loss\":") < strchr(p, '\n'));
    }
    free(text);
    CHECK_INT(steps, 6);
    CHECK_INT(vals, 2);

    /* a resume needs only config.json and optimizer.safetensors; without the latter it is
     * BR_ENOTFOUND saying to start again */
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    CHECK(remove(path) == 0);
    memset(&v, 0, sizeof v);
    o = opts(NULL, data, out, &v);
    o.resume = true, o.steps = 8;
    CHECK_OK(br_trainer_run(&o, &final));
    CHECK_INT(final, 8);
    CHECK_INT(v.steps, 2);
    snprintf(path, sizeof path, "%s/optimizer.safetensors", out);
    CHECK(remove(path) == 0);
    CHECK_STATUS(br_trainer_run(&o, &final), BR_ENOTFOUND);
    CHECK(strstr(br_errmsg(), "start it again") != NULL);
    /* exactly one source of weights */
    o.config = cfg;
    CHECK_STATUS(br_trainer_run(&o, &final), BR_EINVAL);
}

/* Without mpirun the world is one process and the trainer takes the single-process path:
 * optimizer.safetensors (weights, AdamW state, data position) byte for byte as with no
 * communicator. */
static void check_world_of_one(const char *cfg, const char *data)
{
    br_comm_t *world = NULL;
    CHECK_OK(br_comm_world(&world));
    CHECK_INT(br_comm_size(world), 1);
    char *bytes[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        char out[512], path[600];
        snprintf(out, sizeof out, "%s/one-%d", tmp, k);
        seen_t v = {0};
        br_trainer_opts_t o = opts(cfg, data, out, &v);
        o.steps = 3, o.comm = k ? world : NULL, o.bucket = 100;
        CHECK_OK(br_trainer_run(&o, NULL));
        snprintf(path, sizeof path, "%s/optimizer.safetensors", out);
        CHECK_OK(br_read_file(path, &bytes[k], &len[k]));
    }
    CHECK(len[0] > 0 && len[0] == len[1] && bytes[0] && bytes[1] && !memcmp(bytes[0], bytes[1], len[0]));
    free(bytes[0]);
    free(bytes[1]);
}

static void check_eval_and_lora(const char *cfg_path, const char *data)
{
    br_model_config_t c;
    CHECK_OK(br_config_load(&c, cfg_path));
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return;
    br_model_init_random(m, 7);
    char *doms[] = {"gpl", "mpl"};
    br_eval_opts_t eo = {data, "val", doms, 2, 4, 32, 1000, NULL, NULL, NULL, false};
    br_eval_sum_t one[2], two[2];
    br_model_t *pair[2] = {m, m};
    CHECK_OK(br_eval_domains(&m, 1, &eo, one, NULL));
    CHECK_OK(br_eval_domains(pair, 2, &eo, two, NULL));
    for (int d = 0; d < 2; d++) {
        CHECK_INT((long)one[d].tokens, 32 * 32); /* 1000 tokens round up to 32 windows of 32 */
        CHECK_REL(br_eval_loss(&two[d]), br_eval_loss(&one[d]), 1e-5, 0);
        /* byte-level shards: one byte per token */
        CHECK_REL(br_eval_bits_per_byte(&one[d]), br_eval_loss(&one[d]) / log(2.0), 1e-9, 0);
        CHECK_NEAR(br_eval_loss(&one[d]), log(256.0), 0.3); /* untrained */
    }
    json_t *root = json_object();
    br_eval_report(&eo, one, root, NULL);
    CHECK(json_object_get(json_object_get(root, "domains"), "mpl") && json_object_get(root, "all"));
    json_decref(root);
    /* BTM weighted by the prefix posterior: over one window the mixture telescopes to the
     * window likelihood under a uniform prior, -log((e^-n1 + e^-n2) / 2) with n_k the window's
     * nats under model k; identical models reduce to the single model */
    br_model_t *m2 = NULL;
    CHECK_OK(br_model_create(&m2, &c, false));
    if (m2) {
        br_model_init_random(m2, 8);
        br_eval_opts_t e1 = eo;
        e1.max_tokens = 32, e1.posterior = true;
        br_eval_sum_t a[2], b[2], post[2], unif[2], same[2];
        br_model_t *mix[2] = {m, m2};
        CHECK_OK(br_eval_domains(&m, 1, &e1, a, NULL));
        CHECK_OK(br_eval_domains(&m2, 1, &e1, b, NULL));
        CHECK_OK(br_eval_domains(mix, 2, &e1, post, NULL));
        CHECK_OK(br_eval_domains(pair, 2, &e1, same, NULL));
        e1.posterior = false;
        CHECK_OK(br_eval_domains(mix, 2, &e1, unif, NULL));
        for (int d = 0; d < 2; d++) {
            CHECK_INT((long)post[d].tokens, 32);
            double n1 = a[d].nats, n2 = b[d].nats, lo = n1 < n2 ? n1 : n2;
            double want = lo + log(2.0) - log1p(exp(-fabs(n1 - n2)));
            CHECK_REL(post[d].nats, want, 1e-4, 0);
            CHECK_REL(same[d].nats, a[d].nats, 1e-5, 0);
            CHECK_MSG(fabs(unif[d].nats - post[d].nats) > 1e-3, "uniform %.6f vs posterior %.6f", unif[d].nats,
                      post[d].nats);
        }
        br_model_free(m2);
    }
    eo.seq = 4096;
    CHECK_STATUS(br_eval_domains(&m, 1, &eo, one, NULL), BR_EINVAL);

    /* LoRA-only: the base stays as it was, the adapter starts as a no-op and then helps */
    unsigned targets = 0;
    CHECK_OK(br_lora_parse_targets("q_proj,v_proj", &targets));
    br_lora_shapes_t shapes = br_lora_shapes_from_config(&m->cfg);
    br_lora_adapter_t *a = NULL;
    CHECK_OK(br_lora_create(&a, &shapes, 4, 8, targets, false, 3));
    if (a) CHECK_OK(br_lora_alloc_grads(a));
    float w0 = m->params[m->n_params / 2];
    br_trainer_opts_t o;
    br_trainer_defaults(&o);
    o.data = data, o.mix = "gpl=1", o.steps = 30, o.batch = 4, o.seq = 32, o.lr = 1e-2f, o.min_lr = 1e-3f;
    o.warmup = 2, o.beta2 = 0.999f, o.weight_decay = 0;
    double val[3] = {0, 0, 0};
    if (a) CHECK_OK(br_trainer_lora(m, a, &o, 2, val));
    CHECK(val[0] == val[1]);
    CHECK_MSG(val[2] < val[1] - 0.05, "LoRA validation loss %.4f -> %.4f", val[1], val[2]);
    CHECK(m->params[m->n_params / 2] == w0);
    br_lora_free(a);
    br_model_free(m);
}

int main(void)
{
    if (!mkdtemp(tmp)) {
        SKIP("mkdtemp failed");
        return th_exit();
    }
    char data[128], cfg[128], cmd[160];
    snprintf(data, sizeof data, "%s/tok", tmp);
    snprintf(cfg, sizeof cfg, "%s/cfg.json", tmp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (!write_domain("gpl", "GPL-3") || !write_domain("mpl", "MPL-1.1")) {
        SKIP("/usr/share/common-licenses not available");
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
        return th_exit();
    }
    br_set_threads(1);
    const char *c = "{\"vocab_size\": 256, \"hidden_size\": 32, \"intermediate_size\": 64, "
                    "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
                    "\"max_position_embeddings\": 64, \"rms_norm_eps\": 1e-5}";
    CHECK_OK(br_write_file_atomic(cfg, c, strlen(c)));
    check_trainer(cfg, data);
    check_world_of_one(cfg, data);
    check_eval_and_lora(cfg, data);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return th_exit();
}
