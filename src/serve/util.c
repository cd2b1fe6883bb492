#include "serve/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/utf8.h"

bool br_serve_name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || !strcmp(s, ".") || !strcmp(s, "..")) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* Length of the valid sequence starting at s[0] (0: invalid or truncated). */
static size_t seq_len(const unsigned char *s, size_t n)
{
    size_t len;
    return br_utf8_decode(s, n, &len) < BR_UTF8_INVALID ? len : 0;
}

size_t br_utf8_valid_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t l = seq_len(u + i, n - i);
        if (!l) break;
        i += l;
    }
    return i;
}

size_t br_utf8_incomplete_tail(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    /* look back at most 3 bytes for a lead byte whose sequence runs past the end */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned c = u[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation: keep looking */
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (need <= back) return 0;
        /* a plausible prefix: every byte after the lead is a continuation byte */
        return back;
    }
    return 0;
}

size_t br_utf8_repair(char *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < n) {
        size_t l = seq_len(u + i, n - i);
        if (l) {
            memcpy(out + o, s + i, l);
            o += l;
            i += l;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = 0;
    return o;
}
