/* braid btm: Branch-Train-Merge, the no-MoE baseline of the upcycling papers: the experts'
 * next-token distributions averaged, p(y) = (1/n) sum_i p_i(y), evaluated like braid eval
 * (consecutive non-overlapping windows of each domain's shard, bits per byte from the shard's
 * byte count).  Only p_i(target) is needed, so each expert runs its plain forward loss. */
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

int cmd_btm(int argc, char **argv)
{
    const char *experts = NULL, *data = NULL, *domains = NULL, *split_name = "val", *json_path = NULL;
    int batch = 8, seq = 0, threads = 0;
    long max_tokens = 262144;
    const opt_t opts[] = {
        {"experts", OPT_STR, &experts, "DIR,DIR,..", "dense expert checkpoints (same vocabulary)", true},
        {"data", OPT_STR, &data, "DIR", "token shards DIR/<domain>/<split>.bin", true},
        {"domains", OPT_STR, &domains, "LIST", "comma-separated domains", true},
        {"split", OPT_STR, &split_name, "NAME", "shard split (default val)", false},
        {"seq", OPT_INT, &seq, "T", "window length (default: min(context, 512))", false},
        {"batch", OPT_INT, &batch, "B", "windows per forward pass (default 8)", false},
        {"max-tokens", OPT_LONG, &max_tokens, "N", "at most N tokens per domain (default 262144)", false},
        {"json", OPT_STR, &json_path, "FILE", "also write the results as JSON", false},
        {"threads", OPT_INT, &threads, "N", "threads (default: BRAID_THREADS or all cores)", false},
    };
    cmd_spec_t spec = {"braid btm --experts DIR,DIR,.. --data DIR --domains LIST [options]",
                       "Evaluates the Branch-Train-Merge ensemble (the experts' output "
                       "distributions averaged) per domain: loss, perplexity, bits per byte, "
                       "in the same table format as braid eval.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (batch < 1 || seq < 0 || max_tokens < 1) {
        fprintf(stderr, "braid: error: --batch, --seq and --max-tokens must be positive\n");
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
    int32_t *buf = malloc(B * (T + 1) * sizeof *buf), *in = malloc(B * T * sizeof *in), *tg = malloc(B * T * sizeof *tg);
    float *loss = malloc(B * T * sizeof *loss);
    double *p = malloc(B * T * sizeof *p);
    if (!s && (!buf || !in || !tg || !loss || !p)) s = br_error(BR_ENOMEM, "out of memory");
    json_t *root = json_object(), *jd = json_object();
    br_progress_t bar;
    br_progress_start(&bar, "btm eval", (double)nd * (double)max_tokens, "tok");
    double done = 0, all_n = 0, all_t = 0, all_b = 0;
    if (!s) {
        printf("| domain | tokens | loss (nats/token) | perplexity | bits/byte |\n|---|---:|---:|---:|---:|\n");
    }
    for (int d = 0; d < nd && !s; d++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s/%s.bin", data, dm[d], split_name);
        br_shard_t *sh;
        s = br_shard_open(&sh, path);
        if (s) break;
        size_t n = br_shard_ntokens(sh), nwin = n > T ? (n - 1) / T : 0, maxwin = ((size_t)max_tokens + T - 1) / T;
        if (nwin > maxwin) nwin = maxwin;
        if (nwin == 0) s = br_error(BR_EINVAL, "%s: fewer than %zu tokens (empty domain)", path, T + 1);
        double nats = 0, toks = 0;
        for (size_t w0 = 0; w0 < nwin && !s; w0 += B) {
            size_t nb = nwin - w0 < B ? nwin - w0 : B;
            for (size_t b = 0; b < nb && !s; b++) s = br_shard_read(sh, (w0 + b) * T, T + 1, buf + b * (T + 1));
            for (size_t b = 0; b < nb; b++)
                for (size_t t = 0; t < T; t++) {
                    in[b * T + t] = buf[b * (T + 1) + t];
                    tg[b * T + t] = buf[b * (T + 1) + t + 1];
                }
            memset(p, 0, nb * T * sizeof *p);
            for (int i = 0; i < ne && !s; i++) {
                s = br_model_forward_loss(ms[i], in, tg, nb, T, NULL, loss, NULL);
                for (size_t r = 0; r < nb * T && !s; r++) p[r] += exp(-(double)loss[r]) / ne;
            }
            for (size_t r = 0; r < nb * T && !s; r++) nats -= log(p[r]);
            toks += (double)(nb * T);
            done += (double)(nb * T);
            br_progress_update(&bar, done);
        }
        double bytes = n ? (double)br_shard_nbytes(sh) * toks / (double)n : 0;
        br_shard_close(sh);
        if (s) break;
        double l = nats / toks, bpb = bytes > 0 ? nats / log(2.0) / bytes : NAN;
        all_n += nats, all_t += toks, all_b += bytes;
        printf("| %s | %.0f | %.4f | %.2f | %.4f |\n", dm[d], toks, l, exp(l), bpb);
        json_object_set_new(jd, dm[d], json_pack("{s:f, s:f, s:f, s:I, s:f}", "loss", l, "perplexity", exp(l),
                                                  "bits_per_byte", bpb, "tokens", (json_int_t)toks, "bytes", bytes));
    }
    br_progress_finish(&bar);
    if (!s) {
        double l = all_n / all_t, bpb = all_b > 0 ? all_n / log(2.0) / all_b : NAN;
        if (nd > 1) printf("| **all** | %.0f | %.4f | %.2f | %.4f |\n", all_t, l, exp(l), bpb);
        json_t *je = json_array();
        for (int i = 0; i < ne; i++) json_array_append_new(je, json_string(ex[i]));
        json_object_set_new(root, "model", json_string("btm"));
        json_object_set_new(root, "experts", je);
        json_object_set_new(root, "domains", jd);
        json_object_set_new(root, "all", json_pack("{s:f, s:f, s:f, s:I}", "loss", l, "perplexity", exp(l),
                                                   "bits_per_byte", bpb, "tokens", (json_int_t)all_t));
        if (json_path) {
            char *txt = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7));
            s = txt ? br_write_file_atomic(json_path, txt, strlen(txt)) : br_error(BR_ENOMEM, "out of memory");
            free(txt);
        }
    } else {
        json_decref(jd);
    }
    json_decref(root);
    for (int i = 0; i < ne && i < 64; i++) br_model_free(ms[i]);
    free(buf), free(in), free(tg), free(loss), free(p), free(eb), free(db);
    return s ? fail_status(s, "btm") : 0;
}
