/* CSV via libcsv (see csv.h). */
#include "base/csv.h"

#include <csv.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"

typedef struct {
    char *buf; /* field bytes, each followed by NUL */
    size_t len, cap;
    size_t *offs; /* per field: offset in buf */
    size_t *flen;
    size_t nf, ocap, fcap;
    size_t ncols;     /* fields in the header (0 until the first record ends) */
    size_t row_start; /* index of the current record's first field */
    size_t records;
    br_status err;
    char msg[512];
} builder_t;

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

static void on_field(void *data, size_t n, void *user)
{
    builder_t *b = user;
    if (b->err) return;
    if (!grow((void **)&b->offs, &b->ocap, b->nf + 1, sizeof(size_t)) ||
        !grow((void **)&b->flen, &b->fcap, b->nf + 1, sizeof(size_t)) ||
        !grow((void **)&b->buf, &b->cap, b->len + n + 1, 1)) {
        b->err = BR_ENOMEM;
        snprintf(b->msg, sizeof b->msg, "out of memory");
        return;
    }
    b->offs[b->nf] = b->len;
    b->flen[b->nf] = n;
    if (n) memcpy(b->buf + b->len, data, n);
    b->len += n;
    b->buf[b->len++] = 0;
    b->nf++;
}

static void on_row(int c, void *user)
{
    (void)c;
    builder_t *b = user;
    if (b->err) return;
    size_t got = b->nf - b->row_start;
    if (b->records == 0) b->ncols = got;
    else if (got != b->ncols) {
        b->err = BR_EFORMAT;
        snprintf(b->msg, sizeof b->msg, "row %zu has %zu field%s, the header has %zu (a ragged row)", b->records,
                 got, got == 1 ? "" : "s", b->ncols);
    }
    b->records++;
    b->row_start = b->nf;
}

static int no_space(unsigned char c)
{
    (void)c;
    return 0;
}

br_status br_csv_parse(const char *data, size_t size, const char *name, br_csv_t *csv)
{
    memset(csv, 0, sizeof *csv);
    if (!name) name = "csv";
    if (size >= 3 && (unsigned char)data[0] == 0xEF && (unsigned char)data[1] == 0xBB &&
        (unsigned char)data[2] == 0xBF) {
        data += 3;
        size -= 3;
    }
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
        return br_error(BR_ENOMEM, "%s: cannot start the CSV parser", name);
    csv_set_space_func(&p, no_space);
    builder_t b;
    memset(&b, 0, sizeof b);
    size_t used = csv_parse(&p, data, size, on_field, on_row, &b);
    int perr = used != size ? csv_error(&p) : 0;
    if (!perr && !b.err && csv_fini(&p, on_field, on_row, &b) != 0) perr = csv_error(&p);
    csv_free(&p);
    br_status st = BR_OK;
    if (b.err) st = br_error(b.err, "%s: %s", name, b.msg);
    else if (perr == CSV_EPARSE)
        st = br_error(BR_EFORMAT, "%s: malformed CSV in record %zu near byte %zu (a stray or unterminated quote)",
                      name, b.records, used);
    else if (perr) st = br_error(BR_EFORMAT, "%s: CSV error: %s", name, csv_strerror(perr));
    else if (b.records == 0) st = br_error(BR_EFORMAT, "%s: empty CSV (no header)", name);
    if (st != BR_OK) {
        free(b.buf);
        free(b.offs);
        free(b.flen);
        return st;
    }
    csv->ncols = b.ncols;
    csv->nrows = b.records - 1;
    size_t nf = b.nf;
    csv->header = malloc(sizeof(char *) * (nf ? nf : 1));
    csv->lens = b.flen;
    csv->mem = b.buf;
    if (!csv->header) {
        free(b.buf);
        free(b.offs);
        free(b.flen);
        memset(csv, 0, sizeof *csv);
        return br_error(BR_ENOMEM, "%s: out of memory", name);
    }
    for (size_t i = 0; i < nf; i++) csv->header[i] = b.buf + b.offs[i];
    csv->cells = csv->header + b.ncols;
    free(b.offs);
    return BR_OK;
}

br_status br_csv_read(const char *path, br_csv_t *csv)
{
    char *data;
    size_t size;
    memset(csv, 0, sizeof *csv);
    BR_TRY(br_read_file(path, &data, &size));
    br_status s = br_csv_parse(data, size, path, csv);
    free(data);
    return s;
}

void br_csv_free(br_csv_t *csv)
{
    if (!csv) return;
    free(csv->header);
    free(csv->mem);
    free(csv->lens);
    memset(csv, 0, sizeof *csv);
}

long br_csv_find(const br_csv_t *csv, const char *name)
{
    for (size_t i = 0; i < csv->ncols; i++)
        if (!strcmp(csv->header[i], name)) return (long)i;
    return -1;
}

br_status br_csv_column(const br_csv_t *csv, const char *name, const char *label, size_t *col)
{
    long c = br_csv_find(csv, name);
    if (c >= 0) {
        *col = (size_t)c;
        return BR_OK;
    }
    char list[1024];
    size_t o = 0;
    list[0] = 0;
    for (size_t i = 0; i < csv->ncols && o + 8 < sizeof list; i++) {
        int w = snprintf(list + o, sizeof list - o, "%s'%s'", i ? ", " : "", csv->header[i]);
        if (w < 0) break;
        o += (size_t)w;
        if (o >= sizeof list) {
            o = sizeof list - 1;
            break;
        }
    }
    return br_error(BR_ENOTFOUND, "%s: no column '%s' (columns: %s)", label ? label : "csv", name, list);
}

br_status br_csv_write_row(FILE *f, const char *const *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = fields[i] ? fields[i] : "";
        size_t len = strlen(s);
        bool q = len && (s[0] == ' ' || s[len - 1] == ' ');
        for (size_t j = 0; j < len && !q; j++)
            q = s[j] == ',' || s[j] == '"' || s[j] == '\n' || s[j] == '\r';
        if (i && fputc(',', f) == EOF) goto fail;
        if (!q) {
            if (len && fwrite(s, 1, len, f) != len) goto fail;
            continue;
        }
        if (fputc('"', f) == EOF) goto fail;
        for (size_t j = 0; j < len; j++) {
            if (s[j] == '"' && fputc('"', f) == EOF) goto fail;
            if (fputc(s[j], f) == EOF) goto fail;
        }
        if (fputc('"', f) == EOF) goto fail;
    }
    if (fputc('\n', f) == EOF) goto fail;
    return BR_OK;
fail:
    return br_error(BR_EIO, "writing CSV: write failed");
}
