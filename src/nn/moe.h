/* Mixture-of-experts layers: the MoE FFN (linear top-k router or Nexus router, optional
 * always-on shared expert), the mixture of attention (BAM: soft router over attention experts,
 * expert-KV or shared-KV) and the Nexus router's expert-embedding projector.
 *
 * Same conventions as nn.h: outputs first, sizes last, a shape comment on every pointer,
 * backward ADDS (+=) into every gradient it writes (dinp included); gradient pointers that are
 * NULL are skipped (frozen).  The dense layer is the n = 1 case of each (no router, no copies):
 * a model never needs a separate dense path.
 *
 * Every backward here has a finite-difference gradient check in tests/test_nn_moe_grad.c. */
#ifndef BR_NN_MOE_H
#define BR_NN_MOE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"
#include "kernels/kernels.h"
#include "nn/nn.h"

/* =====================================  MoE FFN  ===================================== *
 * out = sum_{i in topk(p)} w_i * FFN_i(x)  [+ FFN_shared(x)],   p = softmax(x R^T)
 * FFN(x) = (silu(x Wg^T) * (x Wu^T)) Wd^T  (SwiGLU; Mixtral's w1 = gate, w3 = up, w2 = down)
 * w_i = p_i, or p_i / sum_{j in topk} p_j when renorm.
 * Tokens are bucketed per expert with a counting sort (stable: token order inside a bucket),
 * each expert runs one GEMM chain over its contiguous rows, results are scatter-added back
 * with their weights; backward reuses the same permutation.
 * Auxiliary losses (reported by forward, their gradients added by backward):
 *   load balance  lb = E * sum_i f_i P_i,  f_i = share of the N*k (token, slot) assignments
 *                 that went to expert i (no gradient), P_i = mean over tokens of p_i
 *                 (lb = 1 when perfectly balanced, E when collapsed onto one expert);
 *   router z-loss z  = mean over tokens of logsumexp(router logits)^2.
 *   The training loss adds alpha * lb + beta * z per layer. */
typedef struct {
    size_t C;    /* model width */
    size_t F;    /* hidden width of each routed expert */
    size_t E;    /* routed experts; 1 = a dense FFN (no router) */
    size_t k;    /* experts per token, 1 <= k <= E */
    bool renorm; /* divide the chosen probabilities by their sum */
    size_t Fs;   /* hidden width of the always-on shared expert; 0 = no shared expert */
    float alpha; /* load-balancing loss coefficient (e.g. 0.01) */
    float beta;  /* router z-loss coefficient (e.g. 0.001) */
} br_moe_cfg_t;

/* Parameters, or their gradients (same shapes).  Experts are stacked: expert e's gate matrix
 * is w_gate + e*F*C.  router and the shared expert are unused (may be NULL) when E == 1 /
 * Fs == 0. */
typedef struct {
    float *router; /* (E,C) */
    float *w_gate; /* (E,F,C) */
    float *w_up;   /* (E,F,C) */
    float *w_down; /* (E,C,F) */
    float *s_gate; /* (Fs,C) */
    float *s_up;   /* (Fs,C) */
    float *s_down; /* (C,Fs) */
    /* Stored types of the routed experts' stacks (zero: BR_WT_F32, the float stacks above).
     * Another type (an inference view of a GGUF file) makes a stack E matrices of rows of that
     * type (br_wtype_row_bytes), one after the other; with one, training the experts' weights
     * is not possible (their gradient fields must be NULL), the input gradient still flows. */
    br_wtype wt_gate, wt_up, wt_down;
} br_moe_params_t;

/* Saved activations of one forward (for backward and for routing statistics) and backward
 * scratch.  One per layer when training; one shared by all layers at inference. */
