/* Assembling a mixture of experts from dense checkpoints ("upcycling") and adding an expert
 * to one later.  Works on model folders directly (config.json + model.safetensors or the
 * Hub's shards + index; F32, BF16 or F16; HF Llama/Mistral names in, Mixtral / braid MoE names
 * out: lm/config_moe.h), streamed tensor by tensor and chunk by chunk (moe/stream.h), so it
 * needs no model in memory: peak memory is a few MB whatever the model's size.  The output
 * keeps the inputs' dtype (or opts.dtype), is sharded like the Hub's and replaces OUT in one
 * rename; the base's tokenizer files are copied.  Every input is checked before anything is
 * written: the same architecture and shapes (the tensor named), the same tokenizer
 * (moe/tokcheck.h).  How far the experts are apart (relative distance of each one's averaged
 * weights to their mean) is measured on the way and reported.  Exactly what each paper builds (../shared/papers/upcycling.md):
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
 * Routers (linear rows, MoA router, Nexus projector) start random N(0, initializer_range^2),
 * all made by one function per layer (init_routers in moe/upcycle.c).
 * With base_as_expert the seed is expert 0 (and takes part in every average); with shared_expert
 * (btx, sparse) the seed's FFN is also a shared expert, exactly as Nexus's. */
#ifndef BR_MOE_UPCYCLE_H
#define BR_MOE_UPCYCLE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "lm/model.h"
#include "moe/router_init.h"
#include "moe/stream.h"

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
    /* Router initialisation (moe/router_init.h).  br_upcycle: router_init != NULL gives every
     * linear router (and BAM's attention routers) hidden-state rows, else they are random.
     * br_upcycle_assemble computes router_init from router_init_kind and one domain sample per
     * FFN expert (domain_text, in expert order; tokenizer for text samples). */
    const br_router_init_t *router_init;
    br_router_init_kind router_init_kind;
    const char *const *domain_text;
    size_t n_domain_text;
    const char *tokenizer;
    const char *dtype;           /* "f32" | "bf16" | "f16"; NULL: the base's (its embedding's) */
    size_t shard_size;           /* bytes per shard; 0: 5 GB as the Hub */
    br_moe_out_report_t *report; /* may be NULL: shards, bytes, and distance[i] of merge input i
                                  * (the seed first with base_as_expert, then the experts) */
} br_upcycle_opts_t;

/* Relative distance of an expert's averaged weights to the experts' mean above which the
 * experts are reported as not sharing a base (finetunes of one base stay far below it). */
#define BR_UPCYCLE_FAR 0.5

/* Checks everything first (dirs, configs: same architecture, shapes, vocab, tokenizer and
 * block type as the base; dense inputs; method requirements; every tensor's shape) and only
 * then builds, streaming (moe/stream.h).  *out_cfg (may be NULL) receives the MoE config. */
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
    /* hidden-state rows for every expert of the result (router_init->E == E + 1): the whole
     * linear router is re-derived, a trained one included; NULL: one new random row.
     * br_extend_assemble computes it as br_upcycle_assemble does (samples of all E + 1
     * domains, the new one last; seed_dir or the seed in MOE/upcycle.json). */
    const br_router_init_t *router_init;
    br_router_init_kind router_init_kind;
    const char *const *domain_text;
    size_t n_domain_text;
    const char *tokenizer;
    const char *dtype;           /* as br_upcycle_opts_t; NULL: the MoE's */
    size_t shard_size;
    br_moe_out_report_t *report; /* distance[0] the MoE's, [1] the new expert's */
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

/* The number of FFN experts the options build (sparse: copies; else the experts, plus the seed
 * with base_as_expert). */
size_t br_upcycle_num_experts(const br_upcycle_opts_t *o);

/* The same config checks on two configs: BR_EINVAL naming `what` and the first field that
 * differs (architecture, vocab, widths, layers, heads, RoPE, norms, block type...). */
br_status br_upcycle_check_compatible(const br_model_config_t *base, const br_model_config_t *x,
                                      const char *what);
#endif
