/* braid score: the log-probability a model gives each next token of a sequence. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "base/fileio.h"
#include "commands.h"
#include "lm/model.h"
#include "lm_common.h"

int cmd_score(int argc, char **argv)
{
    const char *model_dir = NULL, *tokens = NULL, *tokens_file = NULL;
    bool sum = false;
    const opt_t opts[] = {
        {"model", OPT_STR, &model_dir, "DIR", "checkpoint directory (config.json + model.safetensors)", true},
        {"tokens", OPT_STR, &tokens, "IDS", "token ids, separated by spaces or commas", false},
        {"tokens-file", OPT_STR, &tokens_file, "FILE", "read the token ids from FILE ('-': stdin)", false},
        {"sum", OPT_BOOL, &sum, NULL, "print only the total log-probability and the token count", false},
    };
    cmd_spec_t spec = {"braid score --model DIR (--tokens \"IDS\" | --tokens-file FILE)",
                       "Prints, one per line, the natural-log probability the model gives each next "
                       "token: line t is log p(token[t+1] | token[0..t]), so N ids give N-1 lines. "
                       "A precise hook for comparing against other implementations.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!tokens == !tokens_file) {
        fprintf(stderr, "braid: error: give exactly one of --tokens or --tokens-file\n");
        return 2;
    }
    char *text = NULL;
    if (tokens_file) {
        size_t len;
        br_status s = br_read_file(tokens_file[0] == '-' && !tokens_file[1] ? "/dev/stdin" : tokens_file, &text, &len);
        if (s) return fail_status(s, NULL);
    }
    int32_t *ids;
    size_t n;
    br_status s = lm_parse_ids(text ? text : tokens, &ids, &n);
    free(text);
    if (s) return fail_status(s, NULL);
    if (n < 2) {
        free(ids);
        fprintf(stderr, "braid: error: need at least 2 token ids to score (got %zu)\n", n);
        return 1;
    }
    br_model_t *m;
    s = br_model_open(&m, model_dir); /* BF16/F16 weights stay 16-bit, in place */
    if (s) {
        free(ids);
        return fail_status(s, NULL);
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= m->cfg.vocab_size) {
            fprintf(stderr, "braid: error: token id %d at position %zu is outside the vocabulary [0, %d)\n",
                    ids[i], i, m->cfg.vocab_size);
            free(ids);
            br_model_free(m);
            return 1;
        }
    float *losses = malloc((n - 1) * sizeof *losses), mean;
    s = br_model_forward_loss(m, ids, ids + 1, 1, n - 1, NULL, losses, &mean);
    if (!s) {
        double total = 0;
        for (size_t i = 0; i + 1 < n; i++) total -= losses[i];
        if (sum) printf("%.6f %zu\n", total, n - 1);
        else
            for (size_t i = 0; i + 1 < n; i++) printf("%.6f\n", -(double)losses[i]);
    }
    free(losses);
    free(ids);
    br_model_free(m);
    return s ? fail_status(s, NULL) : 0;
}
