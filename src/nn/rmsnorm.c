/* rmsnorm: the layer's entry points run the active kernel table (kernels/kernels.h; the
 * loops live in kernels/). */
#include "kernels/kernels.h"
#include "nn/nn.h"

void br_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, float eps,
                        size_t N, size_t C)
{
    br_kernels()->rmsnorm_forward(out, rstd, inp, w, eps, N, C);
}

void br_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp,
                         const float *w, const float *rstd, size_t N, size_t C)
{
    br_kernels()->rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, C);
}
