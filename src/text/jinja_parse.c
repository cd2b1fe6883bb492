/* Jinja renderer: recursive-descent parser with @huggingface/jinja's grammar and precedence
 * (ternary < or < and < not < comparison/in < + - ~ < * / // % < ** < is-test < filter <
 * unary sign < call/member < primary).  Statements: if/elif/else, for (with `if` filter,
 * tuple targets, else), set (expression, tuple, namespace attribute, block), break, continue.
 * macro, call and filter blocks are refused with an error naming them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "text/jinja_internal.h"

typedef struct {
    jx_ctx_t *c;
    const jx_tok_t *t;
    size_t n, i;
    int depth;
} ps_t;

static const jx_tok_t *cur(const ps_t *P) { return &P->t[P->i < P->n ? P->i : P->n]; }
static const jx_tok_t *at(const ps_t *P, size_t k) { return &P->t[P->i + k < P->n ? P->i + k : P->n]; }

static int tok_is(const jx_tok_t *t, jx_tok_kind_t k, const char *s)
{
    return t->kind == k && (!s || (t->n == strlen(s) && !memcmp(t->s, s, t->n)));
}

static int is_ident(const ps_t *P, const char *s) { return tok_is(cur(P), T_IDENT, s); }
static int is_kind(const ps_t *P, jx_tok_kind_t k) { return cur(P)->kind == k; }

static const char *tok_name(jx_tok_kind_t k)
{
    static const char *names[] = {"text", "number", "string", "name", "'='", "'('", "')'", "'{%'", "'%}'",
                                  "'{{'", "'}}'", "'['", "']'", "'{'", "'}'", "','", "'.'", "':'", "'|'",
                                  "operator", "operator", "'**'", "comparison", "sign", "comment", "end of template"};
    return names[k];
}

static const jx_tok_t *expect(ps_t *P, jx_tok_kind_t k, const char *what)
{
    const jx_tok_t *t = cur(P);
    if (t->kind != k) jx_fail(P->c, BR_EFORMAT, t->pos, "expected %s %s, found %s", tok_name(k), what, tok_name(t->kind));
    P->i++;
    return t;
}

static void expect_ident(ps_t *P, const char *name)
{
    if (!is_ident(P, name)) jx_fail(P->c, BR_EFORMAT, cur(P)->pos, "expected '%s', found %s", name, tok_name(cur(P)->kind));
    P->i++;
}

static jx_node_t *node(ps_t *P, jx_node_kind_t k, size_t pos)
{
    jx_node_t *n = jx_alloc(P->c, sizeof *n);
    n->kind = k;
    n->pos = pos;
    return n;
}

static void list_push(ps_t *P, jx_list_t *l, jx_node_t *x)
{
    if ((l->n & (l->n - 1)) == 0) { /* grow at powers of two */
        jx_node_t **nv = jx_alloc(P->c, (l->n ? 2 * l->n : 1) * sizeof *nv);
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
    }
    l->v[l->n++] = x;
}

static void enter(ps_t *P)
{
    if (++P->depth > JX_MAX_DEPTH)
        jx_fail(P->c, BR_ERANGE, cur(P)->pos, "template nests deeper than %d levels", JX_MAX_DEPTH);
}

static jx_node_t *expression(ps_t *P);
static jx_node_t *primary(ps_t *P);
static jx_node_t *any(ps_t *P);

static jx_node_t *binary(ps_t *P, const jx_tok_t *op, jx_node_t *l, jx_node_t *r)
{
    jx_node_t *n = node(P, N_BINARY, op->pos);
    n->s = jx_strndup(P->c, op->s, op->n);
    n->a = l;
    n->b = r;
    return n;
}

