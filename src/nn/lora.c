#include "nn/lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/rng.h"
#include "kernels/gemm.h"

static const char *const proj_names[BR_PROJ_COUNT] = {
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
};
/* Module path inside a Llama decoder layer (Hugging Face naming). */
static const char *const proj_parent[BR_PROJ_COUNT] = {
    "self_attn", "self_attn", "self_attn", "self_attn", "mlp", "mlp", "mlp",
};

const char *br_lora_proj_name(br_proj p)
{
    return (unsigned)p < BR_PROJ_COUNT ? proj_names[p] : "?";
}

const char *br_lora_proj_parent(br_proj p)
{
    return (unsigned)p < BR_PROJ_COUNT ? proj_parent[p] : "?";
}

void br_lora_module_path(char *buf, size_t cap, int layer, br_proj p)
{
    snprintf(buf, cap, "model.layers.%d.%s.%s", layer, br_lora_proj_parent(p), br_lora_proj_name(p));
}

int br_lora_proj_parse(const char *name)
{
    for (int p = 0; p < BR_PROJ_COUNT; p++)
        if (!strcmp(name, proj_names[p])) return p;
    return -1;
}

const char *br_lora_expert_name(br_proj p)
{
    switch (p) {
    case BR_PROJ_GATE: return "w1";
    case BR_PROJ_UP: return "w3";
    case BR_PROJ_DOWN: return "w2";
    default: return NULL;
    }
}

void br_lora_expert_path(char *buf, size_t cap, int layer, int expert, br_proj p)
{
    const char *x = br_lora_expert_name(p);
    if (x) snprintf(buf, cap, "model.layers.%d.block_sparse_moe.experts.%d.%s", layer, expert, x);
    else snprintf(buf, cap, "model.layers.%d.self_attn.experts.%d.%s", layer, expert, br_lora_proj_name(p));
}

int br_lora_site_experts(const br_lora_shapes_t *s, br_proj p)
{
    if (br_lora_expert_name(p)) return s->n_experts;
    /* shared-KV BAM: one plain K and V, attention experts for Q and O only */
    return (s->absent & (1u << p)) ? s->n_attn_experts : 0;
}

size_t br_lora_expert_stride(const br_lora_shapes_t *s)
{
    int X = s->n_experts > s->n_attn_experts ? s->n_experts : s->n_attn_experts;
    return X > 0 ? (size_t)X : 1;
}

size_t br_lora_expert_slots(const br_lora_shapes_t *s)
{
    if (s->n_experts <= 0 && s->n_attn_experts <= 0) return 0;
    return (size_t)s->n_layers * br_lora_expert_stride(s) * BR_PROJ_COUNT;
}

br_status br_lora_parse_targets(const char *list, unsigned *mask)
{
    *mask = 0;
    if (!strcmp(list, "all") || !strcmp(list, "all-linear")) {
        *mask = BR_LORA_ALL;
        return BR_OK;
    }
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char name[32];
        if (n == 0 || n >= sizeof name)
            return br_error(BR_EINVAL, "LoRA targets '%s': empty or too long module name", list);
        memcpy(name, p, n);
        name[n] = 0;
        int proj = br_lora_proj_parse(name);
        if (proj >= 0) *mask |= 1u << proj;
        else if (!strcmp(name, "w1")) *mask |= BR_LORA_W1;
        else if (!strcmp(name, "w3")) *mask |= BR_LORA_W3;
        else if (!strcmp(name, "w2")) *mask |= BR_LORA_W2;
        else
            return br_error(BR_EINVAL,
                            "LoRA target '%s' is not one of q_proj, k_proj, v_proj, o_proj, "
                            "gate_proj, up_proj, down_proj, or w1, w3, w2 (MoE experts)",
                            name);
        p += n + (comma ? 1 : 0);
    }
    if (!*mask) return br_error(BR_EINVAL, "LoRA targets: none given");
    return BR_OK;
}

