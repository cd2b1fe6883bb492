#include "rl/qmix.h"

#include <math.h>
#include <string.h>

#include "base/status.h"
#include "nn/mlp.h"

/* parameter layout (QMIX): Hw1 (nE,sd) hb1 (nE) | Hb1 (E,sd) bb1 (E) | Hwf (E,sd) hbf (E) |
 * Hv1 (E,sd) bv1 (E) | Hv2 (1,E) bv2 (1) */
typedef struct {
    const float *hw1, *hb1, *Hb1, *bb1, *hwf, *hbf, *hv1, *bv1, *hv2, *bv2;
} qmix_params_t;

static qmix_params_t layout(const br_mixer_t *m, const float *p)
{
    size_t nE = (size_t)m->n * m->E, E = m->E, sd = m->sd;
    qmix_params_t q;
    q.hw1 = p, p += nE * sd;
    q.hb1 = p, p += nE;
    q.Hb1 = p, p += E * sd;
    q.bb1 = p, p += E;
    q.hwf = p, p += E * sd;
    q.hbf = p, p += E;
    q.hv1 = p, p += E * sd;
    q.bv1 = p, p += E;
    q.hv2 = p, p += E;
    q.bv2 = p;
    return q;
}

void br_mixer_init(br_mixer_t *m, br_mixer_kind kind, int n, int sd, int E)
{
    BR_ASSERT(E >= 1 && E <= 1024 && n >= 1 && sd >= 1);
    m->kind = kind, m->n = n, m->sd = sd, m->E = E;
    if (kind == BR_MIXER_VDN) {
        m->n_params = 0;
        m->saved_per_row = 0;
        return;
    }
    size_t nE = (size_t)n * E;
    m->n_params = nE * (sd + 1) + 3 * (size_t)E * (sd + 1) + E + 1;
    /* saved: pre-abs W1 (nE), b1 (E), pre-abs Wf (E), V hidden (E), hidden pre-elu (E) */
    m->saved_per_row = nE + 4 * (size_t)E;
}

void br_mixer_init_params(const br_mixer_t *m, float *params, br_rng_t *rng)
{
    if (m->kind == BR_MIXER_VDN) return;
    qmix_params_t q = layout(m, params);
    size_t nE = (size_t)m->n * m->E, E = m->E, sd = m->sd;
    br_dense_init((float *)q.hw1, (float *)q.hb1, sd, nE, rng);
    br_dense_init((float *)q.Hb1, (float *)q.bb1, sd, E, rng);
    br_dense_init((float *)q.hwf, (float *)q.hbf, sd, E, rng);
    br_dense_init((float *)q.hv1, (float *)q.bv1, sd, E, rng);
    br_dense_init((float *)q.hv2, (float *)q.bv2, E, 1, rng);
}

static inline float elu(float x) { return x > 0 ? x : expf(x) - 1.0f; }

void br_mixer_forward(const br_mixer_t *m, const float *params, float *qtot, float *saved,
                      const float *q, const float *s, float *scratch, size_t N)
{
    const int n = m->n;
    if (m->kind == BR_MIXER_VDN) {
        for (size_t r = 0; r < N; r++) {
            float t = 0;
            for (int i = 0; i < n; i++) t += q[r * n + i];
            qtot[r] = t;
        }
        return;
    }
    const size_t E = m->E, nE = (size_t)n * E;
    qmix_params_t P = layout(m, params);
    /* hypernetwork outputs for all rows, then per-row mixing */
    float *w1 = scratch, *b1 = w1 + N * nE, *wf = b1 + N * E, *vh = wf + N * E, *v = vh + N * E;
    br_dense_forward(w1, s, P.hw1, P.hb1, N, m->sd, nE);
    br_dense_forward(b1, s, P.Hb1, P.bb1, N, m->sd, E);
    br_dense_forward(wf, s, P.hwf, P.hbf, N, m->sd, E);
    br_dense_forward(vh, s, P.hv1, P.bv1, N, m->sd, E);
    br_relu_inplace(vh, N * E);
    br_dense_forward(v, vh, P.hv2, P.bv2, N, E, 1);
    for (size_t r = 0; r < N; r++) {
        const float *W = w1 + r * nE, *B = b1 + r * E, *F = wf + r * E;
        float y = v[r];
        float pre[1024];
        for (size_t e = 0; e < E; e++) {
            float h = B[e];
            for (int i = 0; i < n; i++) h += q[r * n + i] * fabsf(W[i * E + e]);
            pre[e] = h;
            y += elu(h) * fabsf(F[e]);
        }
        qtot[r] = y;
        if (saved) {
            float *sv = saved + r * m->saved_per_row;
            memcpy(sv, W, nE * sizeof(float));
            memcpy(sv + nE, B, E * sizeof(float));
            memcpy(sv + nE + E, F, E * sizeof(float));
            memcpy(sv + nE + 2 * E, vh + r * E, E * sizeof(float));
            memcpy(sv + nE + 3 * E, pre, E * sizeof(float));
        }
    }
}

