#include "base/dtype.h"

#include <string.h>

static const struct { const char *name; size_t size; } info[BR_DT_COUNT] = {
    [BR_DT_F64] = {"F64", 8},  [BR_DT_F32] = {"F32", 4}, [BR_DT_F16] = {"F16", 2},
    [BR_DT_BF16] = {"BF16", 2}, [BR_DT_I64] = {"I64", 8}, [BR_DT_I32] = {"I32", 4},
    [BR_DT_I16] = {"I16", 2},  [BR_DT_I8] = {"I8", 1},   [BR_DT_U64] = {"U64", 8},
    [BR_DT_U32] = {"U32", 4},  [BR_DT_U16] = {"U16", 2}, [BR_DT_U8] = {"U8", 1},
    [BR_DT_BOOL] = {"BOOL", 1},
};

size_t br_dtype_size(br_dtype t) { return (unsigned)t < BR_DT_COUNT ? info[t].size : 0; }
const char *br_dtype_name(br_dtype t) { return (unsigned)t < BR_DT_COUNT ? info[t].name : "?"; }

br_status br_dtype_parse(const char *name, br_dtype *out)
{
    for (int i = 0; i < BR_DT_COUNT; i++)
        if (strcmp(name, info[i].name) == 0) {
            *out = (br_dtype)i;
            return BR_OK;
        }
    return br_error(BR_EUNSUPPORTED, "unknown dtype '%s'", name);
}

static inline uint32_t bits_of(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float float_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float br_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return float_of(sign | 0x7f800000u | (man << 13)); /* inf / nan */
    if (exp == 0) {
        if (man == 0) return float_of(sign);
        /* subnormal: man * 2^-24 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return float_of(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t br_f32_to_f16(float f)
{
    uint32_t u = bits_of(f), sign = (u >> 16) & 0x8000;
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (a > 0x7f800000u ? 0x200 : 0));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {                                   /* below 2^-14: subnormal or 0 */
        float v = float_of(a) * 0x1p24f;                     /* exact scaling */
        /* round to nearest even integer */
        uint32_t m = (uint32_t)v;
        float rem = v - (float)m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t e = ((a >> 23) - 112) << 10, m = (a >> 13) & 0x3ff;
    uint32_t r = e | m, low = a & 0x1fff;
    if (low > 0x1000 || (low == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

float br_bf16_to_f32(uint16_t h) { return float_of((uint32_t)h << 16); }

uint16_t br_f32_to_bf16(float f)
{
    uint32_t u = bits_of(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
