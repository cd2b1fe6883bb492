/* braid btm: Branch-Train-Merge, the no-MoE baseline of the upcycling papers: the experts'
 * next-token distributions mixed, p(y) = sum_i w_i p_i(y), with w_i the posterior over experts
 * given the window's prefix (--weights posterior, the BTM paper's ensemble: w_i(t) ∝
 * prod_{s<t} p_i(x_s), uniform prior) or w_i = 1/n (--weights uniform), evaluated like braid eval
 * (consecutive non-overlapping windows of each domain's shard, bits per byte from the shard's
 * byte count): br_eval_domains with several models (lm/eval.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/fileio.h"
#include "base/progress.h"
#include "commands.h"
#include "base/threads.h"
#include "lm/eval.h"
#include "lm/model.h"

static int split(char *s, char **items, int cap)
{
    int n = 0;
    for (char *p = s; p && *p;) {
        char *c = strchr(p, ',');
        if (c) *c = 0;
        if (*p) {
            if (n == cap) return -1;
            items[n++] = p;
        }
        p = c ? c + 1 : NULL;
    }
    return n;
}

/* Token counts on a progress bar. */
static void on_progress(void *ctx, double done) { br_progress_update(ctx, done); }

int cmd_btm(int argc, char **argv)
{
    const char *experts = NULL, *data = NULL, *domains = NULL, *split_name = "val", *json_path = NULL;
    const char *weights = "posterior";
    int batch = 8, seq = 0, threads = 0;
    long max_tokens = 262144;
    const opt_t opts[] = {
        {"experts", OPT_STR, &experts, "DIR,DIR,..", "dense expert checkpoints (same vocabulary)", true},
        {"data", OPT_STR, &data, "DIR", "token shards DIR/<domain>/<split>.bin", true},
        {"domains", OPT_STR, &domains, "LIST", "comma-separated domains", true},
        {"weights", OPT_STR, &weights, "W", "posterior (default: by the prefix likelihoods, as in the BTM paper) or uniform", false},
        {"split", OPT_STR, &split_name, "NAME", "shard split (default val)", false},
        {"seq", OPT_INT, &seq, "T", "window length (default: min(context, 512))", false},
        {"batch", OPT_INT, &batch, "B", "windows per forward pass (default 8)", false},
        {"max-tokens", OPT_LONG, &max_tokens, "N", "at most N tokens per domain (default 262144)", false},
        {"json", OPT_STR, &json_path, "FILE", "also write the results as JSON", false},
        {"threads", OPT_INT, &threads, "N", "threads (default: BRAID_THREADS or all cores)", false},
    };
    cmd_spec_t spec = {"braid btm --experts DIR,DIR,.. --data DIR --domains LIST [options]",
                       "Evaluates the Branch-Train-Merge ensemble (the experts' output "
                       "distributions mixed, weighted by the posterior over experts given the "
                       "window so far, or uniformly) per domain: loss, perplexity, bits per byte, "
                       "in the same table format as braid eval.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (batch < 1 || seq < 0 || max_tokens < 1) {
        fprintf(stderr, "braid: error: --batch, --seq and --max-tokens must be positive\n");
        return 2;
    }
    bool posterior = !strcmp(weights, "posterior");
    if (!posterior && strcmp(weights, "uniform")) {
        fprintf(stderr, "braid: error: --weights must be posterior or uniform (got '%s')\n", weights);
        return 2;
    }
    if (threads > 0) br_set_threads(threads);
    char *eb = strdup(experts), *db = strdup(domains);
    char *ex[64], *dm[64];
    int ne = split(eb, ex, 64), nd = split(db, dm, 64);
    br_model_t *ms[64] = {0};
    br_status s = BR_OK;
    if (ne < 1 || nd < 1) s = br_error(BR_EINVAL, "btm: give at least one expert and one domain (at most 64 each)");
    for (int i = 0; i < ne && !s; i++) {
        s = br_model_load(&ms[i], ex[i], false);
        if (!s && ms[i]->cfg.vocab_size != ms[0]->cfg.vocab_size)
            s = br_error(BR_EINVAL, "btm: expert %s has vocabulary %d, the first has %d", ex[i],
                         ms[i]->cfg.vocab_size, ms[0]->cfg.vocab_size);
    }
    size_t T = 0, B = (size_t)batch;
    if (!s) {
        int ctx = ms[0]->cfg.max_position_embeddings;
        for (int i = 1; i < ne; i++) ctx = ms[i]->cfg.max_position_embeddings < ctx ? ms[i]->cfg.max_position_embeddings : ctx;
        T = seq ? (size_t)seq : (size_t)(ctx < 512 ? ctx : 512);
        if (T > (size_t)ctx) s = br_error(BR_EINVAL, "btm: --seq %zu is longer than the context (%d)", T, ctx);
    }
    br_eval_sum_t *sums = calloc((size_t)(nd > 0 ? nd : 1), sizeof *sums);
    if (!s && !sums) s = br_error(BR_ENOMEM, "out of memory");
    br_progress_t bar;
    br_eval_opts_t eo = {data, split_name, dm, (size_t)(nd > 0 ? nd : 0), B, T, (size_t)max_tokens, NULL, on_progress, &bar, posterior};
    if (!s) {
        br_progress_start(&bar, "btm eval", (double)nd * (double)max_tokens, "tok");
        s = br_eval_domains(ms, (size_t)ne, &eo, sums, NULL);
        br_progress_finish(&bar);
    }
    json_t *root = json_object();
    if (!s) {
        json_t *je = json_array();
        for (int i = 0; i < ne; i++) json_array_append_new(je, json_string(ex[i]));
        json_object_set_new(root, "model", json_string("btm"));
        json_object_set_new(root, "experts", je);
        json_object_set_new(root, "weights", json_string(posterior ? "posterior" : "uniform"));
        br_eval_report(&eo, sums, root, stdout);
        if (json_path) {
            char *txt = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7));
            s = txt ? br_write_file_atomic(json_path, txt, strlen(txt)) : br_error(BR_ENOMEM, "out of memory");
            free(txt);
        }
    }
    json_decref(root);
    for (int i = 0; i < ne && i < 64; i++) br_model_free(ms[i]);
    free(sums), free(eb), free(db);
    return s ? fail_status(s, "btm") : 0;
}
