/* braid bench nn: us/call and GB/s (memory-bound layers) or GFLOP/s (GEMM-bound layers) of every
 * nn/ layer's forward and backward at the shapes of a training step of the dense presets
 * (B=16 T=256 d=256 NH=4 and B=8 T=256 d=512 NH=8, V=8192).  bench/nn_torch.py times the same
 * operations in PyTorch and prints the ratios (bench/run.sh runs both). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "base/alloc.h"
#include "base/rng.h"
#include "base/timer.h"
#include "bench_cmds.h"
#include "base/threads.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "nn/nn.h"

typedef struct {
    const char *name;
    size_t B, T, d, NH, NKV, F, V;
} preset_t;

static const preset_t presets[] = {
    {"d256", 16, 256, 256, 4, 4, 1024, 8192},
    {"d512", 8, 256, 512, 8, 8, 1408, 8192},
};

typedef struct {
    size_t B, T, d, NH, NKV, hd, F, V, N, nparam;
    float *x, *dx, *y, *w, *dw, *rstd;            /* (N,d), (d), (N) */
    float *q, *k, *v, *o, *att, *dq, *dk, *dv;    /* (N,d) each, att (B,NH,T,T) */
    float *cos, *sin;                             /* (T, hd/2) */
    float *gate, *up, *h, *dgate, *dup, *W, *dW;  /* (N,F), W (F,d) */
    float *logits, *probs, *losses;               /* (N,V), (N) */
    float *wte, *dwte;                            /* (V,d) */
    float *p, *g, *m, *mv;                        /* (nparam) */
    int32_t *tokens, *targets, *pos;              /* (N) */
} ctx_t;

enum {
    OP_EMB_F, OP_EMB_B, OP_RMS_F, OP_RMS_B, OP_LIN_F, OP_LIN_B, OP_ROPE_F, OP_ROPE_B, OP_ATT_F,
    OP_ATT_B, OP_SWI_F, OP_SWI_B, OP_ADD, OP_SM_F, OP_SM_B, OP_XE_F, OP_XE_B, OP_XE_FUSED,
    OP_ADAMW, OP_CLIP, OP_COUNT
};
static const char *op_names[OP_COUNT] = {
    "embedding fwd", "embedding bwd", "rmsnorm fwd", "rmsnorm bwd", "linear d->F fwd",
    "linear d->F bwd", "rope fwd (q)", "rope bwd (q)", "attention fwd", "attention bwd",
    "swiglu fwd", "swiglu bwd", "residual add", "softmax fwd (V)", "softmax bwd (V)",
    "xent fwd (V)", "xent bwd (V)", "xent fused (V)", "adamw step", "clip grad norm"};

