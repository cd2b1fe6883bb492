/* The trainer: one loop for every kind of training braid does: a dense model or a mixture of
 * experts from a config (random init), from a checkpoint (branches, MoE finetuning) or resumed
 * exactly from its run folder; and LoRA-only training with the base frozen.
 *
 *   windows   random windows of T+1 tokens from a weighted domain mix (lm/data.h)
 *   step      `accum` micro-batches of B windows, gradients accumulated (scaled 1/accum);
 *             with a communicator, data-parallel over its ranks (opts.comm below)
 *   update    AdamW with global-norm clipping and warmup + cosine decay to min_lr
 *   logging   DIR/train_log.jsonl: one record per step {step, loss, lr, grad_norm, tokens,
 *             tok_per_s, time[, moe_load_balance, moe_z_loss]}, one per validation
 *             {step, val_loss, val: {domain: loss}}
 *   checkpoints  DIR/config.json, DIR/optimizer.safetensors (weights, AdamW state, data
 *             position: exact resume), DIR/model.safetensors, in that order (see train.c)
 *
 * The library prints nothing: progress, validation results and checkpoint phases go to
 * optional callbacks; warnings (resuming with other flags, stale temporary files removed) go to
 * base/log. */
#ifndef BR_LM_TRAIN_H
#define BR_LM_TRAIN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/comm.h"
#include "base/status.h"
#include "lm/model.h"
#include "nn/lora.h"

/* What one optimizer step did (callbacks; br_trainer_step). */
typedef struct {
    long step;                /* 1-based number of the step just taken */
    double loss;              /* mean training loss over the step's micro-batches */
    float lr, grad_norm;      /* grad_norm: before clipping */
    double tokens;            /* tokens of this step, all ranks (ranks * accum * B * T) */
    double tok_per_s;         /* this step's rate */
    double elapsed;           /* seconds since the run started */
    double avg_tok_per_s;     /* tokens of this run / elapsed */
    double comm_s;            /* seconds of this step in collectives (data-parallel; else 0) */
    double wait_s;            /* and waiting for the slowest rank before them (load imbalance) */
    bool moe;                 /* the model routes tokens: the two auxiliary losses below are set */
    float moe_load_balance;   /* last micro-batch's load-balancing loss (1 = balanced) */
    float moe_z_loss;         /* and router z-loss (their gradients are part of the step) */
} br_trainer_step_t;

/* Known once the model and the data are ready, before the first step. */
typedef struct {
    size_t n_params;          /* trained parameters (the adapter's in LoRA-only mode) */
    size_t base_params;       /* the model's parameters */
    long start, end, steps;   /* this call runs steps start+1 .. end of a `steps`-step schedule */
    bool resumed;
    size_t stale_removed;     /* stale temporary files removed from the run folder */
} br_trainer_start_t;

/* Optional callbacks (any may be NULL); ctx is passed back. */
typedef struct {
    void *ctx;
    void (*on_start)(void *ctx, const br_trainer_start_t *s);
    void (*on_step)(void *ctx, long done_in_this_run, const br_trainer_step_t *st);
    /* validation: the mean over domains and {domain: loss} as compact JSON */
    void (*on_eval)(void *ctx, long step, double mean, const char *per_domain_json);
    /* before each file of a checkpoint is written ("config.json", "optimizer.safetensors",
     * "model.safetensors") and once with "" when the checkpoint is complete */
    void (*on_save)(void *ctx, long step, const char *file);
} br_trainer_hooks_t;

