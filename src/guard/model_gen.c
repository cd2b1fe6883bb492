/* braid-model repeats (see model_gen.h). */
#include "guard/model_gen.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lm/generate.h"
#include "lm/model.h"
#include "text/tokenizer.h"

struct br_parden_model {
    br_model_t *model;
    br_tokenizer_t *tok;
    int32_t stop_id;
    pthread_mutex_t mu;
    bool mu_init;
};

br_status br_parden_model_open(br_parden_model_t **out, const char *model_dir, const char *tokenizer_path)
{
    *out = NULL;
    if (!model_dir || !tokenizer_path) return br_error(BR_EINVAL, "parden: a model directory and a tokenizer are needed");
    br_parden_model_t *g = calloc(1, sizeof *g);
    if (!g) return br_error(BR_ENOMEM, "parden: out of memory");
    br_status s = br_model_load(&g->model, model_dir, false);
    if (s == BR_OK) s = br_tokenizer_load(&g->tok, tokenizer_path);
    if (s == BR_OK && br_tokenizer_vocab_size(g->tok) > (size_t)g->model->cfg.vocab_size)
        s = br_error(BR_EINVAL, "parden: tokenizer %s has %zu ids, more than the model's vocab_size %d", tokenizer_path,
                     br_tokenizer_vocab_size(g->tok), g->model->cfg.vocab_size);
    if (s != BR_OK) {
        br_parden_model_close(g);
        return s;
    }
    g->stop_id = br_tokenizer_eos_id(g->tok);
    if (g->stop_id < 0) g->stop_id = g->model->cfg.eos_token_id;
    pthread_mutex_init(&g->mu, NULL);
    g->mu_init = true;
    *out = g;
    return BR_OK;
}

void br_parden_model_close(br_parden_model_t *g)
{
    if (!g) return;
    br_model_free(g->model);
    br_tokenizer_free(g->tok);
    if (g->mu_init) pthread_mutex_destroy(&g->mu);
    free(g);
}

br_status br_parden_model_generate(void *user, const char *prompt, int max_new_tokens, char **text)
{
    br_parden_model_t *g = user;
    *text = NULL;
    if (!g || !prompt) return br_error(BR_EINVAL, "parden: no model or prompt");
    if (max_new_tokens < 1) return br_error(BR_EINVAL, "parden: max_new_tokens must be >= 1");
    int32_t *ids = NULL, *out = NULL;
    size_t n = 0, nout = 0;
    BR_TRY(br_tokenizer_encode(g->tok, prompt, strlen(prompt), 1, &ids, &n));
    br_sampler_t greedy = {0.0f, 0, 1.0f};
    pthread_mutex_lock(&g->mu);
    br_status s = br_generate(g->model, ids, n, (size_t)max_new_tokens, &greedy, 0, g->stop_id, NULL, NULL, &out, &nout);
    pthread_mutex_unlock(&g->mu);
    free(ids);
    if (s != BR_OK) return br_error_wrap(s, "parden: generating the repeat");
    size_t len;
    s = br_tokenizer_decode(g->tok, out, nout, text, &len);
    free(out);
    return s;
}
