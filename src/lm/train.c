/* The trainer (lm/train.h).
 *
 * Checkpoint order.  A run folder must be resumable (or plainly restartable) after a kill at any
 * instant, the first save included.  Every file is written atomically (temp + rename), and a
 * save writes, in order:
 *   1. config.json            the model's shape (the same at every save of a run)
 *   2. optimizer.safetensors  weights, AdamW state, step and data position: all a resume needs
 *   3. model.safetensors      the weights other tools read (maybe BF16/F16)
 * A resume reads 1 and 2 only.  Killed before 2 is renamed at the first save, the folder has no
 * checkpoint: --resume says so and the original command starts the run again cleanly.  Killed
 * after 2, the resume continues from it even when 3 is missing or one save older.  (Writing
 * optimizer.safetensors before config.json left a folder that neither resumed nor said why.) */
#include "lm/train.h"

#include <dirent.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/dtype.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/timer.h"
#include "text/data.h"
#include "lm/eval.h"
#include "nn/nn.h"

void br_trainer_defaults(br_trainer_opts_t *o)
{
    *o = (br_trainer_opts_t){.steps = 1000, .warmup = 100, .seed = 1, .batch = 16, .seq = 256, .accum = 1,
                             .lr = 1e-3f, .min_lr = 1e-4f, .weight_decay = 0.1f, .beta1 = 0.9f,
                             .beta2 = 0.95f, .eps = 1e-8f, .clip = 1.0f, .eval_interval = 200,
                             .eval_batches = 10, .ckpt_interval = 500, .save_dtype = BR_DT_F32};
}

/* ---- the step --------------------------------------------------------------------------- */

struct br_trainer {
    br_model_t *m;
    br_lora_adapter_t *a;      /* LoRA-only mode, else NULL */
    br_trainer_opts_t o;
    int32_t *in, *tg;          /* (B, T) */
    br_lora_batch_t *lb;       /* every row uses `a` */
    br_lora_hook_t hook;
    float *adam_m, *adam_v;    /* (a->n_params) LoRA-only, (rt_params) router-only mode */
    long lora_step;            /* LoRA-only: steps taken (full mode: m->step) */
    size_t *rt;                /* router-only: (n_rt) indices into m->tensors of the routers */
    size_t n_rt, rt_params;    /* their count and floats */

    /* data parallelism (ranks > 1): the flat parameter array is cut into buckets of `bucket`
     * floats and each bucket into `ranks` parts; this rank owns part `rank` of every bucket */
    br_comm_t *comm;
    int rank, ranks;
    size_t bucket, nbuckets;
    size_t *counts;            /* (nbuckets, ranks) floats of each part */
    size_t *starts;            /* (nbuckets) global offset of this rank's part */
    size_t *soff;              /* (nbuckets) its offset in the shard */
    size_t shard_n;            /* floats this rank owns */
    float *sg, *sm, *sv;       /* (shard_n) owned averaged gradient, AdamW m and v (full mode) */
    double wait_s;             /* this step, in the barrier before its first collective */
};

/* ---- data parallelism (ZeRO-1) ------------------------------------------------------------ */

static bool dp(const br_trainer_t *t) { return t->ranks > 1; }

static void dp_free(br_trainer_t *t)
{
    free(t->counts);
    free(t->starts);
    free(t->soff);
    br_free(t->sg);
    br_free(t->sm);
    br_free(t->sv);
}

static void dp_drop_full_state(br_model_t *m)
{
    br_free(m->adam_m);
    br_free(m->adam_v);
    m->adam_m = m->adam_v = NULL;
}

/* The parts, and the owned AdamW state: zero, or this rank's part of a resumed model's full
 * state (which is then freed: between checkpoints no rank holds more than its part). */
static br_status dp_setup(br_trainer_t *t)
{
    br_model_t *m = t->m;
    size_t n = m->n_params, N = (size_t)t->ranks;
    t->bucket = t->o.bucket ? t->o.bucket : (size_t)1 << 22;
    if (t->bucket < N) t->bucket = N;
    t->nbuckets = (n + t->bucket - 1) / t->bucket;
    t->counts = calloc(t->nbuckets * N, sizeof *t->counts);
    t->starts = calloc(t->nbuckets, sizeof *t->starts);
    t->soff = calloc(t->nbuckets, sizeof *t->soff);
    if (!t->counts || !t->starts || !t->soff) return br_error(BR_ENOMEM, "out of memory");
    for (size_t b = 0; b < t->nbuckets; b++) {
        size_t lo = b * t->bucket, len = (b + 1) * t->bucket < n ? t->bucket : n - lo, at = lo;
        for (size_t r = 0; r < N; r++) {
            t->counts[b * N + r] = len / N + (r < len % N);
            if (r == (size_t)t->rank) t->starts[b] = at;
            at += t->counts[b * N + r];
        }
        t->soff[b] = t->shard_n;
        t->shard_n += t->counts[b * N + (size_t)t->rank];
    }
    size_t bytes = (t->shard_n ? t->shard_n : 1) * sizeof(float);
    t->sg = br_alloc(bytes), t->sm = br_alloc(bytes), t->sv = br_alloc(bytes);
    if (!t->sg || !t->sm || !t->sv) return br_error(BR_ENOMEM, "cannot allocate the optimizer shard (%zu floats)", t->shard_n);
    memset(t->sm, 0, bytes);
    memset(t->sv, 0, bytes);
    if (m->adam_m && m->adam_v)
        for (size_t b = 0; b < t->nbuckets; b++) {
            size_t c = t->counts[b * N + (size_t)t->rank];
            memcpy(t->sm + t->soff[b], m->adam_m + t->starts[b], c * sizeof(float));
            memcpy(t->sv + t->soff[b], m->adam_v + t->starts[b], c * sizeof(float));
        }
    dp_drop_full_state(m);
    return BR_OK;
}

