/* The prompt pipeline; see lm/prompt.h. */
#include "lm/prompt.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "lm/gguf.h"
#include "text/jinja.h"
#include "text/tokcfg.h"

/* braid's plain chat template (docs/serve.md), for models without one:
 *   SYSTEM\n\nUser: USER\nAssistant: ASSISTANT\nUser: ...\nAssistant: */
static const char PLAIN_TEMPLATE[] =
    "{% for m in messages %}"
    "{% if m.role == 'system' or m.role == 'developer' %}{{ m.content + '\\n\\n' }}"
    "{% elif m.role == 'user' %}{{ 'User: ' + m.content + '\\n' }}"
    "{% elif m.role == 'assistant' %}{{ 'Assistant: ' + m.content + '\\n' }}"
    "{% else %}{{ raise_exception(\"role '\" + m.role + \"' is not system, developer, user or assistant\") }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

struct br_prompt {
    br_tokenizer_t *tok;
    br_tokcfg_t tc;
    br_jinja_t *tmpl;
    bool plain;              /* braid's plain template */
    int32_t bos;             /* put before prompts, or -1 */
    int32_t eos_append;      /* appended to plain text (add_eos_token), or -1 */
    int32_t stops[BR_PROMPT_MAX_STOP];
    size_t n_stops;
};

static void add_stop(br_prompt_t *p, int32_t id)
{
    if (id < 0 || p->n_stops == BR_PROMPT_MAX_STOP) return;
    for (size_t i = 0; i < p->n_stops; i++)
        if (p->stops[i] == id) return;
    p->stops[p->n_stops++] = id;
}

/* The id of a token string from tokenizer_config.json, or -1 when absent; an unknown string is
 * an error (the config and the tokenizer disagree). */
static br_status token_id(const br_prompt_t *p, const char *token, const char *key, int32_t *id)
{
    *id = -1;
    if (!token) return BR_OK;
    *id = br_tokenizer_token_id(p->tok, token);
    if (*id < 0)
        return br_error(BR_EFORMAT, "tokenizer_config.json: %s \"%.60s\" is not a token of tokenizer.json", key, token);
    return BR_OK;
}

/* BOS, appended EOS and stop ids, by the rules of lm/prompt.h (has_tc: the model says whether
 * to add BOS, as a tokenizer_config.json or a GGUF file's metadata does). */
static br_status resolve_ids(br_prompt_t *p, const char *dir, bool has_tc, const br_model_config_t *cfg)
{
    int32_t post_first, post_last, bos_tok, eos_tok;
    br_tokenizer_post_ids(p->tok, &post_first, &post_last);
    BR_TRY(token_id(p, p->tc.bos_token, "bos_token", &bos_tok));
    BR_TRY(token_id(p, p->tc.eos_token, "eos_token", &eos_tok));
    int32_t cfg_bos = cfg ? cfg->bos_token_id : -1, cfg_eos = cfg ? cfg->eos_token_id : -1;
    int32_t bos = bos_tok >= 0 ? bos_tok : post_first >= 0 ? post_first : p->tc.bos_id >= 0 ? p->tc.bos_id : cfg_bos;
    if (p->tc.add_bos_token >= 0) p->bos = p->tc.add_bos_token ? bos : -1;
    else if (has_tc) p->bos = post_first;
    else p->bos = cfg_bos >= 0 ? cfg_bos : br_tokenizer_eos_id(p->tok);
    int32_t eos = eos_tok >= 0 ? eos_tok : br_tokenizer_eos_id(p->tok);
    if (p->tc.add_eos_token >= 0) p->eos_append = p->tc.add_eos_token ? eos : -1;
    else p->eos_append = has_tc ? post_last : -1;
    for (size_t i = 0; i < p->tc.n_eos; i++) add_stop(p, p->tc.eos_ids[i]);
    if (!p->tc.n_eos) add_stop(p, cfg_eos);
    add_stop(p, eos);
    size_t V = cfg ? (size_t)cfg->vocab_size : br_tokenizer_vocab_size(p->tok);
    for (size_t i = 0; i < p->n_stops; i++)
        if ((size_t)p->stops[i] >= V)
            return br_error(BR_EFORMAT, "%s: eos_token_id %d is outside the model's vocabulary (%zu ids)", dir,
                            p->stops[i], V);
    if ((p->bos >= 0 && (size_t)p->bos >= V) || (p->eos_append >= 0 && (size_t)p->eos_append >= V))
        return br_error(BR_EFORMAT, "%s: the bos/eos token is outside the model's vocabulary (%zu ids)", dir, V);
    return BR_OK;
}

/* A token id from a GGUF integer key, or -1 when absent or not an integer. */
static int64_t gguf_id(const br_gguf_t *g, const char *key)
{
    const br_gguf_kv_t *kv = br_gguf_find_kv(g, key);
    if (!kv) return -1;
    switch (kv->type) {
    case BR_GGUF_U8: case BR_GGUF_U16: case BR_GGUF_U32: case BR_GGUF_U64:
        return kv->u <= INT32_MAX ? (int64_t)kv->u : -1;
    case BR_GGUF_I8: case BR_GGUF_I16: case BR_GGUF_I32: case BR_GGUF_I64:
        return kv->i >= 0 && kv->i <= INT32_MAX ? kv->i : -1;
    default:
        return -1;
    }
}