static void run_op(ctx_t *c, int op)
{
    size_t N = c->N, d = c->d, F = c->F, V = c->V;
    switch (op) {
    case OP_EMB_F: br_embedding_forward(c->x, c->tokens, c->wte, N, d); break;
    case OP_EMB_B: br_embedding_backward(c->dwte, c->y, c->tokens, N, d); break;
    case OP_RMS_F: br_rmsnorm_forward(c->y, c->rstd, c->x, c->w, 1e-5f, N, d); break;
    case OP_RMS_B: br_rmsnorm_backward(c->dx, c->dw, c->y, c->x, c->w, c->rstd, N, d); break;
    case OP_LIN_F: br_linear_forward(c->h, c->x, c->W, N, d, F); break;
    case OP_LIN_B: br_linear_backward(c->dx, c->dW, c->h, c->x, c->W, N, d, F); break;
    case OP_ROPE_F: br_rope_forward(c->q, c->pos, c->cos, c->sin, N, c->NH, c->hd); break;
    case OP_ROPE_B: br_rope_backward(c->q, c->pos, c->cos, c->sin, N, c->NH, c->hd); break;
    case OP_ATT_F:
        br_attention_forward(c->o, c->att, c->q, c->k, c->v, c->B, c->T, c->NH, c->NKV, c->hd);
        break;
    case OP_ATT_B:
        br_attention_backward(c->dq, c->dk, c->dv, c->y, c->att, c->q, c->k, c->v, c->B, c->T,
                              c->NH, c->NKV, c->hd);
        break;
    case OP_SWI_F: br_swiglu_forward(c->h, c->gate, c->up, N * F); break;
    case OP_SWI_B: br_swiglu_backward(c->dgate, c->dup, c->h, c->gate, c->up, N * F); break;
    case OP_ADD: br_add_inplace(c->x, c->y, N * d); break;
    case OP_SM_F: br_softmax_forward(c->probs, c->logits, N, V); break;
    case OP_SM_B: br_softmax_backward(c->logits, c->probs, c->probs, N, V); break;
    case OP_XE_F: br_xent_forward(c->losses, c->probs, c->logits, c->targets, N, V); break;
    case OP_XE_B: br_xent_backward(c->probs, c->probs, c->targets, 1.0f / N, N, V); break;
    case OP_XE_FUSED: br_xent_fused(c->losses, c->probs, c->logits, c->targets, 1.0f / N, N, V); break;
    case OP_ADAMW: br_adamw_step(c->p, c->g, c->m, c->mv, c->nparam, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 10); break;
    case OP_CLIP: br_clip_grad_norm(c->g, c->nparam, 1e9f); break;
    }
}

/* Bytes moved (each array read or written once) or FLOPs of one call. */
static void op_cost(const ctx_t *c, int op, double *bytes, double *flops)
{
    double N = (double)c->N, d = (double)c->d, F = (double)c->F, V = (double)c->V;
    double P = (double)c->nparam, att = 2.0 * c->B * c->NH * (c->T * (c->T + 1) / 2.0) * c->hd;
    *bytes = 0, *flops = 0;
    switch (op) {
    case OP_EMB_F: *bytes = 8 * N * d; break;
    case OP_EMB_B: *bytes = 12 * N * d; break;
    case OP_RMS_F: *bytes = 8 * N * d; break;
    case OP_RMS_B: *bytes = 16 * N * d; break;
    case OP_LIN_F: *flops = 2 * N * d * F; break;
    case OP_LIN_B: *flops = 4 * N * d * F; break;
    case OP_ROPE_F: case OP_ROPE_B: *bytes = 8 * N * d; break;
    case OP_ATT_F: *flops = 2 * att; break; /* QK^T and PV over the causal half */
    case OP_ATT_B: *flops = 4 * att; break; /* dP, dV, dQ, dK */
    case OP_SWI_F: *bytes = 12 * N * F; break;
    case OP_SWI_B: *bytes = 28 * N * F; break;
    case OP_ADD: *bytes = 12 * N * d; break;
    case OP_SM_F: case OP_XE_F: case OP_XE_B: case OP_XE_FUSED: *bytes = 8 * N * V; break;
    case OP_SM_B: *bytes = 16 * N * V; break;
    case OP_ADAMW: *bytes = 28 * P; break;
    case OP_CLIP: *bytes = 4 * P; break;
    }
}

static float *fill(br_rng_t *r, size_t n, float s)
{
    float *x = br_alloc(n * sizeof *x);
    if (x) br_rng_fill_uniform(r, x, n, -s, s);
    return x;
}

