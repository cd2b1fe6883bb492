#include "serve/tenants.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/fileio.h"
#include "serve/util.h"

struct br_tenants {
    br_tenant_t *t;
    size_t n;
    bool open;
    pthread_mutex_t mu;
};

static void tenant_clear(br_tenant_t *t)
{
    for (size_t i = 0; i < t->nkeys; i++) free(t->keys[i]);
    for (size_t i = 0; i < t->nadapters; i++) free(t->adapters[i]);
    free(t->keys);
    free(t->adapters);
}

void br_tenants_free(br_tenants_t *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) tenant_clear(&t->t[i]);
    free(t->t);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static br_tenants_t *tenants_new(size_t n)
{
    br_tenants_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->t = calloc(n ? n : 1, sizeof *s->t);
    if (!s->t) {
        free(s);
        return NULL;
    }
    s->n = n;
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

br_status br_tenants_open(br_tenants_t **out)
{
    br_tenants_t *s = tenants_new(1);
    if (!s) return br_error(BR_ENOMEM, "tenants: out of memory");
    snprintf(s->t[0].name, sizeof s->t[0].name, "default");
    s->t[0].weight = 1;
    s->t[0].admin = true;
    s->open = true;
    *out = s;
    return BR_OK;
}

static br_status string_list(json_t *v, char ***out, size_t *n, const char *what, const char *field,
                             const char *tname, bool names)
{
    *out = NULL;
    *n = 0;
    if (!v) return BR_OK;
    if (!json_is_array(v)) return br_error(BR_EFORMAT, "%s: tenant '%s': \"%s\" must be a list of strings", what, tname, field);
    size_t cnt = json_array_size(v);
    *out = calloc(cnt ? cnt : 1, sizeof **out);
    if (!*out) return br_error(BR_ENOMEM, "tenants: out of memory");
    for (size_t i = 0; i < cnt; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e) || !json_string_length(e))
            return br_error(BR_EFORMAT, "%s: tenant '%s': %s[%zu] must be a non-empty string", what, tname, field, i);
        if (names && !br_serve_name_ok(json_string_value(e), 100))
            return br_error(BR_EFORMAT, "%s: tenant '%s': adapter name '%s' must be [A-Za-z0-9_.-]{1,100}", what,
                            tname, json_string_value(e));
        (*out)[i] = strdup(json_string_value(e));
        if (!(*out)[i]) return br_error(BR_ENOMEM, "tenants: out of memory");
        (*n)++;
    }
    return BR_OK;
}

static br_status number_field(json_t *o, const char *field, double dflt, double *out, const char *what,
                              const char *tname)
{
    json_t *v = json_object_get(o, field);
    *out = dflt;
    if (!v || json_is_null(v)) return BR_OK;
    if (!json_is_number(v) || !(json_number_value(v) >= 0) || !isfinite(json_number_value(v)))
        return br_error(BR_EFORMAT, "%s: tenant '%s': \"%s\" must be a number >= 0", what, tname, field);
    *out = json_number_value(v);
    return BR_OK;
}

