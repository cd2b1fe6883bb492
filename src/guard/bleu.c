/* NLTK-exact BLEU.  See bleu.h for the semantics; nltk/translate/bleu_score.py (3.8) is the
 * reference, and tests/ref/gen_bleu_fixture.py checks us against it.
 *
 * Counting: every n-gram gets a dense integer id, built order by order — the id of the
 * n-gram starting at i is the interned pair (id of the (n-1)-gram at i, token i+n-1) — so
 * matching is exact (no hash collisions decide anything) and costs O(tokens) per order.
 * Hypothesis n-grams are interned first, so their ids are [0, mh) and counts are plain arrays. */
#include "guard/bleu.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Exactness needs a*b+c rounded twice, never fused: GCC in ISO C mode (-std=c11) does not
 * contract; clang needs the pragma. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

void br_bleu_opts_default(br_bleu_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->n = 4;
    for (int i = 0; i < 4; i++) o->weights[i] = 0.25;
    o->smoothing = BR_BLEU_SMOOTH0;
    o->epsilon = 0.1;
    o->k = 5;
    o->auto_reweigh = false;
    o->unit = BR_BLEU_CHAR;
}

/* ---- Python whitespace ---- */

bool br_py_isspace(uint32_t cp)
{
    if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

/* ---- CPython's math.fsum ---- */

double br_fsum(const double *v, int count)
{
    double p[2 * BR_BLEU_MAX_N + 8];
    double *ps = p;
    double *heap = NULL;
    int n = 0, cap = (int)(sizeof p / sizeof *p);
    double special_sum = 0.0, inf_sum = 0.0;
    for (int k = 0; k < count; k++) {
        double x = v[k], xsave = x, y, t, hi, yr, lo;
        int i = 0;
        for (int j = 0; j < n; j++) {
            y = ps[j];
            if (fabs(x) < fabs(y)) {
                t = x;
                x = y;
                y = t;
            }
            hi = x + y;
            yr = hi - x;
            lo = y - yr;
            if (lo != 0.0) ps[i++] = lo;
            x = hi;
        }
        n = i;
        if (x != 0.0) {
            if (!isfinite(x)) {
                if (isfinite(xsave)) { /* intermediate overflow: Python raises */
                    free(heap);
                    return NAN;
                }
                if (isinf(xsave)) inf_sum += xsave;
                special_sum += xsave;
                n = 0;
            } else {
                if (n >= cap) {
                    double *nh = malloc(sizeof(double) * (size_t)cap * 2);
                    if (!nh) {
                        free(heap);
                        return NAN;
                    }
                    memcpy(nh, ps, sizeof(double) * (size_t)n);
                    free(heap);
                    heap = ps = nh;
                    cap *= 2;
                }
                ps[n++] = x;
            }
        }
    }
    if (special_sum != 0.0) {
        free(heap);
        return isnan(inf_sum) ? NAN : special_sum;
    }
    double hi = 0.0;
    if (n > 0) {
        double x, y, yr, lo = 0.0;
        hi = ps[--n];
        while (n > 0) {
            x = hi;
            y = ps[--n];
            hi = x + y;
            yr = hi - x;
            lo = y - yr;
            if (lo != 0.0) break;
        }
        if (n > 0 && ((lo < 0.0 && ps[n - 1] < 0.0) || (lo > 0.0 && ps[n - 1] > 0.0))) {
            y = lo * 2.0;
            x = hi + y;
            yr = x - hi;
            if (y == yr) hi = x;
        }
    }
    free(heap);
    return hi;
}

/* ---- exact interning of 64-bit keys to dense ids ---- */

#define EMPTY_KEY UINT64_MAX

typedef struct {
    uint64_t *keys;
    uint32_t *vals;
    size_t mask;
    uint32_t count;
} intern_t;

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static void intern_clear(intern_t *t)
{
    memset(t->keys, 0xFF, sizeof(uint64_t) * (t->mask + 1));
    t->count = 0;
}

static inline uint32_t intern_get(intern_t *t, uint64_t key)
{
    size_t h = (size_t)mix64(key) & t->mask;
    for (;;) {
        uint64_t k = t->keys[h];
        if (k == key) return t->vals[h];
        if (k == EMPTY_KEY) {
            t->keys[h] = key;
            t->vals[h] = t->count;
            return t->count++;
        }
        h = (h + 1) & t->mask;
    }
}

/* Word interning: key = 64-bit hash of the bytes; equal hashes are confirmed by memcmp, so
 * a collision only costs a probe, never a wrong match. */
typedef struct {
    uint64_t *hash;
    uint32_t *vals;
    size_t mask;
    const char **wptr; /* id -> first occurrence */
    uint32_t *wlen;
    uint32_t count;
} winterp_t;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, then mixed */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h ^ n);
}

