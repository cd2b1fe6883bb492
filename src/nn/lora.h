/* LoRA adapters and batched heterogeneous LoRA (Punica SGMV/BGMV, S-LoRA): compute only.
 * Reading and writing PEFT folders is lm/peft.h.
 *
 * An adapter adds, after the base projection y = x W^T of projection p in layer l,
 *     y += scale * (x A^T) B^T,   A (r, C), B (OC, r), scale = alpha / r (alpha / sqrt(r) with
 * rsLoRA).  Ranks may differ per module and per adapter; nothing is padded.
 *
 * On disk (lm/peft.h): a folder as Hugging Face PEFT writes it,
 *   adapter_config.json        {"peft_type": "LORA", "r": 8, "lora_alpha": 16,
 *                               "target_modules": ["q_proj", "v_proj"], "use_rslora": false,
 *                               "rank_pattern": {}, "alpha_pattern": {}, "bias": "none", ...}
 *   adapter_model.safetensors  base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight
 *                              (r, C) and ...lora_B.weight (OC, r); mlp.{gate,up,down}_proj.
 * The tensors decide which modules are adapted and their ranks; the config gives alpha (and
 * per-module alpha through alpha_pattern, matched as PEFT does: the key equals the module
 * name or is a dot-separated suffix of it).
 *
 * Batched application: a br_lora_batch_t holds, for one forward pass, the adapter of every row
 * (NULL: base model only).  Its hook (nn.h br_lora_hook_t) groups rows by adapter; a group of
 * several rows runs as two GEMMs (shrink v = x A^T, expand y += scale v B^T; rows gathered
 * unless already contiguous: SGMV), a lone row runs as two matrix-vector products (BGMV).  The
 * base GEMM is untouched: one for the whole batch. */
#ifndef BR_NN_LORA_H
#define BR_NN_LORA_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "nn/nn.h"

/* Shapes of the base model's projections: what an adapter must match.  In a mixture, each
 * expert's projection has the shape of the dense one (in/out below): a routed FFN expert's
 * w1/w3/w2 those of gate/up/down, a BAM attention expert's q/k/v/o those of q/k/v/o. */
typedef struct {
    int n_layers;
    size_t in[BR_PROJ_COUNT];  /* C of each projection (hidden size, or intermediate for down) */
    size_t out[BR_PROJ_COUNT]; /* OC of each projection */
    unsigned absent;           /* bit (1u << proj): the base has no plain matrix for it (0: all present) */
    int n_experts;             /* routed FFN experts per layer (0: dense FFN) */
    int n_attn_experts;        /* BAM attention experts per layer (0: dense attention) */
} br_lora_shapes_t;

/* Target bits beyond the projections (br_lora_parse_targets, br_lora_create): every routed
 * FFN expert's w1 (gate), w3 (up), w2 (down); and "all": every linear the base has. */
#define BR_LORA_W1 (1u << BR_PROJ_COUNT)
#define BR_LORA_W3 (1u << (BR_PROJ_COUNT + 1))
#define BR_LORA_W2 (1u << (BR_PROJ_COUNT + 2))
#define BR_LORA_ALL (1u << (BR_PROJ_COUNT + 3))
/* Experts per layer at an expert site of proj (FFN experts for gate/up/down, attention
 * experts for q/k/v/o where the base has no plain matrix; 0: none) and the expert-module
 * stride (max of both, >= 1). */
int br_lora_site_experts(const br_lora_shapes_t *s, br_proj p);
size_t br_lora_expert_stride(const br_lora_shapes_t *s);
/* Expert-module slots of an adapter on s: n_layers * stride * BR_PROJ_COUNT (0: no experts). */
size_t br_lora_expert_slots(const br_lora_shapes_t *s);

/* One adapted (layer, projection). rank 0: not adapted. */
typedef struct {
    int rank;
    float scale;
    float *A;  /* (rank, in) */
    float *B;  /* (out, rank) */
    float *dA; /* (rank, in)  gradients; NULL unless br_lora_alloc_grads */
    float *dB; /* (out, rank) */
} br_lora_module_t;

