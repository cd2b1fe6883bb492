/* Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_ semantics). */
#include <math.h>

#include "kernels/kernels.h"
#include "nn/nn.h"

double br_sum_squares(const float *g, size_t n) { return br_kernels()->sum_squares(g, n); }

/* coef = max_norm / (norm + 1e-6), applied only when < 1, as PyTorch does. */
float br_clip_grad_norm(float *g, size_t n, float max_norm)
{
    double norm = br_sum_squares(g, n);
    if (max_norm > 0) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1) br_scale_inplace(g, (float)coef, n);
    }
    return (float)norm;
}