static uint32_t winterp_get(winterp_t *t, const char *s, uint32_t n)
{
    uint64_t hv = hash_bytes(s, n);
    if (hv == EMPTY_KEY) hv = 0;
    size_t h = (size_t)hv & t->mask;
    for (;;) {
        uint64_t k = t->hash[h];
        if (k == EMPTY_KEY) {
            uint32_t id = t->count++;
            t->hash[h] = hv;
            t->vals[h] = id;
            t->wptr[id] = s;
            t->wlen[id] = n;
            return id;
        }
        if (k == hv) {
            uint32_t id = t->vals[h];
            if (t->wlen[id] == n && memcmp(t->wptr[id], s, n) == 0) return id;
        }
        h = (h + 1) & t->mask;
    }
}

/* ---- tokenisation ---- */

/* Tokens of one text appended to tok (capacity: bytes of the text). Returns the count. */
static size_t tokenize_chars(intern_t *it, const char *s, size_t bytes, uint32_t *tok)
{
    size_t n = 0, i = 0, len;
    while (i < bytes) {
        uint32_t cp;
        if ((unsigned char)s[i] < 0x80) {
            cp = (unsigned char)s[i];
            len = 1;
        } else {
            cp = br_utf8_decode((const unsigned char *)s + i, bytes - i, &len);
        }
        tok[n++] = intern_get(it, cp);
        i += len;
    }
    return n;
}

static size_t tokenize_words(winterp_t *wt, const char *s, size_t bytes, uint32_t *tok)
{
    size_t n = 0, i = 0, len, start = 0;
    bool in_word = false;
    while (i < bytes) {
        uint32_t cp = br_utf8_decode((const unsigned char *)s + i, bytes - i, &len);
        bool sp = br_py_isspace(cp);
        if (sp && in_word) {
            tok[n++] = winterp_get(wt, s + start, (uint32_t)(i - start));
            in_word = false;
        } else if (!sp && !in_word) {
            start = i;
            in_word = true;
        }
        i += len;
    }
    if (in_word) tok[n++] = winterp_get(wt, s + start, (uint32_t)(i - start));
    return n;
}

static size_t count_words(const char *s, size_t bytes)
{
    size_t n = 0, i = 0, len;
    bool in_word = false;
    while (i < bytes) {
        uint32_t cp = br_utf8_decode((const unsigned char *)s + i, bytes - i, &len);
        bool sp = br_py_isspace(cp);
        if (!sp && !in_word) n++;
        in_word = !sp;
        i += len;
    }
    return n;
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

/* ---- fast path: characters, one reference, orders <= 4, <= 255 distinct characters ----
 * Characters get ids 1..D (D <= 255) in the pair.  Unigrams and (when D <= 127) bigrams are
 * counted in direct arrays; longer n-grams pack exactly into 32-bit keys (one byte per
 * character, the length is the number of non-zero bytes) counted in one small hash table.
 * The clipped count of a hypothesis n-gram is min(its count, its count in the reference);
 * a reference n-gram whose (n-1)-suffix is not in the hypothesis cannot be either, so its
 * longer n-grams are not looked up.  (That hashed counting is the fallback: orders 2..4 normally
 * go through direct_char_ngrams below, which needs no hashing.) */

typedef struct {
    uint32_t key;
    uint16_t hc, rc;
} ngram_slot_t;

/* Maps a text's code points to pair-local ids 1..255, counting them in count[]; returns
 * false when there are more.
 * bmap[c] is the id of the ASCII character c once seen (0 before, and always 0 for bytes
 * >= 0x80), so a run of known ASCII characters costs one table load per byte. */
static bool char_ids(const char *s, size_t bytes, uint8_t *ids, size_t *n, uint16_t count[256], uint8_t bmap[256],
                     uint32_t *ckeys, uint8_t *cvals, int *next)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + bytes;
    uint8_t *o = ids;
    while (p < end) {
        uint8_t id = bmap[*p];
        if (id) {
            *o++ = id;
            count[id]++;
            p++;
            continue;
        }
        if (*p < 0x80) {
            if (*next > 255) return false;
            id = bmap[*p++] = (uint8_t)(*next)++;
            *o++ = id;
            count[id]++;
            continue;
        }
        size_t len;
        uint32_t cp = br_utf8_decode(p, (size_t)(end - p), &len);
        p += len;
        size_t h = (size_t)((cp * 0x9E3779B1u) >> 23); /* 512 slots */
        for (;;) {
            if (ckeys[h] == cp + 1) {
                id = cvals[h];
                break;
            }
            if (!ckeys[h]) {
                if (*next > 255) return false;
                ckeys[h] = cp + 1;
                id = cvals[h] = (uint8_t)(*next)++;
                break;
            }
            h = (h + 1) & 511;
        }
        *o++ = id;
        count[id]++;
    }
    *n = (size_t)(o - ids);
    return true;
}

