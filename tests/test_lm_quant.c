/* A model quantised in memory (br_model_quantize: matrices as Q8_0, Q4_0, F16 or BF16) runs the
 * training forward, the paged inference forward and greedy generation: logits stay within the
 * tolerance each type's rounding explains, and greedy ids equal the F32 model's wherever the F32
 * margins are larger than the logit error (checked on the fixture, so the id test is meaningful).
 * Q4_K and Q6_K on a model whose rows are whole 256-value super-blocks.
 * Refusals: rows that are not whole blocks (named), training a quantised model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kernels/kernels.h"
#include "lm/generate.h"
#include "lm/model.h"

enum { T = 24, NEW = 20 };

static br_model_config_t small(bool tied)
{
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 101; /* rows of lm_head are C values: V need not be a block multiple */
    c.hidden_size = 64;
    c.intermediate_size = 96;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 64;
    c.initializer_range = 0.02f; /* the blocks perturb the residual stream a little (see main) */
    c.tie_word_embeddings = tied;
    return c;
}

/* max |a - b| over n, and max |b|. */
static double max_err(const float *a, const float *b, size_t n, double *scale)
{
    double e = 0;
    *scale = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs((double)a[i] - b[i])), *scale = fmax(*scale, fabs(b[i]));
    return e;
}

/* top-1 minus top-2 logit of one row. */
static double margin(const float *row, size_t V)
{
    double a = -INFINITY, b = -INFINITY;
    for (size_t v = 0; v < V; v++) {
        if (row[v] > a) b = a, a = row[v];
        else if (row[v] > b) b = row[v];
    }
    return a - b;
}

/* Logits of the quantised model against F32 on a fixed batch (training forward), then greedy
 * generation.  rtol: max |logit error| / max |logit| this type may reach (see main). */
static void check_type(br_model_t *ref, br_wtype wt, double rtol, bool greedy_must_match)
{
    const char *tn = br_wtype_name(wt);
    br_model_t *q = NULL;
    CHECK_OK(br_model_quantize(&q, ref, wt));
    if (!q) return;
    CHECK_MSG(q->wt == wt && !q->params && q->map, "%s: not a view of its own buffers", tn);
    size_t V = (size_t)ref->cfg.vocab_size, n = 2 * T * V;
    int32_t in[2 * T];
    for (int i = 0; i < 2 * T; i++) in[i] = (i * 37 + 11) % (int)V;
    float *lr = malloc(n * sizeof *lr), *lq = malloc(n * sizeof *lq);
    CHECK_OK(br_model_forward_logits(ref, in, 2, T, NULL, lr));
    CHECK_OK(br_model_forward_logits(q, in, 2, T, NULL, lq));
    double scale, e = max_err(lq, lr, n, &scale);
    printf("%-5s logits: max |err| %.4g of max |logit| %.4g (rel %.3g, allowed %.3g)\n", tn, e, scale,
           e / scale, rtol);
    CHECK_MSG(e <= rtol * scale, "%s: logits rel err %.3g > %.3g", tn, e / scale, rtol);

    /* greedy: the same ids as F32; the fixture's margins must exceed twice the logit error */
    br_sampler_t g = {.temperature = 0, .top_k = 0, .top_p = 1};
    int32_t *ir = NULL, *iq = NULL;
    size_t nr = 0, nq = 0;
    CHECK_OK(br_generate(ref, in, 4, NEW, &g, 1, -1, NULL, NULL, &ir, &nr));
    CHECK_OK(br_generate(q, in, 4, NEW, &g, 1, -1, NULL, NULL, &iq, &nq));
    if (ir && iq && nr == NEW && nq == NEW) {
        int32_t seq[4 + NEW];
        memcpy(seq, in, 4 * sizeof *seq);
        memcpy(seq + 4, ir, NEW * sizeof *seq);
        size_t m = (4 + NEW) * V;
        CHECK_OK(br_model_forward_logits(ref, seq, 1, 4 + NEW, NULL, lr));
        CHECK_OK(br_model_forward_logits(q, seq, 1, 4 + NEW, NULL, lq));
        double min_margin = INFINITY, ge = max_err(lq + 3 * V, lr + 3 * V, m - 4 * V, &scale);
        for (size_t t = 3; t < 3 + NEW; t++) min_margin = fmin(min_margin, margin(lr + t * V, V));
        printf("%-5s greedy: min F32 margin %.4g, logit error on the path %.4g\n", tn, min_margin, ge);
        if (greedy_must_match) {
            CHECK_MSG(min_margin > 2 * ge, "%s: fixture margins (%.3g) too small for the error %.3g", tn,
                      min_margin, ge);
            CHECK_MSG(!memcmp(ir, iq, NEW * sizeof *ir), "%s: greedy ids differ from F32", tn);
        }
    } else {
        CHECK_MSG(false, "%s: generation returned %zu and %zu tokens, want %d", tn, nr, nq, NEW);
    }
    int32_t tg[T] = {0};
    CHECK_STATUS(br_model_train_step(q, in, tg, 1, T, NULL, &(float){0}), BR_EUNSUPPORTED);
    free(ir), free(iq), free(lr), free(lq);
    br_model_free(q);
}

