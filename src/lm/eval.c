/* The evaluator (lm/eval.h). */
#include "lm/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


double br_eval_loss(const br_eval_sum_t *s) { return s->nats / s->tokens; }
double br_eval_perplexity(const br_eval_sum_t *s) { return exp(br_eval_loss(s)); }
double br_eval_bits_per_byte(const br_eval_sum_t *s)
{
    return s->bytes > 0 ? s->nats / log(2.0) / s->bytes : NAN;
}

void br_eval_split_windows(int32_t *in, int32_t *tg, const int32_t *win, size_t B, size_t T)
{
    for (size_t b = 0; b < B; b++) {
        memcpy(in + b * T, win + b * (T + 1), T * sizeof *in);
        memcpy(tg + b * T, win + b * (T + 1) + 1, T * sizeof *tg);
    }
}

/* Buffers of one batch loop: windows (B, T+1), inputs and targets (B, T), per-target losses
 * and (ensembles) per-target probabilities. */
typedef struct {
    int32_t *win, *in, *tg;
    float *losses;
    double *p;
    float *lk; /* ensembles: (n_models, B*T) per-model losses for the posterior weights */
} batch_buf_t;

static br_status buf_alloc(batch_buf_t *b, size_t B, size_t T, size_t n_models)
{
    memset(b, 0, sizeof *b);
    bool ensemble = n_models > 1;
    if (!B || !T || B > SIZE_MAX / 8 / (T + 1) / (n_models ? n_models : 1))
        return br_error(BR_EINVAL, "evaluation batch %zu x %zu tokens is not valid", B, T);
    b->win = malloc(B * (T + 1) * sizeof *b->win);
    b->in = malloc(B * T * sizeof *b->in);
    b->tg = malloc(B * T * sizeof *b->tg);
    b->losses = malloc(B * T * sizeof *b->losses);
    b->p = ensemble ? malloc(B * T * sizeof *b->p) : NULL;
    b->lk = ensemble ? malloc(n_models * B * T * sizeof *b->lk) : NULL;
    if (!b->win || !b->in || !b->tg || !b->losses || (ensemble && (!b->p || !b->lk)))
        return br_error(BR_ENOMEM, "out of memory");
    return BR_OK;
}

static void buf_free(batch_buf_t *b)
{
    free(b->win), free(b->in), free(b->tg), free(b->losses), free(b->p), free(b->lk);
}

/* Posterior-weighted ensemble (BTM): for each of the nb windows, walks the targets in order with
 * log w_k = sum of log p_k over the window's earlier targets (uniform prior), and adds
 * -log sum_k softmax(log w)_k p_k(target).  lk: (n_models, nb*T) per-model losses. */
static double posterior_nats(const float *lk, size_t n_models, size_t nb, size_t T)
{
    size_t N = nb * T;
    double nats = 0, lw[64];
    for (size_t b = 0; b < nb; b++) {
        for (size_t k = 0; k < n_models; k++) lw[k] = 0;
        for (size_t t = 0; t < T; t++) {
            size_t i = b * T + t;
            double mx = -INFINITY;
            for (size_t k = 0; k < n_models; k++) mx = lw[k] > mx ? lw[k] : mx;
            double zw = 0, zp = 0;
            for (size_t k = 0; k < n_models; k++) {
                double w = exp(lw[k] - mx);
                zw += w;
                zp += w * exp(-(double)lk[k * N + i]);
            }
            nats -= log(zp / zw);
            for (size_t k = 0; k < n_models; k++) lw[k] -= (double)lk[k * N + i];
        }
    }
    return nats;
}

/* The one scoring step: b->win holds nb windows of T+1 tokens.  Adds -log p(target) of every
 * target to sum (one model: its loss; several: -log of the mean probability) and the batch's
 * mean loss (one model) to *mean when mean != NULL. */
