/* NLTK-exact BLEU.  See bleu.h for the semantics; nltk/translate/bleu_score.py (3.8) is the
 * reference, and tests/ref/gen_bleu_fixture.py checks us against it.
 *
 * Counting: every n-gram gets a dense integer id, built order by order — the id of the
 * n-gram starting at i is the interned pair (id of the (n-1)-gram at i, token i+n-1) — so
 * matching is exact (no hash collisions decide anything) and costs O(tokens) per order.
 * Hypothesis n-grams are interned first, so their ids are [0, mh) and counts are plain arrays.
 * One hypothesis against one reference over characters (PARDEN's case) usually takes the fast
 * path in bleu_fast.c instead; both give the same statistics. */
#include "guard/bleu.h"
#include "guard/bleu_fast.h"

#include <float.h>
#include <math.h>
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

/* A hypothesis equal to its one reference: every n-gram matches. */
static void verbatim_stats(const br_bleu_opts_t *o, const char *hyp, size_t hyp_bytes, br_bleu_stats_t *st)
{
    size_t L = o->unit == BR_BLEU_CHAR ? br_utf8_count(hyp, hyp_bytes) : count_words(hyp, hyp_bytes);
    for (int n = 1; n <= o->n; n++) {
        st->num[n - 1] = L >= (size_t)n ? (int64_t)(L - (size_t)n + 1) : 0;
        st->den[n - 1] = L >= (size_t)n ? (int64_t)(L - (size_t)n + 1) : 1;
    }
    st->hyp_len = st->ref_len = (int64_t)L;
}

/* NLTK's closest_ref_length: the reference length nearest the hypothesis's, ties to the
 * shorter (min by (|r - h|, r)). */
static int64_t closest_ref_length(const size_t *ref_len, int nrefs, int64_t h)
{
    int64_t best = (int64_t)ref_len[0];
    for (int r = 1; r < nrefs; r++) {
        int64_t rl = (int64_t)ref_len[r], d = llabs(rl - h), db = llabs(best - h);
        if (d < db || (d == db && rl < best)) best = rl;
    }
    return best;
}

/* Order-n modified precision of the hypothesis (sequence 0) against the references (1..nseq-1):
 * num = sum over the hypothesis's n-grams of min(count, max count in any one reference), den =
 * the hypothesis's n-gram count (1 when it has none, as NLTK).  ids are order-n n-gram ids of
 * which the hypothesis's are < mh; hcnt/mcnt/rcnt are (mh) scratch counters. */
static void clipped_matches(const uint32_t *ids, const size_t *off, const size_t *len, int nseq, size_t n,
                            uint32_t mh, uint32_t *hcnt, uint32_t *mcnt, uint32_t *rcnt, int64_t *num_out,
                            int64_t *den_out)
{
    size_t hc = len[0] >= n ? len[0] - n + 1 : 0;
    if (hc == 0) {
        *num_out = 0;
        *den_out = 1;
        return;
    }
    memset(hcnt, 0, sizeof(uint32_t) * mh);
    memset(mcnt, 0, sizeof(uint32_t) * mh);
    memset(rcnt, 0, sizeof(uint32_t) * mh);
    for (size_t i = 0; i < hc; i++) hcnt[ids[i]]++;
    for (int s = 1; s < nseq; s++) {
        if (len[s] < n) continue;
        size_t b = off[s], cnt = len[s] - n + 1;
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
    *num_out = num;
    *den_out = (int64_t)hc;
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
        verbatim_stats(o, hyp, hyp_bytes, st);
        return BR_OK;
    }
    if (o->unit == BR_BLEU_CHAR && nrefs == 1) {
        int f = br_bleu_fast_char_stats(o->n, refs[0], ref_bytes[0], hyp, hyp_bytes, st);
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
    st->ref_len = closest_ref_length(len + 1, nrefs, st->hyp_len);

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
        clipped_matches(ids, off, len, nseq, (size_t)n, mh, hcnt, mcnt, rcnt, &st->num[n - 1], &st->den[n - 1]);
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
