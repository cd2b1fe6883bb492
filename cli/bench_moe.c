/* braid bench moe: the cost of the mixture layers next to their dense peers, in the same run
 * (interleaved repetitions, medians):
 *   1. MoE FFN forward+backward, E experts top-1, vs the dense SwiGLU FFN with the same active
 *      parameters (one expert's width): goal <= 1.3x;
 *   2. one block's attention part + FFN part per token: BAM (soft mixture of attention over E
 *      experts, expert-KV and shared-KV, + top-1 MoE FFN) vs BTX (one attention + top-1 MoE
 *      FFN), forward+backward, plus the FLOPs ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/alloc.h"
#include "base/rng.h"
#include "base/timer.h"
#include "bench_cmds.h"
#include "base/threads.h"
#include "nn/moe.h"
#include "nn/nn.h"

typedef struct {
    br_moe_cfg_t c;
    br_moe_params_t p, g;
    float *pbuf, *gbuf;
    br_moe_ws_t ws;
} ffn_t;

static int ffn_init(ffn_t *f, br_moe_cfg_t c, size_t N, br_rng_t *r)
{
    memset(f, 0, sizeof *f);
    f->c = c;
    size_t np = br_moe_nparams(&c);
    f->pbuf = br_alloc(np * sizeof(float));
    f->gbuf = br_alloc(np * sizeof(float));
    if (!f->pbuf || !f->gbuf || br_moe_ws_init(&f->ws, &c, N, true)) return -1;
    br_rng_fill_normal(r, f->pbuf, np, 0.02f);
    br_moe_params_bind(&f->p, f->pbuf, &c);
    br_moe_params_bind(&f->g, f->gbuf, &c);
    return 0;
}

static void ffn_free(ffn_t *f)
{
    br_free(f->pbuf);
    br_free(f->gbuf);
    br_moe_ws_free(&f->ws);
}

static double ffn_step(ffn_t *f, float *out, float *dx, const float *x, const float *dy, size_t N)
{
    double t0 = br_now();
    br_moe_ffn_forward(out, &f->ws, x, &f->p, &f->c, N);
    br_moe_ffn_backward(dx, &f->g, dy, x, &f->p, &f->ws, &f->c, N, 1.0f);
    return br_now() - t0;
}

typedef struct {
    br_moa_cfg_t c;
    br_moa_params_t p, g;
    float *pbuf, *gbuf;
    br_moa_ws_t ws;
} attn_t;

static int attn_init(attn_t *a, br_moa_cfg_t c, size_t B, size_t T, br_rng_t *r)
{
    memset(a, 0, sizeof *a);
    a->c = c;
    size_t np = br_moa_nparams(&c);
    a->pbuf = br_alloc(np * sizeof(float));
    a->gbuf = br_alloc(np * sizeof(float));
    if (!a->pbuf || !a->gbuf || br_moa_ws_init(&a->ws, &c, B, T, true)) return -1;
    br_rng_fill_normal(r, a->pbuf, np, 0.02f);
    br_moa_params_bind(&a->p, a->pbuf, &c);
    br_moa_params_bind(&a->g, a->gbuf, &c);
    return 0;
}

static void attn_free(attn_t *a)
{
    br_free(a->pbuf);
    br_free(a->gbuf);
    br_moa_ws_free(&a->ws);
}

static double attn_step(attn_t *a, float *out, float *dx, const float *x, const float *dy,
                        const float *cs, const float *sn, size_t B, size_t T)
{
    double t0 = br_now();
    br_moa_forward(out, &a->ws, x, &a->p, &a->c, cs, sn, B, T);
    br_moa_backward(dx, &a->g, dy, x, &a->p, &a->ws, &a->c, cs, sn, B, T, 1.0f);
    return br_now() - t0;
}

/* Forward+backward FLOPs (x3 of forward) of one attention part per token with n experts. */
static double attn_flops(const br_moa_cfg_t *c, size_t T)
{
    double C = (double)c->C, hd = (double)c->hd, n = (double)c->n;
    double HQ = n * (double)c->NH, HKV = (double)br_moa_kv_heads(c);
    double proj = 2 * C * (HQ * hd * 2 + HKV * hd * 2) + (n > 1 ? 2 * C * n : 0);
    double core = 2 * HQ * hd * (double)T; /* QK^T and AV, causal average T/2 each */
    return 3 * (proj + core);
}

/* Median seconds of one forward+backward of BTX's attention (a1), BAM expert-KV (ae) and BAM
 * shared-KV (as), timed in alternation; 1 when out of memory. */
