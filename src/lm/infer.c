/* Inference: the paged KV pool and the batched forward over rows of different sequences at
 * different positions (continuous batching: prefill chunks and decode tokens in one call). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/dtype.h"
#include "base/log.h"
#include "base/threads.h"
#include "kernels/kernels.h"
#include "lm/config_moe.h"
#include "lm/model_internal.h"

struct br_kv_pool {
    size_t L, NKV, hd, P;  /* layers, kv heads, head dim, tokens per page */
    size_t n_pages;
    br_kv_type type;       /* element type of k and v */
    size_t esz;            /* its size in bytes */
    void *k, *v;           /* (n_pages, L, NKV, P, hd) each */
    int32_t *free_ids;     /* stack of free page ids */
    size_t n_free;
    unsigned char *used;   /* (n_pages) 1 while handed out */
};

size_t br_kv_pool_page_tokens(const br_kv_pool_t *p) { return p->P; }
size_t br_kv_pool_page_bytes(const br_kv_pool_t *p) { return 2 * p->L * p->NKV * p->P * p->hd * p->esz; }
br_kv_type br_kv_pool_type(const br_kv_pool_t *p) { return p->type; }

const char *br_kv_type_name(br_kv_type t) { return t == BR_KV_F32 ? "f32" : t == BR_KV_F16 ? "f16" : "?"; }

br_status br_kv_type_parse(const char *s, br_kv_type *out)
{
    if (s && !strcmp(s, "f32")) return *out = BR_KV_F32, BR_OK;
    if (s && !strcmp(s, "f16")) return *out = BR_KV_F16, BR_OK;
    return br_error(BR_EINVAL, "KV cache type '%s' is not one of f32, f16", s ? s : "(null)");
}
size_t br_kv_pool_pages_total(const br_kv_pool_t *p) { return p->n_pages; }
size_t br_kv_pool_pages_free(const br_kv_pool_t *p) { return p->n_free; }

br_status br_kv_pool_create(br_kv_pool_t **out, const br_model_config_t *cfg,
                            size_t page_tokens, size_t budget_bytes)
{
    return br_kv_pool_create_typed(out, cfg, page_tokens, budget_bytes, BR_KV_F32);
}

br_status br_kv_pool_create_typed(br_kv_pool_t **out, const br_model_config_t *cfg_in,
                                  size_t page_tokens, size_t budget_bytes, br_kv_type type)
{
    *out = NULL;
    if (type != BR_KV_F32 && type != BR_KV_F16) return br_error(BR_EINVAL, "bad KV cache type %d", (int)type);
    br_model_config_t cfg = *cfg_in;
    BR_TRY(br_config_validate(&cfg));
    if (page_tokens == 0 || page_tokens > (1u << 20))
        return br_error(BR_EINVAL, "KV page size must be 1..%u tokens", 1u << 20);
    br_kv_pool_t *p = calloc(1, sizeof *p);
    if (!p) return br_error(BR_ENOMEM, "out of memory");
    p->L = (size_t)cfg.num_hidden_layers;
    p->NKV = (size_t)cfg.num_key_value_heads;
    if (br_config_has_moa(&cfg)) { /* expert-KV: every attention expert has its own K, V heads */
        br_moa_cfg_t a = br_config_moa(&cfg);
        p->NKV = br_moa_kv_heads(&a);
    }
    p->hd = (size_t)cfg.head_dim;
    p->P = page_tokens;
    p->type = type;
    p->esz = type == BR_KV_F16 ? sizeof(uint16_t) : sizeof(float);
    size_t pb = br_kv_pool_page_bytes(p);
    p->n_pages = budget_bytes / pb;
    if (p->n_pages == 0) {
        free(p);
        return br_error(BR_ENOMEM, "KV budget of %zu bytes is smaller than one page (%zu bytes)",
                        budget_bytes, pb);
    }
    if (p->n_pages > INT32_MAX) p->n_pages = INT32_MAX;
    size_t half = p->n_pages * (pb / 2);
    p->k = br_alloc(half);
    p->v = br_alloc(half);
    p->free_ids = malloc(p->n_pages * sizeof *p->free_ids);
    p->used = calloc(p->n_pages, 1);
    if (!p->k || !p->v || !p->free_ids || !p->used) {
        size_t np = p->n_pages;
        br_kv_pool_free(p);
        return br_error(BR_ENOMEM, "cannot allocate a KV pool of %zu pages (%zu bytes)", np, 2 * half);
    }
    /* hand out low ids first */
    for (size_t i = 0; i < p->n_pages; i++) p->free_ids[i] = (int32_t)(p->n_pages - 1 - i);
    p->n_free = p->n_pages;
    *out = p;
    return BR_OK;
}

