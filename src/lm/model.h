/* The dense Llama-style decoder (Hugging Face LlamaForCausalLM semantics) and everything built
 * on it: config.json, checkpoints (config.json + model.safetensors with HF tensor names),
 * training forward+backward, AdamW, and the batched inference forward over a paged KV cache.
 *
 * A block = (attention part, FFN part, block kind):
 *   sequential:  h = x + Attn(Norm1(x));  y = h + FFN(Norm2(h))         (Llama)
 *   parallel:    u = Norm1(x);  y = x + Attn(u) + FFN(u)                 (BAM; no Norm2)
 * The attention part is one GQA attention and the FFN part one SwiGLU here; a mixture of
 * attention experts and an MoE FFN (moe/) are the n > 1 cases of the same two parts: the
 * per-part functions in model.c (attn_part_*, ffn_part_*) are the seams, the parameter table
 * (br_model_t.tensors) is the single place that names, shapes, initialises, saves and loads
 * every parameter.
 *
 * Every projection goes through br_model_proj_forward/backward (y = x W^T, then the optional
 * per-row LoRA hook; br_model_proj in model_internal.h for a model whose matrices are 16-bit,
 * see br_model_open), so LoRA, quantisation and a GPU backend each change one place.
 *
 * Threading: a br_model_t is used by one thread at a time (it owns its activation and scratch
 * buffers); kernels inside use OpenMP/BLAS.  The weights are read-only during inference. */
#ifndef BR_LM_MODEL_H
#define BR_LM_MODEL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/status.h"
#include "kernels/kernels.h"
#include "nn/nn.h"

/* ------------------------------------------------------------------------------------------
 * Config (config.json).  Hugging Face LlamaConfig field names; `block` is braid's own. */
typedef enum { BR_BLOCK_SEQUENTIAL = 0, BR_BLOCK_PARALLEL = 1 } br_block_kind;

/* model_type of a config.json (lm/config_hf.c reads the per-architecture fields). */
typedef enum {
    BR_ARCH_LLAMA = 0, /* also braid's own dense models */
    BR_ARCH_MISTRAL,   /* llama + sliding_window */
    BR_ARCH_QWEN2,     /* llama + q/k/v biases */
    BR_ARCH_QWEN3,     /* llama + per-head q/k RMSNorm */
    BR_ARCH_MIXTRAL,   /* MoE FFN (lm/config_moe.c) */
    BR_ARCH_BRAID_MOE
} br_arch;

/* model_type as spelled in config.json ("llama", "qwen3", ...; "?" for a bad value). */
const char *br_arch_name(br_arch a);

/* rope_scaling.rope_type: how the RoPE inverse frequencies are rescaled. */
typedef enum { BR_ROPE_DEFAULT = 0, BR_ROPE_LINEAR, BR_ROPE_LLAMA3 } br_rope_type;

