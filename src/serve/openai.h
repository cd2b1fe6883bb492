/* The OpenAI protocol as pure functions: no sockets, no threads, no model.
 *
 *   request body (bytes) --br_openai_parse_request--> br_openai_request_t, or br_openai_error_t
 *   results --br_openai_completion / br_openai_sse_*--> response bodies and SSE events
 *   br_status --br_openai_http_status--> HTTP status (the one table)
 *
 * server.c moves bytes between libmicrohttpd and these functions; the scheduler never sees
 * HTTP.  Every error the parser can report is an OpenAI error object with a status, a code
 * (`invalid_json`, `invalid_type`, `invalid_value`, `missing_required_parameter`,
 * `unsupported_parameter`), the offending parameter and a message that says what to send
 * instead (docs/serve.md lists them; tests/test_serve_openai.c has one row per case). */
#ifndef BR_SERVE_OPENAI_H
#define BR_SERVE_OPENAI_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/status.h"
#include "serve/sched.h"

/* An error reply: {"error": {"message", "type", "param", "code"}} with status `http`. */
typedef struct {
    unsigned http;          /* 400, 404, 413, 429, 500, 503 ... */
    const char *code;       /* OpenAI error code (static string) or NULL */
    const char *param;      /* offending parameter (static string) or NULL */
    int retry_after;        /* > 0: seconds for the Retry-After header (429) */
    char message[512];
} br_openai_error_t;

/* Fills e (message in printf format); returns BR_EINVAL, or BR_ENOMEM when http is 503. */
br_status br_openai_fail(br_openai_error_t *e, unsigned http, const char *code, const char *param,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* A validated generation request.  Owns its strings until br_openai_request_clear. */
typedef struct {
    bool chat;              /* /v1/chat/completions */
    bool stream, include_usage;
    char *model;            /* the `model` field as sent (malloc'd) */
    char *prompt_text;      /* a completion's string prompt (malloc'd), or NULL */
    json_t *messages;       /* a chat's messages, normalised: {"role", "content": string, ...} (owned), or NULL */
    int32_t *prompt_ids;    /* (n_prompt_ids) token ids when the prompt was sent as ids (malloc'd), or NULL */
    size_t n_prompt_ids;
    br_gen_params_t gp;     /* gp.max_tokens 0: not given (chat: the rest of the context); stop strings malloc'd */
} br_openai_request_t;

/* Parses and validates a generation request body.  vocab_size bounds token-id prompts.  On
 * failure *err says why (400 for anything the client sent, 503 when out of memory) and *out
 * holds nothing to free.  The model name is not resolved here (that needs the registry). */
br_status br_openai_parse_request(br_openai_request_t *out, br_openai_error_t *err, const char *body, size_t len,
                                  bool chat, size_t vocab_size);
/* Frees what the request owns (stop strings included, unless handed over: see take_params). */
void br_openai_request_clear(br_openai_request_t *r);
/* Moves the sampling parameters (and the stop strings' ownership) out of r. */
br_gen_params_t br_openai_take_params(br_openai_request_t *r);

/* What a response carries besides its text. */
typedef struct {
    const char *id;
    const char *model;      /* echoed as sent */
    bool chat, include_usage;
    long long created;      /* unix seconds */
    size_t prompt_tokens, completion_tokens;
    bool guard;             /* the response went through PARDEN */
    bool guarded;           /* the verdict exists (false: the guard could not run: withheld) */
    bool guard_flagged;
    double guard_score;
} br_openai_meta_t;

/* "stop" or "length". */
const char *br_openai_finish_name(br_finish f);

/* Bodies and events, malloc'd (NULL when out of memory).  Text may hold any bytes: invalid
 * UTF-8 becomes U+FFFD. */
char *br_openai_completion(const br_openai_meta_t *m, const char *text, size_t n, const char *finish);
char *br_openai_error_json(const br_openai_error_t *e);
/* SSE events "data: {...}\n\n": the chat role chunk, a text chunk, the finish chunk (with
 * braid_guard when guarded), the usage chunk (stream_options.include_usage), an error, [DONE]. */
char *br_openai_sse_role(const br_openai_meta_t *m);
char *br_openai_sse_text(const br_openai_meta_t *m, const char *text, size_t n);
char *br_openai_sse_finish(const br_openai_meta_t *m, const char *finish);
char *br_openai_sse_usage(const br_openai_meta_t *m);
char *br_openai_sse_error(const char *message);
#define BR_OPENAI_SSE_DONE "data: [DONE]\n\n"

/* GET /v1/models: the base model, then adapters with their owners ("shared" when none). */
typedef struct {
    const char *id;
    const char *owner;      /* tenant name, or NULL / "": shared */
} br_openai_model_entry_t;
char *br_openai_models(const char *base, long long created, const br_openai_model_entry_t *adapters, size_t n);

/* POST /v1/adapters body {"name", "path"[, "shared"]}: name in the adapter alphabet, path a
 * string without NUL.  *name and *path are malloc'd on success. */
br_status br_openai_parse_adapter_post(const char *body, size_t len, char **name, char **path, bool *shared,
                                       br_openai_error_t *err);
/* Bodies of the adapter endpoints and /health. */
char *br_openai_adapter_registered(const char *name, const char *owner, const char *parent);
char *br_openai_adapter_deleted(const char *name);
char *br_openai_health(bool draining, const char *model, size_t waiting, size_t running, size_t adapters_loaded);

/* OpenAI's error type for a status ("invalid_request_error", "authentication_error", ...). */
const char *br_openai_error_type(unsigned http);

/* THE mapping from a library status to an HTTP status.  server_fault: the failure is the
 * server's own (the model's forward failed, its logits are not finite) rather than caused by
 * what the request named (its adapter, its input): the same status then reads as a 5xx. */
unsigned br_openai_http_status(br_status st, bool server_fault);
#endif
