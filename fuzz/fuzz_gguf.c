/* libFuzzer target: br_gguf_parse on arbitrary bytes must return OK or an error, never crash;
 * every tensor it accepts lies inside the buffer and dequantises (every type, Q4_K/Q6_K
 * included), every metadata string and array element it hands out can be read, and the
 * tokenizer.ggml.* keys turn into tokenizer.json text or an error. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lm/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    br_gguf_t *g;
    if (br_gguf_parse(&g, data, size) != BR_OK) return 0;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < br_gguf_tensor_count(g); i++) {
        const br_gguf_tensor_t *t = br_gguf_tensor(g, i);
        const uint8_t *p = t->data;
        if (p < data || t->nbytes > size || p + t->nbytes > data + size) abort();
        for (size_t j = 0; j < t->nbytes; j++) sink ^= p[j]; /* touch every byte (ASan checks) */
        if (br_gguf_find_tensor(g, t->name) == NULL) abort();
        size_t rows = t->nbytes ? (size_t)(t->ne[1] * t->ne[2] * t->ne[3]) : 0, C = (size_t)t->ne[0];
        float *f = rows && C <= (1u << 16) / rows ? malloc(rows * C * sizeof *f) : NULL;
        if (f && br_wtype_dequantize(t->wt, f, t->data, rows, C) != BR_OK) abort(); /* parse checked the blocks */
        free(f);
    }
    char *json = NULL;
    if (br_gguf_tokenizer_json(g, &json) == BR_OK && !json) abort();
    free(json);
    for (size_t i = 0; i < br_gguf_kv_count(g); i++) {
        const br_gguf_kv_t *kv = br_gguf_kv(g, i);
        if (!kv->key || (kv->type == BR_GGUF_STRING && !kv->str)) abort();
        if (kv->type == BR_GGUF_ARRAY && kv->arr_type == BR_GGUF_STRING)
            for (size_t j = 0; j < kv->arr_n; j++) {
                size_t len;
                const char *s = br_gguf_arr_str(kv, j, &len);
                if (!s) abort();
                for (size_t k = 0; k < len; k++) sink ^= (uint8_t)s[k];
            }
    }
    (void)sink;
    br_gguf_close(g);
    return 0;
}
