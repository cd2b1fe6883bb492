/* Routing statistics (moe/routing.h). */
#include "moe/routing.h"

#include <stdlib.h>

#include "lm/config_moe.h"
#include "text/data.h"

br_status br_routing_measure(br_model_t *m, const char *shard_path, size_t max_tokens,
                             size_t B, size_t T, uint64_t *counts, uint64_t *ntok)
{
    *ntok = 0;
    if (!br_config_has_moe_ffn(&m->cfg)) return br_error(BR_EINVAL, "routing: the model has no MoE FFN");
    br_shard_t *sh;
    BR_TRY(br_shard_open(&sh, shard_path));
    size_t total = br_shard_ntokens(sh);
    if (T > (size_t)m->cfg.max_position_embeddings) T = (size_t)m->cfg.max_position_embeddings;
    if (T > total) T = total;
    br_status s = BR_OK;
    if (!T || !B) {
        br_shard_close(sh);
        return br_error(BR_EINVAL, "%s: empty domain (no tokens)", shard_path);
    }
    size_t nw = max_tokens / T ? max_tokens / T : 1, span = total - T;
    if (nw > total / T) nw = total / T ? total / T : 1;
    int32_t *tok = malloc(B * T * sizeof(int32_t));
    float *h = malloc(B * T * (size_t)m->cfg.hidden_size * sizeof(float));
    if (!tok || !h) s = br_error(BR_ENOMEM, "out of memory");
    m->route_counts = counts;
    for (size_t w0 = 0; w0 < nw && !s; w0 += B) {
        size_t nb = nw - w0 < B ? nw - w0 : B;
        for (size_t b = 0; b < nb && !s; b++) {
            size_t w = w0 + b, start = nw > 1 ? span * w / (nw - 1) : 0;
            s = br_shard_read(sh, start, T, tok + b * T);
        }
        if (!s) s = br_model_forward_hidden(m, tok, nb, T, h);
        if (!s) *ntok += nb * T;
    }
    m->route_counts = NULL;
    free(tok), free(h);
    br_shard_close(sh);
    return s;
}
