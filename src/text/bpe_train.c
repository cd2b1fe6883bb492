/* Byte-level BPE training (see bpe_train.h).
 *
 * 1. Read the corpus, split it into documents, pre-tokenise each with the regex (threads, one
 *    word-count hash map per thread, merged at the end).
 * 2. Every unique word becomes a sequence of byte symbols with its count.  pair -> (count,
 *    words containing it) is built once; a merge rewrites only the words listed for its pair
 *    and adjusts the counts of the neighbouring pairs.  The best pair comes from a max-heap
 *    whose entries are re-checked when popped (lazy invalidation).  Ties break on the smaller
 *    (left id, right id) so that the result does not depend on the thread count.
 * 3. Write tokenizer.json. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/bpe_train.h"

#include <dirent.h>
#include <jansson.h>
#include <omp.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/progress.h"
#include "base/rng.h"
#include "base/timer.h"
#include "base/threads.h"
#include "text/bytelevel.h"
#include "text/corpus.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

#define MAX_WORD 1024 /* longer pre-tokens (blobs) are not used for training */

/* ---- listing files ----------------------------------------------------------------------- */

typedef struct {
    char **v;
    size_t n, cap;
} strvec_t;

static int push_str(strvec_t *s, const char *p)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        char **nv = realloc(s->v, nc * sizeof *nv);
        if (!nv) return -1;
        s->v = nv;
        s->cap = nc;
    }
    if (!(s->v[s->n] = strdup(p))) return -1;
    s->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static br_status walk(const char *dir, int depth, const char *split, const char *exclude, strvec_t *out)
{
    if (depth > 16) return br_error(BR_EINVAL, "%s: folders nested too deep", dir);
    DIR *d = opendir(dir);
    if (!d) return br_error(BR_EIO, "%s: cannot open folder", dir);
    strvec_t names = {0};
    struct dirent *e;
    br_status st = BR_OK;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && push_str(&names, e->d_name)) st = br_error(BR_ENOMEM, "out of memory");
    closedir(d);
    if (names.n) qsort(names.v, names.n, sizeof *names.v, cmp_str);
    br_buf_t path = BR_BUF_INIT;
    for (size_t i = 0; i < names.n && st == BR_OK; i++) {
        if ((st = br_buf_path(&path, dir, names.v[i]))) break;
        struct stat sb;
        if (stat(br_buf_str(&path), &sb)) continue;
        if (S_ISDIR(sb.st_mode)) {
            if (depth == 0 && br_name_in_list(exclude, names.v[i])) continue;
            st = walk(br_buf_str(&path), depth + 1, split, exclude, out);
        } else if (S_ISREG(sb.st_mode)) {
            size_t l = strlen(names.v[i]);
            int txt = l > 4 && !strcmp(names.v[i] + l - 4, ".txt");
            int ok = split ? (l == strlen(split) + 4 && !strncmp(names.v[i], split, l - 4) && txt) : txt;
            if (ok && push_str(out, br_buf_str(&path))) st = br_error(BR_ENOMEM, "out of memory");
        }
    }
    br_buf_free(&path);
    br_free_paths(names.v, names.n);
    return st;
}

br_status br_list_text_files(const char *input, const char *split, const char *exclude, char ***paths, size_t *n)
{
    *paths = NULL;
    *n = 0;
    strvec_t out = {0};
    if (br_dir_exists(input)) {
        br_status st = walk(input, 0, split, exclude, &out);
        if (st) {
            br_free_paths(out.v, out.n);
            return st;
        }
        if (!out.n) return br_error(BR_ENOTFOUND, "%s: no %s%s files found", input, split ? split : "*", ".txt");
    } else if (br_file_exists(input)) {
        if (push_str(&out, input)) return br_error(BR_ENOMEM, "out of memory");
    } else return br_error(BR_ENOTFOUND, "%s: no such file or folder", input);
    *paths = out.v;
    *n = out.n;
    return BR_OK;
}

void br_free_paths(char **paths, size_t n)
{
    for (size_t i = 0; i < n; i++) free(paths[i]);
    free(paths);
}

/* ---- word counting ------------------------------------------------------------------------- */

typedef struct {
    uint64_t h;
    uint64_t count;
    uint32_t off, len;
} wslot_t;

typedef struct {
    wslot_t *s;
    size_t cap, n;
    unsigned char *keys;
    size_t klen, kcap;
    int oom;
} wmap_t;

static uint64_t hash_word(const unsigned char *p, size_t n) { return br_hash64(p, n, 0x5eed) | 1; /* 0 = empty */ }

