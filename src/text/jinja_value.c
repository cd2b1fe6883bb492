/* Jinja renderer: the arena, errors, UTF-8 helpers and runtime values (printing, JSON). */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "text/jinja_internal.h"

/* ---- arena ---------------------------------------------------------------------------------- */

struct jx_chunk {
    jx_chunk_t *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *jx_alloc(jx_ctx_t *c, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    jx_arena_t *a = c->arena;
    jx_chunk_t *h = a->head;
    if (!h || h->cap - h->used < n) {
        size_t max = c->max_arena ? c->max_arena : JX_MAX_ARENA;
        if (n > max || a->total + n > max)
            jx_fail(c, BR_ENOMEM, (size_t)-1, "template needs more than %zu MiB of memory", max >> 20);
        size_t cap = n > 60000 ? n : 60000;
        jx_chunk_t *k = malloc(sizeof *k + cap);
        if (!k) jx_fail(c, BR_ENOMEM, (size_t)-1, "out of memory");
        k->next = h;
        k->used = 0;
        k->cap = cap;
        a->head = h = k;
        a->total += cap;
    }
    void *p = h->data + h->used;
    h->used += n;
    memset(p, 0, n);
    return p;
}

char *jx_strndup(jx_ctx_t *c, const char *s, size_t n)
{
    char *p = jx_alloc(c, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void jx_arena_free(jx_arena_t *a)
{
    for (jx_chunk_t *k = a->head; k;) {
        jx_chunk_t *nx = k->next;
        free(k);
        k = nx;
    }
    a->head = NULL;
    a->total = 0;
}

void jx_fail(jx_ctx_t *c, int status, size_t pos, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (pos != (size_t)-1 && c->orig && c->origin && pos <= c->src_len) {
        size_t line = 1, col = 1, at = c->origin[pos];
        for (size_t i = 0; i < at && i < c->orig_len; i++) {
            if (c->orig[i] == '\n') {
                line++;
                col = 1;
            } else if (((unsigned char)c->orig[i] & 0xC0) != 0x80) col++;
        }
        br_error((br_status)status, "chat template line %zu, column %zu: %s", line, col, msg);
    } else br_error((br_status)status, "chat template: %s", msg);
    c->status = status;
    longjmp(c->jmp, 1);
}

/* ---- buffers and UTF-8 -------------------------------------------------------------------- */

void jx_buf_put(jx_ctx_t *c, jx_buf_t *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *ns = jx_alloc(c, nc); /* old buffer stays in the arena until the end */
        if (b->n) memcpy(ns, b->s, b->n);
        b->s = ns;
        b->cap = nc;
    }
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

void jx_buf_puts(jx_ctx_t *c, jx_buf_t *b, const char *s) { jx_buf_put(c, b, s, strlen(s)); }

uint32_t jx_utf8_next(const char *str, size_t n, size_t *len)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned c0 = s[0];
    *len = 1;
    if (c0 < 0x80) return c0;
    size_t k = c0 >= 0xF0 && c0 <= 0xF4 ? 4 : c0 >= 0xE0 ? 3 : c0 >= 0xC2 && c0 < 0xE0 ? 2 : 0;
    if (!k || k > n) return 0x110000 + c0;
    uint32_t cp = c0 & (0x7F >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0x110000 + c0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp < 0xE000))) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0x110000 + c0;
    *len = k;
    return cp;
}

