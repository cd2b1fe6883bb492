#include "base/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void br_buf_init(br_buf_t *b) { *b = (br_buf_t)BR_BUF_INIT; }

void br_buf_fixed(br_buf_t *b, char *storage, size_t cap)
{
    BR_ASSERT(storage && cap >= 1);
    b->data = storage;
    b->cap = cap;
    b->len = 0;
    b->fixed = true;
    storage[0] = 0;
}

void br_buf_free(br_buf_t *b)
{
    if (b->fixed) {
        br_buf_clear(b);
        return;
    }
    free(b->data);
    br_buf_init(b);
}

void br_buf_clear(br_buf_t *b)
{
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

const char *br_buf_str(const br_buf_t *b) { return b->data ? b->data : ""; }

/* Makes room for `extra` more bytes plus the NUL. */
static br_status reserve(br_buf_t *b, size_t extra)
{
    if (extra >= SIZE_MAX - b->len) return br_error(BR_ENOMEM, "string of %zu + %zu bytes: too large", b->len, extra);
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return BR_OK;
    if (b->fixed) return br_error(BR_ERANGE, "string of %zu bytes does not fit in %zu", need - 1, b->cap - 1);
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p) return br_error(BR_ENOMEM, "out of memory for a string of %zu bytes", need - 1);
    if (!b->data) p[0] = 0;
    b->data = p;
    b->cap = cap;
    return BR_OK;
}

br_status br_buf_append(br_buf_t *b, const void *data, size_t n)
{
    BR_TRY(reserve(b, n));
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
    return BR_OK;
}

br_status br_buf_puts(br_buf_t *b, const char *s) { return br_buf_append(b, s, strlen(s)); }

br_status br_buf_vprintf(br_buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    br_status s = n < 0 ? br_error(BR_EINVAL, "bad format string '%s'", fmt) : reserve(b, (size_t)n);
    if (!s) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
    return s;
}

br_status br_buf_printf(br_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    br_status s = br_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return s;
}

br_status br_buf_path(br_buf_t *b, const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    bool sep = !(dl && dir[dl - 1] == '/');
    size_t old_len = b->len;
    b->len = 0; /* measure against the whole storage: the content is replaced */
    br_status s = reserve(b, dl + sep + nl);
    if (s) {
        b->len = old_len;
        if (s == BR_ERANGE) return br_error(BR_ERANGE, "path too long: %s%s%s", dir, sep ? "/" : "", name);
        return s;
    }
    memcpy(b->data, dir, dl);
    if (sep) b->data[dl] = '/';
    memcpy(b->data + dl + sep, name, nl + 1);
    b->len = dl + sep + nl;
    return BR_OK;
}