/* 1/0 from a GGUF bool key, or dflt when absent. */
static int gguf_flag(const br_gguf_t *g, const char *key, int dflt)
{
    const br_gguf_kv_t *kv = br_gguf_find_kv(g, key);
    return kv && kv->type == BR_GGUF_BOOL ? kv->u != 0 : dflt;
}

/* Token id's string in the file's tokenizer.ggml.tokens (malloc'd) when the tokenizer maps it
 * back to id (a template's bos_token/eos_token), else NULL. */
static char *token_string(const br_gguf_t *g, const br_tokenizer_t *t, int64_t id)
{
    const br_gguf_kv_t *kv = br_gguf_find_kv(g, "tokenizer.ggml.tokens");
    size_t n = 0;
    bool strings = kv && kv->type == BR_GGUF_ARRAY && kv->arr_type == BR_GGUF_STRING;
    const char *b = strings && id >= 0 && (uint64_t)id < kv->arr_n ? br_gguf_arr_str(kv, (size_t)id, &n) : NULL;
    char *s = b && n ? malloc(n + 1) : NULL;
    if (s) memcpy(s, b, n), s[n] = 0;
    if (s && br_tokenizer_token_id(t, s) != id) free(s), s = NULL;
    return s;
}

/* What a model folder's tokenizer_config.json and generation_config.json say, from a GGUF
 * file's tokenizer.ggml.* keys as llama.cpp reads them: add_bos_token (absent: BOS iff the file
 * names a bos_token_id), add_eos_token (absent: no), the chat template, and as stop ids the
 * eos, end-of-turn and end-of-message tokens. */
static br_status gguf_tokcfg(br_prompt_t *p, const br_gguf_t *g)
{
    br_tokcfg_t *c = &p->tc;
    int64_t bos = gguf_id(g, "tokenizer.ggml.bos_token_id"), eos = gguf_id(g, "tokenizer.ggml.eos_token_id");
    c->add_bos_token = gguf_flag(g, "tokenizer.ggml.add_bos_token", bos >= 0);
    c->add_eos_token = gguf_flag(g, "tokenizer.ggml.add_eos_token", 0);
    c->bos_id = (int32_t)bos;
    c->bos_token = token_string(g, p->tok, bos);
    c->eos_token = token_string(g, p->tok, eos);
    static const char *const stops[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                                        "tokenizer.ggml.eom_token_id"};
    for (size_t i = 0; i < sizeof stops / sizeof *stops; i++) {
        int64_t id = gguf_id(g, stops[i]);
        if (id >= 0) c->eos_ids[c->n_eos++] = (int32_t)id;
    }
    const br_gguf_kv_t *ct = br_gguf_find_kv(g, "tokenizer.chat_template");
    if (ct && ct->type == BR_GGUF_STRING && !(c->chat_template = strdup(ct->str)))
        return br_error(BR_ENOMEM, "prompt: out of memory");
    return BR_OK;
}

static br_status load_template(br_prompt_t *p, const char *override)
{
    char *text = NULL;
    size_t len = 0;
    if (override) {
        br_status st = br_read_file(override, &text, &len);
        if (st) return br_error_wrap(st, "--chat-template %s", override);
    }
    const char *src = text ? text : p->tc.chat_template ? p->tc.chat_template : PLAIN_TEMPLATE;
    p->plain = src == PLAIN_TEMPLATE;
    br_status st = br_jinja_parse(&p->tmpl, src, text ? len : strlen(src));
    free(text);
    if (st) return br_error_wrap(st, "chat template of %s", override ? override : "the model");
    return BR_OK;
}