static bool ctx_init(ctx_t *c, const preset_t *p)
{
    memset(c, 0, sizeof *c);
    c->B = p->B, c->T = p->T, c->d = p->d, c->NH = p->NH, c->NKV = p->NKV, c->F = p->F, c->V = p->V;
    c->hd = p->d / p->NH, c->N = p->B * p->T;
    c->nparam = 2 * c->V * c->d + 8 * (4 * c->d * c->d + 3 * c->d * c->F); /* 8 layers */
    size_t N = c->N, d = c->d, F = c->F, V = c->V;
    br_rng_t r;
    br_rng_seed(&r, 5);
    c->x = fill(&r, N * d, 1), c->dx = fill(&r, N * d, 0), c->y = fill(&r, N * d, 1);
    c->w = fill(&r, d, 1), c->dw = fill(&r, d, 0), c->rstd = fill(&r, N, 0);
    c->q = fill(&r, N * d, 1), c->k = fill(&r, N * d, 1), c->v = fill(&r, N * d, 1);
    c->o = fill(&r, N * d, 0), c->att = fill(&r, c->B * c->NH * c->T * c->T, 0);
    c->dq = fill(&r, N * d, 0), c->dk = fill(&r, N * d, 0), c->dv = fill(&r, N * d, 0);
    c->cos = fill(&r, c->T * c->hd / 2, 0), c->sin = fill(&r, c->T * c->hd / 2, 0);
    c->gate = fill(&r, N * F, 3), c->up = fill(&r, N * F, 1), c->h = fill(&r, N * F, 1);
    c->dgate = fill(&r, N * F, 0), c->dup = fill(&r, N * F, 0);
    c->W = fill(&r, F * d, 0.05f), c->dW = fill(&r, F * d, 0);
    c->logits = fill(&r, N * V, 4), c->probs = fill(&r, N * V, 0), c->losses = fill(&r, N, 0);
    c->wte = fill(&r, V * d, 1), c->dwte = fill(&r, V * d, 0);
    c->p = fill(&r, c->nparam, 1), c->g = fill(&r, c->nparam, 1e-3f);
    c->m = fill(&r, c->nparam, 0), c->mv = fill(&r, c->nparam, 0);
    c->tokens = br_alloc(N * sizeof(int32_t)), c->targets = br_alloc(N * sizeof(int32_t));
    c->pos = br_alloc(N * sizeof(int32_t));
    float **all[] = {&c->x, &c->dx, &c->y, &c->w, &c->dw, &c->rstd, &c->q, &c->k, &c->v, &c->o,
                     &c->att, &c->dq, &c->dk, &c->dv, &c->cos, &c->sin, &c->gate, &c->up, &c->h,
                     &c->dgate, &c->dup, &c->W, &c->dW, &c->logits, &c->probs, &c->losses,
                     &c->wte, &c->dwte, &c->p, &c->g, &c->m, &c->mv};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (!*all[i]) return false;
    if (!c->tokens || !c->targets || !c->pos) return false;
    for (size_t i = 0; i < N; i++) {
        c->tokens[i] = (int32_t)br_rng_below(&r, V);
        c->targets[i] = (int32_t)br_rng_below(&r, V);
        c->pos[i] = (int32_t)(i % c->T);
    }
    br_rope_tables(c->cos, c->sin, c->T, c->hd, 10000.0f);
    return true;
}

static void ctx_free(ctx_t *c)
{
    float *all[] = {c->x, c->dx, c->y, c->w, c->dw, c->rstd, c->q, c->k, c->v, c->o, c->att,
                    c->dq, c->dk, c->dv, c->cos, c->sin, c->gate, c->up, c->h, c->dgate,
                    c->dup, c->W, c->dW, c->logits, c->probs, c->losses, c->wte, c->dwte,
                    c->p, c->g, c->m, c->mv};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) br_free(all[i]);
    br_free(c->tokens), br_free(c->targets), br_free(c->pos);
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Median wall seconds per call over at least 3 timed calls and min_time seconds (after a
 * warm-up); *cpu = mean CPU seconds per call of the whole process (all threads).  On a shared
 * machine wall time includes waiting for a core, CPU time does not: it measures the work. */
static double time_op(ctx_t *c, int op, double min_time, double *cpu)
{
    enum { MAXR = 1000 };
    static double t[MAXR];
    int n = 0;
    run_op(c, op);
    double start = br_now(), cpu0 = cpu_now();
    while (n < MAXR && (n < 3 || br_now() - start < min_time)) {
        double t0 = br_now();
        run_op(c, op);
        t[n++] = br_now() - t0;
    }
    *cpu = (cpu_now() - cpu0) / n;
    qsort(t, (size_t)n, sizeof *t, bench_cmp_double);
    return t[n / 2];
}

