/* Jinja renderer: evaluation of statements and expressions (semantics of @huggingface/jinja's
 * Interpreter: a for loop opens a scope, `set` inside it stays there, namespace attributes
 * carry values out; undefined names evaluate to undefined and print as nothing). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "text/jinja_internal.h"

static void step(jx_eval_t *e, size_t pos)
{
    unsigned long max = e->c->max_steps ? e->c->max_steps : JX_MAX_STEPS;
    if (++e->steps > max) jx_fail(e->c, BR_ERANGE, pos, "template runs more than %lu steps (a loop that never ends?)", max);
}

static jx_val_t *lookup(jx_scope_t *s, const char *name, size_t n)
{
    for (; s; s = s->parent) {
        jx_val_t *v = jx_obj_get(&s->vars, name, n);
        if (v) return v;
    }
    return jx_undef();
}

static void assign(jx_eval_t *e, jx_scope_t *s, const jx_node_t *name, jx_val_t *v)
{
    jx_obj_set(e->c, &s->vars, name->s, name->n, v);
}

jx_val_t *jx_arg(const jx_args_t *a, size_t i, const char *name)
{
    if (i < a->npos) return a->pos[i];
    for (size_t k = 0; name && k < a->nkw; k++)
        if (!strcmp(a->kname[k], name)) return a->kval[k];
    return NULL;
}

void jx_eval_args(jx_eval_t *e, jx_scope_t *s, const jx_list_t *args, jx_args_t *out)
{
    memset(out, 0, sizeof *out);
    size_t n = args->n ? args->n : 1;
    out->pos = jx_alloc(e->c, n * sizeof *out->pos);
    out->kname = jx_alloc(e->c, n * sizeof *out->kname);
    out->kval = jx_alloc(e->c, n * sizeof *out->kval);
    for (size_t i = 0; i < args->n; i++) {
        const jx_node_t *a = args->v[i];
        if (a->kind == N_KWARG) {
            for (size_t k = 0; k < out->nkw; k++)
                if (!strcmp(out->kname[k], a->s)) jx_fail(e->c, BR_EINVAL, a->pos, "keyword argument '%s' given twice", a->s);
            out->kname[out->nkw] = a->s;
            out->kval[out->nkw++] = jx_eval(e, s, a->a);
        } else out->pos[out->npos++] = jx_eval(e, s, a);
    }
}

static int is_num(const jx_val_t *v) { return v->kind == V_INT || v->kind == V_FLOAT; }
static double num(const jx_val_t *v) { return v->kind == V_INT ? (double)v->i : v->kind == V_FLOAT ? v->f : v->b; }

/* Arithmetic and comparison of two numbers (ints stay ints, as in Python). */
static jx_val_t *arith(jx_eval_t *e, const char *op, const jx_val_t *l, const jx_val_t *r, size_t pos)
{
    int fl = l->kind == V_FLOAT || r->kind == V_FLOAT;
    double a = num(l), b = num(r);
    int64_t x = l->i, y = r->i;
    if (!strcmp(op, "<")) return jx_bool(a < b);
    if (!strcmp(op, ">")) return jx_bool(a > b);
    if (!strcmp(op, "<=")) return jx_bool(a <= b);
    if (!strcmp(op, ">=")) return jx_bool(a >= b);
    if (!strcmp(op, "/")) {
        if (b == 0) jx_fail(e->c, BR_EINVAL, pos, "division by zero");
        return jx_float(e->c, a / b);
    }
    if (fl) {
        if ((op[0] == '%' || !strcmp(op, "//")) && b == 0) jx_fail(e->c, BR_EINVAL, pos, "division by zero");
        double z = op[0] == '+' ? a + b : op[0] == '-' ? a - b : op[0] == '*' ? a * b : op[0] == '%' ? fmod(a, b) : floor(a / b);
        return jx_float(e->c, z);
    }
    int64_t z;
    switch (op[0]) {
    case '+': if (__builtin_add_overflow(x, y, &z)) goto overflow; break;
    case '-': if (__builtin_sub_overflow(x, y, &z)) goto overflow; break;
    case '*': if (__builtin_mul_overflow(x, y, &z)) goto overflow; break;
    default: /* % and // */
        if (y == 0) jx_fail(e->c, BR_EINVAL, pos, "division by zero");
        if (x == INT64_MIN && y == -1) goto overflow;
        if (op[0] == '%') z = x % y; /* sign of the dividend, as JavaScript's % */
        else z = x / y - ((x % y != 0) && ((x < 0) != (y < 0)));
    }
    return jx_int(e->c, z);
overflow:
    jx_fail(e->c, BR_ERANGE, pos, "integer overflow in '%s'", op);
}

