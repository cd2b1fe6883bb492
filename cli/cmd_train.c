/* braid train: AdamW training of the dense model on a weighted mix of token shards, with
 * warmup + cosine decay, gradient accumulation, clipping, periodic validation and checkpoints,
 * and exact resume. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/dtype.h"
#include "base/fileio.h"
#include "base/progress.h"
#include "base/timer.h"
#include "commands.h"
#include "base/threads.h"
#include "lm/data.h"
#include "lm/model.h"

typedef struct {
    const char *config, *init, *data, *mix, *out, *save_dtype;
    long steps, stop_at, warmup, seed;
    int batch, seq, accum, eval_interval, eval_batches, ckpt_interval, threads;
    float lr, min_lr, wd, beta1, beta2, clip;
    bool resume;
} train_args_t;

/* Rewrites train_log.jsonl keeping only the records of steps <= keep (a resumed run repeats
 * the steps after its checkpoint). */
static br_status trim_log(const char *path, long keep)
{
    if (!br_file_exists(path)) return BR_OK;
    char *text;
    size_t n;
    BR_TRY(br_read_file(path, &text, &n));
    char *outb = malloc(n + 1);
    if (!outb) {
        free(text);
        return br_error(BR_ENOMEM, "out of memory");
    }
    size_t w = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        json_t *j = json_loadb(line, len, 0, NULL);
        json_t *st = j ? json_object_get(j, "step") : NULL;
        if (st && json_is_integer(st) && json_integer_value(st) <= keep) {
            memcpy(outb + w, line, len);
            w += len;
            outb[w++] = '\n';
        }
        json_decref(j);
        line += len + (nl ? 1 : 0);
    }
    br_status s = br_write_file_atomic(path, outb, w);
    free(text);
    free(outb);
    return s;
}

/* Mean validation loss per domain of the training mix: eval_batches fixed random windows of
 * each domain's val split (the same windows at every evaluation). */
static br_status evaluate(br_model_t *m, const train_args_t *a, br_mix_t *train_mix, json_t *val,
                          double *mean_out, int32_t *tok, int32_t *in, int32_t *tg, float *losses)
{
    size_t nd = br_mix_ndomains(train_mix), B = (size_t)a->batch, T = (size_t)a->seq;
    double total = 0;
    for (size_t d = 0; d < nd; d++) {
        char spec[256];
        snprintf(spec, sizeof spec, "%s=1", br_mix_domain(train_mix, d));
        br_mix_t *vm;
        BR_TRY(br_mix_create(&vm, a->data, spec, "val", (uint64_t)a->seed + 1000003));
        double sum = 0;
        br_status s = BR_OK;
        for (int b = 0; b < a->eval_batches && !s; b++) {
            s = br_mix_next_batch(vm, tok, B, T);
            for (size_t r = 0; r < B && !s; r++)
                for (size_t t = 0; t < T; t++) {
                    in[r * T + t] = tok[r * (T + 1) + t];
                    tg[r * T + t] = tok[r * (T + 1) + t + 1];
                }
            float mean = 0;
            if (!s) s = br_model_forward_loss(m, in, tg, B, T, NULL, losses, &mean);
            sum += mean;
        }
        br_mix_free(vm);
        if (s) return s;
        double mean = sum / a->eval_batches;
        json_object_set_new(val, br_mix_domain(train_mix, d), json_real(mean));
        total += mean;
    }
    *mean_out = total / (double)nd;
    return BR_OK;
}

static br_status save_checkpoint(const br_model_t *m, const train_args_t *a, br_mix_t *mix,
                                 br_dtype dtype)
{
    br_mix_state_t st;
    br_mix_get_state(mix, &st);
    json_t *x = json_object();
    json_t *words = json_array();
    for (int i = 0; i < 8; i++) {
        char hex[24];
        snprintf(hex, sizeof hex, "%016" PRIx64, st.words[i]);
        json_array_append_new(words, json_string(hex));
    }
    json_object_set_new(x, "mix_state", words);
    json_object_set_new(x, "mix", json_string(a->mix));
    json_object_set_new(x, "batch", json_integer(a->batch));
    json_object_set_new(x, "seq", json_integer(a->seq));
    json_object_set_new(x, "accum", json_integer(a->accum));
    json_object_set_new(x, "steps", json_integer(a->steps));
    json_object_set_new(x, "seed", json_integer(a->seed));
    char *extra = json_dumps(x, JSON_COMPACT);
    json_decref(x);
    /* training state first (one file: weights + AdamW + data position), then the model files
     * other tools read; every file is written atomically */
    br_status s = br_model_save_optimizer(m, a->out, extra);
    free(extra);
    if (!s) s = br_model_save(m, a->out, dtype);
    return s;
}

