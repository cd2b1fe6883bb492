/* Jinja renderer: built-in functions, methods, filters and tests.
 *
 * Semantics follow @huggingface/jinja (the renderer transformers.js uses) wherever it renders;
 * where it refuses something Python's Jinja accepts (e.g. `length` of undefined, `strip` with
 * characters) braid follows Python.  Case mapping (upper/lower/title) is ASCII only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/status.h"
#include "text/jinja_internal.h"

static jx_ctx_t *C(jx_eval_t *e) { return e->c; }

static jx_val_t *need_str(jx_eval_t *e, jx_val_t *v, const char *what, size_t pos)
{
    if (!v || v->kind != V_STR) jx_fail(e->c, BR_EINVAL, pos, "%s must be a string, not %s", what, v ? jx_kind_name(v->kind) : "missing");
    return v;
}

jx_val_t *jx_str_chars(jx_ctx_t *c, const jx_val_t *s)
{
    size_t n = 0, len;
    for (size_t i = 0; i < s->n; i += len, n++) jx_utf8_next(s->s + i, s->n - i, &len);
    jx_val_t *a = jx_array(c, n);
    n = 0;
    for (size_t i = 0; i < s->n; i += len) {
        jx_utf8_next(s->s + i, s->n - i, &len);
        a->items[n++] = jx_str(c, s->s + i, len);
    }
    return a;
}

static size_t cp_count(const jx_val_t *s)
{
    size_t n = 0, len;
    for (size_t i = 0; i < s->n; i += len, n++) jx_utf8_next(s->s + i, s->n - i, &len);
    return n;
}

static jx_val_t *join_strings(jx_ctx_t *c, jx_val_t **items, size_t n, const char *sep, size_t sepn)
{
    jx_buf_t b = {0};
    jx_buf_put(c, &b, "", 0);
    for (size_t i = 0; i < n; i++) {
        if (i) jx_buf_put(c, &b, sep, sepn);
        const jx_val_t *v = items[i];
        if (v->kind == V_FLOAT) jx_number_js(c, &b, v->f); /* JavaScript's String(number) */
        else jx_print(c, &b, v);
    }
    return jx_str_own(c, b.s, b.n);
}

/* ---- strings ---- */

static jx_val_t *case_map(jx_eval_t *e, const jx_val_t *s, int mode) /* 0 upper, 1 lower, 2 title, 3 capitalize */
{
    char *o = jx_strndup(C(e), s->s, s->n);
    for (size_t i = 0; i < s->n; i++) {
        unsigned char ch = (unsigned char)o[i];
        int word_prev = i > 0 && ((o[i - 1] >= 'a' && o[i - 1] <= 'z') || (o[i - 1] >= 'A' && o[i - 1] <= 'Z') ||
                                  (o[i - 1] >= '0' && o[i - 1] <= '9') || o[i - 1] == '_');
        int up = mode == 0 || (mode == 2 && !word_prev) || (mode == 3 && i == 0);
        if (up && ch >= 'a' && ch <= 'z') o[i] = (char)(ch - 32);
        else if (mode == 1 && ch >= 'A' && ch <= 'Z') o[i] = (char)(ch + 32);
    }
    return jx_str_own(C(e), o, s->n);
}

static int in_chars(uint32_t cp, const jx_val_t *chars)
{
    if (!chars || chars->kind != V_STR) return jx_is_space(cp);
    size_t len;
    for (size_t i = 0; i < chars->n; i += len)
        if (jx_utf8_next(chars->s + i, chars->n - i, &len) == cp) return 1;
    return 0;
}

/* which: 1 = left, 2 = right, 3 = both.  chars NULL or none: whitespace. */
static jx_val_t *strip(jx_eval_t *e, const jx_val_t *s, int which, const jx_val_t *chars)
{
    size_t a = 0, z = s->n, len;
    if (which & 1)
        while (a < z && in_chars(jx_utf8_next(s->s + a, z - a, &len), chars)) a += len;
    if (which & 2)
        while (z > a) {
            size_t back = 1;
            while (back < z - a && back < 4 && ((unsigned char)s->s[z - back] & 0xC0) == 0x80) back++;
            uint32_t cp = jx_utf8_next(s->s + z - back, back, &len);
            if (len != back) back = 1, cp = 0x110000;
            if (!in_chars(cp, chars)) break;
            z -= back;
        }
    return jx_str(C(e), s->s + a, z - a);
}

static int affix(const jx_val_t *s, const jx_val_t *p, int end)
{
    if (p->n > s->n) return 0;
    return !memcmp(s->s + (end ? s->n - p->n : 0), p->s, p->n);
}