typedef struct {
    size_t cap;      /* rows it was sized for */
    size_t N;        /* rows of the last forward */
    bool training;   /* backward scratch allocated */
    /* routing of the last forward (E > 1) */
    float *logits;   /* (N,E) router logits */
    float *probs;    /* (N,E) softmax of the logits */
    float *lse;      /* (N) logsumexp of each row of logits */
    int32_t *topk;   /* (N,k) chosen experts, most probable first */
    float *topw;     /* (N,k) their weights */
    size_t *count;   /* (E) assignments per expert (the load) */
    size_t *offset;  /* (E+1) start of each expert's bucket in sorted order */
    int32_t *perm;   /* (N*k) sorted position -> assignment (token*k + slot) */
    int32_t *pos;    /* (N*k) assignment -> sorted position */
    float lb;        /* load-balancing loss (unscaled), see above */
    float z;         /* router z-loss (unscaled) */
    /* expert activations, rows in sorted order (E == 1: token order, xs unused) */
    float *xs;       /* (N*k,C) gathered inputs */
    float *hg, *hu;  /* (N*k,F) gate and up projections */
    float *act;      /* (N*k,F) silu(hg) * hu */
    float *ys;       /* (N*k,C) unweighted expert outputs */
    float *sg, *su, *sact; /* (N,Fs) shared expert */
    /* backward scratch */
    float *dys;      /* (N*k,C) weighted output gradient, then the input gradient */
    float *dact, *dhg, *dhu; /* (N*k,F) */
    float *dsact, *dsg, *dsu; /* (N,Fs) */
    float *dtopw;    /* (N,k) */
    float *dprobs;   /* (N,E) */
    float *dlogits;  /* (N,E) */
} br_moe_ws_t;

/* Checks the configuration (names the bad field). */
br_status br_moe_cfg_check(const br_moe_cfg_t *c);
/* Allocates a workspace for up to cap rows (backward scratch only when training). */
br_status br_moe_ws_init(br_moe_ws_t *ws, const br_moe_cfg_t *c, size_t cap, bool training);
void br_moe_ws_free(br_moe_ws_t *ws); /* zeroed struct is a no-op */
/* Number of floats of parameters (for one allocation of everything). */
size_t br_moe_nparams(const br_moe_cfg_t *c);
/* Parameters a token actually uses (router + k experts + shared): the "active" size. */
size_t br_moe_nparams_active(const br_moe_cfg_t *c);
/* Carves the parameter pointers out of buf (br_moe_nparams floats) in the order router,
 * w_gate, w_up, w_down, s_gate, s_up, s_down; the experts' types F32. */
void br_moe_params_bind(br_moe_params_t *p, float *buf, const br_moe_cfg_t *c);

/* out (N,C) = MoE(inp (N,C)); N <= ws->cap.  Overwrites out. */
void br_moe_ffn_forward(float *out, br_moe_ws_t *ws, const float *inp, const br_moe_params_t *p,
                        const br_moe_cfg_t *c, size_t N);
/* Backward of the last forward (same inp, N).  dinp (N,C) +=, every non-NULL field of g +=.
 * aux_scale multiplies the gradients of alpha*lb + beta*z (e.g. 1/grad_accum steps; 0 to
 * leave the auxiliary losses out). */
void br_moe_ffn_backward(float *dinp, br_moe_params_t *g, const float *dout, const float *inp,
                         const br_moe_params_t *p, br_moe_ws_t *ws, const br_moe_cfg_t *c,
                         size_t N, float aux_scale);
/* The same with per-row LoRA updates on the routed experts' projections (lora->apply_expert /
 * backward_expert for layer `layer`; lora NULL: the plain layer).  A row routed to expert e
 * gets its adapter's module of expert e on w1 (gate), w3 (up) and w2 (down); the router and
 * the shared expert are not adapted.  Backward adds the adapters' gradients inside the hook;
 * with adapters the experts run one after another (the hook's scratch is per batch). */
void br_moe_ffn_forward_lora(float *out, br_moe_ws_t *ws, const float *inp, const br_moe_params_t *p,
                             const br_moe_cfg_t *c, size_t N, const br_lora_hook_t *lora, int layer);
void br_moe_ffn_backward_lora(float *dinp, br_moe_params_t *g, const float *dout, const float *inp,
                              const br_moe_params_t *p, br_moe_ws_t *ws, const br_moe_cfg_t *c,
                              size_t N, float aux_scale, const br_lora_hook_t *lora, int layer);

/* ==================================  Nexus router  ================================== *
 * Router rows from fixed domain embeddings d_i (D each, e.g. the seed's mean final hidden
 * state over domain i):  e_i = W2 SwiGLU(W1 d_i),  SwiGLU(z) = silu(z[:H]) * z[H:].
 * The MoE FFN then uses R = (e_1..e_E) as its router: p = softmax(x . e_i), top-1, with the
 * seed's FFN as the always-on shared expert.  Adding an expert later = one more d_i through
 * the same projector (no router row learned from scratch). */
typedef struct {
    size_t E; /* experts (domain embeddings) */
    size_t D; /* domain embedding width */
    size_t H; /* projector hidden width */
    size_t C; /* model width (router row width) */
} br_nexus_cfg_t;