static br_status restore(br_model_t *m, const train_args_t *a, br_mix_t *mix)
{
    char *extra = NULL;
    BR_TRY(br_model_load_optimizer(m, a->out, &extra));
    json_t *x = extra ? json_loads(extra, 0, NULL) : NULL;
    free(extra);
    json_t *w = x ? json_object_get(x, "mix_state") : NULL;
    if (!json_is_array(w) || json_array_size(w) != 8) {
        json_decref(x);
        return br_error(BR_EFORMAT, "%s/optimizer.safetensors: no data-loader position stored", a->out);
    }
    br_mix_state_t st;
    for (size_t i = 0; i < 8; i++) {
        const char *h = json_string_value(json_array_get(w, i));
        st.words[i] = h ? strtoull(h, NULL, 16) : 0;
    }
    br_mix_set_state(mix, &st);
    static const char *const keys[] = {"batch", "seq", "accum", "steps", "seed"};
    const long now[] = {a->batch, a->seq, a->accum, a->steps, a->seed};
    for (size_t i = 0; i < 5; i++) {
        json_t *v = json_object_get(x, keys[i]);
        if (json_is_integer(v) && json_integer_value(v) != now[i])
            fprintf(stderr, "braid: warning: resuming with --%s %ld (the run used %lld): the result "
                            "will differ from an uninterrupted run\n", keys[i], now[i], (long long)json_integer_value(v));
    }
    const char *mixs = json_string_value(json_object_get(x, "mix"));
    if (mixs && strcmp(mixs, a->mix))
        fprintf(stderr, "braid: warning: resuming with --mix %s (the run used %s)\n", a->mix, mixs);
    json_decref(x);
    return BR_OK;
}

