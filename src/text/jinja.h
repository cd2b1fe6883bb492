/* Chat templates: a Jinja renderer for Hugging Face `chat_template` strings.
 *
 * It renders the subset of Jinja that real chat templates use (if/elif/else, for with loop.*,
 * set and namespace(), string/list/mapping operations and methods, the common filters and
 * tests, raise_exception, whitespace control) with the semantics of npm @huggingface/jinja, the
 * renderer transformers.js uses; docs/data.md lists what is supported and where braid differs.
 * Templates are compiled with trim_blocks and lstrip_blocks, as transformers does.  A construct
 * braid cannot render (macro, call blocks, unknown filters/tests) is an error naming it and
 * its line and column.  A parsed template is immutable and may be rendered from several threads. */
#ifndef BR_TEXT_JINJA_H
#define BR_TEXT_JINJA_H
#include <jansson.h>
#include <stddef.h>
#include "base/status.h"

typedef struct br_jinja br_jinja_t;

/* Parses template text src[0..len). */
br_status br_jinja_parse(br_jinja_t **out, const char *src, size_t len);
void br_jinja_free(br_jinja_t *t); /* NULL is a no-op */
/* Renders with the entries of `vars` (a JSON object, or NULL) as variables.  *out is malloc'd and
 * NUL-terminated; *len (if not NULL) its length. */
br_status br_jinja_render(const br_jinja_t *t, const json_t *vars, char **out, size_t *len);
/* The same with explicit budgets (0 = the defaults: 512 MiB, 20M evaluation steps); a render
 * that exceeds one fails with BR_ENOMEM / BR_ERANGE. */
br_status br_jinja_render_budget(const br_jinja_t *t, const json_t *vars, size_t max_bytes, unsigned long max_steps,
                                 char **out, size_t *len);

/* What a chat template sees besides the messages. */
typedef struct {
    const char *bos_token;     /* NULL: undefined */
    const char *eos_token;     /* NULL: undefined */
    int add_generation_prompt;
    const json_t *tools;       /* a JSON array, or NULL: undefined */
    const json_t *extra;       /* more variables (e.g. {"enable_thinking": false}), or NULL */
} br_chat_opts_t;

/* Renders chat template `tmpl` for `messages` (a JSON array of {"role", "content", ...}
 * objects; tool_calls and other fields pass through as JSON values).  *out is malloc'd. */
br_status br_chat_render(const char *tmpl, const json_t *messages, const br_chat_opts_t *opts, char **out);
#endif