/* (a, b, ...) after a callee, filter or test name; mode_params unused (macros are refused). */
static jx_list_t arguments(ps_t *P)
{
    jx_list_t args = {0};
    int kw = 0;
    expect(P, T_LPAREN, "to open the arguments");
    while (!is_kind(P, T_RPAREN)) {
        if (is_kind(P, T_EOF)) jx_fail(P->c, BR_EFORMAT, cur(P)->pos, "argument list is not closed");
        if (is_kind(P, T_POW) || (is_kind(P, T_MUL) && cur(P)->n == 1 && cur(P)->s[0] == '*'))
            jx_fail(P->c, BR_EUNSUPPORTED, cur(P)->pos, "argument unpacking (* / **) is not supported");
        jx_node_t *a = expression(P);
        if (is_kind(P, T_EQUALS)) {
            size_t pos = cur(P)->pos;
            P->i++;
            if (a->kind != N_IDENT) jx_fail(P->c, BR_EFORMAT, pos, "a keyword argument needs a name before '='");
            jx_node_t *k = node(P, N_KWARG, a->pos);
            k->s = a->s;
            k->n = a->n;
            k->a = expression(P);
            a = k;
            kw = 1;
        } else if (kw) {
            jx_fail(P->c, BR_EFORMAT, a->pos, "positional arguments must come before keyword arguments");
        }
        list_push(P, &args, a);
        if (is_kind(P, T_COMMA)) P->i++;
        else if (!is_kind(P, T_RPAREN)) jx_fail(P->c, BR_EFORMAT, cur(P)->pos, "expected ',' or ')' in arguments");
    }
    P->i++;
    return args;
}

/* [a], [a:b:c] */
static jx_node_t *subscript(ps_t *P, size_t pos)
{
    jx_node_t *part[4] = {0};
    int nparts = 0, slice = 0;
    while (!is_kind(P, T_RBRACKET)) {
        if (is_kind(P, T_EOF)) jx_fail(P->c, BR_EFORMAT, pos, "'[' is not closed");
        if (nparts == 4) jx_fail(P->c, BR_EFORMAT, cur(P)->pos, "a slice has at most 3 parts");
        if (is_kind(P, T_COLON)) {
            part[nparts++] = NULL;
            P->i++;
            slice = 1;
        } else {
            part[nparts++] = expression(P);
            if (is_kind(P, T_COLON)) {
                P->i++;
                slice = 1;
            } else if (!is_kind(P, T_RBRACKET)) jx_fail(P->c, BR_EFORMAT, cur(P)->pos, "expected ']' or ':' in a subscript");
        }
    }
    if (nparts == 0) jx_fail(P->c, BR_EFORMAT, pos, "empty subscript []");
    if (!slice) return part[0];
    if (nparts > 3) jx_fail(P->c, BR_EFORMAT, pos, "a slice has at most 3 parts");
    jx_node_t *s = node(P, N_SLICE, pos);
    s->a = part[0];
    s->b = nparts > 1 ? part[1] : NULL;
    s->c = nparts > 2 ? part[2] : NULL;
    return s;
}

static jx_node_t *member_chain(ps_t *P, jx_node_t *obj)
{
    while (is_kind(P, T_DOT) || is_kind(P, T_LBRACKET)) {
        const jx_tok_t *op = cur(P);
        P->i++;
        jx_node_t *m = node(P, N_MEMBER, op->pos);
        m->a = obj;
        if (op->kind == T_LBRACKET) {
            m->computed = 1;
            m->b = subscript(P, op->pos);
            expect(P, T_RBRACKET, "to close the subscript");
        } else {
            m->b = primary(P);
            if (m->b->kind != N_IDENT && m->b->kind != N_INT)
                jx_fail(P->c, BR_EFORMAT, op->pos, "expected a name or an integer after '.'");
        }
        obj = m;
    }
    return obj;
}

static jx_node_t *call_chain(ps_t *P, jx_node_t *callee)
{
    while (is_kind(P, T_LPAREN)) {
        jx_node_t *call = node(P, N_CALL, cur(P)->pos);
        call->a = callee;
        call->list = arguments(P);
        callee = member_chain(P, call);
    }
    return callee;
}