/* Per-thread scratch for the fast path, kept between calls (freed when the thread exits):
 * scoring many pairs then costs no allocation. */
typedef struct {
    unsigned char *ids; /* hypothesis + reference ids, then the ok-bigram flags */
    size_t ids_cap;
    uint16_t *c2;       /* bigram counts (2 * W * W) */
    size_t c2_cap;
    ngram_slot_t *tab;
    size_t tab_cap;
    uint32_t *used;
    size_t used_cap;
    uint16_t *dir;      /* direct n-gram id table, all zero between calls */
    size_t dir_cap;     /* bytes */
    uint16_t *w16;      /* running ids and counts of the direct path */
    size_t w16_cap;     /* bytes */
} fast_scratch_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static void scratch_free(void *p)
{
    fast_scratch_t *s = p;
    if (!s) return;
    free(s->ids);
    free(s->c2);
    free(s->tab);
    free(s->used);
    free(s->dir);
    free(s->w16);
    free(s);
}
static void scratch_init(void)
{
    if (pthread_key_create(&scratch_key, scratch_free) != 0) scratch_key = (pthread_key_t)-1;
}

static bool grow_to(void **p, size_t *cap, size_t need)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    void *q = malloc(c);
    if (!q) return false;
    free(*p);
    *p = q;
    *cap = c;
    return true;
}

/* like grow_to, but the new buffer is zeroed (the old contents must be all zero too) */
static bool grow_zeroed(void **p, size_t *cap, size_t need)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    void *q = calloc(1, c);
    if (!q) return false;
    free(*p);
    *p = q;
    *cap = c;
    return true;
}

/* Orders 2..N by direct indexing, no hashing: the hypothesis n-gram starting at i gets as id
 * the position + 1 of its first occurrence, found through the pair (id of its (n-1)-gram, id
 * of its last character) in a zeroed table of uint16 slots indexed prev * W + char; reference
 * n-grams only look up (an absent prefix has id 0, and no hypothesis key is below W, so the
 * n-gram gets id 0 = absent).  Exact and branch-free per position; the touched slots are
 * zeroed again afterwards.  Returns 1 done, 0 table too large (caller uses the hash path),
 * -1 out of memory. */
#define DIRECT_MAX_SLOTS ((size_t)1 << 22)
static int direct_char_ngrams(fast_scratch_t *sc, int N, size_t W, const uint8_t *hid, size_t lh,
                              const uint8_t *rid, size_t lr, br_bleu_stats_t *st)
{
    /* keys are below rows * W: previous ids are chars (< W) for bigrams, else <= lh */
    size_t rows = lh + 1 > W ? lh + 1 : W;
    if (rows * W > DIRECT_MAX_SLOTS) return 0;
    if (!grow_zeroed((void **)&sc->dir, &sc->dir_cap, rows * W * sizeof(uint16_t)) ||
        !grow_to((void **)&sc->w16, &sc->w16_cap, sizeof(uint16_t) * (lh + lr + 2 * (lh + 2) + 2)) ||
        !grow_to((void **)&sc->used, &sc->used_cap, sizeof(uint32_t) * (lh + 1)))
        return -1;
    uint16_t *T = sc->dir, *ph = sc->w16, *pr = ph + lh + 1, *hcnt = pr + lr + 1, *rcnt = hcnt + lh + 2;
    uint32_t *touched = sc->used;
    for (size_t i = 0; i < lh; i++) ph[i] = hid[i];
    for (size_t i = 0; i < lr; i++) pr[i] = rid[i];
    for (int n = 2; n <= N; n++) {
        if (lh < (size_t)n) break; /* num stays 0 */
        size_t ch = lh - (size_t)n + 1;
        memset(hcnt, 0, sizeof(uint16_t) * (ch + 1));
        memset(rcnt, 0, sizeof(uint16_t) * (ch + 1));
        for (size_t i = 0; i < ch; i++) {
            uint32_t key = (uint32_t)ph[i] * (uint32_t)W + hid[i + (size_t)n - 1];
            uint32_t id = T[key];
            id |= -(uint32_t)(id == 0) & (uint32_t)(i + 1); /* branch-free: first occurrence */
            T[key] = (uint16_t)id;
            touched[i] = key;
            ph[i] = (uint16_t)id;
            hcnt[id]++;
        }
        if (lr >= (size_t)n) {
            size_t cr = lr - (size_t)n + 1;
            for (size_t i = 0; i < cr; i++) {
                uint16_t id = T[(uint32_t)pr[i] * (uint32_t)W + rid[i + (size_t)n - 1]];
                pr[i] = id;
                rcnt[id]++;
            }
        }
        int64_t num = 0;
        for (size_t id = 1; id <= ch; id++) num += hcnt[id] < rcnt[id] ? hcnt[id] : rcnt[id];
        st->num[n - 1] = num;
        for (size_t i = 0; i < ch; i++) T[touched[i]] = 0;
    }
    return 1;
}

