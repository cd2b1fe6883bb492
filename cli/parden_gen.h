/* Repeats from braid's own model for `braid parden repeat|check --model DIR --tokenizer T`:
 * a br_parden_generate_fn over the dense LM's greedy generation. */
#ifndef BR_CLI_PARDEN_GEN_H
#define BR_CLI_PARDEN_GEN_H
#include "base/status.h"

typedef struct parden_model_gen parden_model_gen_t;

br_status parden_model_gen_open(parden_model_gen_t **out, const char *model_dir, const char *tokenizer_path);
void parden_model_gen_close(parden_model_gen_t *g); /* NULL is a no-op */
/* br_parden_generate_fn: user = parden_model_gen_t *. */
br_status parden_model_generate(void *user, const char *prompt, int max_new_tokens, char **text);
#endif