int jx_is_space(uint32_t cp)
{
    if (cp <= 32) return cp == 32 || (cp >= 9 && cp <= 13);
    return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

/* ---- values ------------------------------------------------------------------------------- */

static jx_val_t v_undef = {.kind = V_UNDEF}, v_none = {.kind = V_NONE};
static jx_val_t v_true = {.kind = V_BOOL, .b = 1}, v_false = {.kind = V_BOOL, .b = 0};

jx_val_t *jx_undef(void) { return &v_undef; }
jx_val_t *jx_none(void) { return &v_none; }
jx_val_t *jx_bool(int b) { return b ? &v_true : &v_false; }

jx_val_t *jx_int(jx_ctx_t *c, int64_t i)
{
    jx_val_t *v = jx_alloc(c, sizeof *v);
    v->kind = V_INT;
    v->i = i;
    return v;
}

jx_val_t *jx_float(jx_ctx_t *c, double f)
{
    jx_val_t *v = jx_alloc(c, sizeof *v);
    v->kind = V_FLOAT;
    v->f = f;
    return v;
}

jx_val_t *jx_str_own(jx_ctx_t *c, char *s, size_t n)
{
    jx_val_t *v = jx_alloc(c, sizeof *v);
    v->kind = V_STR;
    v->s = s;
    v->n = n;
    return v;
}

jx_val_t *jx_str(jx_ctx_t *c, const char *s, size_t n) { return jx_str_own(c, jx_strndup(c, s, n), n); }

jx_val_t *jx_array(jx_ctx_t *c, size_t n)
{
    jx_val_t *v = jx_alloc(c, sizeof *v);
    v->kind = V_ARRAY;
    v->n = n;
    if (n > JX_MAX_ARENA / sizeof *v->items) jx_fail(c, BR_ENOMEM, (size_t)-1, "list of %zu items is too long", n);
    v->items = jx_alloc(c, (n ? n : 1) * sizeof *v->items);
    for (size_t i = 0; i < n; i++) v->items[i] = &v_undef;
    return v;
}

jx_val_t *jx_object(jx_ctx_t *c, jx_vkind_t kind)
{
    jx_val_t *v = jx_alloc(c, sizeof *v);
    v->kind = kind;
    v->obj = jx_alloc(c, sizeof *v->obj);
    return v;
}

jx_val_t *jx_func(jx_ctx_t *c, jx_func_t fn, jx_val_t *self)
{
    jx_val_t *v = jx_alloc(c, sizeof *v);
    v->kind = V_FUNC;
    v->fn = fn;
    v->self = self;
    return v;
}

jx_val_t *jx_obj_get(const jx_obj_t *o, const char *k, size_t kn)
{
    for (size_t i = 0; i < o->n; i++)
        if (o->klen[i] == kn && !memcmp(o->keys[i], k, kn)) return o->vals[i];
    return NULL;
}

void jx_obj_set(jx_ctx_t *c, jx_obj_t *o, const char *k, size_t kn, jx_val_t *v)
{
    for (size_t i = 0; i < o->n; i++)
        if (o->klen[i] == kn && !memcmp(o->keys[i], k, kn)) {
            o->vals[i] = v;
            return;
        }
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 8;
        const char **nk = jx_alloc(c, nc * sizeof *nk);
        size_t *nl = jx_alloc(c, nc * sizeof *nl);
        jx_val_t **nv = jx_alloc(c, nc * sizeof *nv);
        if (o->n) {
            memcpy(nk, o->keys, o->n * sizeof *nk);
            memcpy(nl, o->klen, o->n * sizeof *nl);
            memcpy(nv, o->vals, o->n * sizeof *nv);
        }
        o->keys = nk;
        o->klen = nl;
        o->vals = nv;
        o->cap = nc;
    }
    o->keys[o->n] = k;
    o->klen[o->n] = kn;
    o->vals[o->n] = v;
    o->n++;
}

int jx_truthy(const jx_val_t *v)
{
    switch (v->kind) {
    case V_UNDEF: case V_NONE: return 0;
    case V_BOOL: return v->b;
    case V_INT: return v->i != 0;
    case V_FLOAT: return v->f != 0 && !isnan(v->f);
    case V_STR: case V_ARRAY: return v->n > 0;
    case V_OBJECT: return v->obj->n > 0;
    case V_NS: case V_FUNC: return 1;
    }
    return 0;
}

const char *jx_kind_name(jx_vkind_t k)
{
    static const char *names[] = {"undefined", "none", "boolean", "integer", "float", "string",
                                  "list", "mapping", "namespace", "function"};
    return names[k];
}

static int numeric(const jx_val_t *v, double *x)
{
    if (v->kind == V_INT) *x = (double)v->i;
    else if (v->kind == V_FLOAT) *x = v->f;
    else if (v->kind == V_BOOL) *x = v->b;
    else return 0;
    return 1;
}

int jx_equal(const jx_val_t *a, const jx_val_t *b)
{
    double x, y;
    if ((a->kind == V_UNDEF || a->kind == V_NONE) && (b->kind == V_UNDEF || b->kind == V_NONE)) return 1;
    if (a->kind == V_STR && b->kind == V_STR) return a->n == b->n && !memcmp(a->s, b->s, a->n);
    if (numeric(a, &x) && numeric(b, &y)) return x == y;
    if (a->kind == b->kind && (a->kind == V_ARRAY || a->kind == V_OBJECT || a->kind == V_NS || a->kind == V_FUNC))
        return a == b;
    return 0;
}

int jx_strict_equal(const jx_val_t *a, const jx_val_t *b)
{
    double x, y;
    if (a->kind == V_STR || b->kind == V_STR) return a->kind == b->kind && jx_equal(a, b);
    if (a->kind == V_BOOL || b->kind == V_BOOL) return a->kind == b->kind && a->b == b->b;
    if (numeric(a, &x) && numeric(b, &y)) return x == y;
    if (a->kind == V_UNDEF || a->kind == V_NONE || b->kind == V_UNDEF || b->kind == V_NONE) return a->kind == b->kind;
    return a == b;
}

