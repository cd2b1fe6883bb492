/* braid score: the log-probability a model gives each next token of a sequence. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/fileio.h"
#include "commands.h"
#include "lm/model.h"
#include "lm/prompt.h"
#include "lm_common.h"

/* The ids to score: --tokens/--tokens-file as given, or --text/--text-file through the prompt
 * pipeline (BOS first, as generate and serve see the same text). */
static br_status score_ids(const char *tokens, const char *tokens_file, const char *text, const char *text_file,
                           const br_prompt_t *p, int32_t **ids, size_t *n)
{
    const char *file = tokens_file ? tokens_file : text_file;
    char *buf = NULL;
    size_t len = 0;
    if (file) BR_TRY(br_read_file(file[0] == '-' && !file[1] ? "/dev/stdin" : file, &buf, &len));
    br_status s;
    if (tokens || tokens_file) s = lm_parse_ids(buf ? buf : tokens, ids, n);
    else s = br_prompt_text(p, buf ? buf : text, buf ? len : strlen(text), ids, n);
    free(buf);
    return s;
}

int cmd_score(int argc, char **argv)
{
    const char *model_dir = NULL, *tokens = NULL, *tokens_file = NULL, *text = NULL, *text_file = NULL, *tok_path = NULL;
    bool sum = false;
    const opt_t opts[] = {
        {"model", OPT_STR, &model_dir, "DIR", "checkpoint or Hugging Face model folder", true},
        {"tokens", OPT_STR, &tokens, "IDS", "token ids, separated by spaces or commas", false},
        {"tokens-file", OPT_STR, &tokens_file, "FILE", "read the token ids from FILE ('-': stdin)", false},
        {"text", OPT_STR, &text, "TEXT", "score this text, tokenized as generate and serve do (BOS first)", false},
        {"text-file", OPT_STR, &text_file, "FILE", "score the text of FILE ('-': stdin)", false},
        {"tokenizer", OPT_STR, &tok_path, "PATH", "tokenizer for --text (default: DIR/tokenizer.json)", false},
        {"sum", OPT_BOOL, &sum, NULL, "print only the total log-probability and the token count", false},
    };
    cmd_spec_t spec = {"braid score --model DIR (--tokens \"IDS\" | --tokens-file FILE | --text TEXT | --text-file FILE)",
                       "Prints, one per line, the natural-log probability the model gives each next "
                       "token: line t is log p(token[t+1] | token[0..t]), so N ids give N-1 lines. "
                       "A precise hook for comparing against other implementations.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!!tokens + !!tokens_file + !!text + !!text_file != 1) {
        fprintf(stderr, "braid: error: give exactly one of --tokens, --tokens-file, --text or --text-file\n");
        return 2;
    }
    br_model_t *m = NULL;
    br_prompt_t *p = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    float *losses = NULL;
    br_status s = br_model_open(&m, model_dir); /* BF16/F16 weights stay 16-bit, in place */
    if (!s && (text || text_file)) s = lm_open_prompt(&p, model_dir, tok_path, NULL, &m->cfg);
    if (!s) s = score_ids(tokens, tokens_file, text, text_file, p, &ids, &n);
    if (!s && n < 2) s = br_error(BR_EINVAL, "need at least 2 token ids to score (got %zu)", n);
    for (size_t i = 0; !s && i < n; i++)
        if (ids[i] >= m->cfg.vocab_size)
            s = br_error(BR_EINVAL, "token id %d at position %zu is outside the vocabulary [0, %d)", ids[i], i,
                         m->cfg.vocab_size);
    float mean;
    if (!s && !(losses = malloc((n - 1) * sizeof *losses))) s = br_error(BR_ENOMEM, "out of memory");
    if (!s) s = br_model_forward_loss(m, ids, ids + 1, 1, n - 1, NULL, losses, &mean);
    if (!s) {
        double total = 0;
        for (size_t i = 0; i + 1 < n; i++) total -= losses[i];
        if (sum) printf("%.6f %zu\n", total, n - 1);
        else
            for (size_t i = 0; i + 1 < n; i++) printf("%.6f\n", -(double)losses[i]);
    }
    free(losses);
    free(ids);
    br_prompt_free(p);
    br_model_free(m);
    return s ? fail_status(s, NULL) : 0;
}
