/* braid generate: KV-cached sampling from a checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "args.h"
#include "commands.h"
#include "lm/generate.h"
#include "lm/gguf.h"
#include "lm/model.h"
#include "lm/prompt.h"
#include "base/buf.h"
#include "base/fileio.h"
#include "text/tokenizer.h"
#include "lm_common.h"

typedef struct {
    const br_tokenizer_t *tok;
    const char *stop;
    br_buf_t text;    /* the new tokens' bytes, as serve streams them (a SentencePiece piece keeps its space) */
    size_t n;         /* tokens generated */
    size_t printed;   /* bytes of text already written */
    bool print_ids, stopped;
} gen_ctx;

/* Streams the text so far (holding back a possible partial stop string and a partial UTF-8
 * character) and stops when the stop string appears. */
static bool on_token(void *vctx, int32_t tok)
{
    gen_ctx *c = vctx;
    if (c->print_ids) {
        printf("%s%d", c->n++ ? " " : "", tok);
        fflush(stdout);
        return true;
    }
    c->n++;
    size_t plen = 0;
    const unsigned char *piece = br_tokenizer_token_bytes(c->tok, tok, &plen); /* NULL: an id without text */
    if (piece && br_buf_append(&c->text, piece, plen)) return false;
    const char *text = c->text.data;
    size_t len = c->text.len, upto = len;
    if (c->stop && *c->stop) {
        size_t ls = strlen(c->stop);
        const char *hit = len ? memmem(text, len, c->stop, ls) : NULL;
        if (hit) {
            upto = (size_t)(hit - text);
            c->stopped = true;
        } else {
            upto = len > ls - 1 ? len - (ls - 1) : 0;
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
    return !c->stopped;
}

/* --temperature/--top-p/--top-k when given, else the model's generation_config.json, else
 * braid's defaults (0.8, 1, 0). */
static br_sampler_t sampler(const br_prompt_t *p, float temperature, float top_p, int top_k)
{
    float t = 0.8f, tp = 1.0f;
    int tk = 0;
    if (p) br_prompt_sampling(p, &t, &tp, &tk);
    return (br_sampler_t){temperature >= 0 ? temperature : t, top_k >= 0 ? top_k : tk, top_p >= 0 ? top_p : tp};
}

/* Prints what was held back for a partial stop string or UTF-8 character. */
static void flush_text(const gen_ctx *c)
{
    if (!c->print_ids && !c->stopped && c->text.len > c->printed)
        fwrite(c->text.data + c->printed, 1, c->text.len - c->printed, stdout);
}

int cmd_generate(int argc, char **argv)
{
    const char *model_dir = NULL, *tok_path = NULL, *prompt_ids = NULL, *stop = NULL, *tmpl = NULL;
    lm_prompt_flags_t pf = {0};
    int max_new = 100, top_k = -1;
    float temperature = -1, top_p = -1;
    const char *kv_type = "f32";
    long seed = 0;
    bool print_ids = false;
    const opt_t opts[] = {
        {"model", OPT_STR, &model_dir, "DIR", "checkpoint or Hugging Face model folder", true},
        {"tokenizer", OPT_STR, &tok_path, "PATH", "tokenizer.json (or GPT-2 folder / tiktoken file); needed for --prompt (default: DIR/tokenizer.json)", false},
        {"prompt", OPT_STR, &pf.text, "TEXT", "prompt text (BOS added as the model's tokenizer_config.json says)", false},
        {"chat", OPT_BOOL, &pf.chat, NULL, "send --prompt as a user message through the chat template", false},
        {"system", OPT_STR, &pf.system, "TEXT", "system message before the --prompt user message (implies --chat)", false},
        {"messages", OPT_STR, &pf.messages, "FILE", "JSON array of {\"role\", \"content\"} messages, through the chat template", false},
        {"chat-template", OPT_STR, &tmpl, "FILE", "Jinja chat template overriding the model's", false},
        {"prompt-ids", OPT_STR, &prompt_ids, "IDS", "prompt as exact token ids instead of text (nothing added)", false},
        {"n|max-tokens", OPT_INT, &max_new, "N", "new tokens to generate (default 100)", false},
        {"temperature", OPT_FLOAT, &temperature, "T", "sampling temperature; 0 = greedy (default: generation_config.json's, else 0.8)", false},
        {"top-k", OPT_INT, &top_k, "K", "sample from the K most likely tokens (default: generation_config.json's, else 0: all)", false},
        {"top-p", OPT_FLOAT, &top_p, "P", "nucleus sampling mass (default: generation_config.json's, else 1: off)", false},
        {"seed", OPT_LONG, &seed, "S", "sampling seed (default 0)", false},
        {"stop", OPT_STR, &stop, "TEXT", "stop when this text appears (not printed)", false},
        {"ids", OPT_BOOL, &print_ids, NULL, "print the new token ids instead of text", false},
        {"kv-type", OPT_STR, &kv_type, "f32|f16", "KV cache element type (default f32; f16 halves its memory)", false},
    };
    cmd_spec_t spec = {"braid generate --model DIR [--prompt TEXT [--chat] | --messages FILE | --prompt-ids IDS] [options]",
                       "Generates a continuation with a KV cache (prefill once, then one token per "
                       "step), streaming it to stdout. The prompt goes through the same pipeline as "
                       "braid serve (BOS, chat template, special tokens: docs/lm.md). Stops after -n "
                       "tokens, at any of the model's end-of-sequence ids, at --stop, or at the "
                       "context length.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    char dir_tok[4096]; /* a Hub model folder carries its tokenizer */
    if (!tok_path && !br_path_join(dir_tok, sizeof dir_tok, model_dir, "tokenizer.json") && br_file_exists(dir_tok))
        tok_path = dir_tok;
    if ((!pf.text && !pf.messages) == !prompt_ids || (pf.text && pf.messages)) {
        fprintf(stderr, "braid: error: give exactly one of --prompt, --messages or --prompt-ids\n");
        return 2;
    }
    br_kv_type kvt;
    if (br_kv_type_parse(kv_type, &kvt)) {
        fprintf(stderr, "braid: error: --kv-type: %s\n", br_errmsg());
        return 2;
    }
    if (max_new < 0 || (temperature < 0 && temperature != -1) || top_k < -1 || !(top_p == -1 || (top_p > 0 && top_p <= 1))) {
        fprintf(stderr, "braid: error: need -n >= 0, --temperature >= 0, --top-k >= 0, 0 < --top-p <= 1\n");
        return 2;
    }
    /* a .gguf file carries its tokenizer in its metadata (lm/prompt.h reads it) */
    bool need_tok = pf.text || pf.messages || !print_ids || stop;
    bool gguf_tok = !tok_path && br_gguf_is_path(model_dir) && (need_tok || br_gguf_has_tokenizer(model_dir));
    if (need_tok && !tok_path && !gguf_tok) {
        fprintf(stderr, "braid: error: --tokenizer is needed for --prompt, --messages, --stop and text output (or use --prompt-ids with --ids)\n");
        return 2;
    }
    br_prompt_t *p = NULL;
    br_model_t *m = NULL;
    int32_t *ids = NULL, *out = NULL;
    size_t n = 0, nout = 0;
    br_status s = br_model_open(&m, model_dir); /* BF16/F16 weights stay 16-bit, in place */
    if (!s) m->kv_type = kvt;
    if (!s && (tok_path || gguf_tok)) s = lm_open_prompt(&p, model_dir, tok_path, tmpl, &m->cfg);
    if (s && m && !need_tok && !tok_path) { /* ids in and out: the file's tokenizer only added its stop ids */
        fprintf(stderr, "braid: warning: %s; generating without it (stop id from the model's config)\n", br_errmsg());
        s = BR_OK;
    }
    if (!s) s = prompt_ids ? lm_parse_ids(prompt_ids, &ids, &n) : lm_prompt_ids(p, &pf, &ids, &n);
    if (!s && !stop && (pf.chat || pf.system || pf.messages)) stop = br_prompt_chat_stop(p); /* as serve's chat */
    gen_ctx c = {.tok = p ? br_prompt_tokenizer(p) : NULL, .stop = stop, .text = BR_BUF_INIT, .print_ids = print_ids};
    if (!s) {
        const int32_t *stops = &m->cfg.eos_token_id;
        size_t n_stops = p ? br_prompt_stop_ids(p, &stops) : m->cfg.eos_token_id >= 0;
        br_sampler_t smp = sampler(p, temperature, top_p, top_k);
        s = br_generate_stops(m, ids, n, (size_t)max_new, &smp, (uint64_t)seed, stops, n_stops, on_token, &c, &out, &nout);
        if (!s) flush_text(&c);
        if (!s) printf("\n");
    }
    br_buf_free(&c.text);
    free(out);
    free(ids);
    br_model_free(m);
    br_prompt_free(p);
    return s ? fail_status(s, NULL) : 0;
}
