/* Internals of the Jinja renderer (jinja_lex.c, jinja_parse.c, jinja_value.c, jinja_eval.c,
 * jinja_builtins.c).  Not part of the public API: include text/jinja.h instead.
 *
 * Memory: everything a template or a render allocates (tokens, AST, values, strings) comes from
 * one bump arena (jx_arena_t) freed at once, so errors may unwind with longjmp from any depth
 * without leaking: jx_fail() formats the message and jumps back to the entry point
 * (br_jinja_parse / br_jinja_render), which turns it into a br_status. */
#ifndef BR_TEXT_JINJA_INTERNAL_H
#define BR_TEXT_JINJA_INTERNAL_H
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

/* Budgets that keep a hostile template from exhausting the machine (a render that passes them
 * fails with BR_ENOMEM / BR_ERANGE naming the budget). */
#define JX_MAX_ARENA ((size_t)512 << 20) /* bytes allocated by one parse or render */
#define JX_MAX_DEPTH 200                 /* nesting of expressions and blocks */
#define JX_MAX_EVAL_DEPTH 1000           /* recursion of evaluation (operator chains) */
#define JX_MAX_STEPS 20000000u           /* loop iterations + node evaluations */

typedef struct jx_chunk jx_chunk_t;
typedef struct {
    jx_chunk_t *head;
    size_t total;
} jx_arena_t;

/* The error/escape context shared by the lexer, parser and evaluator. */
typedef struct {
    jx_arena_t *arena;
    jmp_buf jmp;
    int status;          /* br_status of the failure */
    const char *src;     /* template source after preprocessing (what the lexer reads) */
    size_t src_len;
    const char *orig;    /* the template as given, for line:col in messages */
    size_t orig_len;
    const size_t *origin; /* (src_len + 1) offset in orig of each byte of src */
    size_t max_arena;        /* 0 = JX_MAX_ARENA */
    unsigned long max_steps; /* 0 = JX_MAX_STEPS */
} jx_ctx_t;

void *jx_alloc(jx_ctx_t *c, size_t n);        /* 8-byte aligned, zeroed; fails via jx_fail */
char *jx_strndup(jx_ctx_t *c, const char *s, size_t n);
void jx_arena_free(jx_arena_t *a);
/* Formats "line L, column C: MESSAGE" (pos = offset in c->src, or (size_t)-1 for none) and
 * longjmps to c->jmp.  status: a br_status. */