br_status br_lora_resolve_targets(const br_lora_shapes_t *s, unsigned targets,
                                  bool dense[BR_PROJ_COUNT], bool experts[BR_PROJ_COUNT])
{
    static const unsigned xbit[BR_PROJ_COUNT] = {0, 0, 0, 0, BR_LORA_W1, BR_LORA_W3, BR_LORA_W2};
    char bad[512] = "";
    size_t nb = 0;
    for (int p = 0; p < BR_PROJ_COUNT; p++) {
        bool present = !(s->absent & (1u << p));
        int nx = br_lora_site_experts(s, (br_proj)p);
        dense[p] = experts[p] = false;
        if (targets & BR_LORA_ALL) {
            dense[p] = present;
            experts[p] = nx > 0;
            continue;
        }
        if (targets & (1u << p)) {
            /* PEFT's suffix match: q_proj also names self_attn.experts.J.q_proj, while a routed
             * FFN expert's projections are w1/w3/w2, never gate/up/down_proj */
            if (present) dense[p] = true;
            else if (!xbit[p] && nx > 0) experts[p] = true;
            else if (nb < sizeof bad)
                nb += (size_t)snprintf(bad + nb, sizeof bad - nb, "%s%s (the FFN is a mixture of %d experts: target %s)",
                                       nb ? ", " : "", proj_names[p], s->n_experts, br_lora_expert_name((br_proj)p));
        }
        if (xbit[p] && (targets & xbit[p])) {
            if (nx > 0) experts[p] = true;
            else if (nb < sizeof bad)
                nb += (size_t)snprintf(bad + nb, sizeof bad - nb, "%s%s (the base has no block_sparse_moe experts)",
                                       nb ? ", " : "", br_lora_expert_name((br_proj)p));
        }
    }
    if (nb) return br_error(BR_EINVAL, "LoRA targets not in the base model: %s", bad);
    for (int p = 0; p < BR_PROJ_COUNT; p++)
        if (dense[p] || experts[p]) return BR_OK;
    return br_error(BR_EINVAL, "LoRA: no valid target projection");
}

/* ---- allocation ---- */

/* Points module m (rank `rank`, in x out) at its A and B in *p and advances *p. */
static void carve(br_lora_module_t *m, int rank, float **p, size_t in, size_t out)
{
    m->rank = rank;
    if (!rank) return;
    m->A = *p;
    *p += (size_t)rank * in;
    m->B = *p;
    *p += (size_t)rank * out;
}

br_status br_lora_alloc(br_lora_adapter_t **out, const br_lora_shapes_t *s, const int *ranks)
{
    return br_lora_alloc_experts(out, s, ranks, NULL);
}

br_status br_lora_alloc_experts(br_lora_adapter_t **out, const br_lora_shapes_t *s, const int *ranks,
                                const int *xranks)
{
    *out = NULL;
    if (s->n_layers <= 0) return br_error(BR_EINVAL, "LoRA: base model has no layers");
    size_t nmod = (size_t)s->n_layers * BR_PROJ_COUNT, nx = xranks ? br_lora_expert_slots(s) : 0, n = 0;
    for (size_t i = 0; i < nmod; i++) {
        size_t p = i % BR_PROJ_COUNT;
        n += (size_t)ranks[i] * (s->in[p] + s->out[p]);
    }
    for (size_t i = 0; i < nx; i++) {
        size_t p = i % BR_PROJ_COUNT;
        n += (size_t)xranks[i] * (s->in[p] + s->out[p]);
    }
    br_lora_adapter_t *a = calloc(1, sizeof *a);
    if (!a) return br_error(BR_ENOMEM, "LoRA: out of memory");
    a->shapes = *s;
    a->mods = calloc(nmod, sizeof *a->mods);
    a->xmods = nx ? calloc(nx, sizeof *a->xmods) : NULL;
    a->params = n ? br_alloc(n * sizeof(float)) : NULL;
    if (!a->mods || (nx && !a->xmods) || (n && !a->params)) {
        br_lora_free(a);
        return br_error(BR_ENOMEM, "LoRA: out of memory for %zu parameters", n);
    }
    a->n_params = n;
    float *p = a->params;
    for (size_t i = 0; i < nmod; i++) {
        size_t pr = i % BR_PROJ_COUNT;
        carve(&a->mods[i], ranks[i], &p, s->in[pr], s->out[pr]);
        if (ranks[i]) a->targets |= 1u << pr;
    }
    for (size_t i = 0; i < nx; i++) {
        size_t pr = i % BR_PROJ_COUNT;
        carve(&a->xmods[i], xranks[i], &p, s->in[pr], s->out[pr]);
        if (xranks[i]) a->xtargets |= 1u << pr;
    }
    if (!a->xtargets) { /* no expert module: the dense layout exactly */
        free(a->xmods);
        a->xmods = NULL;
    }
    *out = a;
    return BR_OK;
}