static br_status score_batch(br_model_t *const *models, size_t n_models, const br_lora_hook_t *lora,
                             batch_buf_t *b, size_t nb, size_t T, const size_t *token_bytes,
                             br_eval_sum_t *sum, float *mean, bool posterior)
{
    br_eval_split_windows(b->in, b->tg, b->win, nb, T);
    size_t N = nb * T;
    if (n_models == 1) {
        float mb = 0;
        BR_TRY(br_model_forward_loss(models[0], b->in, b->tg, nb, T, lora, b->losses, &mb));
        if (mean) *mean = mb;
        for (size_t i = 0; i < N; i++) sum->nats += b->losses[i];
    } else if (posterior) {
        for (size_t k = 0; k < n_models; k++)
            BR_TRY(br_model_forward_loss(models[k], b->in, b->tg, nb, T, lora, b->lk + k * N, NULL));
        sum->nats += posterior_nats(b->lk, n_models, nb, T);
    } else {
        memset(b->p, 0, N * sizeof *b->p);
        for (size_t k = 0; k < n_models; k++) {
            BR_TRY(br_model_forward_loss(models[k], b->in, b->tg, nb, T, lora, b->losses, NULL));
            for (size_t i = 0; i < N; i++) b->p[i] += exp(-(double)b->losses[i]) / (double)n_models;
        }
        for (size_t i = 0; i < N; i++) sum->nats -= log(b->p[i]);
    }
    if (token_bytes)
        for (size_t i = 0; i < N; i++) sum->bytes += (double)token_bytes[b->tg[i]];
    sum->tokens += (double)N;
    return BR_OK;
}

/* One domain: consecutive windows of its shard. */
static br_status eval_shard(br_model_t *const *models, size_t n_models, const char *path,
                            const br_eval_opts_t *o, batch_buf_t *b, br_eval_sum_t *r, double *done)
{
    br_shard_t *sh;
    BR_TRY(br_shard_open(&sh, path));
    size_t n = br_shard_ntokens(sh), B = o->batch, T = o->seq;
    br_status s = BR_OK;
    for (size_t k = 0; k < n_models && !s; k++)
        if (br_shard_vocab(sh) > (uint32_t)models[k]->cfg.vocab_size)
            s = br_error(BR_EINVAL, "%s: shard vocabulary %u is larger than the model's %d", path,
                         br_shard_vocab(sh), models[k]->cfg.vocab_size);
    if (!s && n < 2) s = br_error(BR_EFORMAT, "%s: fewer than 2 tokens", path);
    size_t nwin = n > 1 ? (n - 1) / T : 0, Tlast = 0;
    if (nwin == 0 && n > 1) Tlast = n - 1; /* a shard shorter than one window: one short window */
    size_t maxwin = (o->max_tokens + T - 1) / T;
    if (nwin > maxwin) nwin = maxwin;
    memset(r, 0, sizeof *r);
    for (size_t w0 = 0; !s && (w0 < nwin || (Tlast && w0 == 0)); w0 += B) {
        size_t nb = nwin - w0 < B ? nwin - w0 : B, TT = T;
        if (Tlast) nb = 1, TT = Tlast;
        for (size_t k = 0; k < nb && !s; k++) s = br_shard_read(sh, (w0 + k) * T, TT + 1, b->win + k * (TT + 1));
        if (!s) s = score_batch(models, n_models, NULL, b, nb, TT, o->token_bytes, r, NULL, o->posterior);
        *done += (double)(nb * TT);
        if (o->progress) o->progress(o->ctx, *done);
        if (Tlast) break;
    }
    if (!s && !o->token_bytes) /* bytes in proportion to the tokens evaluated (header byte count) */
        r->bytes = (double)br_shard_nbytes(sh) * r->tokens / (double)n;
    br_shard_close(sh);
    return s;
}

