/* Sampling and KV-cached generation on the dense model (braid generate; the server has its
 * own scheduler over br_model_forward_batch but uses the same sampler). */
#ifndef BR_LM_GENERATE_H
#define BR_LM_GENERATE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/rng.h"
#include "lm/model.h"

typedef struct {
    float temperature; /* 0: greedy (argmax, ties to the lowest id) */
    int top_k;         /* keep the k most likely (0: all) */
    float top_p;       /* nucleus: smallest set with probability >= top_p (1: all) */
} br_sampler_t;

/* Picks the next token from logits (V); logits are overwritten (probabilities).  Uses one
 * draw of rng unless greedy. */
int32_t br_sample(float *logits, size_t V, const br_sampler_t *s, br_rng_t *rng);

/* Called after each new token; return false to stop (stop strings are checked here). */
typedef bool (*br_token_cb)(void *ctx, int32_t token);

/* Runs the prompt through the model with a paged KV cache (prefill in one call), then samples
 * up to max_new tokens, stopping early at stop_id (>= 0; the stop token is not emitted) or when
 * cb returns false.  *out (malloc'd, *n_out tokens) holds the new tokens only.  BR_ERANGE when
 * the prompt does not fit the context; generation stops quietly at the context end. */
br_status br_generate(br_model_t *m, const int32_t *prompt, size_t n_prompt, size_t max_new,
                      const br_sampler_t *s, uint64_t seed, int32_t stop_id, br_token_cb cb,
                      void *cb_ctx, int32_t **out, size_t *n_out);
/* The same, stopping at any of stops[0..n_stops) (a model's end-of-turn and end-of-text ids:
 * lm/prompt.h's br_prompt_stop_ids). */
br_status br_generate_stops(br_model_t *m, const int32_t *prompt, size_t n_prompt, size_t max_new,
                            const br_sampler_t *s, uint64_t seed, const int32_t *stops, size_t n_stops,
                            br_token_cb cb, void *cb_ctx, int32_t **out, size_t *n_out);
#endif
