/* braid tokenizer chat: renders a chat template for a conversation (and optionally tokenizes
 * it), the way transformers' apply_chat_template(tokenize=False) does. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/fileio.h"
#include "text/tokenizer.h"
#include "text/jinja.h"
#include "text/tokcfg.h"

int tok_chat(int argc, char **argv);

static json_t *load_json(const char *path, const char *what, int *rc)
{
    json_error_t je;
    json_t *v = json_load_file(path, 0, &je);
    if (!v) {
        fprintf(stderr, "braid: error: %s %s: not valid JSON (line %d: %s)\n", what, path, je.line, je.text);
        *rc = 1;
    }
    return v;
}

/* Prints the ids of the rendered prompt (special-token strings in it are matched). */
static int print_ids(const char *model, const char *text)
{
    br_tokenizer_t *tok = NULL;
    br_status st = br_tokenizer_load(&tok, model);
    if (st) return fail_status(st, NULL);
    int32_t *ids = NULL;
    size_t n = 0;
    st = br_tokenizer_encode(tok, text, strlen(text), 1, &ids, &n);
    for (size_t i = 0; st == BR_OK && i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    if (st == BR_OK) printf("\n");
    free(ids);
    br_tokenizer_free(tok);
    return st ? fail_status(st, NULL) : 0;
}

int tok_chat(int argc, char **argv)
{
    const char *model = NULL, *tmpl_path = NULL, *msgs_path = NULL, *tools_path = NULL, *bos = NULL, *eos = NULL;
    bool gen = false, ids = false;
    const opt_t opts[] = {
        {"messages", OPT_STR, &msgs_path, "FILE", "JSON array of {\"role\", \"content\", ...} messages", true},
        {"model", OPT_STR, &model, "DIR", "model folder: tokenizer_config.json (template, bos/eos tokens), tokenizer.json", false},
        {"template", OPT_STR, &tmpl_path, "FILE", "chat template (Jinja) file; overrides the model's", false},
        {"tools", OPT_STR, &tools_path, "FILE", "JSON array of tool definitions passed as `tools`", false},
        {"bos", OPT_STR, &bos, "STR", "bos_token (default: the model's)", false},
        {"eos", OPT_STR, &eos, "STR", "eos_token (default: the model's)", false},
        {"add-generation-prompt", OPT_BOOL, &gen, NULL, "end with the assistant turn's opening (default off)", false},
        {"ids", OPT_BOOL, &ids, NULL, "print the token ids of the result instead (needs --model)", false},
    };
    cmd_spec_t spec = {"braid tokenizer chat --messages FILE (--model DIR | --template FILE) [options]",
                       "Renders a Hugging Face chat template for the conversation and prints the prompt text "
                       "(or its token ids with --ids).  Templates are Jinja, rendered as @huggingface/jinja does.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!model && !tmpl_path) {
        fprintf(stderr, "braid: error: tokenizer chat needs --model DIR or --template FILE\n");
        return 2;
    }
    if (ids && !model) {
        fprintf(stderr, "braid: error: --ids needs --model DIR (its tokenizer.json)\n");
        return 2;
    }
    br_tokcfg_t cfg = {0};
    br_status st = model ? br_tokcfg_load(&cfg, model) : BR_OK;
    if (st) return fail_status(st, NULL);
    char *tmpl = NULL;
    size_t tl;
    if (tmpl_path && (st = br_read_file(tmpl_path, &tmpl, &tl)) != BR_OK) {
        br_tokcfg_free(&cfg);
        return fail_status(st, NULL);
    }
    json_t *msgs = load_json(msgs_path, "--messages", &rc), *tools = tools_path ? load_json(tools_path, "--tools", &rc) : NULL;
    char *out = NULL;
    if (!rc) {
        br_chat_opts_t o = {.bos_token = bos ? bos : cfg.bos_token, .eos_token = eos ? eos : cfg.eos_token,
                            .add_generation_prompt = gen, .tools = tools};
        const char *t = tmpl ? tmpl : cfg.chat_template;
        if (!t) {
            fprintf(stderr, "braid: error: %s has no chat_template (tokenizer_config.json or chat_template.jinja); "
                    "give one with --template FILE\n", model);
            rc = 1;
        } else if ((st = br_chat_render(t, msgs, &o, &out)) != BR_OK) rc = fail_status(st, NULL);
    }
    if (!rc && ids) rc = print_ids(model, out);
    else if (!rc) fputs(out, stdout);
    free(out);
    free(tmpl);
    json_decref(msgs);
    json_decref(tools);
    br_tokcfg_free(&cfg);
    return rc;
}
