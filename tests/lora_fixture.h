/* Base shapes the PEFT fixture tests/ref/lora_peft was written for (tests/ref/gen_lora_peft.py):
 * 2 layers, hidden 16, q/o 16x16, k/v 8x16, gate/up 24x16, down 16x24. */
#ifndef BR_TEST_LORA_FIXTURE_H
#define BR_TEST_LORA_FIXTURE_H
#include <string.h>
#include "nn/lora.h"

static inline br_lora_shapes_t fixture_shapes(void)
{
    br_lora_shapes_t s = {.n_layers = 2};
    size_t in[BR_PROJ_COUNT] = {16, 16, 16, 16, 16, 16, 24};
    size_t out[BR_PROJ_COUNT] = {16, 8, 8, 16, 24, 24, 16};
    memcpy(s.in, in, sizeof in);
    memcpy(s.out, out, sizeof out);
    return s;
}
#endif
