#include "nn/mlp.h"

#include <math.h>
#include <string.h>

#include "base/status.h"
#include "kernels/gemm.h"

void br_dense_forward(float *out, const float *inp, const float *w, const float *b, size_t N,
                      size_t C, size_t OC)
{
    if (b)
        for (size_t i = 0; i < N; i++) memcpy(out + i * OC, b, OC * sizeof(float));
    br_sgemm(false, true, N, OC, C, 1.0f, inp, C, w, C, b ? 1.0f : 0.0f, out, OC);
}

void br_dense_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                       const float *w, size_t N, size_t C, size_t OC)
{
    if (dinp) br_sgemm(false, false, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp, C);
    if (dw) br_sgemm(true, false, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (db)
        for (size_t i = 0; i < N; i++)
            for (size_t o = 0; o < OC; o++) db[o] += dout[i * OC + o];
}

void br_dense_init(float *w, float *b, size_t C, size_t OC, br_rng_t *rng)
{
    float k = 1.0f / sqrtf((float)C);
    br_rng_fill_uniform(rng, w, OC * C, -k, k);
    if (b) br_rng_fill_uniform(rng, b, OC, -k, k);
}

void br_relu_inplace(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
}

void br_relu_backward_inplace(float *d, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) d[i] = y[i] > 0 ? d[i] : 0;
}

void br_mlp_init(br_mlp_t *m, int n_layers, const int *sizes)
{
    BR_ASSERT(n_layers >= 1 && n_layers <= BR_MLP_MAX_LAYERS);
    m->n_layers = n_layers;
    m->n_params = 0;
    m->max_width = 0;
    for (int l = 0; l <= n_layers; l++) {
        BR_ASSERT(sizes[l] >= 1);
        m->sizes[l] = sizes[l];
        if ((size_t)sizes[l] > m->max_width) m->max_width = (size_t)sizes[l];
        if (l < n_layers) m->n_params += (size_t)sizes[l + 1] * (sizes[l] + 1);
    }
}

void br_mlp_init_params(const br_mlp_t *m, float *params, br_rng_t *rng)
{
    float *p = params;
    for (int l = 0; l < m->n_layers; l++) {
        size_t C = m->sizes[l], OC = m->sizes[l + 1];
        br_dense_init(p, p + OC * C, C, OC, rng);
        p += OC * (C + 1);
    }
}

size_t br_mlp_acts_size(const br_mlp_t *m, size_t N)
{
    size_t s = 0;
    for (int l = 1; l <= m->n_layers; l++) s += N * (size_t)m->sizes[l];
    return s;
}

float *br_mlp_forward(const br_mlp_t *m, const float *params, float *acts, const float *inp,
                      size_t N)
{
    const float *p = params, *x = inp;
    float *y = acts;
    for (int l = 0; l < m->n_layers; l++) {
        size_t C = m->sizes[l], OC = m->sizes[l + 1];
        br_dense_forward(y, x, p, p + OC * C, N, C, OC);
        if (l + 1 < m->n_layers) br_relu_inplace(y, N * OC);
        p += OC * (C + 1);
        x = y;
        y += N * OC;
    }
    return (float *)x;
}

void br_mlp_backward(const br_mlp_t *m, const float *params, float *grads, float *dinp,
                     const float *acts, const float *inp, float *dout, float *scratch, size_t N)
{
    /* offsets of each layer's parameters and activations */
    size_t poff[BR_MLP_MAX_LAYERS], aoff[BR_MLP_MAX_LAYERS];
    size_t po = 0, ao = 0;
    for (int l = 0; l < m->n_layers; l++) {
        poff[l] = po;
        aoff[l] = ao;
        po += (size_t)m->sizes[l + 1] * (m->sizes[l] + 1);
        ao += N * (size_t)m->sizes[l + 1];
    }
    float *d = dout, *bufs[2] = {scratch, scratch + N * m->max_width};
    for (int l = m->n_layers - 1; l >= 0; l--) {
        size_t C = m->sizes[l], OC = m->sizes[l + 1];
        const float *w = params + poff[l];
        float *gw = grads + poff[l];
        const float *x = l == 0 ? inp : acts + aoff[l - 1];
        if (l == 0) {
            br_dense_backward(dinp, gw, gw + OC * C, d, x, w, N, C, OC);
        } else {
            float *dx = bufs[l & 1];
            memset(dx, 0, N * C * sizeof(float));
            br_dense_backward(dx, gw, gw + OC * C, d, x, w, N, C, OC);
            br_relu_backward_inplace(dx, x, N * C);
            d = dx;
        }
    }
}
