/* libFuzzer target: br_st_parse on arbitrary bytes must return OK or an error, never crash,
 * and every tensor it accepts must lie inside the buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    br_safetensors_t *st;
    if (br_st_parse(&st, data, size) != BR_OK) return 0;
    for (size_t i = 0; i < br_st_count(st); i++) {
        const br_st_tensor_t *t = br_st_tensor(st, i);
        const uint8_t *p = t->data;
        if (p < data || p + t->nbytes > data + size) abort();
        volatile uint8_t sink = 0;
        for (size_t j = 0; j < t->nbytes; j++) sink ^= p[j]; /* touch every byte (ASan checks) */
        (void)sink;
        if (t->dtype == BR_DT_F32 || t->dtype == BR_DT_F16 || t->dtype == BR_DT_BF16) {
            float *f = malloc(t->numel * sizeof *f + 1);
            if (f && br_st_read_f32(t, f, t->numel) != BR_OK) abort();
            free(f);
        }
    }
    for (size_t i = 0; i < br_st_metadata_count(st); i++)
        if (!br_st_metadata_key(st, i) || !br_st_metadata_value(st, i)) abort();
    br_st_close(st);
    return 0;
}