static jx_node_t *postfix(ps_t *P) { return call_chain(P, member_chain(P, primary(P))); }

static jx_node_t *unary_sign(ps_t *P)
{
    const jx_tok_t *t = cur(P);
    if ((t->kind == T_UNARY || t->kind == T_ADD) && t->n == 1 && (t->s[0] == '-' || t->s[0] == '+')) {
        P->i++;
        enter(P);
        jx_node_t *n = node(P, N_UNARY, t->pos);
        n->s = t->s[0] == '-' ? "-" : "+";
        n->a = unary_sign(P);
        P->depth--;
        return n;
    }
    return postfix(P);
}

static jx_node_t *filter_expr(ps_t *P)
{
    jx_node_t *v = unary_sign(P);
    while (is_kind(P, T_PIPE)) {
        size_t pos = cur(P)->pos;
        P->i++;
        const jx_tok_t *name = expect(P, T_IDENT, "naming a filter after '|'");
        jx_node_t *f = node(P, N_FILTER, pos);
        f->a = v;
        f->s = jx_strndup(P->c, name->s, name->n);
        if (is_kind(P, T_LPAREN)) {
            f->computed = 1;
            f->list = arguments(P);
        }
        v = f;
    }
    return v;
}

static jx_node_t *test_expr(ps_t *P)
{
    jx_node_t *v = filter_expr(P);
    while (is_ident(P, "is")) {
        size_t pos = cur(P)->pos;
        P->i++;
        jx_node_t *t = node(P, N_TEST, pos);
        if (is_ident(P, "not")) {
            t->computed = 1;
            P->i++;
        }
        const jx_tok_t *name = expect(P, T_IDENT, "naming a test after 'is'");
        t->s = jx_strndup(P->c, name->s, name->n);
        t->a = v;
        if (is_kind(P, T_LPAREN)) t->list = arguments(P);
        else if (is_kind(P, T_NUM) || is_kind(P, T_STR)) list_push(P, &t->list, primary(P)); /* `is equalto 3` */
        v = t;
    }
    return v;
}

static jx_node_t *power_expr(ps_t *P)
{
    jx_node_t *l = test_expr(P);
    while (is_kind(P, T_POW)) {
        const jx_tok_t *op = cur(P);
        P->i++;
        l = binary(P, op, l, test_expr(P));
    }
    return l;
}

static jx_node_t *mul_expr(ps_t *P)
{
    jx_node_t *l = power_expr(P);
    while (is_kind(P, T_MUL)) {
        const jx_tok_t *op = cur(P);
        P->i++;
        l = binary(P, op, l, power_expr(P));
    }
    return l;
}

static jx_node_t *add_expr(ps_t *P)
{
    jx_node_t *l = mul_expr(P);
    while (is_kind(P, T_ADD)) {
        const jx_tok_t *op = cur(P);
        P->i++;
        l = binary(P, op, l, mul_expr(P));
    }
    return l;
}

static jx_node_t *compare_expr(ps_t *P)
{
    jx_node_t *l = add_expr(P);
    for (;;) {
        const jx_tok_t *op = cur(P);
        static const jx_tok_t not_in = {T_IDENT, "not in", 6, 0};
        if (is_ident(P, "not") && tok_is(at(P, 1), T_IDENT, "in")) {
            P->i += 2;
            jx_node_t *r = add_expr(P);
            l = binary(P, &not_in, l, r);
            l->pos = op->pos;
            continue;
        }
        if (!is_ident(P, "in") && !is_kind(P, T_CMP)) return l;
        P->i++;
        l = binary(P, op, l, add_expr(P));
    }
}

static jx_node_t *not_expr(ps_t *P)
{
    if (!is_ident(P, "not")) return compare_expr(P);
    size_t pos = cur(P)->pos;
    P->i++;
    enter(P);
    jx_node_t *n = node(P, N_UNARY, pos);
    n->s = "not";
    n->a = not_expr(P);
    P->depth--;
    return n;
}