static void wmap_add(wmap_t *m, const unsigned char *p, size_t n, uint64_t h, uint64_t c)
{
    if (m->oom) return;
    if (2 * (m->n + 1) > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 1 << 14;
        wslot_t *ns = calloc(nc, sizeof *ns);
        if (!ns) {
            m->oom = 1;
            return;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->s[i].h) continue;
            size_t j = m->s[i].h & (nc - 1);
            while (ns[j].h) j = (j + 1) & (nc - 1);
            ns[j] = m->s[i];
        }
        free(m->s);
        m->s = ns;
        m->cap = nc;
    }
    size_t j = h & (m->cap - 1);
    for (;; j = (j + 1) & (m->cap - 1)) {
        wslot_t *s = &m->s[j];
        if (!s->h) break;
        if (s->h == h && s->len == n && !memcmp(m->keys + s->off, p, n)) {
            s->count += c;
            return;
        }
    }
    if (m->klen + n > m->kcap) {
        size_t nc = m->kcap ? m->kcap * 2 : 1 << 20;
        while (nc < m->klen + n) nc *= 2;
        unsigned char *nk = realloc(m->keys, nc);
        if (!nk || nc > UINT32_MAX) {
            free(nk == m->keys ? NULL : nk);
            m->oom = 1;
            return;
        }
        m->keys = nk;
        m->kcap = nc;
    }
    memcpy(m->keys + m->klen, p, n);
    m->s[j] = (wslot_t){h, c, (uint32_t)m->klen, (uint32_t)n};
    m->klen += n;
    m->n++;
}

static void wmap_free(wmap_t *m)
{
    free(m->s);
    free(m->keys);
}

static void count_doc(const pcre2_code *re, pcre2_match_data *md, const unsigned char *s, size_t len, wmap_t *m,
                      size_t *nwords)
{
    size_t from = 0;
    while (from < len) {
        int rc = pcre2_jit_match(re, s, len, from, 0, md, NULL);
        if (rc < 0) break; /* no match; invalid UTF-8 gaps are skipped */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] <= ov[0]) {
            from = ov[0] + 1;
            continue;
        }
        size_t n = ov[1] - ov[0];
        if (n <= MAX_WORD) {
            wmap_add(m, s + ov[0], n, hash_word(s + ov[0], n), 1);
            (*nwords)++;
        }
        from = ov[1];
    }
}

/* ---- merge learning ------------------------------------------------------------------------ */

typedef struct {
    uint32_t *v;
    uint32_t n, cap;
} u32vec_t;

typedef struct {
    uint64_t count;
    uint32_t a, b, idx;
} hent_t;

typedef struct {
    /* pairs */
    uint64_t *key;   /* hash slots: (a<<32|b)+1, 0 empty */
    uint32_t *slot_idx;
    size_t cap;
    int64_t *count;  /* per pair index */
    uint32_t *pa, *pb;
    u32vec_t *words;
    uint8_t *touched;
    size_t n, ncap;
    /* heap */
    hent_t *h;
    size_t hn, hcap;
    int oom;
} pairs_t;

static inline uint64_t mix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

static void pairs_grow_table(pairs_t *P)
{
    size_t nc = P->cap ? P->cap * 2 : 1 << 16;
    uint64_t *nk = calloc(nc, sizeof *nk);
    uint32_t *ni = malloc(nc * sizeof *ni);
    if (!nk || !ni) {
        free(nk);
        free(ni);
        P->oom = 1;
        return;
    }
    for (size_t i = 0; i < P->cap; i++) {
        if (!P->key[i]) continue;
        size_t j = mix64(P->key[i]) & (nc - 1);
        while (nk[j]) j = (j + 1) & (nc - 1);
        nk[j] = P->key[i];
        ni[j] = P->slot_idx[i];
    }
    free(P->key);
    free(P->slot_idx);
    P->key = nk;
    P->slot_idx = ni;
    P->cap = nc;
}

