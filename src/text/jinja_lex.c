/* Jinja renderer: preprocessing and tokenising, as @huggingface/jinja's lexer does it
 * (Template() uses lstrip_blocks and trim_blocks, like transformers' chat templates). */
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "text/jinja_internal.h"
#include "text/utf8.h"

static int is_word(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
}

static int is_digit(int ch) { return ch >= '0' && ch <= '9'; }

/* Whitespace as JavaScript's \s and trim() see it, at s[i..n); returns its byte length or 0. */
static size_t space_at(const char *s, size_t n, size_t i)
{
    if (i >= n) return 0;
    size_t len;
    uint32_t cp = jx_utf8_next(s + i, n - i, &len);
    return jx_is_space(cp) ? len : 0;
}

static int line_start(const char *s, size_t i)
{
    if (i == 0) return 1;
    if (s[i - 1] == '\n' || s[i - 1] == '\r') return 1;
    return i >= 3 && (unsigned char)s[i - 3] == 0xE2 && (unsigned char)s[i - 2] == 0x80 &&
           ((unsigned char)s[i - 1] == 0xA8 || (unsigned char)s[i - 1] == 0xA9); /* U+2028/9 */
}

/* {%-? \s* (end)?generation \s* -?%} \s*  at s[i]: returns the match length (0 = none), and
 * whether it strips before (*ls) and after (*rs); *ws = length of the trailing whitespace. */
static size_t generation_tag(const char *s, size_t n, size_t i, int *ls, int *rs, size_t *ws)
{
    size_t j = i + 2, k;
    if (j > n || s[i] != '{' || s[i + 1] != '%') return 0;
    *ls = j < n && s[j] == '-';
    j += *ls;
    while ((k = space_at(s, n, j))) j += k;
    if (n - j >= 3 && !memcmp(s + j, "end", 3)) j += 3;
    if (n - j < 10 || memcmp(s + j, "generation", 10)) return 0;
    j += 10;
    while ((k = space_at(s, n, j))) j += k;
    *rs = j < n && s[j] == '-';
    j += *rs;
    if (n - j < 2 || s[j] != '%' || s[j + 1] != '}') return 0;
    j += 2;
    size_t w = j;
    while ((k = space_at(s, n, w))) w += k;
    *ws = w - j;
    return w - i;
}

/* Each pass maps its output bytes to offsets in the original template (map), so that error
 * positions name the template's own lines and columns. */
static void preprocess(jx_ctx_t *c, const char *src, size_t len)
{
    c->orig = jx_strndup(c, src, len);
    c->orig_len = len;
    if (len && src[len - 1] == '\n') len--;
    /* lstrip_blocks: /^[ \t]*({[#%-])/gm -> "$1" */
    char *a = jx_alloc(c, len + 1);
    size_t *ma = jx_alloc(c, (len + 1) * sizeof *ma);
    size_t na = 0;
    for (size_t i = 0; i < len;) {
        if (line_start(src, i)) {
            size_t j = i;
            while (j < len && (src[j] == ' ' || src[j] == '\t')) j++;
            if (j > i && j + 1 < len && src[j] == '{' && (src[j + 1] == '#' || src[j + 1] == '%' || src[j + 1] == '-')) {
                i = j;
                continue;
            }
            if (j > i) {
                for (; i < j; i++) ma[na] = i, a[na++] = src[i];
                continue;
            }
        }
        ma[na] = i;
        a[na++] = src[i++];
    }
    ma[na] = len;
    /* trim_blocks: /([#%-]})\n/g -> "$1" */
    char *b = jx_alloc(c, na + 1);
    size_t *mb = jx_alloc(c, (na + 1) * sizeof *mb);
    size_t nb = 0;
    for (size_t i = 0; i < na;) {
        if (i + 2 < na && (a[i] == '#' || a[i] == '%' || a[i] == '-') && a[i + 1] == '}' && a[i + 2] == '\n') {
            mb[nb] = ma[i], b[nb++] = a[i];
            mb[nb] = ma[i + 1], b[nb++] = '}';
            i += 3;
            continue;
        }
        mb[nb] = ma[i];
        b[nb++] = a[i++];
    }
    mb[nb] = ma[na];
    /* {% generation %} / {% endgeneration %} markers vanish (with their whitespace control) */
    char *o = jx_alloc(c, nb + 1);
    size_t *mo = jx_alloc(c, (nb + 1) * sizeof *mo);
    size_t no = 0;
    for (size_t i = 0; i < nb;) {
        int ls, rs;
        size_t ws, m = b[i] == '{' ? generation_tag(b, nb, i, &ls, &rs, &ws) : 0;
        if (!m) {
            mo[no] = mb[i];
            o[no++] = b[i++];
            continue;
        }
        if (ls)
            while (no > 0) { /* strip ASCII/Unicode whitespace emitted since the last tag */
                size_t back = 1;
                while (back < no && back < 4 && ((unsigned char)o[no - back] & 0xC0) == 0x80) back++;
                if (!space_at(o, no, no - back)) break;
                no -= back;
            }
        if (!rs)
            for (size_t k = i + m - ws; k < i + m; k++) mo[no] = mb[k], o[no++] = b[k];
        i += m;
    }
    o[no] = 0;
    mo[no] = mb[nb];
    c->src = o;
    c->src_len = no;
    c->origin = mo;
}