/* W1 (2H,D): rows [0,H) the gate half, [H,2H) the up half; W2 (C,H).  z (E,2H) and h (E,H)
 * are saved for backward. */
void br_nexus_forward(float *R /* (E,C) */, float *z /* (E,2H) */, float *h /* (E,H) */,
                      const float *dom /* (E,D) */, const float *W1, const float *W2,
                      const br_nexus_cfg_t *c);
/* dW1 (2H,D) +=, dW2 (C,H) += from dR (E,C).  dz (E,2H), dh (E,H) are scratch. */
void br_nexus_backward(float *dW1, float *dW2, const float *dR, const float *dom,
                       const float *W1, const float *W2, const float *z, const float *h,
                       float *dz, float *dh, const br_nexus_cfg_t *c);

/* ===============================  Mixture of attention  =============================== *
 * BAM's attention part: n attention experts, soft router g = softmax(u Wr^T) over all of them,
 *   out = sum_j g_j * O_j( Attn(RoPE(Q_j u), RoPE(K_j u), V_j u) ).
 * expert-KV: each expert has its own Q, K, V, O; shared-KV: own Q and O, one K and V.
 * Parameters are stacked expert-major (expert j's matrices are contiguous, so each is a plain
 * per-expert tensor in a checkpoint).  Attention runs ONCE over all experts' query heads,
 * ordered so that grouped-query attention maps each query head to its expert's K/V head:
 * expert-KV: attention head j*NH + h, KV head j*NKV + h'; shared-KV: attention head h*n + j
 * (interleaved), KV head h' shared.  The KV cache has br_moa_kv_heads() heads: n*NKV
 * (expert-KV) or NKV (shared-KV).  n == 1 is exactly dense attention (no router, no copies). */
typedef struct {
    size_t C;       /* model width */
    size_t NH;      /* query heads per expert */
    size_t NKV;     /* key/value heads per expert (NH % NKV == 0) */
    size_t hd;      /* head dim */
    size_t n;       /* attention experts; 1 = dense attention (no router) */
    bool shared_kv; /* one K and V for all experts */
    float beta;     /* router z-loss coefficient */
} br_moa_cfg_t;

typedef struct {
    float *router; /* (n,C) */
    float *wq;     /* (n, NH*hd, C) */
    float *wk;     /* (n or 1, NKV*hd, C) */
    float *wv;     /* (n or 1, NKV*hd, C) */
    float *wo;     /* (n, C, NH*hd) */
} br_moa_params_t;

typedef struct {
    size_t cap_B, cap_T;
    size_t B, T;
    bool training;
    int32_t *pos;    /* (N) position of each row: 0..T-1 per sequence */
    float *logits;   /* (N,n) */
    float *g;        /* (N,n) router weights */
    float *lse;      /* (N) */
    float z;         /* router z-loss of the last forward (unscaled) */
    float *qe;       /* (N, n*NH*hd) expert-major projections (shared-KV, n > 1 only) */
    float *q;        /* (N, n*NH, hd) attention head order, after RoPE */
    float *k, *v;    /* (N, HKV, hd), k after RoPE */
    float *att;      /* (B, n*NH, T, T) */
    float *a;        /* (N, n*NH, hd) attention output, attention head order */
    float *ag;       /* (N, n*NH*hd) gated, expert-major (== a when n == 1) */
    /* backward scratch */
    float *dag, *da, *dq; /* (N, n*NH*hd) */
    float *dk, *dv;       /* (N, HKV*hd) */
    float *dg, *dlogits;  /* (N,n) */
} br_moa_ws_t;

br_status br_moa_cfg_check(const br_moa_cfg_t *c);
size_t br_moa_kv_heads(const br_moa_cfg_t *c); /* n*NKV (expert-KV) or NKV (shared-KV) */
size_t br_moa_q_heads(const br_moa_cfg_t *c);  /* n*NH */
/* Attention-order index of expert j's query head h, and the expert of an attention head. */
size_t br_moa_head(const br_moa_cfg_t *c, size_t j, size_t h);
size_t br_moa_head_expert(const br_moa_cfg_t *c, size_t head);
size_t br_moa_nparams(const br_moa_cfg_t *c);
void br_moa_params_bind(br_moa_params_t *p, float *buf, const br_moa_cfg_t *c);
br_status br_moa_ws_init(br_moa_ws_t *ws, const br_moa_cfg_t *c, size_t cap_B, size_t cap_T,
                         bool training);