/* Index of pair (a, b), created with count 0 when new; UINT32_MAX when out of memory. */
static uint32_t pair_get(pairs_t *P, uint32_t a, uint32_t b)
{
    if (2 * (P->n + 1) > P->cap) pairs_grow_table(P);
    if (P->oom) return UINT32_MAX;
    uint64_t k = (((uint64_t)a << 32) | b) + 1;
    size_t j = mix64(k) & (P->cap - 1);
    for (;; j = (j + 1) & (P->cap - 1)) {
        if (P->key[j] == k) return P->slot_idx[j];
        if (!P->key[j]) break;
    }
    if (P->n == P->ncap) {
        size_t nc = P->ncap ? P->ncap * 2 : 1 << 16;
        int64_t *c = realloc(P->count, nc * sizeof *c);
        if (c) P->count = c;
        uint32_t *x = realloc(P->pa, nc * sizeof *x);
        if (x) P->pa = x;
        uint32_t *y = realloc(P->pb, nc * sizeof *y);
        if (y) P->pb = y;
        u32vec_t *w = realloc(P->words, nc * sizeof *w);
        if (w) P->words = w;
        uint8_t *t = realloc(P->touched, nc);
        if (t) P->touched = t;
        if (!c || !x || !y || !w || !t) {
            P->oom = 1;
            return UINT32_MAX;
        }
        P->ncap = nc;
    }
    uint32_t idx = (uint32_t)P->n++;
    P->key[j] = k;
    P->slot_idx[j] = idx;
    P->count[idx] = 0;
    P->pa[idx] = a;
    P->pb[idx] = b;
    P->words[idx] = (u32vec_t){0};
    P->touched[idx] = 0;
    return idx;
}

static void add_word(pairs_t *P, uint32_t idx, uint32_t w)
{
    u32vec_t *v = &P->words[idx];
    if (v->n && v->v[v->n - 1] == w) return;
    if (v->n == v->cap) {
        uint32_t nc = v->cap ? v->cap * 2 : 4;
        uint32_t *nv = realloc(v->v, nc * sizeof *nv);
        if (!nv) {
            P->oom = 1;
            return;
        }
        v->v = nv;
        v->cap = nc;
    }
    v->v[v->n++] = w;
}

static inline int hent_before(const hent_t *x, const hent_t *y)
{
    if (x->count != y->count) return x->count > y->count;
    if (x->a != y->a) return x->a < y->a;
    return x->b < y->b;
}

static void heap_push(pairs_t *P, uint32_t idx)
{
    if (P->hn == P->hcap) {
        size_t nc = P->hcap ? P->hcap * 2 : 1 << 16;
        hent_t *nh = realloc(P->h, nc * sizeof *nh);
        if (!nh) {
            P->oom = 1;
            return;
        }
        P->h = nh;
        P->hcap = nc;
    }
    hent_t e = {(uint64_t)P->count[idx], P->pa[idx], P->pb[idx], idx};
    size_t i = P->hn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hent_before(&e, &P->h[p])) break;
        P->h[i] = P->h[p];
        i = p;
    }
    P->h[i] = e;
}

static hent_t heap_pop(pairs_t *P)
{
    hent_t top = P->h[0], last = P->h[--P->hn];
    size_t i = 0, m = P->hn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && hent_before(&P->h[c + 1], &P->h[c])) c++;
        if (!hent_before(&P->h[c], &last)) break;
        P->h[i] = P->h[c];
        i = c;
    }
    if (m) P->h[i] = last;
    return top;
}

static void pairs_free(pairs_t *P)
{
    for (size_t i = 0; i < P->n; i++) free(P->words[i].v);
    free(P->words);
    free(P->key);
    free(P->slot_idx);
    free(P->count);
    free(P->pa);
    free(P->pb);
    free(P->touched);
    free(P->h);
}

typedef struct {
    uint32_t *off, *len; /* per symbol id: bytes in pool */
    unsigned char *pool;
    size_t n, cap, plen, pcap;
    /* bytes -> id */
    int32_t *tab;
    size_t tcap;
} symtab_t;

static int32_t sym_find(const symtab_t *S, const unsigned char *p, size_t n, size_t *slot)
{
    uint64_t h = br_hash64(p, n, 7);
    size_t j = h & (S->tcap - 1);
    for (;; j = (j + 1) & (S->tcap - 1)) {
        int32_t id = S->tab[j];
        if (id < 0) break;
        if (S->len[id] == n && !memcmp(S->pool + S->off[id], p, n)) return id;
    }
    *slot = j;
    return -1;
}

/* Adds a symbol (the tab has room: sized for the final vocab). */
static int sym_add(symtab_t *S, const unsigned char *p, size_t n, size_t slot)
{
    if (S->plen + n > S->pcap) {
        size_t nc = S->pcap ? S->pcap * 2 : 1 << 16;
        while (nc < S->plen + n) nc *= 2;
        unsigned char *np = realloc(S->pool, nc);
        if (!np) return -1;
        S->pool = np;
        S->pcap = nc;
    }
    memcpy(S->pool + S->plen, p, n);
    S->off[S->n] = (uint32_t)S->plen;
    S->len[S->n] = (uint32_t)n;
    S->tab[slot] = (int32_t)S->n;
    S->plen += n;
    return (int)S->n++;
}

