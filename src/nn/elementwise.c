/* elementwise (residual add, scaling): the layer's entry points run the active kernel table (kernels/kernels.h; the
 * loops live in kernels/). */
#include "kernels/kernels.h"
#include "nn/nn.h"

void br_add(float *out, const float *a, const float *b, size_t n) { br_kernels()->add(out, a, b, n); }

void br_add_inplace(float *acc, const float *x, size_t n) { br_kernels()->add_inplace(acc, x, n); }

void br_scale_inplace(float *x, float s, size_t n) { br_kernels()->scale_inplace(x, s, n); }
