/* linear: the layer's entry points run the active kernel table (kernels/kernels.h; the
 * loops live in kernels/). */
#include "kernels/kernels.h"
#include "nn/nn.h"

/* One row (decode) goes to the table's matvec: the memory-bound case gets its own kernel. */
void br_linear_forward(float *out, const float *inp, const float *w, size_t N, size_t C, size_t OC)
{
    const br_kernels_t *k = br_kernels();
    if (N == 1) k->matvec[BR_WT_F32](out, inp, w, C, OC);
    else k->matmul[BR_WT_F32](out, inp, w, N, C, OC);
}

void br_linear_backward(float *dinp, float *dw, const float *dout, const float *inp,
                        const float *w, size_t N, size_t C, size_t OC)
{
    br_kernels()->matmul_backward(dinp, dw, dout, inp, w, N, C, OC);
}