void br_kv_pool_free(br_kv_pool_t *p)
{
    if (!p) return;
    br_free(p->k);
    br_free(p->v);
    free(p->free_ids);
    free(p->used);
    free(p);
}

br_status br_kv_pool_alloc_page(br_kv_pool_t *p, int32_t *page)
{
    if (p->n_free == 0) return br_error(BR_EBUSY, "KV cache full (%zu pages in use)", p->n_pages);
    int32_t id = p->free_ids[--p->n_free];
    p->used[id] = 1;
    *page = id;
    return BR_OK;
}

void br_kv_pool_free_page(br_kv_pool_t *p, int32_t page)
{
    if (page < 0 || (size_t)page >= p->n_pages || !p->used[page]) {
        BR_WARN("KV pool: ignoring free of page %d (not in use)", page);
        return;
    }
    p->used[page] = 0;
    p->free_ids[p->n_free++] = page;
}

/* ---------------------------------------------------------------------------------------- */

struct br_model_infer {
    size_t capN, capR, nthreads;
    float *mem;
    float *x, *xn, *q, *k, *v, *ao, *tmp, *tmp2; /* (N,C) (N,C) (N,Dq) (N,Dkv)x2 (N,Dq) (N,C)x2 */
    float *gate, *up, *act;                     /* (N,F) */
    int32_t *pos, *rowseq;                      /* (N) */
    float *xr;                                  /* (R,C) rows whose logits are wanted */
    float *scratch;                             /* (nthreads, BR_ATTN_PAGED_SCRATCH(hd)) */
    const int32_t **rowpages;                   /* (N) each row's page table */
};

void br_lm_infer_free(br_model_t *m);
void br_lm_infer_free(br_model_t *m)
{
    if (!m->infer) return;
    br_free(m->infer->mem);
    free(m->infer->rowpages);
    free(m->infer);
    m->infer = NULL;
}

static br_status ensure_infer(br_model_t *m, size_t N, size_t R)
{
    br_model_infer_t *s = m->infer;
    size_t nt = (size_t)omp_get_max_threads();
    if (s && s->capN >= N && s->capR >= R && s->nthreads >= nt) return BR_OK;
    if (s) {
        if (N < s->capN) N = s->capN;
        if (R < s->capR) R = s->capR;
    }
    br_lm_infer_free(m);
    br_dims_t d = br_model_dims(m);
#define R16(x) (((x) + 15) & ~(size_t)15)
    size_t total = R16(N * d.C) * 4 + R16(N * d.Dq) * 2 + R16(N * d.Dkv) * 2 + R16(N * d.F) * 3 +
                   R16(N) * 2 + R16(R * d.C) + R16(nt * BR_ATTN_PAGED_SCRATCH(d.hd));
    s = calloc(1, sizeof *s);
    if (!s || !(s->mem = br_alloc(total * sizeof(float))) ||
        !(s->rowpages = malloc(N * sizeof *s->rowpages))) {
        if (s) br_free(s->mem);
        free(s);
        return br_error(BR_ENOMEM, "cannot allocate inference buffers for %zu rows", N);
    }
    float *p = s->mem;
#define TAKE(n) (p += R16(n), p - R16(n))
    s->x = TAKE(N * d.C);
    s->xn = TAKE(N * d.C);
    s->tmp = TAKE(N * d.C);
    s->tmp2 = TAKE(N * d.C);
    s->q = TAKE(N * d.Dq);
    s->ao = TAKE(N * d.Dq);
    s->k = TAKE(N * d.Dkv);
    s->v = TAKE(N * d.Dkv);
    s->gate = TAKE(N * d.F);
    s->up = TAKE(N * d.F);
    s->act = TAKE(N * d.F);
    s->pos = (int32_t *)TAKE(N);
    s->rowseq = (int32_t *)TAKE(N);
    s->xr = TAKE(R * d.C);
    s->scratch = TAKE(nt * BR_ATTN_PAGED_SCRATCH(d.hd));
#undef TAKE
#undef R16
    s->capN = N;
    s->capR = R;
    s->nthreads = nt;
    m->infer = s;
    return BR_OK;
}

/* Stores row x (hd) as position `slot` of kv head h, layer l, page `page` of k or v. */
static inline void kv_put(const br_kv_pool_t *kv, void *base, int32_t page, size_t l, size_t h,
                          size_t slot, const float *x)
{
    size_t off = ((((size_t)page * kv->L + l) * kv->NKV + h) * kv->P + slot) * kv->hd;
    if (kv->type == BR_KV_F32) {
        memcpy((float *)base + off, x, kv->hd * sizeof(float));
        return;
    }
    uint16_t *dst = (uint16_t *)base + off;
    for (size_t i = 0; i < kv->hd; i++) dst[i] = br_f32_to_f16(x[i]);
}