br_status br_eval_domains(br_model_t *const *models, size_t n_models, const br_eval_opts_t *o,
                          br_eval_sum_t *sums, uint64_t *route_counts)
{
    if (n_models < 1 || o->n_domains < 1) return br_error(BR_EINVAL, "evaluation needs a model and a domain");
    if (o->posterior && n_models > 64) return br_error(BR_EINVAL, "posterior-weighted ensemble of %zu models: at most 64", n_models);
    for (size_t k = 0; k < n_models; k++)
        if (o->seq > (size_t)models[k]->cfg.max_position_embeddings)
            return br_error(BR_EINVAL, "window of %zu tokens is longer than the model's context (%d)", o->seq,
                            models[k]->cfg.max_position_embeddings);
    batch_buf_t b;
    br_status s = buf_alloc(&b, o->batch, o->seq, n_models);
    br_model_t *m = models[0];
    size_t per_domain = (size_t)m->cfg.num_hidden_layers * (size_t)m->cfg.num_local_experts;
    double done = 0;
    for (size_t i = 0; i < o->n_domains && !s; i++) {
        if (route_counts && n_models == 1) m->route_counts = route_counts + i * per_domain;
        char path[4096];
        int w = snprintf(path, sizeof path, "%s/%s/%s.bin", o->data, o->domains[i], o->split);
        if (w < 0 || (size_t)w >= sizeof path) s = br_error(BR_ERANGE, "%s/%s: path too long", o->data, o->domains[i]);
        if (!s) s = eval_shard(models, n_models, path, o, &b, &sums[i], &done);
        if (s) s = br_error_wrap(s, "domain %s", o->domains[i]);
    }
    m->route_counts = NULL;
    buf_free(&b);
    return s;
}

static json_t *sum_json(const br_eval_sum_t *r, bool with_bytes)
{
    double loss = br_eval_loss(r);
    json_t *o = json_pack("{s:f, s:f, s:f, s:I}", "loss", loss, "perplexity", exp(loss), "bits_per_byte",
                          br_eval_bits_per_byte(r), "tokens", (json_int_t)r->tokens);
    if (o && with_bytes) json_object_set_new(o, "bytes", json_real(r->bytes));
    return o;
}

static void md_row(FILE *md, const char *name, const br_eval_sum_t *r)
{
    double loss = br_eval_loss(r);
    fprintf(md, "| %s | %.0f | %.4f | %.2f | %.4f |\n", name, r->tokens, loss, exp(loss), br_eval_bits_per_byte(r));
}

void br_eval_report(const br_eval_opts_t *o, const br_eval_sum_t *sums, json_t *root, FILE *md)
{
    json_t *jd = json_object();
    br_eval_sum_t all = {0, 0, 0};
    if (md) fprintf(md, "| domain | tokens | loss (nats/token) | perplexity | bits/byte |\n|---|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < o->n_domains; i++) {
        all.nats += sums[i].nats;
        all.tokens += sums[i].tokens;
        all.bytes += sums[i].bytes;
        json_object_set_new(jd, o->domains[i], sum_json(&sums[i], true));
        if (md) md_row(md, o->domains[i], &sums[i]);
    }
    if (md && o->n_domains > 1) md_row(md, "**all**", &all);
    json_object_set_new(root, "domains", jd);
    json_object_set_new(root, "all", sum_json(&all, false));
}

br_status br_eval_mix(br_model_t *m, br_mix_t *mix, const br_lora_hook_t *lora, size_t B, size_t T,
                      int batches, double *mean)
{
    if (batches < 1) return br_error(BR_EINVAL, "evaluation needs at least one batch (got %d)", batches);
    batch_buf_t b;
    br_status s = buf_alloc(&b, B, T, 1);
    br_eval_sum_t unused = {0, 0, 0};
    double total = 0;
    for (int k = 0; k < batches && !s; k++) {
        float mb = 0;
        s = br_mix_next_batch(mix, b.win, B, T);
        if (!s) s = score_batch(&m, 1, lora, &b, B, T, NULL, &unused, &mb, false);
        total += mb;
    }
    buf_free(&b);
    if (!s) *mean = total / batches;
    return s;
}
