/* libFuzzer: arbitrary bytes as the body of POST /v1/completions and /v1/chat/completions go
 * through the protocol layer exactly as the server runs it (serve/openai.h: parse + validate,
 * then the response and error bodies).  Never a crash or a leak; and the invariants the server
 * relies on: an error has a 4xx/503 status and a message, its JSON body parses; an accepted
 * request has a model, exactly one prompt form, token ids below the vocabulary, sampling
 * parameters in range, at most BR_MAX_STOP non-empty stop strings. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/openai.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VOCAB 352

static void check_error(const br_openai_error_t *e)
{
    if (!((e->http >= 400 && e->http < 500) || e->http == 503) || !e->message[0]) abort();
    char *js = br_openai_error_json(e);
    if (!js) abort();
    json_t *j = json_loads(js, 0, NULL);
    if (!json_is_object(json_object_get(j, "error"))) abort();
    json_decref(j);
    free(js);
}

static void check_request(const br_openai_request_t *q)
{
    if (!q->model || (!q->prompt_text == !q->prompt_ids)) abort();
    for (size_t i = 0; i < q->n_prompt_ids; i++)
        if (q->prompt_ids[i] < 0 || q->prompt_ids[i] >= VOCAB) abort();
    const br_gen_params_t *g = &q->gp;
    if (g->max_tokens < 0 || g->max_tokens > 1000000 || (!q->chat && g->max_tokens == 0)) abort();
    if (!(g->temperature >= 0 && g->temperature <= 2) || !(g->top_p > 0 && g->top_p <= 1) || g->top_k < 0) abort();
    if (g->nstop < 0 || g->nstop > BR_MAX_STOP) abort();
    for (int i = 0; i < g->nstop; i++)
        if (!g->stop[i] || !g->stop[i][0]) abort();
    /* the bodies a response would carry */
    br_openai_meta_t m = {.id = "cmpl-x", .model = q->model, .chat = q->chat, .include_usage = q->include_usage};
    const char *text = q->prompt_text ? q->prompt_text : "";
    char *body = br_openai_completion(&m, text, strlen(text), "stop");
    char *ev = br_openai_sse_text(&m, text, strlen(text));
    if (!body || !ev) abort();
    json_t *j = json_loads(body, 0, NULL);
    if (!json_is_object(j)) abort();
    json_decref(j);
    free(body);
    free(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int chat = 0; chat < 2; chat++) {
        br_openai_request_t q;
        br_openai_error_t e;
        if (br_openai_parse_request(&q, &e, (const char *)data, size, chat, VOCAB) == BR_OK) {
            check_request(&q);
            br_gen_params_t gp = br_openai_take_params(&q);
            br_openai_request_clear(&q);
            for (int k = 0; k < gp.nstop; k++) free(gp.stop[k]);
        } else {
            check_error(&e);
        }
    }
    return 0;
}