static jx_val_t *starts_ends(jx_eval_t *e, const jx_val_t *s, const jx_val_t *p, int end, size_t pos)
{
    if (!p) jx_fail(C(e), BR_EINVAL, pos, "%s() needs an argument", end ? "endswith" : "startswith");
    if (p->kind == V_STR) return jx_bool(affix(s, p, end));
    if (p->kind == V_ARRAY) {
        for (size_t i = 0; i < p->n; i++) {
            need_str(e, p->items[i], "a startswith/endswith tuple element", pos);
            if (affix(s, p->items[i], end)) return jx_bool(1);
        }
        return jx_bool(0);
    }
    jx_fail(C(e), BR_EINVAL, pos, "%s() takes a string or a tuple of strings", end ? "endswith" : "startswith");
}

static jx_val_t *split(jx_eval_t *e, const jx_val_t *s, const jx_val_t *sep, const jx_val_t *maxv, size_t pos)
{
    int64_t max = -1;
    if (maxv && maxv->kind != V_INT) jx_fail(C(e), BR_EINVAL, pos, "split(): maxsplit must be an integer");
    if (maxv) max = maxv->i;
    jx_val_t **parts = jx_alloc(C(e), (s->n + 2) * sizeof *parts);
    size_t np = 0, len;
    if (!sep || sep->kind == V_NONE || sep->kind == V_UNDEF) {
        size_t i = 0;
        for (;;) {
            while (i < s->n && jx_is_space(jx_utf8_next(s->s + i, s->n - i, &len))) i += len;
            if (i >= s->n) break;
            if (max >= 0 && (int64_t)np >= max) {
                parts[np++] = jx_str(C(e), s->s + i, s->n - i);
                break;
            }
            size_t j = i;
            while (j < s->n && !jx_is_space(jx_utf8_next(s->s + j, s->n - j, &len))) j += len;
            parts[np++] = jx_str(C(e), s->s + i, j - i);
            i = j;
        }
    } else {
        need_str(e, (jx_val_t *)sep, "split(): the separator", pos);
        if (!sep->n) jx_fail(C(e), BR_EINVAL, pos, "split(): empty separator");
        size_t i = 0;
        for (;;) {
            const char *hit = max >= 0 && (int64_t)np >= max ? NULL : memmem(s->s + i, s->n - i, sep->s, sep->n);
            if (!hit) {
                parts[np++] = jx_str(C(e), s->s + i, s->n - i);
                break;
            }
            parts[np++] = jx_str(C(e), s->s + i, (size_t)(hit - (s->s + i)));
            i = (size_t)(hit - s->s) + sep->n;
        }
    }
    jx_val_t *a = jx_array(C(e), np);
    memcpy(a->items, parts, np * sizeof *parts);
    return a;
}

static jx_val_t *replace(jx_eval_t *e, const jx_val_t *s, const jx_val_t *from, const jx_val_t *to, const jx_val_t *count, size_t pos)
{
    need_str(e, (jx_val_t *)from, "replace(): old", pos);
    need_str(e, (jx_val_t *)to, "replace(): new", pos);
    int64_t left = -1;
    if (count && count->kind == V_INT) left = count->i;
    else if (count && count->kind != V_NONE) jx_fail(C(e), BR_EINVAL, pos, "replace(): count must be an integer or none");
    jx_buf_t b = {0};
    jx_buf_put(C(e), &b, "", 0);
    size_t i = 0, len;
    if (from->n == 0) { /* insert between code points, at both ends too */
        for (;;) {
            if (left != 0) jx_buf_put(C(e), &b, to->s, to->n), left -= left > 0;
            if (i >= s->n) break;
            jx_utf8_next(s->s + i, s->n - i, &len);
            jx_buf_put(C(e), &b, s->s + i, len);
            i += len;
        }
        return jx_str_own(C(e), b.s, b.n);
    }
    while (i < s->n) {
        const char *hit = left == 0 ? NULL : memmem(s->s + i, s->n - i, from->s, from->n);
        if (!hit) break;
        jx_buf_put(C(e), &b, s->s + i, (size_t)(hit - (s->s + i)));
        jx_buf_put(C(e), &b, to->s, to->n);
        i = (size_t)(hit - s->s) + from->n;
        left -= left > 0;
    }
    jx_buf_put(C(e), &b, s->s + i, s->n - i);
    return jx_str_own(C(e), b.s, b.n);
}

/* ---- calls ---- */

static jx_val_t *range(jx_eval_t *e, const jx_args_t *a, size_t pos)
{
    int64_t v[3] = {0, 0, 1};
    if (a->npos < 1 || a->npos > 3) jx_fail(C(e), BR_EINVAL, pos, "range() takes 1 to 3 integers");
    for (size_t i = 0; i < a->npos; i++) {
        if (a->pos[i]->kind != V_INT) jx_fail(C(e), BR_EINVAL, pos, "range() arguments must be integers");
        v[a->npos == 1 ? 1 : i] = a->pos[i]->i;
    }
    if (v[2] == 0) jx_fail(C(e), BR_EINVAL, pos, "range() step must not be zero");
    double cnt = ((double)v[1] - (double)v[0]) / (double)v[2];
    size_t n = cnt > 0 ? (size_t)(cnt + 0.999999) : 0;
    if (n > 10000000) jx_fail(C(e), BR_ERANGE, pos, "range() of %zu items is too long", n);
    jx_val_t *r = jx_array(C(e), n);
    for (size_t i = 0; i < n; i++) r->items[i] = jx_int(C(e), v[0] + (int64_t)i * v[2]);
    return r;
}

