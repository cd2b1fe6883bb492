/* Elementwise helpers (residual add, scaling), in dynamically scheduled chunks (nn/par.h). */
#include "nn/nn.h"
#include "nn/par.h"

void br_add(float *out, const float *a, const float *b, size_t n)
{
#pragma omp parallel for schedule(dynamic, 1) if (n > NN_PAR_MIN)
    for (size_t c = 0; c < n; c += NN_CHUNK) {
        size_t e = c + NN_CHUNK < n ? c + NN_CHUNK : n;
#pragma omp simd
        for (size_t i = c; i < e; i++) out[i] = a[i] + b[i];
    }
}

void br_add_inplace(float *acc, const float *x, size_t n)
{
#pragma omp parallel for schedule(dynamic, 1) if (n > NN_PAR_MIN)
    for (size_t c = 0; c < n; c += NN_CHUNK) {
        size_t e = c + NN_CHUNK < n ? c + NN_CHUNK : n;
#pragma omp simd
        for (size_t i = c; i < e; i++) acc[i] += x[i];
    }
}

void br_scale_inplace(float *x, float s, size_t n)
{
#pragma omp parallel for schedule(dynamic, 1) if (n > NN_PAR_MIN)
    for (size_t c = 0; c < n; c += NN_CHUNK) {
        size_t e = c + NN_CHUNK < n ? c + NN_CHUNK : n;
#pragma omp simd
        for (size_t i = c; i < e; i++) x[i] *= s;
    }
}
