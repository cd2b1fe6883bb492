/* Router initialisation from domain samples (moe/router_init.h). */
#include "moe/router_init.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/log.h"
#include "lm/model.h"
#include "moe/domain.h"
#include "text/data.h"
#include "text/tokenizer.h"

static const char *const kind_names[] = {"random", "hidden", "nexus"};

br_status br_router_init_parse(const char *name, br_router_init_kind *out)
{
    for (int i = 0; i < 3; i++)
        if (name && !strcmp(name, kind_names[i])) {
            *out = (br_router_init_kind)i;
            return BR_OK;
        }
    return br_error(BR_EINVAL, "unknown router initialisation '%s' (use random, hidden or nexus)", name ? name : "");
}

const char *br_router_init_name(br_router_init_kind k)
{
    return (unsigned)k < 3 ? kind_names[k] : "?";
}

void br_router_rows_from_means(float *rows, const float *means, size_t E, size_t C, double gap)
{
    double *avg = calloc(C ? C : 1, sizeof *avg), spread = 0;
    if (!avg) { /* a few floats: treat as coinciding means rather than fail */
        memset(rows, 0, E * C * sizeof(float));
        return;
    }
    for (size_t j = 0; j < E; j++)
        for (size_t i = 0; i < C; i++) avg[i] += means[j * C + i] / (double)E;
    for (size_t j = 0; j < E; j++)
        for (size_t i = 0; i < C; i++) {
            double d = means[j * C + i] - avg[i];
            spread += d * d / (double)E;
        }
    double s = spread > 0 ? gap / spread : 0;
    for (size_t j = 0; j < E; j++)
        for (size_t i = 0; i < C; i++) rows[j * C + i] = (float)(s * (means[j * C + i] - avg[i]));
    free(avg);
}

br_status br_router_init_rows(const br_router_init_t *ri, int layer, size_t E, size_t C, float *rows)
{
    if (E != ri->E)
        return br_error(BR_EINVAL, "router init: %zu domain samples for %zu experts (give one per expert, in "
                                   "expert order)", ri->E, E);
    if (C != ri->C) return br_error(BR_EINVAL, "router init: rows of width %zu for a router of width %zu", ri->C, C);
    if (layer < 0 || (size_t)layer >= ri->L)
        return br_error(BR_EINVAL, "router init: layer %d of a seed with %zu layers", layer, ri->L);
    br_router_rows_from_means(rows, ri->mean + (size_t)layer * E * C, E, C, BR_ROUTER_INIT_GAP);
    return BR_OK;
}

void br_router_init_free(br_router_init_t *ri)
{
    if (!ri) return;
    free(ri->mean);
    free(ri);
}

/* A sample's tokens: all of a text file (encoded), or windows of a shard evenly spaced so
 * that about `want` tokens are read.  *tok malloc'd. */
static br_status sample_tokens(const char *sample, const br_tokenizer_t *tk, size_t want, size_t T,
                               int32_t **tok, size_t *n)
{
    *tok = NULL;
    *n = 0;
    size_t len = strlen(sample);
    bool shard = br_dir_exists(sample) || (len > 4 && !strcmp(sample + len - 4, ".bin"));
    if (!shard) {
        if (!tk) return br_error(BR_EINVAL, "%s: a text sample needs a tokenizer (--tokenizer FILE)", sample);
        char *text;
        size_t sz;
        BR_TRY(br_read_file(sample, &text, &sz));
        br_status s = br_tokenizer_encode(tk, text, sz, 0, tok, n);
        free(text);
        return s;
    }
    br_buf_t path = BR_BUF_INIT;
    br_shard_t *sh = NULL;
    br_status s = br_domain_shard_path(&path, sample);
    if (!s) s = br_shard_open(&sh, br_buf_str(&path));
    br_buf_free(&path);
    if (s) return s;
    size_t total = br_shard_ntokens(sh), w = T < total ? T : total, nw = w ? (want + w - 1) / w : 0;
    if (nw * w > total) nw = total / w;
    if (w && !nw) nw = 1;
    if (nw && !(*tok = malloc(nw * w * sizeof(int32_t)))) s = br_error(BR_ENOMEM, "out of memory");
    for (size_t i = 0; i < nw && !s; i++)
        s = br_shard_read(sh, nw > 1 ? (total - w) * i / (nw - 1) : 0, w, *tok + i * w);
    br_shard_close(sh);
    if (!s) *n = nw * w;
    return s;
}