/* AdamW on the owned part of every tensor, with the other ranks: gradients summed and
 * scattered (each rank receives its part), averaged, clipped by the global norm, the update,
 * and the parameters gathered back everywhere.  Returns the norm before clipping. */
static br_status dp_adamw(br_trainer_t *t, float lr, float *gnorm)
{
    br_model_t *m = t->m;
    const br_trainer_opts_t *o = &t->o;
    size_t N = (size_t)t->ranks;
    for (size_t b = 0; b < t->nbuckets; b++)
        BR_TRY(br_comm_reduce_scatter_sum(t->comm, m->grads + b * t->bucket, t->sg + t->soff[b], t->counts + b * N));
    br_scale_inplace(t->sg, 1.0f / (float)N, t->shard_n);
    double norm = br_sum_squares(t->sg, t->shard_n), ss = norm * norm;
    BR_TRY(br_comm_allreduce_sum_f64(t->comm, &ss, 1));
    norm = sqrt(ss);
    *gnorm = (float)norm;
    if (o->clip > 0 && o->clip / (norm + 1e-6) < 1) br_scale_inplace(t->sg, (float)(o->clip / (norm + 1e-6)), t->shard_n);
    int step = (int)(m->step + 1);
    for (size_t b = 0; b < t->nbuckets; b++) {
        size_t a = t->starts[b], e = a + t->counts[b * N + (size_t)t->rank];
        for (size_t i = 0; i < m->n_tensors; i++) {
            const br_tensor_info_t *ti = &m->tensors[i];
            size_t x0 = a > ti->offset ? a : ti->offset, x1 = e < ti->offset + ti->numel ? e : ti->offset + ti->numel;
            if (x0 >= x1) continue;
            size_t k = t->soff[b] + (x0 - a);
            br_adamw_step(m->params + x0, t->sg + k, t->sm + k, t->sv + k, x1 - x0, lr, o->beta1, o->beta2, o->eps,
                          ti->decay ? o->weight_decay : 0.0f, step);
        }
    }
    for (size_t b = 0; b < t->nbuckets; b++)
        BR_TRY(br_comm_allgather(t->comm, m->params + b * t->bucket, t->counts + b * N));
    m->step++;
    return BR_OK;
}

/* Every rank's AdamW part into the full m->adam_m/adam_v of rank 0 (allocated there), for
 * the checkpoint it writes; rank 0 frees them with dp_drop_full_state afterwards. */
static br_status dp_gather_state(br_trainer_t *t)
{
    br_model_t *m = t->m;
    size_t N = (size_t)t->ranks;
    if (t->rank == 0 && !m->adam_m) {
        m->adam_m = br_alloc(m->n_params * sizeof(float));
        m->adam_v = br_alloc(m->n_params * sizeof(float));
    }
    /* a failed allocation on rank 0 is reported after the collectives (all ranks take part) */
    bool ok = t->rank != 0 || (m->adam_m && m->adam_v);
    for (size_t b = 0; b < t->nbuckets; b++) {
        float *full_m = ok && t->rank == 0 ? m->adam_m + b * t->bucket : NULL;
        float *full_v = ok && t->rank == 0 ? m->adam_v + b * t->bucket : NULL;
        BR_TRY(br_comm_gather(t->comm, t->sm + t->soff[b], full_m, t->counts + b * N, 0));
        BR_TRY(br_comm_gather(t->comm, t->sv + t->soff[b], full_v, t->counts + b * N, 0));
    }
    return ok ? BR_OK : br_error(BR_ENOMEM, "cannot allocate the AdamW state to save (%zu floats)", m->n_params);
}


/* ---- router-only training --------------------------------------------------------------- */

/* The tensors router-only training updates: linear FFN routers, attention routers, Nexus
 * projectors (lm/config_moe.h names). */
static bool is_router_tensor(const char *name)
{
    return strstr(name, ".block_sparse_moe.gate.weight") || strstr(name, ".self_attn.router.weight") ||
           strstr(name, ".block_sparse_moe.nexus.proj_");
}

/* The router tensors of t->m and their packed AdamW state (zero). */
static br_status routers_setup(br_trainer_t *t)
{
    const br_model_t *m = t->m;
    if (!(t->rt = malloc((m->n_tensors ? m->n_tensors : 1) * sizeof *t->rt))) return br_error(BR_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->n_tensors; i++)
        if (is_router_tensor(m->tensors[i].name)) {
            t->rt[t->n_rt++] = i;
            t->rt_params += m->tensors[i].numel;
        }
    if (!t->n_rt)
        return br_error(BR_EINVAL, "--train router: the model has no router to train (it is not a mixture of "
                                   "experts; upcycle one with 'braid upcycle')");
    t->adam_m = br_alloc(t->rt_params * sizeof(float));
    t->adam_v = br_alloc(t->rt_params * sizeof(float));
    if (!t->adam_m || !t->adam_v) return br_error(BR_ENOMEM, "cannot allocate the routers' AdamW state");
    memset(t->adam_m, 0, t->rt_params * sizeof(float));
    memset(t->adam_v, 0, t->rt_params * sizeof(float));
    return BR_OK;
}