br_status br_prompt_open(br_prompt_t **out, const br_prompt_opts_t *o)
{
    *out = NULL;
    if (!o || !o->model_dir) return br_error(BR_EINVAL, "prompt: no model folder");
    br_prompt_t *p = calloc(1, sizeof *p);
    if (!p) return br_error(BR_ENOMEM, "prompt: out of memory");
    /* a .gguf file carries its tokenizer and its settings in its metadata */
    bool gguf = br_gguf_is_path(o->model_dir) && !o->tokenizer;
    br_buf_t tokpath = BR_BUF_INIT;
    br_status st = BR_OK;
    br_gguf_t *g = NULL; /* the file, parsed once for its tokenizer and its settings */
    if (gguf) {
        st = br_gguf_open(&g, o->model_dir);
        if (!st) {
            st = br_gguf_tokenizer(&p->tok, g);
            if (st == BR_ENOTFOUND)
                st = br_error(BR_ENOTFOUND, "%s carries no tokenizer in its metadata: give one with --tokenizer", o->model_dir);
            else if (st) st = br_error_wrap(st, "%s", o->model_dir);
        }
        if (!st) br_buf_puts(&tokpath, o->model_dir);
    } else {
        st = o->tokenizer ? br_buf_puts(&tokpath, o->tokenizer) : br_buf_path(&tokpath, o->model_dir, "tokenizer.json");
        if (!st && !o->tokenizer && !br_file_exists(br_buf_str(&tokpath)))
            st = br_error(BR_EINVAL, "%s has no tokenizer.json: give the tokenizer with --tokenizer", o->model_dir);
        if (!st) st = br_tokenizer_load(&p->tok, br_buf_str(&tokpath));
    }
    if (!st && o->cfg && br_tokenizer_vocab_size(p->tok) > (size_t)o->cfg->vocab_size)
        st = br_error(BR_EINVAL, "tokenizer %s has %zu ids but the model's vocabulary is %d", br_buf_str(&tokpath),
                      br_tokenizer_vocab_size(p->tok), o->cfg->vocab_size);
    br_buf_free(&tokpath);
    if (!st) st = br_tokcfg_load(&p->tc, o->model_dir); /* "not given" values for a file */
    if (!st && gguf) st = gguf_tokcfg(p, g);
    br_gguf_close(g);
    bool has_tc = gguf;
    if (!st && !gguf) {
        br_buf_t tc = BR_BUF_INIT;
        st = br_buf_path(&tc, o->model_dir, "tokenizer_config.json");
        has_tc = !st && br_file_exists(br_buf_str(&tc));
        br_buf_free(&tc);
    }
    if (!st) st = resolve_ids(p, o->model_dir, has_tc, o->cfg);
    if (!st) st = load_template(p, o->chat_template);
    if (st) {
        br_prompt_free(p);
        return st;
    }
    *out = p;
    return BR_OK;
}

void br_prompt_free(br_prompt_t *p)
{
    if (!p) return;
    br_tokenizer_free(p->tok);
    br_tokcfg_free(&p->tc);
    br_jinja_free(p->tmpl);
    free(p);
}

const br_tokenizer_t *br_prompt_tokenizer(const br_prompt_t *p) { return p->tok; }

/* Encodes text with special tokens matched, then BOS before (unless already there) and eos
 * (>= 0) after. */
static br_status encode(const br_prompt_t *p, const char *text, size_t len, int32_t eos, int32_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    int32_t *enc = NULL;
    size_t ne = 0;
    BR_TRY(br_tokenizer_encode(p->tok, text, len, 1, &enc, &ne));
    size_t lead = p->bos >= 0 && !(ne > 0 && enc[0] == p->bos), tail = eos >= 0;
    int32_t *all = malloc((lead + ne + tail + 1) * sizeof *all);
    if (!all) {
        free(enc);
        return br_error(BR_ENOMEM, "prompt: out of memory");
    }
    if (lead) all[0] = p->bos;
    if (ne) memcpy(all + lead, enc, ne * sizeof *enc);
    if (tail) all[lead + ne] = eos;
    free(enc);
    *ids = all;
    *n = lead + ne + tail;
    return BR_OK;
}

br_status br_prompt_text(const br_prompt_t *p, const char *text, size_t len, int32_t **ids, size_t *n)
{
    return encode(p, text, len, p->eos_append, ids, n);
}

br_status br_prompt_render(const br_prompt_t *p, const json_t *messages, char **text)
{
    *text = NULL;
    if (!json_is_array(messages)) return br_error(BR_EINVAL, "chat: messages must be a JSON array");
    json_t *vars = json_object();
    if (!vars) return br_error(BR_ENOMEM, "chat: out of memory");
    json_object_set(vars, "messages", (json_t *)messages);
    json_object_set_new(vars, "add_generation_prompt", json_true());
    if (p->tc.bos_token) json_object_set_new(vars, "bos_token", json_string(p->tc.bos_token));
    if (p->tc.eos_token) json_object_set_new(vars, "eos_token", json_string(p->tc.eos_token));
    br_status st = br_jinja_render(p->tmpl, vars, text, NULL);
    json_decref(vars);
    return st;
}

br_status br_prompt_chat(const br_prompt_t *p, const json_t *messages, int32_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    char *text;
    BR_TRY(br_prompt_render(p, messages, &text));
    br_status st = encode(p, text, strlen(text), -1, ids, n);
    free(text);
    return st;
}

size_t br_prompt_stop_ids(const br_prompt_t *p, const int32_t **ids)
{
    *ids = p->stops;
    return p->n_stops;
}

bool br_prompt_is_stop(const br_prompt_t *p, int32_t id)
{
    for (size_t i = 0; i < p->n_stops; i++)
        if (p->stops[i] == id) return true;
    return false;
}

const char *br_prompt_chat_stop(const br_prompt_t *p) { return p->plain ? "\nUser:" : NULL; }

int32_t br_prompt_bos(const br_prompt_t *p) { return p->bos; }

void br_prompt_sampling(const br_prompt_t *p, float *temperature, float *top_p, int *top_k)
{
    if (p->tc.temperature >= 0) *temperature = (float)p->tc.temperature;
    if (p->tc.top_p > 0 && p->tc.top_p <= 1) *top_p = (float)p->tc.top_p;
    if (p->tc.top_k >= 0) *top_k = p->tc.top_k;
    if (p->tc.do_sample == 0) *temperature = 0;
}
