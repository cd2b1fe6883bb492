/* libFuzzer: arbitrary bytes as a chat template must parse and render (with a fixed
 * conversation) or fail with a status and a message, never crash, leak or hang; the budgets are
 * small so that each input finishes quickly. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *vars;
    if (!vars)
        vars = json_loads("{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
                          "{\"role\": \"user\", \"content\": \"Hi \\\"there\\\"\\n\\u00e9\"},"
                          "{\"role\": \"assistant\", \"content\": \"<think>x</think>ok\", \"tool_calls\": "
                          "[{\"function\": {\"name\": \"f\", \"arguments\": {\"a\": [1, 2.5, null]}}}]}],"
                          "\"tools\": [{\"name\": \"f\"}], \"add_generation_prompt\": true,"
                          "\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}", 0, NULL);
    br_jinja_t *t = NULL;
    if (br_jinja_parse(&t, (const char *)data, size) != BR_OK) {
        if (!*br_errmsg()) abort(); /* a refusal always says why */
        return 0;
    }
    char *out = NULL;
    size_t n = 0;
    if (br_jinja_render_budget(t, vars, 16u << 20, 200000, &out, &n) == BR_OK) {
        if (strlen(out) > n) abort();
        free(out);
    } else if (!*br_errmsg()) abort();
    br_jinja_free(t);
    return 0;
}