/* acc (L, C) += the sum over the windows of up to T tokens of tok (n) of each layer's router
 * input; *count += tokens used (about `want`, windows evenly spaced). */
static br_status accumulate(br_model_t *m, const int32_t *tok, size_t n, size_t want, size_t T, float *xn,
                            double *acc, size_t *count)
{
    size_t L = (size_t)m->cfg.num_hidden_layers, C = (size_t)m->cfg.hidden_size;
    size_t w = T < n ? T : n, nw = w ? (want + w - 1) / w : 0;
    if (nw * w > n) nw = n / w;
    if (w && !nw) nw = 1;
    for (size_t i = 0; i < nw; i++) {
        size_t start = nw > 1 ? (n - w) * i / (nw - 1) : 0;
        BR_TRY(br_model_forward_ffn_inputs(m, tok + start, 1, w, xn));
        for (size_t l = 0; l < L; l++)
            for (size_t t = 0; t < w; t++)
                for (size_t c = 0; c < C; c++) acc[l * C + c] += xn[(l * w + t) * C + c];
        *count += w;
    }
    return BR_OK;
}

br_status br_router_init_compute(br_router_init_t **out, const char *seed_dir, const char *const *samples,
                                 size_t n, const char *tokenizer, size_t tokens, size_t T)
{
    *out = NULL;
    if (!n) return br_error(BR_EINVAL, "router init: no domain samples given");
    if (!tokens || !T) return br_error(BR_EINVAL, "router init: tokens and window length must be positive");
    for (size_t j = 0; j < n; j++)
        if (!br_file_exists(samples[j]) && !br_dir_exists(samples[j]))
            return br_error(BR_ENOTFOUND, "domain sample %s: no such file or folder", samples[j]);
    br_tokenizer_t *tk = NULL;
    if (tokenizer) BR_TRY(br_tokenizer_load(&tk, tokenizer));
    br_model_t *m = NULL;
    br_status s = br_model_load(&m, seed_dir, false);
    if (s) {
        br_tokenizer_free(tk);
        return br_error_wrap(s, "router init: loading the seed");
    }
    size_t L = (size_t)m->cfg.num_hidden_layers, C = (size_t)m->cfg.hidden_size;
    if (T > (size_t)m->cfg.max_position_embeddings) T = (size_t)m->cfg.max_position_embeddings;
    br_router_init_t *ri = calloc(1, sizeof *ri);
    double *acc = calloc(L * C, sizeof *acc);
    float *xn = malloc(L * T * C * sizeof *xn);
    if (ri) ri->mean = malloc(L * n * C * sizeof *ri->mean);
    if (!ri || !ri->mean || !acc || !xn) s = br_error(BR_ENOMEM, "router init: out of memory");
    for (size_t j = 0; j < n && !s; j++) {
        int32_t *tok = NULL;
        size_t nt = 0, count = 0;
        s = sample_tokens(samples[j], tk, tokens, T, &tok, &nt);
        if (!s && !nt) s = br_error(BR_EINVAL, "empty sample (no tokens)");
        memset(acc, 0, L * C * sizeof *acc);
        if (!s) s = accumulate(m, tok, nt, tokens, T, xn, acc, &count);
        free(tok);
        if (s) {
            s = br_error_wrap(s, "domain sample %s", samples[j]);
            break;
        }
        BR_INFO("router init %zu/%zu: mean router input of every layer over %zu tokens of %s", j + 1, n, count,
                samples[j]);
        for (size_t l = 0; l < L; l++)
            for (size_t c = 0; c < C; c++) ri->mean[(l * n + j) * C + c] = (float)(acc[l * C + c] / (double)count);
    }
    free(acc);
    free(xn);
    br_model_free(m);
    br_tokenizer_free(tk);
    if (s) {
        br_router_init_free(ri);
        return s;
    }
    ri->L = L, ri->E = n, ri->C = C;
    *out = ri;
    return BR_OK;
}