static fast_scratch_t *get_scratch(void)
{
    pthread_once(&scratch_once, scratch_init);
    fast_scratch_t *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (s && pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            s = NULL;
        }
    }
    return s;
}

/* Clipped counts (st->num[1..N-1], zero on entry) of the n-grams (n >= 2) of hid[0..lh)
 * against rid[0..lr):
 * 1 done, 0 not applicable, -1 out of memory.  The ids buffer's tail beyond rid + lr + 1 is
 * scratch for the hashed path. */
static int stats_of_middle(fast_scratch_t *sc, int N, size_t W, const uint8_t *hid, size_t lh, uint8_t *rid,
                           size_t lr, br_bleu_stats_t *st)
{
    int d = direct_char_ngrams(sc, N, W, hid, lh, rid, lr, st);
    if (d != 0) return d;

    /* bigrams in direct arrays when small enough; then okh[i] (okr[i]) says whether the
     * hypothesis (reference) bigram ending at i occurs in the other text: an n-gram can
     * only match when all its bigrams do, so the others are never hashed. */
    int first_hashed = 2;
    uint8_t *okh = NULL, *okr = NULL;
    if (N >= 2 && W <= 128) {
        if (!grow_to((void **)&sc->c2, &sc->c2_cap, 2 * W * W * sizeof(uint16_t))) return -1;
        uint16_t *c2h = sc->c2, *c2r = sc->c2 + W * W;
        memset(sc->c2, 0, 2 * W * W * sizeof(uint16_t));
        for (size_t i = 1; i < lh; i++) c2h[hid[i - 1] * W + hid[i]]++;
        for (size_t i = 1; i < lr; i++) c2r[rid[i - 1] * W + rid[i]]++;
        int64_t num = 0;
        for (size_t k = 0; k < W * W; k++) num += c2h[k] < c2r[k] ? c2h[k] : c2r[k];
        st->num[1] = num;
        first_hashed = 3;
        if (N >= 3) {
            okh = rid + lr + 1; /* the rest of the ids buffer: lh + lr flags */
            okr = okh + lh + 1;
            okh[0] = okr[0] = 0;
            for (size_t i = 1; i < lh; i++) okh[i] = c2r[hid[i - 1] * W + hid[i]] != 0;
            for (size_t i = 1; i < lr; i++) okr[i] = c2h[rid[i - 1] * W + rid[i]] != 0;
        }
    }
    if (N < first_hashed) return 1;

    /* longer n-grams: one table, at most (N - first_hashed + 1) * lh keys, load <= 1/2 */
    size_t orders = (size_t)(N - first_hashed + 1);
    size_t slots = 64;
    while (slots < 2 * orders * (lh + 1)) slots <<= 1;
    int bits = 0;
    while (((size_t)1 << bits) < slots) bits++;
    if (!grow_to((void **)&sc->tab, &sc->tab_cap, slots * sizeof(ngram_slot_t)) ||
        !grow_to((void **)&sc->used, &sc->used_cap, sizeof(uint32_t) * (orders * lh + 1)))
        return -1;
    ngram_slot_t *tab = sc->tab;
    uint32_t *used = sc->used;
    memset(tab, 0, slots * sizeof *tab);
    size_t nused = 0;
    static const uint32_t mask[5] = {0, 0xFFu, 0xFFFFu, 0xFFFFFFu, 0xFFFFFFFFu};
    const size_t m = slots - 1;
    const int shift = 32 - bits;
    uint32_t k = 0;
    for (size_t i = 0; i < lh; i++) {
        k = (k << 8) | hid[i];
        int top = i + 1 < (size_t)N ? (int)i + 1 : N;
        for (int n = first_hashed; n <= top; n++) {
            /* n-gram i-n+1..i: its bigrams end at i-n+2..i */
            if (okh && !okh[i - (size_t)n + 2]) break;
            if (okh && n == 3 && !okh[i]) break;
            uint32_t key = k & mask[n];
            size_t h = (size_t)((key * 0x9E3779B1u) >> shift);
            while (tab[h].key && tab[h].key != key) h = (h + 1) & m;
            if (!tab[h].key) {
                tab[h].key = key;
                used[nused++] = (uint32_t)h;
            }
            tab[h].hc++;
        }
    }
    k = 0;
    for (size_t i = 0; i < lr; i++) {
        k = (k << 8) | rid[i];
        int top = i + 1 < (size_t)N ? (int)i + 1 : N;
        for (int n = first_hashed; n <= top; n++) {
            if (okr && !okr[i - (size_t)n + 2]) break;
            if (okr && n == 3 && !okr[i]) break;
            uint32_t key = k & mask[n];
            size_t h = (size_t)((key * 0x9E3779B1u) >> shift);
            while (tab[h].key && tab[h].key != key) h = (h + 1) & m;
            if (!tab[h].key) break;
            tab[h].rc++;
        }
    }
    for (size_t u = 0; u < nused; u++) {
        const ngram_slot_t *e = &tab[used[u]];
        int n = e->key > 0xFFFFFFu ? 4 : e->key > 0xFFFFu ? 3 : e->key > 0xFFu ? 2 : 1;
        st->num[n - 1] += e->hc < e->rc ? e->hc : e->rc;
    }
    return 1;
}

