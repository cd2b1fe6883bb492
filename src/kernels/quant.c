/* Quantising rows of F32 into the weight types' storage, and back (kernels/kernels.h).
 *
 * Q8_0 and Q4_0 are GGUF's block layouts, quantised the way llama.cpp's reference quantisers
 * (ggml-quants.c, quantize_row_q8_0_ref / quantize_row_q4_0_ref) do, so a row quantised here
 * has the same bytes as one quantised by llama.cpp:
 *   Q8_0: 32 values -> fp16 d = amax / 127, then int8 q = roundf(x / d) (computed with the
 *         unrounded d: x * (1/d));  value = fp16(d) * q.
 *   Q4_0: 32 values -> m = the value of largest magnitude (the first, on ties), d = m / -8,
 *         q = min(15, trunc(x / d + 8.5)) in 0..15; byte j holds q[j] in its low nibble and
 *         q[j + 16] in its high nibble; value = fp16(d) * (q - 8).
 *
 * Q4_K and Q6_K are GGUF's k-quant super-blocks of 256 values, quantised as
 * quantize_row_q4_K_ref / quantize_row_q6_K_ref do (what llama_model_quantize runs without an
 * importance matrix), ported statement by statement so the float operations and their order,
 * hence the bytes, are the same:
 *   Q4_K (144 bytes): fp16 d, fp16 dmin, 12 bytes of 6-bit (scale, min) pairs for 8 sub-blocks
 *         of 32, 128 bytes of 4-bit q (bytes 32p..32p+31: sub-block 2p in the low nibbles,
 *         2p+1 in the high ones); value = d * sc_j * q - dmin * m_j.  Each sub-block's (scale,
 *         min) is a weighted least-squares fit over 21 trial scales (make_qkx2_quants).
 *   Q6_K (210 bytes): 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8 scales of
 *         sub-blocks of 16, fp16 d; value = d * sc_j * (q - 32), q in 0..63. */
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

/* ---- k-quants (llama.cpp's ggml-quants.c, MIT) ---- */

enum { QKK = 256, Q4K_BYTES = 144, Q6K_BYTES = 210 };
#define GROUP_MAX_EPS 1e-15f

/* round to nearest, ties to even, for |f| <= 4194303 (ggml's nearest_int) */
static inline int nearest_int(float f)
{
    float v = f + 12582912.f;
    int i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}
static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int imin(int a, int b) { return a < b ? a : b; }

/* make_qkx2_quants: L (n) in 0..nmax and scale, *the_min with x ~ scale * L - *the_min. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep)
{
    float min = x[0], max = x[0], sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best_error = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float diff = scale * L[i] + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = imax(0, imin(nmax, nearest_int(iscale * (x[i] - min))));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* make_qx_quants with rmse_type 1 and no weights: L (n) in 0..2 nmax - 1, returns the scale. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) amax = ax, max = x[i];
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i)
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i]))));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Sub-block j's 6-bit scale and min in a Q4_K block's 12 scale bytes (get_scale_min_k4). */
static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63, *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

static float f16_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return br_f16_to_f32(h);
}
static void f16_put(uint8_t *p, float f)
{
    uint16_t h = br_f32_to_f16(f);
    memcpy(p, &h, 2);
}

