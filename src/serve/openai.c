#include "serve/openai.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "serve/util.h"

/* ---- errors and the status table ---- */

br_status br_openai_fail(br_openai_error_t *e, unsigned http, const char *code, const char *param, const char *fmt, ...)
{
    e->http = http;
    e->code = code;
    e->param = param;
    e->retry_after = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return http == 503 ? BR_ENOMEM : BR_EINVAL;
}

const char *br_openai_error_type(unsigned http)
{
    switch (http) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable";
    default: return http >= 500 ? "server_error" : "invalid_request_error";
    }
}

/* One row per status: the HTTP status when the request's own input (its JSON, its adapter)
 * caused the failure, and when the server's own work failed. */
static const struct {
    unsigned input, server;
} STATUS_HTTP[BR_STATUS_COUNT] = {
    [BR_OK] = {200, 200},
    [BR_EINVAL] = {400, 500},
    [BR_ENOMEM] = {503, 503},       /* a budget is full: try again later */
    [BR_EIO] = {500, 500},          /* the OS refused a read: not the client's doing */
    [BR_EFORMAT] = {400, 500},      /* a malformed adapter the request named */
    [BR_ENOTFOUND] = {404, 500},
    [BR_ERANGE] = {400, 500},       /* out of range: an adapter's scale, a token id; or the model's logits */
    [BR_EUNSUPPORTED] = {400, 500},
    [BR_EBUSY] = {409, 503},        /* a name taken / a resource in use */
    [BR_ECANCELED] = {499, 499},    /* the client went away (nginx's convention; never sent) */
    [BR_ETIMEOUT] = {408, 504},
    [BR_ENET] = {502, 502},
};

unsigned br_openai_http_status(br_status st, bool server_fault)
{
    if ((unsigned)st >= BR_STATUS_COUNT) return 500;
    return server_fault ? STATUS_HTTP[st].server : STATUS_HTTP[st].input;
}

/* ---- request parsing ---- */

/* A number in [lo, hi] at key: true when present; *bad when present but not such a number. */
static bool get_number(json_t *body, const char *key, double lo, double hi, double *out, bool *bad)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) return false;
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    if (!isfinite(x) || x < lo || x > hi) {
        *bad = true;
        return false;
    }
    *out = x;
    return true;
}

/* The text of a chat message's content: a string, or a list of {"type": "text", "text": ...}. */
static const char *content_text(json_t *content, br_buf_t *tmp)
{
    if (json_is_string(content)) return json_string_value(content);
    if (!json_is_array(content)) return NULL;
    br_buf_clear(tmp);
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");
        json_t *ty = json_object_get(part, "type");
        if (!json_is_string(ty) || strcmp(json_string_value(ty), "text") || !json_is_string(t)) return NULL;
        if (br_buf_append(tmp, json_string_value(t), json_string_length(t))) return NULL;
    }
    return br_buf_str(tmp);
}

/* The messages of a chat request, checked and normalised for a chat template: each is
 * {"role": ..., "content": string} (text parts joined), other fields kept.  The model's chat
 * template renders them (lm/prompt.h; braid's plain template for models without one). */