void br_mixer_backward(const br_mixer_t *m, const float *params, float *dparams, float *dq,
                       const float *dqtot, const float *saved, const float *q, const float *s,
                       float *scratch, size_t N)
{
    const int n = m->n;
    if (m->kind == BR_MIXER_VDN) {
        for (size_t r = 0; r < N; r++)
            for (int i = 0; i < n; i++) dq[r * n + i] += dqtot[r];
        return;
    }
    const size_t E = m->E, nE = (size_t)n * E, sd = m->sd;
    qmix_params_t P = layout(m, params);
    qmix_params_t G = layout(m, dparams);
    float *dw1 = scratch, *db1 = dw1 + N * nE, *dwf = db1 + N * E, *dvh = dwf + N * E,
          *dv = dvh + N * E;
    for (size_t r = 0; r < N; r++) {
        const float *sv = saved + r * m->saved_per_row;
        const float *W = sv, *F = sv + nE + E, *vh = sv + nE + 2 * E, *pre = sv + nE + 3 * E;
        const float g = dqtot[r];
        dv[r] = g;
        for (size_t e = 0; e < E; e++) {
            float h = pre[e];
            float fe = F[e];
            dwf[r * E + e] = g * elu(h) * (fe >= 0 ? 1.0f : -1.0f);
            float dh = g * fabsf(fe) * (h > 0 ? 1.0f : expf(h));
            db1[r * E + e] = dh;
            for (int i = 0; i < n; i++) {
                float w = W[i * E + e];
                dw1[r * nE + i * E + e] = dh * q[r * n + i] * (w >= 0 ? 1.0f : -1.0f);
                dq[r * n + i] += dh * fabsf(w);
            }
            dvh[r * E + e] = vh[e] > 0 ? g * P.hv2[e] : 0.0f;
        }
    }
    /* V head: v = vh Hv2^T + bv2 */
    for (size_t r = 0; r < N; r++) {
        const float *vh = saved + r * m->saved_per_row + nE + 2 * E;
        for (size_t e = 0; e < E; e++) ((float *)G.hv2)[e] += dv[r] * vh[e];
        *(float *)G.bv2 += dv[r];
    }
    br_dense_backward(NULL, (float *)G.hv1, (float *)G.bv1, dvh, s, P.hv1, N, sd, E);
    br_dense_backward(NULL, (float *)G.hw1, (float *)G.hb1, dw1, s, P.hw1, N, sd, nE);
    br_dense_backward(NULL, (float *)G.Hb1, (float *)G.bb1, db1, s, P.Hb1, N, sd, E);
    br_dense_backward(NULL, (float *)G.hwf, (float *)G.hbf, dwf, s, P.hwf, N, sd, E);
}

void br_mixer_weights(const br_mixer_t *m, const float *params, float *w1, float *wf,
                      const float *s, size_t N)
{
    if (m->kind == BR_MIXER_VDN) return;
    qmix_params_t P = layout(m, params);
    size_t nE = (size_t)m->n * m->E;
    br_dense_forward(w1, s, P.hw1, P.hb1, N, m->sd, nE);
    br_dense_forward(wf, s, P.hwf, P.hbf, N, m->sd, m->E);
    for (size_t i = 0; i < N * nE; i++) w1[i] = fabsf(w1[i]);
    for (size_t i = 0; i < N * (size_t)m->E; i++) wf[i] = fabsf(wf[i]);
}