typedef struct {
    char name[128];          /* registry name (folder name by default) */
    br_lora_shapes_t shapes;
    unsigned targets;        /* bit (1u << proj) for every projection adapted in some layer */
    int rank;                /* config "r" (modules may differ: see mods[].rank) */
    float alpha;             /* config "lora_alpha" */
    bool rslora;
    char base_model[256];    /* config "base_model_name_or_path" ("" when absent) */
    br_lora_module_t *mods;  /* (n_layers * BR_PROJ_COUNT): mods[layer * BR_PROJ_COUNT + proj] */
    unsigned xtargets;       /* bit (1u << proj) for every expert projection adapted somewhere */
    br_lora_module_t *xmods; /* (n_layers * X * BR_PROJ_COUNT), X = br_lora_expert_stride:
                              * xmods[(layer * X + expert) * BR_PROJ_COUNT + proj]; NULL: none */
    float *params;           /* (n_params) every A and B, one allocation */
    float *grads;            /* (n_params) or NULL */
    size_t n_params;
} br_lora_adapter_t;

/* PEFT module name of a projection ("q_proj"...) and the reverse (-1 when unknown). */
const char *br_lora_proj_name(br_proj p);
int br_lora_proj_parse(const char *name);
/* The module holding a projection: "self_attn" or "mlp". */
const char *br_lora_proj_parent(br_proj p);
/* buf = "model.layers.<layer>.<parent>.<proj>", the Hugging Face module path (cap >= 64). */
void br_lora_module_path(char *buf, size_t cap, int layer, br_proj p);
/* An expert's module path, braid's MoE tensor names (lm/config_moe.h) without ".weight":
 * "model.layers.L.block_sparse_moe.experts.J.w1" (w1 gate, w3 up, w2 down) or
 * "model.layers.L.self_attn.experts.J.q_proj" (cap >= 96). */
void br_lora_expert_path(char *buf, size_t cap, int layer, int expert, br_proj p);
/* Mixtral's name of a routed expert's projection: "w1" (gate), "w3" (up), "w2" (down); NULL
 * for the attention projections. */
const char *br_lora_expert_name(br_proj p);

/* Largest alpha (lora_alpha, alpha_pattern values, --alpha) braid accepts.  Adapters in the
 * wild use 1..1024; a larger one only turns logits into Inf/NaN, so it is refused at load. */
#define BR_LORA_ALPHA_MAX 65536.0
/* The module scale: alpha / r, or alpha / sqrt(r) with rsLoRA. */
float br_lora_scale(float alpha, int r, bool rslora);
/* Parses "q_proj,v_proj,w1" (or "all" / "all-linear") into a target bit mask: projection
 * bits, BR_LORA_W1/W3/W2, BR_LORA_ALL.  On a BAM base q/k/v/o_proj target the attention
 * experts (PEFT's suffix match: "q_proj" is also self_attn.experts.J.q_proj). */
br_status br_lora_parse_targets(const char *list, unsigned *mask);

/* A fresh adapter for training: every layer gets rank-r modules on the targets; A is drawn
 * as PEFT initialises it (Kaiming uniform, bound 1/sqrt(C)), B = 0, so the adapter starts as
 * the identity update. */
br_status br_lora_create(br_lora_adapter_t **out, const br_lora_shapes_t *shapes, int rank,
                         float alpha, unsigned targets, bool rslora, uint64_t seed);
/* The modules `targets` (br_lora_parse_targets) selects in the base: dense[proj] and
 * experts[proj] (routed FFN experts for w1/w3/w2, attention experts for q/k/v/o on a BAM
 * base) set to true.  BR_EINVAL naming every target the base does not have (gate_proj on a
 * Mixtral, w1 on a dense model). */
br_status br_lora_resolve_targets(const br_lora_shapes_t *s, unsigned targets,
                                  bool dense[BR_PROJ_COUNT], bool experts[BR_PROJ_COUNT]);
/* An adapter with ranks[layer * BR_PROJ_COUNT + proj] (0: not adapted) on `shapes`: A and B
 * carved from one zeroed allocation, scales 0 (the caller sets them). */