/* ---- output ----------------------------------------------------------------------------------- */

static json_t *bytelevel_str(const symtab_t *S, uint32_t id)
{
    size_t n = S->len[id];
    char stack[512];
    char *buf = 2 * n + 1 <= sizeof stack ? stack : malloc(2 * n + 1);
    if (!buf) return NULL;
    br_bytelevel_encode(buf, S->pool + S->off[id], n);
    json_t *s = json_string(buf);
    if (buf != stack) free(buf);
    return s;
}

static br_status write_json(const char *path, const symtab_t *S, const uint32_t *ml, const uint32_t *mr, size_t nmerge,
                            const char *pattern)
{
    json_t *root = json_object(), *vocab = json_object(), *merges = json_array();
    json_t *added = json_array(), *model = json_object();
    br_status st = BR_OK;
    if (!root || !vocab || !merges || !added || !model) st = br_error(BR_ENOMEM, "out of memory");
    for (size_t id = 0; st == BR_OK && id < S->n; id++) {
        json_t *s = bytelevel_str(S, (uint32_t)id);
        if (!s || json_object_set_new(vocab, json_string_value(s), json_integer((json_int_t)id))) st = br_error(BR_ENOMEM, "out of memory");
        json_decref(s);
    }
    size_t eot = S->n;
    if (st == BR_OK) json_object_set_new(vocab, "<|endoftext|>", json_integer((json_int_t)eot));
    for (size_t i = 0; st == BR_OK && i < nmerge; i++) {
        json_t *a = bytelevel_str(S, ml[i]), *b = bytelevel_str(S, mr[i]);
        if (!a || !b) st = br_error(BR_ENOMEM, "out of memory");
        else {
            size_t la = strlen(json_string_value(a)), lb = strlen(json_string_value(b));
            char *m = malloc(la + lb + 2);
            if (!m) st = br_error(BR_ENOMEM, "out of memory");
            else {
                memcpy(m, json_string_value(a), la);
                m[la] = ' ';
                memcpy(m + la + 1, json_string_value(b), lb + 1);
                json_array_append_new(merges, json_string(m));
                free(m);
            }
        }
        json_decref(a);
        json_decref(b);
    }
    if (st == BR_OK) {
        json_t *at = json_object();
        json_object_set_new(at, "id", json_integer((json_int_t)eot));
        json_object_set_new(at, "content", json_string("<|endoftext|>"));
        json_object_set_new(at, "single_word", json_false());
        json_object_set_new(at, "lstrip", json_false());
        json_object_set_new(at, "rstrip", json_false());
        json_object_set_new(at, "normalized", json_false());
        json_object_set_new(at, "special", json_true());
        json_array_append_new(added, at);
        json_object_set_new(root, "version", json_string("1.0"));
        json_object_set_new(root, "truncation", json_null());
        json_object_set_new(root, "padding", json_null());
        json_object_set_new(root, "added_tokens", added);
        added = NULL;
        json_object_set_new(root, "normalizer", json_null());
        json_t *bl = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1,
                               "use_regex", strcmp(pattern, br_pattern_gpt2) == 0);
        if (!strcmp(pattern, br_pattern_gpt2)) json_object_set_new(root, "pre_tokenizer", bl);
        else {
            json_t *split = json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex", pattern, "behavior",
                                      "Isolated", "invert", 0);
            json_object_set_new(root, "pre_tokenizer", json_pack("{s:s, s:[o, o]}", "type", "Sequence", "pretokenizers", split, bl));
        }
        json_object_set_new(root, "post_processor", json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 1,
                                                              "trim_offsets", 0, "use_regex", 1));
        json_object_set_new(root, "decoder", json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 1,
                                                       "trim_offsets", 1, "use_regex", 1));
        json_object_set_new(model, "type", json_string("BPE"));
        json_object_set_new(model, "dropout", json_null());
        json_object_set_new(model, "unk_token", json_null());
        json_object_set_new(model, "continuing_subword_prefix", json_null());
        json_object_set_new(model, "end_of_word_suffix", json_null());
        json_object_set_new(model, "fuse_unk", json_false());
        json_object_set_new(model, "byte_fallback", json_false());
        json_object_set_new(model, "ignore_merges", json_false());
        json_object_set_new(model, "vocab", vocab);
        json_object_set_new(model, "merges", merges);
        vocab = merges = NULL;
        json_object_set_new(root, "model", model);
        model = NULL;
        char *text = json_dumps(root, JSON_INDENT(1) | JSON_ENSURE_ASCII);
        if (!text) st = br_error(BR_ENOMEM, "out of memory");
        else {
            st = br_write_file_atomic(path, text, strlen(text));
            free(text);
        }
    }
    json_decref(root);
    json_decref(vocab);
    json_decref(merges);
    json_decref(added);
    json_decref(model);
    return st;
}