/* Paged causal attention for every (row, head) through the kernel table: row r of seq s at
 * position pos[r] attends to positions [0, pos[r]] of s, read from the pages. */
static void paged_attention(br_model_t *m, const br_kv_pool_t *kv, size_t l, const br_seq_t *seqs,
                            size_t N)
{
    br_model_infer_t *s = m->infer;
    br_dims_t d = br_model_dims(m);
    size_t layer = l * kv->NKV * kv->P * kv->hd;
    br_kv_pages_t view = {.k = (const char *)kv->k + layer * kv->esz,
                          .v = (const char *)kv->v + layer * kv->esz, .type = kv->type, .page_rows = kv->P,
                          .page_stride = kv->L * kv->NKV * kv->P * kv->hd,
                          .head_stride = kv->P * kv->hd};
    for (size_t r = 0; r < N; r++) s->rowpages[r] = seqs[s->rowseq[r]].pages;
    br_kernels()->attention_paged(s->ao, s->scratch, s->q, &view, s->rowpages, s->pos, N, d.NH,
                                  d.NKV, d.hd);
}

static br_status forward_batch(br_model_t *m, br_kv_pool_t *kv, const br_seq_t *seqs,
                               size_t nseq, const br_lora_hook_t *lora, float *logits_out);

/* Below this many rows a step is a chain of GEMVs and small elementwise ops: waking a second
 * thread for each costs more than it saves (and much more on a loaded machine) -- unless the
 * matrices are big enough that each GEMV streams megabytes from memory, which a second core
 * speeds up.  `braid bench infer --crossover` times one matvec per weight type and shape at 1
 * and 2 threads: on the 2-core reference machine 2 threads lost below ~1.5 MiB of weights per
 * matrix (up to 5x slower at 288x288) and won from ~1.5-3 MiB (0.6-0.85x the time for Q8_0,
 * Q4_0 and BF16 at 2048x2048 and 2048x5632; docs/threads.md).  So a decode step keeps the
 * threads when the model's FFN matrix holds at least DECODE_PAR_BYTES (with margin for a
 * loaded machine): TinyLlama-1.1B's shape at every type, a 134M model (d768) in F32 only. */
#define SERIAL_ROWS 64
#define DECODE_PAR_BYTES ((size_t)4 << 20)

static bool decode_parallel(const br_model_t *m)
{
    br_dims_t d = br_model_dims(m);
    size_t rb;
    return !br_wtype_row_bytes(m->wt, d.C, &rb) && rb * d.F >= DECODE_PAR_BYTES;
}

br_status br_model_forward_batch(br_model_t *m, br_kv_pool_t *kv, const br_seq_t *seqs,
                                 size_t nseq, const br_lora_hook_t *lora, float *logits_out)
{
    size_t rows = 0;
    for (size_t i = 0; i < nseq; i++) rows += seqs[i].n_tokens;
    int nt = br_get_threads();
    if (rows >= SERIAL_ROWS || nt == 1 || decode_parallel(m))
        return forward_batch(m, kv, seqs, nseq, lora, logits_out);
    br_set_threads(1);
    br_status s = forward_batch(m, kv, seqs, nseq, lora, logits_out);
    br_set_threads(nt);
    return s;
}

