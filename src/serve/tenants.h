/* Tenants: API keys, which adapters each may use, rate limits, fair-share weights.
 *
 * tenants.json:
 *   {"tenants": [
 *      {"name": "acme", "keys": ["sk-acme-..."], "adapters": ["sql", "legal"],
 *       "rps": 5, "tpm": 20000, "weight": 1, "admin": false}, ...]}
 *   name      [A-Za-z0-9_.-]{1,63}, unique
 *   keys      Bearer tokens (at least one; unique across tenants; >= 8 characters)
 *   adapters  adapters this tenant owns; an adapter no tenant lists is shared by everyone
 *   rps       requests per second (token bucket, burst of max(1, rps)); 0 or absent: no limit
 *   tpm       prompt + completion tokens per minute (bucket of one minute); 0: no limit
 *   weight    fair-share weight in the scheduler (virtual token counter / weight); default 1
 *   admin     may POST/DELETE /v1/adapters; default false
 * Without a tenants file there is one open tenant "default" (no key, admin, no limits); the
 * server then listens on loopback only.
 *
 * Thread-safe: the set is immutable after loading except the rate-limit buckets, which a
 * mutex guards. */
#ifndef BR_SERVE_TENANTS_H
#define BR_SERVE_TENANTS_H
#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

typedef struct {
    char name[64];
    char **keys;
    size_t nkeys;
    char **adapters;
    size_t nadapters;
    double rps, tpm, weight;
    bool admin;
    int index; /* position in the set */
    /* token buckets (guarded by the set's mutex) */
    double req_bucket, tok_bucket, last_refill;
} br_tenant_t;

typedef struct br_tenants br_tenants_t;

br_status br_tenants_load(br_tenants_t **out, const char *path);
br_status br_tenants_parse(br_tenants_t **out, const char *json_text, size_t len, const char *what);
/* The single open tenant used without a tenants file. */
br_status br_tenants_open(br_tenants_t **out);
void br_tenants_free(br_tenants_t *t); /* NULL is a no-op */

bool br_tenants_is_open(const br_tenants_t *t);
size_t br_tenants_count(const br_tenants_t *t);
br_tenant_t *br_tenants_get(br_tenants_t *t, size_t i);

/* The tenant owning the Authorization header value ("Bearer KEY"; may be NULL).  Open set:
 * always the default tenant.  NULL when the key is missing or unknown (compared in constant
 * time per key). */
br_tenant_t *br_tenants_auth(br_tenants_t *t, const char *authorization);

/* May `tenant` use adapter `name`?  Its own adapters, and every adapter no tenant owns. */
bool br_tenants_may_use(const br_tenants_t *t, const br_tenant_t *tenant, const char *name);
/* The tenant that owns an adapter, or NULL when it is shared. */
const br_tenant_t *br_tenants_owner(const br_tenants_t *t, const char *name);

/* Rate limits at admission, at time `now` (seconds, monotonic): takes one request and
 * `prompt_tokens` tokens.  BR_EBUSY with *retry_after (whole seconds >= 1) and a message when a
 * limit is exceeded; nothing is taken then. */
br_status br_tenants_admit(br_tenants_t *t, br_tenant_t *tenant, double now, double prompt_tokens,
                           int *retry_after);
/* Charges generated tokens (the bucket may go negative: later requests wait). */
void br_tenants_charge(br_tenants_t *t, br_tenant_t *tenant, double now, double tokens);
#endif
