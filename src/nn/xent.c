/* cross-entropy: the layer's entry points run the active kernel table (kernels/kernels.h; the
 * loops live in kernels/). */
#include "kernels/kernels.h"
#include "nn/nn.h"

float br_xent_forward(float *losses, float *probs, const float *logits, const int32_t *targets,
                      size_t N, size_t V)
{
    return br_kernels()->xent_forward(losses, probs, logits, targets, N, V);
}

void br_xent_backward(float *dlogits, const float *probs, const int32_t *targets, float scale,
                      size_t N, size_t V)
{
    br_kernels()->xent_backward(dlogits, probs, targets, scale, N, V);
}

float br_xent_fused(float *losses, float *dlogits, const float *logits, const int32_t *targets,
                    float scale, size_t N, size_t V)
{
    return br_kernels()->xent_fused(losses, dlogits, logits, targets, scale, N, V);
}