/* The longest run h[a..a+L) == r[b..b+L) starting at the beginning of one text and at most
 * `shift` characters into the other; returns L (0 when none). */
static size_t longest_start_run(const uint8_t *h, size_t lh, const uint8_t *r, size_t lr, size_t shift, size_t *a,
                                size_t *b)
{
    size_t best = 0;
    *a = *b = 0;
    for (size_t k = 0; k <= 2 * shift; k++) {
        size_t i = k < shift ? shift - k : 0, j = k > shift ? k - shift : 0, L = 0;
        while (i + L < lh && j + L < lr && h[i + L] == r[j + L]) L++;
        if (L > best) {
            best = L;
            *a = i;
            *b = j;
        }
    }
    return best;
}

/* Replaces s[at + N - 1 .. at + L - N + 1) (the interior of a block of L >= 2N ids) by the
 * one id sep; returns the new length. */
static size_t cut_block(uint8_t *s, size_t len, size_t at, size_t L, int N, uint8_t sep)
{
    size_t keep = (size_t)N - 1, from = at + L - keep;
    s[at + keep] = sep;
    memmove(s + at + keep + 1, s + from, len - from);
    return len - (from - (at + keep + 1));
}

/* 1: done; 0: not applicable (use the general path); -1: out of memory. */
static int fast_char_stats(int N, const char *ref, size_t rb, const char *hyp, size_t hb, br_bleu_stats_t *st)
{
    if (N > 4 || hb >= 65535 || rb >= ((size_t)1 << 28)) return 0;
    fast_scratch_t *sc = get_scratch();
    if (!sc) return -1;
    uint8_t bmap[256];
    uint32_t ckeys[512];
    uint8_t cvals[512];
    memset(bmap, 0, sizeof bmap);
    memset(ckeys, 0, sizeof ckeys);
    int next = 1;
    if (!grow_to((void **)&sc->ids, &sc->ids_cap, 2 * (hb + rb + 2))) return -1;
    uint8_t *hid = sc->ids, *rid = sc->ids + hb + 1;
    size_t lh, lr;
    uint16_t c1h[256], c1r[256];
    memset(c1h, 0, sizeof c1h);
    memset(c1r, 0, sizeof c1r);
    if (!char_ids(hyp, hb, hid, &lh, c1h, bmap, ckeys, cvals, &next) ||
        !char_ids(ref, rb, rid, &lr, c1r, bmap, ckeys, cvals, &next))
        return 0;
    if (lr >= 65535) return 0; /* reference counts are uint16 */
    st->hyp_len = (int64_t)lh;
    st->ref_len = (int64_t)lr;
    for (int n = 1; n <= N; n++) st->den[n - 1] = lh >= (size_t)n ? (int64_t)(lh - (size_t)n + 1) : 1;
    for (int id = 1; id < next; id++) st->num[0] += c1h[id] < c1r[id] ? c1h[id] : c1r[id];
    if (N < 2) return 1;

    /* A repeat mostly copies its reference, often shifted by a character or two.  The n-grams
     * inside a block the two texts share occur in both, and min(c + a, c + b) = c + min(a, b),
     * so they are credited directly and the block's interior is cut out: its first and last
     * N - 1 characters stay (the n-grams crossing its edges still count), and between them
     * one separator id — W in the hypothesis, W + 1 in the reference — makes every n-gram
     * across the cut unmatchable.  Blocks: the longest common run from the start on a diagonal
     * within +-4 characters, and the common suffix after it. */
    size_t cut_credit = 0, cuts = 0;
    size_t W = (size_t)next; /* ids 1..next-1 */
    if (W + 2 <= 256) {
        size_t a, b, L = longest_start_run(hid, lh, rid, lr, 4, &a, &b), S = 0;
        size_t lmin = lh - (a + L) < lr - (b + L) ? lh - (a + L) : lr - (b + L);
        while (S < lmin && hid[lh - 1 - S] == rid[lr - 1 - S]) S++;
        const size_t min_block = 4 * (size_t)N;
        if (S >= min_block) { /* the later block first: cutting it leaves the earlier in place */
            lh = cut_block(hid, lh, lh - S, S, N, (uint8_t)W);
            lr = cut_block(rid, lr, lr - S, S, N, (uint8_t)(W + 1));
            cut_credit += S;
            cuts++;
        }
        if (L >= min_block) {
            lh = cut_block(hid, lh, a, L, N, (uint8_t)W);
            lr = cut_block(rid, lr, b, L, N, (uint8_t)(W + 1));
            cut_credit += L;
            cuts++;
        }
        if (cuts) W += 2;
    }
    const size_t full_lh = (size_t)st->hyp_len;
    int d = stats_of_middle(sc, N, W, hid, lh, rid, lr, st);
    if (d <= 0) return d;
    /* a block of length L holds L - n + 1 n-grams, 2 (N - n) of them in the kept edges */
    if (cuts)
        for (int n = 2; n <= N && full_lh >= (size_t)n; n++)
            st->num[n - 1] += (int64_t)(cut_credit - cuts * (2 * (size_t)N - (size_t)n - 1));
    return 1;
}