static jx_node_t *and_expr(ps_t *P)
{
    jx_node_t *l = not_expr(P);
    while (is_ident(P, "and")) {
        const jx_tok_t *op = cur(P);
        P->i++;
        l = binary(P, op, l, not_expr(P));
    }
    return l;
}

static jx_node_t *or_expr(ps_t *P)
{
    jx_node_t *l = and_expr(P);
    while (is_ident(P, "or")) {
        const jx_tok_t *op = cur(P);
        P->i++;
        l = binary(P, op, l, and_expr(P));
    }
    return l;
}

static jx_node_t *expression(ps_t *P)
{
    enter(P);
    jx_node_t *a = or_expr(P);
    if (is_ident(P, "if")) {
        size_t pos = cur(P)->pos;
        P->i++;
        jx_node_t *cond = or_expr(P);
        if (is_ident(P, "else")) {
            P->i++;
            jx_node_t *t = node(P, N_TERNARY, pos);
            t->a = cond;
            t->b = a;
            t->c = expression(P);
            a = t;
        } else {
            jx_node_t *s = node(P, N_SELECT, pos);
            s->a = a;
            s->b = cond;
            a = s;
        }
    }
    P->depth--;
    return a;
}

/* a  or  a, b, ...  (a tuple) */
static jx_node_t *expression_seq(ps_t *P, int primary_only)
{
    jx_node_t *first = primary_only ? primary(P) : expression(P);
    if (!is_kind(P, T_COMMA)) return first;
    jx_node_t *t = node(P, N_TUPLE, first->pos);
    list_push(P, &t->list, first);
    while (is_kind(P, T_COMMA)) {
        P->i++;
        list_push(P, &t->list, primary_only ? primary(P) : expression(P));
    }
    return t;
}

static jx_node_t *number(ps_t *P, const jx_tok_t *t)
{
    char buf[64];
    if (t->n >= sizeof buf) jx_fail(P->c, BR_EFORMAT, t->pos, "number literal is too long");
    memcpy(buf, t->s, t->n);
    buf[t->n] = 0;
    errno = 0;
    if (memchr(buf, '.', t->n)) {
        jx_node_t *n = node(P, N_FLOAT, t->pos);
        n->f = strtod(buf, NULL);
        return n;
    }
    jx_node_t *n = node(P, N_INT, t->pos);
    n->i = strtoll(buf, NULL, 10);
    if (errno == ERANGE) jx_fail(P->c, BR_ERANGE, t->pos, "integer literal %s does not fit in 64 bits", buf);
    return n;
}

static jx_node_t *primary(ps_t *P)
{
    const jx_tok_t *t = cur(P);
    enter(P);
    P->i++;
    jx_node_t *n = NULL;
    switch (t->kind) {
    case T_NUM: n = number(P, t); break;
    case T_STR: {
        jx_buf_t b = {0};
        jx_buf_put(P->c, &b, t->s, t->n);
        while (is_kind(P, T_STR)) { /* adjacent literals concatenate */
            jx_buf_put(P->c, &b, cur(P)->s, cur(P)->n);
            P->i++;
        }
        n = node(P, N_STR, t->pos);
        n->s = b.s;
        n->n = b.n;
        break;
    }
    case T_IDENT:
        n = node(P, N_IDENT, t->pos);
        n->s = jx_strndup(P->c, t->s, t->n);
        n->n = t->n;
        break;
    case T_LPAREN:
        n = expression_seq(P, 0);
        expect(P, T_RPAREN, "to close '('");
        break;
    case T_LBRACKET:
        n = node(P, N_ARRAY, t->pos);
        while (!is_kind(P, T_RBRACKET)) {
            if (is_kind(P, T_EOF)) jx_fail(P->c, BR_EFORMAT, t->pos, "'[' is not closed");
            list_push(P, &n->list, expression(P));
            if (is_kind(P, T_COMMA)) P->i++;
            else if (!is_kind(P, T_RBRACKET)) jx_fail(P->c, BR_EFORMAT, cur(P)->pos, "expected ',' or ']' in a list");
        }
        P->i++;
        break;
    case T_LBRACE:
        n = node(P, N_OBJECT, t->pos);
        while (!is_kind(P, T_RBRACE)) {
            if (is_kind(P, T_EOF)) jx_fail(P->c, BR_EFORMAT, t->pos, "'{' is not closed");
            list_push(P, &n->list, expression(P));
            expect(P, T_COLON, "between a key and its value");
            list_push(P, &n->list2, expression(P));
            if (is_kind(P, T_COMMA)) P->i++;
            else if (!is_kind(P, T_RBRACE)) jx_fail(P->c, BR_EFORMAT, cur(P)->pos, "expected ',' or '}' in a mapping");
        }
        P->i++;
        break;
    default:
        jx_fail(P->c, BR_EFORMAT, t->pos, "unexpected %s in an expression", tok_name(t->kind));
    }
    P->depth--;
    return n;
}