/* ---- read ------------------------------------------------------------------------------------- */

typedef struct {
    const unsigned char *p;
    size_t n;
} span_t;

/* The corpus in memory: one buffer per file, and the documents in them. */
typedef struct {
    char **bufs;
    size_t nbufs;
    span_t *docs;
    size_t ndocs, dcap;
} corpus_t;

static void corpus_free(corpus_t *c)
{
    for (size_t i = 0; i < c->nbufs; i++) free(c->bufs ? c->bufs[i] : NULL);
    free(c->bufs);
    free(c->docs);
    memset(c, 0, sizeof *c);
}

/* Splits buf into documents at BR_DOC_SEPARATOR. */
static br_status split_docs(const char *buf, size_t n, corpus_t *c)
{
    const char *sep = BR_DOC_SEPARATOR;
    size_t sl = strlen(sep), pos = 0;
    while (pos < n) {
        const char *hit = memmem(buf + pos, n - pos, sep, sl);
        size_t end = hit ? (size_t)(hit - buf) : n;
        if (end > pos) {
            if (c->ndocs == c->dcap) {
                size_t nc = c->dcap ? c->dcap * 2 : 1024;
                span_t *nd = realloc(c->docs, nc * sizeof *nd);
                if (!nd) return br_error(BR_ENOMEM, "out of memory");
                c->docs = nd;
                c->dcap = nc;
            }
            c->docs[c->ndocs++] = (span_t){(const unsigned char *)buf + pos, end - pos};
        }
        pos = hit ? end + sl : n;
    }
    return BR_OK;
}

/* take[i]: bytes to read of files[i].  With a budget (--max-mb) every file gets an equal share
 * (files smaller than their share pass the rest on), so a budget samples every domain instead
 * of the first ones. */
static br_status file_shares(char **files, size_t nfiles, size_t max_bytes, size_t *take)
{
    for (size_t i = 0; i < nfiles; i++) {
        struct stat sb;
        take[i] = stat(files[i], &sb) == 0 ? (size_t)sb.st_size : SIZE_MAX;
    }
    if (!max_bytes) return BR_OK;
    size_t budget = max_bytes, left = nfiles;
    int *done = calloc(nfiles, sizeof *done);
    if (!done) return br_error(BR_ENOMEM, "out of memory");
    for (int changed = 1; changed && left;) {
        changed = 0;
        for (size_t i = 0; i < nfiles; i++)
            if (!done[i] && take[i] <= budget / left) {
                budget -= take[i];
                left--;
                done[i] = changed = 1;
            }
    }
    for (size_t i = 0; i < nfiles; i++)
        if (!done[i]) take[i] = budget / left;
    free(done);
    return BR_OK;
}

/* Reads the corpus files (each cut at a line end to its share), checks they are UTF-8 and
 * splits them into documents. */
static br_status read_corpus(const char *input, const br_bpe_train_opts_t *o, corpus_t *c, br_bpe_train_stats_t *stt)
{
    char **files;
    size_t nfiles, total = 0;
    BR_TRY(br_list_text_files(input, o->split, o->exclude, &files, &nfiles));
    c->bufs = calloc(nfiles, sizeof *c->bufs);
    c->nbufs = c->bufs ? nfiles : 0;
    size_t *take = calloc(nfiles, sizeof *take);
    br_status st = c->bufs && take ? BR_OK : br_error(BR_ENOMEM, "out of memory");
    if (st == BR_OK) st = file_shares(files, nfiles, o->max_bytes, take);
    for (size_t i = 0; i < nfiles && st == BR_OK; i++) {
        size_t n;
        st = br_read_file(files[i], &c->bufs[i], &n);
        if (st) break;
        if (n > take[i]) { /* cut at a line end */
            size_t cut = take[i];
            while (cut > 0 && c->bufs[i][cut - 1] != '\n') cut--;
            n = cut;
        }
        st = br_utf8_check(files[i], c->bufs[i], n);
        if (st == BR_OK) st = split_docs(c->bufs[i], n, c);
        total += n;
        stt->files++;
    }
    free(take);
    br_free_paths(files, nfiles);
    if (st == BR_OK && total == 0) st = br_error(BR_EINVAL, "%s: the corpus is empty", input);
    stt->bytes = total;
    return st;
}

/* ---- count ------------------------------------------------------------------------------------ */

/* Counts the pre-token words of every document into *W (the threads count into maps of their
 * own, merged at the end). */