br_status br_bleu_stats_n(const br_bleu_opts_t *o, const char *const *refs, const size_t *ref_bytes,
                          int nrefs, const char *hyp, size_t hyp_bytes, br_bleu_stats_t *st)
{
    if (!o || o->n < 1 || o->n > BR_BLEU_MAX_N)
        return br_error(BR_EINVAL, "bleu: the number of weights must be 1..%d", BR_BLEU_MAX_N);
    if (nrefs < 1) return br_error(BR_EINVAL, "bleu: at least one reference is needed");
    if (!hyp && hyp_bytes) return br_error(BR_EINVAL, "bleu: no hypothesis");
    int nseq = nrefs + 1;
    size_t total_bytes = hyp_bytes;
    for (int r = 0; r < nrefs; r++) {
        if (!refs[r] && ref_bytes[r]) return br_error(BR_EINVAL, "bleu: reference %d is NULL", r);
        total_bytes += ref_bytes[r];
    }
    if (total_bytes >= (size_t)INT32_MAX) return br_error(BR_ERANGE, "bleu: texts too long (%zu bytes)", total_bytes);
    memset(st, 0, sizeof *st);
    st->n = o->n;
    if (nrefs == 1 && ref_bytes[0] == hyp_bytes && (hyp_bytes == 0 || !memcmp(refs[0], hyp, hyp_bytes))) {
        /* a verbatim repeat: every n-gram matches */
        size_t L = o->unit == BR_BLEU_CHAR ? br_utf8_count(hyp, hyp_bytes) : count_words(hyp, hyp_bytes);
        for (int n = 1; n <= o->n; n++) {
            st->num[n - 1] = L >= (size_t)n ? (int64_t)(L - (size_t)n + 1) : 0;
            st->den[n - 1] = L >= (size_t)n ? (int64_t)(L - (size_t)n + 1) : 1;
        }
        st->hyp_len = st->ref_len = (int64_t)L;
        return BR_OK;
    }
    if (o->unit == BR_BLEU_CHAR && nrefs == 1) {
        int f = fast_char_stats(o->n, refs[0], ref_bytes[0], hyp, hyp_bytes, st);
        if (f < 0) return br_error(BR_ENOMEM, "bleu: out of memory");
        if (f > 0) return BR_OK;
        memset(st, 0, sizeof *st);
        st->n = o->n;
    }

    /* One allocation: tokens, ids, 3 count arrays, hash table, per-seq offsets. */
    size_t T = total_bytes + 1;
    size_t tsize = pow2_at_least(2 * T);
    size_t need = sizeof(uint32_t) * T * 5 + (sizeof(uint64_t) + sizeof(uint32_t)) * tsize +
                  sizeof(size_t) * 2 * (size_t)nseq;
    bool words = o->unit == BR_BLEU_WORD;
    if (words) need += (sizeof(const char *) + sizeof(uint32_t)) * T;
    unsigned char *mem = malloc(need);
    if (!mem) return br_error(BR_ENOMEM, "bleu: out of memory (%zu bytes)", need);
    unsigned char *q = mem;
    uint64_t *keys = (uint64_t *)q;           q += sizeof(uint64_t) * tsize;
    size_t *off = (size_t *)q;                q += sizeof(size_t) * (size_t)nseq;
    size_t *len = (size_t *)q;                q += sizeof(size_t) * (size_t)nseq;
    const char **wptr = NULL;
    if (words) {
        wptr = (const char **)q;              q += sizeof(const char *) * T;
    }
    uint32_t *vals = (uint32_t *)q;           q += sizeof(uint32_t) * tsize;
    uint32_t *tok = (uint32_t *)q;            q += sizeof(uint32_t) * T; /* order-1 ids */
    uint32_t *ids = (uint32_t *)q;            q += sizeof(uint32_t) * T; /* order-n ids */
    uint32_t *hcnt = (uint32_t *)q;           q += sizeof(uint32_t) * T;
    uint32_t *mcnt = (uint32_t *)q;           q += sizeof(uint32_t) * T;
    uint32_t *rcnt = (uint32_t *)q;           q += sizeof(uint32_t) * T;
    uint32_t *wlen = words ? (uint32_t *)q : NULL;

    intern_t it = {keys, vals, tsize - 1, 0};
    intern_clear(&it);
    size_t pos = 0;
    for (int s = 0; s < nseq; s++) {
        const char *txt = s == 0 ? hyp : refs[s - 1];
        size_t nb = s == 0 ? hyp_bytes : ref_bytes[s - 1];
        off[s] = pos;
        if (words) {
            winterp_t wt = {keys, vals, tsize - 1, wptr, wlen, it.count};
            size_t n = tokenize_words(&wt, txt, nb, tok + pos);
            it.count = wt.count;
            len[s] = n;
        } else {
            len[s] = tokenize_chars(&it, txt, nb, tok + pos);
        }
        pos += len[s];
    }
    st->hyp_len = (int64_t)len[0];
    /* closest_ref_length: min by (|r - h|, r) */
    int64_t best = -1;
    for (int r = 1; r < nseq; r++) {
        int64_t rl = (int64_t)len[r], h = st->hyp_len;
        if (best < 0) best = rl;
        else {
            int64_t d = llabs(rl - h), db = llabs(best - h);
            if (d < db || (d == db && rl < best)) best = rl;
        }
    }
    st->ref_len = best;

    for (int n = 1; n <= o->n; n++) {
        uint32_t mh = 0;
        if (n == 1) {
            memcpy(ids, tok, sizeof(uint32_t) * pos);
            /* hypothesis tokens were interned first, so their ids are below the hypothesis's
             * distinct count; recompute it as max id + 1 */
            mh = 0;
            for (size_t i = 0; i < len[0]; i++)
                if (ids[i] + 1 > mh) mh = ids[i] + 1;
        } else {
            intern_clear(&it);
            for (int s = 0; s < nseq; s++) {
                if (len[s] < (size_t)n) continue;
                size_t b = off[s], cnt = len[s] - (size_t)n + 1;
                for (size_t i = 0; i < cnt; i++)
                    ids[b + i] = intern_get(&it, ((uint64_t)ids[b + i] << 32) | tok[b + i + (size_t)n - 1]);
                if (s == 0) mh = it.count;
            }
            if (len[0] < (size_t)n) mh = 0;
        }
        size_t hc = len[0] >= (size_t)n ? len[0] - (size_t)n + 1 : 0;
        if (hc == 0) {
            st->num[n - 1] = 0;
            st->den[n - 1] = 1;
            continue;
        }
        memset(hcnt, 0, sizeof(uint32_t) * mh);
        memset(mcnt, 0, sizeof(uint32_t) * mh);
        memset(rcnt, 0, sizeof(uint32_t) * mh);
        for (size_t i = 0; i < hc; i++) hcnt[ids[i]]++;
        for (int s = 1; s < nseq; s++) {
            if (len[s] < (size_t)n) continue;
            size_t b = off[s], cnt = len[s] - (size_t)n + 1;
            for (size_t i = 0; i < cnt; i++)
                if (ids[b + i] < mh) rcnt[ids[b + i]]++;
            for (size_t i = 0; i < cnt; i++) {
                uint32_t id = ids[b + i];
                if (id < mh) {
                    if (rcnt[id] > mcnt[id]) mcnt[id] = rcnt[id];
                    rcnt[id] = 0;
                }
            }
        }
        int64_t num = 0;
        for (uint32_t id = 0; id < mh; id++) num += hcnt[id] < mcnt[id] ? hcnt[id] : mcnt[id];
        st->num[n - 1] = num;
        st->den[n - 1] = (int64_t)hc;
    }
    free(mem);
    return BR_OK;
}

