#include "text/bytelevel.h"

#include <stdint.h>
#include <string.h>

#include "text/utf8.h"

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
    size_t i = 0, k = 0, len;
    while (i < n) {
        uint32_t cp = br_utf8_decode(p + i, n - i, &len);
        int b = cp < BR_UTF8_INVALID ? br_bytelevel_byte(cp) : -1;
        if (b < 0) return -1;
        out[k++] = (uint8_t)b;
        i += len;
    }
    return (long)k;
}
