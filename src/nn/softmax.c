/* softmax: the layer's entry points run the active kernel table (kernels/kernels.h; the
 * loops live in kernels/). */
#include "kernels/kernels.h"
#include "nn/nn.h"

void br_softmax_forward(float *out, const float *inp, size_t N, size_t V)
{
    br_kernels()->softmax_forward(out, inp, N, V);
}

void br_softmax_backward(float *dinp, const float *dout, const float *probs, size_t N, size_t V)
{
    br_kernels()->softmax_backward(dinp, dout, probs, N, V);
}
