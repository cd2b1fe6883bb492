/* Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_ semantics). */
#include <math.h>

#include "nn/nn.h"
#include "nn/par.h"

/* Partial sums over at most MAXB fixed blocks, added in block order: the same bits whatever
 * the thread schedule (clipping must not make training nondeterministic). */
double br_sum_squares(const float *g, size_t n)
{
    enum { MAXB = 1024 };
    double part[MAXB];
    size_t blk = (n + MAXB - 1) / MAXB;
    if (blk < NN_CHUNK) blk = NN_CHUNK;
    size_t nb = (n + blk - 1) / blk;
#pragma omp parallel for schedule(dynamic, 1) if (n > NN_PAR_MIN)
    for (size_t b = 0; b < nb; b++) {
        size_t e = (b + 1) * blk < n ? (b + 1) * blk : n;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (size_t i = b * blk; i < e; i++) s += (double)g[i] * g[i];
        part[b] = s;
    }
    double s = 0;
    for (size_t b = 0; b < nb; b++) s += part[b];
    return sqrt(s);
}

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
