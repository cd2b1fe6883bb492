/* braid eval: per-domain validation loss, perplexity and bits per byte of a checkpoint. */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/fileio.h"
#include "base/progress.h"
#include "commands.h"
#include "base/threads.h"
#include "lm/data.h"
#include "lm/model.h"
#include "lm/tokenizer.h"
#include "moe_report.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Domains = subfolders of data_dir holding <split>.bin, sorted. */
static br_status list_domains(const char *data_dir, const char *split, char ***out, size_t *n)
{
    DIR *d = opendir(data_dir);
    if (!d) return br_error(BR_ENOTFOUND, "%s: cannot open the token folder", data_dir);
    char **v = NULL;
    size_t k = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s/%s.bin", data_dir, e->d_name, split);
        if (!br_file_exists(p)) continue;
        char **nv = realloc(v, (k + 1) * sizeof *v);
        if (!nv) break;
        v = nv;
        v[k++] = strdup(e->d_name);
    }
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

typedef struct {
    double nats, tokens, bytes;
    bool exact_bytes;
} dom_result_t;

/* Consecutive windows of T+1 tokens (targets do not overlap) up to max_tokens targets. */
static br_status eval_domain(br_model_t *m, const char *path, size_t B, size_t T, size_t max_tokens,
                             const br_tokenizer_t *tok, const size_t *tok_bytes, dom_result_t *r,
                             br_progress_t *bar, double *done)
{
    br_shard_t *sh;
    BR_TRY(br_shard_open(&sh, path));
    size_t n = br_shard_ntokens(sh);
    br_status s = BR_OK;
    if (br_shard_vocab(sh) > (uint32_t)m->cfg.vocab_size)
        s = br_error(BR_EINVAL, "%s: shard vocabulary %u is larger than the model's %d", path, br_shard_vocab(sh),
                     m->cfg.vocab_size);
    if (!s && n < 2) s = br_error(BR_EFORMAT, "%s: fewer than 2 tokens", path);
    size_t nwin = n > 1 ? (n - 1) / T : 0, Tlast = 0;
    if (nwin == 0 && n > 1) Tlast = n - 1; /* a shard shorter than one window: one short window */
    size_t maxwin = (max_tokens + T - 1) / T;
    if (nwin > maxwin) nwin = maxwin;
    int32_t *buf = malloc(B * (T + 1) * sizeof *buf), *in = malloc(B * T * sizeof *in), *tg = malloc(B * T * sizeof *tg);
    float *losses = malloc(B * T * sizeof *losses);
    if (!buf || !in || !tg || !losses) s = br_error(BR_ENOMEM, "out of memory");
    memset(r, 0, sizeof *r);
    for (size_t w0 = 0; !s && (w0 < nwin || (Tlast && w0 == 0)); w0 += B) {
        size_t nb = nwin - w0 < B ? nwin - w0 : B, TT = T;
        if (Tlast) nb = 1, TT = Tlast;
        for (size_t b = 0; b < nb && !s; b++) s = br_shard_read(sh, (w0 + b) * T, TT + 1, buf + b * (TT + 1));
        for (size_t b = 0; b < nb; b++)
            for (size_t t = 0; t < TT; t++) {
                in[b * TT + t] = buf[b * (TT + 1) + t];
                tg[b * TT + t] = buf[b * (TT + 1) + t + 1];
            }
        float mean;
        if (!s) s = br_model_forward_loss(m, in, tg, nb, TT, NULL, losses, &mean);
        for (size_t i = 0; i < nb * TT && !s; i++) {
            r->nats += losses[i];
            if (tok_bytes) r->bytes += (double)tok_bytes[tg[i]];
        }
        r->tokens += (double)(nb * TT);
        *done += (double)(nb * TT);
        br_progress_update(bar, *done);
        if (Tlast) break;
    }
    if (!s && !tok_bytes) /* bytes in proportion to the tokens evaluated (header byte count) */
        r->bytes = (double)br_shard_nbytes(sh) * r->tokens / (double)n;
    r->exact_bytes = tok_bytes != NULL;
    (void)tok;
    free(buf);
    free(in);
    free(tg);
    free(losses);
    br_shard_close(sh);
    return s;
}

