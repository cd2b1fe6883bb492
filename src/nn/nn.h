/* Layers with forward and backward, llm.c-style free functions: outputs first, sizes last, a
 * shape comment on every pointer.  Backward functions ADD (+=) into every gradient they write
 * (dinp included), so one zero_grad per step suffices.  N = number of rows (B*T tokens).
 *
 * Every backward here has a finite-difference gradient check in tests/test_nn_grad.c. */
#ifndef BR_NN_NN_H
#define BR_NN_NN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- linear: y = x W^T (every projection of every model goes through here) ---- */
/* out (N,OC) = inp (N,C) @ w^T, w (OC,C).  Overwrites out. */
void br_linear_forward(float *out, const float *inp, const float *w, size_t N, size_t C, size_t OC);
/* dinp (N,C) += dout @ w; dw (OC,C) += dout^T @ inp.  Either may be NULL (not needed). */
void br_linear_backward(float *dinp, float *dw, const float *dout, const float *inp,
                        const float *w, size_t N, size_t C, size_t OC);

/* Projections a LoRA adapter may target (PEFT module names in comments). */
typedef enum {
    BR_PROJ_Q,    /* q_proj */
    BR_PROJ_K,    /* k_proj */
    BR_PROJ_V,    /* v_proj */
    BR_PROJ_O,    /* o_proj */
    BR_PROJ_GATE, /* gate_proj */
    BR_PROJ_UP,   /* up_proj */
    BR_PROJ_DOWN, /* down_proj */
    BR_PROJ_COUNT
} br_proj;

/* Optional per-row low-rank update after a base projection (batched LoRA lives behind this:
 * nn/lora.c).  The model calls apply() right after br_linear_forward for projection `proj`
 * of layer `layer`; backward() (optional, for LoRA training) accumulates the adapter's own
 * gradients inside ctx and adds its contribution to dinp (N,C) when dinp is not NULL. */
typedef struct br_lora_hook {
    void (*apply)(const struct br_lora_hook *h, float *out /* (N,OC) += */,
                  const float *inp /* (N,C) */, size_t N, size_t C, size_t OC, int layer,
                  br_proj proj);
    void (*backward)(const struct br_lora_hook *h, float *dinp /* (N,C) +=, may be NULL */,
                     const float *dout /* (N,OC) */, const float *inp /* (N,C) */, size_t N,
                     size_t C, size_t OC, int layer, br_proj proj);
    void *ctx;
    /* Optional: the same on one expert's projection inside a mixture (nn/moe.h), over the n
     * rows that use it.  Local row i is the batch row asg[i] / k (asg: the MoE's assignment
     * ids token*k + slot; NULL: row i).  proj is gate/up/down for a routed FFN expert
     * (Mixtral's w1/w3/w2), q/k/v/o for a BAM attention expert.  Rows are ldo (out, dout) and
     * ldi (inp, dinp) floats apart: an attention expert's block of a stacked projection. */
    void (*apply_expert)(const struct br_lora_hook *h, float *out /* (n,OC) +=, ldo */, size_t ldo,
                         const float *inp /* (n,C), ldi */, size_t ldi, const int32_t *asg /* (n) */,
                         size_t k, size_t n, size_t C, size_t OC, int layer, int expert, br_proj proj);
    void (*backward_expert)(const struct br_lora_hook *h, float *dinp /* (n,C) +=, ldi; may be NULL */,
                            const float *dout /* (n,OC), ldo */, size_t ldo, const float *inp /* (n,C), ldi */,
                            size_t ldi, const int32_t *asg /* (n) */, size_t k, size_t n, size_t C,
                            size_t OC, int layer, int expert, br_proj proj);
} br_lora_hook_t;

/* ---- embedding ---- */
/* out (N,C) = wte[tokens[i]]; tokens (N) must be < V (checked by the caller). */
void br_embedding_forward(float *out, const int32_t *tokens, const float *wte, size_t N, size_t C);
/* dwte (V,C) += scatter of dout (N,C). */
void br_embedding_backward(float *dwte, const float *dout, const int32_t *tokens, size_t N, size_t C);

/* ---- RMSNorm (Llama): out = x / sqrt(mean(x^2) + eps) * w ---- */
/* out (N,C), rstd (N) saved for backward (may be NULL at inference), inp (N,C), w (C). */
void br_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, float eps,
                        size_t N, size_t C);
/* dinp (N,C) +=, dw (C) += (may be NULL). */
void br_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp,
                         const float *w, const float *rstd, size_t N, size_t C);