/* Modules of a: the dense ones, then the experts' (module_at's index range). */
static size_t n_modules(const br_lora_adapter_t *a)
{
    return (size_t)a->shapes.n_layers * BR_PROJ_COUNT + (a->xmods ? br_lora_expert_slots(&a->shapes) : 0);
}

/* Module i of a (rank 0: not adapted), and its in/out sizes. */
static br_lora_module_t *module_at(const br_lora_adapter_t *a, size_t i, size_t *C, size_t *OC)
{
    size_t nm = (size_t)a->shapes.n_layers * BR_PROJ_COUNT;
    *C = a->shapes.in[i % BR_PROJ_COUNT];
    *OC = a->shapes.out[i % BR_PROJ_COUNT];
    return i < nm ? &a->mods[i] : &a->xmods[i - nm];
}

void br_lora_free(br_lora_adapter_t *a)
{
    if (!a) return;
    br_free(a->params);
    br_free(a->grads);
    free(a->mods);
    free(a->xmods);
    free(a);
}

size_t br_lora_bytes(const br_lora_adapter_t *a)
{
    size_t nmod = (size_t)a->shapes.n_layers * BR_PROJ_COUNT;
    size_t nx = a->xmods ? br_lora_expert_slots(&a->shapes) : 0;
    return sizeof *a + (nmod + nx) * sizeof *a->mods + a->n_params * sizeof(float) * (a->grads ? 2 : 1);
}

float br_lora_scale(float alpha, int r, bool rslora)
{
    return rslora ? alpha / sqrtf((float)r) : alpha / (float)r;
}

br_status br_lora_create(br_lora_adapter_t **out, const br_lora_shapes_t *shapes, int rank,
                         float alpha, unsigned targets, bool rslora, uint64_t seed)
{
    *out = NULL;
    if (rank <= 0 || rank > 4096) return br_error(BR_EINVAL, "LoRA rank %d must be in 1..4096", rank);
    if (!(alpha > 0 && alpha <= BR_LORA_ALPHA_MAX))
        return br_error(BR_EINVAL, "LoRA alpha %g must be in (0, %g]", (double)alpha, BR_LORA_ALPHA_MAX);
    if (!targets || targets >= (BR_LORA_ALL << 1))
        return br_error(BR_EINVAL, "LoRA: no valid target projection");
    bool dense[BR_PROJ_COUNT], experts[BR_PROJ_COUNT];
    BR_TRY(br_lora_resolve_targets(shapes, targets, dense, experts));
    for (int p = 0; p < BR_PROJ_COUNT; p++)
        if ((dense[p] || experts[p]) && ((size_t)rank > shapes->in[p] || (size_t)rank > shapes->out[p]))
            return br_error(BR_EINVAL, "LoRA rank %d exceeds %s's size (%zu x %zu)", rank,
                            proj_names[p], shapes->out[p], shapes->in[p]);
    size_t nmod = (size_t)shapes->n_layers * BR_PROJ_COUNT, nx = br_lora_expert_slots(shapes);
    size_t X = br_lora_expert_stride(shapes);
    int *ranks = calloc(nmod ? nmod : 1, sizeof *ranks), *xranks = calloc(nx ? nx : 1, sizeof *xranks);
    if (!ranks || !xranks) {
        free(ranks);
        free(xranks);
        return br_error(BR_ENOMEM, "LoRA: out of memory");
    }
    for (size_t i = 0; i < nmod; i++) ranks[i] = dense[i % BR_PROJ_COUNT] ? rank : 0;
    for (size_t i = 0; i < nx; i++) {
        size_t p = i % BR_PROJ_COUNT, e = (i / BR_PROJ_COUNT) % X;
        xranks[i] = experts[p] && e < (size_t)br_lora_site_experts(shapes, (br_proj)p) ? rank : 0;
    }
    br_status s = br_lora_alloc_experts(out, shapes, ranks, nx ? xranks : NULL);
    free(ranks);
    free(xranks);
    if (s != BR_OK) return s;
    br_lora_adapter_t *a = *out;
    a->rank = rank;
    a->alpha = alpha;
    a->rslora = rslora;
    br_rng_t rng;
    br_rng_seed(&rng, seed);
    for (size_t i = 0, C, OC; i < n_modules(a); i++) {
        br_lora_module_t *m = module_at(a, i, &C, &OC);
        if (!m->rank) continue;
        /* PEFT: kaiming_uniform_(A, a=sqrt(5)) -> U(-1/sqrt(C), 1/sqrt(C)); B = 0 */
        float bound = 1.0f / sqrtf((float)C);
        br_rng_fill_uniform(&rng, m->A, (size_t)m->rank * C, -bound, bound);
        m->scale = br_lora_scale(alpha, rank, rslora);
    }
    return BR_OK;
}

