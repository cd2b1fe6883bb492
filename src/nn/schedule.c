/* Learning-rate schedule: linear warmup then cosine decay (as llm.c): step s (0-based)
 *   s < warmup:           lr_max * (s + 1) / warmup        (step 0 already trains)
 *   warmup <= s < total:  lr_min + (lr_max - lr_min) * (1 + cos(pi * (s - warmup) / (total - warmup))) / 2
 *   s >= total:           lr_min */
#include <math.h>

#include "nn/nn.h"

float br_lr_cosine(long step, long warmup, long total, float lr_max, float lr_min)
{
    if (step < 0) step = 0;
    if (step < warmup) return (float)((double)lr_max * (double)(step + 1) / (double)warmup);
    if (step >= total) return lr_min;
    double progress = (double)(step - warmup) / (double)(total - warmup);
    return (float)(lr_min + (lr_max - lr_min) * 0.5 * (1 + cos(M_PI * progress)));
}