typedef struct {
    int vocab_size;              /* V */
    int hidden_size;             /* C */
    int intermediate_size;       /* F (SwiGLU width) */
    int num_hidden_layers;       /* L */
    int num_attention_heads;     /* NH */
    int num_key_value_heads;     /* NKV, NH % NKV == 0 (GQA; NKV == NH is plain MHA) */
    int head_dim;                /* hd; 0 in a file means hidden_size / num_attention_heads */
    float rms_norm_eps;
    float rope_theta;
    int max_position_embeddings; /* context length: no position >= this is ever run */
    bool tie_word_embeddings;    /* lm_head.weight == model.embed_tokens.weight */
    float initializer_range;     /* std of the normal init of matrices (HF default 0.02) */
    int bos_token_id;            /* -1: none */
    int eos_token_id;            /* -1: none */
    br_block_kind block;         /* "sequential" (default) | "parallel" */
    /* Architecture (model_type) and its extras; all zero for a plain Llama config. */
    br_arch arch;
    bool qkv_bias;               /* q_proj, k_proj, v_proj have biases (Qwen2) */
    bool qk_norm;                /* q_norm, k_norm: RMSNorm over each head before RoPE (Qwen3) */
    br_rope_type rope_type;      /* rope_scaling */
    float rope_factor;           /* rope_scaling.factor (linear, llama3) */
    float rope_low_freq_factor;  /* llama3 */
    float rope_high_freq_factor; /* llama3 */
    int rope_original_max_position_embeddings; /* llama3 */
    int sliding_window;          /* Mistral's window as read (0: none); the context is capped at it */
    /* Mixture of experts (docs/moe.md; parsed and saved by lm/config_moe.c).  Every all-zero
     * value means "dense", so a Llama config.json keeps loading. */
    int num_local_experts;       /* FFN experts E (Mixtral name); 0 or 1: dense FFN */
    int num_experts_per_tok;     /* top-k (Mixtral name); 0 means 1 */
    bool norm_topk_prob;         /* renormalise the chosen router probabilities */
    int shared_expert_intermediate_size; /* always-on shared expert width Fs; 0: none */
    float router_aux_loss_coef;  /* load-balancing loss alpha (Mixtral name) */
    float router_z_loss_coef;    /* router z-loss beta */
    int router_nexus;            /* 1: Nexus router (expert embeddings from domain embeddings) */
    int nexus_domain_dim;        /* D: width of the fixed domain embeddings */
    int nexus_hidden_size;       /* H: projector hidden width */
    int num_attention_experts;   /* mixture of attention n (BAM); 0 or 1: one attention */
    bool attention_shared_kv;    /* BAM shared-KV: one K and V for all attention experts */
} br_model_config_t;

/* Llama defaults for fields a file may omit (eps 1e-6, theta 10000, untied, sequential...);
 * size fields are 0 and must be set. */
void br_config_defaults(br_model_config_t *c);
/* Checks every size is positive, NH % NKV == 0, head_dim even, sizes fit the kernels' int
 * ranges, ...; BR_EINVAL naming the offending field(s). Fills head_dim when 0. */
br_status br_config_validate(br_model_config_t *c);
/* Parses and validates config.json text / file.  Rejects what braid does not implement
 * (model_type other than llama, mistral, qwen2, qwen3, mixtral, braid_moe; hidden_act other
 * than silu; attention_bias or mlp_bias where the architecture has none; rope_scaling types
 * other than linear and llama3; fields that change the math such as logit soft-capping) with
 * BR_EUNSUPPORTED naming the field. */
br_status br_config_parse(br_model_config_t *c, const char *json_text, size_t len);
br_status br_config_load(br_model_config_t *c, const char *path);
/* Writes config.json atomically (model_type "llama", architectures ["LlamaForCausalLM"], or the
 * architecture it was read as). */
br_status br_config_save(const br_model_config_t *c, const char *path);
/* Number of parameters (tied head counted once). */
size_t br_config_num_params(const br_model_config_t *c);

/* ------------------------------------------------------------------------------------------
 * Weights: pointers carved out of one allocation (params, grads, Adam m and v all share the
 * same layout, so `grads` is a br_weights_t over the gradient buffer).  Shapes are row-major,
 * HF layout: a projection weight is (out_features, in_features). */
typedef struct {
    /* With br_model_t.wt != BR_WT_F32 (a memory-mapped 16-bit checkpoint) the four matrices
     * hold that type (cast to float *: use only through the model's projection functions). */
    float *wq; /* (NH*hd, C)  model.layers.N.self_attn.q_proj.weight */
    float *wk; /* (NKV*hd, C) model.layers.N.self_attn.k_proj.weight */
    float *wv; /* (NKV*hd, C) model.layers.N.self_attn.v_proj.weight */
    float *wo; /* (C, NH*hd)  model.layers.N.self_attn.o_proj.weight */
    float *bq, *bk, *bv; /* (NH*hd), (NKV*hd) x2 self_attn.{q,k,v}_proj.bias (qkv_bias), else NULL */
    float *q_norm, *k_norm; /* (hd) self_attn.{q,k}_norm.weight (qk_norm), else NULL */
} br_attn_weights_t;

typedef struct {
    float *gate; /* (F, C) model.layers.N.mlp.gate_proj.weight */
    float *up;   /* (F, C) model.layers.N.mlp.up_proj.weight */
    float *down; /* (C, F) model.layers.N.mlp.down_proj.weight */
} br_ffn_weights_t;

