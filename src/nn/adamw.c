/* AdamW (torch.optim.AdamW semantics, kernels/optim.inc): the layer's entry points run the active kernel table (kernels/kernels.h; the
 * loops live in kernels/). */
#include "kernels/kernels.h"
#include "nn/nn.h"

void br_adamw_step(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                   float beta2, float eps, float weight_decay, int t)
{
    br_kernels()->adamw_step(p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, t);
}