static br_status count_words(const br_bpe_train_opts_t *o, int nth, const corpus_t *c, wmap_t *W,
                             br_bpe_train_stats_t *stt)
{
    int err;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)o->pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &eoff, NULL);
    if (!re || pcre2_jit_compile(re, PCRE2_JIT_COMPLETE)) {
        pcre2_code_free(re);
        return br_error(BR_EINVAL, "pre-tokenizer regex does not compile with JIT");
    }
    wmap_t *maps = calloc((size_t)nth, sizeof *maps);
    if (!maps) {
        pcre2_code_free(re);
        return br_error(BR_ENOMEM, "out of memory");
    }
    br_progress_t prog;
    size_t total = stt->bytes;
    if (!o->quiet) br_progress_start(&prog, "bpe: counting words", (double)total / 1e6, "MB");
    size_t done = 0, nwords = 0;
#pragma omp parallel num_threads(nth) reduction(+ : nwords)
    {
        int tid = omp_get_thread_num();
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        if (!md) maps[tid].oom = 1;
#pragma omp for schedule(dynamic, 1)
        for (size_t d = 0; d < c->ndocs; d++) {
            if (md) count_doc(re, md, c->docs[d].p, c->docs[d].n, &maps[tid], &nwords);
            if (!o->quiet) {
                size_t dn;
#pragma omp atomic capture
                dn = done += c->docs[d].n;
                if (tid == 0) br_progress_update(&prog, (double)dn / 1e6);
            }
        }
        pcre2_match_data_free(md);
    }
    if (!o->quiet) br_progress_finish(&prog);
    pcre2_code_free(re);
    stt->words = nwords;
    br_status st = BR_OK;
    for (int i = 0; i < nth; i++)
        if (maps[i].oom) st = br_error(BR_ENOMEM, "out of memory counting words");
    for (int i = 1; i < nth && st == BR_OK; i++) {
        for (size_t j = 0; j < maps[i].cap; j++)
            if (maps[i].s[j].h)
                wmap_add(&maps[0], maps[i].keys + maps[i].s[j].off, maps[i].s[j].len, maps[i].s[j].h, maps[i].s[j].count);
        wmap_free(&maps[i]);
        memset(&maps[i], 0, sizeof maps[i]);
        if (maps[0].oom) st = br_error(BR_ENOMEM, "out of memory counting words");
    }
    for (int i = 1; i < nth; i++) wmap_free(&maps[i]);
    if (st == BR_OK) *W = maps[0];
    else wmap_free(&maps[0]);
    free(maps);
    return st;
}

/* ---- build ------------------------------------------------------------------------------------ */

/* The unique words as symbol sequences: word w is syms[start[w] .. start[w] + len[w]) and
 * occurs count[w] times.  Their order does not matter: merges depend on counts and ids. */
typedef struct {
    uint32_t *start, *len, *syms;
    uint64_t *count;
    size_t n;
} words_t;

static void words_free(words_t *w)
{
    free(w->start);
    free(w->len);
    free(w->count);
    free(w->syms);
}

static br_status build_words(const wmap_t *W, words_t *w)
{
    w->n = W->n;
    w->start = malloc((W->n + 1) * sizeof *w->start);
    w->len = malloc((W->n + 1) * sizeof *w->len);
    w->count = malloc((W->n + 1) * sizeof *w->count);
    w->syms = malloc((W->klen + 1) * sizeof *w->syms);
    if (!w->start || !w->len || !w->count || !w->syms) return br_error(BR_ENOMEM, "out of memory");
    size_t k = 0, pos = 0;
    for (size_t j = 0; j < W->cap; j++) {
        if (!W->s[j].h) continue;
        w->start[k] = (uint32_t)pos;
        w->len[k] = W->s[j].len;
        w->count[k] = W->s[j].count;
        for (uint32_t i = 0; i < W->s[j].len; i++) w->syms[pos++] = W->keys[W->s[j].off + i];
        k++;
    }
    return BR_OK;
}

/* A symbol table with room for `target` symbols, holding the 256 bytes as ids 0..255. */
static br_status symtab_init(symtab_t *S, size_t target)
{
    S->cap = target;
    S->off = malloc(S->cap * sizeof *S->off);
    S->len = malloc(S->cap * sizeof *S->len);
    S->tcap = 16;
    while (S->tcap < 2 * S->cap) S->tcap *= 2;
    S->tab = malloc(S->tcap * sizeof *S->tab);
    if (!S->off || !S->len || !S->tab) return br_error(BR_ENOMEM, "out of memory");
    memset(S->tab, 0xff, S->tcap * sizeof *S->tab);
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        size_t slot = 0;
        sym_find(S, &c, 1, &slot);
        if (sym_add(S, &c, 1, slot) < 0) return br_error(BR_ENOMEM, "out of memory");
    }
    return BR_OK;
}

