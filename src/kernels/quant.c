/* Quantising rows of F32 into the weight types' storage, and back (kernels/kernels.h).
 *
 * Q8_0 and Q4_0 are GGUF's block layouts, quantised the way llama.cpp's reference quantisers
 * (ggml-quants.c, quantize_row_q8_0_ref / quantize_row_q4_0_ref) do, so a row quantised here
 * has the same bytes as one quantised by llama.cpp:
 *   Q8_0: 32 values -> fp16 d = amax / 127, then int8 q = roundf(x / d) (computed with the
 *         unrounded d: x * (1/d));  value = fp16(d) * q.
 *   Q4_0: 32 values -> m = the value of largest magnitude (the first, on ties), d = m / -8,
 *         q = min(15, trunc(x / d + 8.5)) in 0..15; byte j holds q[j] in its low nibble and
 *         q[j + 16] in its high nibble; value = fp16(d) * (q - 8). */
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

#include "base/dtype.h"

enum { QK = 32 };

static void quantize_q8_0(uint8_t *dst, const float *x, size_t nb)
{
    for (size_t b = 0; b < nb; b++, x += QK, dst += 2 + QK) {
        float amax = 0;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
        uint16_t h = br_f32_to_f16(d);
        memcpy(dst, &h, 2);
        for (int j = 0; j < QK; j++) dst[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
    }
}

static void quantize_q4_0(uint8_t *dst, const float *x, size_t nb)
{
    for (size_t b = 0; b < nb; b++, x += QK, dst += 2 + QK / 2) {
        float amax = 0, max = 0;
        for (int j = 0; j < QK; j++)
            if (amax < fabsf(x[j])) amax = fabsf(x[j]), max = x[j];
        float d = max / -8, id = d != 0 ? 1.0f / d : 0.0f;
        uint16_t h = br_f32_to_f16(d);
        memcpy(dst, &h, 2);
        for (int j = 0; j < QK / 2; j++) {
            int q0 = (int8_t)(x[j] * id + 8.5f), q1 = (int8_t)(x[j + QK / 2] * id + 8.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            dst[2 + j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

static void dequantize_q8_0(float *y, const uint8_t *src, size_t nb)
{
    for (size_t b = 0; b < nb; b++, y += QK, src += 2 + QK) {
        uint16_t h;
        memcpy(&h, src, 2);
        float d = br_f16_to_f32(h);
        for (int j = 0; j < QK; j++) y[j] = d * (float)(int8_t)src[2 + j];
    }
}

static void dequantize_q4_0(float *y, const uint8_t *src, size_t nb)
{
    for (size_t b = 0; b < nb; b++, y += QK, src += 2 + QK / 2) {
        uint16_t h;
        memcpy(&h, src, 2);
        float d = br_f16_to_f32(h);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = d * (float)((src[2 + j] & 0xf) - 8);
            y[j + QK / 2] = d * (float)((src[2 + j] >> 4) - 8);
        }
    }
}

/* Checks wt, C and rows; *row_bytes = bytes of one stored row. */
static br_status check_rows(br_wtype wt, size_t rows, size_t C, size_t *row_bytes)
{
    br_status s = br_wtype_row_bytes(wt, C, row_bytes);
    if (s) return s;
    if (wt == BR_WT_Q4_K)
        return br_error(BR_EUNSUPPORTED, "quantising to and from Q4_K is not implemented yet "
                        "(use Q4_0 or Q8_0)");
    if (rows && *row_bytes > SIZE_MAX / rows)
        return br_error(BR_ERANGE, "%zu rows of %zu %s values are too large", rows, C,
                        br_wtype_name(wt));
    return BR_OK;
}

br_status br_wtype_quantize(br_wtype wt, void *dst, const float *src, size_t rows, size_t C)
{
    size_t rb;
    br_status s = check_rows(wt, rows, C, &rb);
    if (s) return s;
    uint8_t *d = dst;
    for (size_t r = 0; r < rows; r++, d += rb, src += C) switch (wt) {
        case BR_WT_F32: memcpy(d, src, C * sizeof *src); break;
        case BR_WT_BF16:
        case BR_WT_F16:
            for (size_t c = 0; c < C; c++) {
                uint16_t h = wt == BR_WT_BF16 ? br_f32_to_bf16(src[c]) : br_f32_to_f16(src[c]);
                memcpy(d + 2 * c, &h, 2);
            }
            break;
        case BR_WT_Q8_0: quantize_q8_0(d, src, C / QK); break;
        case BR_WT_Q4_0: quantize_q4_0(d, src, C / QK); break;
        default: break; /* refused by check_rows */
        }
    return BR_OK;
}

br_status br_wtype_dequantize(br_wtype wt, float *dst, const void *src, size_t rows, size_t C)
{
    size_t rb;
    br_status s = check_rows(wt, rows, C, &rb);
    if (s) return s;
    const uint8_t *p = src;
    for (size_t r = 0; r < rows; r++, p += rb, dst += C) switch (wt) {
        case BR_WT_F32: memcpy(dst, p, C * sizeof *dst); break;
        case BR_WT_BF16:
        case BR_WT_F16:
            for (size_t c = 0; c < C; c++) {
                uint16_t h;
                memcpy(&h, p + 2 * c, 2);
                dst[c] = wt == BR_WT_BF16 ? br_bf16_to_f32(h) : br_f16_to_f32(h);
            }
            break;
        case BR_WT_Q8_0: dequantize_q8_0(dst, p, C / QK); break;
        case BR_WT_Q4_0: dequantize_q4_0(dst, p, C / QK); break;
        default: break;
        }
    return BR_OK;
}