/* ---- printing ---------------------------------------------------------------------------- */

void jx_number_js(jx_ctx_t *c, jx_buf_t *out, double f)
{
    if (isnan(f)) return jx_buf_puts(c, out, "NaN");
    if (isinf(f)) return jx_buf_puts(c, out, f < 0 ? "-Infinity" : "Infinity");
    if (f == 0) return jx_buf_puts(c, out, "0");
    /* shortest digits that round-trip, then JavaScript's layout of them */
    char tmp[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    char digits[20];
    int nd = 0, neg = tmp[0] == '-';
    const char *p = tmp + neg;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    int exp10 = atoi(p + 1); /* value = 0.d1d2... * 10^(exp10 + 1) */
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int k = nd, n = exp10 + 1;
    char s[64];
    int m = 0;
    if (neg) s[m++] = '-';
    if (k <= n && n <= 21) {
        for (int i = 0; i < k; i++) s[m++] = digits[i];
        for (int i = k; i < n; i++) s[m++] = '0';
    } else if (0 < n && n <= 21) {
        for (int i = 0; i < n; i++) s[m++] = digits[i];
        s[m++] = '.';
        for (int i = n; i < k; i++) s[m++] = digits[i];
    } else if (-6 < n && n <= 0) {
        s[m++] = '0';
        s[m++] = '.';
        for (int i = 0; i < -n; i++) s[m++] = '0';
        for (int i = 0; i < k; i++) s[m++] = digits[i];
    } else {
        s[m++] = digits[0];
        if (k > 1) {
            s[m++] = '.';
            for (int i = 1; i < k; i++) s[m++] = digits[i];
        }
        m += snprintf(s + m, sizeof s - (size_t)m, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
    jx_buf_put(c, out, s, (size_t)m);
}

void jx_print(jx_ctx_t *c, jx_buf_t *out, const jx_val_t *v)
{
    char tmp[32];
    switch (v->kind) {
    case V_UNDEF: case V_NONE: return;
    case V_BOOL: return jx_buf_puts(c, out, v->b ? "true" : "false");
    case V_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v->i);
        return jx_buf_puts(c, out, tmp);
    case V_FLOAT:
        if (v->f == 0 && signbit(v->f)) return jx_buf_puts(c, out, "-0.0");
        jx_number_js(c, out, v->f);
        if (isfinite(v->f) && v->f == floor(v->f) && fabs(v->f) < 1e21) jx_buf_puts(c, out, ".0");
        return;
    case V_STR: return jx_buf_put(c, out, v->s, v->n);
    case V_ARRAY: case V_OBJECT: case V_NS: {
        jx_json_opts_t o = {0};
        return jx_tojson(c, out, v, &o, 0);
    }
    case V_FUNC: return jx_buf_puts(c, out, "[function]");
    }
}

static void put_json_str(jx_ctx_t *c, jx_buf_t *out, const char *s, size_t n, int ascii)
{
    jx_buf_put(c, out, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        char esc[16];
        const char *e = NULL;
        size_t len = 1;
        if (ch == '"') e = "\\\"";
        else if (ch == '\\') e = "\\\\";
        else if (ch == '\n') e = "\\n";
        else if (ch == '\r') e = "\\r";
        else if (ch == '\t') e = "\\t";
        else if (ch == '\b') e = "\\b";
        else if (ch == '\f') e = "\\f";
        else if (ch < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            e = esc;
        } else if (ch >= 0x7F && (ascii || ch >= 0x80)) {
            uint32_t cp = jx_utf8_next(s + i, n - i, &len);
            if (cp >= 0x110000) cp = 0xFFFD; /* invalid byte: JSON holds U+FFFD */
            if (ascii && cp >= 0x10000) {
                snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF));
                e = esc;
            } else if (ascii) {
                snprintf(esc, sizeof esc, "\\u%04x", cp);
                e = esc;
            } else if (cp == 0xFFFD && len == 1) {
                e = "\xEF\xBF\xBD";
            }
        }
        if (e) {
            jx_buf_put(c, out, s + i - run, run);
            run = 0;
            jx_buf_puts(c, out, e);
        } else run += len;
        i += len;
    }
    jx_buf_put(c, out, s + n - run, run);
    jx_buf_put(c, out, "\"", 1);
}

typedef struct {
    const char *k;
    size_t kn;
    const jx_val_t *v;
} kv_t;

