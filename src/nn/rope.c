/* rope: float build of nn/rope.inc (the double build is in tests/test_nn_grad.c). */
#define NN_FLOAT
#include "nn/nn.h"
#include "nn/real.h"
#include "nn/rope.inc"

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