/* ---- statements ---- */

static int is_statement(const ps_t *P, const char *const *names)
{
    if (!is_kind(P, T_OPEN_STMT) || at(P, 1)->kind != T_IDENT) return 0;
    for (; *names; names++)
        if (tok_is(at(P, 1), T_IDENT, *names)) return 1;
    return 0;
}

/* Statements up to one of `until` (not consumed); `what` names the open block for errors. */
static jx_list_t body_until(ps_t *P, const char *const *until, const char *what, size_t pos)
{
    jx_list_t l = {0};
    while (!is_statement(P, until)) {
        if (is_kind(P, T_EOF)) jx_fail(P->c, BR_EFORMAT, pos, "{%% %s %%} is never closed with {%% %s %%}", what, until[0]);
        jx_node_t *s = any(P);
        if (s) list_push(P, &l, s);
    }
    return l;
}

static jx_node_t *if_stmt(ps_t *P, size_t pos)
{
    static const char *const stop[] = {"endif", "elif", "else", NULL}, *const stop_else[] = {"endif", NULL};
    jx_node_t *n = node(P, N_IF, pos);
    n->a = expression(P);
    expect(P, T_CLOSE_STMT, "to end the if tag");
    enter(P);
    n->list = body_until(P, stop, "if", pos);
    if (tok_is(at(P, 1), T_IDENT, "elif")) {
        size_t epos = cur(P)->pos;
        P->i += 2;
        list_push(P, &n->list2, if_stmt(P, epos));
    } else if (tok_is(at(P, 1), T_IDENT, "else")) {
        P->i += 2;
        expect(P, T_CLOSE_STMT, "after else");
        n->list2 = body_until(P, stop_else, "if", pos);
    }
    P->depth--;
    return n;
}

static jx_node_t *for_stmt(ps_t *P, size_t pos)
{
    static const char *const stop[] = {"endfor", "else", NULL}, *const stop_else[] = {"endfor", NULL};
    jx_node_t *n = node(P, N_FOR, pos);
    n->a = expression_seq(P, 1);
    if (n->a->kind != N_IDENT && n->a->kind != N_TUPLE)
        jx_fail(P->c, BR_EFORMAT, n->a->pos, "the loop variable must be a name or a tuple of names");
    for (size_t i = 0; n->a->kind == N_TUPLE && i < n->a->list.n; i++)
        if (n->a->list.v[i]->kind != N_IDENT) jx_fail(P->c, BR_EFORMAT, n->a->list.v[i]->pos, "loop targets must be names");
    expect_ident(P, "in");
    n->b = expression(P);
    if (n->b->kind == N_SELECT) { /* for x in xs if cond */
        n->c = n->b->b;
        n->b = n->b->a;
    }
    expect(P, T_CLOSE_STMT, "to end the for tag");
    enter(P);
    n->list = body_until(P, stop, "for", pos);
    if (tok_is(at(P, 1), T_IDENT, "else")) {
        P->i += 2;
        expect(P, T_CLOSE_STMT, "after else");
        n->list2 = body_until(P, stop_else, "for", pos);
    }
    P->depth--;
    expect(P, T_OPEN_STMT, "");
    expect_ident(P, "endfor");
    expect(P, T_CLOSE_STMT, "after endfor");
    return n;
}

