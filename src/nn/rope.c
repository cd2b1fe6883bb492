/* rope: the position tables here; the rotation runs the active kernel table (kernels/rope.inc). */
#include <math.h>

#include "kernels/kernels.h"
#include "nn/nn.h"

void br_rope_forward(float *x, const int32_t *pos, const float *cos, const float *sin, size_t N,
                     size_t H, size_t hd)
{
    br_kernels()->rope_forward(x, pos, cos, sin, N, H, hd);
}

void br_rope_backward(float *dx, const int32_t *pos, const float *cos, const float *sin,
                      size_t N, size_t H, size_t hd)
{
    br_kernels()->rope_backward(dx, pos, cos, sin, N, H, hd);
}

/* As transformers' LlamaRotaryEmbedding computes them, in float32: inv_freq[i] =
 * 1 / theta^(2i/hd), angle = (float)pos * inv_freq[i], then cos/sin of the float angle. */
void br_rope_tables(float *cos, float *sin, size_t maxpos, size_t hd, float theta)
{
    size_t half = hd / 2;
    for (size_t i = 0; i < half; i++) {
        float inv = 1.0f / powf(theta, (float)(2 * i) / (float)hd);
        for (size_t p = 0; p < maxpos; p++) {
            float a = (float)p * inv;
            cos[p * half + i] = cosf(a);
            sin[p * half + i] = sinf(a);
        }
    }
}