static jx_val_t *concat(jx_eval_t *e, const jx_val_t *l, const jx_val_t *r, size_t pos, const char *op)
{
    jx_buf_t b = {0};
    const jx_val_t *side[2] = {l, r};
    for (int k = 0; k < 2; k++) {
        const jx_val_t *v = side[k];
        if (v->kind == V_STR) jx_buf_put(e->c, &b, v->s, v->n);
        else if (v->kind == V_INT || v->kind == V_FLOAT) jx_number_js(e->c, &b, num(v));
        else if (v->kind == V_BOOL) jx_buf_puts(e->c, &b, v->b ? "true" : "false");
        else if (v->kind == V_UNDEF && op[0] == '~') continue;
        else jx_fail(e->c, BR_EINVAL, pos, "cannot apply '%s' to a %s", op, jx_kind_name(v->kind));
    }
    jx_buf_put(e->c, &b, "", 0);
    return jx_str_own(e->c, b.s, b.n);
}

static int contains(const jx_val_t *item, const jx_val_t *coll, int *ok)
{
    *ok = 1;
    if (coll->kind == V_ARRAY) {
        for (size_t i = 0; i < coll->n; i++)
            if (jx_strict_equal(coll->items[i], item)) return 1;
        return 0;
    }
    if (coll->kind == V_STR && item->kind == V_STR)
        return item->n == 0 || (coll->n >= item->n && memmem(coll->s, coll->n, item->s, item->n) != NULL);
    if ((coll->kind == V_OBJECT || coll->kind == V_NS) && item->kind == V_STR) return jx_obj_get(coll->obj, item->s, item->n) != NULL;
    if (coll->kind == V_UNDEF) return 0;
    *ok = 0;
    return 0;
}

static jx_val_t *binary(jx_eval_t *e, jx_scope_t *s, const jx_node_t *n)
{
    const char *op = n->s;
    jx_val_t *l = jx_eval(e, s, n->a);
    if (!strcmp(op, "and")) return jx_truthy(l) ? jx_eval(e, s, n->b) : l;
    if (!strcmp(op, "or")) return jx_truthy(l) ? l : jx_eval(e, s, n->b);
    jx_val_t *r = jx_eval(e, s, n->b);
    if (!strcmp(op, "==")) return jx_bool(jx_equal(l, r));
    if (!strcmp(op, "!=")) return jx_bool(!jx_equal(l, r));
    if (!strcmp(op, "in") || !strcmp(op, "not in")) {
        int ok, hit = contains(l, r, &ok);
        if (!ok) jx_fail(e->c, BR_EINVAL, n->pos, "cannot test a %s 'in' a %s", jx_kind_name(l->kind), jx_kind_name(r->kind));
        return jx_bool(op[0] == 'i' ? hit : !hit);
    }
    if (!strcmp(op, "~")) return concat(e, l, r, n->pos, op);
    int lnum = is_num(l) || l->kind == V_BOOL, rnum = is_num(r) || r->kind == V_BOOL;
    if (!strcmp(op, "**")) {
        if (!lnum || !rnum) jx_fail(e->c, BR_EINVAL, n->pos, "cannot raise a %s to a %s", jx_kind_name(l->kind), jx_kind_name(r->kind));
        double z = pow(num(l), num(r));
        if (!isfinite(z)) jx_fail(e->c, BR_ERANGE, n->pos, "'**' result is not a finite number");
        if (l->kind == V_FLOAT || r->kind == V_FLOAT || num(r) < 0 || fabs(z) >= 9.2e18) return jx_float(e->c, z);
        return jx_int(e->c, (int64_t)z);
    }
    if (is_num(l) && is_num(r)) return arith(e, op, l, r, n->pos);
    if (op[0] == '+' && l->kind == V_ARRAY && r->kind == V_ARRAY) {
        jx_val_t *a = jx_array(e->c, l->n + r->n);
        for (size_t i = 0; i < l->n; i++) a->items[i] = l->items[i];
        for (size_t i = 0; i < r->n; i++) a->items[l->n + i] = r->items[i];
        return a;
    }
    if (op[0] == '+' && (l->kind == V_STR || r->kind == V_STR)) return concat(e, l, r, n->pos, op);
    jx_fail(e->c, BR_EINVAL, n->pos, "operator '%s' is not defined between a %s and a %s", op,
            jx_kind_name(l->kind), jx_kind_name(r->kind));
}

