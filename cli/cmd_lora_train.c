/* braid lora-train: trains a LoRA adapter on a frozen base model and writes a PEFT folder. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/progress.h"
#include "base/timer.h"
#include "commands.h"
#include "lm/data.h"
#include "lm/model.h"
#include "lm/peft.h"
#include "nn/lora.h"
#include "nn/nn.h"
#include "serve/adapters.h"

/* Mean loss over `batches` validation batches, with the hook or without (hook NULL). */
static br_status val_loss(br_model_t *m, br_mix_t *val, const br_lora_hook_t *hook, int32_t *tok, int32_t *in,
                          int32_t *tg, float *losses, size_t B, size_t T, int batches, double *out)
{
    double sum = 0;
    for (int k = 0; k < batches; k++) {
        BR_TRY(br_mix_next_batch(val, tok, B, T));
        for (size_t b = 0; b < B; b++) {
            memcpy(in + b * T, tok + b * (T + 1), T * sizeof *in);
            memcpy(tg + b * T, tok + b * (T + 1) + 1, T * sizeof *tg);
        }
        float l = 0;
        BR_TRY(br_model_forward_loss(m, in, tg, B, T, hook, losses, &l));
        sum += l;
    }
    *out = sum / batches;
    return BR_OK;
}

int cmd_lora_train(int argc, char **argv)
{
    const char *base = NULL, *data = NULL, *mix_spec = NULL, *out = NULL, *targets_s = "q_proj,v_proj";
    int rank = 8, batch = 8, seq = 0, steps = 200, warmup = 10, val_batches = 8;
    float alpha = 16, lr = 1e-3f, wd = 0, clip = 1;
    long seed = 1;
    bool rslora = false;
    const opt_t opts[] = {
        {"base", OPT_STR, &base, "DIR", "frozen base model (config.json + model.safetensors)", true},
        {"data", OPT_STR, &data, "DIR", "token shards folder (DIR/<domain>/{train,val}.bin from braid data prepare)", true},
        {"mix", OPT_STR, &mix_spec, "SPEC", "domains and weights, e.g. code=1 or code=0.9,general=0.1", true},
        {"out", OPT_STR, &out, "DIR", "adapter folder to write (PEFT: adapter_config.json + adapter_model.safetensors)", true},
        {"rank", OPT_INT, &rank, "R", "LoRA rank (default 8)", false},
        {"alpha", OPT_FLOAT, &alpha, "A", "LoRA alpha; scale = alpha / rank (default 16)", false},
        {"targets", OPT_STR, &targets_s, "LIST", "projections: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj or all (default q_proj,v_proj)", false},
        {"rslora", OPT_BOOL, &rslora, NULL, "rank-stabilised scale alpha / sqrt(rank)", false},
        {"steps", OPT_INT, &steps, "N", "optimizer steps (default 200)", false},
        {"batch", OPT_INT, &batch, "B", "sequences per step (default 8)", false},
        {"seq", OPT_INT, &seq, "T", "tokens per sequence (default min(128, context))", false},
        {"lr", OPT_FLOAT, &lr, "LR", "peak learning rate, cosine decay to lr/10 (default 1e-3)", false},
        {"warmup", OPT_INT, &warmup, "N", "warmup steps (default 10)", false},
        {"weight-decay", OPT_FLOAT, &wd, "W", "AdamW weight decay (default 0)", false},
        {"clip", OPT_FLOAT, &clip, "C", "gradient-norm clip (default 1; 0: none)", false},
        {"val-batches", OPT_INT, &val_batches, "N", "validation batches before/after (default 8; 0: skip)", false},
        {"seed", OPT_LONG, &seed, "N", "seed for the adapter init and the data order (default 1)", false},
    };
    cmd_spec_t spec = {"braid lora-train --base DIR --data DIR --mix SPEC --out DIR [options]",
                       "Trains a LoRA adapter on the base model, whose weights stay frozen, and writes it in Hugging "
                       "Face PEFT layout so that `braid serve --adapters` (or PEFT) can load it. Prints the validation "
                       "loss of the base model and of base + adapter on the same batches.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (rank < 1 || batch < 1 || steps < 1 || warmup < 0 || seq < 0 || val_batches < 0 || !(alpha > 0) || !(lr > 0)) {
        fprintf(stderr, "braid: error: --rank, --batch, --steps, --alpha and --lr must be positive\n");
        return 2;
    }
    unsigned targets = 0;
    br_status st = br_lora_parse_targets(targets_s, &targets);
    if (st != BR_OK) {
        fprintf(stderr, "braid: error: --targets: %s\n", br_errmsg());
        return 2;
    }
    br_model_t *m = NULL;
    br_mix_t *train = NULL, *val = NULL;
    br_lora_adapter_t *a = NULL;
    br_lora_batch_t *lb = NULL;
    float *adam_m = NULL, *adam_v = NULL, *losses = NULL;
    int32_t *tok = NULL, *in = NULL, *tg = NULL;
    st = br_model_load(&m, base, false);
    if (st != BR_OK) return fail_status(st, "lora-train");
    size_t T = seq ? (size_t)seq : (m->cfg.max_position_embeddings < 128 ? (size_t)m->cfg.max_position_embeddings : 128);
    size_t B = (size_t)batch;
    if (T > (size_t)m->cfg.max_position_embeddings) {
        st = br_error(BR_EINVAL, "--seq %zu exceeds the model's context of %d", T, m->cfg.max_position_embeddings);
        goto done;
    }
    st = br_mix_create(&train, data, mix_spec, "train", (uint64_t)seed);
    if (st == BR_OK && br_mix_vocab(train) > (uint32_t)m->cfg.vocab_size)
        st = br_error(BR_EINVAL, "the shards' vocabulary (%u) is larger than the model's (%d)", br_mix_vocab(train),
                      m->cfg.vocab_size);
    if (st == BR_OK && val_batches) st = br_mix_create(&val, data, mix_spec, "val", (uint64_t)seed + 1);
    br_lora_shapes_t shapes = br_lora_shapes_from_config(&m->cfg);
    if (st == BR_OK) st = br_lora_create(&a, &shapes, rank, alpha, targets, rslora, (uint64_t)seed);
    if (st == BR_OK) st = br_lora_alloc_grads(a);
    if (st == BR_OK) st = br_lora_batch_create(&lb);
    if (st != BR_OK) goto done;
    snprintf(a->base_model, sizeof a->base_model, "%s", base);
    adam_m = br_alloc(a->n_params * sizeof(float));
    adam_v = br_alloc(a->n_params * sizeof(float));
    tok = malloc(B * (T + 1) * sizeof *tok);
    in = malloc(B * T * sizeof *in);
    tg = malloc(B * T * sizeof *tg);
    losses = malloc(B * T * sizeof *losses);
    const br_lora_adapter_t **rows = malloc(B * T * sizeof *rows);
    if (!adam_m || !adam_v || !tok || !in || !tg || !losses || !rows) {
        free(rows);
        st = br_error(BR_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < B * T; i++) rows[i] = a;
    st = br_lora_batch_set(lb, rows, B * T);
    free(rows);
    if (st != BR_OK) goto done;
    br_lora_hook_t hook = br_lora_batch_hook(lb);
    fprintf(stderr, "lora-train: rank %d, alpha %g, targets %s: %zu adapter parameters on a %zu-parameter base\n", rank,
            (double)alpha, targets_s, a->n_params, m->n_params);
    double base_val = 0, before = 0;
    if (val) {
        br_mix_state_t vs;
        br_mix_get_state(val, &vs);
        st = val_loss(m, val, NULL, tok, in, tg, losses, B, T, val_batches, &base_val);
        br_mix_set_state(val, &vs);
        if (st == BR_OK) st = val_loss(m, val, &hook, tok, in, tg, losses, B, T, val_batches, &before);
        br_mix_set_state(val, &vs);
        if (st != BR_OK) goto done;
    }
    br_train_opts_t to = {.lora = &hook, .train_base = false, .loss_scale = 1};
    br_progress_t pb;
    br_progress_start(&pb, "lora-train", steps, "step");
    double t0 = br_now(), ema = 0;
    for (int step = 0; step < steps && st == BR_OK; step++) {
        st = br_mix_next_batch(train, tok, B, T);
        if (st != BR_OK) break;
        for (size_t b = 0; b < B; b++) {
            memcpy(in + b * T, tok + b * (T + 1), T * sizeof *in);
            memcpy(tg + b * T, tok + b * (T + 1) + 1, T * sizeof *tg);
        }
        br_lora_zero_grads(a);
        float loss = 0;
        st = br_model_train_step(m, in, tg, B, T, &to, &loss);
        if (st != BR_OK) break;
        if (!isfinite(loss)) {
            st = br_error(BR_ERANGE, "loss became %g at step %d (lower --lr)", (double)loss, step);
            break;
        }
        float gn = br_clip_grad_norm(a->grads, a->n_params, clip);
        float cur = br_lr_cosine(step, warmup, steps, lr, lr / 10);
        br_adamw_step(a->params, a->grads, adam_m, adam_v, a->n_params, cur, 0.9f, 0.999f, 1e-8f, wd, step + 1);
        ema = step ? 0.9 * ema + 0.1 * loss : loss;
        br_progress_updatef(&pb, step + 1, "loss %.3f |g| %.2f lr %.1e", ema, (double)gn, (double)cur);
    }
    br_progress_finish(&pb);
    if (st != BR_OK) goto done;
    double secs = br_now() - t0;
    if (val) {
        double after = 0;
        st = val_loss(m, val, &hook, tok, in, tg, losses, B, T, val_batches, &after);
        if (st != BR_OK) goto done;
        printf("validation loss on %s: base %.4f, base + adapter %.4f (before training %.4f)\n", mix_spec, base_val,
               after, before);
    }
    st = br_lora_save(a, out);
    if (st == BR_OK)
        printf("wrote %s (PEFT LoRA, %zu parameters) after %d steps in %.1f s (%.0f tokens/s)\n", out, a->n_params, steps,
               secs, (double)steps * (double)(B * T) / secs);
done:
    br_free(adam_m);
    br_free(adam_v);
    free(tok);
    free(in);
    free(tg);
    free(losses);
    br_lora_batch_free(lb);
    br_lora_free(a);
    br_mix_free(train);
    br_mix_free(val);
    br_model_free(m);
    return st == BR_OK ? 0 : fail_status(st, "lora-train");
}