static br_status forward_batch(br_model_t *m, br_kv_pool_t *kv, const br_seq_t *seqs,
                               size_t nseq, const br_lora_hook_t *lora, float *logits_out)
{
    br_dims_t d = br_model_dims(m);
    if (kv->L != d.L || kv->NKV != d.NKV || kv->hd != d.hd)
        return br_error(BR_EINVAL, "KV pool was made for another model shape");
    size_t N = 0, R = 0;
    for (size_t i = 0; i < nseq; i++) {
        const br_seq_t *sq = &seqs[i];
        if (sq->n_tokens == 0 || !sq->tokens) return br_error(BR_EINVAL, "sequence %zu has no tokens", i);
        size_t end = sq->start_pos + sq->n_tokens;
        if (end > d.maxpos)
            return br_error(BR_ERANGE, "sequence %zu: positions up to %zu exceed the context length %zu "
                            "(prompt longer than the context)", i, end, d.maxpos);
        if (sq->n_pages * kv->P < end)
            return br_error(BR_EINVAL, "sequence %zu: %zu pages of %zu tokens do not cover %zu positions",
                            i, sq->n_pages, kv->P, end);
        for (size_t pg = 0; pg < (end + kv->P - 1) / kv->P; pg++)
            if (sq->pages[pg] < 0 || (size_t)sq->pages[pg] >= kv->n_pages || !kv->used[sq->pages[pg]])
                return br_error(BR_EINVAL, "sequence %zu: page table entry %zu (%d) is not an allocated page",
                                i, pg, sq->pages[pg]);
        br_status st = br_model_check_tokens(m, sq->tokens, sq->n_tokens);
        if (st) return br_error_wrap(st, "sequence %zu", i);
        if (sq->want_logits < BR_LOGITS_NONE || sq->want_logits > BR_LOGITS_ALL)
            return br_error(BR_EINVAL, "sequence %zu: bad want_logits %d", i, sq->want_logits);
        N += sq->n_tokens;
        R += sq->want_logits == BR_LOGITS_ALL ? sq->n_tokens : sq->want_logits == BR_LOGITS_LAST;
    }
    if (N == 0) return BR_OK;
    if (R && !logits_out) return br_error(BR_EINVAL, "logits wanted but no output buffer");
    BR_TRY(ensure_infer(m, N, R));
    BR_TRY(br_moe_rt_ensure_rows(m, N));
    br_model_infer_t *s = m->infer;
    float eps = m->cfg.rms_norm_eps;
    bool seq_block = m->cfg.block == BR_BLOCK_SEQUENTIAL;

    size_t r = 0;
    for (size_t i = 0; i < nseq; i++) {
        br_model_embed(m, s->x + r * d.C, seqs[i].tokens, seqs[i].n_tokens);
        for (size_t j = 0; j < seqs[i].n_tokens; j++, r++) {
            s->pos[r] = (int32_t)(seqs[i].start_pos + j);
            s->rowseq[r] = (int32_t)i;
        }
    }
    for (size_t l = 0; l < d.L; l++) {
        const br_layer_weights_t *lw = &m->w.layers[l];
        br_rmsnorm_forward(s->xn, NULL, s->x, lw->attn_norm, eps, N, d.C);
        br_attn_part_qkv(m, (int)l, s->q, s->k, s->v, s->xn, s->pos, N, lora);
        for (size_t rr = 0; rr < N; rr++) {
            const br_seq_t *sq = &seqs[s->rowseq[rr]];
            size_t t = (size_t)s->pos[rr];
            for (size_t h = 0; h < d.NKV; h++) {
                kv_put(kv, kv->k, sq->pages[t / kv->P], l, h, t % kv->P, s->k + rr * d.Dkv + h * d.hd);
                kv_put(kv, kv->v, sq->pages[t / kv->P], l, h, t % kv->P, s->v + rr * d.Dkv + h * d.hd);
            }
        }
        paged_attention(m, kv, l, seqs, N);
        br_attn_part_out(m, (int)l, s->tmp, s->ao, N, lora);
        if (seq_block) {
            br_add_inplace(s->x, s->tmp, N * d.C);
            br_rmsnorm_forward(s->xn, NULL, s->x, lw->ffn_norm, eps, N, d.C);
            if (br_moe_has_ffn(m)) br_moe_infer_ffn(m, (int)l, s->tmp, s->xn, N, lora);
            else br_ffn_part_forward(m, (int)l, s->tmp, s->xn, s->gate, s->up, s->act, N, lora);
            br_add_inplace(s->x, s->tmp, N * d.C);
        } else {
            if (br_moe_has_ffn(m)) br_moe_infer_ffn(m, (int)l, s->tmp2, s->xn, N, lora);
            else br_ffn_part_forward(m, (int)l, s->tmp2, s->xn, s->gate, s->up, s->act, N, lora);
            br_add_inplace(s->x, s->tmp, N * d.C);
            br_add_inplace(s->x, s->tmp2, N * d.C);
        }
    }
    if (R == 0) return BR_OK;
    /* gather the rows whose logits are wanted, then norm + head on those only */
    size_t out = 0;
    r = 0;
    for (size_t i = 0; i < nseq; i++) {
        size_t n = seqs[i].n_tokens;
        if (seqs[i].want_logits == BR_LOGITS_ALL) {
            memcpy(s->xr + out * d.C, s->x + r * d.C, n * d.C * sizeof(float));
            out += n;
        } else if (seqs[i].want_logits == BR_LOGITS_LAST) {
            memcpy(s->xr + out * d.C, s->x + (r + n - 1) * d.C, d.C * sizeof(float));
            out++;
        }
        r += n;
    }
    br_rmsnorm_forward(s->xn, NULL, s->xr, m->w.final_norm, eps, R, d.C);
    br_model_proj(m, logits_out, s->xn, m->w.lm_head, R, d.C, d.V, NULL, -1, BR_PROJ_COUNT);
    return BR_OK;
}