static void routers_zero_grad(br_trainer_t *t)
{
    const br_model_t *m = t->m;
    for (size_t i = 0; m->grads && i < t->n_rt; i++)
        memset(m->grads + m->tensors[t->rt[i]].offset, 0, m->tensors[t->rt[i]].numel * sizeof(float));
}

/* AdamW on the routers alone: their gradients (averaged over ranks), clipped by their joint
 * norm, then each tensor's update with its packed state.  *gnorm: the norm before clipping. */
static br_status routers_adamw(br_trainer_t *t, float lr, float *gnorm)
{
    br_model_t *m = t->m;
    const br_trainer_opts_t *o = &t->o;
    double ss = 0;
    for (size_t i = 0; i < t->n_rt; i++) {
        const br_tensor_info_t *ti = &m->tensors[t->rt[i]];
        if (dp(t)) {
            BR_TRY(br_comm_allreduce_sum(t->comm, m->grads + ti->offset, ti->numel));
            br_scale_inplace(m->grads + ti->offset, 1.0f / (float)t->ranks, ti->numel);
        }
        double n = br_sum_squares(m->grads + ti->offset, ti->numel);
        ss += n * n;
    }
    double norm = sqrt(ss), coef = o->clip > 0 ? o->clip / (norm + 1e-6) : 1;
    *gnorm = (float)norm;
    for (size_t i = 0, k = 0; i < t->n_rt; i++) {
        const br_tensor_info_t *ti = &m->tensors[t->rt[i]];
        if (coef < 1) br_scale_inplace(m->grads + ti->offset, (float)coef, ti->numel);
        br_adamw_step(m->params + ti->offset, m->grads + ti->offset, t->adam_m + k, t->adam_v + k, ti->numel, lr,
                      o->beta1, o->beta2, o->eps, ti->decay ? o->weight_decay : 0.0f, (int)(m->step + 1));
        k += ti->numel;
    }
    m->step++;
    return BR_OK;
}

void br_trainer_free(br_trainer_t *t)
{
    if (!t) return;
    free(t->rt);
    free(t->in);
    free(t->tg);
    br_lora_batch_free(t->lb);
    br_free(t->adam_m);
    br_free(t->adam_v);
    dp_free(t);
    free(t);
}

br_status br_trainer_create(br_trainer_t **out, br_model_t *m, br_lora_adapter_t *a, const br_trainer_opts_t *o)
{
    *out = NULL;
    size_t B = o->batch, T = o->seq;
    if (!B || !T || o->accum < 1 || o->steps < 1 || !(o->lr > 0))
        return br_error(BR_EINVAL, "training needs batch, seq, accum, steps and lr > 0");
    if (B > SIZE_MAX / 16 / (T + 1) || (size_t)o->accum > SIZE_MAX / 16 / (B * (T + 1)))
        return br_error(BR_EINVAL, "batch %zu x seq %zu x accum %d is too large", B, T, o->accum);
    if (T > (size_t)m->cfg.max_position_embeddings)
        return br_error(BR_EINVAL, "--seq %zu is longer than the model's context (max_position_embeddings %d)", T,
                        m->cfg.max_position_embeddings);
    if (a && o->routers_only) return br_error(BR_EINVAL, "LoRA training and router-only training exclude each other");
    if (!a && !o->routers_only && !m->grads) return br_error(BR_EINVAL, "training every weight needs a model with gradients");
    if (a && !a->grads) return br_error(BR_EINVAL, "LoRA training needs the adapter's gradients (br_lora_alloc_grads)");
    br_trainer_t *t = calloc(1, sizeof *t);
    if (!t) return br_error(BR_ENOMEM, "out of memory");
    t->m = m;
    t->a = a;
    t->o = *o;
    t->in = malloc(B * T * sizeof *t->in);
    t->tg = malloc(B * T * sizeof *t->tg);
    br_status s = t->in && t->tg ? BR_OK : br_error(BR_ENOMEM, "out of memory");
    if (!s && a) {
        t->adam_m = br_alloc(a->n_params * sizeof(float));
        t->adam_v = br_alloc(a->n_params * sizeof(float));
        const br_lora_adapter_t **rows = malloc(B * T * sizeof *rows);
        s = t->adam_m && t->adam_v && rows ? br_lora_batch_create(&t->lb) : br_error(BR_ENOMEM, "out of memory");
        for (size_t i = 0; !s && i < B * T; i++) rows[i] = a;
        if (!s) s = br_lora_batch_set(t->lb, rows, B * T);
        free(rows);
        if (!s) t->hook = br_lora_batch_hook(t->lb);
    }
    t->comm = o->comm;
    t->rank = br_comm_rank(o->comm);
    t->ranks = br_comm_size(o->comm);
    if (!s && o->routers_only) s = routers_setup(t);
    if (!s && dp(t) && !a && !o->routers_only) s = dp_setup(t);
    if (s) {
        br_trainer_free(t);
        return s;
    }
    *out = t;
    return BR_OK;
}