static jx_val_t *namespace_new(jx_eval_t *e, const jx_args_t *a, size_t pos)
{
    jx_val_t *ns = jx_object(C(e), V_NS);
    if (a->npos > 1) jx_fail(C(e), BR_EINVAL, pos, "namespace() takes at most one positional argument");
    if (a->npos == 1) {
        const jx_val_t *src = a->pos[0];
        if (src->kind != V_OBJECT) jx_fail(C(e), BR_EINVAL, pos, "namespace() positional argument must be a mapping");
        for (size_t i = 0; i < src->obj->n; i++) jx_obj_set(C(e), ns->obj, src->obj->keys[i], src->obj->klen[i], src->obj->vals[i]);
    }
    for (size_t i = 0; i < a->nkw; i++) jx_obj_set(C(e), ns->obj, a->kname[i], strlen(a->kname[i]), a->kval[i]);
    return ns;
}

static jx_val_t *call_method(jx_eval_t *e, const jx_val_t *fn, const jx_args_t *a, size_t pos)
{
    jx_val_t *self = fn->self;
    jx_val_t *a0 = jx_arg(a, 0, NULL), *a1 = jx_arg(a, 1, NULL);
    switch (fn->fn) {
    case F_S_UPPER: return case_map(e, self, 0);
    case F_S_LOWER: return case_map(e, self, 1);
    case F_S_TITLE: return case_map(e, self, 2);
    case F_S_CAPITALIZE: return case_map(e, self, 3);
    case F_S_STRIP: return strip(e, self, 3, a0);
    case F_S_LSTRIP: return strip(e, self, 1, a0);
    case F_S_RSTRIP: return strip(e, self, 2, a0);
    case F_S_STARTSWITH: return starts_ends(e, self, a0, 0, pos);
    case F_S_ENDSWITH: return starts_ends(e, self, a0, 1, pos);
    case F_S_SPLIT: return split(e, self, jx_arg(a, 0, "sep"), jx_arg(a, 1, "maxsplit"), pos);
    case F_S_REPLACE:
        if (!a0 || !a1) jx_fail(C(e), BR_EINVAL, pos, "replace() needs two arguments");
        return replace(e, self, a0, a1, jx_arg(a, 2, "count"), pos);
    case F_O_GET: {
        need_str(e, a0, "get(): the key", pos);
        jx_val_t *v = jx_obj_get(self->obj, a0->s, a0->n);
        return v ? v : a1 ? a1 : jx_none();
    }
    case F_O_ITEMS: case F_O_KEYS: case F_O_VALUES: {
        jx_val_t *r = jx_array(C(e), self->obj->n);
        for (size_t i = 0; i < r->n; i++) {
            jx_val_t *k = jx_str_own(C(e), (char *)self->obj->keys[i], self->obj->klen[i]);
            if (fn->fn == F_O_KEYS) r->items[i] = k;
            else if (fn->fn == F_O_VALUES) r->items[i] = self->obj->vals[i];
            else {
                r->items[i] = jx_array(C(e), 2);
                r->items[i]->items[0] = k;
                r->items[i]->items[1] = self->obj->vals[i];
            }
        }
        return r;
    }
    default: jx_fail(C(e), BR_EINVAL, pos, "not a method");
    }
}

jx_val_t *jx_call(jx_eval_t *e, const jx_val_t *fn, const jx_args_t *a, size_t pos)
{
    if (fn->kind != V_FUNC) jx_fail(C(e), BR_EINVAL, pos, "cannot call a %s (unknown function or method?)", jx_kind_name(fn->kind));
    switch (fn->fn) {
    case F_RAISE: {
        jx_buf_t b = {0};
        jx_buf_put(C(e), &b, "", 0);
        for (size_t i = 0; i < a->npos; i++) jx_print(C(e), &b, a->pos[i]);
        jx_fail(C(e), BR_EINVAL, pos, "raise_exception: %s", b.s);
    }
    case F_RANGE: return range(e, a, pos);
    case F_NAMESPACE: return namespace_new(e, a, pos);
    case F_STRFTIME_NOW: {
        jx_val_t *f = need_str(e, jx_arg(a, 0, NULL), "strftime_now(): the format", pos);
        char out[256];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        size_t n = strftime(out, sizeof out, f->s, &tm);
        return jx_str(C(e), out, n);
    }
    default: return call_method(e, fn, a, pos);
    }
}