void br_moa_ws_free(br_moa_ws_t *ws);

/* Training / full-prefill forward over B sequences of T tokens (positions 0..T-1).
 * inp (B*T,C) is the normalised block input; out (B*T,C) overwritten.  rope_cos/sin
 * (>= T, hd/2) from br_rope_tables. */
void br_moa_forward(float *out, br_moa_ws_t *ws, const float *inp, const br_moa_params_t *p,
                    const br_moa_cfg_t *c, const float *rope_cos, const float *rope_sin,
                    size_t B, size_t T);
/* dinp (B*T,C) +=, non-NULL fields of g +=; aux_scale multiplies the z-loss gradient. */
void br_moa_backward(float *dinp, br_moa_params_t *g, const float *dout, const float *inp,
                     const br_moa_params_t *p, br_moa_ws_t *ws, const br_moa_cfg_t *c,
                     const float *rope_cos, const float *rope_sin, size_t B, size_t T,
                     float aux_scale);
/* The same with per-row LoRA on the attention experts (lora NULL: the plain layer): expert j's
 * Q, K, V blocks and its O (on its gated heads) get the rows' adapter modules of attention
 * expert j (lora->apply_expert / backward_expert; every row uses every expert, the router
 * being soft); shared-KV's one K and V get the plain lora->apply / backward. */
void br_moa_forward_lora(float *out, br_moa_ws_t *ws, const float *inp, const br_moa_params_t *p,
                         const br_moa_cfg_t *c, const float *rope_cos, const float *rope_sin,
                         size_t B, size_t T, const br_lora_hook_t *lora, int layer);
void br_moa_backward_lora(float *dinp, br_moa_params_t *g, const float *dout, const float *inp,
                          const br_moa_params_t *p, br_moa_ws_t *ws, const br_moa_cfg_t *c,
                          const float *rope_cos, const float *rope_sin, size_t B, size_t T,
                          float aux_scale, const br_lora_hook_t *lora, int layer);
/* The LoRA parts alone, for an inference path with its own KV cache: qe (N, n*NH*hd)
 * expert-major, k, v (N, HKV*hd) before RoPE; out (N,C) += expert j's O update of ag's block j. */
void br_moa_lora_qkv(const br_lora_hook_t *h, float *qe, float *k, float *v, const float *inp,
                     const br_moa_cfg_t *c, size_t N, int layer);
void br_moa_lora_out(const br_lora_hook_t *h, float *out, const float *ag, const br_moa_cfg_t *c, size_t N,
                     int layer);

/* Pieces for an inference path that keeps its own KV cache (the model's generate/serve loop):
 *   g = router(u); qe = u Wq^T; q = br_moa_q_to_heads(qe); k = u Wk^T; v = u Wv^T; RoPE;
 *   a = attention over the cache (n*NH query heads, br_moa_kv_heads KV heads);
 *   ag = br_moa_gate_forward(a, g); out = br_moa_out_forward(ag). */
/* g (N,n) = softmax(inp (N,C) Wr^T); logits (N,n) scratch (may equal g); n == 1: g = 1. */
void br_moa_router_forward(float *g, float *logits, const float *inp, const float *router,
                           const br_moa_cfg_t *c, size_t N);
/* q (N, n*NH, hd) attention order <- qe (N, n*NH*hd) expert-major (a copy; the identity
 * unless shared-KV with n > 1, then q may not equal qe). */
void br_moa_q_to_heads(float *q, const float *qe, const br_moa_cfg_t *c, size_t N);
/* ag (N, n*NH*hd) expert-major = a (N, n*NH, hd) attention order, scaled by each head's
 * expert weight g (N,n). */
void br_moa_gate_forward(float *ag, const float *a, const float *g, const br_moa_cfg_t *c,
                         size_t N);
/* out (N,C) = sum_j ag[:, j] Wo_j^T (overwritten). */
void br_moa_out_forward(float *out, const float *ag, const float *wo, const br_moa_cfg_t *c,
                        size_t N);

/* Shared by the layers above: top-k of each row of p (N,E), most probable first, ties to the
 * lower index. */
void br_topk_rows(int32_t *idx /* (N,k) */, const float *p /* (N,E) */, size_t N, size_t E,
                  size_t k);
/* lse (N) = logsumexp of each row of logits (N,E). */
void br_logsumexp_rows(float *lse, const float *logits, size_t N, size_t E);
#endif