typedef struct {
    float *attn_norm; /* (C) model.layers.N.input_layernorm.weight */
    float *ffn_norm;  /* (C) model.layers.N.post_attention_layernorm.weight; NULL if parallel */
    br_attn_weights_t attn;
    br_ffn_weights_t ffn;
    /* Mixtures (lm/config_moe.h names; NULL when dense).  With n attention experts attn.wq,
     * wk, wv, wo point at expert 0 of the experts' stacked matrices; with E FFN experts
     * ffn.gate, up, down point at expert 0 of (E,F,C), (E,F,C), (E,C,F). */
    float *attn_router;      /* (n, C) */
    float *ffn_router;       /* (E, C) linear router */
    float *nexus_in;         /* (2H, D) Nexus projector */
    float *nexus_out;        /* (C, H) */
    br_ffn_weights_t shared; /* always-on shared expert (Fs) */
} br_layer_weights_t;

typedef struct {
    float *embed;               /* (V, C) model.embed_tokens.weight */
    br_layer_weights_t *layers; /* (L) */
    float *final_norm;          /* (C) model.norm.weight */
    float *lm_head;             /* (V, C) lm_head.weight; == embed when tied */
    float *nexus_domains;       /* (E, D) fixed domain embeddings (Nexus), else NULL */
} br_weights_t;

/* One named parameter tensor: the table drives init, save, load and optimizer groups. */
#define BR_TENSOR_NAME_MAX 96
typedef struct {
    char name[BR_TENSOR_NAME_MAX]; /* HF name, e.g. "model.layers.0.mlp.up_proj.weight" */
    int ndim;                      /* 1 or 2 */
    int64_t shape[2];
    size_t offset;                 /* in floats, into params/grads/adam_m/adam_v */
    size_t numel;
    bool decay;                    /* AdamW weight decay applies (matrices yes, norms no) */
    bool is_norm;                  /* initialised to 1 (else N(0, initializer_range^2)) */
} br_tensor_info_t;

typedef struct br_model_acts br_model_acts_t;   /* training activations (model.c) */
typedef struct br_model_infer br_model_infer_t; /* inference scratch (model.c) */

typedef struct {
    br_model_config_t cfg;
    size_t n_params;
    float *params;          /* (n_params) one allocation */
    float *grads;           /* (n_params) or NULL (inference, or LoRA-only training) */
    float *adam_m, *adam_v; /* (n_params) or NULL until the first br_model_adamw */
    br_weights_t w;         /* into params */
    br_weights_t g;         /* into grads (all NULL when grads == NULL) */
    br_tensor_info_t *tensors;
    size_t n_tensors;
    long step;              /* AdamW steps taken (t of the bias correction is step + 1) */
    float *rope_cos, *rope_sin; /* (max_position_embeddings, hd/2) */
    br_model_acts_t *acts;      /* grown on demand by training/eval calls */
    br_model_infer_t *infer;    /* grown on demand by br_model_forward_batch */
    struct br_model_moe *moe;   /* MoE/MoA workspaces (lm/model_moe.c), NULL when dense */
    uint64_t *route_counts;     /* (L, E) or NULL: when set by the caller, every forward adds
                                 * each layer's (token, expert) assignments (routing stats) */
    /* Inference view of a 16-bit checkpoint (br_model_open): params == NULL, every matrix
     * (embed, projections, lm_head) is of type wt and points into the memory-mapped files held
     * by `map`; 1-D tensors (norms, biases) are F32 copies.  wt == BR_WT_F32 otherwise. */
    br_wtype wt;
    /* The stored type of each matrix (a view of a GGUF file mixes them: llama.cpp's Q4_K_M
     * keeps some matrices in Q6_K, some files an F32 or Q8_0 output): proj_wt[l *
     * BR_PROJ_COUNT + p] is layer l's projection p (a mixture's routed experts: their stack),
     * embed_wt the embedding, head_wt the LM head.  All F32 for a model with parameters; for
     * a view wt is the type most matrices have (use br_model_proj_wt for one matrix). */
    br_wtype *proj_wt; /* (L * BR_PROJ_COUNT) */
    br_wtype embed_wt, head_wt;
    struct br_model_map *map;   /* the mapped shards (lm/hf_load.c), NULL when not a view */
    br_kv_type kv_type;         /* KV cache type br_generate and the server use (F32 default) */
} br_model_t;

