#include "text/corpus.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/rng.h"
#include "text/bpe_train.h"
#include "text/utf8.h"

br_status br_docs_add(br_docs_t *d, const char *id, const char *text, size_t len)
{
    while (len && isspace((unsigned char)text[len - 1])) len--;
    size_t i = 0;
    while (i < len && isspace((unsigned char)text[i])) i++;
    if (i == len || memmem(text, len, "<|endoftext|>", 13) || memchr(text, 0, len) ||
        br_utf8_check(id, text, len) != BR_OK) {
        d->skipped++;
        return BR_OK;
    }
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 256;
        br_doc_t *nv = realloc(d->v, nc * sizeof *nv);
        if (!nv) return br_error(BR_ENOMEM, "out of memory");
        d->v = nv;
        d->cap = nc;
    }
    br_doc_t *doc = &d->v[d->n];
    doc->id = strdup(id);
    doc->text = malloc(len + 1);
    if (!doc->id || !doc->text) {
        free(doc->id);
        free(doc->text);
        return br_error(BR_ENOMEM, "out of memory");
    }
    memcpy(doc->text, text, len);
    doc->text[len] = 0;
    doc->len = len;
    d->n++;
    d->bytes += len;
    return BR_OK;
}

void br_docs_free(br_docs_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].id);
        free(d->v[i].text);
    }
    free(d->v);
    memset(d, 0, sizeof *d);
}

typedef struct {
    uint64_t key;
    size_t i;
} order_t;

static int cmp_order(const void *a, const void *b)
{
    const order_t *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

static const br_docs_t *g_sort_docs; /* qsort has no context argument in C11 */

static int cmp_id(const void *a, const void *b)
{
    return strcmp(g_sort_docs->v[*(const size_t *)a].id, g_sort_docs->v[*(const size_t *)b].id);
}

br_status br_docs_write(const br_docs_t *d, const char *dir, size_t max_bytes, double val_frac, br_split_stats_t *st)
{
    memset(st, 0, sizeof *st);
    if (d->n == 0) return br_error(BR_EINVAL, "%s: no documents", dir);
    if (!(val_frac > 0 && val_frac < 1)) return br_error(BR_EINVAL, "val fraction %g must be in (0, 1)", val_frac);
    order_t *ord = malloc(d->n * sizeof *ord);
    size_t *keep[2];
    keep[0] = malloc(d->n * sizeof(size_t));
    keep[1] = malloc(d->n * sizeof(size_t));
    br_status s = BR_OK;
    if (!ord || !keep[0] || !keep[1]) s = br_error(BR_ENOMEM, "out of memory");
    size_t nk[2] = {0, 0};
    if (s == BR_OK) {
        for (size_t i = 0; i < d->n; i++) ord[i] = (order_t){br_hash64(d->v[i].id, strlen(d->v[i].id), 1), i};
        qsort(ord, d->n, sizeof *ord, cmp_order);
        size_t total = 0;
        for (size_t k = 0; k < d->n; k++) {
            const br_doc_t *doc = &d->v[ord[k].i];
            if (max_bytes && total + doc->len > max_bytes) {
                st->dropped++;
                continue;
            }
            total += doc->len;
            uint64_t h = br_hash64(doc->id, strlen(doc->id), 2);
            int val = (double)(h >> 11) * (1.0 / 9007199254740992.0) < val_frac;
            keep[val][nk[val]++] = ord[k].i;
        }
        if (nk[0] == 0 || nk[1] == 0)
            s = br_error(BR_EINVAL, "%s: %zu documents give an empty %s split (need more documents)", dir, nk[0] + nk[1],
                         nk[0] ? "val" : "train");
    }
    if (s == BR_OK) s = br_mkdir_p(dir);
    for (int sp = 0; sp < 2 && s == BR_OK; sp++) {
        g_sort_docs = d;
        qsort(keep[sp], nk[sp], sizeof(size_t), cmp_id);
        br_buf_t path = BR_BUF_INIT;
        s = br_buf_path(&path, dir, sp ? "val.txt" : "train.txt");
        br_atomic_file_t af;
        if (s == BR_OK) s = br_atomic_open(&af, br_buf_str(&path));
        br_buf_free(&path);
        if (s) break;
        int ok = 1;
        for (size_t k = 0; k < nk[sp] && ok; k++) {
            const br_doc_t *doc = &d->v[keep[sp][k]];
            if (k) ok = fputs(BR_DOC_SEPARATOR, af.f) >= 0;
            ok = ok && fwrite(doc->text, 1, doc->len, af.f) == doc->len;
            st->bytes[sp] += doc->len;
        }
        ok = ok && fputc('\n', af.f) != EOF;
        st->docs[sp] = nk[sp];
        if (!ok) {
            s = br_error(BR_EIO, "%s: write failed", af.path);
            br_atomic_abort(&af);
        } else s = br_atomic_commit(&af);
    }
    free(ord);
    free(keep[0]);
    free(keep[1]);
    return s;
}

/* ---- cleaners --------------------------------------------------------------------------------- */

static int no_space_before(const char *w, size_t n)
{
    static const char *p[] = {".", ",", ";", ":", "!", "?", ")", "]", "'s", "n't", "'", "''", "'ll", "'re", "'ve", "'d", "'m"};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++)
        if (strlen(p[i]) == n && !memcmp(w, p[i], n)) return 1;
    return 0;
}

