/* Private to src/lm (and moe/ when it extends the parts): the attention and FFN parts of a
 * block as separate functions, shared by the training forward (model.c) and the batched
 * inference forward (infer.c).  A mixture of attention experts or an MoE FFN replaces the
 * body of these functions, not their callers. */
#ifndef BR_LM_MODEL_INTERNAL_H
#define BR_LM_MODEL_INTERNAL_H
#include "lm/model.h"

/* Sizes of one model, as size_t. */
typedef struct {
    size_t V, C, F, L, NH, NKV, hd, Dq, Dkv, maxpos;
} br_dims_t;
br_dims_t br_model_dims(const br_model_t *m);

/* Attention part, input side: q (N,Dq), k, v (N,Dkv) = projections of xn (N,C), q and k
 * rotated by RoPE at positions pos (N). */
void br_attn_part_qkv(const br_model_t *m, int l, float *q, float *k, float *v, const float *xn,
                      const int32_t *pos, size_t N, const br_lora_hook_t *lora);
/* Attention part, output side: out (N,C) = o_proj(ao (N,Dq)). */
void br_attn_part_out(const br_model_t *m, int l, float *out, const float *ao, size_t N,
                      const br_lora_hook_t *lora);

/* FFN part: out (N,C) = down(silu(gate(xn)) * up(xn)); gate, up, act (N,F) keep the
 * intermediate values (for backward). */
void br_ffn_part_forward(const br_model_t *m, int l, float *out, const float *xn, float *gate,
                         float *up, float *act, size_t N, const br_lora_hook_t *lora);

/* Checks every token id is < vocab (BR_ERANGE naming the first bad one and its index). */
br_status br_model_check_tokens(const br_model_t *m, const int32_t *tokens, size_t n);
#endif