br_status br_lora_alloc(br_lora_adapter_t **out, const br_lora_shapes_t *shapes, const int *ranks);
/* The same with expert modules: xranks[(layer * X + expert) * BR_PROJ_COUNT + proj] (NULL:
 * none), X = br_lora_expert_stride(shapes). */
br_status br_lora_alloc_experts(br_lora_adapter_t **out, const br_lora_shapes_t *shapes,
                                const int *ranks, const int *xranks);
void br_lora_free(br_lora_adapter_t *a); /* NULL is a no-op */

/* Bytes of host memory the adapter holds (weights, gradients and bookkeeping). */
size_t br_lora_bytes(const br_lora_adapter_t *a);
static inline const br_lora_module_t *br_lora_module(const br_lora_adapter_t *a, int layer,
                                                     br_proj p)
{
    return &a->mods[(size_t)layer * BR_PROJ_COUNT + (size_t)p];
}

/* Expert `expert`'s module of proj in layer (rank 0 when the adapter has none). */
static inline const br_lora_module_t *br_lora_xmodule(const br_lora_adapter_t *a, int layer,
                                                      int expert, br_proj p)
{
    static const br_lora_module_t none = {0};
    if (!a->xmods) return &none;
    size_t X = br_lora_expert_stride(&a->shapes);
    return &a->xmods[((size_t)layer * X + (size_t)expert) * BR_PROJ_COUNT + (size_t)p];
}

/* W (out, in) += sign * scale * B A for one module (merge with sign 1, unmerge with -1). */
void br_lora_merge(float *W, const br_lora_adapter_t *a, int layer, br_proj p, float sign);
/* The same for expert `expert`'s module (W: that expert's matrix). */
void br_lora_merge_expert(float *W, const br_lora_adapter_t *a, int layer, int expert, br_proj p,
                          float sign);

/* Training: gradient buffers (zeroed), and zeroing them between steps. */
br_status br_lora_alloc_grads(br_lora_adapter_t *a);
void br_lora_zero_grads(br_lora_adapter_t *a);

/* ---- batched application ---- */
typedef struct br_lora_batch br_lora_batch_t;
br_status br_lora_batch_create(br_lora_batch_t **out);
void br_lora_batch_free(br_lora_batch_t *b); /* NULL is a no-op */
/* Sets the adapter of each of the N rows of the next forward (rows[i] NULL: none).  The
 * adapters must stay alive (and unchanged) while the hook is used.  Groups rows by adapter and
 * sizes the scratch space (BR_ENOMEM when short). */
br_status br_lora_batch_set(br_lora_batch_t *b, const br_lora_adapter_t *const *rows, size_t N);
/* Number of distinct adapters in the current batch (0: the hook is a no-op). */
size_t br_lora_batch_nadapters(const br_lora_batch_t *b);
/* The hook to pass to the model.  apply() adds the LoRA part for every row whose adapter
 * adapts (layer, proj); backward() accumulates into each adapter's dA/dB (when allocated) and
 * adds to dinp.  N must equal the N given to br_lora_batch_set.  apply_expert() /
 * backward_expert() do the same for an expert's rows (a row routed to expert e applies its
 * adapter's module of expert e only): runs of consecutive rows with one adapter are two GEMMs
 * straight on the expert's contiguous rows, a lone row two matrix-vector products.  They use
 * the batch's scratch, so a mixture calls them for one expert at a time. */
br_lora_hook_t br_lora_batch_hook(br_lora_batch_t *b);

/* Reference (one row at a time, double accumulation), for tests and benchmarks. */
void br_lora_apply_ref(float *out /* (N,OC) += */, const float *inp /* (N,C) */,
                       const br_lora_adapter_t *const *rows, size_t N, size_t C, size_t OC,
                       int layer, br_proj p);
/* The same for expert `expert` (rows[i]: the adapter of row i, already the expert's rows). */
void br_lora_apply_expert_ref(float *out /* (n,OC) += */, const float *inp /* (n,C) */,
                              const br_lora_adapter_t *const *rows, size_t n, size_t C, size_t OC,
                              int layer, int expert, br_proj p);
#endif