br_status br_lora_alloc_grads(br_lora_adapter_t *a)
{
    if (a->grads) {
        br_lora_zero_grads(a);
        return BR_OK;
    }
    if (!a->n_params) return BR_OK;
    a->grads = br_alloc(a->n_params * sizeof(float));
    if (!a->grads) return br_error(BR_ENOMEM, "LoRA: out of memory for gradients");
    for (size_t i = 0, C, OC; i < n_modules(a); i++) {
        br_lora_module_t *m = module_at(a, i, &C, &OC);
        if (!m->rank) continue;
        m->dA = a->grads + (m->A - a->params);
        m->dB = a->grads + (m->B - a->params);
    }
    return BR_OK;
}

void br_lora_zero_grads(br_lora_adapter_t *a)
{
    if (a->grads) memset(a->grads, 0, a->n_params * sizeof(float));
}

void br_lora_merge(float *W, const br_lora_adapter_t *a, int layer, br_proj p, float sign)
{
    const br_lora_module_t *m = br_lora_module(a, layer, p);
    if (!m->rank) return;
    /* W (OC,C) += sign*scale * B (OC,r) @ A (r,C) */
    br_sgemm(false, false, a->shapes.out[p], a->shapes.in[p], (size_t)m->rank, sign * m->scale,
             m->B, (size_t)m->rank, m->A, a->shapes.in[p], 1.0f, W, a->shapes.in[p]);
}

void br_lora_merge_expert(float *W, const br_lora_adapter_t *a, int layer, int expert, br_proj p,
                          float sign)
{
    const br_lora_module_t *m = br_lora_xmodule(a, layer, expert, p);
    if (!m->rank) return;
    br_sgemm(false, false, a->shapes.out[p], a->shapes.in[p], (size_t)m->rank, sign * m->scale,
             m->B, (size_t)m->rank, m->A, a->shapes.in[p], 1.0f, W, a->shapes.in[p]);
}

/* ---- batched application ---- */

struct br_lora_batch {
    size_t N;
    const br_lora_adapter_t **uniq; /* (nuniq) */
    size_t nuniq, cap_uniq;
    int32_t *row_group;  /* (N) index into uniq, -1: none */
    size_t *perm;        /* (N) rows sorted by group (stable) */
    size_t *goff;        /* (nuniq+1) group g's rows are perm[goff[g] .. goff[g+1]) */
    bool *contig;        /* (nuniq) the group's rows are consecutive in the batch */
    size_t cap_rows;
    float *xs, *vs, *ys; /* scratch: gathered inputs (N, maxC), v (N, maxR), outputs (N, maxOC) */
    size_t cap_x, cap_v, cap_y;
};

br_status br_lora_batch_create(br_lora_batch_t **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? BR_OK : br_error(BR_ENOMEM, "LoRA batch: out of memory");
}

