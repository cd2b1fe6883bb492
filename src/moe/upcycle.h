/* Assembling a mixture of experts from dense checkpoints ("upcycling") and adding an expert
 * to one later.  Works on checkpoints directly (DIR/config.json + DIR/model.safetensors, HF
 * Llama names in, Mixtral / braid MoE names out: lm/config_moe.h), tensor by tensor, so it
 * needs no model in memory.  Exactly what each paper builds (../shared/papers/upcycling.md):
 *
 *   sparse   FFN experts = E copies of the seed's FFN; everything else = the seed's.
 *   btx      FFN experts = each expert's FFN; attention, embeddings, norms, head = element-wise
 *            average over the experts.  Linear router, top-k (default 2).
 *   bam      FFN experts as BTX (top-1); attention experts = each expert's attention (own Q, K,
 *            V, O) under a soft router; embeddings and norms averaged.  Parallel blocks only.
 *   bam-shared-kv   as bam, but K and V are one shared pair = the average of the experts'.
 *   nexus    FFN experts = each expert's FFN, the seed's FFN as the always-on shared expert,
 *            non-FFN weights averaged; Nexus router (expert embeddings from fixed domain
 *            embeddings through a learned projector), top-1.
 * Routers (linear rows, MoA router, Nexus projector) start random N(0, initializer_range^2).
 * With base_as_expert the seed is expert 0 (and takes part in every average); with shared_expert
 * (btx, sparse) the seed's FFN is also a shared expert, exactly as Nexus's. */
#ifndef BR_MOE_UPCYCLE_H
#define BR_MOE_UPCYCLE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "lm/model.h"

typedef enum {
    BR_UPCYCLE_SPARSE,
    BR_UPCYCLE_BTX,
    BR_UPCYCLE_BAM,
    BR_UPCYCLE_BAM_SHARED_KV,
    BR_UPCYCLE_NEXUS,
} br_upcycle_method;

/* "sparse", "btx", "bam", "bam-shared-kv", "nexus" -> method; BR_EINVAL listing them. */
br_status br_upcycle_method_parse(const char *name, br_upcycle_method *out);
const char *br_upcycle_method_name(br_upcycle_method m);

typedef struct {
    br_upcycle_method method;
    const char *base;            /* seed checkpoint dir */
    const char *const *experts;  /* dense expert dirs (branches of the seed) */
    size_t n_experts;            /* >= 1 except sparse */
    int num_experts;             /* sparse: copies (0: n_experts, or 4 when none given) */
    int top_k;                   /* 0: method default (btx 2, others 1) */
    int renorm;                  /* -1: default (true when top_k > 1), 0 or 1 */
    bool base_as_expert;         /* the seed is one more expert (index 0) */
    bool shared_expert;          /* btx, sparse: the seed's FFN as an always-on shared expert, as
                                  * Nexus has (a linear-router control for Nexus) */
    float alpha, beta;           /* load-balance and z-loss coefficients (config.json) */
    uint64_t seed;               /* router init */
    /* nexus */
    const float *domain_emb;     /* (E, D) one row per FFN expert, in expert order */
    int domain_dim;              /* D */
    int nexus_hidden;            /* H (0: 2*C... see docs) */
    const char *out;             /* output dir (created) */
    bool check_only;             /* validate everything (nexus: except the embeddings), write nothing */
} br_upcycle_opts_t;

/* Checks everything first (dirs, configs: same shapes, vocab and block type as the base;
 * dense inputs; method requirements) and only then builds; writes model.safetensors then
 * config.json atomically.  *out_cfg (may be NULL) receives the MoE config. */
br_status br_upcycle(const br_upcycle_opts_t *o, br_model_config_t *out_cfg);

/* Adds one expert (a dense branch of the same seed) to an MoE built by br_upcycle:
 * the new FFN becomes expert E; non-FFN weights are merged (1-lambda)*current + lambda*new
 * with lambda = 1/(E+1); the router gets a new random row (linear) or the new domain
 * embedding (Nexus: its expert embedding then comes from the existing projector). */
typedef struct {
    const char *moe;             /* MoE checkpoint dir */
    const char *expert;          /* new dense expert dir */
    const float *domain_emb;     /* Nexus: (D) the new domain's embedding; else NULL */
    uint64_t seed;
    const char *out;
} br_extend_opts_t;
br_status br_extend(const br_extend_opts_t *o, br_model_config_t *out_cfg);

/* The whole of `braid upcycle` (moe/assemble.c): checks everything first (br_upcycle with
 * check_only; Nexus: one existing token shard per expert in domain_data), computes the Nexus
 * domain embeddings with the seed (about domain_tokens tokens each), builds the mixture and
 * writes OUT/upcycle.json (moe/provenance.h).  o->domain_emb and domain_dim are ignored. */
br_status br_upcycle_assemble(const br_upcycle_opts_t *o, const char *const *domain_data, size_t n_domain_data,
                              size_t domain_tokens, br_model_config_t *out_cfg);
/* The whole of `braid extend` without its finetune: for a Nexus MoE the new domain's embedding
 * from domain_data with the seed (seed_dir, or NULL: the one MOE/upcycle.json names), then
 * br_extend and OUT/upcycle.json.  o->domain_emb is ignored. */
br_status br_extend_assemble(const br_extend_opts_t *o, const char *seed_dir, const char *domain_data,
                             size_t domain_tokens, br_model_config_t *out_cfg);

/* The same config checks on two configs: BR_EINVAL naming `what` and the first field that
 * differs (vocab, widths, layers, heads, block type...). */
br_status br_upcycle_check_compatible(const br_model_config_t *base, const br_model_config_t *x,
                                      const char *what);
#endif