br_status br_trainer_step(br_trainer_t *t, const int32_t *windows, br_trainer_step_t *out)
{
    const br_trainer_opts_t *o = &t->o;
    br_model_t *m = t->m;
    size_t B = o->batch, T = o->seq;
    long step = t->a ? t->lora_step : m->step; /* 0-based index of this step */
    double ts = br_now(), loss = 0;
    bool routers = o->routers_only;
    br_train_opts_t to = {t->a ? &t->hook : NULL, !t->a && !routers, 1.0f / (float)o->accum, routers};
    if (t->a) br_lora_zero_grads(t->a);
    else if (routers) routers_zero_grad(t);
    else br_model_zero_grad(m);
    for (int k = 0; k < o->accum; k++) {
        br_eval_split_windows(t->in, t->tg, windows + (size_t)k * B * (T + 1), B, T);
        float l = 0;
        BR_TRY(br_model_train_step(m, t->in, t->tg, B, T, &to, &l));
        loss += l / o->accum;
    }
    double c0 = br_comm_seconds(t->comm);
    t->wait_s = 0;
    if (dp(t)) {
        /* waiting for the slowest rank, timed apart from the transfers (overlapping them with
         * the backward pass could hide only the latter) */
        BR_TRY(br_comm_barrier(t->comm));
        t->wait_s = br_comm_seconds(t->comm) - c0;
        /* the mean over ranks (each rank's loss is a mean over as many tokens) */
        BR_TRY(br_comm_allreduce_sum_f64(t->comm, &loss, 1));
        loss /= t->ranks;
    }
    if (!isfinite(loss))
        return br_error(BR_ERANGE, "loss is %f at step %ld: training diverged (lower --lr?)", loss, step + 1);
    float lr = br_lr_cosine(step, o->warmup, o->steps, o->lr, o->min_lr), gnorm = 0;
    if (t->a && dp(t)) { /* the adapter is small: every rank keeps all of it, gradients all-reduced */
        BR_TRY(br_comm_allreduce_sum(t->comm, t->a->grads, t->a->n_params));
        br_scale_inplace(t->a->grads, 1.0f / (float)t->ranks, t->a->n_params);
    }
    if (t->a) {
        gnorm = br_clip_grad_norm(t->a->grads, t->a->n_params, o->clip);
        br_adamw_step(t->a->params, t->a->grads, t->adam_m, t->adam_v, t->a->n_params, lr, o->beta1, o->beta2,
                      o->eps, o->weight_decay, step + 1);
        t->lora_step++;
    } else if (routers) {
        BR_TRY(routers_adamw(t, lr, &gnorm));
    } else if (dp(t)) {
        BR_TRY(dp_adamw(t, lr, &gnorm));
    } else {
        br_adamw_opts_t ao = {lr, o->beta1, o->beta2, o->eps, o->weight_decay, o->clip};
        BR_TRY(br_model_adamw(m, &ao, &gnorm));
    }
    double now = br_now(), ntok = (double)(B * T) * o->accum * t->ranks;
    *out = (br_trainer_step_t){.step = step + 1, .loss = loss, .lr = lr, .grad_norm = gnorm, .tokens = ntok,
                               .tok_per_s = ntok / (now - ts), .wait_s = t->wait_s,
                               .comm_s = br_comm_seconds(t->comm) - c0 - t->wait_s};
    if (m->cfg.num_local_experts > 1) { /* MoE: auxiliary losses of the last micro-batch */
        out->moe = true;
        br_model_moe_aux(m, &out->moe_load_balance, &out->moe_z_loss);
    }
    return BR_OK;
}

/* ---- the run folder --------------------------------------------------------------------- */

/* Temporary files of base/fileio.c's atomic writes ("NAME.tmp.XXXXXX", mkstemp's six letters
 * or digits) that a kill left behind.  Only our own pattern is touched. */
static bool is_stale_temp(const char *name)
{
    const char *p = strstr(name, ".tmp.");
    if (!p || p == name) return false;
    for (const char *q; (q = strstr(p + 1, ".tmp."));) p = q;
    const char *x = p + 5;
    if (strlen(x) != 6) return false;
    for (int i = 0; i < 6; i++)
        if (!((x[i] >= 'a' && x[i] <= 'z') || (x[i] >= 'A' && x[i] <= 'Z') || (x[i] >= '0' && x[i] <= '9')))
            return false;
    return true;
}

/* Removes them from dir (a run starts or resumes there: no write of ours is in flight) and
 * logs what it removed. */
static br_status remove_stale_temps(const char *dir, size_t *removed)
{
    *removed = 0;
    DIR *d = opendir(dir);
    if (!d) return br_error(BR_EIO, "%s: cannot list the run folder", dir);
    struct dirent *e;
    br_status s = BR_OK;
    while (!s && (e = readdir(d))) {
        if (!is_stale_temp(e->d_name)) continue;
        char path[4096];
        struct stat sb;
        s = br_path_join(path, sizeof path, dir, e->d_name);
        if (s || lstat(path, &sb) || !S_ISREG(sb.st_mode)) continue;
        if (unlink(path)) {
            s = br_error(BR_EIO, "%s: cannot remove this stale temporary file", path);
            break;
        }
        BR_INFO("removed %s (%lld bytes): a temporary file of a save that was interrupted", path,
                (long long)sb.st_size);
        (*removed)++;
    }
    closedir(d);
    return s;
}

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

