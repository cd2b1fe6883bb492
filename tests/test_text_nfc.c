/* NFC: Unicode's own conformance file (NormalizationTest.txt from Debian's unicode-data, when
 * installed: c2 == NFC(c1) == NFC(c2) == NFC(c3), c4 == NFC(c4) == NFC(c5)), plus fixed cases
 * that run without it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "text/nfc.h"

static size_t utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xC0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000)
        return o[0] = (char)(0xE0 | (cp >> 12)), o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), o[2] = (char)(0x80 | (cp & 0x3F)), 3;
    o[0] = (char)(0xF0 | (cp >> 18)), o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* "0044 0307" -> UTF-8 */
static size_t field(char *o, const char *hex)
{
    size_t n = 0;
    char *end;
    for (const char *p = hex; *p;) {
        unsigned long cp = strtoul(p, &end, 16);
        if (end == p) break;
        n += utf8(o + n, (uint32_t)cp);
        p = end;
        while (*p == ' ') p++;
    }
    o[n] = 0;
    return n;
}

static int nfc_is(const char *in, size_t n, const char *want, size_t wn)
{
    char *out;
    size_t len;
    if (br_nfc(in, n, &out, &len) != BR_OK) return 0;
    int ok = len == wn && !memcmp(out, want, wn);
    free(out);
    return ok;
}

static void test_fixed(void)
{
    CHECK(nfc_is("e\xCC\x81", 3, "\xC3\xA9", 2));                 /* e + acute -> é */
    CHECK(nfc_is("\xE1\x84\x80\xE1\x85\xA1", 6, "\xEA\xB0\x80", 3)); /* Hangul L V -> 가 */
    CHECK(nfc_is("a\xCC\xA3\xCC\x87", 5, "\xE1\xBA\xA1\xCC\x87", 5)); /* a + dot below + dot above: ạ̇ */
    CHECK(nfc_is("\xE2\x84\xAB", 3, "\xC3\x85", 2));                 /* ANGSTROM SIGN -> Å (singleton) */
    CHECK(nfc_is("x\xFFy\xCC\x81", 5, "x\xFF\xC3\xBD", 4));         /* invalid byte kept, ý composed */
    CHECK(nfc_is("", 0, "", 0));
    CHECK(br_nfc_quick("plain ascii", 11));
    CHECK(br_nfc_quick("\xE6\x9D\xB1\xE4\xBA\xAC", 6)); /* 東京 */
    CHECK(!br_nfc_quick("e\xCC\x81", 3));
}

static void test_conformance(void)
{
    FILE *p = popen("bzcat /usr/share/unicode/NormalizationTest.txt.bz2 2>/dev/null", "r");
    char line[4096], f[5][1024];
    size_t lines = 0, bad = 0;
    while (p && fgets(line, sizeof line, p)) {
        if (line[0] == '#' || line[0] == '@' || line[0] == '\n') continue;
        char *c[5], *s = line;
        int k = 0;
        for (; k < 5; k++) {
            c[k] = s;
            s = strchr(s, ';');
            if (!s) break;
            *s++ = 0;
        }
        if (k < 5) continue;
        size_t n[5];
        for (int j = 0; j < 5; j++) n[j] = field(f[j], c[j]);
        lines++;
        int ok = nfc_is(f[0], n[0], f[1], n[1]) && nfc_is(f[1], n[1], f[1], n[1]) && nfc_is(f[2], n[2], f[1], n[1]) &&
                 nfc_is(f[3], n[3], f[3], n[3]) && nfc_is(f[4], n[4], f[3], n[3]);
        if (!ok && bad++ < 5) CHECK_MSG(0, "NormalizationTest line: %s", c[0]);
    }
    if (p) pclose(p);
    if (lines == 0) {
        SKIP("/usr/share/unicode/NormalizationTest.txt.bz2 absent (apt-get install unicode-data bzip2)");
        return;
    }
    printf("NFC: %zu of %zu NormalizationTest.txt lines pass\n", lines - bad, lines);
    CHECK_MSG(bad == 0, "%zu of %zu lines fail", bad, lines);
}

int main(void)
{
    test_fixed();
    test_conformance();
    return th_exit();
}