static int kv_cmp(const void *pa, const void *pb)
{
    const kv_t *a = pa, *b = pb;
    size_t n = a->kn < b->kn ? a->kn : b->kn;
    int r = memcmp(a->k, b->k, n);
    return r ? r : (a->kn > b->kn) - (a->kn < b->kn);
}

void jx_tojson(jx_ctx_t *c, jx_buf_t *out, const jx_val_t *v, const jx_json_opts_t *o, int depth)
{
    if (depth > JX_MAX_DEPTH) jx_fail(c, BR_ERANGE, (size_t)-1, "tojson: value nested deeper than %d", JX_MAX_DEPTH);
    const char *isep = o->item_sep ? o->item_sep : o->indent ? "," : ", ";
    const char *ksep = o->key_sep ? o->key_sep : ": ";
    switch (v->kind) {
    case V_UNDEF: return jx_buf_puts(c, out, o->undefined_as_null ? "null" : "undefined");
    case V_NONE: return jx_buf_puts(c, out, "null");
    case V_BOOL: return jx_buf_puts(c, out, v->b ? "true" : "false");
    case V_INT: case V_FLOAT: {
        if (v->kind == V_FLOAT && !isfinite(v->f)) return jx_buf_puts(c, out, "null");
        if (v->kind == V_FLOAT) return jx_number_js(c, out, v->f);
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%lld", (long long)v->i);
        return jx_buf_puts(c, out, tmp);
    }
    case V_STR: return put_json_str(c, out, v->s, v->n, o->ensure_ascii);
    case V_FUNC: jx_fail(c, BR_EINVAL, (size_t)-1, "tojson: cannot convert a function to JSON");
    default: break;
    }
    int arr = v->kind == V_ARRAY;
    size_t n = arr ? v->n : v->obj->n;
    jx_buf_put(c, out, arr ? "[" : "{", 1);
    kv_t *kv = NULL;
    if (!arr) {
        kv = jx_alloc(c, (n ? n : 1) * sizeof *kv);
        for (size_t i = 0; i < n; i++) kv[i] = (kv_t){v->obj->keys[i], v->obj->klen[i], v->obj->vals[i]};
        if (o->sort_keys) qsort(kv, n, sizeof *kv, kv_cmp);
    }
    for (size_t i = 0; i < n; i++) {
        if (i) jx_buf_puts(c, out, isep);
        if (o->indent) {
            jx_buf_put(c, out, "\n", 1);
            for (int d = 0; d < (depth + 1) * o->indent; d++) jx_buf_put(c, out, " ", 1);
        }
        if (arr) jx_tojson(c, out, v->items[i], o, depth + 1);
        else {
            put_json_str(c, out, kv[i].k, kv[i].kn, o->ensure_ascii);
            jx_buf_puts(c, out, ksep);
            jx_tojson(c, out, kv[i].v, o, depth + 1);
        }
    }
    if (o->indent && n) {
        jx_buf_put(c, out, "\n", 1);
        for (int d = 0; d < depth * o->indent; d++) jx_buf_put(c, out, " ", 1);
    }
    jx_buf_put(c, out, arr ? "]" : "}", 1);
}

jx_val_t *jx_from_json(jx_ctx_t *c, const void *jv, int depth)
{
    const json_t *j = jv;
    if (depth > JX_MAX_DEPTH) jx_fail(c, BR_ERANGE, (size_t)-1, "JSON input nested deeper than %d", JX_MAX_DEPTH);
    if (!j) return jx_undef();
    switch (json_typeof(j)) {
    case JSON_NULL: return jx_none();
    case JSON_TRUE: return jx_bool(1);
    case JSON_FALSE: return jx_bool(0);
    case JSON_INTEGER: return jx_int(c, json_integer_value(j));
    case JSON_REAL: {
        double f = json_real_value(j); /* JavaScript has one number type: 2.0 is an integer */
        if (f == floor(f) && fabs(f) < 9007199254740992.0) return jx_int(c, (int64_t)f);
        return jx_float(c, f);
    }
    case JSON_STRING: return jx_str(c, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        jx_val_t *a = jx_array(c, json_array_size(j));
        for (size_t i = 0; i < a->n; i++) a->items[i] = jx_from_json(c, json_array_get(j, i), depth + 1);
        return a;
    }
    case JSON_OBJECT: {
        jx_val_t *o = jx_object(c, V_OBJECT);
        const char *k;
        json_t *x;
        /* jansson keeps insertion order (JSON_PRESERVE_ORDER is the default since 2.8) */
        json_object_foreach((json_t *)j, k, x) {
            size_t kn = strlen(k);
            jx_obj_set(c, o->obj, jx_strndup(c, k, kn), kn, jx_from_json(c, x, depth + 1));
        }
        return o;
    }
    }
    return jx_undef();
}