int main(void)
{
    for (int tied = 0; tied < 2; tied++) {
        br_model_config_t c = small(tied);
        br_model_t *m = NULL;
        CHECK_OK(br_model_create(&m, &c, false));
        if (!m) break;
        br_model_init_random(m, 5 + (uint64_t)tied);
        /* Large greedy margins: embedding and head 50x the init (N(0, 1)), so the logits (O(10))
         * mostly follow the current token while the blocks' small weights still take part; a
         * deep random model at a large init instead amplifies any weight rounding ~30x. */
        const char *big[] = {"model.embed_tokens.weight", "lm_head.weight"};
        for (int b = 0; b < 2; b++) {
            int ti = br_model_find_tensor(m, big[b]);
            if (ti < 0) continue; /* tied: no lm_head */
            for (size_t j = 0; j < m->tensors[ti].numel; j++) m->params[m->tensors[ti].offset + j] *= 50;
        }
        /* Tolerances (max |logit error| / max |logit|): 16-bit weights round each weight by
         * <= 2^-9 (BF16) / 2^-12 (F16) relative; Q8_0 by <= amax/254 of its block, and its 8-bit
         * activations again by amax/254; Q4_0 by up to amax/8.  Measured on this fixture:
         * 3e-4 (F16), 2.4e-3 (BF16), 1e-2 (Q8_0), 0.14 (Q4_0); the bounds leave 2-4x room and
         * still catch a wrong block layout (a wrong scale or nibble order moves logits by O(1)). */
        check_type(m, BR_WT_F16, 1e-3, true);
        check_type(m, BR_WT_BF16, 1e-2, true);
        check_type(m, BR_WT_Q8_0, 3e-2, true);
        check_type(m, BR_WT_Q4_0, 0.3, false);
        br_model_free(m);
    }
    /* k-quants need rows of whole 256-value super-blocks.  Q6_K rounds each weight by <= d/2 of
     * its 16-value group (d ~ amax/32), Q4_K by ~(max - min)/30 of its 32 values, like Q4_0's
     * step; this wider fixture (C = 256) sums more rounded products per logit.  Measured:
     * 0.025 (Q6_K), 0.11 (Q4_K); the bounds leave 2.4-2.7x room and still catch a wrong layout. */
    br_model_config_t cw = small(false);
    cw.hidden_size = 256, cw.intermediate_size = 512;
    br_model_t *mw = NULL;
    CHECK_OK(br_model_create(&mw, &cw, false));
    if (mw) {
        br_model_init_random(mw, 7);
        const char *big[] = {"model.embed_tokens.weight", "lm_head.weight"};
        for (int b = 0; b < 2; b++) {
            int ti = br_model_find_tensor(mw, big[b]);
            for (size_t j = 0; j < mw->tensors[ti].numel; j++) mw->params[mw->tensors[ti].offset + j] *= 50;
        }
        check_type(mw, BR_WT_Q6_K, 6e-2, true);
        check_type(mw, BR_WT_Q4_K, 0.3, false);
        br_model_free(mw);
    }
    /* refusals */
    br_model_config_t c = small(false);
    c.hidden_size = 48; /* not a whole number of 32-value blocks */
    br_model_t *m = NULL, *q = (br_model_t *)&c;
    CHECK_OK(br_model_create(&m, &c, false));
    if (m) {
        CHECK_STATUS(br_model_quantize(&q, m, BR_WT_Q8_0), BR_EINVAL);
        CHECK(q == NULL);
        CHECK_MSG(strstr(br_errmsg(), "model.embed_tokens.weight") && strstr(br_errmsg(), "32"),
                  "message names the tensor and the block: %s", br_errmsg());
        CHECK_OK(br_model_quantize(&q, m, BR_WT_F16)); /* any width for 16-bit types */
        br_model_free(q);
        CHECK_STATUS(br_model_quantize(&q, m, BR_WT_Q4_K), BR_EINVAL);
        CHECK_STATUS(br_model_quantize(&q, m, BR_WT_F32), BR_EINVAL);
        br_model_free(m);
    }
    return th_exit();
}