static void symtab_free(symtab_t *S)
{
    free(S->off);
    free(S->len);
    free(S->pool);
    free(S->tab);
}

/* Every adjacent pair of every word, counted by occurrences, each knowing its words; then the
 * max-heap of all pairs. */
static br_status count_pairs(pairs_t *P, const words_t *w)
{
    for (size_t k = 0; k < w->n; k++) {
        const uint32_t *s = w->syms + w->start[k];
        for (uint32_t i = 0; i + 1 < w->len[k]; i++) {
            uint32_t idx = pair_get(P, s[i], s[i + 1]);
            if (idx == UINT32_MAX) break;
            P->count[idx] += (int64_t)w->count[k];
            add_word(P, idx, (uint32_t)k);
        }
        if (P->oom) return br_error(BR_ENOMEM, "out of memory counting pairs");
    }
    for (size_t i = 0; i < P->n; i++) heap_push(P, (uint32_t)i);
    return BR_OK;
}

/* ---- merge ------------------------------------------------------------------------------------ */

/* The merge loop's state: pair counts and heap, the words, and the pairs whose count rose
 * during the current merge (pushed on the heap again once it is done). */
typedef struct {
    pairs_t P;
    words_t *w;
    uint32_t *touched;
    size_t ntouched, tcap;
} merger_t;

/* Adds delta occurrences to pair ix (UINT32_MAX: none, pair_get ran out of memory) seen in
 * word w; a pair that gains is remembered for the heap. */
static void touch(merger_t *m, uint32_t ix, int64_t delta, uint32_t w)
{
    pairs_t *P = &m->P;
    if (ix == UINT32_MAX) return;
    P->count[ix] += delta;
    if (delta <= 0) return;
    add_word(P, ix, w);
    if (P->touched[ix]) return;
    if (m->ntouched == m->tcap) {
        size_t nc = m->tcap ? m->tcap * 2 : 1024;
        uint32_t *nt = realloc(m->touched, nc * sizeof *nt);
        if (!nt) {
            P->oom = 1;
            return;
        }
        m->touched = nt;
        m->tcap = nc;
    }
    P->touched[ix] = 1;
    m->touched[m->ntouched++] = ix;
}

/* Replaces every (a, b) in the words of pair `idx` by N, moving the counts of the
 * neighbouring pairs: (l, a) -> (l, N) and (b, r) -> (N, r). */
static void rewrite_words(merger_t *m, uint32_t idx, uint32_t a, uint32_t b, uint32_t N)
{
    pairs_t *P = &m->P;
    words_t *W = m->w;
    u32vec_t list = P->words[idx];
    P->words[idx] = (u32vec_t){0};
    m->ntouched = 0;
    for (uint32_t li = 0; li < list.n && !P->oom; li++) {
        uint32_t w = list.v[li];
        uint32_t *s = W->syms + W->start[w], L = W->len[w], i = 0, j = 0;
        int64_t c = (int64_t)W->count[w];
        while (i < L) {
            if (i + 1 < L && s[i] == a && s[i + 1] == b) {
                if (j > 0) {
                    uint32_t l = s[j - 1];
                    if (!(l == a && a == b)) touch(m, pair_get(P, l, a), -c, w); /* (a, b) itself is zeroed below */
                    touch(m, pair_get(P, l, N), c, w);
                }
                if (i + 2 < L) {
                    uint32_t r = s[i + 2];
                    if (!(r == b && a == b)) touch(m, pair_get(P, b, r), -c, w);
                    touch(m, pair_get(P, N, r), c, w);
                }
                s[j++] = N;
                i += 2;
            } else s[j++] = s[i++];
        }
        W->len[w] = j;
    }
    free(list.v);
    P->count[idx] = 0;
    for (size_t i = 0; i < m->ntouched; i++) {
        P->touched[m->touched[i]] = 0;
        if (P->count[m->touched[i]] > 0) heap_push(P, m->touched[i]);
    }
}

/* The symbol for the bytes of a followed by b: an existing one with those bytes, or a new one;
 * -1 when out of memory. */