static int time_attention(const br_moa_cfg_t *a1, const br_moa_cfg_t *ae, const br_moa_cfg_t *as, float *out,
                          float *dx, const float *x, const float *dy, const float *cs, const float *sn, size_t B,
                          size_t T, int reps, br_rng_t *r, double *m_btx, double *m_bam, double *m_bams)
{
    attn_t at[3];
    const br_moa_cfg_t *cfg[3] = {a1, ae, as};
    double *t = malloc(3 * (size_t)reps * sizeof(double));
    int ok = t != NULL, n = 0;
    for (; ok && n < 3; n++) ok = !attn_init(&at[n], *cfg[n], B, T, r);
    if (!ok) n--;
    for (int k = 0; ok && k < 3; k++) attn_step(&at[k], out, dx, x, dy, cs, sn, B, T);
    for (int i = 0; ok && i < reps; i++)
        for (int k = 0; k < 3; k++) t[k * reps + i] = attn_step(&at[k], out, dx, x, dy, cs, sn, B, T);
    if (ok) {
        *m_btx = bench_median(t, (size_t)reps);
        *m_bam = bench_median(t + reps, (size_t)reps);
        *m_bams = bench_median(t + 2 * reps, (size_t)reps);
    }
    for (int k = 0; k < n; k++) attn_free(&at[k]);
    free(t);
    return !ok;
}

