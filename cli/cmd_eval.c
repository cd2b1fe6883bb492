/* braid eval: per-domain validation loss, perplexity and bits per byte of a checkpoint. */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/buf.h"
#include "base/fileio.h"
#include "base/progress.h"
#include "commands.h"
#include "base/threads.h"
#include "lm/eval.h"
#include "lm/model.h"
#include "text/tokenizer.h"
#include "moe/provenance.h"
#include "moe/routing_report.h"
#include "plot/routing.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Domains = subfolders of data_dir holding <split>.bin, sorted. */
static br_status list_domains(const char *data_dir, const char *split, char ***out, size_t *n)
{
    DIR *d = opendir(data_dir);
    if (!d) return br_error(BR_ENOTFOUND, "%s: cannot open the token folder", data_dir);
    char **v = NULL;
    size_t k = 0;
    struct dirent *e;
    br_buf_t p = BR_BUF_INIT;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        br_buf_clear(&p);
        if (br_buf_printf(&p, "%s/%s/%s.bin", data_dir, e->d_name, split)) break;
        if (!br_file_exists(br_buf_str(&p))) continue;
        char **nv = realloc(v, (k + 1) * sizeof *v);
        if (!nv) break;
        v = nv;
        v[k++] = strdup(e->d_name);
    }
    br_buf_free(&p);
    closedir(d);
    if (k == 0) {
        free(v);
        return br_error(BR_ENOTFOUND, "%s: no <domain>/%s.bin shards (run 'braid data prepare')", data_dir, split);
    }
    qsort(v, k, sizeof *v, cmp_str);
    *out = v;
    *n = k;
    return BR_OK;
}

/* Token counts on a progress bar. */
static void on_progress(void *ctx, double done) { br_progress_update(ctx, done); }

