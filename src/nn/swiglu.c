/* swiglu: the layer's entry points run the active kernel table (kernels/kernels.h; the
 * loops live in kernels/). */
#include "kernels/kernels.h"
#include "nn/nn.h"

void br_swiglu_forward(float *out, const float *gate, const float *up, size_t n)
{
    br_kernels()->swiglu_forward(out, gate, up, n);
}

void br_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                        const float *up, size_t n)
{
    br_kernels()->swiglu_backward(dgate, dup, dout, gate, up, n);
}