/* A zero-initialised model (params all 0; call br_model_init_random or load).  with_grads
 * allocates the gradient buffer too. */
br_status br_model_create(br_model_t **out, const br_model_config_t *cfg, bool with_grads);
void br_model_free(br_model_t *m); /* NULL is a no-op */
/* The stored type of layer `layer`'s projection p (layer < 0: the LM head). */
br_wtype br_model_proj_wt(const br_model_t *m, int layer, br_proj p);
/* Gradient buffer on demand (e.g. after loading for training). */
br_status br_model_alloc_grads(br_model_t *m);
/* HF init: matrices and embeddings N(0, initializer_range^2), norms 1. Deterministic. */
void br_model_init_random(br_model_t *m, uint64_t seed);
/* Index into m->tensors by HF name, or -1. */
int br_model_find_tensor(const br_model_t *m, const char *name);

/* ------------------------------------------------------------------------------------------
 * Checkpoints.  DIR/config.json + DIR/model.safetensors or its shards (HF names; F32, F16 or BF16 in, `dtype`
 * out: BR_DT_F32 or BR_DT_BF16/F16).  Missing, extra or mis-shaped tensors are BR_EFORMAT
 * naming the tensor.  Each file is written atomically; model.safetensors is written before
 * config.json. */
br_status br_model_load(br_model_t **out, const char *dir, bool with_grads);
br_status br_model_save(const br_model_t *m, const char *dir, int dtype /* br_dtype */);
/* For inference: DIR as the Hub holds it (config.json; model.safetensors or shards with
 * model.safetensors.index.json).  A dense BF16 or F16 checkpoint is run in place: its
 * matrices stay 16-bit in the memory-mapped files (m->wt, m->map; no F32 copy; saving,
 * gradients and training the base weights refuse such a model, LoRA-only training runs on it).  F32 files, mixed types and mixtures load as
 * br_model_load(dir, false) does.  A path ending in .gguf that is not a folder is read by
 * br_model_open_gguf (lm/gguf.h).  Errors as br_model_load. */
br_status br_model_open(br_model_t **out, const char *dir);
/* An inference copy of the F32 model src whose matrices (embedding, projections, lm_head) are
 * stored as wt (BF16, F16, Q8_0, Q4_0, Q4_K or Q6_K: br_wtype_quantize, llama.cpp's rounding); 1-D tensors
 * stay F32.  The result is a view like br_model_open's (m->wt = wt; training and saving refuse
 * it) that owns its buffers; src is not changed and may be freed.  BR_EINVAL when a matrix row
 * is not a whole number of the type's blocks (naming the tensor), BR_EUNSUPPORTED for a mixture
 * or a src without F32 parameters. */
br_status br_model_quantize(br_model_t **out, const br_model_t *src, br_wtype wt);
/* What braid makes of a model folder, without loading it (braid inspect).  BR_OK whenever DIR
 * has a config.json; the two statuses say whether braid runs the config and whether the
 * weights match it (with the message). */
typedef struct {
    br_model_config_t cfg;          /* valid when config_status == BR_OK */
    br_status config_status, weights_status;
    char config_error[512], weights_error[512];
    size_t n_shards, n_tensors, n_elements, bytes; /* of the safetensors files */
    size_t dtype_elements[BR_DT_COUNT];             /* elements per stored dtype (base/dtype.h) */
    br_wtype wt;                    /* what br_model_open would run the matrices as */
} br_model_info_t;
br_status br_model_inspect(const char *dir, br_model_info_t *info);
/* Loads weights from a safetensors file into an existing model of matching config. */
br_status br_model_load_weights(br_model_t *m, const char *safetensors_path);

/* Training state for exact resume, in ONE atomically written file (so it can never be torn
 * between weights and optimizer): DIR/optimizer.safetensors holds "param.<name>" (F32
 * weights), "exp_avg.<name>" and "exp_avg_sq.<name>" for every parameter, and metadata: step
 * and the opaque `extra` string (the trainer stores its data-loader state and flags there as
 * JSON).  Loading restores weights, AdamW state and step. */