void br_lora_batch_free(br_lora_batch_t *b)
{
    if (!b) return;
    free(b->uniq);
    free(b->row_group);
    free(b->perm);
    free(b->goff);
    free(b->contig);
    br_free(b->xs);
    br_free(b->vs);
    br_free(b->ys);
    free(b);
}

size_t br_lora_batch_nadapters(const br_lora_batch_t *b) { return b->nuniq; }

static br_status grow_floats(float **p, size_t *cap, size_t n)
{
    if (n <= *cap) return BR_OK;
    float *q = br_alloc(n * sizeof(float));
    if (!q) return br_error(BR_ENOMEM, "LoRA batch: out of memory for %zu floats of scratch", n);
    br_free(*p);
    *p = q;
    *cap = n;
    return BR_OK;
}

br_status br_lora_batch_set(br_lora_batch_t *b, const br_lora_adapter_t *const *rows, size_t N)
{
    b->N = 0;
    b->nuniq = 0;
    if (N > b->cap_rows) {
        int32_t *rg = realloc(b->row_group, N * sizeof *rg);
        if (rg) b->row_group = rg;
        size_t *pm = realloc(b->perm, N * sizeof *pm);
        if (pm) b->perm = pm;
        if (!rg || !pm) return br_error(BR_ENOMEM, "LoRA batch: out of memory for %zu rows", N);
        b->cap_rows = N;
    }
    size_t maxC = 0, maxOC = 0, maxR = 0;
    for (size_t i = 0; i < N; i++) {
        const br_lora_adapter_t *a = rows[i];
        b->row_group[i] = -1;
        if (!a) continue;
        /* consecutive rows usually share an adapter: check the last group first */
        size_t g = b->nuniq;
        if (g && b->uniq[g - 1] == a) g = g - 1;
        else
            for (g = 0; g < b->nuniq && b->uniq[g] != a; g++) {}
        if (g == b->nuniq) {
            if (b->nuniq == b->cap_uniq) {
                size_t nc = b->cap_uniq ? 2 * b->cap_uniq : 16;
                const br_lora_adapter_t **u = realloc(b->uniq, nc * sizeof *u);
                size_t *go = realloc(b->goff, (nc + 1) * sizeof *go);
                if (u) b->uniq = u;
                if (go) b->goff = go;
                bool *ct = realloc(b->contig, nc * sizeof *ct);
                if (ct) b->contig = ct;
                if (!u || !go || !ct) return br_error(BR_ENOMEM, "LoRA batch: out of memory");
                b->cap_uniq = nc;
            }
            b->uniq[b->nuniq++] = a;
            for (int p = 0; p < BR_PROJ_COUNT; p++) {
                if (!((a->targets | a->xtargets) & (1u << p))) continue;
                if (a->shapes.in[p] > maxC) maxC = a->shapes.in[p];
                if (a->shapes.out[p] > maxOC) maxOC = a->shapes.out[p];
            }
            for (size_t m = 0, C, OC; m < n_modules(a); m++) {
                size_t r = (size_t)module_at(a, m, &C, &OC)->rank;
                if (r > maxR) maxR = r;
            }
        }
        b->row_group[i] = (int32_t)g;
    }
    /* counting sort of rows by group (stable) */
    size_t G = b->nuniq;
    if (G) {
        memset(b->goff, 0, (G + 1) * sizeof *b->goff);
        for (size_t i = 0; i < N; i++)
            if (b->row_group[i] >= 0) b->goff[b->row_group[i] + 1]++;
        for (size_t g = 0; g < G; g++) b->goff[g + 1] += b->goff[g];
        size_t *fill = calloc(G, sizeof *fill);
        if (!fill) return br_error(BR_ENOMEM, "LoRA batch: out of memory");
        for (size_t i = 0; i < N; i++) {
            int32_t g = b->row_group[i];
            if (g >= 0) b->perm[b->goff[g] + fill[g]++] = i;
        }
        free(fill);
        for (size_t g = 0; g < G; g++) {
            size_t lo = b->goff[g], hi = b->goff[g + 1];
            b->contig[g] = b->perm[hi - 1] - b->perm[lo] == hi - 1 - lo;
        }
    }
    size_t nx, nv, ny;
    BR_TRY(br_mul_size(&nx, N, maxC));
    BR_TRY(br_mul_size(&nv, N, maxR));
    BR_TRY(br_mul_size(&ny, N, maxOC > maxC ? maxOC : maxC));
    BR_TRY(grow_floats(&b->xs, &b->cap_x, nx));
    BR_TRY(grow_floats(&b->vs, &b->cap_v, nv));
    BR_TRY(grow_floats(&b->ys, &b->cap_y, ny));
    b->N = N;
    return BR_OK;
}