static int run(train_args_t *a)
{
    br_dtype dtype;
    if (br_dtype_parse(a->save_dtype, &dtype) || (dtype != BR_DT_F32 && dtype != BR_DT_BF16 && dtype != BR_DT_F16)) {
        fprintf(stderr, "braid: error: --save-dtype must be F32, BF16 or F16\n");
        return 2;
    }
    if (!!a->config + !!a->init + a->resume != 1) {
        fprintf(stderr, "braid: error: give exactly one of --config, --init or --resume\n");
        return 2;
    }
    if (a->steps < 1 || a->batch < 1 || a->seq < 1 || a->accum < 1 || a->eval_batches < 1 || a->warmup < 0 ||
        a->eval_interval < 0 || a->ckpt_interval < 0 || !(a->lr > 0)) {
        fprintf(stderr, "braid: error: --steps, --batch, --seq, --accum, --eval-batches and --lr must be "
                        "positive; intervals and --warmup non-negative\n");
        return 2;
    }
    if (a->min_lr < 0) a->min_lr = a->lr / 10;
    if (a->threads > 0) br_set_threads(a->threads);
    br_model_t *m = NULL;
    br_mix_t *mix = NULL;
    br_status s;
    char path[4096];
    if (a->config) {
        br_model_config_t c;
        s = br_config_load(&c, a->config);
        if (!s) s = br_model_create(&m, &c, true);
        if (!s) br_model_init_random(m, (uint64_t)a->seed);
    } else {
        s = br_model_load(&m, a->resume ? a->out : a->init, true);
    }
    if (s) return fail_status(s, NULL);
    if ((size_t)a->seq > (size_t)m->cfg.max_position_embeddings) {
        fprintf(stderr, "braid: error: --seq %d is longer than the model's context (max_position_embeddings %d)\n",
                a->seq, m->cfg.max_position_embeddings);
        br_model_free(m);
        return 1;
    }
    s = br_mix_create(&mix, a->data, a->mix, "train", (uint64_t)a->seed);
    if (!s && br_mix_vocab(mix) > (uint32_t)m->cfg.vocab_size)
        s = br_error(BR_EINVAL, "the token shards use %u ids but the model's vocab_size is %d",
                     br_mix_vocab(mix), m->cfg.vocab_size);
    if (!s) s = br_mkdir_p(a->out);
    if (!s && a->resume) s = restore(m, a, mix);
    if (!s) m->step = a->resume ? m->step : 0;
    if (!s) s = br_path_join(path, sizeof path, a->out, "train_log.jsonl");
    if (!s) s = a->resume ? trim_log(path, m->step) : br_write_file_atomic(path, "", 0);
    if (s) {
        br_mix_free(mix);
        br_model_free(m);
        return fail_status(s, NULL);
    }
    FILE *log = fopen(path, "a");
    if (!log) {
        br_mix_free(mix);
        br_model_free(m);
        fprintf(stderr, "braid: error: cannot open %s\n", path);
        return 1;
    }
    size_t B = (size_t)a->batch, T = (size_t)a->seq;
    int32_t *tok = malloc(B * (T + 1) * sizeof *tok), *in = malloc(B * T * sizeof *in),
            *tg = malloc(B * T * sizeof *tg);
    float *losses = malloc(B * T * sizeof *losses);
    if (!tok || !in || !tg || !losses) s = br_error(BR_ENOMEM, "out of memory");
    long start = m->step;
    if (start >= a->steps && !s)
        fprintf(stderr, "braid: %s is already at step %ld of %ld\n", a->out, start, a->steps);
    long end = a->stop_at > 0 && a->stop_at < a->steps ? a->stop_at : a->steps;
    fprintf(stderr, "braid: training %zu parameters, %ld steps x %d x %zu x %zu tokens%s\n",
            m->n_params, a->steps, a->accum, B, T, start ? " (resumed)" : "");
    br_progress_t bar;
    br_progress_start(&bar, "train", (double)(end - start > 0 ? end - start : 0), "step");
    br_train_opts_t to = {NULL, true, 1.0f / (float)a->accum};
    double t0 = br_now(), tokens_done = 0;
    for (long step = start; step < end && !s; step++) {
        double ts = br_now(), loss = 0;
        br_model_zero_grad(m);
        for (int k = 0; k < a->accum && !s; k++) {
            s = br_mix_next_batch(mix, tok, B, T);
            for (size_t r = 0; r < B && !s; r++)
                for (size_t t = 0; t < T; t++) {
                    in[r * T + t] = tok[r * (T + 1) + t];
                    tg[r * T + t] = tok[r * (T + 1) + t + 1];
                }
            float l = 0;
            if (!s) s = br_model_train_step(m, in, tg, B, T, &to, &l);
            loss += l / a->accum;
        }
        float lr = br_lr_cosine(step, a->warmup, a->steps, a->lr, a->min_lr), gnorm = 0;
        br_adamw_opts_t ao = {lr, a->beta1, a->beta2, 1e-8f, a->wd, a->clip};
        if (!s) s = br_model_adamw(m, &ao, &gnorm);
        if (s) break;
        if (!isfinite(loss)) {
            s = br_error(BR_ERANGE, "loss is %f at step %ld: training diverged (lower --lr?)", loss, step + 1);
            break;
        }
        double now = br_now(), ntok = (double)(B * T) * a->accum;
        tokens_done += ntok;
        fprintf(log, "{\"step\": %ld, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.4f, \"tokens\": %.0f, "
                     "\"tok_per_s\": %.1f, \"time\": %.3f",
                step + 1, loss, lr, gnorm, (double)(step + 1) * ntok, ntok / (now - ts), now - t0);
        if (m->cfg.num_local_experts > 1) { /* MoE: auxiliary losses of the last micro-batch */
            float lb, z;
            br_model_moe_aux(m, &lb, &z);
            fprintf(log, ", \"moe_load_balance\": %.4f, \"moe_z_loss\": %.4f", lb, z);
        }
        fprintf(log, "}\n");
        fflush(log);
        br_progress_updatef(&bar, (double)(step + 1 - start), "loss %.4f  %.0f tok/s", loss,
                            tokens_done / (now - t0));
        bool last = step + 1 == end;
        if ((a->eval_interval && (step + 1) % a->eval_interval == 0) || (last && end == a->steps)) {
            json_t *val = json_object();
            double mean = 0;
            s = evaluate(m, a, mix, val, &mean, tok, in, tg, losses);
            if (!s) {
                char *vs = json_dumps(val, JSON_COMPACT | JSON_REAL_PRECISION(7));
                fprintf(log, "{\"step\": %ld, \"val_loss\": %.6f, \"val\": %s}\n", step + 1, mean, vs);
                fflush(log);
                if (bar.quiet || !bar.tty) fprintf(stderr, "step %ld: val loss %.4f %s\n", step + 1, mean, vs);
                free(vs);
            }
            json_decref(val);
        }
        if (!s && ((a->ckpt_interval && (step + 1) % a->ckpt_interval == 0) || last))
            s = save_checkpoint(m, a, mix, dtype);
    }
    br_progress_finish(&bar);
    fclose(log);
    if (!s && start >= end) s = BR_OK;
    if (!s) fprintf(stderr, "braid: saved %s (step %ld)\n", a->out, m->step);
    free(tok);
    free(in);
    free(tg);
    free(losses);
    br_mix_free(mix);
    br_model_free(m);
    return s ? fail_status(s, NULL) : 0;
}

