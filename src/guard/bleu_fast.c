/* BLEU's fast path: see bleu_fast.h.  The statistics are the general path's (bleu.c), bit for
 * bit; tests/test_guard_bleu.c scores the same pairs both ways. */
#include "guard/bleu_fast.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "text/utf8.h"

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

/* Per-thread scratch, kept between calls so that scoring many pairs costs no allocation; freed
 * by the thread-key destructor when the thread exits, or by br_bleu_thread_cleanup.  Every
 * buffer is bounded by the limits above (texts < 65535 characters, < 2^22 direct slots): at
 * most about 16 MiB per thread, tens of KiB for PARDEN-sized texts. */
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
static bool scratch_key_ok;
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
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
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

/* This thread's scratch, created on first use; NULL when out of memory (or when no thread key
 * could be made: the caller then takes the general path's per-call memory). */
static fast_scratch_t *get_scratch(void)
{
    pthread_once(&scratch_once, scratch_init);
    if (!scratch_key_ok) return NULL;
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

int br_bleu_fast_char_stats(int N, const char *ref, size_t rb, const char *hyp, size_t hb, br_bleu_stats_t *st)
{
    /* counts are uint16: fewer than 65535 characters per text, and a character takes at most
     * 4 bytes (an invalid byte is a character), so a longer reference cannot qualify */
    if (N > 4 || hb >= 65535 || rb >= 4 * (size_t)65535) return 0;
    fast_scratch_t *sc = get_scratch();
    if (!sc) return scratch_key_ok ? -1 : 0;
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

void br_bleu_thread_cleanup(void)
{
    pthread_once(&scratch_once, scratch_init);
    if (!scratch_key_ok) return;
    fast_scratch_t *s = pthread_getspecific(scratch_key);
    if (!s) return;
    (void)pthread_setspecific(scratch_key, NULL);
    scratch_free(s);
}
