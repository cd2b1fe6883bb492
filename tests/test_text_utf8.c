/* The one UTF-8 decoder (text/utf8.h): a table of valid and invalid sequences, then every
 * 1..3-byte sequence and random 4-byte ones against a reference built the other way round
 * (a sequence is valid exactly when it is the shortest encoding of a scalar value). */
#include <stdio.h>
#include <string.h>

#include "base/rng.h"
#include "harness.h"
#include "serve/util.h"
#include "text/bytelevel.h"
#include "text/utf8.h"

typedef struct {
    const char *what;
    const char *s;
    size_t n;
    uint32_t cp; /* BR_UTF8_INVALID + first byte when invalid */
    size_t len;
} utf8_case;

#define BAD(b) (BR_UTF8_INVALID + (b))

static const utf8_case cases[] = {
    {"1 byte NUL", "\x00", 1, 0x00, 1},
    {"1 byte A", "A", 1, 0x41, 1},
    {"1 byte max", "\x7F", 1, 0x7F, 1},
    {"2 bytes min", "\xC2\x80", 2, 0x80, 2},
    {"2 bytes e-acute", "\xC3\xA9", 2, 0xE9, 2},
    {"2 bytes max", "\xDF\xBF", 2, 0x7FF, 2},
    {"3 bytes min", "\xE0\xA0\x80", 3, 0x800, 3},
    {"3 bytes euro", "\xE2\x82\xAC", 3, 0x20AC, 3},
    {"3 bytes before surrogates", "\xED\x9F\xBF", 3, 0xD7FF, 3},
    {"3 bytes after surrogates", "\xEE\x80\x80", 3, 0xE000, 3},
    {"3 bytes max", "\xEF\xBF\xBF", 3, 0xFFFF, 3},
    {"4 bytes min", "\xF0\x90\x80\x80", 4, 0x10000, 4},
    {"4 bytes emoji", "\xF0\x9F\x98\x80", 4, 0x1F600, 4},
    {"4 bytes max U+10FFFF", "\xF4\x8F\xBF\xBF", 4, 0x10FFFF, 4},
    {"valid then more", "\xC3\xA9z", 3, 0xE9, 2},
    {"overlong 2 bytes C0", "\xC0\x80", 2, BAD(0xC0), 1},
    {"overlong 2 bytes C1", "\xC1\xBF", 2, BAD(0xC1), 1},
    {"overlong 3 bytes", "\xE0\x9F\xBF", 3, BAD(0xE0), 1},
    {"overlong 3 bytes NUL", "\xE0\x80\x80", 3, BAD(0xE0), 1},
    {"overlong 4 bytes", "\xF0\x8F\xBF\xBF", 4, BAD(0xF0), 1},
    {"surrogate D800", "\xED\xA0\x80", 3, BAD(0xED), 1},
    {"surrogate DBFF", "\xED\xAF\xBF", 3, BAD(0xED), 1},
    {"surrogate DC00", "\xED\xB0\x80", 3, BAD(0xED), 1},
    {"surrogate DFFF", "\xED\xBF\xBF", 3, BAD(0xED), 1},
    {"U+110000", "\xF4\x90\x80\x80", 4, BAD(0xF4), 1},
    {"lead F5", "\xF5\x80\x80\x80", 4, BAD(0xF5), 1},
    {"lead F7", "\xF7\xBF\xBF\xBF", 4, BAD(0xF7), 1},
    {"5-byte form", "\xF8\x88\x80\x80\x80", 5, BAD(0xF8), 1},
    {"byte FE", "\xFE", 1, BAD(0xFE), 1},
    {"byte FF", "\xFF", 1, BAD(0xFF), 1},
    {"lone continuation 80", "\x80", 1, BAD(0x80), 1},
    {"lone continuation BF", "\xBF" "A", 2, BAD(0xBF), 1},
    {"truncated 2 of 2", "\xC3", 1, BAD(0xC3), 1},
    {"truncated 2 of 3", "\xE2\x82", 2, BAD(0xE2), 1},
    {"truncated 3 of 4", "\xF0\x9F\x98", 3, BAD(0xF0), 1},
    {"truncated by length", "\xC3\xA9", 1, BAD(0xC3), 1},
    {"bad 2nd byte", "\xC3\x28", 2, BAD(0xC3), 1},
    {"bad 3rd byte", "\xE2\x82\x28", 3, BAD(0xE2), 1},
    {"bad 4th byte", "\xF0\x9F\x98\x28", 4, BAD(0xF0), 1},
    {"ASCII where continuation due", "\xE2" "AB", 3, BAD(0xE2), 1},
};

static void test_table(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const utf8_case *c = &cases[i];
        size_t len = 99;
        uint32_t cp = br_utf8_decode((const unsigned char *)c->s, c->n, &len);
        CHECK_MSG(cp == c->cp && len == c->len, "%s: got U+%04X len %zu, want U+%04X len %zu", c->what,
                  (unsigned)cp, len, (unsigned)c->cp, c->len);
        /* the callers agree with the decoder on whether the first character is valid */
        bool valid = c->cp < BR_UTF8_INVALID;
        CHECK_MSG((br_utf8_check("t", c->s, c->len) == BR_OK) == valid, "%s: br_utf8_check", c->what);
        CHECK_MSG((br_utf8_valid_len(c->s, c->n) >= c->len) == valid, "%s: br_utf8_valid_len", c->what);
    }
}