/* ---- RoPE, Hugging Face Llama convention (rotate_half: pairs (i, i + hd/2)) ---- */
/* cos, sin (maxpos, hd/2): cos(pos * theta^(-2i/hd)). */
void br_rope_tables(float *cos, float *sin, size_t maxpos, size_t hd, float theta);
/* x (N,H,hd) rotated in place; pos (N) is each row's absolute position (rows may belong to
 * different sequences at different positions). */
void br_rope_forward(float *x, const int32_t *pos, const float *cos, const float *sin, size_t N,
                     size_t H, size_t hd);
/* dx (N,H,hd) in place: the inverse rotation (RoPE is orthogonal). */
void br_rope_backward(float *dx, const int32_t *pos, const float *cos, const float *sin,
                      size_t N, size_t H, size_t hd);

/* ---- causal self-attention with grouped-query attention (training / full prefill) ---- */
/* B sequences of T tokens, NH query heads, NKV key/value heads (NH % NKV == 0), head dim hd.
 * q (B,T,NH,hd), k, v (B,T,NKV,hd), out (B,T,NH,hd); att (B,NH,T,T) keeps the softmax
 * probabilities for backward (entries above the diagonal are 0).  Scale 1/sqrt(hd). */
void br_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                          size_t B, size_t T, size_t NH, size_t NKV, size_t hd);
/* dq (B,T,NH,hd) +=, dk, dv (B,T,NKV,hd) +=. */
void br_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                           const float *q, const float *k, const float *v, size_t B, size_t T,
                           size_t NH, size_t NKV, size_t hd);

/* ---- SwiGLU: out = silu(gate) * up, elementwise over n = N*F values ---- */
void br_swiglu_forward(float *out, const float *gate, const float *up, size_t n);
/* dgate, dup (n) +=. */
void br_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                        const float *up, size_t n);

/* ---- softmax and cross-entropy over a vocabulary ---- */
/* out (N,V) = softmax(inp) row-wise (out may equal inp). */
void br_softmax_forward(float *out, const float *inp, size_t N, size_t V);
/* dinp (N,V) += J^T dout given probs = softmax output. */
void br_softmax_backward(float *dinp, const float *dout, const float *probs, size_t N, size_t V);
/* losses (N) = -log softmax(logits)[target]; probs (N,V) receives softmax(logits) (may equal
 * logits: then logits are overwritten).  target < 0 means ignore: loss 0.  Returns the mean
 * loss over non-ignored rows (0 when none). */
float br_xent_forward(float *losses, float *probs, const float *logits, const int32_t *targets,
                      size_t N, size_t V);
/* dlogits (N,V) += scale * (probs - onehot(target)) for non-ignored rows (scale = 1/count for
 * the mean loss).  dlogits may equal probs (then it is overwritten, not added). */
void br_xent_backward(float *dlogits, const float *probs, const int32_t *targets, float scale,
                      size_t N, size_t V);
/* Forward and backward in one pass over each row (the fast path for training): losses (N),
 * dlogits (N,V) = scale * (softmax(logits) - onehot(target)), overwritten (not added), zero
 * for ignored rows; dlogits may equal logits.  Returns the mean loss over non-ignored rows. */
float br_xent_fused(float *losses, float *dlogits, const float *logits, const int32_t *targets,
                    float scale, size_t N, size_t V);

/* ---- elementwise ---- */
void br_add(float *out, const float *a, const float *b, size_t n); /* out = a + b */
void br_add_inplace(float *acc, const float *x, size_t n);         /* acc += x */
void br_scale_inplace(float *x, float s, size_t n);

/* ---- optimisation ---- */
/* AdamW with decoupled weight decay and bias correction; t >= 1 is the step number.
 * p, g, m, v (n).  Call once per parameter group (e.g. weight_decay 0 for norms). */
void br_adamw_step(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                   float beta2, float eps, float weight_decay, int t);
/* sqrt(sum g^2) in double precision. */
double br_sum_squares(const float *g, size_t n);
/* Global-norm clipping over one flat gradient buffer: scales g so its norm <= max_norm (no-op
 * when max_norm <= 0).  Returns the norm before clipping. */
float br_clip_grad_norm(float *g, size_t n, float max_norm);
/* Linear warmup for `warmup` steps to lr_max, then cosine decay to lr_min at `total` steps
 * (constant lr_min after).  step is 0-based. */
float br_lr_cosine(long step, long warmup, long total, float lr_max, float lr_min);
#endif