static int32_t concat_symbol(symtab_t *S, uint32_t a, uint32_t b)
{
    size_t la = S->len[a], lb = S->len[b];
    unsigned char stackbuf[512];
    unsigned char *cat = la + lb <= sizeof stackbuf ? stackbuf : malloc(la + lb);
    if (!cat) return -1;
    memcpy(cat, S->pool + S->off[a], la);
    memcpy(cat + la, S->pool + S->off[b], lb);
    size_t slot = 0;
    int32_t nid = sym_find(S, cat, la + lb, &slot);
    if (nid < 0) nid = sym_add(S, cat, la + lb, slot);
    if (cat != stackbuf) free(cat);
    return nid;
}

/* Merges the most frequent pair until S holds `target` symbols, no pair is left, or the best is
 * rarer than min_frequency; merge k joins ml[k] and mr[k]. */
static br_status learn_merges(merger_t *m, symtab_t *S, size_t target, const br_bpe_train_opts_t *o, uint32_t *ml,
                              uint32_t *mr, size_t *nmerge)
{
    pairs_t *P = &m->P;
    br_status st = BR_OK;
    br_progress_t prog;
    if (!o->quiet) br_progress_start(&prog, "bpe: merges", (double)(target - 256), "merge");
    while (st == BR_OK && S->n < target && P->hn) {
        hent_t top = heap_pop(P);
        int64_t cur = P->count[top.idx];
        if ((uint64_t)cur != top.count) { /* stale heap entry */
            if (cur > 0) heap_push(P, top.idx);
            continue;
        }
        if ((uint64_t)cur < o->min_frequency) break;
        int32_t nid = concat_symbol(S, top.a, top.b);
        if (nid < 0) {
            st = br_error(BR_ENOMEM, "out of memory");
            break;
        }
        ml[*nmerge] = top.a;
        mr[*nmerge] = top.b;
        (*nmerge)++;
        rewrite_words(m, top.idx, top.a, top.b, (uint32_t)nid);
        if (P->oom) st = br_error(BR_ENOMEM, "out of memory while merging");
        if (!o->quiet) br_progress_update(&prog, (double)(S->n - 256));
    }
    if (!o->quiet) br_progress_finish(&prog);
    return st;
}

/* ---- driver: read / count / build / merge / write ---------------------------------------------- */

br_status br_bpe_train(const char *input, const char *out_json, const br_bpe_train_opts_t *opts, br_bpe_train_stats_t *stats)
{
    br_bpe_train_stats_t stt = {0};
    br_bpe_train_opts_t o = *opts;
    if (!o.pattern) o.pattern = br_pattern_gpt2;
    if (!o.min_frequency) o.min_frequency = 2;
    if (o.vocab_size < 258) return br_error(BR_EINVAL, "vocab size %zu is too small: byte-level BPE needs 256 byte tokens, "
                                            "<|endoftext|> and at least one merge (>= 258)", o.vocab_size);
    if (o.vocab_size > (1u << 20)) return br_error(BR_EINVAL, "vocab size %zu is too large (at most 1048576)", o.vocab_size);
    int nth = o.threads > 0 ? o.threads : br_get_threads();
    if (nth < 1) nth = 1;
    double t0 = br_now();
    corpus_t corpus = {0};
    wmap_t counts = {0};
    br_status st = read_corpus(input, &o, &corpus, &stt);
    if (st == BR_OK) st = count_words(&o, nth, &corpus, &counts, &stt);
    corpus_free(&corpus); /* the words hold copies of their bytes */
    stt.seconds_count = br_now() - t0;

    words_t words = {0};
    if (st == BR_OK) {
        stt.unique_words = counts.n;
        st = build_words(&counts, &words);
    }
    wmap_free(&counts);
    double t1 = br_now();
    size_t target = o.vocab_size - 1; /* regular tokens; <|endoftext|> is last */
    symtab_t S = {0};
    merger_t m = {.w = &words};
    uint32_t *ml = NULL, *mr = NULL;
    size_t nmerge = 0;
    if (st == BR_OK) {
        ml = malloc(target * sizeof *ml);
        mr = malloc(target * sizeof *mr);
        st = ml && mr ? symtab_init(&S, target) : br_error(BR_ENOMEM, "out of memory");
    }
    if (st == BR_OK) st = count_pairs(&m.P, &words);
    if (st == BR_OK) st = learn_merges(&m, &S, target, &o, ml, mr, &nmerge);
    stt.seconds_merge = br_now() - t1;
    stt.merges = nmerge;
    stt.vocab_size = S.n + 1;
    if (st == BR_OK) st = write_json(out_json, &S, ml, mr, nmerge, o.pattern);
    pairs_free(&m.P);
    free(m.touched);
    symtab_free(&S);
    free(ml);
    free(mr);
    words_free(&words);
    if (stats) *stats = stt;
    return st;
}
