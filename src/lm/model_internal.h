/* Private to src/lm (and moe/ when it extends the parts): the attention and FFN parts of a
 * block as separate functions, shared by the training forward (model.c) and the batched
 * inference forward (infer.c).  A mixture of attention experts or an MoE FFN replaces the
 * body of these functions, not their callers. */
#ifndef BR_LM_MODEL_INTERNAL_H
#define BR_LM_MODEL_INTERNAL_H
#include "base/safetensors.h"
#include "lm/model.h"

/* Sizes of one model, as size_t. */
typedef struct {
    size_t V, C, F, L, NH, NKV, hd, Dq, Dkv, maxpos;
} br_dims_t;
br_dims_t br_model_dims(const br_model_t *m);

/* The parameter table of a validated config (names, shapes, offsets in build order; the
 * order carve() in model.c follows): fills the first min(cap, *n_tensors) entries of tensors
 * (NULL with cap 0: only counts), sets *n_tensors to the table's full length and returns the
 * number of floats.  Allocates nothing, so a loader can check a file against the config before
 * allocating any weight. */
size_t br_model_table(const br_model_config_t *cfg, br_tensor_info_t *tensors, size_t cap,
                      size_t *n_tensors);

/* An inference view (br_model_t.wt, .map): tensor i of the table is at ptrs[i] of type wts[i]
 * (wts NULL: 2-D tensors of type wt, 1-D ones F32; 1-D tensors are always F32); the caller
 * keeps that memory alive (sets m->map, which br_model_free releases through br_lm_map_free).
 * Matrices keep their own types (br_model_t.proj_wt); a mixture's routed experts of one kind
 * must be one stack of one type (GGUF's 3-D tensors) and its routers F32.  BR_EUNSUPPORTED for
 * a mixture of attention experts, a Nexus router, or a weight type the active kernel table
 * lacks. */
br_status br_model_create_view(br_model_t **out, const br_model_config_t *cfg, br_wtype wt,
                               float *const *ptrs, const br_wtype *wts);
void br_lm_map_free(struct br_model_map *map); /* NULL is a no-op */
/* A view over n buffers (br_alloc'd, table order; 1-D tensors F32, matrices wt) that the view
 * then owns; owned (calloc'd) is taken over in every case, freed on failure. */
br_status br_lm_view_adopt(br_model_t **out, const br_model_config_t *cfg, br_wtype wt, void **owned,
                           size_t n);
/* A view whose tensor i is at ptrs[i] (taken over, calloc'd), pointing into owned[i] where that
 * is set (taken over) or into the memory `keep` holds (e.g. an open GGUF mapping), which the
 * view releases with keep_free(keep) when it is freed.  Everything is taken over (and
 * released on failure). */
br_status br_lm_view_mapped(br_model_t **out, const br_model_config_t *cfg, br_wtype wt, float **ptrs,
                            void **owned, size_t n, void *keep, void (*keep_free)(void *));
/* br_lm_view_mapped with tensor i of type wts[i] (br_model_create_view; wts is not kept). */
br_status br_lm_view_mapped_typed(br_model_t **out, const br_model_config_t *cfg, br_wtype wt,
                                  const br_wtype *wts, float **ptrs, void **owned, size_t n, void *keep,
                                  void (*keep_free)(void *));
/* *out (br_alloc'd) = tensor t's F32 data stored as wt, row by row (rows = shape[0] of a
 * matrix); BR_EINVAL naming the tensor when its rows are not whole blocks of wt. */
br_status br_lm_quantize_tensor(void **out, const br_tensor_info_t *t, const float *data, br_wtype wt);

/* out (N,C) = the embedding rows of tokens (any weight type). */
void br_model_embed(const br_model_t *m, float *out, const int32_t *tokens, size_t N);
/* br_model_proj_forward for a matrix of the model's weight type m->wt (the F32 call is the
 * very same). */
void br_model_proj(const br_model_t *m, float *out, const float *inp, const float *w, size_t N,
                   size_t C, size_t OC, const br_lora_hook_t *lora, int layer, br_proj proj);

/* Attention part, input side: q (N,Dq), k, v (N,Dkv) = projections of xn (N,C) (+ biases;
 * q and k RMS-normed per head when the config has q/k norms), q and k rotated by RoPE at
 * positions pos (N). */
