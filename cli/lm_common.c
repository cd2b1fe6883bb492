#include "lm_common.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

br_status lm_parse_ids(const char *text, int32_t **ids, size_t *n)
{
    size_t cap = 64, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return br_error(BR_ENOMEM, "out of memory");
    const char *p = text;
    for (;;) {
        while (*p && (isspace((unsigned char)*p) || *p == ',')) p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX ||
            (*end && !isspace((unsigned char)*end) && *end != ',')) {
            free(v);
            return br_error(BR_EINVAL, "token %zu ('%.20s') is not a non-negative integer id", k + 1, p);
        }
        if (k == cap) {
            int32_t *nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) {
                free(v);
                return br_error(BR_ENOMEM, "out of memory");
            }
            v = nv;
        }
        v[k++] = (int32_t)x;
        p = end;
    }
    *ids = v;
    *n = k;
    return BR_OK;
}

br_status lm_open_prompt(br_prompt_t **p, const char *model_dir, const char *tokenizer, const char *chat_template,
                         const br_model_config_t *cfg)
{
    br_prompt_opts_t o = {.model_dir = model_dir, .tokenizer = tokenizer, .chat_template = chat_template, .cfg = cfg};
    return br_prompt_open(p, &o);
}

br_status lm_prompt_ids(const br_prompt_t *p, const lm_prompt_flags_t *f, int32_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    if (!f->chat && !f->system && !f->messages) return br_prompt_text(p, f->text, strlen(f->text), ids, n);
    json_t *msgs;
    if (f->messages) {
        json_error_t je;
        msgs = json_load_file(f->messages, 0, &je);
        if (!msgs) return br_error(BR_EFORMAT, "--messages %s: not valid JSON (line %d: %s)", f->messages, je.line, je.text);
    } else {
        msgs = json_array();
        if (f->system) json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", f->system));
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", f->text ? f->text : ""));
    }
    br_status st = br_prompt_chat(p, msgs, ids, n);
    json_decref(msgs);
    return st;
}
