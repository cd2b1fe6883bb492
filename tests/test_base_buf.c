/* base/buf.h: the growable string buffer and the path builder; br_error_wrap's cut of
 * over-long messages. */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "harness.h"

static void test_grow(void)
{
    br_buf_t b = BR_BUF_INIT;
    CHECK_STR(br_buf_str(&b), "");
    br_status s = BR_OK;
    for (int i = 0; i < 1000 && !s; i++) s = br_buf_printf(&b, "%d,", i % 10);
    CHECK_OK(s);
    CHECK_INT(b.len, 2000);
    CHECK_INT(strlen(br_buf_str(&b)), 2000);
    CHECK(!strncmp(br_buf_str(&b), "0,1,2,3,", 8) && !strcmp(br_buf_str(&b) + 1996, "8,9,"));
    CHECK_OK(br_buf_append(&b, "x\0y", 3)); /* bytes, not only text */
    CHECK_INT(b.len, 2003);
    CHECK(b.data[2001] == 0 && b.data[2002] == 'y' && b.data[2003] == 0);
    br_buf_clear(&b);
    CHECK_STR(br_buf_str(&b), "");
    CHECK_OK(br_buf_puts(&b, "abc"));
    CHECK_STR(br_buf_str(&b), "abc");
    br_buf_free(&b);
    CHECK(b.data == NULL && b.len == 0);
}

static void test_path(void)
{
    br_buf_t b = BR_BUF_INIT;
    CHECK_OK(br_buf_path(&b, "runs/seed", "config.json"));
    CHECK_STR(br_buf_str(&b), "runs/seed/config.json");
    CHECK_OK(br_buf_path(&b, "runs/seed/", "config.json")); /* replaces, no doubled '/' */
    CHECK_STR(br_buf_str(&b), "runs/seed/config.json");
    CHECK_OK(br_buf_path(&b, "", "x"));
    CHECK_STR(br_buf_str(&b), "/x");
    /* longer than the old fixed 4096-byte buffers: a growable buffer takes it */
    char *dir = malloc(6001);
    memset(dir, 'd', 6000);
    dir[6000] = 0;
    CHECK_OK(br_buf_path(&b, dir, "f"));
    CHECK_INT(b.len, 6002);
    CHECK(!strcmp(br_buf_str(&b) + 5999, "d/f"));
    br_buf_free(&b);

    /* fixed storage: BR_ERANGE naming the path, content unchanged, never truncated */
    char small[16];
    br_buf_t f;
    br_buf_fixed(&f, small, sizeof small);
    CHECK_OK(br_buf_path(&f, "a", "b"));
    CHECK_STR(small, "a/b");
    CHECK_STATUS(br_buf_path(&f, "a-long-directory", "name"), BR_ERANGE);
    CHECK_STR(br_errmsg(), "path too long: a-long-directory/name");
    CHECK_STR(small, "a/b");
    CHECK_OK(br_buf_path(&f, "0123456789", "abcd")); /* 15 bytes + NUL: exactly fits */
    CHECK_STR(small, "0123456789/abcd");
    CHECK_STATUS(br_buf_puts(&f, "z"), BR_ERANGE);
    CHECK_STR(small, "0123456789/abcd");
    br_buf_free(&f); /* a fixed buffer is only emptied */
    CHECK_STR(small, "");

    /* br_path_join is the same builder over caller storage */
    char p[8];
    CHECK_OK(br_path_join(p, sizeof p, "ab/", "cd"));
    CHECK_STR(p, "ab/cd");
    CHECK_STATUS(br_path_join(p, sizeof p, "abcd", "efgh"), BR_ERANGE);
    CHECK_STR(p, "");
    CHECK_STATUS(br_path_join(p, sizeof p, dir, "f"), BR_ERANGE);
    CHECK(strlen(br_errmsg()) > 100 && !strncmp(br_errmsg(), "path too long: ddd", 18));
    free(dir);
}

/* br_error_wrap on a message near the 1024-byte cap keeps the context first and cuts the end. */
static void test_wrap_long(void)
{
    char big[2000];
    memset(big, 'm', sizeof big - 1);
    big[sizeof big - 1] = 0;
    br_error(BR_EFORMAT, "%s", big);
    CHECK_INT(strlen(br_errmsg()), 1023);
    CHECK_INT(br_error_wrap(BR_EFORMAT, "loading %s", "x.safetensors"), BR_EFORMAT);
    CHECK_INT(strlen(br_errmsg()), 1023);
    CHECK(!strncmp(br_errmsg(), "loading x.safetensors: mmm", 26));
    br_error(BR_EIO, "%s", "");
    br_error_wrap(BR_EIO, "writing %s", "f");
    CHECK_STR(br_errmsg(), "writing f: EIO");
    br_error_wrap(BR_EIO, "%s", big); /* a prefix longer than the cap: cut, still terminated */
    CHECK_INT(strlen(br_errmsg()), 1023);
}

int main(void)
{
    test_grow();
    test_path();
    test_wrap_long();
    return th_exit();
}
