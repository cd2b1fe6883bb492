/* AdamW (Loshchilov & Hutter), exactly as torch.optim.AdamW (foreach=False) computes it:
 *   p *= 1 - lr*wd;  m += (1-b1) (g - m)  (lerp);  v = b2 v + (1-b2) g^2;
 *   p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps). */
#include <math.h>

#include "nn/nn.h"
#include "nn/par.h"

void br_adamw_step(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                   float beta2, float eps, float weight_decay, int t)
{
    double bc1 = 1 - pow(beta1, t), bc2 = 1 - pow(beta2, t);
    float step = (float)(lr / bc1), sqrt_bc2 = (float)sqrt(bc2);
    float decay = 1 - lr * weight_decay, b1c = 1 - beta1, b2c = 1 - beta2;
#pragma omp parallel for schedule(dynamic, 1) if (n > NN_PAR_MIN)
    for (size_t c = 0; c < n; c += NN_CHUNK) {
        size_t e = c + NN_CHUNK < n ? c + NN_CHUNK : n;
#pragma omp simd
        for (size_t i = c; i < e; i++) {
            float gi = g[i];
            float mi = m[i] + b1c * (gi - m[i]);
            float vi = beta2 * v[i] + b2c * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] = p[i] * decay - step * mi / (sqrtf(vi) / sqrt_bc2 + eps);
        }
    }
}
