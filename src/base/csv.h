/* CSV tables (RFC 4180: quoted fields with commas, doubled quotes and newlines), read with
 * Debian's libcsv in strict mode.  Fields are kept byte for byte (no trimming, as pandas
 * reads them); a UTF-8 byte-order mark at the start is dropped; blank lines are skipped.
 * Errors name the file and the record: a ragged row, an unterminated quote, a missing
 * column (with the list of columns there are). */
#ifndef BR_BASE_CSV_H
#define BR_BASE_CSV_H
#include <stddef.h>
#include <stdio.h>
#include "base/status.h"

typedef struct {
    size_t nrows;  /* data rows (the header is not counted) */
    size_t ncols;
    char **header; /* ncols names */
    char **cells;  /* nrows * ncols, row-major, NUL-terminated */
    char *mem;     /* one block holding every string */
    size_t *lens;  /* byte length of every field, header first (a field may hold a NUL byte) */
} br_csv_t;

/* Parses a whole CSV text; `name` labels error messages (a path).  The first record is the
 * header; every record must have as many fields as the header. */
br_status br_csv_parse(const char *data, size_t size, const char *name, br_csv_t *csv);
br_status br_csv_read(const char *path, br_csv_t *csv);
void br_csv_free(br_csv_t *csv);

/* Index of the column named `name`, or -1. */
long br_csv_find(const br_csv_t *csv, const char *name);
/* Like find, but a missing column is BR_ENOTFOUND with a message listing the columns. */
br_status br_csv_column(const br_csv_t *csv, const char *name, const char *label, size_t *col);
static inline const char *br_csv_cell(const br_csv_t *csv, size_t row, size_t col)
{
    return csv->cells[row * csv->ncols + col];
}
static inline size_t br_csv_cell_len(const br_csv_t *csv, size_t row, size_t col)
{
    return csv->lens[(row + 1) * csv->ncols + col];
}

/* Writes one record: fields are quoted when they hold a comma, quote, CR or LF or start or
 * end with a space (quotes doubled); records end with "\n".  BR_EIO on a write error. */
br_status br_csv_write_row(FILE *f, const char *const *fields, size_t n);
#endif
