/* Nexus domain embeddings from the seed model (moe/domain.h). */
#include "moe/domain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/log.h"
#include "text/data.h"

br_status br_domain_shard_path(br_buf_t *b, const char *p)
{
    size_t n = strlen(p);
    if (n > 4 && !strcmp(p + n - 4, ".bin")) {
        br_buf_clear(b);
        return br_buf_puts(b, p);
    }
    return br_buf_path(b, p, "train.bin");
}

br_status br_domain_embedding(br_model_t *m, const char *shard_path, size_t n_tokens, size_t T,
                              float *out)
{
    br_shard_t *sh;
    BR_TRY(br_shard_open(&sh, shard_path));
    size_t total = br_shard_ntokens(sh), C = (size_t)m->cfg.hidden_size;
    br_status s = BR_OK;
    if (br_shard_vocab(sh) > (uint32_t)m->cfg.vocab_size) {
        s = br_error(BR_EINVAL, "%s: token vocabulary %u does not fit the model's %d", shard_path,
                     br_shard_vocab(sh), m->cfg.vocab_size);
        goto done;
    }
    if (T > (size_t)m->cfg.max_position_embeddings) T = (size_t)m->cfg.max_position_embeddings;
    if (T > total) T = total;
    if (total == 0 || T == 0) {
        s = br_error(BR_EINVAL, "%s: empty domain (no tokens)", shard_path);
        goto done;
    }
    size_t nw = (n_tokens + T - 1) / T;
    if (nw < 1) nw = 1;
    int32_t *tok = malloc(T * sizeof(int32_t));
    float *h = malloc(T * C * sizeof(float));
    double *acc = calloc(C, sizeof(double));
    if (!tok || !h || !acc) s = br_error(BR_ENOMEM, "out of memory");
    size_t span = total - T, count = 0;
    for (size_t w = 0; w < nw && !s; w++) {
        size_t start = nw > 1 ? span * w / (nw - 1) : 0;
        s = br_shard_read(sh, start, T, tok);
        if (!s) s = br_model_forward_hidden(m, tok, 1, T, h);
        for (size_t t = 0; t < T && !s; t++)
            for (size_t i = 0; i < C; i++) acc[i] += h[t * C + i];
        count += T;
    }
    if (!s)
        for (size_t i = 0; i < C; i++) out[i] = (float)(acc[i] / (double)count);
    free(tok), free(h), free(acc);
done:
    br_shard_close(sh);
    if (s) return br_error_wrap(s, "domain embedding");
    return BR_OK;
}

br_status br_domain_check(const char *const *dirs, size_t n)
{
    br_buf_t path = BR_BUF_INIT;
    br_status s = BR_OK;
    for (size_t i = 0; i < n && !s; i++) {
        s = br_domain_shard_path(&path, dirs[i]);
        if (!s && !br_file_exists(br_buf_str(&path)))
            s = br_error(BR_ENOTFOUND, "domain data %s: no %s (run 'braid data prepare')", dirs[i], br_buf_str(&path));
    }
    br_buf_free(&path);
    return s;
}

br_status br_domain_embeddings(const char *seed_dir, const char *const *dirs, size_t n, size_t tokens,
                               float **out, int *dim)
{
    *out = NULL;
    br_model_t *m;
    br_status s = br_model_load(&m, seed_dir, false);
    if (s) return br_error_wrap(s, "loading the seed");
    size_t C = (size_t)m->cfg.hidden_size;
    float *d = n ? malloc(n * C * sizeof(float)) : NULL;
    if (!d) s = br_error(BR_ENOMEM, "out of memory for %zu domain embeddings", n);
    br_buf_t path = BR_BUF_INIT;
    for (size_t i = 0; i < n && !s; i++) {
        s = br_domain_shard_path(&path, dirs[i]);
        if (s) break;
        BR_INFO("domain embedding %zu/%zu: mean seed hidden state over %zu tokens of %s", i + 1, n, tokens,
                br_buf_str(&path));
        s = br_domain_embedding(m, br_buf_str(&path), tokens, 128, d + i * C);
    }
    br_buf_free(&path);
    br_model_free(m);
    if (s) {
        free(d);
        return br_error_wrap(s, "domain embeddings");
    }
    *out = d;
    *dim = (int)C;
    return BR_OK;
}
