/* Unicode NFC normalization (UAX #15) over UTF-8; see text/nfc.h. */
#include "text/nfc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/utf8.h"

#include "text/nfc_table.inc"

#define INVALID_BASE BR_UTF8_INVALID /* an invalid byte b is carried as INVALID_BASE + b (text/utf8.h) */
enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, LCOUNT = 19, VCOUNT = 21, TCOUNT = 28,
       NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

static size_t put_cp(unsigned char *o, uint32_t cp)
{
    if (cp >= INVALID_BASE) { /* an invalid byte kept as it was */
        o[0] = (unsigned char)(cp - INVALID_BASE);
        return 1;
    }
    return br_utf8_encode((char *)o, cp);
}

static int ccc_of(uint32_t cp)
{
    size_t lo = 0, hi = sizeof nfc_ccc / sizeof *nfc_ccc;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < nfc_ccc[mid].lo) hi = mid;
        else if (cp > nfc_ccc[mid].hi) lo = mid + 1;
        else return nfc_ccc[mid].ccc;
    }
    return 0;
}

static int decomp_of(uint32_t cp, uint32_t *a, uint32_t *b)
{
    size_t lo = 0, hi = sizeof nfc_decomp / sizeof *nfc_decomp;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < nfc_decomp[mid].cp) hi = mid;
        else if (cp > nfc_decomp[mid].cp) lo = mid + 1;
        else {
            *a = nfc_decomp[mid].a;
            *b = nfc_decomp[mid].b;
            return 1;
        }
    }
    return 0;
}

static uint32_t compose(uint32_t a, uint32_t b)
{
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    size_t lo = 0, hi = sizeof nfc_comp / sizeof *nfc_comp;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint64_t k = ((uint64_t)nfc_comp[mid].a << 32) | nfc_comp[mid].b, q = ((uint64_t)a << 32) | b;
        if (q < k) hi = mid;
        else if (q > k) lo = mid + 1;
        else return nfc_comp[mid].cp;
    }
    return 0;
}

/* Appends the full canonical decomposition of cp to out (room: 4 more per level; the deepest
 * canonical decomposition in Unicode 15 has 4 code points). */
static void decompose(uint32_t cp, uint32_t *out, size_t *n)
{
    uint32_t a, b;
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        uint32_t s = cp - SBASE;
        out[(*n)++] = LBASE + s / NCOUNT;
        out[(*n)++] = VBASE + (s % NCOUNT) / TCOUNT;
        if (s % TCOUNT) out[(*n)++] = TBASE + s % TCOUNT;
        return;
    }
    if (cp < INVALID_BASE && decomp_of(cp, &a, &b)) {
        decompose(a, out, n);
        if (b) decompose(b, out, n);
        return;
    }
    out[(*n)++] = cp;
}

int br_nfc_quick(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0, len; i < n; i += len) {
        if (s[i] < 0x80) {
            len = 1;
            continue;
        }
        uint32_t cp = br_utf8_decode(s + i, n - i, &len), a, b;
        if (cp >= INVALID_BASE) continue;
        if (ccc_of(cp) || decomp_of(cp, &a, &b) || (cp >= 0x1100 && cp < 0x1200) || (cp >= SBASE && cp < SBASE + SCOUNT))
            return 0;
        size_t lo = 0, hi = sizeof nfc_second / sizeof *nfc_second; /* can it end a composition? */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cp < nfc_second[mid]) hi = mid;
            else if (cp > nfc_second[mid]) lo = mid + 1;
            else return 0;
        }
    }
    return 1;
}

br_status br_nfc(const char *str, size_t n, char **out, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)str;
    *out = NULL;
    if (n > ((size_t)1 << 40)) return br_error(BR_ERANGE, "NFC: text too long");
    uint32_t *cps = malloc((4 * n + 4) * sizeof *cps); /* each byte decomposes to at most 4 */
    unsigned char *o = malloc(4 * n + 1);
    if (!cps || !o) {
        free(cps);
        free(o);
        return br_error(BR_ENOMEM, "NFC: out of memory for %zu bytes", n);
    }
    size_t m = 0;
    for (size_t i = 0, len; i < n; i += len) decompose(br_utf8_decode(s + i, n - i, &len), cps, &m);
    /* canonical ordering: stable insertion sort of each run of non-starters */
    for (size_t i = 1; i < m; i++) {
        int c = ccc_of(cps[i]);
        if (!c) continue;
        for (size_t j = i; j > 0 && ccc_of(cps[j - 1]) > c; j--) {
            uint32_t t = cps[j];
            cps[j] = cps[j - 1];
            cps[j - 1] = t;
        }
    }
    /* canonical composition (UAX #15's reference algorithm): a code point joins the last
     * starter unless a code point of class 0 or of a class >= its own sits between them */
    size_t k = m ? 1 : 0, starter = 0;
    int last = m && cps[0] < INVALID_BASE && ccc_of(cps[0]) ? 256 : 0;
    for (size_t i = 1; i < m; i++) {
        uint32_t cp = cps[i];
        int c = cp >= INVALID_BASE ? 0 : ccc_of(cp);
        uint32_t comp = cps[starter] < INVALID_BASE && cp < INVALID_BASE ? compose(cps[starter], cp) : 0;
        if (comp && (last < c || last == 0)) {
            cps[starter] = comp;
            continue;
        }
        if (c == 0) starter = k;
        last = c;
        cps[k++] = cp;
    }
    size_t len = 0;
    for (size_t i = 0; i < k; i++) len += put_cp(o + len, cps[i]);
    o[len] = 0;
    free(cps);
    *out = (char *)o;
    *out_len = len;
    return BR_OK;
}
