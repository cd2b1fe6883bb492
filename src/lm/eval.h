/* The evaluator: next-token loss of a model on token shards, as loss (nats/token), perplexity
 * and bits per byte.  One batch loop serves every caller:
 *
 *   br_eval_domains   consecutive non-overlapping windows of each domain's shard (braid eval;
 *                     braid btm with several models, whose next-token distributions are
 *                     averaged: Branch-Train-Merge), with MoE routing counts on the side;
 *   br_eval_mix       random windows of a domain mix, mean of the batch means (validation
 *                     during braid train, LoRA before/after in braid lora-train).
 *
 * Nothing here prints; progress goes to an optional callback. */
#ifndef BR_LM_EVAL_H
#define BR_LM_EVAL_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/status.h"
#include "text/data.h"
#include "lm/model.h"

/* What one domain's windows added up to. */
typedef struct {
    double nats;   /* sum of -log p(target) */
    double tokens; /* targets scored */
    double bytes;  /* UTF-8 bytes those targets encode (exact or in proportion, see below) */
} br_eval_sum_t;

double br_eval_loss(const br_eval_sum_t *s);          /* nats / token */
double br_eval_perplexity(const br_eval_sum_t *s);    /* exp(loss) */
double br_eval_bits_per_byte(const br_eval_sum_t *s); /* NaN when no bytes are known */

typedef struct {
    const char *data;            /* token folder: DATA/<domain>/<split>.bin */
    const char *split;           /* "val" */
    char *const *domains;        /* (n_domains) */
    size_t n_domains;
    size_t batch, seq;           /* windows per forward pass, tokens per window */
    size_t max_tokens;           /* per domain (rounded up to whole windows) */
    const size_t *token_bytes;   /* (vocab) bytes of each token's text, or NULL: a domain's
                                  * bytes in proportion to its tokens (shard header count) */
    /* optional: called after every batch with the tokens evaluated so far (all domains) */
    void (*progress)(void *ctx, double tokens_done);
    void *ctx;
    /* several models (BTM): false = the uniform average of their probabilities; true = weighted
     * by the posterior over models given the window's prefix, w_k(t) = p(k | x_<t) ∝
     * (1/n) prod_{s<t} p_k(x_s | x_<s), starting uniform at each window (Li et al. 2022) */
    bool posterior;
} br_eval_opts_t;

/* Evaluates every domain into sums (n_domains).  n_models == 1: the model's loss; n_models > 1:
 * -log of the models' averaged probability of each target (BTM; same vocabulary required),
 * uniformly or by the prefix posterior (o->posterior).
 * Windows: tokens [w*T, w*T + T + 1) for w = 0.. up to max_tokens targets; a shard shorter than
 * one window is evaluated as one short window.  route_counts (n_domains, L, E) or NULL: with an
 * MoE FFN (one model), each domain's (token, expert) assignments are added to its slice.
 * BR_EINVAL for a shard vocabulary larger than a model's or a seq beyond a model's context;
 * errors name the domain. */
br_status br_eval_domains(br_model_t *const *models, size_t n_models, const br_eval_opts_t *o,
                          br_eval_sum_t *sums, uint64_t *route_counts);

/* Adds "domains" {name: {loss, perplexity, bits_per_byte, tokens, bytes}} and "all" {loss,
 * perplexity, bits_per_byte, tokens} to root, and when md != NULL prints the markdown table
 * (a "**all**" row when there are several domains). */
void br_eval_report(const br_eval_opts_t *o, const br_eval_sum_t *sums, json_t *root, FILE *md);

/* Mean over `batches` batches of B random windows of T+1 tokens drawn from mix of each batch's
 * mean loss, with the adapter hook `lora` (NULL: the model alone).  Advances the mix. */
br_status br_eval_mix(br_model_t *m, br_mix_t *mix, const br_lora_hook_t *lora, size_t B, size_t T,
                      int batches, double *mean);

/* Splits windows (B, T+1) into inputs and targets (B, T): what every batch loop does first. */
void br_eval_split_windows(int32_t *in, int32_t *tg, const int32_t *win, size_t B, size_t T);
#endif