int bench_nn(int argc, char **argv)
{
    double min_time = 0.2;
    int threads = 0;
    bool json = false;
    const char *only = NULL, *preset = NULL, *kernels = NULL;
    const opt_t opts[] = {
        {"min-time", OPT_DOUBLE, &min_time, "S", "seconds per operation (default 0.2; the median call is reported)", false},
        {"threads", OPT_INT, &threads, "N", "threads (default: BRAID_THREADS or all cores)", false},
        {"preset", OPT_STR, &preset, "NAME", "d256 or d512 (default: both)", false},
        {"op", OPT_STR, &only, "TEXT", "only operations whose name contains TEXT (e.g. attention)", false},
        {"kernels", OPT_STR, &kernels, "NAME", "kernel table: auto, avx512, avx2 or portable (default: BRAID_KERNELS or the best)", false},
        {"json", OPT_BOOL, &json, NULL, "print one JSON object per line", false},
    };
    cmd_spec_t spec = {"braid bench nn [options]",
                       "Median wall us/call (and mean CPU us/call, all threads) of every nn/ layer's forward and backward at the shapes of "
                       "a training step (d256: B=16 T=256 d=256 NH=4 F=1024; d512: B=8 T=256 "
                       "d=512 NH=8 F=1408; V=8192), with GB/s for memory-bound layers and GFLOP/s "
                       "for GEMM-bound ones.  bench/nn_torch.py times PyTorch on the same shapes.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (kernels && br_kernels_use(kernels)) {
        fprintf(stderr, "braid: error: %s\n", br_errmsg());
        return 2;
    }
    if (threads > 0) br_set_threads(threads);
    int nt = br_get_threads();
    bool any = false;
    for (size_t pi = 0; pi < sizeof presets / sizeof *presets; pi++) {
        const preset_t *p = &presets[pi];
        if (preset && strcmp(preset, p->name)) continue;
        any = true;
        ctx_t c;
        if (!ctx_init(&c, p)) {
            ctx_free(&c);
            fprintf(stderr, "braid: error: out of memory for preset %s\n", p->name);
            return 1;
        }
        if (!json)
            printf("preset %s: B=%zu T=%zu d=%zu NH=%zu hd=%zu F=%zu V=%zu, %d thread%s, kernels %s, "
                   "gemm %s\n%-18s %12s %12s %10s\n", p->name, p->B, p->T, p->d, p->NH, c.hd, p->F,
                   p->V, nt, nt > 1 ? "s" : "", br_kernels()->name, br_gemm_backend(), "operation",
                   "us/call", "cpu us/call", "rate");
        for (int op = 0; op < OP_COUNT; op++) {
            if (only && !strstr(op_names[op], only)) continue;
            double cpu, s = time_op(&c, op, min_time, &cpu), bytes, flops;
            op_cost(&c, op, &bytes, &flops);
            double rate = flops > 0 ? flops / s / 1e9 : bytes / s / 1e9;
            const char *unit = flops > 0 ? "GFLOP/s" : "GB/s";
            if (json)
                printf("{\"bench\": \"nn\", \"preset\": \"%s\", \"op\": \"%s\", \"us\": %.2f, "
                       "\"cpu_us\": %.2f, \"rate\": %.3f, \"unit\": \"%s\", \"threads\": %d, "
                       "\"kernels\": \"%s\"}\n",
                       p->name, op_names[op], s * 1e6, cpu * 1e6, rate, unit, nt, br_kernels()->name);
            else printf("%-18s %12.1f %12.1f %10.2f %s\n", op_names[op], s * 1e6, cpu * 1e6, rate, unit);
            fflush(stdout);
        }
        ctx_free(&c);
    }
    if (!any) {
        fprintf(stderr, "braid: error: unknown preset '%s' (d256 or d512)\n", preset);
        return 2;
    }
    return 0;
}
