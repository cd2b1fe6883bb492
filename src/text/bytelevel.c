#include "text/bytelevel.h"

#include <stdint.h>
#include <string.h>

static int printable_byte(unsigned b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t br_bytelevel_cp(uint8_t b)
{
    if (printable_byte(b)) return b;
    /* the n-th non-printable byte (in byte order) maps to 256 + n */
    unsigned n = 0;
    for (unsigned c = 0; c < b; c++) n += !printable_byte(c);
    return 256 + n;
}

static int cp_table_ready;
static uint16_t cp_table[256];
static int16_t byte_table[256 + 68]; /* 68 non-printable bytes map above 255 */

static void init_table(void)
{
    /* benign race: every thread writes the same values */
    for (unsigned c = 0; c < 256 + 68; c++) byte_table[c] = -1;
    for (unsigned b = 0; b < 256; b++) {
        cp_table[b] = (uint16_t)br_bytelevel_cp((uint8_t)b);
        byte_table[cp_table[b]] = (int16_t)b;
    }
    __atomic_store_n(&cp_table_ready, 1, __ATOMIC_RELEASE);
}

int br_bytelevel_byte(uint32_t cp)
{
    if (!__atomic_load_n(&cp_table_ready, __ATOMIC_ACQUIRE)) init_table();
    return cp < 256 + 68 ? byte_table[cp] : -1;
}

size_t br_bytelevel_encode(char *out, const uint8_t *bytes, size_t n)
{
    if (!__atomic_load_n(&cp_table_ready, __ATOMIC_ACQUIRE)) init_table();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = cp_table[bytes[i]];
        if (cp < 0x80) out[k++] = (char)cp;
        else {
            out[k++] = (char)(0xC0 | (cp >> 6));
            out[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out[k] = 0;
    return k;
}

long br_bytelevel_decode(uint8_t *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k = 0;
    while (i < n) {
        uint32_t cp;
        if (p[i] < 0x80) cp = p[i++];
        else if ((p[i] & 0xE0) == 0xC0 && i + 1 < n && (p[i + 1] & 0xC0) == 0x80) {
            cp = ((uint32_t)(p[i] & 0x1F) << 6) | (p[i + 1] & 0x3F);
            i += 2;
        } else return -1; /* the alphabet only holds code points below 0x800 */
        int b = br_bytelevel_byte(cp);
        if (b < 0) return -1;
        out[k++] = (uint8_t)b;
    }
    return (long)k;
}

static size_t utf8_invalid_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) k = 1, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0) k = 2, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0) k = 3, cp = c & 0x07;
        else return i;
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += k + 1;
    }
    return SIZE_MAX;
}

br_status br_utf8_check(const char *what, const char *s, size_t n)
{
    size_t bad = utf8_invalid_at((const unsigned char *)s, n);
    if (bad == SIZE_MAX) return BR_OK;
    size_t line = 1;
    for (size_t i = 0; i < bad; i++) line += s[i] == '\n';
    return br_error(BR_EFORMAT, "%s: not UTF-8 text (invalid byte 0x%02x at offset %zu, line %zu)", what,
                    (unsigned char)s[bad], bad, line);
}

