/* The kernel seam: every compute primitive the model runs, behind one table of function
 * pointers chosen once at start-up (as ggml does per backend).  docs/kernels.md.
 *
 * Tables today: "avx512" (AVX-512 F/VL/BW/DQ + FMA), "avx2" (AVX2 + FMA), "portable" (plain C
 * built for the compiler's baseline target, with a portable blocked GEMM instead of OpenBLAS).
 * All three are built from the same sources (kernels/table.inc), each translation unit with its
 * instruction set; br_kernels() returns the best one this CPU runs, or the one named by
 * BRAID_KERNELS=portable|avx2|avx512|auto, or the one set by br_kernels_use().
 *
 * Contract of every entry (what a new table, e.g. CUDA, must keep):
 *   - llm.c style: outputs first, sizes last, shapes in the comments; backward entries ADD (+=)
 *     into gradients (dinp included) unless the comment says "overwritten".
 *   - Memory: every pointer argument (activations, weights, gradients, KV pages, scratch)
 *     points into memory of the table's own kind, allocated with its alloc() (host memory for
 *     the CPU tables, device memory for a device table) and filled with upload(); only
 *     sizes, scalars, the weight type and the small per-row integer arrays marked "host" live on
 *     the host.  Entries may run asynchronously; sync() waits for them (CPU tables: no-op).
 *     Scalar results (xent losses' mean, sum_squares) are returned to the host, so they sync.
 *   - Threads: a CPU entry runs on the OpenMP pool (base/threads.h); it may be called from
 *     inside a parallel region (then it runs on the calling thread) and concurrently from any
 *     threads, so it keeps no mutable global state.
 *   - Numerics: each entry matches the float64 reference within the tolerances of
 *     tests/test_kernels_tables.c; results never depend on the thread count.
 *   - Weight types: matmul/matvec are indexed by br_wtype; a NULL entry means "not
 *     implemented by this table" and callers check with br_kernels_matmul_check(), which names
 *     the type and the table.  Every other entry is mandatory and F32. */