static br_status chat_messages(json_t *msgs, json_t **out, br_openai_error_t *err)
{
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return br_openai_fail(err, 400, "invalid_type", "messages", "\"messages\" must be a non-empty list");
    json_t *norm = json_array();
    if (!norm) return br_openai_fail(err, 503, NULL, NULL, "out of memory");
    br_buf_t tmp = {0};
    size_t i;
    json_t *m;
    br_status st = BR_OK;
    json_array_foreach(msgs, i, m) {
        json_t *role = json_object_get(m, "role");
        const char *text = content_text(json_object_get(m, "content"), &tmp);
        if (!json_is_object(m) || !json_is_string(role) || !text) {
            st = br_openai_fail(err, 400, "invalid_type", "messages",
                                "messages[%zu] must be {\"role\": ..., \"content\": string or text parts}", i);
            break;
        }
        const char *r = json_string_value(role);
        if (strcmp(r, "system") && strcmp(r, "developer") && strcmp(r, "user") && strcmp(r, "assistant")) {
            char shown[3 * 40 + 1];
            br_utf8_repair(shown, r, strnlen(r, 40));
            st = br_openai_fail(err, 400, "invalid_value", "messages",
                                "messages[%zu]: role '%s' is not system, developer, user or assistant", i, shown);
            break;
        }
        json_t *c = json_deep_copy(m);
        if (c && json_object_set_new(c, "content", json_string(text))) {
            json_decref(c);
            c = NULL;
        }
        if (!c || json_array_append_new(norm, c)) {
            st = br_openai_fail(err, 503, NULL, NULL, "out of memory");
            break;
        }
    }
    br_buf_free(&tmp);
    if (st != BR_OK) {
        json_decref(norm);
        return st;
    }
    *out = norm;
    return BR_OK;
}

/* The prompt of a completion: a string, a list with one string, or a list of token ids. */
static br_status completion_prompt(json_t *prompt, size_t vocab, br_openai_request_t *r, br_openai_error_t *err)
{
    if (!prompt) return br_openai_fail(err, 400, "missing_required_parameter", "prompt", "\"prompt\" is required");
    if (json_is_array(prompt) && json_array_size(prompt) == 1 && json_is_string(json_array_get(prompt, 0)))
        prompt = json_array_get(prompt, 0);
    if (json_is_string(prompt)) {
        r->prompt_text = strndup(json_string_value(prompt), json_string_length(prompt));
        return r->prompt_text ? BR_OK : br_openai_fail(err, 503, NULL, NULL, "out of memory");
    }
    if (json_is_array(prompt) && json_array_size(prompt) > 0 && json_is_integer(json_array_get(prompt, 0))) {
        size_t n = json_array_size(prompt);
        r->prompt_ids = malloc(n * sizeof *r->prompt_ids);
        if (!r->prompt_ids) return br_openai_fail(err, 503, NULL, NULL, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_array_get(prompt, i);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) >= vocab)
                return br_openai_fail(err, 400, "invalid_value", "prompt", "prompt[%zu] is not a token id in [0, %zu)",
                                      i, vocab);
            r->prompt_ids[i] = (int32_t)json_integer_value(v);
        }
        r->n_prompt_ids = n;
        return BR_OK;
    }
    if (json_is_array(prompt) && json_array_size(prompt) > 1)
        return br_openai_fail(err, 400, "invalid_value", "prompt", "only one prompt per request is supported");
    return br_openai_fail(err, 400, "invalid_type", "prompt",
                          "\"prompt\" must be a string, a list with one string, or a list of token ids");
}