/* ---- member access ---- */

static jx_val_t *method(jx_eval_t *e, jx_val_t *obj, const jx_val_t *name)
{
    static const struct { const char *name; jx_func_t fn; } smeth[] = {
        {"upper", F_S_UPPER}, {"lower", F_S_LOWER}, {"strip", F_S_STRIP}, {"lstrip", F_S_LSTRIP},
        {"rstrip", F_S_RSTRIP}, {"title", F_S_TITLE}, {"capitalize", F_S_CAPITALIZE},
        {"startswith", F_S_STARTSWITH}, {"endswith", F_S_ENDSWITH}, {"split", F_S_SPLIT}, {"replace", F_S_REPLACE}},
        ometh[] = {{"get", F_O_GET}, {"items", F_O_ITEMS}, {"keys", F_O_KEYS}, {"values", F_O_VALUES}};
    if (obj->kind == V_STR || obj->kind == V_ARRAY) {
        if (name->n == 6 && !memcmp(name->s, "length", 6)) return jx_int(C(e), (int64_t)(obj->kind == V_STR ? cp_count(obj) : obj->n));
    }
    if (obj->kind == V_STR)
        for (size_t i = 0; i < sizeof smeth / sizeof *smeth; i++)
            if (!strcmp(name->s, smeth[i].name)) return jx_func(C(e), smeth[i].fn, obj);
    if (obj->kind == V_OBJECT)
        for (size_t i = 0; i < sizeof ometh / sizeof *ometh; i++)
            if (!strcmp(name->s, ometh[i].name)) return jx_func(C(e), ometh[i].fn, obj);
    return jx_undef();
}

jx_val_t *jx_member(jx_eval_t *e, jx_val_t *obj, jx_val_t *prop, size_t pos)
{
    if (obj->kind == V_OBJECT || obj->kind == V_NS) {
        if (prop->kind != V_STR) jx_fail(C(e), BR_EINVAL, pos, "a mapping is indexed by strings, not a %s", jx_kind_name(prop->kind));
        jx_val_t *v = jx_obj_get(obj->obj, prop->s, prop->n);
        return v ? v : method(e, obj, prop);
    }
    if ((obj->kind == V_ARRAY || obj->kind == V_STR) && prop->kind == V_INT) {
        jx_val_t *items = obj->kind == V_STR ? jx_str_chars(C(e), obj) : obj;
        int64_t i = prop->i < 0 ? prop->i + (int64_t)items->n : prop->i;
        return i >= 0 && (uint64_t)i < items->n ? items->items[i] : jx_undef();
    }
    if (prop->kind != V_STR) jx_fail(C(e), BR_EINVAL, pos, "cannot index a %s with a %s", jx_kind_name(obj->kind), jx_kind_name(prop->kind));
    return method(e, obj, prop);
}

jx_val_t *jx_slice(jx_eval_t *e, jx_val_t *v, jx_val_t *start, jx_val_t *stop, jx_val_t *stepv, size_t pos)
{
    if (v->kind != V_ARRAY && v->kind != V_STR) jx_fail(C(e), BR_EINVAL, pos, "cannot slice a %s", jx_kind_name(v->kind));
    jx_val_t *bound[3] = {start, stop, stepv};
    for (int k = 0; k < 3; k++)
        if (bound[k]->kind != V_INT && bound[k]->kind != V_UNDEF && bound[k]->kind != V_NONE)
            jx_fail(C(e), BR_EINVAL, pos, "slice bounds must be integers");
    jx_val_t *items = v->kind == V_STR ? jx_str_chars(C(e), v) : v;
    int64_t len = (int64_t)items->n, step = stepv->kind == V_INT ? stepv->i : 1, a, z;
    if (step == 0) jx_fail(C(e), BR_EINVAL, pos, "slice step must not be zero");
    int has_a = start->kind == V_INT, has_z = stop->kind == V_INT;
    if (step > 0) {
        a = !has_a ? 0 : start->i < 0 ? (start->i + len > 0 ? start->i + len : 0) : (start->i < len ? start->i : len);
        z = !has_z ? len : stop->i < 0 ? (stop->i + len > 0 ? stop->i + len : 0) : (stop->i < len ? stop->i : len);
    } else {
        a = !has_a ? len - 1 : start->i < 0 ? (start->i + len > -1 ? start->i + len : -1) : (start->i < len - 1 ? start->i : len - 1);
        z = !has_z ? -1 : stop->i < -1 ? (stop->i + len > -1 ? stop->i + len : -1) : (stop->i < len - 1 ? stop->i : len - 1);
    }
    size_t n = 0;
    for (int64_t i = a; step > 0 ? i < z : i > z; i += step) n++;
    jx_val_t *r = jx_array(C(e), n);
    n = 0;
    for (int64_t i = a; step > 0 ? i < z : i > z; i += step) r->items[n++] = items->items[i];
    return v->kind == V_STR ? join_strings(C(e), r->items, r->n, "", 0) : r;
}