static br_status parse_tenant(br_tenant_t *t, json_t *o, const char *what, size_t idx)
{
    if (!json_is_object(o)) return br_error(BR_EFORMAT, "%s: tenants[%zu] is not an object", what, idx);
    json_t *v = json_object_get(o, "name");
    if (!json_is_string(v) || !br_serve_name_ok(json_string_value(v), sizeof t->name - 1))
        return br_error(BR_EFORMAT, "%s: tenants[%zu]: \"name\" must be [A-Za-z0-9_.-]{1,63}", what, idx);
    snprintf(t->name, sizeof t->name, "%s", json_string_value(v));
    const char *known[] = {"name", "keys", "adapters", "rps", "tpm", "weight", "admin"};
    const char *k;
    json_t *e;
    json_object_foreach(o, k, e) {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof *known; i++) ok |= !strcmp(k, known[i]);
        if (!ok) return br_error(BR_EFORMAT, "%s: tenant '%s': unknown field \"%s\"", what, t->name, k);
    }
    BR_TRY(string_list(json_object_get(o, "keys"), &t->keys, &t->nkeys, what, "keys", t->name, false));
    if (!t->nkeys) return br_error(BR_EFORMAT, "%s: tenant '%s' has no \"keys\"", what, t->name);
    for (size_t i = 0; i < t->nkeys; i++)
        if (strlen(t->keys[i]) < 8 || strlen(t->keys[i]) > 256)
            return br_error(BR_EFORMAT, "%s: tenant '%s': keys must be 8..256 characters", what, t->name);
    BR_TRY(string_list(json_object_get(o, "adapters"), &t->adapters, &t->nadapters, what, "adapters", t->name, true));
    BR_TRY(number_field(o, "rps", 0, &t->rps, what, t->name));
    BR_TRY(number_field(o, "tpm", 0, &t->tpm, what, t->name));
    BR_TRY(number_field(o, "weight", 1, &t->weight, what, t->name));
    if (t->weight <= 0) return br_error(BR_EFORMAT, "%s: tenant '%s': \"weight\" must be > 0", what, t->name);
    v = json_object_get(o, "admin");
    if (v && !json_is_boolean(v)) return br_error(BR_EFORMAT, "%s: tenant '%s': \"admin\" must be true or false", what, t->name);
    t->admin = json_is_true(v);
    t->req_bucket = t->rps > 1 ? t->rps : 1;
    t->tok_bucket = t->tpm;
    t->last_refill = -1;
    t->index = (int)idx;
    return BR_OK;
}

br_status br_tenants_parse(br_tenants_t **out, const char *text, size_t len, const char *what)
{
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return br_error(BR_EFORMAT, "%s:%d: %s", what, je.line, je.text);
    json_t *arr = json_object_get(root, "tenants");
    if (!json_is_object(root) || !json_is_array(arr) || json_array_size(arr) == 0) {
        json_decref(root);
        return br_error(BR_EFORMAT, "%s: want {\"tenants\": [{\"name\": ..., \"keys\": [...]}, ...]}", what);
    }
    br_tenants_t *s = tenants_new(json_array_size(arr));
    br_status rc = s ? BR_OK : br_error(BR_ENOMEM, "tenants: out of memory");
    for (size_t i = 0; rc == BR_OK && i < json_array_size(arr); i++)
        rc = parse_tenant(&s->t[i], json_array_get(arr, i), what, i);
    /* names unique, keys unique across tenants, an adapter owned by one tenant at most */
    for (size_t i = 0; rc == BR_OK && i < s->n; i++)
        for (size_t j = i + 1; rc == BR_OK && j < s->n; j++) {
            if (!strcmp(s->t[i].name, s->t[j].name))
                rc = br_error(BR_EFORMAT, "%s: tenant name '%s' appears twice", what, s->t[i].name);
            for (size_t a = 0; rc == BR_OK && a < s->t[i].nkeys; a++)
                for (size_t b = 0; rc == BR_OK && b < s->t[j].nkeys; b++)
                    if (!strcmp(s->t[i].keys[a], s->t[j].keys[b]))
                        rc = br_error(BR_EFORMAT, "%s: tenants '%s' and '%s' share a key", what, s->t[i].name,
                                      s->t[j].name);
            for (size_t a = 0; rc == BR_OK && a < s->t[i].nadapters; a++)
                for (size_t b = 0; rc == BR_OK && b < s->t[j].nadapters; b++)
                    if (!strcmp(s->t[i].adapters[a], s->t[j].adapters[b]))
                        rc = br_error(BR_EFORMAT, "%s: adapter '%s' is owned by both '%s' and '%s'", what,
                                      s->t[i].adapters[a], s->t[i].name, s->t[j].name);
        }
    json_decref(root);
    if (rc != BR_OK) {
        br_tenants_free(s);
        return rc;
    }
    *out = s;
    return BR_OK;
}

