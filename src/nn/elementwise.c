/* Elementwise helpers (residual add, scaling). */
#include "nn/nn.h"

#define PAR_MIN 65536 /* below this, threads cost more than they save */

void br_add(float *out, const float *a, const float *b, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void br_add_inplace(float *acc, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) acc[i] += x[i];
}

void br_scale_inplace(float *x, float s, size_t n)
{
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}