/* ---- filters ---- */

static int cmp_vals(jx_eval_t *e, const jx_val_t *a, const jx_val_t *b, int case_sensitive)
{
    if ((a->kind == V_INT || a->kind == V_FLOAT || a->kind == V_BOOL) && (b->kind == V_INT || b->kind == V_FLOAT || b->kind == V_BOOL)) {
        double x = a->kind == V_INT ? (double)a->i : a->kind == V_FLOAT ? a->f : a->b;
        double y = b->kind == V_INT ? (double)b->i : b->kind == V_FLOAT ? b->f : b->b;
        return (x > y) - (x < y);
    }
    if (a->kind == V_STR && b->kind == V_STR) {
        jx_val_t *x = case_sensitive ? (jx_val_t *)a : case_map(e, a, 1), *y = case_sensitive ? (jx_val_t *)b : case_map(e, b, 1);
        size_t n = x->n < y->n ? x->n : y->n;
        int r = memcmp(x->s, y->s, n);
        return r ? r : (x->n > y->n) - (x->n < y->n);
    }
    if ((a->kind == V_NONE && b->kind == V_NONE) || (a->kind == V_UNDEF && b->kind == V_UNDEF)) return 0;
    jx_fail(C(e), BR_EINVAL, (size_t)-1, "sort: cannot compare a %s with a %s", jx_kind_name(a->kind), jx_kind_name(b->kind));
}

static jx_val_t *attr_path(jx_eval_t *e, jx_val_t *v, const jx_val_t *path)
{
    const char *p = path->s, *end = path->s + path->n;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);
        if (v->kind == V_OBJECT || v->kind == V_NS) {
            v = jx_obj_get(v->obj, p, n);
            if (!v) return jx_undef();
        } else if (v->kind == V_ARRAY) {
            char tmp[24];
            if (n == 0 || n >= sizeof tmp) return jx_undef();
            memcpy(tmp, p, n);
            tmp[n] = 0;
            char *x;
            long k = strtol(tmp, &x, 10);
            if (*x || k < 0 || (size_t)k >= v->n) return jx_undef();
            v = v->items[k];
        } else return jx_undef();
        if (!dot) break;
        p = dot + 1;
    }
    (void)e;
    return v;
}

static jx_val_t *sort_filter(jx_eval_t *e, jx_val_t *v, const jx_args_t *a, size_t pos)
{
    jx_val_t *rev = jx_arg(a, 0, "reverse"), *cs = jx_arg(a, 1, "case_sensitive"), *attr = jx_arg(a, 2, "attribute");
    int r = rev && jx_truthy(rev), c = cs && jx_truthy(cs);
    if (attr && attr->kind == V_INT) {
        char tmp[24];
        int n = snprintf(tmp, sizeof tmp, "%lld", (long long)attr->i);
        attr = jx_str(C(e), tmp, (size_t)n);
    } else if (attr && attr->kind != V_STR && attr->kind != V_NONE) jx_fail(C(e), BR_EINVAL, pos, "sort: attribute must be a string");
    jx_val_t *out = jx_array(C(e), v->n), **key = jx_alloc(C(e), (v->n ? v->n : 1) * sizeof *key);
    memcpy(out->items, v->items, v->n * sizeof *v->items);
    for (size_t i = 0; i < v->n; i++) key[i] = attr && attr->kind == V_STR ? attr_path(e, v->items[i], attr) : v->items[i];
    for (size_t i = 1; i < v->n; i++) /* stable insertion sort: lists in templates are short */
        for (size_t j = i; j > 0; j--) {
            int d = cmp_vals(e, key[j - 1], key[j], c);
            if (!(r ? d < 0 : d > 0)) break;
            jx_val_t *t = out->items[j], *tk = key[j];
            out->items[j] = out->items[j - 1], key[j] = key[j - 1];
            out->items[j - 1] = t, key[j - 1] = tk;
        }
    return out;
}

static jx_val_t *select_filter(jx_eval_t *e, jx_val_t *v, const char *name, const jx_args_t *a, size_t pos)
{
    int select = name[0] == 's';
    jx_val_t *attr = need_str(e, jx_arg(a, 0, NULL), "selectattr/rejectattr: the attribute", pos);
    jx_val_t *test = jx_arg(a, 1, NULL);
    jx_args_t targs = {0};
    if (a->npos > 2) {
        targs.pos = a->pos + 2;
        targs.npos = a->npos - 2;
    }
    jx_val_t *out = jx_array(C(e), v->n);
    size_t k = 0;
    for (size_t i = 0; i < v->n; i++) {
        jx_val_t *x = v->items[i];
        if (x->kind != V_OBJECT && x->kind != V_NS) jx_fail(C(e), BR_EINVAL, pos, "%s works on a list of mappings", name);
        jx_val_t *y = jx_obj_get(x->obj, attr->s, attr->n);
        int ok;
        if (test) ok = y && jx_test(e, y, need_str(e, test, "the test name", pos)->s, &targs, pos);
        else ok = y && jx_truthy(y);
        if (ok == select) out->items[k++] = x;
    }
    out->n = k;
    return out;
}