/* max_tokens (or max_completion_tokens), temperature, top_p, top_k, ignore_eos, seed. */
static br_status sampling_params(json_t *body, bool chat, br_gen_params_t *gp, br_openai_error_t *err)
{
    double v;
    bool bad = false;
    gp->max_tokens = chat ? 0 : 16;
    const char *mt_key = json_object_get(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    json_t *mt = json_object_get(body, mt_key);
    if (mt && !json_is_null(mt)) {
        if (!json_is_integer(mt) || json_integer_value(mt) < 1 || json_integer_value(mt) > 1000000)
            return br_openai_fail(err, 400, "invalid_value", mt_key, "\"%s\" must be an integer in 1..1000000", mt_key);
        gp->max_tokens = (int)json_integer_value(mt);
    }
    gp->temperature = 1.0f;
    if (get_number(body, "temperature", 0, 2, &v, &bad)) gp->temperature = (float)v, gp->given |= BR_GIVEN_TEMPERATURE;
    if (bad) return br_openai_fail(err, 400, "invalid_value", "temperature", "\"temperature\" must be a number in [0, 2]");
    gp->top_p = 1.0f;
    if (get_number(body, "top_p", 0, 1, &v, &bad)) gp->top_p = (float)v, gp->given |= BR_GIVEN_TOP_P;
    if (bad || gp->top_p <= 0) return br_openai_fail(err, 400, "invalid_value", "top_p", "\"top_p\" must be in (0, 1]");
    json_t *tk = json_object_get(body, "top_k"); /* vLLM's extension */
    if (tk && !json_is_null(tk)) {
        if (!json_is_integer(tk) || json_integer_value(tk) < -1 || json_integer_value(tk) > 1000000)
            return br_openai_fail(err, 400, "invalid_value", "top_k", "\"top_k\" must be an integer >= -1 (-1 or 0: all)");
        gp->top_k = json_integer_value(tk) > 0 ? (int)json_integer_value(tk) : 0;
        gp->given |= BR_GIVEN_TOP_K;
    }
    json_t *ie = json_object_get(body, "ignore_eos"); /* vLLM's extension: fixed output lengths */
    if (ie && !json_is_null(ie) && !json_is_boolean(ie))
        return br_openai_fail(err, 400, "invalid_type", "ignore_eos", "\"ignore_eos\" must be true or false");
    gp->ignore_eos = json_is_true(ie);
    json_t *seed = json_object_get(body, "seed");
    if (seed && !json_is_null(seed)) {
        if (!json_is_integer(seed)) return br_openai_fail(err, 400, "invalid_type", "seed", "\"seed\" must be an integer");
        gp->has_seed = true;
        gp->seed = (uint64_t)json_integer_value(seed);
    }
    return BR_OK;
}

/* Parameters braid refuses rather than ignores (they would change the results). */
static br_status unsupported_params(json_t *body, br_openai_error_t *err)
{
    json_t *n = json_object_get(body, "n");
    if (n && !json_is_null(n) && !(json_is_integer(n) && json_integer_value(n) == 1))
        return br_openai_fail(err, 400, "invalid_value", "n", "only n = 1 is supported");
    json_t *lp = json_object_get(body, "logprobs");
    if (lp && !json_is_null(lp) && !json_is_false(lp) && !(json_is_integer(lp) && json_integer_value(lp) == 0))
        return br_openai_fail(err, 400, "unsupported_parameter", "logprobs", "logprobs are not supported");
    if (json_is_true(json_object_get(body, "echo")))
        return br_openai_fail(err, 400, "unsupported_parameter", "echo", "echo is not supported");
    static const char *pens[] = {"presence_penalty", "frequency_penalty"};
    for (int i = 0; i < 2; i++) {
        double v;
        bool bad = false;
        if (get_number(body, pens[i], -2, 2, &v, &bad) && v != 0)
            return br_openai_fail(err, 400, "unsupported_parameter", pens[i], "%s other than 0 is not supported", pens[i]);
        if (bad) return br_openai_fail(err, 400, "invalid_value", pens[i], "\"%s\" must be a number in [-2, 2]", pens[i]);
    }
    return BR_OK;
}

/* stop: a string or up to BR_MAX_STOP strings of 1..256 bytes (a chat template may add its own:
 * lm/prompt.h's br_prompt_chat_stop). */
static br_status stop_strings(json_t *body, br_gen_params_t *gp, br_openai_error_t *err)
{
    json_t *stop = json_object_get(body, "stop");
    if (stop && !json_is_null(stop)) {
        bool one = json_is_string(stop);
        if (!one && (!json_is_array(stop) || json_array_size(stop) > BR_MAX_STOP))
            return br_openai_fail(err, 400, "invalid_type", "stop",
                                  "\"stop\" must be a string or a list of up to %d strings", BR_MAX_STOP);
        size_t n = one ? 1 : json_array_size(stop);
        for (size_t i = 0; i < n; i++) {
            json_t *e = one ? stop : json_array_get(stop, i);
            if (!json_is_string(e) || !json_string_length(e) || json_string_length(e) > 256 ||
                strlen(json_string_value(e)) != json_string_length(e))
                return br_openai_fail(err, 400, "invalid_value", "stop", "stop strings must be 1..256 bytes (no NUL)");
            if (!(gp->stop[gp->nstop++] = strdup(json_string_value(e))))
                return br_openai_fail(err, 503, NULL, NULL, "out of memory");
        }
    }
    return BR_OK;
}

/* model, stream, stream_options. */
static br_status envelope(json_t *body, br_openai_request_t *r, br_openai_error_t *err)
{
    json_t *m = json_object_get(body, "model");
    if (!json_is_string(m)) return br_openai_fail(err, 400, "invalid_type", "model", "\"model\" must be a string");
    if (strlen(json_string_value(m)) != json_string_length(m))
        return br_openai_fail(err, 404, "model_not_found", "model", "no model name contains a NUL character");
    if (!(r->model = strdup(json_string_value(m)))) return br_openai_fail(err, 503, NULL, NULL, "out of memory");
    json_t *stream = json_object_get(body, "stream");
    if (stream && !json_is_boolean(stream) && !json_is_null(stream))
        return br_openai_fail(err, 400, "invalid_type", "stream", "\"stream\" must be true or false");
    r->stream = json_is_true(stream);
    json_t *so = json_object_get(body, "stream_options");
    r->include_usage = json_is_object(so) && json_is_true(json_object_get(so, "include_usage"));
    return BR_OK;
}

br_status br_openai_parse_request(br_openai_request_t *out, br_openai_error_t *err, const char *body, size_t len,
                                  bool chat, size_t vocab_size)
{
    memset(out, 0, sizeof *out);
    out->chat = chat;
    if (!len) return br_openai_fail(err, 400, NULL, NULL, "the request body is empty (want a JSON object)");
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        char fixed[3 * sizeof je.text + 1];
        br_utf8_repair(fixed, je.text, strlen(je.text));
        return br_openai_fail(err, 400, "invalid_json", NULL, "invalid JSON at line %d column %d: %s", je.line, je.column,
                              fixed);
    }
    br_status st = BR_OK;
    if (!json_is_object(j)) st = br_openai_fail(err, 400, "invalid_json", NULL, "the request body must be a JSON object");
    if (st == BR_OK) st = envelope(j, out, err);
    if (st == BR_OK) st = chat ? chat_messages(json_object_get(j, "messages"), &out->messages, err)
                               : completion_prompt(json_object_get(j, "prompt"), vocab_size, out, err);
    if (st == BR_OK) st = sampling_params(j, chat, &out->gp, err);
    if (st == BR_OK) st = unsupported_params(j, err);
    if (st == BR_OK) st = stop_strings(j, &out->gp, err);
    json_decref(j);
    if (st != BR_OK) br_openai_request_clear(out);
    return st;
}