/* The trainer's part of optimizer.safetensors: data position and the flags that shape the run
 * ("batch": windows per micro-batch over all ranks, so a resume with another number of ranks
 * and the same global batch continues the same run). */
static char *run_state_json(const br_trainer_opts_t *o, br_mix_t *mix)
{
    size_t global_batch = o->batch * (size_t)br_comm_size(o->comm);
    br_mix_state_t st;
    br_mix_get_state(mix, &st);
    json_t *x = json_object(), *words = json_array();
    for (int i = 0; i < 8; i++) {
        char hex[24];
        snprintf(hex, sizeof hex, "%016" PRIx64, st.words[i]);
        json_array_append_new(words, json_string(hex));
    }
    json_object_set_new(x, "mix_state", words);
    json_object_set_new(x, "mix", json_string(o->mix));
    json_object_set_new(x, "batch", json_integer((json_int_t)global_batch));
    json_object_set_new(x, "seq", json_integer((json_int_t)o->seq));
    json_object_set_new(x, "accum", json_integer(o->accum));
    json_object_set_new(x, "steps", json_integer(o->steps));
    json_object_set_new(x, "seed", json_integer((json_int_t)o->seed));
    char *extra = json_dumps(x, JSON_COMPACT);
    json_decref(x);
    return extra;
}

static br_status write_checkpoint(const br_model_t *m, const br_trainer_opts_t *o, br_mix_t *mix)
{
    const br_trainer_hooks_t *h = &o->hooks;
    char path[4096];
    BR_TRY(br_path_join(path, sizeof path, o->out, "config.json"));
    if (h->on_save) h->on_save(h->ctx, m->step, "config.json");
    BR_TRY(br_config_save(&m->cfg, path));
    br_status s = BR_OK;
    if (!o->routers_only) { /* router-only runs keep no full optimizer state to save */
        char *extra = run_state_json(o, mix);
        if (!extra) return br_error(BR_ENOMEM, "out of memory");
        if (h->on_save) h->on_save(h->ctx, m->step, "optimizer.safetensors");
        s = br_model_save_optimizer(m, o->out, extra);
        free(extra);
    }
    if (!s && h->on_save) h->on_save(h->ctx, m->step, "model.safetensors");
    if (!s) s = br_model_save(m, o->out, o->save_dtype); /* model.safetensors, then config.json again */
    if (!s && h->on_save) h->on_save(h->ctx, m->step, "");
    return s;
}

/* One checkpoint: data-parallel, every rank sends its AdamW part and rank 0 writes. */
static br_status save_checkpoint(br_trainer_t *t, br_mix_t *mix)
{
    if (!dp(t)) return write_checkpoint(t->m, &t->o, mix);
    if (t->o.routers_only) return t->rank == 0 ? write_checkpoint(t->m, &t->o, mix) : BR_OK;
    br_status s = dp_gather_state(t);
    if (t->rank == 0) {
        if (!s) s = write_checkpoint(t->m, &t->o, mix);
        dp_drop_full_state(t->m);
    }
    return s;
}

/* The model of a resumed run: out/config.json, then weights, AdamW state, step and data position
 * from out/optimizer.safetensors (model.safetensors is not needed). */
static br_status resume_model(br_model_t **out, const br_trainer_opts_t *o, br_mix_t **mix)
{
    *out = NULL;
    char path[4096];
    BR_TRY(br_path_join(path, sizeof path, o->out, "optimizer.safetensors"));
    if (!br_file_exists(path))
        return br_error(BR_ENOTFOUND, "%s: no checkpoint to resume (no optimizer.safetensors: the run stopped "
                                      "before its first checkpoint); start it again with --config or --init", o->out);
    BR_TRY(br_path_join(path, sizeof path, o->out, "config.json"));
    if (!br_file_exists(path))
        return br_error(BR_ENOTFOUND, "%s: optimizer.safetensors without config.json (a run folder of an older "
                                      "braid interrupted in its first save); start it again with --config or --init", o->out);
    br_model_config_t c;
    BR_TRY(br_config_load(&c, path));
    br_model_t *m;
    BR_TRY(br_model_create(&m, &c, true));
    char *extra = NULL;
    br_status s = br_model_load_optimizer(m, o->out, &extra);
    json_t *x = !s && extra ? json_loads(extra, 0, NULL) : NULL;
    free(extra);
    json_t *w = x ? json_object_get(x, "mix_state") : NULL;
    if (!s && (!json_is_array(w) || json_array_size(w) != 8))
        s = br_error(BR_EFORMAT, "%s/optimizer.safetensors: no data-loader position stored", o->out);
    if (!s) s = br_mix_create(mix, o->data, o->mix, "train", o->seed);
    if (s) {
        json_decref(x);
        br_model_free(m);
        return s;
    }
    br_mix_state_t st;
    for (size_t i = 0; i < 8; i++) {
        const char *hex = json_string_value(json_array_get(w, i));
        st.words[i] = hex ? strtoull(hex, NULL, 16) : 0;
    }
    br_mix_set_state(*mix, &st);
    static const char *const keys[] = {"batch", "seq", "accum", "steps", "seed"};
    const long now[] = {(long)o->batch * br_comm_size(o->comm), (long)o->seq, o->accum, o->steps, (long)o->seed};
    for (size_t i = 0; i < 5; i++) {
        json_t *v = json_object_get(x, keys[i]);
        if (json_is_integer(v) && json_integer_value(v) != now[i])
            BR_WARN("resuming with --%s %ld%s (the run used %lld): the result will differ from an uninterrupted run",
                    keys[i], now[i], i == 0 && br_comm_size(o->comm) > 1 ? " x ranks" : "",
                    (long long)json_integer_value(v));
    }
    const char *mixs = json_string_value(json_object_get(x, "mix"));
    if (mixs && strcmp(mixs, o->mix)) BR_WARN("resuming with --mix %s (the run used %s)", o->mix, mixs);
    json_decref(x);
    *out = m;
    return BR_OK;
}