static jx_val_t *unary(jx_eval_t *e, jx_scope_t *s, const jx_node_t *n)
{
    jx_val_t *v = jx_eval(e, s, n->a);
    if (n->s[0] == 'n') return jx_bool(!jx_truthy(v));
    int neg = n->s[0] == '-';
    if (v->kind == V_FLOAT) return jx_float(e->c, neg ? -v->f : v->f);
    if (v->kind == V_INT || v->kind == V_BOOL) {
        int64_t x = v->kind == V_BOOL ? v->b : v->i;
        if (neg && x == INT64_MIN) jx_fail(e->c, BR_ERANGE, n->pos, "integer overflow in unary '-'");
        return jx_int(e->c, neg ? -x : x);
    }
    jx_fail(e->c, BR_EINVAL, n->pos, "unary '%s' is not defined for a %s", n->s, jx_kind_name(v->kind));
}

static jx_val_t *member(jx_eval_t *e, jx_scope_t *s, const jx_node_t *n)
{
    jx_val_t *obj = jx_eval(e, s, n->a);
    const jx_node_t *p = n->b;
    if (n->computed && p->kind == N_SLICE) {
        jx_val_t *a = p->a ? jx_eval(e, s, p->a) : jx_undef();
        jx_val_t *b = p->b ? jx_eval(e, s, p->b) : jx_undef();
        jx_val_t *c = p->c ? jx_eval(e, s, p->c) : jx_undef();
        return jx_slice(e, obj, a, b, c, n->pos);
    }
    jx_val_t *prop;
    if (n->computed) prop = jx_eval(e, s, p);
    else if (p->kind == N_INT) prop = jx_int(e->c, p->i);
    else prop = jx_str(e->c, p->s, p->n);
    return jx_member(e, obj, prop, n->pos);
}

static jx_val_t *literal_object(jx_eval_t *e, jx_scope_t *s, const jx_node_t *n)
{
    jx_val_t *o = jx_object(e->c, V_OBJECT);
    for (size_t i = 0; i < n->list.n; i++) {
        jx_val_t *k = jx_eval(e, s, n->list.v[i]);
        if (k->kind != V_STR) jx_fail(e->c, BR_EINVAL, n->list.v[i]->pos, "mapping keys must be strings, not a %s", jx_kind_name(k->kind));
        jx_obj_set(e->c, o->obj, k->s, k->n, jx_eval(e, s, n->list2.v[i]));
    }
    return o;
}

static jx_val_t *eval_node(jx_eval_t *e, jx_scope_t *s, const jx_node_t *n);

/* Operator chains (a + b + c ..., a.b.c ..., x|f|g ...) nest the AST without bound, so the
 * recursion depth is checked here rather than by the parser. */
jx_val_t *jx_eval(jx_eval_t *e, jx_scope_t *s, const jx_node_t *n)
{
    if (++e->eval_depth > JX_MAX_EVAL_DEPTH)
        jx_fail(e->c, BR_ERANGE, n->pos, "expression nests deeper than %d operations", JX_MAX_EVAL_DEPTH);
    jx_val_t *v = eval_node(e, s, n);
    e->eval_depth--;
    return v;
}

static jx_val_t *eval_node(jx_eval_t *e, jx_scope_t *s, const jx_node_t *n)
{
    step(e, n->pos);
    switch (n->kind) {
    case N_IDENT: return lookup(s, n->s, n->n);
    case N_INT: return jx_int(e->c, n->i);
    case N_FLOAT: return jx_float(e->c, n->f);
    case N_STR: return jx_str_own(e->c, (char *)n->s, n->n);
    case N_ARRAY: case N_TUPLE: {
        jx_val_t *a = jx_array(e->c, n->list.n);
        for (size_t i = 0; i < n->list.n; i++) a->items[i] = jx_eval(e, s, n->list.v[i]);
        return a;
    }
    case N_OBJECT: return literal_object(e, s, n);
    case N_MEMBER: return member(e, s, n);
    case N_CALL: {
        jx_args_t a;
        jx_eval_args(e, s, &n->list, &a);
        jx_val_t *fn = jx_eval(e, s, n->a);
        return jx_call(e, fn, &a, n->pos);
    }
    case N_BINARY: return binary(e, s, n);
    case N_UNARY: return unary(e, s, n);
    case N_FILTER: {
        jx_val_t *v = jx_eval(e, s, n->a);
        jx_args_t a;
        jx_eval_args(e, s, &n->list, &a);
        return jx_filter(e, v, n->s, &a, n->computed, n->pos);
    }
    case N_TEST: {
        jx_val_t *v = jx_eval(e, s, n->a);
        jx_args_t a;
        jx_eval_args(e, s, &n->list, &a);
        int r = jx_test(e, v, n->s, &a, n->pos);
        return jx_bool(n->computed ? !r : r);
    }
    case N_TERNARY: return jx_truthy(jx_eval(e, s, n->a)) ? jx_eval(e, s, n->b) : jx_eval(e, s, n->c);
    case N_SELECT: return jx_truthy(jx_eval(e, s, n->b)) ? jx_eval(e, s, n->a) : jx_undef();
    case N_KWARG: jx_fail(e->c, BR_EFORMAT, n->pos, "keyword argument outside a call");
    case N_SLICE: jx_fail(e->c, BR_EFORMAT, n->pos, "slice outside a subscript");
    default: jx_fail(e->c, BR_EFORMAT, n->pos, "statement used as an expression");
    }
}

