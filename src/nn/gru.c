#include "nn/gru.h"

#include <math.h>

#include "nn/mlp.h"

static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

void br_gru_forward(float *h_out, float *gates, const float *x, const float *h_prev,
                    const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                    float *scratch, size_t N, size_t C, size_t H)
{
    float *gi = scratch, *gh = scratch + N * 3 * H; /* (N,3H) each */
    br_dense_forward(gi, x, w_ih, b_ih, N, C, 3 * H);
    br_dense_forward(gh, h_prev, w_hh, b_hh, N, H, 3 * H);
    for (size_t i = 0; i < N; i++) {
        const float *a = gi + i * 3 * H, *c = gh + i * 3 * H, *hp = h_prev + i * H;
        float *g = gates + i * 4 * H, *h = h_out + i * H;
        for (size_t j = 0; j < H; j++) {
            float r = sigm(a[j] + c[j]);
            float z = sigm(a[H + j] + c[H + j]);
            float n = tanhf(a[2 * H + j] + r * c[2 * H + j]);
            g[j] = r, g[H + j] = z, g[2 * H + j] = n, g[3 * H + j] = c[2 * H + j];
            h[j] = (1.0f - z) * n + z * hp[j];
        }
    }
}

void br_gru_backward(float *dx, float *dh_prev, float *dw_ih, float *dw_hh, float *db_ih,
                     float *db_hh, const float *dh_out, const float *gates, const float *x,
                     const float *h_prev, const float *w_ih, const float *w_hh, float *scratch,
                     size_t N, size_t C, size_t H)
{
    float *dgi = scratch, *dgh = scratch + N * 3 * H; /* (N,3H) each */
    for (size_t i = 0; i < N; i++) {
        const float *g = gates + i * 4 * H, *hp = h_prev + i * H, *dh = dh_out + i * H;
        float *di = dgi + i * 3 * H, *dg = dgh + i * 3 * H;
        for (size_t j = 0; j < H; j++) {
            float r = g[j], z = g[H + j], n = g[2 * H + j], ghn = g[3 * H + j];
            float dn = dh[j] * (1.0f - z) * (1.0f - n * n); /* through tanh */
            float dz = dh[j] * (hp[j] - n) * z * (1.0f - z);
            float dr = dn * ghn * r * (1.0f - r);
            di[j] = dr, di[H + j] = dz, di[2 * H + j] = dn;
            dg[j] = dr, dg[H + j] = dz, dg[2 * H + j] = dn * r;
            if (dh_prev) dh_prev[i * H + j] += dh[j] * z;
        }
    }
    br_dense_backward(dx, dw_ih, db_ih, dgi, x, w_ih, N, C, 3 * H);
    br_dense_backward(dh_prev, dw_hh, db_hh, dgh, h_prev, w_hh, N, H, 3 * H);
}
