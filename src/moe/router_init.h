/* Routers that work before any training step (braid upcycle / extend --router-init).
 *
 *   random   N(0, initializer_range^2) rows (the default of linear routers; needs training)
 *   hidden   each expert's row from the mean of the router's own input at that layer over a
 *            sample of the expert's domain text, run through the seed (as mergekit-moe's
 *            "hidden" gate mode does for Mixtral routers, and as Nexus embeds domains):
 *                mu_j  (C) = mean over the sample's tokens of layer l's FFN-part input
 *                row_j     = s * (mu_j - mean_k mu_k)
 *                s         = BR_ROUTER_INIT_GAP / mean_j |mu_j - mean_k mu_k|^2
 *            Centring removes what every domain shares (it would only add the same bias to
 *            each logit of a token); s makes the mean own-domain logit margin of a domain's
 *            centred mean equal to the gap, so routing is decisive (top-1 gates near 1, the
 *            expert's FFN at nearly full strength) but not saturated.
 *   nexus    Nexus's router: expert rows through its projector from domain embeddings
 *            (moe/domain.h); the only choice (and the default) for a Nexus mixture.
 *
 * The rows are computed once for every layer (one forward pass of the seed per sample window)
 * and handed out one layer at a time (br_router_init_rows), so a tensor-by-tensor upcycle
 * writes each router when it reaches that layer. */
#ifndef BR_MOE_ROUTER_INIT_H
#define BR_MOE_ROUTER_INIT_H
#include <stddef.h>

#include "base/status.h"

typedef enum { BR_ROUTER_INIT_RANDOM = 0, BR_ROUTER_INIT_HIDDEN, BR_ROUTER_INIT_NEXUS } br_router_init_kind;

/* "random", "hidden", "nexus" -> kind; BR_EINVAL listing them. */
br_status br_router_init_parse(const char *name, br_router_init_kind *out);
const char *br_router_init_name(br_router_init_kind k);

/* Target mean logit margin of the hidden-state rows (see above). */
#define BR_ROUTER_INIT_GAP 4.0

typedef struct {
    size_t L, E, C;
    float *mean; /* (L, E, C) mean router input of domain j at layer l */
} br_router_init_t;

/* The per-layer means of n domain samples through the seed at seed_dir.  A sample is a token
 * shard (a .bin file, or a domain folder DIR holding DIR/train.bin: braid data prepare) or a
 * UTF-8 text file encoded with the tokenizer at tokenizer (required for text).  About `tokens`
 * tokens per sample in windows of up to T (the seed's context at most), evenly spaced over it.
 * Errors name the sample: missing, empty, ids beyond the seed's vocabulary. */
br_status br_router_init_compute(br_router_init_t **out, const char *seed_dir, const char *const *samples,
                                 size_t n, const char *tokenizer, size_t tokens, size_t T);
void br_router_init_free(br_router_init_t *ri); /* NULL is a no-op */

/* rows (E, C) of layer `layer` (the formula above).  BR_EINVAL when E or C differ from the
 * means' (one sample per expert, the seed's width) or the layer is out of range. */
br_status br_router_init_rows(const br_router_init_t *ri, int layer, size_t E, size_t C, float *rows);
/* The formula alone: rows (E, C) from means (E, C) with the given gap; all-zero rows (uniform
 * routing) when the means coincide. */
void br_router_rows_from_means(float *rows, const float *means, size_t E, size_t C, double gap);
#endif
