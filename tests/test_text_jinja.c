/* Chat templates: braid's Jinja renderer against npm @huggingface/jinja (committed renderings
 * from tests/ref/gen_chat_templates.js: the Llama-3 and Qwen3 templates of the npm tokenizer
 * packages, Llama-2/Mistral/ChatML/Gemma fixtures, and one small template per construct), plus
 * error cases that must be refused with a message naming the construct and its position. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "text/jinja.h"

static char *render(const char *tmpl, const json_t *vars, br_status *st)
{
    br_jinja_t *t = NULL;
    char *out = NULL;
    *st = br_jinja_parse(&t, tmpl, strlen(tmpl));
    if (*st == BR_OK) *st = br_jinja_render(t, vars, &out, NULL);
    br_jinja_free(t);
    return out;
}

static void test_oracle_cases(void)
{
    json_error_t je;
    json_t *root = json_load_file("tests/ref/chat_template_cases.json", 0, &je);
    CHECK_MSG(root != NULL, "tests/ref/chat_template_cases.json: %s", je.text);
    if (!root) return;
    json_t *templates = json_object_get(root, "templates"), *cases = json_object_get(root, "cases");
    size_t i, ok = 0, n = 0;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *text = json_string_value(json_object_get(c, "text"));
        if (!text) text = json_string_value(json_object_get(templates, json_string_value(json_object_get(c, "template"))));
        br_status st;
        char *out = render(text, json_object_get(c, "vars"), &st);
        n++;
        if (json_is_true(json_object_get(c, "error"))) {
            CHECK_MSG(st != BR_OK, "%s: the reference refuses it (%s) but braid rendered \"%s\"", name,
                      json_string_value(json_object_get(c, "message")), out ? out : "");
            if (st != BR_OK && strstr(br_errmsg(), json_string_value(json_object_get(c, "message")))) ok++;
            else CHECK_MSG(0, "%s: message \"%s\" lacks the template's own \"%s\"", name, br_errmsg(),
                           json_string_value(json_object_get(c, "message")));
        } else {
            const char *want = json_string_value(json_object_get(c, "out"));
            CHECK_MSG(st == BR_OK, "%s: %s", name, br_errmsg());
            if (st == BR_OK) {
                CHECK_MSG(!strcmp(out, want), "%s:\n--- braid\n%s\n--- @huggingface/jinja\n%s\n---", name, out, want);
                ok += !strcmp(out, want);
            }
        }
        free(out);
    }
    printf("chat templates: %zu of %zu cases equal @huggingface/jinja (%s)\n", ok, n,
           json_string_value(json_object_get(root, "renderer")));
    CHECK(n >= 100);
    json_decref(root);
}

static void expect_error(const char *tmpl, const char *needle)
{
    br_status st;
    json_t *vars = json_pack("{s:[i,i], s:s}", "xs", 1, 2, "s", "str");
    char *out = render(tmpl, vars, &st);
    CHECK_MSG(st != BR_OK, "\"%s\" rendered \"%s\"; expected an error", tmpl, out ? out : "");
    CHECK_MSG(st == BR_OK || strstr(br_errmsg(), needle), "\"%s\": message \"%s\" lacks \"%s\"", tmpl, br_errmsg(), needle);
    free(out);
    json_decref(vars);
}

static void test_errors(void)
{
    expect_error("{% macro f() %}x{% endmacro %}", "{% macro %} is not supported");
    expect_error("{% call f() %}x{% endcall %}", "{% call %} is not supported");
    expect_error("a\n  {{ s | frobnicate }}", "line 2, column 8: filter 'frobnicate'");
    expect_error("{{ s is shiny }}", "test 'shiny' is not supported");
    /* positions are the template's own, although trim_blocks/lstrip_blocks removed text before */
    expect_error("{% if true %}\n  {% if true %}\n\t{{ xs | nope }}{% endif %}{% endif %}", "line 3, column 8: filter 'nope'");
    expect_error("{% if true %}x", "{% if %} is never closed");
    expect_error("{{ 'abc }}", "string literal is not closed");
    expect_error("{{ xs[0] / 0 }}", "division by zero");
    expect_error("{{ s.nosuch() }}", "cannot call a undefined");
    expect_error("{% for x in 5 %}{% endfor %}", "for loop over a integer");
    expect_error("{{ raise_exception('stop here') }}", "raise_exception: stop here");
    expect_error("{% set s.x = 1 %}", "namespace");
    expect_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "more than");
    char deep[2000];
    size_t k = 0;
    k += (size_t)sprintf(deep, "{{ ");
    for (int i = 0; i < 600; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 600; i++) deep[k++] = ')';
    strcpy(deep + k, " }}");
    expect_error(deep, "deeper");
    char *chain = malloc(200010); /* a + a + ... 100000 times: a deep AST the parser does not nest */
    if (chain) {
        strcpy(chain, "{{ 1");
        for (int i = 0; i < 50000; i++) strcat(chain + 4 + 2 * i, "+1");
        strcat(chain, " }}");
        expect_error(chain, "nests deeper than 1000 operations");
        free(chain);
    }
}