int cmd_train(int argc, char **argv)
{
    train_args_t a = {NULL, NULL, NULL, NULL, NULL, "F32", 1000, 0, 100, 1, 16, 256, 1, 200, 10, 500, 0,
                      1e-3f, -1.0f, 0.1f, 0.9f, 0.95f, 1.0f, false};
    const opt_t opts[] = {
        {"config", OPT_STR, &a.config, "FILE", "config.json of a new model (random init from --seed)", false},
        {"init", OPT_STR, &a.init, "DIR", "start from the weights of an existing checkpoint (new optimizer)", false},
        {"resume", OPT_BOOL, &a.resume, NULL, "continue the run in --out exactly where its last checkpoint left it", false},
        {"data", OPT_STR, &a.data, "DIR", "token shards: DIR/<domain>/{train,val}.bin (braid data prepare)", true},
        {"mix", OPT_STR, &a.mix, "SPEC", "domain weights, e.g. general=1,code=1", true},
        {"out", OPT_STR, &a.out, "DIR", "run directory: checkpoint, optimizer state, train_log.jsonl", true},
        {"steps", OPT_LONG, &a.steps, "N", "optimizer steps (default 1000)", false},
        {"batch", OPT_INT, &a.batch, "B", "sequences per micro-batch (default 16)", false},
        {"seq", OPT_INT, &a.seq, "T", "tokens per sequence (default 256)", false},
        {"accum", OPT_INT, &a.accum, "K", "micro-batches per step (gradient accumulation, default 1)", false},
        {"lr", OPT_FLOAT, &a.lr, "LR", "peak learning rate (default 1e-3)", false},
        {"min-lr", OPT_FLOAT, &a.min_lr, "LR", "final learning rate of the cosine decay (default lr/10)", false},
        {"warmup", OPT_LONG, &a.warmup, "N", "linear warmup steps (default 100)", false},
        {"weight-decay", OPT_FLOAT, &a.wd, "W", "AdamW decoupled weight decay on matrices (default 0.1)", false},
        {"beta1", OPT_FLOAT, &a.beta1, "B1", "AdamW beta1 (default 0.9)", false},
        {"beta2", OPT_FLOAT, &a.beta2, "B2", "AdamW beta2 (default 0.95)", false},
        {"clip", OPT_FLOAT, &a.clip, "C", "global gradient-norm clip, 0 = off (default 1.0)", false},
        {"seed", OPT_LONG, &a.seed, "S", "seed of the init and the data order (default 1)", false},
        {"eval-interval", OPT_INT, &a.eval_interval, "N", "validate every N steps, 0 = only at the end (default 200)", false},
        {"eval-batches", OPT_INT, &a.eval_batches, "N", "validation batches per domain (default 10)", false},
        {"ckpt-interval", OPT_INT, &a.ckpt_interval, "N", "checkpoint every N steps, 0 = only at the end (default 500)", false},
        {"stop-at", OPT_LONG, &a.stop_at, "N", "stop (with a checkpoint) after step N, as if interrupted; the schedule still targets --steps", false},
        {"save-dtype", OPT_STR, &a.save_dtype, "DT", "dtype of model.safetensors: F32 (default), BF16 or F16; resume state is always F32", false},
        {"threads", OPT_INT, &a.threads, "N", "threads (default: BRAID_THREADS or all cores)", false},
    };
    cmd_spec_t spec = {"braid train (--config CFG.json | --init DIR | --resume) --data DIR --mix SPEC --out DIR [options]",
                       "Trains the dense Llama-style model with AdamW (warmup + cosine decay, clipping, "
                       "accumulation) on random windows of a weighted domain mix. Writes OUT/config.json + "
                       "OUT/model.safetensors (Hugging Face names), OUT/optimizer.safetensors (weights, AdamW "
                       "state, data position: --resume reproduces the uninterrupted run exactly) and "
                       "OUT/train_log.jsonl (one line per step, plus validation lines).",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    return run(&a);
}