/* Lone row (BGMV): out (OC) += scale * B (A x). */
static void bgmv_row(float *out, const float *x, const br_lora_module_t *m, size_t C, size_t OC)
{
    float v[m->rank];
    for (int k = 0; k < m->rank; k++) {
        const float *a = m->A + (size_t)k * C;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (size_t c = 0; c < C; c++) s += a[c] * x[c];
        v[k] = s * m->scale;
    }
    for (size_t o = 0; o < OC; o++) {
        const float *bo = m->B + o * (size_t)m->rank;
        float s = 0;
        for (int k = 0; k < m->rank; k++) s += bo[k] * v[k];
        out[o] += s;
    }
}

static void lora_apply(const br_lora_hook_t *h, float *out, const float *inp, size_t N, size_t C,
                       size_t OC, int layer, br_proj proj)
{
    br_lora_batch_t *b = h->ctx;
    BR_ASSERT(N == b->N);
    size_t G = b->nuniq;
    /* lone rows first, in parallel (each writes only its own output row) */
#pragma omp parallel for schedule(dynamic, 1) if (G > 1)
    for (size_t g = 0; g < G; g++) {
        if (b->goff[g + 1] - b->goff[g] != 1) continue;
        const br_lora_adapter_t *a = b->uniq[g];
        if (layer >= a->shapes.n_layers) continue;
        const br_lora_module_t *m = br_lora_module(a, layer, proj);
        if (!m->rank) continue;
        size_t i = b->perm[b->goff[g]];
        bgmv_row(out + i * OC, inp + i * C, m, C, OC);
    }
    /* segments (SGMV): two GEMMs per adapter over its rows */
    for (size_t g = 0; g < G; g++) {
        size_t lo = b->goff[g], L = b->goff[g + 1] - lo;
        if (L < 2) continue;
        const br_lora_adapter_t *a = b->uniq[g];
        if (layer >= a->shapes.n_layers) continue;
        const br_lora_module_t *m = br_lora_module(a, layer, proj);
        if (!m->rank) continue;
        size_t r = (size_t)m->rank;
        if (b->contig[g]) {
            size_t i0 = b->perm[lo];
            br_sgemm(false, true, L, r, C, 1.0f, inp + i0 * C, C, m->A, C, 0.0f, b->vs, r);
            br_sgemm(false, true, L, OC, r, m->scale, b->vs, r, m->B, r, 1.0f, out + i0 * OC, OC);
            continue;
        }
        for (size_t j = 0; j < L; j++) memcpy(b->xs + j * C, inp + b->perm[lo + j] * C, C * sizeof(float));
        br_sgemm(false, true, L, r, C, 1.0f, b->xs, C, m->A, C, 0.0f, b->vs, r);
        br_sgemm(false, true, L, OC, r, m->scale, b->vs, r, m->B, r, 0.0f, b->ys, OC);
        for (size_t j = 0; j < L; j++) {
            float *o = out + b->perm[lo + j] * OC;
            const float *y = b->ys + j * OC;
            for (size_t c = 0; c < OC; c++) o[c] += y[c];
        }
    }
}

/* Backward of y += s * (x A^T) B^T over a group's rows:
 *   v = x A^T (L,r);  dB += s dout^T v;  dv = s dout B (L,r);  dA += dv^T x;  dinp += dv A. */