/* ---- statements ---- */

static void render(jx_eval_t *e, jx_scope_t *s, const jx_list_t *body, jx_buf_t *out);

static void bind_target(jx_eval_t *e, jx_scope_t *s, const jx_node_t *target, jx_val_t *v, size_t pos)
{
    if (target->kind == N_IDENT) return assign(e, s, target, v);
    if (v->kind != V_ARRAY) jx_fail(e->c, BR_EINVAL, pos, "cannot unpack a %s into %zu names", jx_kind_name(v->kind), target->list.n);
    if (v->n != target->list.n)
        jx_fail(e->c, BR_EINVAL, pos, "too %s values to unpack (expected %zu, got %zu)", v->n < target->list.n ? "few" : "many",
                target->list.n, v->n);
    for (size_t i = 0; i < v->n; i++) assign(e, s, target->list.v[i], v->items[i]);
}

static void exec_set(jx_eval_t *e, jx_scope_t *s, const jx_node_t *n)
{
    jx_val_t *v;
    if (n->b) v = jx_eval(e, s, n->b);
    else {
        jx_buf_t b = {0};
        jx_buf_put(e->c, &b, "", 0);
        render(e, s, &n->list, &b);
        v = jx_str_own(e->c, b.s, b.n);
    }
    const jx_node_t *t = n->a;
    if (t->kind == N_MEMBER) {
        jx_val_t *obj = jx_eval(e, s, t->a);
        if (obj->kind != V_NS) jx_fail(e->c, BR_EINVAL, n->pos, "set can assign attributes of a namespace() only, not of a %s", jx_kind_name(obj->kind));
        if (t->b->kind != N_IDENT) jx_fail(e->c, BR_EINVAL, n->pos, "namespace attributes are names");
        jx_obj_set(e->c, obj->obj, t->b->s, t->b->n, v);
        return;
    }
    bind_target(e, s, t, v, n->pos);
}

static jx_val_t *loop_object(jx_eval_t *e, size_t i, size_t len, jx_val_t **items)
{
    jx_val_t *o = jx_object(e->c, V_OBJECT);
    jx_obj_t *ob = o->obj;
    jx_obj_set(e->c, ob, "index", 5, jx_int(e->c, (int64_t)i + 1));
    jx_obj_set(e->c, ob, "index0", 6, jx_int(e->c, (int64_t)i));
    jx_obj_set(e->c, ob, "revindex", 8, jx_int(e->c, (int64_t)(len - i)));
    jx_obj_set(e->c, ob, "revindex0", 9, jx_int(e->c, (int64_t)(len - i - 1)));
    jx_obj_set(e->c, ob, "first", 5, jx_bool(i == 0));
    jx_obj_set(e->c, ob, "last", 4, jx_bool(i + 1 == len));
    jx_obj_set(e->c, ob, "length", 6, jx_int(e->c, (int64_t)len));
    jx_obj_set(e->c, ob, "previtem", 8, i > 0 ? items[i - 1] : jx_undef());
    jx_obj_set(e->c, ob, "nextitem", 8, i + 1 < len ? items[i + 1] : jx_undef());
    return o;
}