_Noreturn void jx_fail(jx_ctx_t *c, int status, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- strings and UTF-8 ---- */
typedef struct {
    char *s;
    size_t n, cap;
} jx_buf_t;
void jx_buf_put(jx_ctx_t *c, jx_buf_t *b, const char *s, size_t n);
void jx_buf_puts(jx_ctx_t *c, jx_buf_t *b, const char *s);
/* Decodes one code point at s[0..n) (n > 0); *len = bytes used (1 for an invalid byte, which
 * decodes as 0xFFFD + 0x110000 so that it never equals a real code point). */
uint32_t jx_utf8_next(const char *s, size_t n, size_t *len);
int jx_is_space(uint32_t cp);               /* JavaScript's String.prototype.trim set */

/* ---- lexer ---- */
typedef enum {
    T_TEXT, T_NUM, T_STR, T_IDENT, T_EQUALS, T_LPAREN, T_RPAREN, T_OPEN_STMT, T_CLOSE_STMT,
    T_OPEN_EXPR, T_CLOSE_EXPR, T_LBRACKET, T_RBRACKET, T_LBRACE, T_RBRACE, T_COMMA, T_DOT,
    T_COLON, T_PIPE, T_ADD, T_MUL, T_POW, T_CMP, T_UNARY, T_COMMENT, T_EOF
} jx_tok_kind_t;

typedef struct {
    jx_tok_kind_t kind;
    const char *s; /* value (text, identifier, operator, unescaped string literal) */
    size_t n;
    size_t pos;    /* offset in the preprocessed source */
} jx_tok_t;

/* Preprocesses (trailing newline, lstrip_blocks, trim_blocks, {% generation %} tags) into
 * c->src and tokenises it.  *ntok excludes the final T_EOF, which is always present. */
void jx_lex(jx_ctx_t *c, const char *src, size_t len, jx_tok_t **toks, size_t *ntok);

/* ---- AST ---- */
typedef enum {
    /* statements */
    N_TEXT, N_IF, N_FOR, N_SET, N_BREAK, N_CONTINUE,
    /* expressions */
    N_IDENT, N_INT, N_FLOAT, N_STR, N_ARRAY, N_TUPLE, N_OBJECT, N_MEMBER, N_SLICE, N_CALL,
    N_KWARG, N_BINARY, N_UNARY, N_FILTER, N_TEST, N_TERNARY, N_SELECT
} jx_node_kind_t;

typedef struct jx_node jx_node_t;
typedef struct {
    jx_node_t **v;
    size_t n;
} jx_list_t;

/* One node; which fields are used depends on kind:
 *   N_TEXT s        N_IDENT s       N_INT i   N_FLOAT f   N_STR s
 *   N_IF a=test list=body list2=else             N_FOR a=target b=iterable c=filter list/list2
 *   N_SET a=target b=value (or list=body)        N_ARRAY/N_TUPLE list   N_OBJECT list=keys list2=values
 *   N_MEMBER a=object b=property computed        N_SLICE a,b,c (NULL = omitted)
 *   N_CALL a=callee list=args                    N_KWARG s=name a=value
 *   N_BINARY s=operator a,b   N_UNARY s=operator a
 *   N_FILTER a=operand s=name list=args computed=called with ()
 *   N_TEST a=operand s=name computed=negated list=args
 *   N_TERNARY a=condition b=if-true c=if-false   N_SELECT a=value b=condition */
struct jx_node {
    jx_node_kind_t kind;
    size_t pos;
    const char *s;
    size_t n;
    int64_t i;
    double f;
    int computed;
    jx_node_t *a, *b, *c;
    jx_list_t list, list2;
};

/* Parses the tokens into a program (a list of statements). */
jx_list_t jx_parse(jx_ctx_t *c, const jx_tok_t *toks, size_t ntok);

/* ---- values ---- */
typedef enum { V_UNDEF, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_ARRAY, V_OBJECT, V_NS, V_FUNC } jx_vkind_t;

typedef struct jx_val jx_val_t;
typedef struct {
    const char **keys;
    size_t *klen;
    jx_val_t **vals;
    size_t n, cap;
} jx_obj_t;

/* Built-in callables: globals and methods bound to a receiver (`self`). */
typedef enum {
    F_RAISE, F_RANGE, F_NAMESPACE, F_STRFTIME_NOW,
    F_S_UPPER, F_S_LOWER, F_S_STRIP, F_S_LSTRIP, F_S_RSTRIP, F_S_TITLE, F_S_CAPITALIZE,
    F_S_STARTSWITH, F_S_ENDSWITH, F_S_SPLIT, F_S_REPLACE,
    F_O_GET, F_O_ITEMS, F_O_KEYS, F_O_VALUES
} jx_func_t;

struct jx_val {
    jx_vkind_t kind;
    int b;
    int64_t i;
    double f;
    const char *s; /* V_STR: bytes (NUL-terminated), n their count */
    size_t n;
    jx_val_t **items; /* V_ARRAY; n items */
    jx_obj_t *obj;    /* V_OBJECT, V_NS */
    jx_func_t fn;     /* V_FUNC */
    jx_val_t *self;   /* V_FUNC: bound receiver or NULL */
};

typedef struct {
    jx_ctx_t *c;
} jx_rt_t;

jx_val_t *jx_undef(void);
jx_val_t *jx_none(void);
jx_val_t *jx_bool(int b);
jx_val_t *jx_int(jx_ctx_t *c, int64_t i);
jx_val_t *jx_float(jx_ctx_t *c, double f);
jx_val_t *jx_str(jx_ctx_t *c, const char *s, size_t n); /* copies */
jx_val_t *jx_str_own(jx_ctx_t *c, char *s, size_t n);   /* s from the arena, NUL-terminated */
jx_val_t *jx_array(jx_ctx_t *c, size_t n);               /* n undefined items, to be filled */
jx_val_t *jx_object(jx_ctx_t *c, jx_vkind_t kind);       /* V_OBJECT or V_NS */
jx_val_t *jx_func(jx_ctx_t *c, jx_func_t fn, jx_val_t *self);
void jx_obj_set(jx_ctx_t *c, jx_obj_t *o, const char *k, size_t kn, jx_val_t *v);
jx_val_t *jx_obj_get(const jx_obj_t *o, const char *k, size_t kn); /* NULL when absent */

int jx_truthy(const jx_val_t *v);
const char *jx_kind_name(jx_vkind_t k);
/* Python-like equality as @huggingface/jinja computes `==` (JavaScript loose equality on the
 * wrapped values: numbers and booleans by value, strings by content, containers by identity). */
int jx_equal(const jx_val_t *a, const jx_val_t *b);
/* a.value === b.value (used by `in` on lists and the equalto test). */
int jx_strict_equal(const jx_val_t *a, const jx_val_t *b);
/* How `{{ v }}` prints (nothing for none/undefined). */
void jx_print(jx_ctx_t *c, jx_buf_t *out, const jx_val_t *v);
/* JavaScript's Number.prototype.toString. */
void jx_number_js(jx_ctx_t *c, jx_buf_t *out, double f);

typedef struct {
    int indent;               /* 0 = none */
    int ensure_ascii, sort_keys;
    const char *item_sep, *key_sep; /* NULL = defaults */
    int undefined_as_null;
} jx_json_opts_t;
void jx_tojson(jx_ctx_t *c, jx_buf_t *out, const jx_val_t *v, const jx_json_opts_t *o, int depth);
/* Converts a jansson value (json_t *) into an arena value. */
jx_val_t *jx_from_json(jx_ctx_t *c, const void *json, int depth);

/* ---- evaluation (jinja_eval.c) and built-ins (jinja_builtins.c) ---- */
typedef struct jx_scope jx_scope_t;
struct jx_scope {
    jx_scope_t *parent;
    jx_obj_t vars;
};

typedef struct {
    jx_ctx_t *c;
    unsigned long steps;
    int depth;      /* nesting of rendered blocks */
    int eval_depth; /* recursion of jx_eval */
    int control;    /* 0, or 1 = break, 2 = continue in flight */
} jx_eval_t;

jx_val_t *jx_eval(jx_eval_t *e, jx_scope_t *s, const jx_node_t *n);
/* Evaluated call arguments: positional values and keyword (name, value) pairs. */
typedef struct {
    jx_val_t **pos;
    size_t npos;
    const char **kname;
    jx_val_t **kval;
    size_t nkw;
} jx_args_t;
void jx_eval_args(jx_eval_t *e, jx_scope_t *s, const jx_list_t *args, jx_args_t *out);
jx_val_t *jx_arg(const jx_args_t *a, size_t i, const char *name); /* NULL when not given */

jx_val_t *jx_call(jx_eval_t *e, const jx_val_t *fn, const jx_args_t *a, size_t pos);
jx_val_t *jx_member(jx_eval_t *e, jx_val_t *obj, jx_val_t *prop, size_t pos);
jx_val_t *jx_filter(jx_eval_t *e, jx_val_t *v, const char *name, const jx_args_t *a, int called, size_t pos);
int jx_test(jx_eval_t *e, jx_val_t *v, const char *name, const jx_args_t *a, size_t pos);
jx_val_t *jx_slice(jx_eval_t *e, jx_val_t *v, jx_val_t *start, jx_val_t *stop, jx_val_t *step, size_t pos);
/* Code points of a string as an array of one-character strings (for iteration/slicing). */
jx_val_t *jx_str_chars(jx_ctx_t *c, const jx_val_t *s);
#endif
