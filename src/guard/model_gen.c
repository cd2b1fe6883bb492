/* braid-model repeats (see model_gen.h). */
#include "guard/model_gen.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lm/generate.h"
#include "lm/model.h"
#include "lm/prompt.h"

struct br_parden_model {
    br_model_t *model;
    br_prompt_t *prompt;
    pthread_mutex_t mu;
    bool mu_init;
};

br_status br_parden_model_open(br_parden_model_t **out, const char *model_dir, const char *tokenizer_path)
{
    *out = NULL;
    if (!model_dir) return br_error(BR_EINVAL, "parden: a model directory is needed");
    br_parden_model_t *g = calloc(1, sizeof *g);
    if (!g) return br_error(BR_ENOMEM, "parden: out of memory");
    br_status s = br_model_open(&g->model, model_dir); /* 16-bit weights stay in place */
    br_prompt_opts_t po = {.model_dir = model_dir, .tokenizer = tokenizer_path, .cfg = g->model ? &g->model->cfg : NULL};
    if (s == BR_OK) s = br_prompt_open(&g->prompt, &po);
    if (s != BR_OK) {
        br_parden_model_close(g);
        return br_error_wrap(s, "parden");
    }
    pthread_mutex_init(&g->mu, NULL);
    g->mu_init = true;
    *out = g;
    return BR_OK;
}

void br_parden_model_close(br_parden_model_t *g)
{
    if (!g) return;
    br_model_free(g->model);
    br_prompt_free(g->prompt);
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
    BR_TRY(br_prompt_text(g->prompt, prompt, strlen(prompt), &ids, &n));
    br_sampler_t greedy = {0.0f, 0, 1.0f};
    const int32_t *stops;
    size_t n_stops = br_prompt_stop_ids(g->prompt, &stops);
    pthread_mutex_lock(&g->mu);
    br_status s = br_generate_stops(g->model, ids, n, (size_t)max_new_tokens, &greedy, 0, stops, n_stops, NULL, NULL,
                                    &out, &nout);
    pthread_mutex_unlock(&g->mu);
    free(ids);
    if (s != BR_OK) return br_error_wrap(s, "parden: generating the repeat");
    size_t len;
    s = br_tokenizer_decode(br_prompt_tokenizer(g->prompt), out, nout, text, &len);
    free(out);
    return s;
}