/* The model and the data loader of a run, as the options say. */
static br_status open_run(const br_trainer_opts_t *o, br_model_t **mp, br_mix_t **mix)
{
    *mp = NULL;
    *mix = NULL;
    if (!!o->config + !!o->init + o->resume != 1)
        return br_error(BR_EINVAL, "give exactly one of --config, --init or --resume");
    if (o->routers_only && o->resume)
        return br_error(BR_EINVAL, "--train router runs keep no optimizer state to resume from: start again with --init");
    if (!o->out || !o->data || !o->mix) return br_error(BR_EINVAL, "training needs a run folder, data and a mix");
    if (o->eval_batches < 1 || o->warmup < 0 || o->eval_interval < 0 || o->ckpt_interval < 0)
        return br_error(BR_EINVAL, "eval batches must be positive; intervals and warmup non-negative");
    if (o->save_dtype != BR_DT_F32 && o->save_dtype != BR_DT_BF16 && o->save_dtype != BR_DT_F16)
        return br_error(BR_EINVAL, "model.safetensors dtype must be F32, BF16 or F16");
    br_status s = BR_OK;
    br_model_t *m = NULL;
    if (o->resume) {
        s = resume_model(&m, o, mix);
    } else if (o->config) {
        br_model_config_t c;
        s = br_config_load(&c, o->config);
        if (!s) s = br_model_create(&m, &c, true);
        if (!s) br_model_init_random(m, o->seed);
    } else {
        s = br_model_load(&m, o->init, true);
        if (!s) m->step = 0;
    }
    if (!s && (size_t)m->cfg.max_position_embeddings < o->seq)
        s = br_error(BR_EINVAL, "--seq %zu is longer than the model's context (max_position_embeddings %d)", o->seq,
                     m->cfg.max_position_embeddings);
    if (!s && !*mix) s = br_mix_create(mix, o->data, o->mix, "train", o->seed);
    if (!s && br_mix_vocab(*mix) > (uint32_t)m->cfg.vocab_size)
        s = br_error(BR_EINVAL, "the token shards use %u ids but the model's vocab_size is %d", br_mix_vocab(*mix),
                     m->cfg.vocab_size);
    if (s) {
        br_mix_free(*mix);
        *mix = NULL;
        br_model_free(m);
        return s;
    }
    *mp = m;
    return BR_OK;
}

/* Validation: per domain of the training mix, the mean loss over eval_batches fixed random
 * windows of its val split (the same windows at every evaluation); mean over domains.  With
 * N ranks rank 0 validates alone on what one process with batch N*B would: N times as many
 * batches of B windows (the same windows, the same mean). */
static br_status validate(br_model_t *m, const br_trainer_opts_t *o, br_mix_t *train_mix, json_t *val, double *mean)
{
    size_t nd = br_mix_ndomains(train_mix);
    double total = 0;
    for (size_t d = 0; d < nd; d++) {
        char spec[256];
        snprintf(spec, sizeof spec, "%s=1", br_mix_domain(train_mix, d));
        br_mix_t *vm;
        BR_TRY(br_mix_create(&vm, o->data, spec, "val", o->seed + 1000003));
        double dm = 0;
        br_status s = br_eval_mix(m, vm, NULL, o->batch, o->seq, o->eval_batches * br_comm_size(o->comm), &dm);
        br_mix_free(vm);
        if (s) return s;
        json_object_set_new(val, br_mix_domain(train_mix, d), json_real(dm));
        total += dm;
    }
    *mean = total / (double)nd;
    return BR_OK;
}

static br_status log_validation(br_model_t *m, const br_trainer_opts_t *o, br_mix_t *mix, FILE *log, long step)
{
    json_t *val = json_object();
    double mean = 0;
    br_status s = validate(m, o, mix, val, &mean);
    if (!s) {
        char *vs = json_dumps(val, JSON_COMPACT | JSON_REAL_PRECISION(7));
        fprintf(log, "{\"step\": %ld, \"val_loss\": %.6f, \"val\": %s}\n", step, mean, vs ? vs : "{}");
        fflush(log);
        if (o->hooks.on_eval) o->hooks.on_eval(o->hooks.ctx, step, mean, vs ? vs : "{}");
        free(vs);
    }
    json_decref(val);
    return s;
}

void br_trainer_log_step(FILE *log, const br_trainer_step_t *st)
{
    fprintf(log, "{\"step\": %ld, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.4f, \"tokens\": %.0f, "
                 "\"tok_per_s\": %.1f, \"time\": %.3f",
            st->step, st->loss, st->lr, st->grad_norm, (double)st->step * st->tokens, st->tok_per_s, st->elapsed);
    if (st->moe) fprintf(log, ", \"moe_load_balance\": %.4f, \"moe_z_loss\": %.4f", st->moe_load_balance, st->moe_z_loss);
    fprintf(log, "}\n");
    fflush(log);
}