/* (V) bytes of each token's text, from the tokenizer: exact bits per byte. */
static br_status token_bytes(const char *tok_path, size_t V, size_t **out)
{
    br_tokenizer_t *tok;
    BR_TRY(br_tokenizer_load(&tok, tok_path));
    size_t *tb = calloc(V, sizeof *tb);
    if (!tb) {
        br_tokenizer_free(tok);
        return br_error(BR_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < V && i < br_tokenizer_vocab_size(tok); i++) {
        int32_t id = (int32_t)i;
        char *txt;
        size_t len;
        if (!br_tokenizer_decode(tok, &id, 1, &txt, &len)) {
            tb[i] = len;
            free(txt);
        }
    }
    br_tokenizer_free(tok);
    *out = tb;
    return BR_OK;
}

/* The routing heat map of an MoE (--routing FILE.svg): one panel per domain, layers x experts. */
static br_status write_routing_svg(const char *path, const br_model_t *m, const char *model_dir, char *const *doms,
                                   size_t nd, const uint64_t *routes)
{
    double *sh;
    BR_TRY(br_routing_shares(m, routes, nd, &sh));
    size_t L = (size_t)m->cfg.num_hidden_layers, E = (size_t)m->cfg.num_local_experts;
    char **own = br_provenance_expert_domains(model_dir, E);
    char title[512];
    snprintf(title, sizeof title, "%.300s: share of each domain's tokens sent to each FFN expert (top-%d), per layer",
             model_dir, m->cfg.num_experts_per_tok ? m->cfg.num_experts_per_tok : 1);
    br_status s = br_plot_routing(path, title, (const char *const *)doms, nd, L, E, (const char *const *)own, sh);
    for (size_t j = 0; own && j < E; j++) free(own[j]);
    free(own);
    free(sh);
    return s;
}

int cmd_eval(int argc, char **argv)
{
    const char *model_dir = NULL, *data = NULL, *domains_arg = NULL, *split = "val", *json_path = NULL,
               *tok_path = NULL, *format = "markdown", *routing_svg = NULL;
    int batch = 8, seq = 0, threads = 0;
    long max_tokens = 262144;
    const opt_t opts[] = {
        {"model", OPT_STR, &model_dir, "DIR", "checkpoint directory", true},
        {"data", OPT_STR, &data, "DIR", "token shards DIR/<domain>/<split>.bin", true},
        {"domains", OPT_STR, &domains_arg, "LIST", "comma-separated domains (default: every domain in DIR)", false},
        {"split", OPT_STR, &split, "NAME", "shard split (default val)", false},
        {"seq", OPT_INT, &seq, "T", "window length (default: min(context, 512))", false},
        {"batch", OPT_INT, &batch, "B", "windows per forward pass (default 8)", false},
        {"max-tokens", OPT_LONG, &max_tokens, "N", "evaluate at most N tokens per domain (default 262144)", false},
        {"tokenizer", OPT_STR, &tok_path, "PATH", "count bytes exactly by decoding each target token (default: from the shard's byte count)", false},
        {"json", OPT_STR, &json_path, "FILE", "also write the results as JSON to FILE", false},
        {"format", OPT_STR, &format, "F", "stdout format: markdown (default) or json", false},
        {"threads", OPT_INT, &threads, "N", "threads (default: BRAID_THREADS or all cores)", false},
        {"routing", OPT_STR, &routing_svg, "FILE.svg", "MoE: also write the routing heat map (one panel per domain: layers x experts, share of the domain's tokens)", false},
    };
    cmd_spec_t spec = {"braid eval --model DIR --data DIR [options]",
                       "Per-domain validation loss (nats/token), perplexity and bits per byte over "
                       "consecutive non-overlapping windows of each domain's shard, as a markdown "
                       "table (or JSON) on stdout and optionally a JSON file.  On a mixture of experts also "
                       "the routing per layer: the share of each domain's tokens sent to each FFN expert "
                       "(--routing FILE.svg draws it as heat maps).",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (strcmp(format, "markdown") && strcmp(format, "json")) {
        fprintf(stderr, "braid: error: --format must be markdown or json\n");
        return 2;
    }
    if (batch < 1 || seq < 0 || max_tokens < 1) {
        fprintf(stderr, "braid: error: --batch and --max-tokens must be positive, --seq >= 0 (0: default)\n");
        return 2;
    }
    if (threads > 0) br_set_threads(threads);
    br_model_t *m = NULL;
    size_t *tok_bytes = NULL;
    char **doms = NULL;
    size_t nd = 0;
    br_status s = br_model_open(&m, model_dir); /* BF16/F16 weights stay 16-bit, in place */
    if (!s && tok_path) s = token_bytes(tok_path, (size_t)m->cfg.vocab_size, &tok_bytes);
    if (!s) {
        if (domains_arg) {
            char *copy = strdup(domains_arg), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                doms = realloc(doms, (nd + 1) * sizeof *doms);
                doms[nd++] = strdup(t);
            }
            free(copy);
            if (!nd) s = br_error(BR_EINVAL, "--domains is empty");
        } else {
            s = list_domains(data, split, &doms, &nd);
        }
    }
    size_t T = 0;
    if (!s) T = seq ? (size_t)seq : (m->cfg.max_position_embeddings < 512 ? (size_t)m->cfg.max_position_embeddings : 512);
    if (!s && T > (size_t)m->cfg.max_position_embeddings)
        s = br_error(BR_EINVAL, "--seq %zu is longer than the model's context (%d)", T, m->cfg.max_position_embeddings);
    br_eval_sum_t *res = calloc(nd ? nd : 1, sizeof *res);
    uint64_t *routes = s ? NULL : br_routing_counts_alloc(m, nd); /* MoE: routing counts per domain */
    if (!s && !res) s = br_error(BR_ENOMEM, "out of memory");
    if (!s && routing_svg && !routes)
        s = br_error(BR_EINVAL, "--routing: %s is not a mixture of experts (no FFN router to report)", model_dir);
    br_progress_t bar;
    br_eval_opts_t eo = {data, split, doms, nd, (size_t)batch, T, (size_t)max_tokens, tok_bytes, on_progress, &bar, false};
    if (!s) {
        br_progress_start(&bar, "eval", 0, "tok");
        s = br_eval_domains(&m, 1, &eo, res, routes);
        br_progress_finish(&bar);
    }
    if (!s) {
        bool md = !strcmp(format, "markdown");
        json_t *root = json_object();
        json_object_set_new(root, "model", json_string(model_dir));
        json_object_set_new(root, "data", json_string(data));
        json_object_set_new(root, "split", json_string(split));
        json_object_set_new(root, "seq", json_integer((json_int_t)T));
        json_object_set_new(root, "bytes", json_string(tok_bytes ? "exact (tokenizer)" : "shard byte count, proportional"));
        br_eval_report(&eo, res, root, md ? stdout : NULL);
        br_routing_report(m, model_dir, doms, nd, routes, md ? stdout : NULL, root);
        char *txt = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7));
        if (!strcmp(format, "json")) printf("%s\n", txt);
        if (json_path) s = br_write_file_atomic(json_path, txt, strlen(txt));
        if (!s && routing_svg) s = write_routing_svg(routing_svg, m, model_dir, doms, nd, routes);
        free(txt);
        json_decref(root);
    }
    for (size_t i = 0; i < nd; i++) free(doms[i]);
    free(doms);
    free(res);
    free(routes);
    free(tok_bytes);
    br_model_free(m);
    return s ? fail_status(s, NULL) : 0;
}
