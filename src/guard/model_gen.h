/* PARDEN repeats from braid's own model: a br_parden_generate_fn over the dense LM's greedy
 * generation (lm/generate.h) and a byte-level BPE tokenizer (text/tokenizer.h).
 * The prompt is encoded with special tokens allowed (so a "<s>" in the Llama-2 template is
 * the BOS token when the tokenizer has it), generation stops at the tokenizer's (or the
 * config's) end-of-sequence id, and the new tokens are decoded as the repeat.  A prompt longer
 * than the model's context is BR_ERANGE.  Calls on one handle are serialised (a model is used
 * by one thread at a time). */
#ifndef BR_GUARD_MODEL_GEN_H
#define BR_GUARD_MODEL_GEN_H
#include "base/status.h"

typedef struct br_parden_model br_parden_model_t;

/* model_dir: config.json + model.safetensors; tokenizer_path: tokenizer.json (or what
 * br_tokenizer_load accepts). */
br_status br_parden_model_open(br_parden_model_t **out, const char *model_dir, const char *tokenizer_path);
void br_parden_model_close(br_parden_model_t *g); /* NULL is a no-op */
/* br_parden_generate_fn: user = br_parden_model_t *; greedy, at most max_new_tokens. */
br_status br_parden_model_generate(void *user, const char *prompt, int max_new_tokens, char **text);
#endif
