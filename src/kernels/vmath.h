/* Vectorisable math for the float kernels.  glibc's expf is not vectorised by GCC without
 * -ffast-math, so the softmax, cross-entropy and SwiGLU loops use br_expf: branch-free plain C
 * (no libm calls) that the compiler turns into AVX2/AVX-512 code inside loops (the files that
 * use it are compiled with -fno-trapping-math so that the compares if-convert; see Makefile).
 * Accuracy: relative error < 2e-7 over [-87, 88] (tests/test_kernels_gemm.c); exp(x) for
 * x < -87.33 returns 0 (flush), for x > 88.37 returns +inf, NaN stays NaN. */
#ifndef BR_KERNELS_VMATH_H
#define BR_KERNELS_VMATH_H
#include <stdint.h>

#define BR_EXPF_HI 88.3762626647949f
#define BR_EXPF_LO (-87.3365447504f)

/* exp(x) for x in [LO, HI]: 2^n * exp(r), n = round(x / ln2), r = x - n ln2 in [-ln2/2, ln2/2],
 * exp(r) by the Cephes expf polynomial.  Rounding uses the 1.5*2^23 trick (no floorf call). */
static inline float br_expf_core(float xc)
{
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    union { int32_t i; float f; } u = {.i = ((int32_t)n + 127) * (1 << 23)};
    return p * u.f;
}

static inline float br_expf(float x)
{
    float xc = x < BR_EXPF_HI ? x : BR_EXPF_HI; /* NaN -> HI: the int conversion stays defined */
    xc = xc > BR_EXPF_LO ? xc : BR_EXPF_LO;
    float y = br_expf_core(xc);
    y = x < BR_EXPF_LO ? 0.0f : y;
    y = x > BR_EXPF_HI ? __builtin_inff() : y;
    return x != x ? x : y;
}

/* exp(x) for x <= 0 (softmax after subtracting the row max): without the overflow and NaN
 * guards (a NaN input gives a finite garbage value, never UB); about 25% fewer instructions. */
static inline float br_expf_neg(float x)
{
    float y = br_expf_core(x > BR_EXPF_LO ? x : BR_EXPF_LO);
    return x < BR_EXPF_LO ? 0.0f : y;
}
#endif