void br_openai_request_clear(br_openai_request_t *r)
{
    for (int k = 0; k < r->gp.nstop; k++) free(r->gp.stop[k]);
    free(r->model);
    free(r->prompt_text);
    json_decref(r->messages);
    free(r->prompt_ids);
    bool chat = r->chat;
    memset(r, 0, sizeof *r);
    r->chat = chat;
}

br_gen_params_t br_openai_take_params(br_openai_request_t *r)
{
    br_gen_params_t gp = r->gp;
    memset(r->gp.stop, 0, sizeof r->gp.stop);
    r->gp.nstop = 0;
    return gp;
}

/* ---- responses ---- */

static json_t *repaired_string(const char *p, size_t n)
{
    char *fixed = malloc(3 * n + 1);
    if (!fixed) return NULL;
    size_t m = br_utf8_repair(fixed, p, n);
    json_t *j = json_stringn(fixed, m);
    free(fixed);
    return j;
}

const char *br_openai_finish_name(br_finish f) { return f == BR_FINISH_LENGTH ? "length" : "stop"; }

static json_t *usage_json(const br_openai_meta_t *m)
{
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)m->prompt_tokens, "completion_tokens",
                     (json_int_t)m->completion_tokens, "total_tokens", (json_int_t)(m->prompt_tokens + m->completion_tokens));
}