br_status br_tenants_load(br_tenants_t **out, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    BR_TRY(br_read_file(path, &text, &len));
    br_status rc = br_tenants_parse(out, text, len, path);
    free(text);
    return rc;
}

bool br_tenants_is_open(const br_tenants_t *t) { return t->open; }
size_t br_tenants_count(const br_tenants_t *t) { return t->n; }
br_tenant_t *br_tenants_get(br_tenants_t *t, size_t i) { return i < t->n ? &t->t[i] : NULL; }

/* Constant-time equality for equal lengths (the length itself is not secret). */
static bool key_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb) return false;
    unsigned char d = 0;
    for (size_t i = 0; i < la; i++) d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

br_tenant_t *br_tenants_auth(br_tenants_t *t, const char *authorization)
{
    if (t->open) return &t->t[0];
    if (!authorization) return NULL;
    const char *p = authorization;
    if (strncasecmp(p, "Bearer ", 7)) return NULL;
    p += 7;
    while (*p == ' ') p++;
    br_tenant_t *found = NULL;
    for (size_t i = 0; i < t->n; i++)
        for (size_t k = 0; k < t->t[i].nkeys; k++)
            if (key_equal(p, t->t[i].keys[k])) found = &t->t[i];
    return found;
}

const br_tenant_t *br_tenants_owner(const br_tenants_t *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        for (size_t a = 0; a < t->t[i].nadapters; a++)
            if (!strcmp(t->t[i].adapters[a], name)) return &t->t[i];
    return NULL;
}

bool br_tenants_may_use(const br_tenants_t *t, const br_tenant_t *tenant, const char *name)
{
    const br_tenant_t *owner = br_tenants_owner(t, name);
    return !owner || owner == tenant;
}

static void refill(br_tenant_t *t, double now)
{
    if (t->last_refill < 0) t->last_refill = now;
    double dt = now - t->last_refill;
    if (dt <= 0) return;
    t->last_refill = now;
    if (t->rps > 0) {
        double cap = t->rps > 1 ? t->rps : 1;
        t->req_bucket = fmin(cap, t->req_bucket + dt * t->rps);
    }
    if (t->tpm > 0) t->tok_bucket = fmin(t->tpm, t->tok_bucket + dt * t->tpm / 60.0);
}

br_status br_tenants_admit(br_tenants_t *s, br_tenant_t *t, double now, double prompt_tokens, int *retry_after)
{
    *retry_after = 0;
    if (t->rps <= 0 && t->tpm <= 0) return BR_OK;
    pthread_mutex_lock(&s->mu);
    refill(t, now);
    br_status rc = BR_OK;
    if (t->rps > 0 && t->req_bucket < 1) {
        *retry_after = (int)ceil((1 - t->req_bucket) / t->rps);
        rc = br_error(BR_EBUSY, "tenant '%s' is over its limit of %g requests per second", t->name, t->rps);
    } else if (t->tpm > 0 && t->tok_bucket <= 0) {
        *retry_after = (int)ceil((1 - t->tok_bucket) / (t->tpm / 60.0));
        rc = br_error(BR_EBUSY, "tenant '%s' is over its limit of %g tokens per minute", t->name, t->tpm);
    } else if (t->tpm > 0 && prompt_tokens > t->tpm) {
        rc = br_error(BR_EINVAL, "prompt of %.0f tokens exceeds tenant '%s''s %g tokens per minute", prompt_tokens,
                      t->name, t->tpm);
    } else {
        if (t->rps > 0) t->req_bucket -= 1;
        if (t->tpm > 0) t->tok_bucket -= prompt_tokens;
    }
    if (*retry_after < 1 && rc == BR_EBUSY) *retry_after = 1;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void br_tenants_charge(br_tenants_t *s, br_tenant_t *t, double now, double tokens)
{
    if (t->tpm <= 0) return;
    pthread_mutex_lock(&s->mu);
    refill(t, now);
    t->tok_bucket -= tokens;
    pthread_mutex_unlock(&s->mu);
}
