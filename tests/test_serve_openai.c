/* serve/openai.h without sockets: one row per error the request parser can report (status,
 * code, param), the accepted shapes and their defaults, the response bodies and SSE events,
 * and the one status -> HTTP table. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "serve/openai.h"

#define V 352

typedef struct {
    bool chat;
    const char *body;
    unsigned http;
    const char *code;  /* NULL: the error has no code */
    const char *param; /* NULL: no param */
} err_case_t;

static const err_case_t ERRORS[] = {
    /* the body */
    {false, "", 400, NULL, NULL},
    {false, "{\"model\": \"m\", \"prompt\": ", 400, "invalid_json", NULL},
    {false, "[1, 2, 3]", 400, "invalid_json", NULL},
    {false, "\"just a string\"", 400, "invalid_json", NULL},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"model\": \"a1\"}", 400, "invalid_json", NULL},
    {false, "{\"model\": \"m\", \"prompt\": \"ab\xff\xfe\"}", 400, "invalid_json", NULL},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"temperature\": NaN}", 400, "invalid_json", NULL},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"temperature\": 1e999}", 400, "invalid_json", NULL},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"seed\": 123456789012345678901234567890}", 400, "invalid_json", NULL},
    /* model, stream */
    {false, "{\"prompt\": \"x\"}", 400, "invalid_type", "model"},
    {false, "{\"model\": 7, \"prompt\": \"x\"}", 400, "invalid_type", "model"},
    {false, "{\"model\": \"a\\u0000b\", \"prompt\": \"x\"}", 400, "invalid_json", NULL}, /* NUL never parsed */
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"stream\": \"yes\"}", 400, "invalid_type", "stream"},
    /* prompt */
    {false, "{\"model\": \"m\"}", 400, "missing_required_parameter", "prompt"},
    {false, "{\"model\": \"m\", \"prompt\": 12}", 400, "invalid_type", "prompt"},
    {false, "{\"model\": \"m\", \"prompt\": []}", 400, "invalid_type", "prompt"},
    {false, "{\"model\": \"m\", \"prompt\": {}}", 400, "invalid_type", "prompt"},
    {false, "{\"model\": \"m\", \"prompt\": [1, 2, 99999]}", 400, "invalid_value", "prompt"},
    {false, "{\"model\": \"m\", \"prompt\": [1, -1]}", 400, "invalid_value", "prompt"},
    {false, "{\"model\": \"m\", \"prompt\": [1, 352]}", 400, "invalid_value", "prompt"},
    {false, "{\"model\": \"m\", \"prompt\": [1, \"a\"]}", 400, "invalid_value", "prompt"},
    {false, "{\"model\": \"m\", \"prompt\": [1, 2.5]}", 400, "invalid_value", "prompt"},
    {false, "{\"model\": \"m\", \"prompt\": [\"a\", \"b\"]}", 400, "invalid_value", "prompt"},
    /* messages */
    {true, "{\"model\": \"m\"}", 400, "invalid_type", "messages"},
    {true, "{\"model\": \"m\", \"messages\": []}", 400, "invalid_type", "messages"},
    {true, "{\"model\": \"m\", \"messages\": \"hi\"}", 400, "invalid_type", "messages"},
    {true, "{\"model\": \"m\", \"messages\": [7]}", 400, "invalid_type", "messages"},
    {true, "{\"model\": \"m\", \"messages\": [{\"role\": \"user\"}]}", 400, "invalid_type", "messages"},
    {true, "{\"model\": \"m\", \"messages\": [{\"role\": 1, \"content\": \"x\"}]}", 400, "invalid_type", "messages"},
    {true, "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}", 400,
     "invalid_type", "messages"},
    {true, "{\"model\": \"m\", \"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}", 400, "invalid_value", "messages"},
    /* sampling */
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"max_tokens\": \"ten\"}", 400, "invalid_value", "max_tokens"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"max_tokens\": 0}", 400, "invalid_value", "max_tokens"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"max_tokens\": 1e30}", 400, "invalid_value", "max_tokens"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"max_tokens\": 1000001}", 400, "invalid_value", "max_tokens"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"max_completion_tokens\": -3}", 400, "invalid_value",
     "max_completion_tokens"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"temperature\": 5}", 400, "invalid_value", "temperature"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"temperature\": -0.1}", 400, "invalid_value", "temperature"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"temperature\": \"hot\"}", 400, "invalid_value", "temperature"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"top_p\": 0}", 400, "invalid_value", "top_p"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"top_p\": 1.5}", 400, "invalid_value", "top_p"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"top_k\": -2}", 400, "invalid_value", "top_k"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"top_k\": 1.5}", 400, "invalid_value", "top_k"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"ignore_eos\": 1}", 400, "invalid_type", "ignore_eos"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"seed\": 1.5}", 400, "invalid_type", "seed"},
    /* refused rather than ignored */
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"n\": 2}", 400, "invalid_value", "n"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"logprobs\": 3}", 400, "unsupported_parameter", "logprobs"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"echo\": true}", 400, "unsupported_parameter", "echo"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"presence_penalty\": 0.5}", 400, "unsupported_parameter",
     "presence_penalty"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"frequency_penalty\": 3}", 400, "invalid_value", "frequency_penalty"},
    /* stop */
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", 400, "invalid_type", "stop"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"stop\": 3}", 400, "invalid_type", "stop"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"stop\": [\"\"]}", 400, "invalid_value", "stop"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"stop\": [\"a\", 1]}", 400, "invalid_value", "stop"},
    {false, "{\"model\": \"m\", \"prompt\": \"x\", \"stop\": \"a\\u0000b\"}", 400, "invalid_json", NULL},
};

