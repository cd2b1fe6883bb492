/* braid-model repeats (see parden_gen.h).  The dense LM's generation API (src/lm) is not on
 * main yet: until it lands, --model fails with a clear message instead of guessing. */
#include "parden_gen.h"

#include <stdlib.h>

struct parden_model_gen {
    int unused;
};

br_status parden_model_gen_open(parden_model_gen_t **out, const char *model_dir, const char *tokenizer_path)
{
    (void)tokenizer_path;
    *out = NULL;
    return br_error(BR_EUNSUPPORTED,
                    "--model %s: generation with braid's own model is not built into this braid yet "
                    "(needs the dense LM's generate API); use --upstream with an OpenAI-compatible server",
                    model_dir);
}

void parden_model_gen_close(parden_model_gen_t *g)
{
    free(g);
}

br_status parden_model_generate(void *user, const char *prompt, int max_new_tokens, char **text)
{
    (void)user;
    (void)prompt;
    (void)max_new_tokens;
    *text = NULL;
    return br_error(BR_EUNSUPPORTED, "braid model generation is not available");
}