static void exec_for(jx_eval_t *e, jx_scope_t *parent, const jx_node_t *n, jx_buf_t *out)
{
    jx_scope_t *s = jx_alloc(e->c, sizeof *s);
    s->parent = parent;
    jx_val_t *it = jx_eval(e, s, n->b);
    if (it->kind == V_OBJECT) { /* iterating a mapping yields its keys */
        jx_val_t *k = jx_array(e->c, it->obj->n);
        for (size_t i = 0; i < k->n; i++) k->items[i] = jx_str_own(e->c, (char *)it->obj->keys[i], it->obj->klen[i]);
        it = k;
    } else if (it->kind == V_STR) {
        it = jx_str_chars(e->c, it);
    } else if (it->kind != V_ARRAY) {
        jx_fail(e->c, BR_EINVAL, n->b->pos, "for loop over a %s (expected a list, a mapping or a string)", jx_kind_name(it->kind));
    }
    jx_val_t **items = it->items;
    size_t len = it->n;
    if (n->c || n->a->kind == N_TUPLE) { /* filter first: loop.length counts the kept items */
        items = jx_alloc(e->c, (len ? len : 1) * sizeof *items);
        size_t k = 0;
        for (size_t i = 0; i < it->n; i++) {
            step(e, n->pos);
            jx_scope_t *ts = jx_alloc(e->c, sizeof *ts);
            ts->parent = s;
            bind_target(e, ts, n->a, it->items[i], n->pos);
            if (!n->c || jx_truthy(jx_eval(e, ts, n->c))) items[k++] = it->items[i];
        }
        len = k;
    }
    int ran = 0;
    for (size_t i = 0; i < len; i++) {
        step(e, n->pos);
        jx_obj_set(e->c, &s->vars, "loop", 4, loop_object(e, i, len, items));
        bind_target(e, s, n->a, items[i], n->pos);
        render(e, s, &n->list, out);
        int ctl = e->control;
        e->control = 0;
        if (ctl == 1) break;
        if (ctl == 2) continue;
        ran = 1;
    }
    if (!ran) render(e, s, &n->list2, out);
}

static void render(jx_eval_t *e, jx_scope_t *s, const jx_list_t *body, jx_buf_t *out)
{
    if (++e->depth > JX_MAX_DEPTH) jx_fail(e->c, BR_ERANGE, (size_t)-1, "blocks nest deeper than %d", JX_MAX_DEPTH);
    for (size_t i = 0; i < body->n && !e->control; i++) {
        const jx_node_t *n = body->v[i];
        switch (n->kind) {
        case N_TEXT: jx_buf_put(e->c, out, n->s, n->n); break;
        case N_IF: {
            step(e, n->pos);
            int t = jx_truthy(jx_eval(e, s, n->a));
            render(e, s, t ? &n->list : &n->list2, out);
            break;
        }
        case N_FOR: exec_for(e, s, n, out); break;
        case N_SET: exec_set(e, s, n); break;
        case N_BREAK: e->control = 1; break;
        case N_CONTINUE: e->control = 2; break;
        default: jx_print(e->c, out, jx_eval(e, s, n)); break;
        }
    }
    e->depth--;
}

/* Renders a program; globals: an object whose entries form the outermost scope. */
void jx_render_program(jx_ctx_t *c, const jx_list_t *prog, jx_val_t *globals, jx_buf_t *out);
void jx_render_program(jx_ctx_t *c, const jx_list_t *prog, jx_val_t *globals, jx_buf_t *out)
{
    jx_eval_t e = {.c = c};
    jx_scope_t *builtins = jx_alloc(c, sizeof *builtins), *g = jx_alloc(c, sizeof *g);
    static const struct { const char *name; jx_func_t fn; } funcs[] = {
        {"raise_exception", F_RAISE}, {"range", F_RANGE}, {"namespace", F_NAMESPACE}, {"strftime_now", F_STRFTIME_NOW}};
    for (size_t i = 0; i < sizeof funcs / sizeof *funcs; i++)
        jx_obj_set(c, &builtins->vars, funcs[i].name, strlen(funcs[i].name), jx_func(c, funcs[i].fn, NULL));
    static const struct { const char *name; int kind; } consts[] = {
        {"true", 1}, {"True", 1}, {"false", 0}, {"False", 0}, {"none", 2}, {"None", 2}};
    for (size_t i = 0; i < sizeof consts / sizeof *consts; i++)
        jx_obj_set(c, &builtins->vars, consts[i].name, strlen(consts[i].name), consts[i].kind == 2 ? jx_none() : jx_bool(consts[i].kind));
    g->parent = builtins;
    if (globals && globals->kind == V_OBJECT) g->vars = *globals->obj;
    render(&e, g, prog, out);
}