/* The shortest UTF-8 encoding of cp into out; returns its length. */
static size_t encode(uint32_t cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Reference: s[0..n) (n = the length its lead byte announces) is one valid character exactly
 * when decoding its bits naively and encoding again gives the same bytes, and the value is a
 * scalar value (not a surrogate, <= U+10FFFF). */
static bool ref_valid(const unsigned char *s, size_t n, uint32_t *cp_out)
{
    static const unsigned lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t cp = s[0] & lead_mask[n];
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    unsigned char e[4];
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || encode(cp, e) != n || memcmp(e, s, n)) return false;
    *cp_out = cp;
    return true;
}

static size_t announced_len(unsigned lead)
{
    return lead < 0x80 ? 1 : lead < 0xC0 ? 0 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : lead < 0xF8 ? 4 : 0;
}

static void check_against_ref(const unsigned char *s, size_t n, size_t *bad)
{
    size_t want_n = announced_len(s[0]), len;
    uint32_t want = 0, got = br_utf8_decode(s, n, &len);
    bool ok = want_n >= 1 && want_n <= n && ref_valid(s, want_n, &want);
    bool agree = ok ? (got == want && len == want_n) : (got == BR_UTF8_INVALID + s[0] && len == 1);
    if (!agree && (*bad)++ < 5)
        CHECK_MSG(false, "%02X %02X %02X %02X (n %zu): decoder U+%04X len %zu, reference %s", s[0],
                  n > 1 ? s[1] : 0, n > 2 ? s[2] : 0, n > 3 ? s[3] : 0, n, (unsigned)got, len,
                  ok ? "valid" : "invalid");
}

static void test_exhaustive(void)
{
    unsigned char s[4];
    size_t bad = 0, tried = 0;
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        check_against_ref(s, 1, &bad), tried++;
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            check_against_ref(s, 2, &bad), tried++;
            if (a < 0xE0) continue; /* longer inputs only change the answer for 3- and 4-byte leads */
            for (unsigned c = 0; c < 256; c++) {
                s[2] = (unsigned char)c;
                check_against_ref(s, 3, &bad), tried++;
            }
        }
    }
    br_rng_t r;
    br_rng_seed(&r, 17);
    for (int i = 0; i < 2000000; i++) {
        uint32_t w = br_rng_u32(&r);
        s[0] = (unsigned char)(0xF0 | (w & 0x0F)); /* 4-byte leads and the invalid F8..FF */
        for (int k = 1; k < 4; k++) s[k] = (unsigned char)((w >> (8 * k)) & 0xFF);
        if (w & 0x10) /* half the time continuation bytes, so that most are near-valid */
            for (int k = 1; k < 4; k++) s[k] = (unsigned char)(0x80 | (s[k] & 0x3F));
        check_against_ref(s, 4, &bad), tried++;
    }
    CHECK_MSG(bad == 0, "%zu of %zu sequences disagree with the reference", bad, tried);
    /* every scalar value round-trips */
    size_t rt_bad = 0, enc_bad = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        size_t n = encode(cp, s), len;
        if (br_utf8_decode(s, n, &len) != cp || len != n) rt_bad++;
        /* the library's encoder writes the test's independent encoding */
        unsigned char e[4];
        if (br_utf8_encode((char *)e, cp) != n || memcmp(e, s, n)) enc_bad++;
    }
    CHECK_MSG(rt_bad == 0, "%zu scalar values do not round-trip", rt_bad);
    CHECK_MSG(enc_bad == 0, "br_utf8_encode differs from the reference encoding on %zu scalar values", enc_bad);
}

static void test_helpers(void)
{
    const char *mix = "a\xC3\xA9\xFF\xF0\x9F\x98\x80z\xE2\x82"; /* a é <FF> 😀 z <E2> <82> */
    size_t n = strlen(mix);
    CHECK_INT(br_utf8_count(mix, n), 7);
    CHECK_INT(br_utf8_prefix(mix, n, 0), 0);
    CHECK_INT(br_utf8_prefix(mix, n, 2), 3);
    CHECK_INT(br_utf8_prefix(mix, n, 3), 4);
    CHECK_INT(br_utf8_prefix(mix, n, 4), 8);
    CHECK_INT(br_utf8_prefix(mix, n, 100), n);
    CHECK_INT(br_utf8_count("", 0), 0);
    CHECK_INT(br_utf8_count("plain ascii text, longer than eight", 35), 35);
    /* br_utf8_check names the first bad byte, its offset and line */
    CHECK_STATUS(br_utf8_check("corpus.txt", "ok\nok\n\xC3\xA9\xFF", 9), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "0xff at offset 8, line 3") != NULL);
    CHECK_OK(br_utf8_check("x", "", 0));
    /* the byte-level alphabet rejects an overlong form of a printable character */
    uint8_t out[4];
    CHECK_INT(br_bytelevel_decode(out, "\xC1\xA1", 2), -1);
    CHECK_INT(br_bytelevel_decode(out, "a", 1), 1);
}

int main(void)
{
    test_table();
    test_exhaustive();
    test_helpers();
    return th_exit();
}
