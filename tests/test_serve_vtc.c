/* The scheduler's tenant fairness (serve/sched.h) and its control: with one request running at a
 * time, a light tenant's request queued behind six of a heavy tenant's is served second under VTC
 * (virtual token counters) and last with opts.fcfs (arrival order across tenants), the setting
 * bench/serve compares against. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "harness.h"
#include "lm/model.h"
#include "serve/adapters.h"
#include "serve/sched.h"
#include "serve/tenants.h"
#include "text/tokenizer.h"

enum { NHEAVY = 6 };

/* Position (0-based) of the light tenant's request in the order of completion. */
static int light_rank(br_model_t *m, const br_tokenizer_t *tok, br_tenants_t *ten, bool fcfs)
{
    br_adapters_opts_t ao = {.shapes = br_lora_shapes_from_config(&m->cfg)};
    br_adapters_t *ads = NULL;
    br_sched_t *s = NULL;
    CHECK_OK(br_adapters_create(&ads, &ao));
    br_sched_opts_t so = {.model = m, .tok = tok, .adapters = ads, .tenants = ten, .kv_budget_bytes = 8u << 20,
                          .max_running = 1, .seed = 1, .fcfs = fcfs};
    if (ads) CHECK_OK(br_sched_create(&s, &so));
    if (!s) {
        br_adapters_free(ads);
        return -1;
    }
    br_req_t *r[NHEAVY + 1] = {0};
    for (int i = 0; i <= NHEAVY; i++) {
        int32_t *p = malloc(4 * sizeof *p);
        for (int k = 0; k < 4; k++) p[k] = 10 + k + i;
        br_gen_params_t gp = {.max_tokens = 24, .top_p = 1, .ignore_eos = true};
        CHECK_OK(br_req_create(&r[i], p, 4, &gp));
        if (!r[i]) continue;
        r[i]->tenant = br_tenants_get(ten, i == NHEAVY); /* the last one is the light tenant's */
        CHECK_OK(br_sched_submit(s, r[i]));
    }
    for (int i = 0; i <= NHEAVY; i++)
        if (r[i])
            while (!br_req_wait(r[i], SIZE_MAX, 1.0)) {}
    int before = 0;
    for (int i = 0; i < NHEAVY; i++) {
        CHECK_INT(r[i] ? (int)r[i]->finish : -1, (int)BR_FINISH_LENGTH);
        before += r[i] && r[NHEAVY] && r[i]->t_done < r[NHEAVY]->t_done;
    }
    for (int i = 0; i <= NHEAVY; i++) br_req_unref(r[i]);
    br_sched_free(s);
    br_adapters_free(ads);
    return before;
}

int main(void)
{
    br_log_set_level(BR_LOG_WARN);
    br_tokenizer_t *tok = NULL;
    CHECK_OK(br_tokenizer_load(&tok, "tests/ref/serve_tokenizer.json"));
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = tok ? (int)br_tokenizer_vocab_size(tok) : 256;
    c.hidden_size = 32;
    c.intermediate_size = 64;
    c.num_hidden_layers = 1;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 64;
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &c, false));
    const char *js = "{\"tenants\": [{\"name\": \"heavy\", \"keys\": [\"sk-heavy-0001\"]},"
                     " {\"name\": \"light\", \"keys\": [\"sk-light-0001\"]}]}";
    br_tenants_t *ten = NULL;
    CHECK_OK(br_tenants_parse(&ten, js, strlen(js), "vtc.json"));
    if (m && tok && ten) {
        br_model_init_random(m, 1);
        int vtc = light_rank(m, tok, ten, false), fcfs = light_rank(m, tok, ten, true);
        CHECK_MSG(vtc >= 0 && vtc <= 1, "VTC: the light tenant finished after %d heavy requests (want <= 1)", vtc);
        CHECK_MSG(fcfs == NHEAVY, "fcfs: the light tenant finished after %d heavy requests (want %d)", fcfs, NHEAVY);
    }
    br_tenants_free(ten);
    br_model_free(m);
    br_tokenizer_free(tok);
    return th_exit();
}