br_status br_bleu_stats(const br_bleu_opts_t *o, const char *const *refs, int nrefs, const char *hyp,
                        br_bleu_stats_t *st)
{
    if (nrefs < 1 || nrefs > 1 << 20) return br_error(BR_EINVAL, "bleu: need 1..2^20 references, got %d", nrefs);
    size_t small[8];
    size_t *rb = nrefs <= 8 ? small : malloc(sizeof(size_t) * (size_t)nrefs);
    if (!rb) return br_error(BR_ENOMEM, "bleu: out of memory");
    for (int r = 0; r < nrefs; r++) rb[r] = refs[r] ? strlen(refs[r]) : 0;
    br_status s = br_bleu_stats_n(o, refs, rb, nrefs, hyp, hyp ? strlen(hyp) : 0, st);
    if (rb != small) free(rb);
    return s;
}

void br_bleu_stats_add(br_bleu_stats_t *acc, const br_bleu_stats_t *st)
{
    for (int i = 0; i < st->n && i < BR_BLEU_MAX_N; i++) {
        acc->num[i] += st->num[i];
        acc->den[i] += st->den[i];
    }
    if (st->n > acc->n) acc->n = st->n;
    acc->hyp_len += st->hyp_len;
    acc->ref_len += st->ref_len;
}