/* quantize_row_q4_K_ref, one super-block at a time: y = d(2) dmin(2) scales(12) qs(128). */
static void quantize_q4_k(uint8_t *y, const float *x, size_t nb)
{
    uint8_t L[QKK], Laux[32];
    float weights[32], mins[QKK / 32], scales[QKK / 32];
    for (size_t i = 0; i < nb; i++, x += QKK, y += Q4K_BYTES) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QKK / 32; ++j) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
            scales[j] = make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                         -1.f, 0.1f, 20);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        uint8_t *sc = y + 4, *q = y + 16;
        memset(sc, 0, 12);
        for (int j = 0; j < QKK / 32; ++j) {
            uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
            uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
            ls = ls < 63 ? ls : 63;
            lm = lm < 63 ? lm : 63;
            if (j < 4) {
                sc[j] = ls, sc[j + 4] = lm;
            } else {
                sc[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                sc[j - 4] |= (uint8_t)((ls >> 4) << 6);
                sc[j - 0] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        f16_put(y, max_scale / 63.f);
        f16_put(y + 2, max_min / 63.f);
        for (int j = 0; j < QKK / 32; ++j) {
            uint8_t s, m;
            scale_min_k4(j, sc, &s, &m);
            const float d = f16_at(y) * s;
            if (!d) continue;
            const float dm = f16_at(y + 2) * m;
            for (int ii = 0; ii < 32; ++ii)
                L[32 * j + ii] = (uint8_t)imax(0, imin(15, nearest_int((x[32 * j + ii] + dm) / d)));
        }
        for (int j = 0; j < QKK; j += 64, q += 32)
            for (int l = 0; l < 32; ++l) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

static void dequantize_q4_k(float *y, const uint8_t *x, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += Q4K_BYTES) {
        const float d = f16_at(x), min = f16_at(x + 2);
        const uint8_t *q = x + 16;
        uint8_t sc, m;
        for (int j = 0, is = 0; j < QKK; j += 64, q += 32, is += 2) {
            scale_min_k4(is + 0, x + 4, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            scale_min_k4(is + 1, x + 4, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

/* quantize_row_q6_K_ref: y = ql(128) qh(64) scales(16, int8) d(2). */
static void quantize_q6_k(uint8_t *y, const float *x, size_t nb)
{
    int8_t L[QKK];
    float scales[QKK / 16];
    for (size_t i = 0; i < nb; i++, x += QKK, y += Q6K_BYTES) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QKK / 16; ++ib) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) max_abs_scale = fabsf(scale), max_scale = scale;
        }
        memset(y, 0, Q6K_BYTES);
        if (max_abs_scale < GROUP_MAX_EPS) continue; /* d = +0 */
        int8_t *sc = (int8_t *)(y + 192);
        float iscale = -128.f / max_scale;
        f16_put(y + 208, 1 / iscale);
        for (int ib = 0; ib < QKK / 16; ++ib) sc[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < QKK / 16; ++j) {
            float d = f16_at(y + 208) * sc[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii)
                L[16 * j + ii] = (int8_t)(imax(-32, imin(31, nearest_int(x[16 * j + ii] / d))) + 32);
        }
        uint8_t *ql = y, *qh = y + 128;
        for (int j = 0; j < QKK; j += 128, ql += 64, qh += 32)
            for (int l = 0; l < 32; ++l) {
                const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
    }
}

static void dequantize_q6_k(float *y, const uint8_t *x, size_t nb)
{
    for (size_t i = 0; i < nb; i++, x += Q6K_BYTES) {
        const float d = f16_at(x + 208);
        const uint8_t *ql = x, *qh = x + 128;
        const int8_t *sc = (const int8_t *)(x + 192);
        for (int n = 0; n < QKK; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
            for (int l = 0; l < 32; ++l) {
                int is = l / 16;
                const int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
    }
}

/* Checks wt, C and rows; *row_bytes = bytes of one stored row. */
static br_status check_rows(br_wtype wt, size_t rows, size_t C, size_t *row_bytes)
{
    br_status s = br_wtype_row_bytes(wt, C, row_bytes);
    if (s) return s;
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
        case BR_WT_Q4_K: quantize_q4_k(d, src, C / QKK); break;
        case BR_WT_Q6_K: quantize_q6_k(d, src, C / QKK); break;
        default: break; /* refused by check_rows (F32..Q6_K are every type) */
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
        case BR_WT_Q4_K: dequantize_q4_k(dst, p, C / QKK); break;
        case BR_WT_Q6_K: dequantize_q6_k(dst, p, C / QKK); break;
        default: break;
        }
    return BR_OK;
}