static void add_guard(json_t *o, const br_openai_meta_t *m)
{
    if (!m->guard) return;
    json_object_set_new(o, "braid_guard",
                        m->guarded ? json_pack("{s:f, s:b}", "score", m->guard_score, "flagged", m->guard_flagged)
                                   : json_pack("{s:n, s:b, s:s}", "score", "flagged", 1, "error",
                                               "the guard could not run (the repeat prompt does not fit the context): "
                                               "the response is withheld"));
}

/* Serializes and frees o (NULL in, NULL out). */
static char *dump(json_t *o)
{
    if (!o) return NULL;
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    return s;
}

/* "data: JSON\n\n" from o (freed). */
static char *event(json_t *o)
{
    char *js = dump(o);
    if (!js) return NULL;
    size_t len = strlen(js);
    char *ev = malloc(len + 9);
    if (ev) {
        memcpy(ev, "data: ", 6);
        memcpy(ev + 6, js, len);
        memcpy(ev + 6 + len, "\n\n", 3);
    }
    free(js);
    return ev;
}

char *br_openai_completion(const br_openai_meta_t *m, const char *text, size_t n, const char *finish)
{
    json_t *t = repaired_string(text ? text : "", n);
    if (!t) return NULL;
    json_t *choice = m->chat ? json_pack("{s:i, s:{s:s, s:o}, s:n, s:s}", "index", 0, "message", "role", "assistant",
                                         "content", t, "logprobs", "finish_reason", finish)
                             : json_pack("{s:o, s:i, s:n, s:s}", "text", t, "index", 0, "logprobs", "finish_reason", finish);
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o}", "id", m->id, "object",
                          m->chat ? "chat.completion" : "text_completion", "created", (json_int_t)m->created, "model",
                          m->model, "choices", choice, "usage", usage_json(m));
    if (o) add_guard(o, m);
    return dump(o);
}

char *br_openai_error_json(const br_openai_error_t *e)
{
    char fixed[3 * sizeof e->message + 1];
    br_utf8_repair(fixed, e->message, strlen(e->message));
    return dump(json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", fixed, "type", br_openai_error_type(e->http),
                          "param", e->param ? json_string(e->param) : json_null(), "code",
                          e->code ? json_string(e->code) : json_null()));
}

/* A chunk's envelope with one choice (delta for chat, text for completions). */
static json_t *chunk(const br_openai_meta_t *m, json_t *choice)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", m->id, "object",
                     m->chat ? "chat.completion.chunk" : "text_completion", "created", (json_int_t)m->created, "model",
                     m->model, "choices", choice);
}

static json_t *choice(const br_openai_meta_t *m, json_t *delta_or_text, const char *finish)
{
    json_t *fin = finish ? json_string(finish) : json_null();
    if (m->chat) return json_pack("{s:i, s:o, s:n, s:o}", "index", 0, "delta", delta_or_text, "logprobs", "finish_reason", fin);
    return json_pack("{s:o, s:i, s:n, s:o}", "text", delta_or_text, "index", 0, "logprobs", "finish_reason", fin);
}

char *br_openai_sse_role(const br_openai_meta_t *m)
{
    return event(chunk(m, choice(m, json_pack("{s:s}", "role", "assistant"), NULL)));
}

char *br_openai_sse_text(const br_openai_meta_t *m, const char *text, size_t n)
{
    json_t *t = repaired_string(text, n);
    if (!t) return NULL;
    return event(chunk(m, choice(m, m->chat ? json_pack("{s:o}", "content", t) : t, NULL)));
}