static jx_val_t *map_filter(jx_eval_t *e, jx_val_t *v, const jx_args_t *a, size_t pos)
{
    jx_val_t *attr = jx_arg(a, 0, "attribute"), *dflt = jx_arg(a, 99, "default");
    if (!attr || attr->kind != V_STR) jx_fail(C(e), BR_EUNSUPPORTED, pos, "map is supported with attribute=NAME only");
    jx_val_t *out = jx_array(C(e), v->n);
    for (size_t i = 0; i < v->n; i++) {
        jx_val_t *y = attr_path(e, v->items[i], attr);
        out->items[i] = y->kind == V_UNDEF && dflt ? dflt : y;
    }
    return out;
}

static jx_val_t *tojson_filter(jx_eval_t *e, jx_val_t *v, const jx_args_t *a, size_t pos)
{
    jx_json_opts_t o = {.undefined_as_null = 1};
    jx_val_t *ind = jx_arg(a, 99, "indent"), *asc = jx_arg(a, 99, "ensure_ascii"), *sk = jx_arg(a, 99, "sort_keys"),
             *sep = jx_arg(a, 99, "separators");
    if (!ind && a->npos) ind = a->pos[0];
    if (ind && ind->kind == V_INT) o.indent = ind->i < 0 ? 0 : ind->i > 64 ? 64 : (int)ind->i;
    else if (ind && ind->kind != V_NONE) jx_fail(C(e), BR_EINVAL, pos, "tojson: indent must be an integer");
    o.ensure_ascii = asc && jx_truthy(asc);
    o.sort_keys = sk && jx_truthy(sk);
    if (sep && sep->kind == V_ARRAY && sep->n == 2 && sep->items[0]->kind == V_STR && sep->items[1]->kind == V_STR) {
        o.item_sep = sep->items[0]->s;
        o.key_sep = sep->items[1]->s;
    } else if (sep && sep->kind != V_NONE) jx_fail(C(e), BR_EINVAL, pos, "tojson: separators must be two strings");
    jx_buf_t b = {0};
    jx_buf_put(C(e), &b, "", 0);
    jx_tojson(C(e), &b, v, &o, 0);
    return jx_str_own(C(e), b.s, b.n);
}

static jx_val_t *indent_filter(jx_eval_t *e, jx_val_t *v, const jx_args_t *a)
{
    jx_val_t *w = jx_arg(a, 0, "width"), *first = jx_arg(a, 1, "first"), *blank = jx_arg(a, 2, "blank");
    char pad[65];
    const char *ind = pad;
    size_t in = 4;
    if (w && w->kind == V_STR) ind = w->s, in = w->n;
    else in = w && w->kind == V_INT ? (w->i < 0 ? 0 : w->i > 64 ? 64 : (size_t)w->i) : 4;
    if (ind == pad) memset(pad, ' ', in);
    jx_buf_t b = {0};
    jx_buf_put(C(e), &b, "", 0);
    size_t i = 0, line = 0;
    for (;;) {
        const char *nl = memchr(v->s + i, '\n', v->n - i);
        size_t n = nl ? (size_t)(nl - (v->s + i)) : v->n - i;
        if (!((line == 0 && !(first && jx_truthy(first))) || (n == 0 && !(blank && jx_truthy(blank))))) jx_buf_put(C(e), &b, ind, in);
        jx_buf_put(C(e), &b, v->s + i, n);
        if (!nl) break;
        jx_buf_put(C(e), &b, "\n", 1);
        i += n + 1;
        line++;
    }
    return jx_str_own(C(e), b.s, b.n);
}

static jx_val_t *to_number(jx_eval_t *e, jx_val_t *v, int want_int, jx_val_t *dflt, size_t pos)
{
    if (v->kind == V_INT) return want_int ? v : jx_float(C(e), (double)v->i);
    if (v->kind == V_FLOAT) return want_int ? jx_int(C(e), (int64_t)(v->f > 9e18 ? 9e18 : v->f < -9e18 ? -9e18 : v->f)) : v;
    if (v->kind == V_BOOL) return want_int ? jx_int(C(e), v->b) : jx_float(C(e), v->b);
    if (v->kind == V_STR) {
        char *end;
        if (want_int) {
            long long x = strtoll(v->s, &end, 10);
            if (end != v->s) return jx_int(C(e), x);
        } else {
            double x = strtod(v->s, &end);
            if (end != v->s) return jx_float(C(e), x);
        }
        return dflt ? dflt : want_int ? jx_int(C(e), 0) : jx_float(C(e), 0);
    }
    jx_fail(C(e), BR_EINVAL, pos, "cannot convert a %s to a number", jx_kind_name(v->kind));
}