/* This rank's windows of the next step: each micro-batch is the mix's next N*B windows (every
 * rank draws the same ones: the stream depends on the seed and the step only) and rank r keeps
 * windows r*B .. r*B+B-1 of it, so N ranks x B see exactly 1 rank x N*B. */
static br_status next_windows(const br_trainer_t *t, br_mix_t *mix, int32_t *all, int32_t *mine)
{
    const br_trainer_opts_t *o = &t->o;
    size_t W = o->batch * (o->seq + 1), N = (size_t)t->ranks;
    for (int k = 0; k < o->accum; k++) {
        int32_t *g = N > 1 ? all : mine + (size_t)k * W;
        BR_TRY(br_mix_next_batch(mix, g, N * o->batch, o->seq));
        if (N > 1) memcpy(mine + (size_t)k * W, g + (size_t)t->rank * W, W * sizeof *mine);
    }
    return BR_OK;
}

/* Steps start+1 .. end: windows, step, then with a run folder (folder: every rank; log: rank 0
 * only) the log record, validation and checkpoints. */
static br_status train_loop(br_trainer_t *t, br_mix_t *mix, FILE *log, bool folder, long start, long end)
{
    const br_trainer_opts_t *o = &t->o;
    size_t W = o->batch * (o->seq + 1);
    int32_t *win = malloc((size_t)o->accum * W * sizeof *win);
    int32_t *all = t->ranks > 1 ? malloc((size_t)t->ranks * W * sizeof *all) : NULL;
    br_status s = win && (all || t->ranks == 1) ? BR_OK : br_error(BR_ENOMEM, "out of memory");
    double t0 = br_now(), tokens_done = 0;
    for (long step = start; step < end && !s; step++) {
        double ts = br_now();
        s = next_windows(t, mix, all, win);
        br_trainer_step_t st;
        if (!s) s = br_trainer_step(t, win, &st);
        if (s) break;
        double now = br_now();
        tokens_done += st.tokens;
        st.tok_per_s = st.tokens / (now - ts); /* with the data loading */
        st.elapsed = now - t0;
        st.avg_tok_per_s = tokens_done / (now - t0);
        if (log) br_trainer_log_step(log, &st);
        if (o->hooks.on_step) o->hooks.on_step(o->hooks.ctx, step + 1 - start, &st);
        if (!folder) continue;
        bool last = step + 1 == end;
        if (log && ((o->eval_interval && (step + 1) % o->eval_interval == 0) || (last && end == o->steps)))
            s = log_validation(t->m, o, mix, log, step + 1);
        if (!s && ((o->ckpt_interval && (step + 1) % o->ckpt_interval == 0) || last)) s = save_checkpoint(t, mix);
    }
    free(win);
    free(all);
    return s;
}

/* ---- model folders and plain text ---------------------------------------------------------- */

/* The files of a model folder besides its weights that make the trained copy a complete model
 * folder again (the tokenizer, its config and chat template, generation defaults). */
static const char *const tokenizer_files[] = {
    "tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json",
    "chat_template.jinja", "tokenizer.model", "vocab.json", "merges.txt",
};

/* Copies those of them that `from` has into `to` (atomically; none when they are one folder). */
static br_status copy_tokenizer_files(const char *from, const char *to)
{
    char a[4096], b[4096];
    if (!from || !br_dir_exists(from) || (realpath(from, a) && realpath(to, b) && !strcmp(a, b))) return BR_OK;
    for (size_t i = 0; i < sizeof tokenizer_files / sizeof *tokenizer_files; i++) {
        BR_TRY(br_path_join(a, sizeof a, from, tokenizer_files[i]));
        if (!br_file_exists(a)) continue;
        char *data;
        size_t n;
        BR_TRY(br_path_join(b, sizeof b, to, tokenizer_files[i]));
        BR_TRY(br_read_file(a, &data, &n));
        br_status s = br_write_file_atomic(b, data, n);
        free(data);
        BR_TRY(s);
    }
    return BR_OK;
}

/* save_dtype -1: the dtype of the matrices in DIR's weights (BF16 or F16 when all are), else F32. */
static int folder_dtype(const char *dir)
{
    br_model_info_t *info = calloc(1, sizeof *info);
    int dt = BR_DT_F32;
    if (info && dir && !br_model_inspect(dir, info) && !info->weights_status)
        dt = info->wt == BR_WT_BF16 ? BR_DT_BF16 : info->wt == BR_WT_F16 ? BR_DT_F16 : BR_DT_F32;
    free(info);
    return dt;
}

/* opts.text: tokenises it into DIR/data (DIR: the run folder) and points data and mix there
 * (data_dir: the caller's buffer for the path). */
static br_status text_opts(br_trainer_opts_t *o, const char *dir, char *data_dir, size_t cap)
{
    if (!o->text) return BR_OK;
    if (o->data || o->mix) return br_error(BR_EINVAL, "give either --text or --data and --mix, not both");
    const char *tok = o->tokenizer ? o->tokenizer : o->init ? o->init : o->resume ? o->out : NULL;
    if (!tok)
        return br_error(BR_EINVAL, "--text needs the model's tokenizer: give --tokenizer (a tokenizer.json or a "
                        "model folder holding one)");
    if (!dir) return br_error(BR_EINVAL, "--text needs an output folder for its token shards");
    BR_TRY(br_path_join(data_dir, cap, dir, "data"));
    br_text_data_t info;
    BR_TRY(br_trainer_text(o->text, tok, data_dir, o->seq + 1, &info));
    o->data = data_dir;
    o->mix = BR_TEXT_DOMAIN "=1";
    return BR_OK;
}

