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

/* Truncation of over-long messages is intended. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
br_status br_error_wrap(br_status code, const char *fmt, ...)
{
    char prefix[MSG_CAP], old[MSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, MSG_CAP, fmt, ap);
    va_end(ap);
    memcpy(old, msg, MSG_CAP);
    snprintf(msg, MSG_CAP, "%s: %s", prefix, old[0] ? old : br_status_name(code));
    return code;
}

const char *br_errmsg(void) { return msg; }

void br_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "braid: internal error: %s:%d: assertion '%s' failed\n", file, line, expr);
    abort();
}