static void test_chat_api(void)
{
    const char *tmpl = "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% if m.tool_calls %}"
                       "{{ m.tool_calls | tojson }}{% endif %}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
                       "{{ tools | length }}{{ enable_thinking }}";
    json_t *msgs = json_loads("[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"\","
                              "\"tool_calls\":[{\"name\":\"f\",\"arguments\":{\"a\":1}}]}]", 0, NULL);
    json_t *tools = json_loads("[{\"name\":\"f\"}]", 0, NULL), *extra = json_pack("{s:b}", "enable_thinking", 0);
    br_chat_opts_t o = {.bos_token = "<s>", .eos_token = "</s>", .add_generation_prompt = 1, .tools = tools, .extra = extra};
    char *out = NULL;
    CHECK_OK(br_chat_render(tmpl, msgs, &o, &out));
    CHECK_STR(out, "<s><user>hi<assistant>[{\"name\": \"f\", \"arguments\": {\"a\": 1}}]<assistant>1false");
    free(out);
    CHECK_STATUS(br_chat_render(NULL, msgs, &o, &out), BR_EINVAL);
    CHECK_STATUS(br_chat_render(tmpl, tools, NULL, &out), BR_OK); /* any array of objects is accepted */
    free(out);
    json_decref(msgs);
    json_decref(tools);
    json_decref(extra);
}

/* braid tokenizer chat, end to end (when make test gives $BRAID). */
static void test_cli(void)
{
    const char *braid = getenv("BRAID");
    if (!braid) {
        SKIP("$BRAID not set (run through make test)");
        return;
    }
    char msgs[] = "/tmp/braid-chat-msgs-XXXXXX";
    int fd = mkstemp(msgs);
    if (fd < 0) return;
    const char *m = "[{\"role\": \"user\", \"content\": \"Hi \\\"you\\\"\"}]";
    CHECK(write(fd, m, strlen(m)) == (ssize_t)strlen(m));
    close(fd);
    char cmd[1024], out[512] = {0};
    snprintf(cmd, sizeof cmd, "%s tokenizer chat --template tests/ref/chat_templates/chatml.jinja --messages %s "
             "--add-generation-prompt", braid, msgs);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    int rc = p ? pclose(p) : -1;
    CHECK_INT(rc, 0);
    out[n] = 0;
    CHECK_STR(out, "<|im_start|>user\nHi \"you\"<|im_end|>\n<|im_start|>assistant\n");
    snprintf(cmd, sizeof cmd, "%s tokenizer chat --template tests/ref/chat_templates/gemma.jinja --messages %s "
             "--bos '<bos>' 2>/dev/null", braid, msgs);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "%s tokenizer chat --messages %s 2>/dev/null", braid, msgs);
    CHECK(system(cmd) != 0); /* neither --model nor --template */
    remove(msgs);
}

int main(void)
{
    test_cli();
    test_oracle_cases();
    test_errors();
    test_chat_api();
    return th_exit();
}
