/* braid bench gemm: GFLOP/s of br_sgemm for square sizes and for the GEMMs of a training step
 * (forward x W^T, backward dX = dY W, backward dW = dY^T X) of d = 256..768 models, next to the
 * machine's theoretical FP32 peak. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/alloc.h"
#include "base/rng.h"
#include "base/timer.h"
#include "bench_cmds.h"
#include "base/threads.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"

/* Peak = cores x clock x FP32 FLOP/cycle/core, read from /proc/cpuinfo: 2 FMA units x lanes
 * x 2 FLOP (AVX-512: 16 lanes, AVX2+FMA: 8 lanes, else SSE: 4 lanes, no FMA). */
static double peak_gflops(int threads, double *ghz_out, int *flops_cycle_out)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    double mhz = 0;
    int avx512 = 0, avx2 = 0, fma = 0;
    char line[8192];
    while (f && fgets(line, sizeof line, f)) {
        if (!mhz && !strncmp(line, "cpu MHz", 7)) mhz = atof(strchr(line, ':') + 1);
        if (!strncmp(line, "flags", 5)) {
            avx512 |= strstr(line, " avx512f") != NULL;
            avx2 |= strstr(line, " avx2") != NULL;
            fma |= strstr(line, " fma") != NULL;
        }
    }
    if (f) fclose(f);
    int fpc = avx512 && fma ? 64 : avx2 && fma ? 32 : 8;
    *ghz_out = mhz / 1000;
    *flops_cycle_out = fpc;
    return threads * (mhz / 1000) * fpc;
}

typedef struct { const char *what; bool ta, tb; size_t M, N, K; } shape_t;

static double time_gemm(bool ta, bool tb, size_t M, size_t N, size_t K, const float *A,
                        const float *B, float *C, double min_time)
{
    size_t lda = ta ? M : K, ldb = tb ? K : N;
    br_sgemm(ta, tb, M, N, K, 1, A, lda, B, ldb, 0, C, N); /* warm-up */
    int reps = 0;
    double t0 = br_now(), el;
    double best = 1e30;
    do {
        double t1 = br_now();
        br_sgemm(ta, tb, M, N, K, 1, A, lda, B, ldb, 0, C, N);
        double d = br_now() - t1;
        if (d < best) best = d;
        reps++;
        el = br_now() - t0;
    } while (el < min_time || reps < 3);
    return 2.0 * M * N * K / best / 1e9;
}

int bench_gemm(int argc, char **argv)
{
    double min_time = 0.3;
    int threads = 0;
    bool json = false;
    const char *kernels = NULL;
    const opt_t opts[] = {
        {"min-time", OPT_DOUBLE, &min_time, "S", "seconds per shape (default 0.3; best of the runs is reported)", false},
        {"threads", OPT_INT, &threads, "N", "threads (default: BRAID_THREADS or all cores)", false},
        {"kernels", OPT_STR, &kernels, "NAME", "kernel table: auto, avx512, avx2 or portable (default: BRAID_KERNELS or the best)", false},
        {"json", OPT_BOOL, &json, NULL, "print one JSON object per line", false},
    };
    cmd_spec_t spec = {"braid bench gemm [options]",
                       "GFLOP/s of the GEMM backend on square sizes and on the shapes of a "
                       "training step (batch x T = 4096 rows), with the fraction of the CPU's "
                       "theoretical FP32 peak.",
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
    double ghz;
    int fpc;
    double peak = peak_gflops(nt, &ghz, &fpc);
    if (!json)
        printf("kernels %s, backend %s, %d thread%s, peak %.1f GFLOP/s (%.2f GHz x %d FLOP/cycle x %d)\n",
               br_kernels()->name, br_gemm_backend(), nt, nt > 1 ? "s" : "", peak, ghz, fpc, nt);

    shape_t shapes[32];
    int ns = 0;
    static const size_t sq[] = {128, 256, 512, 1024, 2048};
    static char names[32][64];
    for (int i = 0; i < 5; i++) {
        snprintf(names[ns], 64, "square %zu", sq[i]);
        shapes[ns] = (shape_t){names[ns], false, false, sq[i], sq[i], sq[i]};
        ns++;
    }
    /* A training step with BT = 4096 rows: y = x W^T (x: BT x d, W: F x d),
     * dx = dy W, dW = dy^T x.  FFN widths as in the presets. */
    static const size_t dims[][2] = {{256, 1024}, {512, 1408}, {768, 2048}};
    const size_t BT = 4096;
    for (int i = 0; i < 3; i++) {
        size_t d = dims[i][0], F = dims[i][1];
        snprintf(names[ns], 64, "d=%zu fwd  x W^T  (%zux%zu . %zux%zu^T)", d, BT, d, F, d);
        shapes[ns] = (shape_t){names[ns], false, true, BT, F, d};
        ns++;
        snprintf(names[ns], 64, "d=%zu bwd  dY W   (%zux%zu . %zux%zu)", d, BT, F, F, d);
        shapes[ns] = (shape_t){names[ns], false, false, BT, d, F};
        ns++;
        snprintf(names[ns], 64, "d=%zu bwd  dY^T X (%zux%zu^T . %zux%zu)", d, BT, F, BT, d);
        shapes[ns] = (shape_t){names[ns], true, false, F, d, BT};
        ns++;
    }
    size_t maxe = 2048 * 2048;
    if (BT * 2048 > maxe) maxe = BT * 2048;
    float *A = br_alloc(maxe * 4), *B = br_alloc(maxe * 4), *C = br_alloc(maxe * 4);
    if (!A || !B || !C) {
        fprintf(stderr, "braid: error: out of memory\n");
        return 1;
    }
    br_rng_t r;
    br_rng_seed(&r, 1);
    br_rng_fill_uniform(&r, A, maxe, -1, 1);
    br_rng_fill_uniform(&r, B, maxe, -1, 1);
    if (!json) printf("%-46s %10s %8s\n", "shape", "GFLOP/s", "of peak");
    for (int i = 0; i < ns; i++) {
        double g = time_gemm(shapes[i].ta, shapes[i].tb, shapes[i].M, shapes[i].N, shapes[i].K, A, B, C, min_time);
        if (json)
            printf("{\"shape\": \"%s\", \"M\": %zu, \"N\": %zu, \"K\": %zu, \"gflops\": %.2f, \"peak_gflops\": %.2f, \"fraction\": %.4f, \"threads\": %d}\n",
                   shapes[i].what, shapes[i].M, shapes[i].N, shapes[i].K, g, peak, g / peak, nt);
        else printf("%-46s %10.1f %7.1f%%\n", shapes[i].what, g, 100 * g / peak);
        fflush(stdout);
    }
    br_free(A);
    br_free(B);
    br_free(C);
    return 0;
}
