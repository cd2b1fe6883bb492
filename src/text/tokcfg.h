/* What a Hugging Face model folder says about its tokenizer and generation besides
 * tokenizer.json: tokenizer_config.json (bos_token, eos_token, add_bos_token, add_eos_token,
 * chat_template; or chat_template.jinja beside it) and generation_config.json (eos_token_id:
 * one id or a list, bos_token_id, sampling defaults). */
#ifndef BR_TEXT_TOKCFG_H
#define BR_TEXT_TOKCFG_H
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"

#define BR_TOKCFG_MAX_EOS 16

typedef struct {
    char *bos_token, *eos_token; /* token strings, NULL when absent or null */
    int add_bos_token;           /* 1, 0, or -1 when not given */
    int add_eos_token;           /* 1, 0, or -1 when not given */
    char *chat_template;         /* NULL when absent (a named list gives its "default" entry) */
    int32_t eos_ids[BR_TOKCFG_MAX_EOS]; /* generation_config.json eos_token_id */
    size_t n_eos;
    int32_t bos_id;              /* generation_config.json bos_token_id, or -1 */
    double temperature, top_p;   /* < 0 when not given */
    int top_k;                   /* < 0 when not given */
    int do_sample;               /* 1, 0, or -1 when not given */
} br_tokcfg_t;

/* Reads DIR/tokenizer_config.json, DIR/chat_template.jinja and DIR/generation_config.json; each
 * is optional (absent fields keep their "not given" values).  Free with br_tokcfg_free. */
br_status br_tokcfg_load(br_tokcfg_t *c, const char *dir);
void br_tokcfg_free(br_tokcfg_t *c);
#endif
