#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int level = BR_LOG_INFO;

void br_log_set_level(br_log_level l) { atomic_store(&level, (int)l); }
br_log_level br_log_get_level(void) { return (br_log_level)atomic_load(&level); }

int br_log_level_from_env(void)
{
    const char *v = getenv("BRAID_LOG");
    if (!v || !*v) return 0;
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (strcmp(v, names[i]) == 0) {
            br_log_set_level((br_log_level)i);
            return 0;
        }
    return -1;
}

void br_log(br_log_level l, const char *fmt, ...)
{
    if ((int)l < atomic_load(&level)) return;
    static const char *const tags[] = {"debug", "info", "warning", "error"};
    char line[2048];
    int n = snprintf(line, sizeof line, "braid: %s: ", tags[l]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