static bool same(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

static void test_error_table(void)
{
    for (size_t i = 0; i < sizeof ERRORS / sizeof *ERRORS; i++) {
        const err_case_t *c = &ERRORS[i];
        br_openai_request_t q;
        br_openai_error_t e;
        memset(&e, 0, sizeof e);
        br_status st = br_openai_parse_request(&q, &e, c->body, strlen(c->body), c->chat, V);
        CHECK_MSG(st != BR_OK && e.http == c->http && same(e.code, c->code) && same(e.param, c->param) && e.message[0],
                  "case %zu (%s): status %d http %u code %s param %s: %s", i, c->body, st, e.http, e.code ? e.code : "-",
                  e.param ? e.param : "-", e.message);
        CHECK_MSG(!q.model && !q.prompt_text && !q.messages && !q.prompt_ids && q.gp.nstop == 0, "case %zu left something allocated", i);
        /* the error body is an OpenAI error object with the same fields */
        char *js = br_openai_error_json(&e);
        json_t *j = js ? json_loads(js, 0, NULL) : NULL;
        json_t *o = json_object_get(j, "error");
        CHECK_MSG(json_is_string(json_object_get(o, "message")) && json_is_string(json_object_get(o, "type")) &&
                      (c->code ? json_is_string(json_object_get(o, "code")) : json_is_null(json_object_get(o, "code"))),
                  "case %zu error body: %s", i, js ? js : "(null)");
        json_decref(j);
        free(js);
    }
}

static void test_accepted(void)
{
    br_openai_request_t q;
    br_openai_error_t e;
    const char *b = "{\"model\": \"m\", \"prompt\": \"hello\"}";
    CHECK_OK(br_openai_parse_request(&q, &e, b, strlen(b), false, V));
    CHECK(q.model && !strcmp(q.model, "m") && q.prompt_text && !strcmp(q.prompt_text, "hello"));
    CHECK(q.gp.max_tokens == 16 && q.gp.temperature == 1.0f && q.gp.top_p == 1.0f && q.gp.top_k == 0 && !q.stream &&
          q.gp.nstop == 0 && !q.gp.has_seed);
    br_openai_request_clear(&q);

    b = "{\"model\": \"m\", \"prompt\": [\"one\"], \"max_completion_tokens\": 5, \"temperature\": 0, \"top_p\": 0.5, "
        "\"top_k\": -1, \"seed\": 9, \"stream\": true, \"stream_options\": {\"include_usage\": true}, \"stop\": \"zz\", "
        "\"ignore_eos\": true, \"n\": 1, \"logprobs\": false, \"echo\": false, \"presence_penalty\": 0}";
    CHECK_OK(br_openai_parse_request(&q, &e, b, strlen(b), false, V));
    CHECK(q.prompt_text && !strcmp(q.prompt_text, "one") && q.gp.max_tokens == 5 && q.gp.temperature == 0 &&
          q.gp.top_p == 0.5f && q.gp.top_k == 0 && q.gp.has_seed && q.gp.seed == 9 && q.stream && q.include_usage &&
          q.gp.ignore_eos && q.gp.nstop == 1 && !strcmp(q.gp.stop[0], "zz"));
    CHECK(q.gp.given == (BR_GIVEN_TEMPERATURE | BR_GIVEN_TOP_P | BR_GIVEN_TOP_K));
    br_gen_params_t gp = br_openai_take_params(&q);
    CHECK(q.gp.nstop == 0 && gp.nstop == 1);
    br_openai_request_clear(&q); /* must not free the stop strings handed over */
    free(gp.stop[0]);

    b = "{\"model\": \"m\", \"prompt\": [5, 0, 351]}";
    CHECK_OK(br_openai_parse_request(&q, &e, b, strlen(b), false, V));
    CHECK(!q.prompt_text && q.n_prompt_ids == 3 && q.prompt_ids[0] == 5 && q.prompt_ids[2] == 351);
    br_openai_request_clear(&q);

    /* chat: the messages normalised for the chat template (text parts joined; rendering and the
     * plain template's "\nUser:" stop are the prompt pipeline's: test_lm_prompt.c), max_tokens
     * left to the context */
    b = "{\"model\": \"m\", \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", "
        "\"content\": [{\"type\": \"text\", \"text\": \"Hi\"}, {\"type\": \"text\", \"text\": \"!\"}]}, "
        "{\"role\": \"assistant\", \"content\": \"Hello.\"}, {\"role\": \"user\", \"content\": \"Bye\"}]}";
    CHECK_OK(br_openai_parse_request(&q, &e, b, strlen(b), true, V));
    char *msgs = q.messages ? json_dumps(q.messages, JSON_COMPACT) : NULL;
    CHECK_STR(msgs ? msgs : "", "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi!\"},"
                                "{\"role\":\"assistant\",\"content\":\"Hello.\"},{\"role\":\"user\",\"content\":\"Bye\"}]");
    free(msgs);
    CHECK(!q.prompt_text && q.gp.max_tokens == 0 && q.gp.nstop == 0 && q.gp.given == 0);
    br_openai_request_clear(&q);
}

static json_t *parse_event(const char *ev)
{
    if (!ev || strncmp(ev, "data: ", 6) || strlen(ev) < 8 || strcmp(ev + strlen(ev) - 2, "\n\n")) return NULL;
    return json_loadb(ev + 6, strlen(ev) - 8, 0, NULL);
}

static void test_responses(void)
{
    br_openai_meta_t m = {.id = "cmpl-1", .model = "m", .created = 1700000000, .prompt_tokens = 3, .completion_tokens = 2};
    char *body = br_openai_completion(&m, "ab\xff", 3, "length");
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    CHECK(j && !strcmp(json_string_value(json_object_get(j, "object")), "text_completion"));
    CHECK(ch && !strcmp(json_string_value(json_object_get(ch, "text")), "ab\xEF\xBF\xBD")); /* U+FFFD */
    CHECK(ch && !strcmp(json_string_value(json_object_get(ch, "finish_reason")), "length"));
    CHECK(json_integer_value(json_object_get(json_object_get(j, "usage"), "total_tokens")) == 5);
    CHECK(!json_object_get(j, "braid_guard"));
    json_decref(j);
    free(body);

    m.chat = true;
    m.guard = true;
    m.guarded = true;
    m.guard_score = 0.25;
    m.guard_flagged = true;
    body = br_openai_completion(&m, "no", 2, "stop");
    j = body ? json_loads(body, 0, NULL) : NULL;
    ch = json_array_get(json_object_get(j, "choices"), 0);
    CHECK(!strcmp(json_string_value(json_object_get(json_object_get(ch, "message"), "content")) ?: "", "no"));
    CHECK(json_is_true(json_object_get(json_object_get(j, "braid_guard"), "flagged")));
    json_decref(j);
    free(body);

    /* SSE: role, text, finish (+guard, usage: null), usage, error */
    m.include_usage = true;
    char *ev = br_openai_sse_role(&m);
    j = parse_event(ev);
    ch = json_array_get(json_object_get(j, "choices"), 0);
    CHECK(j && !strcmp(json_string_value(json_object_get(json_object_get(ch, "delta"), "role")) ?: "", "assistant"));
    json_decref(j);
    free(ev);
    ev = br_openai_sse_text(&m, "hi", 2);
    j = parse_event(ev);
    ch = json_array_get(json_object_get(j, "choices"), 0);
    CHECK(j && !strcmp(json_string_value(json_object_get(json_object_get(ch, "delta"), "content")) ?: "", "hi") &&
          json_is_null(json_object_get(ch, "finish_reason")));
    json_decref(j);
    free(ev);
    ev = br_openai_sse_finish(&m, "stop");
    j = parse_event(ev);
    ch = json_array_get(json_object_get(j, "choices"), 0);
    CHECK(j && !strcmp(json_string_value(json_object_get(ch, "finish_reason")) ?: "", "stop") &&
          json_object_get(j, "braid_guard") && json_is_null(json_object_get(j, "usage")));
    json_decref(j);
    free(ev);
    ev = br_openai_sse_usage(&m);
    j = parse_event(ev);
    CHECK(j && json_array_size(json_object_get(j, "choices")) == 0 &&
          json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")) == 2);
    json_decref(j);
    free(ev);
    ev = br_openai_sse_error("model forward failed: \xff");
    j = parse_event(ev);
    CHECK(j && !strcmp(json_string_value(json_object_get(json_object_get(j, "error"), "type")) ?: "", "server_error"));
    json_decref(j);
    free(ev);
}

/* The one table: what sched.c and server.c used to map differently (EIO was 400 in one, 500
 * in the other; a scheduler failure was always 500 whatever its status). */
static void test_status_table(void)
{
    CHECK_INT(br_openai_http_status(BR_EINVAL, false), 400);
    CHECK_INT(br_openai_http_status(BR_EFORMAT, false), 400); /* a malformed adapter */
    CHECK_INT(br_openai_http_status(BR_ERANGE, false), 400);
    CHECK_INT(br_openai_http_status(BR_EUNSUPPORTED, false), 400);
    CHECK_INT(br_openai_http_status(BR_ENOTFOUND, false), 404);
    CHECK_INT(br_openai_http_status(BR_EBUSY, false), 409);
    CHECK_INT(br_openai_http_status(BR_ENOMEM, false), 503);
    CHECK_INT(br_openai_http_status(BR_EIO, false), 500);
    /* the server's own failures are 5xx whatever the status */
    for (int st = BR_EINVAL; st < BR_STATUS_COUNT; st++)
        CHECK_MSG(br_openai_http_status((br_status)st, true) >= 499, "%s as a server fault: %u",
                  br_status_name((br_status)st), br_openai_http_status((br_status)st, true));
    CHECK_INT(br_openai_http_status(BR_ERANGE, true), 500); /* non-finite logits */
    CHECK_INT(br_openai_http_status((br_status)999, false), 500);
    CHECK_STR(br_openai_error_type(401), "authentication_error");
    CHECK_STR(br_openai_error_type(404), "not_found_error");
    CHECK_STR(br_openai_error_type(429), "rate_limit_error");
    CHECK_STR(br_openai_error_type(500), "server_error");
    CHECK_STR(br_openai_error_type(413), "invalid_request_error");
}

static void test_other_endpoints(void)
{
    struct {
        const char *body;
        const char *code;
        const char *param;
    } bad[] = {
        {"", "invalid_json", NULL},
        {"[1]", "invalid_json", NULL},
        {"{\"name\": \"x\"}", "invalid_type", NULL},
        {"{\"name\": 1, \"path\": \"p\"}", "invalid_type", NULL},
        {"{\"name\": \"../x\", \"path\": \"p\"}", "invalid_value", "name"},
        {"{\"name\": \"a b\", \"path\": \"p\"}", "invalid_value", "name"},
        {"{\"name\": \"\", \"path\": \"p\"}", "invalid_value", "name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *name = (char *)1, *path = (char *)1;
        bool shared = false;
        br_openai_error_t e = {0};
        br_status st = br_openai_parse_adapter_post(bad[i].body, strlen(bad[i].body), &name, &path, &shared, &e);
        CHECK_MSG(st != BR_OK && e.http == 400 && same(e.code, bad[i].code) && same(e.param, bad[i].param) && !name &&
                      !path,
                  "adapter post case %zu (%s): %u %s", i, bad[i].body, e.http, e.message);
    }
    char *name = NULL, *path = NULL;
    bool shared = false;
    br_openai_error_t e;
    const char *ok = "{\"name\": \"sql-v2\", \"path\": \"sql/v2\", \"shared\": true}";
    CHECK_OK(br_openai_parse_adapter_post(ok, strlen(ok), &name, &path, &shared, &e));
    CHECK(name && path && !strcmp(name, "sql-v2") && !strcmp(path, "sql/v2") && shared);
    free(name);
    free(path);

    br_openai_model_entry_t ents[] = {{"a1", "acme"}, {"shared1", NULL}};
    char *body = br_openai_models("base", 5, ents, 2);
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    json_t *d = json_object_get(j, "data");
    CHECK(json_array_size(d) == 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(d, 0), "id")) ?: "", "base");
    CHECK_STR(json_string_value(json_object_get(json_array_get(d, 1), "owned_by")) ?: "", "acme");
    CHECK_STR(json_string_value(json_object_get(json_array_get(d, 2), "owned_by")) ?: "", "shared");
    CHECK_STR(json_string_value(json_object_get(json_array_get(d, 2), "parent")) ?: "", "base");
    json_decref(j);
    free(body);
    body = br_openai_health(true, "base", 2, 3, 4);
    j = body ? json_loads(body, 0, NULL) : NULL;
    CHECK(!strcmp(json_string_value(json_object_get(j, "status")) ?: "", "draining") &&
          json_integer_value(json_object_get(j, "running")) == 3);
    json_decref(j);
    free(body);
}

int main(void)
{
    test_error_table();
    test_accepted();
    test_responses();
    test_status_table();
    test_other_endpoints();
    return th_exit();
}
