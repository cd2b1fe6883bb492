/* Choosing the kernel table (kernels/kernels.h), weight types, and the few calls that go
 * through the active table by name (br_sgemm, br_matmul). */
#include "kernels/kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "kernels/gemm.h"

/* Best first.  The CPU tables only exist on x86-64 (elsewhere the portable one runs). */
static const char *const names[] = {"avx512", "avx2", "portable", NULL};

const char *const *br_kernels_names(void) { return names; }

static const br_kernels_t *table_named(const char *name)
{
#if defined(__x86_64__)
    if (strcmp(name, "avx512") == 0) return &br_kernels_avx512;
    if (strcmp(name, "avx2") == 0) return &br_kernels_avx2;
#endif
    if (strcmp(name, "portable") == 0) return &br_kernels_portable;
    return NULL;
}

/* Whether this CPU (and its OS: __builtin_cpu_supports checks XSAVE state) runs the table. */
static bool cpu_runs(const br_kernels_t *k)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (k == &br_kernels_avx2) return avx2;
    if (k == &br_kernels_avx512)
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#endif
    return k == &br_kernels_portable;
}

const br_kernels_t *br_kernels_find(const char *name)
{
    const br_kernels_t *k = name ? table_named(name) : NULL;
    return k && cpu_runs(k) ? k : NULL;
}

static const br_kernels_t *best(void)
{
    for (size_t i = 0; names[i]; i++) {
        const br_kernels_t *k = br_kernels_find(names[i]);
        if (k) return k;
    }
    return &br_kernels_portable;
}

/* Read without a lock on every kernel call: an atomic pointer, set once by pthread_once (or
 * later by br_kernels_use). */
static const br_kernels_t *active;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const br_kernels_t *resolve(const char *name)
{
    if (!name || strcmp(name, "auto") == 0) return best();
    return br_kernels_find(name);
}

static void choose_at_start(void)
{
    const char *env = getenv("BRAID_KERNELS");
    const br_kernels_t *k = env && *env ? resolve(env) : best();
    if (!k) {
        k = best();
        BR_WARN("BRAID_KERNELS=%s: %s; using the '%s' kernels (choose auto, avx512, avx2 or "
                "portable)", env, table_named(env) ? "this CPU lacks its instruction set"
                                                    : "no such kernel table", k->name);
    }
    const br_kernels_t *unset = NULL;
    __atomic_compare_exchange_n(&active, &unset, k, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

const br_kernels_t *br_kernels(void)
{
    const br_kernels_t *k = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    if (k) return k;
    pthread_once(&once, choose_at_start);
    return __atomic_load_n(&active, __ATOMIC_ACQUIRE);
}

br_status br_kernels_use(const char *name)
{
    if (!name) return br_error(BR_EINVAL, "no kernel table named");
    if (strcmp(name, "auto") != 0 && !table_named(name))
        return br_error(BR_ENOTFOUND, "no kernel table '%s' (choose auto, avx512, avx2 or portable)",
                        name);
    const br_kernels_t *k = resolve(name);
    if (!k)
        return br_error(BR_EUNSUPPORTED, "this CPU cannot run the '%s' kernels (it lacks the "
                        "instruction set); choose auto to take the best it runs", name);
    pthread_once(&once, choose_at_start); /* so that a later first call cannot undo this */
    __atomic_store_n(&active, k, __ATOMIC_RELEASE);
    return BR_OK;
}

/* ---- weight types ---- */

static const struct {
    const char *name;
    size_t block, bytes; /* values per block, bytes per block (GGUF's layouts) */
} wtypes[BR_WT_COUNT] = {
    [BR_WT_F32] = {"F32", 1, 4},      [BR_WT_BF16] = {"BF16", 1, 2},
    [BR_WT_F16] = {"F16", 1, 2},      [BR_WT_Q8_0] = {"Q8_0", 32, 34},
    [BR_WT_Q4_0] = {"Q4_0", 32, 18},  [BR_WT_Q4_K] = {"Q4_K", 256, 144},
    [BR_WT_Q6_K] = {"Q6_K", 256, 210},
};

static bool wtype_ok(br_wtype wt) { return (unsigned)wt < BR_WT_COUNT; }

const char *br_wtype_name(br_wtype wt) { return wtype_ok(wt) ? wtypes[wt].name : "?"; }

br_status br_wtype_row_bytes(br_wtype wt, size_t C, size_t *bytes)
{
    if (!wtype_ok(wt)) return br_error(BR_EINVAL, "weight type %d is not a br_wtype", (int)wt);
    size_t blk = wtypes[wt].block;
    if (C % blk)
        return br_error(BR_EINVAL, "a %s row holds whole blocks of %zu values; %zu is not a "
                        "multiple (pad or keep this tensor in F32)", wtypes[wt].name, blk, C);
    if (C / blk > SIZE_MAX / wtypes[wt].bytes)
        return br_error(BR_ERANGE, "a %s row of %zu values is too large", wtypes[wt].name, C);
    *bytes = C / blk * wtypes[wt].bytes;
    return BR_OK;
}

br_status br_kernels_matmul_check(const br_kernels_t *k, br_wtype wt)
{
    if (!wtype_ok(wt)) return br_error(BR_EINVAL, "weight type %d is not a br_wtype", (int)wt);
    if (!k->matmul[wt] || !k->matvec[wt])
        return br_error(BR_EUNSUPPORTED, "the '%s' kernels have no %s matmul yet (implemented: "
                        "F32, BF16, F16, Q8_0, Q4_0, Q4_K, Q6_K); convert the weights to one of those",
                        k->name, wtypes[wt].name);
    return BR_OK;
}

br_status br_matmul(br_wtype wt, float *y, const float *x, const void *w, size_t N, size_t C,
                    size_t OC)
{
    const br_kernels_t *k = br_kernels();
    BR_TRY(br_kernels_matmul_check(k, wt));
    if (N == 1) k->matvec[wt](y, x, w, C, OC);
    else k->matmul[wt](y, x, w, N, C, OC);
    return BR_OK;
}

br_status br_matmul_dinp(br_wtype wt, float *dinp, const float *dout, const void *w, size_t N, size_t C,
                         size_t OC)
{
    const br_kernels_t *k = br_kernels();
    if (wt == BR_WT_F32) {
        if (N) k->matmul_backward(dinp, NULL, dout, NULL, (const float *)w, N, C, OC);
        return BR_OK;
    }
    if ((unsigned)wt >= BR_WT_COUNT || !k->matmul_dinp[wt])
        return br_error(BR_EUNSUPPORTED, "the '%s' kernels have no input gradient through frozen %s weights "
                        "(adapters train on F32, BF16, F16, Q8_0, Q4_0, Q4_K and Q6_K bases)", k->name, br_wtype_name(wt));
    if (N) k->matmul_dinp[wt](dinp, dout, w, N, C, OC);
    return BR_OK;
}

/* ---- F32 GEMM by name ---- */

void br_sgemm(bool ta, bool tb, size_t M, size_t N, size_t K, float alpha, const float *A,
              size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    br_kernels()->sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

const char *br_gemm_backend(void) { return br_kernels()->gemm_name; }