typedef struct {
    jx_ctx_t *c;
    const char *s;
    size_t n, i;
    jx_tok_t *v;
    size_t nv, cap;
    int curly;
} lx_t;

static void push(lx_t *L, jx_tok_kind_t k, const char *s, size_t n, size_t pos)
{
    if (L->nv + 1 >= L->cap) {
        size_t nc = L->cap ? L->cap * 2 : 256;
        jx_tok_t *nv = jx_alloc(L->c, nc * sizeof *nv);
        if (L->nv) memcpy(nv, L->v, L->nv * sizeof *nv);
        L->v = nv;
        L->cap = nc;
    }
    L->v[L->nv++] = (jx_tok_t){k, s, n, pos};
}

static jx_tok_kind_t last_kind(const lx_t *L) { return L->nv ? L->v[L->nv - 1].kind : T_EOF; }

static void strip_trailing(lx_t *L)
{
    if (!L->nv || L->v[L->nv - 1].kind != T_TEXT) return;
    jx_tok_t *t = &L->v[L->nv - 1];
    while (t->n > 0) {
        size_t back = 1;
        while (back < t->n && back < 4 && ((unsigned char)t->s[t->n - back] & 0xC0) == 0x80) back++;
        if (!space_at(t->s, t->n, t->n - back)) break;
        t->n -= back;
    }
    if (t->n == 0) L->nv--;
}

