#include "text/utf8.h"

#include <string.h>

uint32_t br_utf8_decode(const unsigned char *s, size_t bytes, size_t *len)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *len = 1;
        return c;
    }
    size_t need; /* continuation bytes */
    uint32_t cp;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) { /* 0xC0, 0xC1 would only start overlongs */
        need = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        cp = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;      /* no overlongs */
        else if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        cp = c & 0x07;
        if (c == 0xF0) lo = 0x90;      /* no overlongs */
        else if (c == 0xF4) hi = 0x8F; /* <= U+10FFFF */
    } else {
        goto invalid;
    }
    if (need >= bytes) goto invalid; /* truncated */
    for (size_t k = 1; k <= need; k++) {
        unsigned b = s[k];
        if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) goto invalid;
        cp = (cp << 6) | (b & 0x3F);
    }
    *len = need + 1;
    return cp;
invalid:
    *len = 1;
    return BR_UTF8_INVALID + c;
}

/* bytes at the start of s[0..n) that are all ASCII, 8 at a time */
static size_t ascii_prefix(const char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ULL) break;
    }
    while (i < n && (unsigned char)s[i] < 0x80) i++;
    return i;
}

size_t br_utf8_count(const char *s, size_t bytes)
{
    size_t n = ascii_prefix(s, bytes), i = n, len;
    while (i < bytes) {
        if ((unsigned char)s[i] < 0x80) i++;
        else {
            br_utf8_decode((const unsigned char *)s + i, bytes - i, &len);
            i += len;
        }
        n++;
    }
    return n;
}

size_t br_utf8_prefix(const char *s, size_t bytes, size_t count)
{
    size_t i = ascii_prefix(s, bytes < count ? bytes : count), len;
    for (size_t n = i; n < count && i < bytes; n++) {
        if ((unsigned char)s[i] < 0x80) i++;
        else {
            br_utf8_decode((const unsigned char *)s + i, bytes - i, &len);
            i += len;
        }
    }
    return i;
}

/* length of the longest valid prefix of s[0..n) */
static size_t valid_prefix(const char *s, size_t n)
{
    size_t i = 0, len;
    while (i < n) {
        i += ascii_prefix(s + i, n - i);
        if (i == n || br_utf8_decode((const unsigned char *)s + i, n - i, &len) >= BR_UTF8_INVALID) break;
        i += len;
    }
    return i;
}

br_status br_utf8_check(const char *what, const char *s, size_t n)
{
    size_t bad = valid_prefix(s, n);
    if (bad == n) return BR_OK;
    size_t line = 1;
    for (size_t i = 0; i < bad; i++) line += s[i] == '\n';
    return br_error(BR_EFORMAT, "%s: not UTF-8 text (invalid byte 0x%02x at offset %zu, line %zu)", what,
                    (unsigned char)s[bad], bad, line);
}

size_t br_utf8_encode(char *out, uint32_t cp)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
