#include "lm_common.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

br_status lm_parse_ids(const char *text, int32_t **ids, size_t *n)
{
    size_t cap = 64, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return br_error(BR_ENOMEM, "out of memory");
    const char *p = text;
    for (;;) {
        while (*p && (isspace((unsigned char)*p) || *p == ',')) p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX ||
            (*end && !isspace((unsigned char)*end) && *end != ',')) {
            free(v);
            return br_error(BR_EINVAL, "token %zu ('%.20s') is not a non-negative integer id", k + 1, p);
        }
        if (k == cap) {
            int32_t *nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) {
                free(v);
                return br_error(BR_ENOMEM, "out of memory");
            }
            v = nv;
        }
        v[k++] = (int32_t)x;
        p = end;
    }
    *ids = v;
    *n = k;
    return BR_OK;
}