static void skip_space(lx_t *L)
{
    size_t k;
    while ((k = space_at(L->s, L->n, L->i))) L->i += k;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* A quoted string starting after the quote; leaves L->i on the closing quote. */
static void lex_string(lx_t *L, char quote, size_t start)
{
    jx_buf_t b = {0};
    jx_buf_put(L->c, &b, "", 0);
    for (;;) {
        if (L->i >= L->n) jx_fail(L->c, BR_EFORMAT, start, "string literal is not closed");
        char ch = L->s[L->i];
        if (ch == quote) break;
        L->i++;
        if (ch != '\\') {
            jx_buf_put(L->c, &b, &ch, 1);
            continue;
        }
        if (L->i >= L->n) jx_fail(L->c, BR_EFORMAT, start, "string literal is not closed");
        char e = L->s[L->i++];
        static const char from[] = "ntrbfv'\"\\", to[] = "\n\t\r\b\f\v'\"\\";
        const char *k = strchr(from, e);
        if (e && k) {
            jx_buf_put(L->c, &b, &to[k - from], 1);
        } else if (e == 'x' || e == 'u') {
            size_t hl = e == 'x' ? 2 : 4;
            uint32_t cp = 0;
            for (size_t h = 0; h < hl; h++) {
                int d = L->i + h < L->n ? hexval((unsigned char)L->s[L->i + h]) : -1;
                if (d < 0) jx_fail(L->c, BR_EFORMAT, L->i - 2, "invalid \\%c escape in a string literal", e);
                cp = cp * 16 + (uint32_t)d;
            }
            L->i += hl;
            /* a UTF-16 surrogate pair written as two \u escapes is one code point */
            if (cp >= 0xD800 && cp < 0xDC00 && L->i + 6 <= L->n && L->s[L->i] == '\\' && L->s[L->i + 1] == 'u') {
                uint32_t lo = 0;
                int ok = 1;
                for (int h = 0; h < 4; h++) {
                    int d = hexval((unsigned char)L->s[L->i + 2 + h]);
                    ok &= d >= 0;
                    lo = lo * 16 + (uint32_t)(d < 0 ? 0 : d);
                }
                if (ok && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    L->i += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD; /* lone surrogate: not representable in UTF-8 */
            char u[4];
            jx_buf_put(L->c, &b, u, br_utf8_encode(u, cp));
        } else {
            jx_fail(L->c, BR_EFORMAT, L->i - 2, "unknown escape \\%c in a string literal", e ? e : '0');
        }
    }
    push(L, T_STR, b.s, b.n, start);
}

/* Text up to the next {{, {% or {#.  Returns 1 when it pushed a token. */
static int lex_text(lx_t *L)
{
    size_t end = L->i;
    for (;;) {
        const char *p = memchr(L->s + end, '{', L->n - end);
        if (!p) {
            end = L->n;
            break;
        }
        end = (size_t)(p - L->s);
        if (end + 1 < L->n && (p[1] == '%' || p[1] == '{' || p[1] == '#')) break;
        end++;
    }
    if (end <= L->i) return 0;
    push(L, T_TEXT, L->s + L->i, end - L->i, L->i);
    L->i = end;
    return 1;
}

/* {# ... #} at L->i */
static void lex_comment(lx_t *L)
{
    size_t start = L->i;
    L->i += 2;
    int before = L->i < L->n && L->s[L->i] == '-';
    L->i += before;
    const char *end = NULL;
    for (size_t j = L->i; j + 1 < L->n; j++)
        if (L->s[j] == '#' && L->s[j + 1] == '}') {
            end = L->s + j;
            break;
        }
    if (!end) jx_fail(L->c, BR_EFORMAT, start, "comment {# is not closed with #}");
    size_t n = (size_t)(end - (L->s + L->i));
    int after = n > 0 && end[-1] == '-';
    if (before) strip_trailing(L);
    push(L, T_COMMENT, L->s + L->i, n - (size_t)after, start);
    L->i = (size_t)(end - L->s) + 2;
    if (after) skip_space(L);
}

/* A signed number literal or a unary sign where the previous token cannot end an operand. */
static int lex_sign(lx_t *L)
{
    char ch = L->s[L->i];
    jx_tok_kind_t lk = last_kind(L);
    if (lk == T_TEXT || lk == T_EOF) jx_fail(L->c, BR_EFORMAT, L->i, "unexpected character '%c'", ch);
    if (lk == T_IDENT || lk == T_NUM || lk == T_STR || lk == T_RPAREN || lk == T_RBRACKET) return 0;
    size_t start = L->i++;
    while (L->i < L->n && is_digit((unsigned char)L->s[L->i])) L->i++;
    size_t nd = L->i - start - 1;
    if (nd && L->i + 1 < L->n && L->s[L->i] == '.' && is_digit((unsigned char)L->s[L->i + 1])) {
        L->i++;
        while (L->i < L->n && is_digit((unsigned char)L->s[L->i])) L->i++;
    }
    push(L, nd ? T_NUM : T_UNARY, L->s + start, L->i - start, start);
    return 1;
}

static const struct {
    const char *op;
    jx_tok_kind_t kind;
} OPS[] = {
    {"{%", T_OPEN_STMT}, {"%}", T_CLOSE_STMT}, {"{{", T_OPEN_EXPR}, {"}}", T_CLOSE_EXPR},
    {"(", T_LPAREN}, {")", T_RPAREN}, {"{", T_LBRACE}, {"}", T_RBRACE}, {"[", T_LBRACKET},
    {"]", T_RBRACKET}, {",", T_COMMA}, {".", T_DOT}, {":", T_COLON}, {"|", T_PIPE},
    {"<=", T_CMP}, {">=", T_CMP}, {"==", T_CMP}, {"!=", T_CMP}, {"<", T_CMP}, {">", T_CMP},
    {"+", T_ADD}, {"-", T_ADD}, {"~", T_ADD}, {"**", T_POW}, {"*", T_MUL}, {"//", T_MUL},
    {"/", T_MUL}, {"%", T_MUL}, {"=", T_EQUALS},
};

static int lex_operator(lx_t *L)
{
    for (size_t k = 0; k < sizeof OPS / sizeof *OPS; k++) {
        size_t n = strlen(OPS[k].op);
        if (OPS[k].kind == T_CLOSE_EXPR && L->curly > 0) continue;
        if (L->n - L->i < n || memcmp(L->s + L->i, OPS[k].op, n)) continue;
        push(L, OPS[k].kind, L->s + L->i, n, L->i);
        if (OPS[k].kind == T_OPEN_EXPR) L->curly = 0;
        else if (OPS[k].kind == T_LBRACE) L->curly++;
        else if (OPS[k].kind == T_RBRACE) L->curly--;
        L->i += n;
        return 1;
    }
    return 0;
}

/* Tags with whitespace control: {%- {{- (strip before) and -%} -}} (strip after). */
static int lex_dash_tag(lx_t *L)
{
    const char *s = L->s + L->i;
    size_t left = L->n - L->i;
    if (left >= 3 && s[0] == '{' && (s[1] == '%' || s[1] == '{') && s[2] == '-') {
        strip_trailing(L);
        push(L, s[1] == '%' ? T_OPEN_STMT : T_OPEN_EXPR, s, 2, L->i);
        if (s[1] == '{') L->curly = 0;
        L->i += 3;
        return 1;
    }
    if (left >= 3 && s[0] == '-' && (s[1] == '%' || s[1] == '}') && s[2] == '}') {
        push(L, s[1] == '%' ? T_CLOSE_STMT : T_CLOSE_EXPR, s + 1, 2, L->i);
        L->i += 3;
        skip_space(L);
        return 1;
    }
    return 0;
}

void jx_lex(jx_ctx_t *c, const char *src, size_t len, jx_tok_t **toks, size_t *ntok)
{
    preprocess(c, src, len);
    lx_t L = {.c = c, .s = c->src, .n = c->src_len};
    while (L.i < L.n) {
        jx_tok_kind_t lk = last_kind(&L);
        if ((lk == T_EOF || lk == T_CLOSE_STMT || lk == T_CLOSE_EXPR || lk == T_COMMENT) && lex_text(&L)) continue;
        if (L.s[L.i] == '{' && L.i + 1 < L.n && L.s[L.i + 1] == '#') {
            lex_comment(&L);
            continue;
        }
        if (lex_dash_tag(&L)) continue;
        skip_space(&L);
        if (L.i >= L.n) jx_fail(c, BR_EFORMAT, L.n, "unexpected end of template inside a tag");
        if (lex_dash_tag(&L)) continue;
        unsigned char ch = (unsigned char)L.s[L.i];
        if ((ch == '-' || ch == '+') && lex_sign(&L)) continue;
        if (lex_operator(&L)) continue;
        size_t start = L.i;
        if (ch == '\'' || ch == '"') {
            L.i++;
            lex_string(&L, (char)ch, start);
            L.i++;
        } else if (is_digit(ch)) {
            while (L.i < L.n && is_digit((unsigned char)L.s[L.i])) L.i++;
            if (lk != T_DOT && L.i + 1 < L.n && L.s[L.i] == '.' && is_digit((unsigned char)L.s[L.i + 1])) {
                L.i++;
                while (L.i < L.n && is_digit((unsigned char)L.s[L.i])) L.i++;
            }
            push(&L, T_NUM, L.s + start, L.i - start, start);
        } else if (is_word(ch)) {
            while (L.i < L.n && is_word((unsigned char)L.s[L.i])) L.i++;
            push(&L, T_IDENT, L.s + start, L.i - start, start);
        } else {
            jx_fail(c, BR_EFORMAT, start, "unexpected character '%.*s' in a tag", ch < 0x80 ? 1 : 0, L.s + start);
        }
    }
    push(&L, T_EOF, "", 0, L.n);
    *toks = L.v;
    *ntok = L.nv - 1;
}