static jx_val_t *unique(jx_eval_t *e, jx_val_t *v)
{
    jx_val_t *out = jx_array(C(e), v->n);
    size_t k = 0;
    for (size_t i = 0; i < v->n; i++) {
        size_t j = 0;
        while (j < k && !jx_strict_equal(out->items[j], v->items[i])) j++;
        if (j == k) out->items[k++] = v->items[i];
    }
    out->n = k;
    return out;
}

/* Filters that apply to any kind of value. */
static jx_val_t *filter_any(jx_eval_t *e, jx_val_t *v, const char *f, const jx_args_t *a, size_t pos)
{
    if (!strcmp(f, "safe")) return v;
    if (!strcmp(f, "tojson")) return tojson_filter(e, v, a, pos);
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        jx_val_t *d = jx_arg(a, 0, "default_value"), *bo = jx_arg(a, 1, "boolean");
        if (v->kind == V_UNDEF || (bo && jx_truthy(bo) && !jx_truthy(v))) return d ? d : jx_str(C(e), "", 0);
        return v;
    }
    if (!strcmp(f, "length") || !strcmp(f, "count")) {
        if (v->kind == V_STR) return jx_int(C(e), (int64_t)cp_count(v));
        if (v->kind == V_ARRAY) return jx_int(C(e), (int64_t)v->n);
        if (v->kind == V_OBJECT || v->kind == V_NS) return jx_int(C(e), (int64_t)v->obj->n);
        if (v->kind == V_UNDEF) return jx_int(C(e), 0);
    }
    if (!strcmp(f, "string")) {
        if (v->kind == V_STR) return v;
        jx_buf_t b = {0};
        jx_buf_put(C(e), &b, "", 0);
        if (v->kind == V_NONE) jx_buf_puts(C(e), &b, "None");
        else jx_print(C(e), &b, v);
        return jx_str_own(C(e), b.s, b.n);
    }
    if (!strcmp(f, "int") || !strcmp(f, "float")) return to_number(e, v, f[0] == 'i', jx_arg(a, 0, "default"), pos);
    if (!strcmp(f, "bool")) return jx_bool(jx_truthy(v));
    if (!strcmp(f, "list")) {
        if (v->kind == V_ARRAY) return v;
        if (v->kind == V_STR) return jx_str_chars(C(e), v);
    }
    return NULL;
}