int bench_moe(int argc, char **argv)
{
    int experts = 4, C = 256, F = 1024, B = 8, T = 128, heads = 4, reps = 7, threads = 0;
    bool json = false;
    const opt_t opts[] = {
        {"experts", OPT_INT, &experts, "E", "experts (default 4)", false},
        {"dim", OPT_INT, &C, "C", "model width (default 256)", false},
        {"ffn", OPT_INT, &F, "F", "expert / dense FFN width (default 1024)", false},
        {"batch", OPT_INT, &B, "B", "sequences (default 8)", false},
        {"seq", OPT_INT, &T, "T", "tokens per sequence (default 128)", false},
        {"heads", OPT_INT, &heads, "H", "attention heads per expert (default 4)", false},
        {"reps", OPT_INT, &reps, "N", "timed repetitions, median reported (default 7)", false},
        {"threads", OPT_INT, &threads, "N", "threads (default: BRAID_THREADS or all cores)", false},
        {"json", OPT_BOOL, &json, NULL, "print one JSON object with every number", false},
    };
    cmd_spec_t spec = {"braid bench moe [options]",
                       "Mixture layers vs their dense peers in the same run: MoE FFN (E experts, "
                       "top-1) forward+backward vs a dense FFN with the same active parameters "
                       "(goal <= 1.3x), and BAM's attention mixture (expert-KV, shared-KV) vs "
                       "BTX's single attention, per token.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (experts < 2 || experts > 64 || C < 8 || F < 8 || B < 1 || T < 2 || heads < 1 ||
        C % heads || (C / heads) % 2 || reps < 1 || reps > 1000) {
        fprintf(stderr, "braid: error: bad sizes (need 2 <= experts <= 64, C divisible by heads "
                        "with an even head dim, B, T, reps >= 1)\n");
        return 2;
    }
    if (threads > 0) br_set_threads(threads);
    size_t N = (size_t)B * (size_t)T;
    br_rng_t r;
    br_rng_seed(&r, 1);
    float *x = br_alloc(N * C * sizeof(float)), *dy = br_alloc(N * C * sizeof(float));
    float *out = br_alloc(N * C * sizeof(float)), *dx = br_alloc(N * C * sizeof(float));
    size_t hd = (size_t)(C / heads);
    float *cs = br_alloc((size_t)T * hd / 2 * sizeof(float)), *sn = br_alloc((size_t)T * hd / 2 * sizeof(float));
    if (!x || !dy || !out || !dx || !cs || !sn) {
        fprintf(stderr, "braid: error: out of memory\n");
        return 1;
    }
    br_rng_fill_normal(&r, x, N * C, 1);
    br_rng_fill_normal(&r, dy, N * C, 1);
    br_rope_tables(cs, sn, (size_t)T, hd, 10000.0f);

    /* 1. FFN */
    br_moe_cfg_t dc = {.C = (size_t)C, .F = (size_t)F, .E = 1, .k = 1};
    br_moe_cfg_t mc = {.C = (size_t)C, .F = (size_t)F, .E = (size_t)experts, .k = 1, .alpha = 0.01f, .beta = 0.001f};
    ffn_t dense, moe;
    if (ffn_init(&dense, dc, N, &r) || ffn_init(&moe, mc, N, &r)) {
        fprintf(stderr, "braid: error: out of memory\n");
        return 1;
    }
    double *td = malloc((size_t)reps * sizeof(double)), *tm = malloc((size_t)reps * sizeof(double));
    ffn_step(&dense, out, dx, x, dy, N);
    ffn_step(&moe, out, dx, x, dy, N);
    for (int i = 0; i < reps; i++) {
        td[i] = ffn_step(&dense, out, dx, x, dy, N);
        tm[i] = ffn_step(&moe, out, dx, x, dy, N);
    }
    size_t maxload = 0;
    for (int e = 0; e < experts; e++) maxload = moe.ws.count[e] > maxload ? moe.ws.count[e] : maxload;
    double md = bench_median(td, (size_t)reps), mm = bench_median(tm, (size_t)reps);
    double ffn_ratio = mm / md;

    /* 2. attention parts (+ the same top-1 MoE FFN for the block) */
    br_moa_cfg_t a1 = {.C = (size_t)C, .NH = (size_t)heads, .NKV = (size_t)heads, .hd = hd, .n = 1};
    br_moa_cfg_t ae = a1, as = a1;
    ae.n = as.n = (size_t)experts;
    as.shared_kv = true;
    double a_btx, a_bam, a_bams;
    if (time_attention(&a1, &ae, &as, out, dx, x, dy, cs, sn, (size_t)B, (size_t)T, reps, &r, &a_btx, &a_bam,
                       &a_bams)) {
        fprintf(stderr, "braid: error: out of memory\n");
        return 1;
    }
    double blk_btx = a_btx + mm, blk_bam = a_bam + mm, blk_bams = a_bams + mm;
    double ffn_fl = 3 * (2.0 * C * experts + 6.0 * C * F); /* top-1 MoE FFN fwd+bwd per token */
    double fl_btx = attn_flops(&a1, (size_t)T) + ffn_fl, fl_bam = attn_flops(&ae, (size_t)T) + ffn_fl;
    double fl_bams = attn_flops(&as, (size_t)T) + ffn_fl;
    double us = 1e6 / (double)N;
    if (json) {
        printf("{\"threads\": %d, \"N\": %zu, \"C\": %d, \"F\": %d, \"experts\": %d, "
               "\"dense_ffn_ms\": %.3f, \"moe_ffn_ms\": %.3f, \"moe_vs_dense\": %.3f, \"max_expert_load\": %zu, "
               "\"btx_block_us_per_token\": %.3f, \"bam_block_us_per_token\": %.3f, \"bam_shared_kv_block_us_per_token\": %.3f, "
               "\"bam_vs_btx\": %.3f, \"bam_shared_kv_vs_btx\": %.3f, \"bam_vs_btx_flops\": %.3f, \"bam_shared_kv_vs_btx_flops\": %.3f}\n",
               br_get_threads(), N, C, F, experts, md * 1e3, mm * 1e3, ffn_ratio, maxload,
               blk_btx * us, blk_bam * us, blk_bams * us, blk_bam / blk_btx, blk_bams / blk_btx,
               fl_bam / fl_btx, fl_bams / fl_btx);
    } else {
        printf("braid bench moe: %d thread%s, %zu tokens (B=%d x T=%d), C=%d, F=%d, %d experts, "
               "median of %d\n", br_get_threads(), br_get_threads() > 1 ? "s" : "", N, B, T, C, F,
               experts, reps);
        printf("  FFN fwd+bwd   dense (F=%d)          %8.2f ms\n", F, md * 1e3);
        printf("  FFN fwd+bwd   MoE %d experts top-1   %8.2f ms   %.2fx dense (goal <= 1.30x)  "
               "[busiest expert %zu of %zu tokens]\n", experts, mm * 1e3, ffn_ratio, maxload, N);
        printf("  block fwd+bwd per token (attention part + top-1 MoE FFN):\n");
        printf("    BTX (one attention)          %8.2f us\n", blk_btx * us);
        printf("    BAM expert-KV (%d soft)       %8.2f us   %.2fx BTX  (FLOPs %.2fx)\n", experts,
               blk_bam * us, blk_bam / blk_btx, fl_bam / fl_btx);
        printf("    BAM shared-KV (%d soft)       %8.2f us   %.2fx BTX  (FLOPs %.2fx)\n", experts,
               blk_bams * us, blk_bams / blk_btx, fl_bams / fl_btx);
    }
    ffn_free(&dense), ffn_free(&moe);
    free(td), free(tm);
    br_free(x), br_free(dy), br_free(out), br_free(dx), br_free(cs), br_free(sn);
    return 0;
}