static void lora_backward(const br_lora_hook_t *h, float *dinp, const float *dout, const float *inp,
                          size_t N, size_t C, size_t OC, int layer, br_proj proj)
{
    br_lora_batch_t *b = h->ctx;
    BR_ASSERT(N == b->N);
    for (size_t g = 0; g < b->nuniq; g++) {
        size_t lo = b->goff[g], L = b->goff[g + 1] - lo;
        const br_lora_adapter_t *a = b->uniq[g];
        if (layer >= a->shapes.n_layers) continue;
        const br_lora_module_t *m = br_lora_module(a, layer, proj);
        if (!m->rank) continue;
        size_t r = (size_t)m->rank;
        const float *x, *dy;
        size_t ldx = C;
        float *ys = b->ys, *xs = b->xs;
        if (b->contig[g]) {
            x = inp + b->perm[lo] * C;
            dy = dout + b->perm[lo] * OC;
        } else {
            for (size_t j = 0; j < L; j++) {
                memcpy(xs + j * C, inp + b->perm[lo + j] * C, C * sizeof(float));
                memcpy(ys + j * OC, dout + b->perm[lo + j] * OC, OC * sizeof(float));
            }
            x = xs;
            dy = ys;
        }
        float *v = b->vs;
        br_sgemm(false, true, L, r, C, 1.0f, x, ldx, m->A, C, 0.0f, v, r);
        if (m->dB) br_sgemm(true, false, OC, r, L, m->scale, dy, OC, v, r, 1.0f, m->dB, r);
        /* v <- dv = s dout B */
        br_sgemm(false, false, L, r, OC, m->scale, dy, OC, m->B, r, 0.0f, v, r);
        if (m->dA) br_sgemm(true, false, r, C, L, 1.0f, v, r, x, ldx, 1.0f, m->dA, C);
        if (!dinp) continue;
        if (b->contig[g]) {
            br_sgemm(false, false, L, C, r, 1.0f, v, r, m->A, C, 1.0f, dinp + b->perm[lo] * C, C);
        } else {
            /* xs is free again: dx rows there, then scatter-add */
            br_sgemm(false, false, L, C, r, 1.0f, v, r, m->A, C, 0.0f, xs, C);
            for (size_t j = 0; j < L; j++) {
                float *d = dinp + b->perm[lo + j] * C;
                const float *s = xs + j * C;
                for (size_t c = 0; c < C; c++) d[c] += s[c];
            }
        }
    }
}

/* ---- expert rows ---- */

/* The adapter of the expert's local row i (NULL: none). */
static const br_lora_adapter_t *row_adapter(const br_lora_batch_t *b, const int32_t *asg, size_t k, size_t i)
{
    size_t row = asg ? (size_t)asg[i] / k : i;
    BR_ASSERT(row < b->N);
    int32_t g = b->row_group[row];
    return g >= 0 ? b->uniq[g] : NULL;
}

/* The run of local rows from lo that share row lo's adapter ([lo, *hi)), and that adapter's
 * module of (layer, expert, proj); NULL when it has none (or the rows have no adapter).  Rows
 * routed to one expert keep token order and a sequence's tokens share an adapter, so runs are
 * long in prefill. */
static const br_lora_module_t *next_run(const br_lora_batch_t *b, const int32_t *asg, size_t k, size_t n, size_t lo,
                                        size_t *hi, int layer, int expert, br_proj proj)
{
    const br_lora_adapter_t *ad = row_adapter(b, asg, k, lo);
    size_t h = lo + 1;
    while (h < n && row_adapter(b, asg, k, h) == ad) h++;
    *hi = h;
    if (!ad || layer >= ad->shapes.n_layers || expert >= br_lora_site_experts(&ad->shapes, proj)) return NULL;
    const br_lora_module_t *m = br_lora_xmodule(ad, layer, expert, proj);
    return m->rank ? m : NULL;
}

static void lora_apply_expert(const br_lora_hook_t *h, float *out, size_t ldo, const float *inp, size_t ldi,
                              const int32_t *asg, size_t k, size_t n, size_t C, size_t OC, int layer, int expert,
                              br_proj proj)
{
    br_lora_batch_t *b = h->ctx;
    for (size_t lo = 0, hi; lo < n; lo = hi) {
        const br_lora_module_t *m = next_run(b, asg, k, n, lo, &hi, layer, expert, proj);
        if (!m) continue;
        size_t L = hi - lo, r = (size_t)m->rank;
        if (L == 1) {
            bgmv_row(out + lo * ldo, inp + lo * ldi, m, C, OC);
            continue;
        }
        br_sgemm(false, true, L, r, C, 1.0f, inp + lo * ldi, ldi, m->A, C, 0.0f, b->vs, r);
        br_sgemm(false, true, L, OC, r, m->scale, b->vs, r, m->B, r, 1.0f, out + lo * ldo, ldo);
    }
}