char *br_openai_sse_finish(const br_openai_meta_t *m, const char *finish)
{
    json_t *o = chunk(m, choice(m, m->chat ? json_object() : json_string(""), finish));
    if (o) {
        add_guard(o, m);
        if (m->include_usage) json_object_set_new(o, "usage", json_null());
    }
    return event(o);
}

char *br_openai_sse_usage(const br_openai_meta_t *m)
{
    return event(json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", m->id, "object",
                           m->chat ? "chat.completion.chunk" : "text_completion", "created", (json_int_t)m->created,
                           "model", m->model, "choices", "usage", usage_json(m)));
}

char *br_openai_sse_error(const char *message)
{
    json_t *msg = repaired_string(message, strlen(message));
    if (!msg) return NULL;
    return event(json_pack("{s:{s:o, s:s, s:n, s:n}}", "error", "message", msg, "type", "server_error", "param", "code"));
}

/* ---- the other endpoints ---- */

char *br_openai_models(const char *base, long long created, const br_openai_model_entry_t *adapters, size_t n)
{
    json_t *data = json_array();
    if (!data) return NULL;
    json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s}", "id", base, "object", "model", "created",
                                          (json_int_t)created, "owned_by", "braid"));
    for (size_t i = 0; i < n; i++) {
        const char *owner = adapters[i].owner && adapters[i].owner[0] ? adapters[i].owner : "shared";
        json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "id", adapters[i].id, "object", "model",
                                              "created", (json_int_t)created, "owned_by", owner, "parent", base, "root",
                                              base));
    }
    return dump(json_pack("{s:s, s:o}", "object", "list", "data", data));
}

br_status br_openai_parse_adapter_post(const char *body, size_t len, char **name, char **path, bool *shared,
                                       br_openai_error_t *err)
{
    *name = *path = NULL;
    json_error_t je;
    json_t *j = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    br_status st = BR_OK;
    json_t *n = json_object_get(j, "name"), *p = json_object_get(j, "path");
    if (!json_is_object(j))
        st = br_openai_fail(err, 400, "invalid_json", NULL, "want a JSON object {\"name\": ..., \"path\": ...}");
    else if (!json_is_string(n) || !json_is_string(p) || strlen(json_string_value(p)) != json_string_length(p))
        st = br_openai_fail(err, 400, "invalid_type", NULL, "\"name\" and \"path\" must be strings (without NUL)");
    else if (!br_serve_name_ok(json_string_value(n), 100))
        st = br_openai_fail(err, 400, "invalid_value", "name", "an adapter name must be [A-Za-z0-9_.-]{1,100}");
    else if (!(*name = strdup(json_string_value(n))) || !(*path = strdup(json_string_value(p))))
        st = br_openai_fail(err, 503, NULL, NULL, "out of memory");
    if (st == BR_OK) *shared = json_is_true(json_object_get(j, "shared"));
    json_decref(j);
    if (st != BR_OK) {
        free(*name);
        free(*path);
        *name = *path = NULL;
    }
    return st;
}

char *br_openai_adapter_registered(const char *name, const char *owner, const char *parent)
{
    return dump(json_pack("{s:s, s:s, s:s, s:s}", "id", name, "object", "model", "owned_by",
                          owner && owner[0] ? owner : "shared", "parent", parent));
}

char *br_openai_adapter_deleted(const char *name)
{
    return dump(json_pack("{s:s, s:s, s:b}", "id", name, "object", "model", "deleted", 1));
}

char *br_openai_health(bool draining, const char *model, size_t waiting, size_t running, size_t adapters_loaded)
{
    return dump(json_pack("{s:s, s:s, s:I, s:I, s:I}", "status", draining ? "draining" : "ok", "model", model, "waiting",
                          (json_int_t)waiting, "running", (json_int_t)running, "adapters_loaded",
                          (json_int_t)adapters_loaded));
}
