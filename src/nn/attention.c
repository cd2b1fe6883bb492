/* attention: the layer's entry points run the active kernel table (kernels/kernels.h; the
 * loops live in kernels/). */
#include "kernels/kernels.h"
#include "nn/nn.h"

void br_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                          size_t B, size_t T, size_t NH, size_t NKV, size_t hd)
{
    br_kernels()->attention_forward(out, att, q, k, v, B, T, NH, NKV, hd);
}

void br_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att,
                           const float *q, const float *k, const float *v, size_t B, size_t T,
                           size_t NH, size_t NKV, size_t hd)
{
    br_kernels()->attention_backward(dq, dk, dv, dout, att, q, k, v, B, T, NH, NKV, hd);
}
