/* embedding: the layer's entry points run the active kernel table (kernels/kernels.h; the
 * loops live in kernels/). */
#include "kernels/kernels.h"
#include "nn/nn.h"

void br_embedding_forward(float *out, const int32_t *tokens, const float *wte, size_t N, size_t C)
{
    br_kernels()->embedding_forward(out, tokens, wte, N, C);
}

void br_embedding_backward(float *dwte, const float *dout, const int32_t *tokens, size_t N, size_t C)
{
    br_kernels()->embedding_backward(dwte, dout, tokens, N, C);
}