/* Backward over each run, straight on the expert's contiguous rows (see lora_backward). */
static void lora_backward_expert(const br_lora_hook_t *h, float *dinp, const float *dout, size_t ldo,
                                 const float *inp, size_t ldi, const int32_t *asg, size_t k, size_t n, size_t C,
                                 size_t OC, int layer, int expert, br_proj proj)
{
    br_lora_batch_t *b = h->ctx;
    for (size_t lo = 0, hi; lo < n; lo = hi) {
        const br_lora_module_t *m = next_run(b, asg, k, n, lo, &hi, layer, expert, proj);
        if (!m) continue;
        size_t L = hi - lo, r = (size_t)m->rank;
        const float *x = inp + lo * ldi, *dy = dout + lo * ldo;
        float *v = b->vs;
        br_sgemm(false, true, L, r, C, 1.0f, x, ldi, m->A, C, 0.0f, v, r);
        if (m->dB) br_sgemm(true, false, OC, r, L, m->scale, dy, ldo, v, r, 1.0f, m->dB, r);
        br_sgemm(false, false, L, r, OC, m->scale, dy, ldo, m->B, r, 0.0f, v, r);
        if (m->dA) br_sgemm(true, false, r, C, L, 1.0f, v, r, x, ldi, 1.0f, m->dA, C);
        if (dinp) br_sgemm(false, false, L, C, r, 1.0f, v, r, m->A, C, 1.0f, dinp + lo * ldi, ldi);
    }
}

br_lora_hook_t br_lora_batch_hook(br_lora_batch_t *b)
{
    br_lora_hook_t h = {lora_apply, lora_backward, b, lora_apply_expert, lora_backward_expert};
    return h;
}

void br_lora_apply_expert_ref(float *out, const float *inp, const br_lora_adapter_t *const *rows, size_t n,
                              size_t C, size_t OC, int layer, int expert, br_proj p)
{
    for (size_t i = 0; i < n; i++) {
        const br_lora_adapter_t *a = rows[i];
        if (!a || layer >= a->shapes.n_layers || expert >= br_lora_site_experts(&a->shapes, p)) continue;
        const br_lora_module_t *m = br_lora_xmodule(a, layer, expert, p);
        if (!m->rank) continue;
        double v[m->rank];
        for (int q = 0; q < m->rank; q++) {
            double s = 0;
            for (size_t c = 0; c < C; c++) s += (double)m->A[(size_t)q * C + c] * inp[i * C + c];
            v[q] = s;
        }
        for (size_t o = 0; o < OC; o++) {
            double s = 0;
            for (int q = 0; q < m->rank; q++) s += (double)m->B[o * (size_t)m->rank + (size_t)q] * v[q];
            out[i * OC + o] += (float)(m->scale * s);
        }
    }
}

void br_lora_apply_ref(float *out, const float *inp, const br_lora_adapter_t *const *rows, size_t N,
                       size_t C, size_t OC, int layer, br_proj p)
{
    for (size_t i = 0; i < N; i++) {
        const br_lora_adapter_t *a = rows[i];
        if (!a || layer >= a->shapes.n_layers) continue;
        const br_lora_module_t *m = br_lora_module(a, layer, p);
        if (!m->rank) continue;
        double v[m->rank];
        for (int k = 0; k < m->rank; k++) {
            double s = 0;
            for (size_t c = 0; c < C; c++) s += (double)m->A[(size_t)k * C + c] * inp[i * C + c];
            v[k] = s;
        }
        for (size_t o = 0; o < OC; o++) {
            double s = 0;
            for (int k = 0; k < m->rank; k++) s += (double)m->B[o * (size_t)m->rank + (size_t)k] * v[k];
            out[i * OC + o] += (float)(m->scale * s);
        }
    }
}