br_status br_bleu_from_stats(const br_bleu_opts_t *o, const br_bleu_stats_t *st, double *score)
{
    if (!o || o->n < 1 || o->n > BR_BLEU_MAX_N)
        return br_error(BR_EINVAL, "bleu: the number of weights must be 1..%d", BR_BLEU_MAX_N);
    if (st->n < o->n) return br_error(BR_EINVAL, "bleu: statistics have %d orders, the weights %d", st->n, o->n);
    int N = o->n;
    /* NLTK: no unigram match -> 0 */
    if (st->num[0] == 0) {
        *score = 0.0;
        return BR_OK;
    }
    double p[BR_BLEU_MAX_N];
    int incvnt = 1;
    for (int i = 0; i < N; i++) {
        int64_t num = st->num[i], den = st->den[i];
        double frac = (double)num / (double)den; /* float(Fraction): correctly rounded */
        switch (o->smoothing) {
        case BR_BLEU_SMOOTH0:
            p[i] = num != 0 ? frac : DBL_MIN;
            break;
        case BR_BLEU_SMOOTH1:
            p[i] = num == 0 ? (0.0 + o->epsilon) / (double)den : frac;
            break;
        case BR_BLEU_SMOOTH2:
            p[i] = i == 0 ? frac : (double)(num + 1) / (double)(den + 1);
            break;
        case BR_BLEU_SMOOTH3:
            if (num == 0) {
                p[i] = 1.0 / (double)(((int64_t)1 << incvnt) * den);
                incvnt++;
            } else p[i] = frac;
            break;
        case BR_BLEU_SMOOTH4:
            if (num == 0 && st->hyp_len > 1) {
                double a = (double)(((int64_t)1 << incvnt) * (int64_t)o->k) / log((double)st->hyp_len);
                p[i] = (1.0 / a) / (double)den;
                incvnt++;
            } else p[i] = frac;
            break;
        default:
            return br_error(BR_EINVAL, "bleu: unknown smoothing method %d", (int)o->smoothing);
        }
    }
    double w[BR_BLEU_MAX_N];
    int nw = N;
    memcpy(w, o->weights, sizeof(double) * (size_t)N);
    if (o->auto_reweigh && st->hyp_len < 4 && N == 4 && w[0] == 0.25 && w[1] == 0.25 && w[2] == 0.25 &&
        w[3] == 0.25) {
        nw = (int)st->hyp_len; /* >= 1: there is a unigram match */
        for (int i = 0; i < nw; i++) w[i] = 1.0 / (double)st->hyp_len;
    }
    double terms[BR_BLEU_MAX_N];
    int nt = 0;
    for (int i = 0; i < nw; i++)
        if (p[i] > 0) terms[nt++] = w[i] * log(p[i]);
    double s = br_fsum(terms, nt);
    double bp;
    if (st->hyp_len > st->ref_len) bp = 1.0;
    else if (st->hyp_len == 0) bp = 0.0;
    else bp = exp(1.0 - (double)st->ref_len / (double)st->hyp_len);
    *score = bp * exp(s);
    return BR_OK;
}

br_status br_bleu_pair(const br_bleu_opts_t *o, const char *ref, size_t ref_bytes, const char *hyp,
                       size_t hyp_bytes, double *score)
{
    br_bleu_stats_t st;
    BR_TRY(br_bleu_stats_n(o, &ref, &ref_bytes, 1, hyp, hyp_bytes, &st));
    return br_bleu_from_stats(o, &st, score);
}

br_status br_bleu_sentence(const br_bleu_opts_t *o, const char *const *refs, int nrefs, const char *hyp,
                           double *score)
{
    br_bleu_stats_t st;
    BR_TRY(br_bleu_stats(o, refs, nrefs, hyp, &st));
    return br_bleu_from_stats(o, &st, score);
}

br_status br_bleu_corpus(const br_bleu_opts_t *o, size_t count, const char *const *const *refs,
                         const int *nrefs, const char *const *hyps, double *score)
{
    if (!o || o->n < 1 || o->n > BR_BLEU_MAX_N)
        return br_error(BR_EINVAL, "bleu: the number of weights must be 1..%d", BR_BLEU_MAX_N);
    br_bleu_stats_t acc;
    memset(&acc, 0, sizeof acc);
    acc.n = o->n;
    for (size_t i = 0; i < count; i++) {
        br_bleu_stats_t st;
        br_status s = br_bleu_stats(o, refs[i], nrefs[i], hyps[i], &st);
        if (s != BR_OK) return br_error_wrap(s, "corpus item %zu", i);
        br_bleu_stats_add(&acc, &st);
    }
    if (count == 0) return br_error(BR_EINVAL, "bleu: empty corpus");
    return br_bleu_from_stats(o, &acc, score);
}
