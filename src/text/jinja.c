/* Chat templates: the public entry points of the Jinja renderer (see text/jinja.h). */
#include "text/jinja.h"

#include <stdlib.h>
#include <string.h>

#include "text/jinja_internal.h"

struct br_jinja {
    jx_arena_t arena; /* tokens, AST and the preprocessed source */
    const char *src, *orig;
    size_t src_len, orig_len;
    const size_t *origin;
    jx_list_t prog;
};

void jx_render_program(jx_ctx_t *c, const jx_list_t *prog, jx_val_t *globals, jx_buf_t *out);

br_status br_jinja_parse(br_jinja_t **out, const char *src, size_t len)
{
    *out = NULL;
    if (!src && len) return br_error(BR_EINVAL, "chat template: NULL text");
    br_jinja_t *t = calloc(1, sizeof *t);
    if (!t) return br_error(BR_ENOMEM, "chat template: out of memory");
    jx_ctx_t c = {.arena = &t->arena};
    if (setjmp(c.jmp)) {
        br_jinja_free(t);
        return (br_status)c.status;
    }
    jx_tok_t *toks;
    size_t ntok;
    jx_lex(&c, src ? src : "", len, &toks, &ntok);
    t->prog = jx_parse(&c, toks, ntok);
    t->src = c.src;
    t->src_len = c.src_len;
    t->orig = c.orig;
    t->orig_len = c.orig_len;
    t->origin = c.origin;
    *out = t;
    return BR_OK;
}

void br_jinja_free(br_jinja_t *t)
{
    if (!t) return;
    jx_arena_free(&t->arena);
    free(t);
}

br_status br_jinja_render(const br_jinja_t *t, const json_t *vars, char **out, size_t *len)
{
    return br_jinja_render_budget(t, vars, 0, 0, out, len);
}

br_status br_jinja_render_budget(const br_jinja_t *t, const json_t *vars, size_t max_bytes, unsigned long max_steps,
                                 char **out, size_t *len)
{
    *out = NULL;
    if (len) *len = 0;
    if (!t) return br_error(BR_EINVAL, "chat template: no template");
    if (vars && !json_is_object(vars)) return br_error(BR_EINVAL, "chat template: variables must be a JSON object");
    jx_arena_t arena = {0};
    jx_ctx_t c = {.arena = &arena, .src = t->src, .src_len = t->src_len, .orig = t->orig, .orig_len = t->orig_len,
                  .origin = t->origin, .max_arena = max_bytes, .max_steps = max_steps};
    if (setjmp(c.jmp)) {
        jx_arena_free(&arena);
        return (br_status)c.status;
    }
    jx_val_t *g = vars ? jx_from_json(&c, vars, 0) : NULL;
    jx_buf_t b = {0};
    jx_buf_put(&c, &b, "", 0);
    jx_render_program(&c, &t->prog, g, &b);
    char *s = malloc(b.n + 1);
    if (!s) {
        jx_arena_free(&arena);
        return br_error(BR_ENOMEM, "chat template: out of memory");
    }
    memcpy(s, b.s, b.n + 1);
    jx_arena_free(&arena);
    *out = s;
    if (len) *len = b.n;
    return BR_OK;
}

br_status br_chat_render(const char *tmpl, const json_t *messages, const br_chat_opts_t *opts, char **out)
{
    *out = NULL;
    if (!tmpl) return br_error(BR_EINVAL, "chat template: none given (the tokenizer_config.json has no chat_template?)");
    if (!json_is_array(messages)) return br_error(BR_EINVAL, "chat template: messages must be a JSON array");
    br_chat_opts_t none = {0};
    if (!opts) opts = &none;
    json_t *vars = json_object();
    if (!vars) return br_error(BR_ENOMEM, "chat template: out of memory");
    br_status st = BR_OK;
    if (opts->extra && json_is_object(opts->extra)) json_object_update(vars, (json_t *)opts->extra);
    json_object_set(vars, "messages", (json_t *)messages);
    json_object_set_new(vars, "add_generation_prompt", json_boolean(opts->add_generation_prompt));
    if (opts->bos_token) json_object_set_new(vars, "bos_token", json_string(opts->bos_token));
    if (opts->eos_token) json_object_set_new(vars, "eos_token", json_string(opts->eos_token));
    if (opts->tools) json_object_set(vars, "tools", (json_t *)opts->tools);
    br_jinja_t *t = NULL;
    st = br_jinja_parse(&t, tmpl, strlen(tmpl));
    if (st == BR_OK) st = br_jinja_render(t, vars, out, NULL);
    br_jinja_free(t);
    json_decref(vars);
    return st;
}
