/* PARDEN repeats from braid's own model or a Hugging Face model folder: a
 * br_parden_generate_fn over the LM's greedy generation (lm/generate.h).  The repeat prompt
 * goes through the prompt pipeline (lm/prompt.h) as generate and serve do: BOS as the model's
 * tokenizer_config.json says, special tokens matched (so the "<s>" the Llama-2 template starts
 * with is the one BOS), generation stops at any of the model's end-of-sequence ids, and the new
 * tokens are decoded as the repeat.  A prompt longer than the model's context is BR_ERANGE.  Calls on one handle are serialised (a model is used
 * by one thread at a time). */
#ifndef BR_GUARD_MODEL_GEN_H
#define BR_GUARD_MODEL_GEN_H
#include "base/status.h"

typedef struct br_parden_model br_parden_model_t;

/* model_dir: config.json + model.safetensors (or shards); tokenizer_path: tokenizer.json (or
 * what br_tokenizer_load accepts), NULL for model_dir/tokenizer.json. */
br_status br_parden_model_open(br_parden_model_t **out, const char *model_dir, const char *tokenizer_path);
void br_parden_model_close(br_parden_model_t *g); /* NULL is a no-op */
/* br_parden_generate_fn: user = br_parden_model_t *; greedy, at most max_new_tokens. */
br_status br_parden_model_generate(void *user, const char *prompt, int max_new_tokens, char **text);
#endif