int cmd_eval(int argc, char **argv)
{
    const char *model_dir = NULL, *data = NULL, *domains_arg = NULL, *split = "val", *json_path = NULL,
               *tok_path = NULL, *format = "markdown";
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
    };
    cmd_spec_t spec = {"braid eval --model DIR --data DIR [options]",
                       "Per-domain validation loss (nats/token), perplexity and bits per byte over "
                       "consecutive non-overlapping windows of each domain's shard, as a markdown "
                       "table (or JSON) on stdout and optionally a JSON file.",
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
    br_tokenizer_t *tok = NULL;
    size_t *tok_bytes = NULL;
    char **doms = NULL;
    size_t nd = 0;
    br_status s = br_model_load(&m, model_dir, false);
    if (!s && tok_path) {
        s = br_tokenizer_load(&tok, tok_path);
        if (!s) {
            size_t V = (size_t)m->cfg.vocab_size;
            tok_bytes = calloc(V, sizeof *tok_bytes);
            for (size_t i = 0; i < V && i < br_tokenizer_vocab_size(tok); i++) {
                int32_t id = (int32_t)i;
                char *txt;
                size_t len;
                if (!br_tokenizer_decode(tok, &id, 1, &txt, &len)) {
                    tok_bytes[i] = len;
                    free(txt);
                }
            }
        }
    }
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
    if (s) {
        for (size_t i = 0; i < nd; i++) free(doms[i]);
        free(doms);
        free(tok_bytes);
        br_model_free(m);
        br_tokenizer_free(tok);
        return fail_status(s, NULL);
    }
    dom_result_t *res = calloc(nd, sizeof *res);
    br_progress_t bar;
    br_progress_start(&bar, "eval", 0, "tok");
    double done = 0;
    uint64_t *routes = moe_routing_alloc(m, nd); /* MoE: routing counts per domain (moe_report.c) */
    for (size_t i = 0; i < nd && !s; i++) {
        if (routes) m->route_counts = routes + i * (size_t)m->cfg.num_hidden_layers * (size_t)m->cfg.num_local_experts;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/%s.bin", data, doms[i], split);
        s = eval_domain(m, path, (size_t)batch, T, (size_t)max_tokens, tok, tok_bytes, &res[i], &bar, &done);
        if (s) s = br_error_wrap(s, "domain %s", doms[i]);
    }
    m->route_counts = NULL;
    br_progress_finish(&bar);
    json_t *root = json_object(), *jd = json_object();
    double all_n = 0, all_t = 0, all_b = 0;
    if (!s) {
        if (!strcmp(format, "markdown")) {
            printf("| domain | tokens | loss (nats/token) | perplexity | bits/byte |\n");
            printf("|---|---:|---:|---:|---:|\n");
        }
        for (size_t i = 0; i < nd; i++) {
            dom_result_t *r = &res[i];
            double loss = r->nats / r->tokens, bpb = r->bytes > 0 ? r->nats / log(2.0) / r->bytes : NAN;
            all_n += r->nats;
            all_t += r->tokens;
            all_b += r->bytes;
            json_object_set_new(jd, doms[i], json_pack("{s:f, s:f, s:f, s:I, s:f}", "loss", loss, "perplexity",
                                                       exp(loss), "bits_per_byte", bpb, "tokens",
                                                       (json_int_t)r->tokens, "bytes", r->bytes));
            if (!strcmp(format, "markdown"))
                printf("| %s | %.0f | %.4f | %.2f | %.4f |\n", doms[i], r->tokens, loss, exp(loss), bpb);
        }
        double loss = all_n / all_t, bpb = all_b > 0 ? all_n / log(2.0) / all_b : NAN;
        if (!strcmp(format, "markdown") && nd > 1)
            printf("| **all** | %.0f | %.4f | %.2f | %.4f |\n", all_t, loss, exp(loss), bpb);
        json_object_set_new(root, "model", json_string(model_dir));
        json_object_set_new(root, "data", json_string(data));
        json_object_set_new(root, "split", json_string(split));
        json_object_set_new(root, "seq", json_integer((json_int_t)T));
        json_object_set_new(root, "bytes", json_string(tok ? "exact (tokenizer)" : "shard byte count, proportional"));
        json_object_set_new(root, "domains", jd);
        json_object_set_new(root, "all", json_pack("{s:f, s:f, s:f, s:I}", "loss", loss, "perplexity", exp(loss),
                                                   "bits_per_byte", bpb, "tokens", (json_int_t)all_t));
        moe_routing_report(m, model_dir, doms, nd, routes, !strcmp(format, "markdown"), root);
        char *txt = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7));
        if (!strcmp(format, "json")) printf("%s\n", txt);
        if (json_path) s = br_write_file_atomic(json_path, txt, strlen(txt));
        free(txt);
    } else {
        json_decref(jd);
    }
    json_decref(root);
    for (size_t i = 0; i < nd; i++) free(doms[i]);
    free(doms);
    free(res);
    free(routes);
    free(tok_bytes);
    br_tokenizer_free(tok);
    br_model_free(m);
    return s ? fail_status(s, NULL) : 0;
}