/* Removes what text_opts wrote under data_dir (best effort: the folder is ours). */
static void remove_text_shards(const char *data_dir)
{
    char dir[4096], path[4096];
    if (br_path_join(dir, sizeof dir, data_dir, BR_TEXT_DOMAIN)) return;
    if (!br_path_join(path, sizeof path, dir, "train.bin")) unlink(path);
    if (!br_path_join(path, sizeof path, dir, "val.bin")) unlink(path);
    rmdir(dir);
    rmdir(data_dir);
}

br_status br_trainer_run(const br_trainer_opts_t *oin, long *final_step)
{
    br_model_t *m = NULL;
    br_mix_t *mix = NULL;
    br_trainer_t *t = NULL;
    FILE *log = NULL;
    size_t removed = 0;
    char path[4096], data_dir[4096];
    br_trainer_opts_t oo = *oin, *o = &oo;
    bool root = br_comm_rank(o->comm) == 0; /* the one writer of the run folder */
    if (o->save_dtype < 0) o->save_dtype = folder_dtype(o->init ? o->init : o->resume ? o->out : NULL);
    br_status s = o->text && o->out ? br_mkdir_p(o->out) : BR_OK;
    if (!s) s = text_opts(o, o->out, data_dir, sizeof data_dir);
    if (!s) s = open_run(o, &m, &mix);
    if (!s && root) s = br_mkdir_p(o->out);
    if (!s && root) s = remove_stale_temps(o->out, &removed);
    if (!s && root && !o->resume) s = copy_tokenizer_files(o->init, o->out);
    if (!s && root) s = br_path_join(path, sizeof path, o->out, "train_log.jsonl");
    if (!s && root) s = o->resume ? trim_log(path, m->step) : br_write_file_atomic(path, "", 0);
    if (!s && root && !(log = fopen(path, "a"))) s = br_error(BR_EIO, "cannot open %s", path);
    if (!s) s = br_trainer_create(&t, m, NULL, o);
    if (!s) {
        long start = m->step, end = o->stop_at > 0 && o->stop_at < o->steps ? o->stop_at : o->steps;
        size_t trained = o->routers_only ? t->rt_params : m->n_params;
        br_trainer_start_t info = {trained, m->n_params, start, end, o->steps, o->resume, removed};
        if (o->hooks.on_start) o->hooks.on_start(o->hooks.ctx, &info);
        s = train_loop(t, mix, log, true, start, end);
        if (final_step) *final_step = m->step;
    }
    if (log) fclose(log);
    br_trainer_free(t);
    br_mix_free(mix);
    br_model_free(m);
    return s;
}

br_status br_trainer_lora(br_model_t *m, br_lora_adapter_t *a, const br_trainer_opts_t *o, int val_batches,
                          double val_loss[3])
{
    br_mix_t *train = NULL, *val = NULL;
    br_trainer_t *t = NULL;
    br_trainer_opts_t oo = *o;
    oo.accum = 1;
    size_t B = oo.batch, T = oo.seq;
    /* validation (every rank alike): the windows of val_batches batches of all ranks' windows */
    val_batches *= br_comm_size(oo.comm);
    char data_dir[4096];
    br_status s = oo.text && oo.out ? br_mkdir_p(oo.out) : BR_OK;
    if (!s) s = text_opts(&oo, oo.out, data_dir, sizeof data_dir);
    if (!s) s = br_trainer_create(&t, m, a, &oo);
    if (!s) s = br_mix_create(&train, oo.data, oo.mix, "train", oo.seed);
    if (!s && br_mix_vocab(train) > (uint32_t)m->cfg.vocab_size)
        s = br_error(BR_EINVAL, "the shards' vocabulary (%u) is larger than the model's (%d)", br_mix_vocab(train),
                     m->cfg.vocab_size);
    if (!s && val_batches > 0) s = br_mix_create(&val, oo.data, oo.mix, "val", oo.seed + 1);
    br_mix_state_t vs;
    if (!s && val) { /* the base alone and with the untrained adapter, on the same windows */
        br_mix_get_state(val, &vs);
        s = br_eval_mix(m, val, NULL, B, T, val_batches, &val_loss[0]);
        br_mix_set_state(val, &vs);
        if (!s) s = br_eval_mix(m, val, &t->hook, B, T, val_batches, &val_loss[1]);
        br_mix_set_state(val, &vs);
    }
    if (!s && o->hooks.on_start) {
        br_trainer_start_t info = {a->n_params, m->n_params, 0, oo.steps, oo.steps, false, 0};
        o->hooks.on_start(o->hooks.ctx, &info);
    }
    if (!s) s = train_loop(t, train, NULL, false, 0, oo.steps);
    if (!s && val) s = br_eval_mix(m, val, &t->hook, B, T, val_batches, &val_loss[2]);
    br_trainer_free(t);
    br_mix_free(train);
    br_mix_free(val);
    if (oo.text && oo.data == data_dir) remove_text_shards(data_dir); /* the adapter folder stays PEFT's */
    return s;
}