typedef struct {
    /* where the weights come from (br_trainer_run): exactly one of these */
    const char *config;          /* config.json of a new model, random init from seed */
    const char *init;            /* checkpoint folder: its weights, a fresh optimizer */
    bool resume;                 /* the run in `out`, exactly where its last checkpoint left it */

    const char *data;            /* token folder DATA/<domain>/{train,val}.bin */
    const char *mix;             /* domain weights, e.g. "general=1,code=1" */
    /* or plain text (instead of data and mix): a UTF-8 file or a folder of *.txt files,
     * tokenised by `tokenizer` (a tokenizer.json or a folder holding one with its
     * tokenizer_config.json; NULL: the --init folder, or the run folder on resume) into
     * OUT/data/text/{train,val}.bin (br_trainer_text) and trained on as the mix "text=1" */
    const char *text;
    const char *tokenizer;
    const char *out;             /* run folder (br_trainer_run; LoRA mode: only --text uses it, for
                                  * its token shards, removed afterwards) */
    long steps;                  /* length of the schedule */
    long stop_at;                /* > 0: stop (with a checkpoint) after this step */
    long warmup;                 /* linear warmup steps */
    uint64_t seed;               /* init (config) and data order */
    size_t batch, seq;           /* B windows of T tokens per micro-batch */
    int accum;                   /* micro-batches per step */
    float lr, min_lr;            /* peak and final learning rate of the cosine */
    float weight_decay, beta1, beta2, eps;
    float clip;                  /* global gradient-norm clip, <= 0: none */
    int eval_interval;           /* validate every N steps (0: only at the end) */
    int eval_batches;            /* validation batches per domain */
    int ckpt_interval;           /* checkpoint every N steps (0: only at the end) */
    int save_dtype;              /* br_dtype of model.safetensors: F32, BF16 or F16; -1: the dtype
                                  * of the --init folder's matrices (a Hub folder stays BF16), on
                                  * resume of the run's model.safetensors, else F32 */

    /* Data parallelism (docs/distributed.md).  NULL or a group of one: one process, exactly the
     * single-process numbers.  A group of N: each rank takes its B of every micro-batch of N*B
     * windows (so N ranks x B follow 1 rank x N*B), gradients are reduce-scattered in buckets
     * of `bucket` floats (0: 4 Mi), each rank keeps AdamW state for its part only (ZeRO-1)
     * and clips by the global norm, parameters are all-gathered; rank 0 validates and writes
     * the run folder (one complete checkpoint, the same file whatever N: resume with any N).
     * Every rank of the group must make the same calls.  The AdamW state then lives in the
     * trainer's parts (br_trainer_create frees a loaded m->adam_m/adam_v after taking its
     * part; a checkpoint gathers it to rank 0 for the write). */
    br_comm_t *comm;
    size_t bucket;

    /* Router-only training (braid train --train router): every weight frozen but the mixtures'
     * routers (FFN and attention routers, Nexus projectors); the backward computes no other
     * weight gradient, AdamW state exists for those tensors only (data-parallel: every rank
     * keeps all of it, gradients all-reduced), and checkpoints are config.json +
     * model.safetensors without optimizer.safetensors (such a run cannot be resumed).
     * BR_EINVAL for a model without routers. */
    bool routers_only;

    br_trainer_hooks_t hooks;
} br_trainer_opts_t;

/* The defaults of `braid train` (steps 1000, B 16, T 256, lr 1e-3 -> 1e-4, warmup 100, wd 0.1,
 * betas 0.9/0.95, clip 1, eval every 200 steps over 10 batches, checkpoint every 500, F32). */
void br_trainer_defaults(br_trainer_opts_t *o);

/* A whole run: creates or loads the model (config / init / resume), removes stale temporary
 * files of interrupted atomic writes from `out` (logged), trains steps start+1 .. end with
 * validation and checkpoints, writes the log.  *final_step (may be NULL) receives the step the
 * run folder is at.  A resume reads out/config.json and out/optimizer.safetensors only;
 * BR_ENOTFOUND (saying to start again) when the run has no checkpoint yet. */
br_status br_trainer_run(const br_trainer_opts_t *o, long *final_step);

/* Plain text for training (opts.text): every document of `text` (a file or the *.txt files of a
 * folder, in name order; documents inside a file separated by BR_DOC_SEPARATOR) encoded by the
 * tokenizer (tokenizer.json, or a folder with it) as [BOS] tokens EOS, BOS when
 * tokenizer_config.json has add_bos_token, EOS generation_config's first eos_token_id (else
 * tokenizer_config's eos_token, else the tokenizer's end-of-text), then cut into the shards
 * SHARD_DIR/text/train.bin and val.bin (the last tenth, at least min_tokens: one window).
 * BR_EINVAL when the text is too short for a window in both. */
#define BR_TEXT_DOMAIN "text"
typedef struct {
    size_t files, train_tokens, val_tokens;
    uint64_t bytes;
    uint32_t vocab;            /* the tokenizer's (ids + added tokens) */
    int32_t bos, eos;          /* -1: none */
} br_text_data_t;
br_status br_trainer_text(const char *text, const char *tokenizer, const char *shard_dir, size_t min_tokens,
                          br_text_data_t *info);

/* LoRA-only training of `a` (gradients allocated) on the frozen model m: opts.steps steps of
 * opts.batch x opts.seq windows of opts.mix (accum 1; no run folder: the caller saves the
 * adapter).  With val_batches > 0, val_loss[0..2] receive the validation loss of the base
 * alone, of base + adapter before training and after, on the same val windows. */
br_status br_trainer_lora(br_model_t *m, br_lora_adapter_t *a, const br_trainer_opts_t *o,
                          int val_batches, double val_loss[3]);
/* Writes the step record of DIR/train_log.jsonl (the format above) for st to f: for callers
 * that keep a log of their own (lora-train keeps one beside its adapter). */
void br_trainer_log_step(FILE *f, const br_trainer_step_t *st);

/* The step alone (for benchmarks and custom loops): a trainer holds the model (not owned), the
 * options (copied; the pointers in them must stay valid) and its buffers. */
typedef struct br_trainer br_trainer_t;
/* a == NULL: every weight of m is trained (m needs gradients); else only the adapter's. */
br_status br_trainer_create(br_trainer_t **out, br_model_t *m, br_lora_adapter_t *a,
                            const br_trainer_opts_t *o);
void br_trainer_free(br_trainer_t *t); /* NULL is a no-op */
/* One optimizer step on windows (accum, B, T+1) (inputs [:, :T], targets [:, 1:]).
 * BR_ERANGE when the loss is not finite (training diverged). */
br_status br_trainer_step(br_trainer_t *t, const int32_t *windows, br_trainer_step_t *out);
#endif
