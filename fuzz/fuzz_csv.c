/* libFuzzer target: base/csv and guard/bleu + the PARDEN window on arbitrary bytes.
 * br_csv_parse must return OK or an error, never crash; an accepted table must write back and
 * re-read to the same cells; BLEU of any two byte strings (invalid UTF-8 included) must be a
 * number in [0, 1], 1 for a text against itself once it has 4 tokens, and the same through the
 * fast (one reference) and general (two equal references) paths. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/csv.h"
#include "guard/bleu.h"
#include "guard/parden.h"

static void check_bleu(const char *a, size_t na, const char *b, size_t nb)
{
    for (int unit = 0; unit < 2; unit++) {
        br_bleu_opts_t o;
        br_bleu_opts_default(&o);
        o.unit = (br_bleu_unit)unit;
        double s;
        if (br_bleu_pair(&o, a, na, b, nb, &s) != BR_OK || !(s >= 0 && s <= 1)) abort();
        br_bleu_stats_t s1, s2;
        const char *refs[2] = {a, a};
        size_t rb[2] = {na, na};
        if (br_bleu_stats_n(&o, refs, rb, 1, b, nb, &s1) != BR_OK) abort();
        if (br_bleu_stats_n(&o, refs, rb, 2, b, nb, &s2) != BR_OK) abort();
        if (memcmp(s1.num, s2.num, sizeof s1.num) || memcmp(s1.den, s2.den, sizeof s1.den) ||
            s1.hyp_len != s2.hyp_len || s1.ref_len != s2.ref_len)
            abort();
        if (br_bleu_pair(&o, a, na, a, na, &s) != BR_OK) abort();
        br_bleu_stats_t self;
        if (br_bleu_stats_n(&o, refs, rb, 1, a, na, &self) != BR_OK) abort();
        if (self.hyp_len >= 4 && s != 1.0) abort();
        o.smoothing = BR_BLEU_SMOOTH1;
        if (br_bleu_pair(&o, a, na, b, nb, &s) != BR_OK || !(s >= 0 && s <= 1)) abort();
    }
    /* the window needs NUL-terminated strings */
    char *x = malloc(na + 1), *y = malloc(nb + 1);
    if (!x || !y) abort();
    memcpy(x, a, na);
    x[na] = 0;
    memcpy(y, b, nb);
    y[nb] = 0;
    br_parden_opts_t po;
    br_parden_opts_default(&po);
    for (int w = 0; w <= 3; w++) {
        po.window = w == 3 ? 60 : w;
        double s;
        if (br_parden_score(&po, x, y, &s) != BR_OK || !(s >= 0 && s <= 1)) abort();
    }
    double s;
    if (br_parden_score_trunc(x, y, &s) != BR_OK || !(s >= 0 && s <= 1)) abort();
    free(x);
    free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* BLEU on the two halves of the raw input */
    check_bleu((const char *)data, size / 2, (const char *)data + size / 2, size - size / 2);

    br_csv_t c;
    if (br_csv_parse((const char *)data, size, "fuzz.csv", &c) != BR_OK) return 0;
    if (c.ncols == 0) abort();
    /* write back and read again: the same cells (fields with NUL bytes cannot round-trip) */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int has_nul = 0;
    for (size_t i = 0; i < (c.nrows + 1) * c.ncols; i++) has_nul |= strlen(c.header[i]) != c.lens[i];
    if (br_csv_write_row(f, (const char *const *)c.header, c.ncols) != BR_OK) abort();
    for (size_t r = 0; r < c.nrows; r++)
        if (br_csv_write_row(f, (const char *const *)&c.cells[r * c.ncols], c.ncols) != BR_OK) abort();
    fclose(f);
    br_csv_t d;
    /* a table whose cells are all empty writes blank lines that a reader skips */
    if (!has_nul && br_csv_parse(buf, len, "again.csv", &d) == BR_OK) {
        if (d.ncols == c.ncols && d.nrows == c.nrows)
            for (size_t i = 0; i < (c.nrows + 1) * c.ncols; i++)
                if (strcmp(c.header[i], d.header[i])) abort();
        br_csv_free(&d);
    }
    free(buf);
    /* BLEU between neighbouring cells */
    for (size_t i = 0; i + 1 < (c.nrows + 1) * c.ncols && i < 16; i++)
        check_bleu(c.header[i], strlen(c.header[i]), c.header[i + 1], strlen(c.header[i + 1]));
    br_csv_free(&c);
    return 0;
}