static jx_node_t *set_stmt(ps_t *P, size_t pos)
{
    static const char *const stop[] = {"endset", NULL};
    jx_node_t *n = node(P, N_SET, pos);
    n->a = expression_seq(P, 0);
    if (n->a->kind != N_IDENT && n->a->kind != N_TUPLE && !(n->a->kind == N_MEMBER && !n->a->computed))
        jx_fail(P->c, BR_EFORMAT, n->a->pos, "set needs a name, a tuple of names or namespace.attribute on the left");
    if (is_kind(P, T_EQUALS)) {
        P->i++;
        n->b = expression_seq(P, 0);
    } else {
        expect(P, T_CLOSE_STMT, "or '=' in set");
        enter(P);
        n->list = body_until(P, stop, "set", pos);
        P->depth--;
        expect(P, T_OPEN_STMT, "");
        expect_ident(P, "endset");
    }
    expect(P, T_CLOSE_STMT, "to end the set tag");
    return n;
}

static jx_node_t *statement(ps_t *P)
{
    size_t pos = expect(P, T_OPEN_STMT, "")->pos;
    const jx_tok_t *name = cur(P);
    if (name->kind != T_IDENT) jx_fail(P->c, BR_EFORMAT, name->pos, "expected a statement name after {%%");
    P->i++;
    if (tok_is(name, T_IDENT, "if")) {
        jx_node_t *n = if_stmt(P, pos);
        expect(P, T_OPEN_STMT, "");
        expect_ident(P, "endif");
        expect(P, T_CLOSE_STMT, "after endif");
        return n;
    }
    if (tok_is(name, T_IDENT, "for")) return for_stmt(P, pos);
    if (tok_is(name, T_IDENT, "set")) return set_stmt(P, pos);
    if (tok_is(name, T_IDENT, "break") || tok_is(name, T_IDENT, "continue")) {
        expect(P, T_CLOSE_STMT, "after break/continue");
        return node(P, name->s[0] == 'b' ? N_BREAK : N_CONTINUE, pos);
    }
    static const char *const refused[] = {"macro", "call", "filter", "include", "import", "extends", "block", "raw", "with", NULL};
    for (const char *const *r = refused; *r; r++)
        if (tok_is(name, T_IDENT, *r))
            jx_fail(P->c, BR_EUNSUPPORTED, pos, "{%% %s %%} is not supported by braid's template renderer", *r);
    jx_fail(P->c, BR_EFORMAT, pos, "unknown or misplaced statement {%% %.*s %%}", (int)(name->n > 40 ? 40 : name->n), name->s);
}

static jx_node_t *any(ps_t *P)
{
    const jx_tok_t *t = cur(P);
    switch (t->kind) {
    case T_COMMENT: P->i++; return NULL;
    case T_TEXT: {
        P->i++;
        jx_node_t *n = node(P, N_TEXT, t->pos);
        n->s = t->s;
        n->n = t->n;
        return n;
    }
    case T_OPEN_STMT: return statement(P);
    case T_OPEN_EXPR: {
        P->i++;
        jx_node_t *n = expression(P);
        expect(P, T_CLOSE_EXPR, "to end the expression");
        return n;
    }
    default: jx_fail(P->c, BR_EFORMAT, t->pos, "unexpected %s", tok_name(t->kind));
    }
}

jx_list_t jx_parse(jx_ctx_t *c, const jx_tok_t *toks, size_t ntok)
{
    ps_t P = {.c = c, .t = toks, .n = ntok};
    jx_list_t prog = {0};
    while (P.i < P.n) {
        jx_node_t *s = any(&P);
        if (s) list_push(&P, &prog, s);
    }
    return prog;
}