br_status br_model_save_optimizer(const br_model_t *m, const char *dir, const char *extra);
/* *extra (malloc'd, may be NULL) receives the stored string. */
br_status br_model_load_optimizer(br_model_t *m, const char *dir, char **extra);

/* ------------------------------------------------------------------------------------------
 * The projection every layer uses: out (N,OC) = inp (N,C) W^T (br_linear_forward), then
 * lora->apply when lora != NULL. */
void br_model_proj_forward(float *out, const float *inp, const float *w, size_t N, size_t C,
                           size_t OC, const br_lora_hook_t *lora, int layer, br_proj proj);
/* dinp (N,C) += dout W (+ the adapter's part); dw (OC,C) += dout^T inp unless dw == NULL
 * (frozen base); lora->backward when lora and lora->backward are set. */
void br_model_proj_backward(float *dinp, float *dw, const float *dout, const float *inp,
                            const float *w, size_t N, size_t C, size_t OC,
                            const br_lora_hook_t *lora, int layer, br_proj proj);

/* ------------------------------------------------------------------------------------------
 * Training: B sequences of T tokens starting at position 0. */
typedef struct {
    const br_lora_hook_t *lora; /* NULL: no adapter */
    bool train_base;            /* false: no base-weight gradients (LoRA-only training; grads
                                 * may then be NULL, and the model may be a BF16/F16 view of
                                 * br_model_open: input gradients through br_matmul_dinp) */
    float loss_scale;           /* multiplies d(mean loss); 1/accum_steps for accumulation */
    bool train_routers;         /* with train_base false: gradients of the mixtures' routers
                                 * only (FFN and attention routers, Nexus projector) */
} br_train_opts_t;

/* Forward and backward on inputs, targets (B,T) (target < 0: ignored).  Adds into m->grads
 * (call br_model_zero_grad once per optimizer step) and returns the mean loss over non-ignored
 * targets in *loss.  BR_ERANGE for a token id >= vocab or T > max_position_embeddings.
 * Allocates activations on the first call for a (B,T) larger than before; none afterwards. */
br_status br_model_train_step(br_model_t *m, const int32_t *inputs, const int32_t *targets,
                              size_t B, size_t T, const br_train_opts_t *opts, float *loss);
void br_model_zero_grad(br_model_t *m);

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    float clip;                 /* global grad-norm clip (<= 0: none) */
} br_adamw_opts_t;
/* Clips, then one AdamW step on every parameter (decay only where tensors[i].decay);
 * allocates m/v on first use; m->step++.  Returns the gradient norm before clipping. */
br_status br_model_adamw(br_model_t *m, const br_adamw_opts_t *o, float *grad_norm);

/* Mixtures: the last training step's load-balancing loss (1 = balanced) and router z-loss,
 * averaged over layers (both 0 for a dense model).  Not part of *loss; their gradients are. */
void br_model_moe_aux(const br_model_t *m, float *lb, float *z);

/* Forward only: losses (B*T) = -log p(targets) (0 where target < 0); returns the mean in
 * *mean_loss (may be NULL).  Evaluation and scoring use this. */
br_status br_model_forward_loss(br_model_t *m, const int32_t *inputs, const int32_t *targets,
                                size_t B, size_t T, const br_lora_hook_t *lora, float *losses,
                                float *mean_loss);
/* Forward only: hidden (B*T, C) = the final RMSNorm output (what the LM head reads), e.g. for
 * Nexus domain embeddings (mean over a domain's tokens). */
br_status br_model_forward_hidden(br_model_t *m, const int32_t *inputs, size_t B, size_t T,
                                  float *hidden);
/* Forward only: xn (L, B*T, C) = each layer's FFN-part input, which is what that layer's router
 * reads: the post-attention RMSNorm output (sequential blocks) or the input RMSNorm output
 * (parallel blocks, where the attention router reads it too).  Router initialisation from
 * domain text (moe/router_init.h) averages it. */
br_status br_model_forward_ffn_inputs(br_model_t *m, const int32_t *inputs, size_t B, size_t T,
                                      float *xn);