#ifndef BR_KERNELS_KERNELS_H
#define BR_KERNELS_KERNELS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* Storage type of a weight matrix W (OC,C).  Block types (GGUF's layouts, issue 14) quantise
 * each row in blocks along C: Q8_0 and Q4_0 blocks of 32 values, Q4_K and Q6_K super-blocks of
 * 256 (Q6_K: what llama.cpp's Q4_K_M files keep some matrices in). */
typedef enum {
    BR_WT_F32,
    BR_WT_BF16,
    BR_WT_F16,
    BR_WT_Q8_0,
    BR_WT_Q4_0,
    BR_WT_Q4_K,
    BR_WT_Q6_K,
    BR_WT_COUNT
} br_wtype;

/* "F32", "BF16", "F16", "Q8_0", "Q4_0", "Q4_K", "Q6_K" ("?" for a bad value). */
const char *br_wtype_name(br_wtype wt);
/* Bytes of one row of C values of type wt.  BR_EINVAL when C is not a whole number of the
 * type's blocks (32, or 256 for Q4_K and Q6_K) or wt is out of range; BR_ERANGE on overflow. */
br_status br_wtype_row_bytes(br_wtype wt, size_t C, size_t *bytes);
/* dst (rows, row_bytes) = src (rows, C) F32 stored as wt: F32 copied, BF16/F16 rounded to
 * nearest even, Q8_0/Q4_0/Q4_K/Q6_K quantised exactly as llama.cpp's reference quantisers
 * (same bytes; kernels/quant.c).  BR_EINVAL/BR_ERANGE as br_wtype_row_bytes.
 * Inputs must be finite. */
br_status br_wtype_quantize(br_wtype wt, void *dst, const float *src, size_t rows, size_t C);
/* dst (rows, C) = the F32 values of src (rows, C) stored as wt (exact for every type). */
br_status br_wtype_dequantize(br_wtype wt, float *dst, const void *src, size_t rows, size_t C);

/* y (N,OC) = x (N,C) W^T with W (OC,C) of one weight type (rows of br_wtype_row_bytes). */
typedef void (*br_matmul_fn)(float *y, const float *x, const void *w, size_t N, size_t C,
                             size_t OC);
/* y (OC) = W x for one row x (C): the decode case, memory-bound. */
typedef void (*br_matvec_fn)(float *y, const float *x, const void *w, size_t C, size_t OC);
/* dinp (N,C) += dout (N,OC) W with W (OC,C) of one weight type: a frozen projection's input
 * gradient. */
typedef void (*br_matmul_dinp_fn)(float *dinp, const float *dout, const void *w, size_t N, size_t C,
                                  size_t OC);

/* Element type of a KV cache: F32, or IEEE half (rounded to nearest even when stored; the
 * attention kernels widen it exactly). */
typedef enum { BR_KV_F32, BR_KV_F16 } br_kv_type;

/* A paged KV cache as the attention kernels see one layer of it.  Row t (a position) of kv
 * head h of a sequence whose page table is `pages` starts at element
 *   pages[t / page_rows] * page_stride + h * head_stride + (t % page_rows) * hd
 * of k or v (already offset to the layer), elements of `type`. */
typedef struct {
    const void *k, *v;
    br_kv_type type;
    size_t page_rows;   /* positions per page */
    size_t page_stride; /* elements from one page to the next */
    size_t head_stride; /* elements from one kv head to the next inside a page */
} br_kv_pages_t;

/* Floats of scratch per thread that attention_paged needs for head size hd (the CPU tables'
 * tiles: 16 query vectors x 16 cached positions; kernels/attention_paged.inc). */
#define BR_ATTN_PAGED_SCRATCH(hd) ((size_t)48 * (hd) + 16 * 16 + 2 * 16)

typedef struct br_kernels {
    const char *name;      /* "avx512", "avx2", "portable" */
    const char *gemm_name; /* what runs F32 GEMMs: "openblas", "portable" */

    /* ---- memory of this table's kind (see the contract above) ---- */
    void *(*alloc)(size_t bytes); /* zero-filled, 64-byte aligned; NULL when short or 0 */
    void (*free)(void *p);        /* free(NULL) is a no-op */
    void (*upload)(void *dst, const void *host_src, size_t bytes);
    void (*download)(void *host_dst, const void *src, size_t bytes);
    void (*sync)(void);

    /* ---- matrix products ---- */
    /* C (M,N) = alpha op(A) op(B) + beta C, row-major; op(A) = A (M,K, lda >= K) or A^T with A
     * stored (K,M, lda >= M); likewise B.  beta = 0 ignores C's old values (NaN included). */
    void (*sgemm)(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, float alpha,
                  const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                  size_t ldc);
    br_matmul_fn matmul[BR_WT_COUNT]; /* NULL: weight type not implemented by this table */
    br_matvec_fn matvec[BR_WT_COUNT];
    /* dinp (N,C) += dout W; dw (OC,C) += dout^T inp; either may be NULL.  F32 weights. */
    void (*matmul_backward)(float *dinp, float *dw, const float *dout /* (N,OC) */,
                            const float *inp /* (N,C) */, const float *w /* (OC,C) */, size_t N,
                            size_t C, size_t OC);
    /* dinp (N,C) += dout (N,OC) W for a frozen W (OC,C) stored BF16, F16, Q8_0, Q4_0, Q4_K or Q6_K: W's
     * exact values, F32 accumulation — the input gradient of a base that stays in its stored type
     * while an adapter trains (LoRA on a 16-bit folder, QLoRA); NULL for F32 (matmul_backward). */
    br_matmul_dinp_fn matmul_dinp[BR_WT_COUNT];

    /* ---- layers (nn/nn.h documents each; the names match br_<layer>_<dir>) ---- */
    void (*embedding_forward)(float *out /* (N,C) */, const int32_t *tokens /* (N) */,
                              const float *wte /* (V,C) */, size_t N, size_t C);
    void (*embedding_backward)(float *dwte /* (V,C) += */, const float *dout /* (N,C) */,
                               const int32_t *tokens /* (N) */, size_t N, size_t C);
    void (*rmsnorm_forward)(float *out /* (N,C) */, float *rstd /* (N) or NULL */,
                            const float *inp /* (N,C) */, const float *w /* (C) */, float eps,
                            size_t N, size_t C);
    void (*rmsnorm_backward)(float *dinp /* (N,C) += */, float *dw /* (C) +=, or NULL */,
                             const float *dout, const float *inp, const float *w,
                             const float *rstd, size_t N, size_t C);
    /* x (N,H,hd) rotated in place by +angle (forward) or -angle (backward: the inverse);
     * cos, sin (maxpos, hd/2); pos (N) each row's absolute position. */
    void (*rope_forward)(float *x, const int32_t *pos, const float *cos, const float *sin,
                         size_t N, size_t H, size_t hd);
    void (*rope_backward)(float *dx, const int32_t *pos, const float *cos, const float *sin,
                          size_t N, size_t H, size_t hd);
    /* causal GQA attention over B full sequences of T tokens (training, full prefill):
     * q (B,T,NH,hd), k, v (B,T,NKV,hd), out (B,T,NH,hd), att (B,NH,T,T) probabilities. */
    void (*attention_forward)(float *out, float *att, const float *q, const float *k,
                              const float *v, size_t B, size_t T, size_t NH, size_t NKV,
                              size_t hd);
    void (*attention_backward)(float *dq, float *dk, float *dv, const float *dout,
                               const float *att, const float *q, const float *k,
                               const float *v, size_t B, size_t T, size_t NH, size_t NKV,
                               size_t hd);
    /* Inference attention over a paged KV cache, rows of different sequences at different
     * positions: row r attends to positions [0, pos[r]] of the sequence whose page table is
     * row_pages[r].  out, q (N,NH,hd); scratch (nthreads, BR_ATTN_PAGED_SCRATCH(hd)) with
     * nthreads >= omp_get_max_threads().  pos and row_pages are host arrays, the page tables
     * they point to too; a sequence's rows that continue each other (positions p, p+1, ...)
     * are adjacent, and every cache row up to the largest position of such a run holds data.
     * Scale 1/sqrt(hd).  Blocked over query rows and cached positions with an online softmax;
     * a row's result does not depend on the other rows of the call. */
    void (*attention_paged)(float *out, float *scratch, const float *q, const br_kv_pages_t *kv,
                            const int32_t *const *row_pages, const int32_t *pos, size_t N,
                            size_t NH, size_t NKV, size_t hd);
    /* out = silu(gate) * up over n values; backward: dgate, dup +=. */
    void (*swiglu_forward)(float *out, const float *gate, const float *up, size_t n);
    void (*swiglu_backward)(float *dgate, float *dup, const float *dout, const float *gate,
                            const float *up, size_t n);
    void (*softmax_forward)(float *out /* (N,V), may equal inp */, const float *inp, size_t N,
                            size_t V);
    void (*softmax_backward)(float *dinp /* += */, const float *dout, const float *probs,
                             size_t N, size_t V);
    /* losses (N); probs (N,V) may equal logits; target < 0 ignores a row; returns the mean. */
    float (*xent_forward)(float *losses, float *probs, const float *logits,
                          const int32_t *targets, size_t N, size_t V);
    void (*xent_backward)(float *dlogits, const float *probs, const int32_t *targets,
                          float scale, size_t N, size_t V);
    /* dlogits (N,V) overwritten (may equal logits); returns the mean loss. */
    float (*xent_fused)(float *losses, float *dlogits, const float *logits,
                        const int32_t *targets, float scale, size_t N, size_t V);

    /* ---- elementwise and optimiser ---- */
    void (*add)(float *out, const float *a, const float *b, size_t n); /* out = a + b */
    void (*add_inplace)(float *acc, const float *x, size_t n);         /* acc += x */
    void (*scale_inplace)(float *x, float s, size_t n);                /* x *= s */
    /* sqrt(sum x^2) in double over fixed blocks (same bits with any thread count). */
    double (*sum_squares)(const float *x, size_t n);
    /* AdamW as torch.optim.AdamW; p, g, m, v (n); t >= 1. */
    void (*adamw_step)(float *p, const float *g, float *m, float *v, size_t n, float lr,
                       float beta1, float beta2, float eps, float weight_decay, int t);
} br_kernels_t;

/* The active table (chosen on the first call: BRAID_KERNELS, else the best this CPU runs).
 * Never NULL.  An unknown or unsupported BRAID_KERNELS value is reported once on stderr
 * (base/log.h) and the best table is used instead. */
const br_kernels_t *br_kernels(void);
/* Makes the table called `name` ("auto" = the best) the active one.  BR_ENOTFOUND for an
 * unknown name, BR_EUNSUPPORTED when this CPU lacks its instruction set.  Call it before any
 * kernel runs, or between runs: entries already running keep their table. */
br_status br_kernels_use(const char *name);
/* The table called `name` if this CPU can run it, else NULL (tests use this to run them all). */
const br_kernels_t *br_kernels_find(const char *name);
/* Every table's name, best first (also the ones this CPU cannot run); NULL-terminated. */
const char *const *br_kernels_names(void);
/* BR_OK when table k has a matmul and a matvec for weight type wt; otherwise
 * BR_EUNSUPPORTED with a message naming the type and the table. */
br_status br_kernels_matmul_check(const br_kernels_t *k, br_wtype wt);
/* y (N,OC) = x (N,C) W^T through the active table for weight type wt: matvec when N == 1.
 * Fails (without touching y) when the active table lacks that weight type. */
br_status br_matmul(br_wtype wt, float *y, const float *x, const void *w, size_t N, size_t C,
                    size_t OC);

/* dinp (N,C) += dout (N,OC) W through the active table, W (OC,C) of type wt: matmul_backward
 * for F32, matmul_dinp[wt] for the other types; BR_EUNSUPPORTED naming the type and table
 * otherwise (dinp untouched).  With N == 0 it only answers whether the type is supported. */
br_status br_matmul_dinp(br_wtype wt, float *dinp, const float *dout, const void *w, size_t N, size_t C,
                         size_t OC);

/* The tables (kernels/table_*.c); use br_kernels_find() rather than these. */
extern const br_kernels_t br_kernels_portable;
#if defined(__x86_64__)
extern const br_kernels_t br_kernels_avx2, br_kernels_avx512;
#endif
#endif
