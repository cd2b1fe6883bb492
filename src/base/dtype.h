/* Element types of tensors on disk and float16/bfloat16 conversion (round to nearest even). */
#ifndef BR_BASE_DTYPE_H
#define BR_BASE_DTYPE_H
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"

typedef enum {
    BR_DT_F64, BR_DT_F32, BR_DT_F16, BR_DT_BF16,
    BR_DT_I64, BR_DT_I32, BR_DT_I16, BR_DT_I8,
    BR_DT_U64, BR_DT_U32, BR_DT_U16, BR_DT_U8, BR_DT_BOOL,
    BR_DT_COUNT
} br_dtype;

size_t br_dtype_size(br_dtype t);
/* safetensors spelling: "F32", "BF16", "I32"... */
const char *br_dtype_name(br_dtype t);
br_status br_dtype_parse(const char *name, br_dtype *out);

float br_f16_to_f32(uint16_t h);
uint16_t br_f32_to_f16(float f);
float br_bf16_to_f32(uint16_t h);
uint16_t br_f32_to_bf16(float f);
#endif