/* Forward only: logits (B*T, V). */
br_status br_model_forward_logits(br_model_t *m, const int32_t *inputs, size_t B, size_t T,
                                  const br_lora_hook_t *lora, float *logits);

/* ------------------------------------------------------------------------------------------
 * Paged KV cache.  One pool holds fixed-size pages of `page_tokens` positions for every layer:
 * k and v of page p are (L, NKV, page_tokens, hd) each.  The pool only hands out and takes
 * back pages; which sequence owns which pages (its page table) is the caller's business
 * (serve/'s scheduler, or generate). */
typedef struct br_kv_pool br_kv_pool_t;
/* As many pages as fit in budget_bytes (at least one, else BR_ENOMEM); F32 K and V. */
br_status br_kv_pool_create(br_kv_pool_t **out, const br_model_config_t *cfg,
                            size_t page_tokens, size_t budget_bytes);
/* The same with K and V stored as `type` (BR_KV_F16: half the bytes per page, so twice the
 * pages for a budget; values rounded to nearest even when written, widened exactly when read). */
br_status br_kv_pool_create_typed(br_kv_pool_t **out, const br_model_config_t *cfg,
                                  size_t page_tokens, size_t budget_bytes, br_kv_type type);
br_kv_type br_kv_pool_type(const br_kv_pool_t *p);
/* "f32" / "f16" (the --kv-type spelling) and back; BR_EINVAL naming the choices. */
const char *br_kv_type_name(br_kv_type t);
br_status br_kv_type_parse(const char *s, br_kv_type *out);
void br_kv_pool_free(br_kv_pool_t *p); /* NULL is a no-op */
size_t br_kv_pool_page_tokens(const br_kv_pool_t *p);
size_t br_kv_pool_page_bytes(const br_kv_pool_t *p);
size_t br_kv_pool_pages_total(const br_kv_pool_t *p);
size_t br_kv_pool_pages_free(const br_kv_pool_t *p);
/* BR_EBUSY when no page is free. */
br_status br_kv_pool_alloc_page(br_kv_pool_t *p, int32_t *page);
/* Returns a page to the pool (double frees and bad ids are ignored with a warning). */
void br_kv_pool_free_page(br_kv_pool_t *p, int32_t page);

/* ------------------------------------------------------------------------------------------
 * Batched inference: rows of different sequences at different positions in one call
 * (prefill chunks and single decode tokens mixed).  Row order is the concatenation of every
 * seq's tokens in array order; a LoRA hook sees exactly those N rows (its ctx maps row ->
 * adapter). */
enum { BR_LOGITS_NONE = 0, BR_LOGITS_LAST = 1, BR_LOGITS_ALL = 2 };
typedef struct {
    const int32_t *tokens;  /* (n_tokens) tokens to run */
    size_t n_tokens;        /* >= 1 */
    size_t start_pos;       /* position of tokens[0]; the cache holds [0, start_pos) already */
    const int32_t *pages;   /* page table: pages[i] holds positions [i*P, (i+1)*P) */
    size_t n_pages;         /* must cover start_pos + n_tokens positions */
    int want_logits;        /* BR_LOGITS_NONE | _LAST (1 row) | _ALL (n_tokens rows) */
} br_seq_t;

/* Writes K/V of the new tokens into the pages and the logits wanted, in seq order, into
 * logits_out (R, V) (R = rows wanted; may be NULL when R == 0).  BR_ERANGE for a token id
 * >= vocab or a position >= max_position_embeddings ("prompt longer than the context"),
 * BR_EINVAL for a page table too short or a bad page id.  Calls with fewer than 64 rows run
 * on one thread (br_set_threads(1) for the call, then restored) unless the model's FFN matrix
 * holds >= 4 MiB of weights (lm/infer.c, DECODE_PAR_BYTES): do not run other GEMM work
 * concurrently from another thread and expect it to be parallel meanwhile. */
br_status br_model_forward_batch(br_model_t *m, br_kv_pool_t *kv, const br_seq_t *seqs,
                                 size_t nseq, const br_lora_hook_t *lora, float *logits_out);
#endif
