/* braid generate: KV-cached sampling from a checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "args.h"
#include "commands.h"
#include "lm/generate.h"
#include "lm/gguf.h"
#include "lm/model.h"
#include "base/fileio.h"
#include "text/tokenizer.h"
#include "lm_common.h"

typedef struct {
    const br_tokenizer_t *tok;
    const char *stop;
    int32_t *ids;     /* generated so far */
    size_t n, cap;
    size_t printed;   /* bytes of the decoded text already written */
    bool print_ids, stopped;
} gen_ctx;

/* Streams the text decoded so far (holding back a possible partial stop string) and stops
 * when the stop string appears. */
static bool on_token(void *vctx, int32_t tok)
{
    gen_ctx *c = vctx;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? 2 * c->cap : 256;
        int32_t *p = realloc(c->ids, ncap * sizeof *p);
        if (!p) return false;
        c->ids = p;
        c->cap = ncap;
    }
    c->ids[c->n++] = tok;
    if (c->print_ids) {
        printf("%s%d", c->n > 1 ? " " : "", tok);
        fflush(stdout);
        return true;
    }
    char *text;
    size_t len;
    if (br_tokenizer_decode(c->tok, c->ids, c->n, &text, &len)) return false;
    size_t upto = len;
    if (c->stop && *c->stop) {
        char *hit = strstr(text, c->stop);
        if (hit) {
            upto = (size_t)(hit - text);
            c->stopped = true;
        } else {
            size_t hold = strlen(c->stop) - 1;
            upto = len > hold ? len - hold : 0;
        }
    }
    /* do not print a trailing incomplete UTF-8 sequence yet */
    if (!c->stopped) {
        size_t k = upto;
        while (k > 0 && upto - k < 3 && ((unsigned char)text[k - 1] & 0xC0) == 0x80) k--;
        if (k > 0 && (unsigned char)text[k - 1] >= 0xC0) {
            unsigned char lead = (unsigned char)text[k - 1];
            size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (upto - (k - 1) < need) upto = k - 1;
        }
    }
    if (upto > c->printed) {
        fwrite(text + c->printed, 1, upto - c->printed, stdout);
        fflush(stdout);
        c->printed = upto;
    }
    free(text);
    return !c->stopped;
}

int cmd_generate(int argc, char **argv)
{
    const char *model_dir = NULL, *tok_path = NULL, *prompt = NULL, *prompt_ids = NULL, *stop = NULL;
    int max_new = 100, top_k = 0;
    float temperature = 0.8f, top_p = 1.0f;
    long seed = 0;
    bool print_ids = false;
    const opt_t opts[] = {
        {"model", OPT_STR, &model_dir, "DIR", "checkpoint directory", true},
        {"tokenizer", OPT_STR, &tok_path, "PATH", "tokenizer.json (or GPT-2 folder / tiktoken file); needed for --prompt (default: DIR/tokenizer.json when present)", false},
        {"prompt", OPT_STR, &prompt, "TEXT", "prompt text", false},
        {"prompt-ids", OPT_STR, &prompt_ids, "IDS", "prompt as token ids instead of text", false},
        {"n|max-tokens", OPT_INT, &max_new, "N", "new tokens to generate (default 100)", false},
        {"temperature", OPT_FLOAT, &temperature, "T", "sampling temperature; 0 = greedy (default 0.8)", false},
        {"top-k", OPT_INT, &top_k, "K", "sample from the K most likely tokens (default 0: all)", false},
        {"top-p", OPT_FLOAT, &top_p, "P", "nucleus sampling mass (default 1: off)", false},
        {"seed", OPT_LONG, &seed, "S", "sampling seed (default 0)", false},
        {"stop", OPT_STR, &stop, "TEXT", "stop when this text appears (not printed)", false},
        {"ids", OPT_BOOL, &print_ids, NULL, "print the new token ids instead of text", false},
    };
    cmd_spec_t spec = {"braid generate --model DIR [--tokenizer T --prompt TEXT | --prompt-ids IDS] [options]",
                       "Generates a continuation with a KV cache (prefill once, then one token per "
                       "step), streaming it to stdout. Stops after -n tokens, at the end-of-text "
                       "token, at --stop, or at the context length.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    char dir_tok[4096]; /* a Hub model folder carries its tokenizer */
    if (!tok_path && !br_path_join(dir_tok, sizeof dir_tok, model_dir, "tokenizer.json") && br_file_exists(dir_tok))
        tok_path = dir_tok;
    br_tokenizer_t *gguf_tok = NULL; /* a .gguf file carries its tokenizer in its metadata */
    size_t ml = strlen(model_dir);
    if (!tok_path && ml > 5 && !strcasecmp(model_dir + ml - 5, ".gguf")) {
        br_status ts = br_gguf_load_tokenizer(&gguf_tok, model_dir);
        if (ts && ts != BR_ENOTFOUND) fprintf(stderr, "braid: warning: %s\n", br_errmsg());
    }
    if (!prompt == !prompt_ids) {
        fprintf(stderr, "braid: error: give exactly one of --prompt or --prompt-ids\n");
        br_tokenizer_free(gguf_tok);
        return 2;
    }
    if ((prompt || !print_ids || stop) && !tok_path && !gguf_tok) {
        fprintf(stderr, "braid: error: --tokenizer is needed for --prompt, --stop and text output (or use --prompt-ids with --ids)\n");
        return 2;
    }
    if (max_new < 0 || temperature < 0 || top_k < 0 || !(top_p > 0 && top_p <= 1)) {
        fprintf(stderr, "braid: error: need -n >= 0, --temperature >= 0, --top-k >= 0, 0 < --top-p <= 1\n");
        br_tokenizer_free(gguf_tok);
        return 2;
    }
    br_tokenizer_t *tok = gguf_tok;
    br_model_t *m = NULL;
    int32_t *ids = NULL, *out = NULL;
    size_t n = 0, nout = 0;
    br_status s = BR_OK;
    if (tok_path) s = br_tokenizer_load(&tok, tok_path);
    if (!s) s = br_model_open(&m, model_dir); /* BF16/F16 weights stay 16-bit, in place */
    if (!s && tok && br_tokenizer_vocab_size(tok) > (size_t)m->cfg.vocab_size)
        s = br_error(BR_EINVAL, "tokenizer has %zu ids but the model only %d", br_tokenizer_vocab_size(tok),
                     m->cfg.vocab_size);
    if (!s) s = prompt ? br_tokenizer_encode(tok, prompt, strlen(prompt), 1, &ids, &n) : lm_parse_ids(prompt_ids, &ids, &n);
    gen_ctx c = {tok, stop, NULL, 0, 0, 0, print_ids, false};
    if (!s) {
        int32_t eos = tok ? br_tokenizer_eos_id(tok) : -1;
        if (eos < 0) eos = m->cfg.eos_token_id;
        br_sampler_t smp = {temperature, top_k, top_p};
        s = br_generate(m, ids, n, (size_t)max_new, &smp, (uint64_t)seed, eos, on_token, &c, &out, &nout);
        if (!s && !print_ids && !c.stopped && c.n) { /* flush what was held back */
            char *text;
            size_t len;
            if (!br_tokenizer_decode(tok, c.ids, c.n, &text, &len)) {
                if (len > c.printed) fwrite(text + c.printed, 1, len - c.printed, stdout);
                free(text);
            }
        }
        if (!s) printf("\n");
    }
    free(c.ids);
    free(out);
    free(ids);
    br_model_free(m);
    br_tokenizer_free(tok);
    return s ? fail_status(s, NULL) : 0;
}
