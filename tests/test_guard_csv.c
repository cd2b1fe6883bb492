/* base/csv: RFC 4180 reading (libcsv), clear errors, writing that reads back. */
#include <stdlib.h>
#include <string.h>

#include "base/csv.h"
#include "base/fileio.h"
#include "harness.h"

static void parse_ok(void)
{
    const char *t = "\xEF\xBB\xBF,name,text\n"
                    "0,a,\"hello, world\"\n"
                    "1,b,\"say \"\"hi\"\"\nsecond line\"\r\n"
                    "\n"
                    "2,c,  padded  \n"
                    "3,d,";
    br_csv_t c;
    CHECK_OK(br_csv_parse(t, strlen(t), "t.csv", &c));
    CHECK_INT(c.ncols, 3);
    CHECK_INT(c.nrows, 4);
    CHECK_STR(c.header[0], "");
    CHECK_STR(c.header[1], "name");
    CHECK_STR(br_csv_cell(&c, 0, 2), "hello, world");
    CHECK_STR(br_csv_cell(&c, 1, 2), "say \"hi\"\nsecond line");
    CHECK_STR(br_csv_cell(&c, 2, 2), "  padded  "); /* no trimming */
    CHECK_STR(br_csv_cell(&c, 3, 2), "");
    CHECK_INT(br_csv_cell_len(&c, 1, 2), strlen("say \"hi\"\nsecond line"));
    CHECK_INT(br_csv_find(&c, "text"), 2);
    CHECK_INT(br_csv_find(&c, "nope"), -1);
    size_t col;
    CHECK_STATUS(br_csv_column(&c, "output", "t.csv", &col), BR_ENOTFOUND);
    CHECK(strstr(br_errmsg(), "no column 'output'") && strstr(br_errmsg(), "'name', 'text'"));

    /* write and read back */
    char path[] = "/tmp/braid_test_csv_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    CHECK_OK(br_csv_write_row(f, (const char *const *)c.header, c.ncols));
    for (size_t r = 0; r < c.nrows; r++) CHECK_OK(br_csv_write_row(f, (const char *const *)&c.cells[r * c.ncols], c.ncols));
    fclose(f);
    br_csv_t d;
    CHECK_OK(br_csv_read(path, &d));
    CHECK_INT(d.nrows, c.nrows);
    for (size_t r = 0; r < c.nrows && r < d.nrows; r++)
        for (size_t k = 0; k < c.ncols; k++) CHECK_STR(br_csv_cell(&d, r, k), br_csv_cell(&c, r, k));
    br_csv_free(&d);
    remove(path);
    br_csv_free(&c);
}

static void parse_bad(void)
{
    br_csv_t c;
    const char *ragged = "a,b\n1,2\n3\n";
    CHECK_STATUS(br_csv_parse(ragged, strlen(ragged), "r.csv", &c), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "r.csv") && strstr(br_errmsg(), "row 2") && strstr(br_errmsg(), "ragged"));
    const char *longer = "a,b\n1,2,3\n";
    CHECK_STATUS(br_csv_parse(longer, strlen(longer), "l.csv", &c), BR_EFORMAT);
    const char *open_quote = "a,b\n1,\"never closed\n";
    CHECK_STATUS(br_csv_parse(open_quote, strlen(open_quote), "q.csv", &c), BR_EFORMAT);
    const char *stray = "a,b\n1,x\"y\"z\n";
    CHECK_STATUS(br_csv_parse(stray, strlen(stray), "s.csv", &c), BR_EFORMAT);
    CHECK_STATUS(br_csv_parse("", 0, "e.csv", &c), BR_EFORMAT);
    CHECK_STATUS(br_csv_read("/nonexistent/x.csv", &c), BR_ENOTFOUND);
    br_csv_free(NULL);
}

int main(void)
{
    parse_ok();
    parse_bad();
    return th_exit();
}