br_status br_clean_brown(const char *s, size_t n, char **out, size_t *out_len)
{
    br_buf_t b = BR_BUF_INIT;
    int ok = 1, line_has = 0, glue_next = 0;
    size_t i = 0;
    while (i < n && ok) {
        /* a line: tokens "word/tag" separated by spaces; a blank line separates paragraphs */
        size_t e = i;
        while (e < n && s[e] != '\n') e++;
        size_t k = i;
        int any = 0;
        while (k < e && ok) {
            while (k < e && isspace((unsigned char)s[k])) k++;
            size_t t = k;
            while (t < e && !isspace((unsigned char)s[t])) t++;
            if (t == k) break;
            const char *slash = NULL;
            for (size_t q = t; q > k; q--)
                if (s[q - 1] == '/') {
                    slash = s + q - 1;
                    break;
                }
            const char *w = s + k;
            size_t wl = slash ? (size_t)(slash - w) : t - k;
            k = t;
            if (wl == 0) continue;
            int is_open = wl == 2 && !memcmp(w, "``", 2), is_close = wl == 2 && !memcmp(w, "''", 2);
            if (is_open) w = "\"", wl = 1;
            if (is_close) w = "\"", wl = 1;
            if (wl == 1 && w[0] == '.' && b.len && b.data[b.len - 1] == '.') continue; /* "Jr." then "." */
            int space = line_has && !glue_next && !(is_close || (!is_open && no_space_before(w, wl)));
            if (space) ok = !br_buf_append(&b, " ", 1);
            ok = ok && !br_buf_append(&b, w, wl);
            glue_next = is_open || (wl == 1 && (w[0] == '(' || w[0] == '['));
            line_has = any = 1;
        }
        if (any) { /* one sentence per line */
            ok = ok && !br_buf_append(&b, "\n", 1);
            line_has = glue_next = 0;
        }
        size_t nx = e < n ? e + 1 : n;
        i = nx;
    }
    if (!ok) {
        br_buf_free(&b);
        return br_error(BR_ENOMEM, "out of memory");
    }
    if (!b.data && br_buf_append(&b, "", 0)) return br_error(BR_ENOMEM, "out of memory");
    *out = b.data;
    *out_len = b.len;
    return BR_OK;
}

br_status br_clean_metamath(const char *s, size_t n, char **out, size_t *out_len)
{
    br_buf_t b = BR_BUF_INIT;
    size_t i = 0;
    int ok = 1;
    while (i < n && ok) {
        const char *p = memmem(s + i, n - i, "$=", 2);
        size_t a = p ? (size_t)(p - s) : n;
        ok = !br_buf_append(&b, s + i, a - i);
        if (!p) break;
        const char *q = memmem(s + a + 2, n - a - 2, "$.", 2);
        if (!q) { /* unterminated proof: keep the rest as is */
            ok = ok && !br_buf_append(&b, s + a, n - a);
            break;
        }
        ok = ok && !br_buf_append(&b, "$= ... $.", 9);
        i = (size_t)(q - s) + 2;
    }
    if (!ok) {
        br_buf_free(&b);
        return br_error(BR_ENOMEM, "out of memory");
    }
    if (!b.data && br_buf_append(&b, "", 0)) return br_error(BR_ENOMEM, "out of memory");
    *out = b.data;
    *out_len = b.len;
    return BR_OK;
}

br_status br_docs_add_chunked(br_docs_t *d, const char *id_prefix, const char *text, size_t len, size_t target)
{
    size_t i = 0, k = 0;
    while (i < len) {
        size_t e = i + target < len ? i + target : len;
        if (e < len) { /* extend to the next blank line */
            const char *bl = memmem(text + e, len - e, "\n\n", 2);
            e = bl ? (size_t)(bl - text) + 1 : len;
        }
        char id[512];
        snprintf(id, sizeof id, "%s:%06zu", id_prefix, k++);
        BR_TRY(br_docs_add(d, id, text + i, e - i));
        i = e;
    }
    return BR_OK;
}

int br_name_in_list(const char *list, const char *name)
{
    if (!list) return 0;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == n && !strncmp(p, name, n)) return 1;
        if (!c) break;
        p = c + 1;
    }
    return 0;
}
