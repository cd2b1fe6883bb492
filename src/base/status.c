#include "base/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MSG_CAP = 1024 };
static _Thread_local char msg[MSG_CAP];

static const char *const names[BR_STATUS_COUNT] = {
    [BR_OK] = "OK",           [BR_EINVAL] = "EINVAL",     [BR_ENOMEM] = "ENOMEM",
    [BR_EIO] = "EIO",         [BR_EFORMAT] = "EFORMAT",   [BR_ENOTFOUND] = "ENOTFOUND",
    [BR_ERANGE] = "ERANGE",   [BR_EUNSUPPORTED] = "EUNSUPPORTED",
    [BR_EBUSY] = "EBUSY",     [BR_ECANCELED] = "ECANCELED", [BR_ETIMEOUT] = "ETIMEOUT",
    [BR_ENET] = "ENET",
};

const char *br_status_name(br_status s)
{
    return (unsigned)s < BR_STATUS_COUNT ? names[s] : "E?";
}

br_status br_error(br_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, MSG_CAP, fmt, ap);
    va_end(ap);
    return code;
}

/* Appends s to msg (length *len), cutting it at MSG_CAP - 1 bytes: an over-long message keeps
 * its start, which names the operation. */
static void msg_append(size_t *len, const char *s)
{
    size_t n = strlen(s), room = MSG_CAP - 1 - *len;
    if (n > room) n = room;
    memcpy(msg + *len, s, n);
    *len += n;
    msg[*len] = 0;
}

br_status br_error_wrap(br_status code, const char *fmt, ...)
{
    char old[MSG_CAP];
    memcpy(old, msg, MSG_CAP);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, MSG_CAP, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < MSG_CAP ? (size_t)n : MSG_CAP - 1;
    msg[len] = 0;
    msg_append(&len, ": ");
    msg_append(&len, old[0] ? old : br_status_name(code));
    return code;
}

const char *br_errmsg(void) { return msg; }

void br_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "braid: internal error: %s:%d: assertion '%s' failed\n", file, line, expr);
    abort();
}