void br_attn_part_qkv(const br_model_t *m, int l, float *q, float *k, float *v, const float *xn,
                      const int32_t *pos, size_t N, const br_lora_hook_t *lora);
/* Attention part, output side: out (N,C) = o_proj(ao (N,Dq)). */
void br_attn_part_out(const br_model_t *m, int l, float *out, const float *ao, size_t N,
                      const br_lora_hook_t *lora);

/* FFN part: out (N,C) = down(silu(gate(xn)) * up(xn)); gate, up, act (N,F) keep the
 * intermediate values (for backward). */
void br_ffn_part_forward(const br_model_t *m, int l, float *out, const float *xn, float *gate,
                         float *up, float *act, size_t N, const br_lora_hook_t *lora);

/* Mixture parts (model_moe.c): an MoE FFN and/or a mixture of attention replace the dense
 * parts when the config asks for them.  Training keeps one workspace per layer (slot = l),
 * evaluation one shared (slot 0). */
typedef struct br_model_moe br_model_moe_t;
br_status br_moe_rt_create(br_model_t *m);        /* no-op for a dense config */
void br_moe_rt_free(br_model_t *m);
br_status br_moe_rt_ensure(br_model_t *m, size_t B, size_t T, bool train);
br_status br_moe_rt_ensure_rows(br_model_t *m, size_t N); /* inference buffers */
bool br_moe_has_ffn(const br_model_t *m);
bool br_moe_has_moa(const br_model_t *m);
/* lora (may be NULL): its apply_expert / backward_expert adapt the routed experts and BAM's
 * attention experts, its apply / backward shared-KV BAM's one K and V. */
void br_moe_ffn_part(br_model_t *m, int l, size_t slot, float *out, const float *xn, size_t N,
                     const br_lora_hook_t *lora);
void br_moe_ffn_part_backward(br_model_t *m, int l, float *dxn, const float *dout,
                              const float *xn, size_t N, bool base, bool routers, float aux_scale,
                              const br_lora_hook_t *lora);
void br_moe_attn_part(br_model_t *m, int l, size_t slot, float *out, const float *xn, size_t B,
                      size_t T, const br_lora_hook_t *lora);
void br_moe_attn_part_backward(br_model_t *m, int l, float *dxn, const float *dout,
                               const float *xn, size_t B, size_t T, bool base, bool routers,
                               float aux_scale, const br_lora_hook_t *lora);
void br_moe_infer_qkv(const br_model_t *m, int l, float *q, float *k, float *v, const float *xn,
                      const int32_t *pos, size_t N, const br_lora_hook_t *lora);
void br_moe_infer_attn_out(const br_model_t *m, int l, float *out, const float *ao, size_t N,
                           const br_lora_hook_t *lora);
void br_moe_infer_ffn(br_model_t *m, int l, float *out, const float *xn, size_t N,
                      const br_lora_hook_t *lora);

/* A model folder as the Hub holds it (lm/hf_load.c): config.json, and model.safetensors or
 * the shards listed by model.safetensors.index.json, every file memory-mapped. */
typedef struct {
    br_model_config_t cfg;
    struct br_safetensors **shards; /* (n_shards) */
    size_t n_shards;
    const br_st_tensor_t **tensors; /* (n_tensors) every shard's tensors, names unique */
    size_t n_tensors;
    char label[4096];               /* "DIR/model.safetensors" or "DIR/model.safetensors.index.json" */
} br_lm_folder_t;
/* BR_ENOTFOUND without config.json or weights; BR_EFORMAT for a bad index (a shard it names
 * missing or escaping DIR, a tensor in two shards or not in the shard the index names). */
br_status br_lm_folder_open(br_lm_folder_t *f, const char *dir);
void br_lm_folder_close(br_lm_folder_t *f); /* idempotent */
/* Checks every dimension of cfg against the tensors all (nf) before anything is allocated;
 * *found (table order, free() it) receives the tensor for each parameter (checkpoint.c). */
br_status br_lm_check_tensors(const br_model_config_t *cfg, const br_st_tensor_t *const *all, size_t nf,
                              const char *path, const br_st_tensor_t ***found);

/* Checks every token id is < vocab (BR_ERANGE naming the first bad one and its index). */
br_status br_model_check_tokens(const br_model_t *m, const int32_t *tokens, size_t n);
#endif