jx_val_t *jx_filter(jx_eval_t *e, jx_val_t *v, const char *f, const jx_args_t *a, int called, size_t pos)
{
    (void)called;
    jx_val_t *r = filter_any(e, v, f, a, pos);
    if (r) return r;
    if (v->kind == V_ARRAY) {
        if (!strcmp(f, "first")) return v->n ? v->items[0] : jx_undef();
        if (!strcmp(f, "last")) return v->n ? v->items[v->n - 1] : jx_undef();
        if (!strcmp(f, "reverse")) {
            jx_val_t *o = jx_array(C(e), v->n);
            for (size_t i = 0; i < v->n; i++) o->items[i] = v->items[v->n - 1 - i];
            return o;
        }
        if (!strcmp(f, "sort")) return sort_filter(e, v, a, pos);
        if (!strcmp(f, "join")) {
            jx_val_t *sep = jx_arg(a, 0, "d");
            if (sep) need_str(e, sep, "join: the separator", pos);
            return join_strings(C(e), v->items, v->n, sep ? sep->s : "", sep ? sep->n : 0);
        }
        if (!strcmp(f, "unique")) return unique(e, v);
        if (!strcmp(f, "selectattr") || !strcmp(f, "rejectattr")) return select_filter(e, v, f, a, pos);
        if (!strcmp(f, "map")) return map_filter(e, v, a, pos);
    } else if (v->kind == V_STR) {
        if (!strcmp(f, "upper")) return case_map(e, v, 0);
        if (!strcmp(f, "lower")) return case_map(e, v, 1);
        if (!strcmp(f, "title")) return case_map(e, v, 2);
        if (!strcmp(f, "capitalize")) return case_map(e, v, 3);
        if (!strcmp(f, "trim")) return strip(e, v, 3, jx_arg(a, 0, "chars"));
        if (!strcmp(f, "indent")) return indent_filter(e, v, a);
        if (!strcmp(f, "join")) return v;
        if (!strcmp(f, "replace")) return replace(e, v, jx_arg(a, 0, NULL), jx_arg(a, 1, NULL), jx_arg(a, 2, "count"), pos);
        if (!strcmp(f, "first") || !strcmp(f, "last")) {
            jx_val_t *ch = jx_str_chars(C(e), v);
            return ch->n ? ch->items[f[0] == 'f' ? 0 : ch->n - 1] : jx_undef();
        }
        if (!strcmp(f, "reverse")) {
            jx_val_t *ch = jx_str_chars(C(e), v), *o = jx_array(C(e), ch->n);
            for (size_t i = 0; i < ch->n; i++) o->items[i] = ch->items[ch->n - 1 - i];
            return join_strings(C(e), o->items, o->n, "", 0);
        }
    } else if (v->kind == V_INT || v->kind == V_FLOAT) {
        if (!strcmp(f, "abs")) {
            if (v->kind == V_FLOAT) return jx_float(C(e), v->f < 0 ? -v->f : v->f);
            if (v->i == INT64_MIN) jx_fail(C(e), BR_ERANGE, pos, "abs: integer overflow");
            return jx_int(C(e), v->i < 0 ? -v->i : v->i);
        }
    } else if (v->kind == V_OBJECT) {
        static const struct { const char *name; jx_func_t fn; } m[] = {{"items", F_O_ITEMS}, {"keys", F_O_KEYS}, {"values", F_O_VALUES}};
        for (size_t i = 0; i < 3; i++)
            if (!strcmp(f, m[i].name)) {
                jx_val_t fn = {.kind = V_FUNC, .fn = m[i].fn, .self = v};
                return call_method(e, &fn, a, pos);
            }
        if (!strcmp(f, "dictsort")) {
            jx_val_t fn = {.kind = V_FUNC, .fn = F_O_ITEMS, .self = v};
            jx_args_t none = {0}, sa = {0};
            jx_val_t *items = call_method(e, &fn, &none, pos);
            jx_val_t *attr = jx_str(C(e), "0", 1);
            sa.pos = (jx_val_t *[]){jx_bool(0), jx_arg(a, 0, "case_sensitive") ? jx_arg(a, 0, "case_sensitive") : jx_bool(0), attr};
            sa.npos = 3;
            return sort_filter(e, items, &sa, pos);
        }
    }
    jx_fail(C(e), BR_EUNSUPPORTED, pos, "filter '%s' is not supported on a %s", f, jx_kind_name(v->kind));
}

/* ---- tests ---- */

int jx_test(jx_eval_t *e, jx_val_t *v, const char *t, const jx_args_t *a, size_t pos)
{
    jx_vkind_t k = v->kind;
    if (!strcmp(t, "defined")) return k != V_UNDEF;
    if (!strcmp(t, "undefined")) return k == V_UNDEF;
    if (!strcmp(t, "none")) return k == V_NONE;
    if (!strcmp(t, "boolean")) return k == V_BOOL;
    if (!strcmp(t, "true")) return k == V_BOOL && v->b;
    if (!strcmp(t, "false")) return k == V_BOOL && !v->b;
    if (!strcmp(t, "string")) return k == V_STR;
    if (!strcmp(t, "number")) return k == V_INT || k == V_FLOAT;
    if (!strcmp(t, "integer")) return k == V_INT;
    if (!strcmp(t, "float")) return k == V_FLOAT;
    if (!strcmp(t, "iterable")) return k == V_ARRAY || k == V_STR || k == V_OBJECT;
    if (!strcmp(t, "mapping")) return k == V_OBJECT;
    if (!strcmp(t, "sequence")) return k == V_ARRAY || k == V_STR || k == V_OBJECT;
    if (!strcmp(t, "callable")) return k == V_FUNC;
    if (!strcmp(t, "lower") || !strcmp(t, "upper")) {
        if (k != V_STR) return 0;
        jx_val_t *m = case_map(e, v, t[0] == 'l' ? 1 : 0);
        return !memcmp(m->s, v->s, v->n);
    }
    if (!strcmp(t, "odd") || !strcmp(t, "even")) {
        if (k != V_INT) jx_fail(C(e), BR_EINVAL, pos, "test '%s' needs an integer, not a %s", t, jx_kind_name(k));
        return (int)((v->i % 2 != 0) == (t[0] == 'o'));
    }
    if (!strcmp(t, "equalto") || !strcmp(t, "eq") || !strcmp(t, "sameas") || !strcmp(t, "==")) {
        jx_val_t *o = jx_arg(a, 0, NULL);
        return o ? jx_strict_equal(v, o) : k == V_UNDEF;
    }
    if (!strcmp(t, "ne") || !strcmp(t, "!=")) {
        jx_val_t *o = jx_arg(a, 0, NULL);
        return o ? !jx_strict_equal(v, o) : k != V_UNDEF;
    }
    jx_fail(C(e), BR_EUNSUPPORTED, pos, "test '%s' is not supported", t);
}
