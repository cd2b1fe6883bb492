/* BPE: loading (HF tokenizer.json, GPT-2 encoder.json + vocab.bpe, tiktoken rank files in both
 * the .tiktoken text form and the npm `tiktoken` JSON form), encoding and decoding.
 * SentencePiece-style vocabularies (sp: U+2581 for space, character symbols, byte fallback)
 * and NFC normalization are described at struct br_tokenizer and in docs/data.md.
 *
 * Encoding = split on special tokens (when allowed), pre-tokenise with the vocabulary's regex
 * (PCRE2, JIT, UTF + UCP + MATCH_INVALID_UTF so that arbitrary bytes are accepted), then BPE on
 * each piece: repeatedly merge the adjacent pair with the lowest merge rank, leftmost first
 * (tiktoken's byte_pair_merge; equal to GPT-2's "merge every occurrence of the best bigram").
 * Bytes the regex does not match (invalid UTF-8) form their own pieces, so decode(encode(x))
 * == x for every byte string. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/tokenizer.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "text/bytelevel.h"
#include "text/nfc.h"
#include "text/utf8.h"

const char br_pattern_gpt2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char br_pattern_cl100k[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char pattern_o200k[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

#define NO_ID (-1)

/* One cache line holds four slots.  `head` holds the token's first 8 bytes (zero-padded) and
 * `tag` 24 hash bits and the length (capped at 255), so a lookup of a token of <= 8 bytes never
 * touches the byte pool, and most misses stop at the tag. */
typedef struct {
    uint64_t head;
    uint32_t tag; /* 0 = empty */
    int32_t id;
} tab_slot_t;

typedef struct {
    uint64_t key; /* ((left << 32) | right) + 1; 0 = empty */
    uint32_t rank;
    int32_t id;
} pair_slot_t;

struct br_tokenizer {
    size_t n_ids;        /* max id + 1 */
    uint32_t *off;       /* (n_ids) offset of each token's bytes in `bytes` */
    uint32_t *len;       /* (n_ids) byte length; 0 for an id that is not assigned */
    uint8_t *flags;      /* (n_ids) TF_* */
    unsigned char *bytes;
    size_t nbytes;
    /* bytes -> regular id (open addressing, power-of-two capacity); see tab_slot_t */
    tab_slot_t *tab;
    size_t tab_cap;
    /* (left id, right id) -> (rank, merged id) */
    pair_slot_t *pairs;
    size_t pair_cap;
    int32_t byte_id[256];
    int direct_always;   /* tiktoken: a piece found whole in the vocab is one token */
    /* SentencePiece-style BPE (Llama-2, Mistral, TinyLlama): vocab strings spell a space as
     * U+2581, stored here as ' ' so that decoding is concatenation; the first symbols are
     * characters, not bytes; characters missing from the vocab become <0xXX> byte tokens
     * (byte_fallback) or unk. */
    int sp;
    int byte_fallback;
    int32_t unk;         /* NO_ID: none */
    int fuse_unk;
    int prepend;         /* PREPEND_*: how a space (U+2581) is put before each segment */
    int split_space;     /* Metaspace split: pieces start at each space */
    int nfc;             /* normalizer NFC */
    int strip_lead;      /* decoder: drop this many leading spaces of the decoded text */
    /* specials */
    int32_t *special;    /* ids, longest first */
    size_t nspecial;
    int32_t eos;
    int32_t post_first, post_last; /* tokenizer.json post_processor: ids put around one sequence, or NO_ID */
    pcre2_code *re;      /* NULL: no pre-tokenisation (whole text is one piece) */
    int jit;
    char *pattern;
};

/* TF_SPECIAL: a special added token (matched whole when specials are allowed); TF_ADDED: a
 * non-special added token (always matched whole, as Hugging Face does); TF_BYTE: a <0xXX>
 * byte-fallback token (not looked up by its bytes); TF_LSTRIP/RSTRIP: the added token swallows
 * the whitespace before/after it. */
enum { TF_VALID = 1, TF_SPECIAL = 2, TF_DIRECT = 4, TF_LSTRIP = 8, TF_RSTRIP = 16, TF_BYTE = 32, TF_ADDED = 64 };
enum { PREPEND_NONE, PREPEND_ALWAYS, PREPEND_META_ALWAYS, PREPEND_META_FIRST };
#define TF_WHOLE (TF_SPECIAL | TF_ADDED) /* not part of the BPE vocabulary */

/* ---- hashing ---------------------------------------------------------------------------- */

static inline uint64_t hash_bytes(const unsigned char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0x94d049bb133111ebull;
    h ^= h >> 32;
    return h;
}

static inline uint64_t hash_pair(uint64_t k)
{
    k *= 0x9E3779B97F4A7C15ull;
    return k ^ (k >> 29);
}

static inline uint32_t tab_tag(uint64_t h, size_t n)
{
    return (uint32_t)((h >> 40) << 8) | (uint32_t)(n < 255 ? n : 255) | 0x80000000u;
}

static inline uint64_t tab_head(const unsigned char *p, size_t n)
{
    uint64_t w = 0;
    memcpy(&w, p, n < 8 ? n : 8);
    return w;
}

static int32_t lookup_bytes(const br_tokenizer_t *t, const unsigned char *p, size_t n)
{
    size_t mask = t->tab_cap - 1;
    uint64_t h = hash_bytes(p, n), head = tab_head(p, n);
    uint32_t tag = tab_tag(h, n);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const tab_slot_t *e = &t->tab[i];
        if (!e->tag) return NO_ID;
        if (e->tag != tag || e->head != head) continue;
        if (n <= 8 || (t->len[e->id] == n && memcmp(t->bytes + t->off[e->id] + 8, p + 8, n - 8) == 0)) return e->id;
    }
}

static inline int lookup_pair(const br_tokenizer_t *t, int32_t a, int32_t b, uint32_t *rank,
                              int32_t *id)
{
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t mask = t->pair_cap - 1;
    for (size_t i = hash_pair(key) & mask;; i = (i + 1) & mask) {
        const pair_slot_t *e = &t->pairs[i];
        if (e->key == key) {
            *rank = e->rank;
            *id = e->id;
            return 1;
        }
        if (e->key == 0) return 0;
    }
}

/* ---- building ----------------------------------------------------------------------------- */

/* Collects tokens, merges and specials from any file format, then freezes them. */
typedef struct {
    br_tokenizer_t *t;
    size_t cap_ids, cap_bytes;
    /* merges in rank order */
    int32_t *ml, *mr, *mid;
    size_t nmerge, cap_merge;
    int derive_merges; /* tiktoken: every split of a token into two tokens is a merge of rank id */
} builder_t;

static br_status b_init(builder_t *b)
{
    memset(b, 0, sizeof *b);
    b->t = calloc(1, sizeof *b->t);
    if (!b->t) return br_error(BR_ENOMEM, "tokenizer: out of memory");
    b->t->eos = NO_ID;
    b->t->unk = NO_ID;
    b->t->post_first = b->t->post_last = NO_ID;
    return BR_OK;
}

/* Adds token `id` with raw bytes p[0..n).  special: TF_* flags (TF_SPECIAL, TF_ADDED: matched
 * only as a whole in the text; TF_BYTE: a byte-fallback token). */
static br_status b_add(builder_t *b, int64_t id, const unsigned char *p, size_t n, int special)
{
    br_tokenizer_t *t = b->t;
    if (id < 0 || id >= (1 << 24)) /* braid vocabularies are < 2^24 ids (config.c) */
        return br_error(BR_EFORMAT, "token id %lld out of range (0..%d)", (long long)id, (1 << 24) - 1);
    if (n == 0) return br_error(BR_EFORMAT, "token %lld is empty", (long long)id);
    if (n > 65536) return br_error(BR_EFORMAT, "token %lld is longer than 64 KiB", (long long)id);
    if ((size_t)id >= b->cap_ids) {
        size_t nc = b->cap_ids ? b->cap_ids : 1024;
        while (nc <= (size_t)id) nc *= 2;
        uint32_t *no = realloc(t->off, nc * sizeof *no);
        if (no) t->off = no;
        uint32_t *nl = realloc(t->len, nc * sizeof *nl);
        if (nl) t->len = nl;
        uint8_t *nf = realloc(t->flags, nc);
        if (nf) t->flags = nf;
        if (!no || !nl || !nf) return br_error(BR_ENOMEM, "tokenizer: out of memory");
        memset(t->len + b->cap_ids, 0, (nc - b->cap_ids) * sizeof *nl);
        memset(t->flags + b->cap_ids, 0, nc - b->cap_ids);
        b->cap_ids = nc;
    }
    if (t->flags[id] & TF_VALID) {
        /* HF files list specials in both model.vocab and added_tokens: same bytes is fine */
        if (t->len[id] == n && !memcmp(t->bytes + t->off[id], p, n)) {
            t->flags[id] |= (uint8_t)special;
            return BR_OK;
        }
        return br_error(BR_EFORMAT, "token id %lld is assigned twice", (long long)id);
    }
    if (t->nbytes + n > b->cap_bytes) {
        size_t nc = b->cap_bytes ? b->cap_bytes : 1 << 16;
        while (nc < t->nbytes + n) nc *= 2;
        if (nc > UINT32_MAX) return br_error(BR_EFORMAT, "tokenizer: vocabulary too large");
        unsigned char *nb = realloc(t->bytes, nc);
        if (!nb) return br_error(BR_ENOMEM, "tokenizer: out of memory");
        t->bytes = nb;
        b->cap_bytes = nc;
    }
    memcpy(t->bytes + t->nbytes, p, n);
    t->off[id] = (uint32_t)t->nbytes;
    t->len[id] = (uint32_t)n;
    t->flags[id] = (uint8_t)(TF_VALID | special);
    t->nbytes += n;
    if ((size_t)id >= t->n_ids) t->n_ids = (size_t)id + 1;
    return BR_OK;
}

static br_status b_merge(builder_t *b, int32_t l, int32_t r, int32_t id)
{
    if (b->nmerge == b->cap_merge) {
        size_t nc = b->cap_merge ? b->cap_merge * 2 : 4096;
        int32_t *a = realloc(b->ml, nc * sizeof *a);
        if (a) b->ml = a;
        int32_t *c = realloc(b->mr, nc * sizeof *c);
        if (c) b->mr = c;
        int32_t *d = realloc(b->mid, nc * sizeof *d);
        if (d) b->mid = d;
        if (!a || !c || !d) return br_error(BR_ENOMEM, "tokenizer: out of memory");
        b->cap_merge = nc;
    }
    b->ml[b->nmerge] = l;
    b->mr[b->nmerge] = r;
    b->mid[b->nmerge] = id;
    b->nmerge++;
    return BR_OK;
}

static void b_free(builder_t *b)
{
    free(b->ml);
    free(b->mr);
    free(b->mid);
    br_tokenizer_free(b->t);
    b->t = NULL;
}

static br_status pair_insert(br_tokenizer_t *t, int32_t a, int32_t c, uint32_t rank, int32_t id)
{
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)c) + 1;
    size_t mask = t->pair_cap - 1;
    for (size_t i = hash_pair(key) & mask;; i = (i + 1) & mask) {
        pair_slot_t *e = &t->pairs[i];
        if (e->key == key) return BR_OK; /* the first (lowest rank) wins */
        if (e->key == 0) {
            *e = (pair_slot_t){key, rank, id};
            return BR_OK;
        }
    }
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

static void bpe_piece(const br_tokenizer_t *t, const unsigned char *p, size_t n, int32_t *out,
                      size_t *nout, void *scratch);
static size_t bpe_scratch_size(size_t n);

/* The added tokens (special or not), longest first so that a longer one wins at the same
 * position. */
static br_status collect_specials(br_tokenizer_t *t)
{
    for (size_t id = 0; id < t->n_ids; id++) t->nspecial += (t->flags[id] & TF_WHOLE) != 0;
    if (t->nspecial) {
        t->special = malloc(t->nspecial * sizeof *t->special);
        if (!t->special) return br_error(BR_ENOMEM, "tokenizer: out of memory");
        size_t k = 0;
        for (size_t id = 0; id < t->n_ids; id++)
            if (t->flags[id] & TF_WHOLE) t->special[k++] = (int32_t)id;
        for (size_t i = 1; i < k; i++) /* insertion sort: few specials */
            for (size_t j = i; j > 0 && t->len[t->special[j]] > t->len[t->special[j - 1]]; j--) {
                int32_t s = t->special[j];
                t->special[j] = t->special[j - 1];
                t->special[j - 1] = s;
            }
    }
    return BR_OK;
}

static br_status b_finish(builder_t *b, const char *pattern, br_tokenizer_t **out)
{
    br_tokenizer_t *t = b->t;
    if (t->n_ids == 0) return br_error(BR_EFORMAT, "empty vocabulary");
    /* bytes -> id for regular tokens */
    size_t nreg = 0;
    for (size_t i = 0; i < t->n_ids; i++) nreg += (t->flags[i] & (TF_VALID | TF_WHOLE | TF_BYTE)) == TF_VALID;
    t->tab_cap = pow2_at_least(nreg * 2 + 1);
    t->tab = calloc(t->tab_cap, sizeof *t->tab);
    if (!t->tab) return br_error(BR_ENOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < 256; i++) t->byte_id[i] = NO_ID;
    for (size_t id = 0; id < t->n_ids; id++) {
        if ((t->flags[id] & (TF_VALID | TF_WHOLE | TF_BYTE)) != TF_VALID) continue;
        const unsigned char *p = t->bytes + t->off[id];
        size_t n = t->len[id], mask = t->tab_cap - 1;
        uint64_t h = hash_bytes(p, n);
        size_t i = h & mask;
        for (;; i = (i + 1) & mask) {
            if (!t->tab[i].tag) break;
            int32_t o = t->tab[i].id;
            if (t->len[o] == n && !memcmp(t->bytes + t->off[o], p, n))
                return br_error(BR_EFORMAT, "tokens %d and %zu have the same bytes", o, id);
        }
        t->tab[i] = (tab_slot_t){tab_head(p, n), tab_tag(h, n), (int32_t)id};
        if (n == 1 && !t->sp) t->byte_id[p[0]] = (int32_t)id;
    }
    for (size_t id = 0; t->sp && id < t->n_ids; id++)
        if (t->flags[id] & TF_BYTE) t->byte_id[t->bytes[t->off[id]]] = (int32_t)id;
    if (t->sp && t->unk == NO_ID) {
        int all = t->byte_fallback;
        for (int c = 0; c < 256 && all; c++) all = t->byte_id[c] != NO_ID;
        if (!all) return br_error(BR_EFORMAT, "a SentencePiece-style vocabulary needs an unk_token or byte_fallback with all 256 <0xXX> tokens");
    }
    for (int c = 0; c < 256 && !t->sp; c++)
        if (t->byte_id[c] == NO_ID)
            return br_error(BR_EFORMAT, "not a byte-level vocabulary: byte 0x%02x has no token", c);
    /* merges */
    if (b->derive_merges) {
        size_t np = 0;
        for (size_t id = 0; id < t->n_ids; id++)
            if ((t->flags[id] & (TF_VALID | TF_WHOLE | TF_BYTE)) == TF_VALID && t->len[id] > 1) np += t->len[id] - 1;
        t->pair_cap = pow2_at_least(np * 2 + 1);
    } else {
        t->pair_cap = pow2_at_least(b->nmerge * 2 + 1);
    }
    t->pairs = calloc(t->pair_cap, sizeof *t->pairs);
    if (!t->pairs) return br_error(BR_ENOMEM, "tokenizer: out of memory");
    if (b->derive_merges) {
        for (size_t id = 0; id < t->n_ids; id++) {
            if ((t->flags[id] & (TF_VALID | TF_WHOLE | TF_BYTE)) != TF_VALID || t->len[id] < 2) continue;
            const unsigned char *p = t->bytes + t->off[id];
            size_t n = t->len[id];
            for (size_t k = 1; k < n; k++) {
                int32_t l = lookup_bytes(t, p, k), r = lookup_bytes(t, p + k, n - k);
                if (l != NO_ID && r != NO_ID) BR_TRY(pair_insert(t, l, r, (uint32_t)id, (int32_t)id));
            }
        }
    } else {
        for (size_t i = 0; i < b->nmerge; i++) BR_TRY(pair_insert(t, b->ml[i], b->mr[i], (uint32_t)i, b->mid[i]));
    }
    /* A token may be emitted directly for a piece with its bytes only when BPE would produce it
     * (tiktoken always does this; for merge-list vocabularies it must be checked). */
    size_t maxlen = 0;
    for (size_t id = 0; id < t->n_ids; id++)
        if (t->len[id] > maxlen) maxlen = t->len[id];
    void *scratch = malloc(bpe_scratch_size(maxlen));
    int32_t *ids = malloc((maxlen + 1) * sizeof *ids);
    if (!scratch || !ids) {
        free(scratch);
        free(ids);
        return br_error(BR_ENOMEM, "tokenizer: out of memory");
    }
    for (size_t id = 0; id < t->n_ids; id++) {
        if ((t->flags[id] & (TF_VALID | TF_WHOLE | TF_BYTE)) != TF_VALID) continue;
        if (t->direct_always) {
            t->flags[id] |= TF_DIRECT;
            continue;
        }
        size_t k = 0;
        bpe_piece(t, t->bytes + t->off[id], t->len[id], ids, &k, scratch);
        if (k == 1 && ids[0] == (int32_t)id) t->flags[id] |= TF_DIRECT;
    }
    free(scratch);
    free(ids);
    BR_TRY(collect_specials(t));
    static const char *eos_names[] = {"<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"};
    for (size_t i = 0; i < sizeof eos_names / sizeof *eos_names && t->eos == NO_ID; i++)
        t->eos = br_tokenizer_token_id(t, eos_names[i]);
    /* pre-tokeniser */
    if (pattern) {
        t->pattern = strdup(pattern);
        if (!t->pattern) return br_error(BR_ENOMEM, "tokenizer: out of memory");
        int err;
        PCRE2_SIZE eoff;
        t->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &eoff, NULL);
        if (!t->re) {
            char msg[256];
            pcre2_get_error_message(err, (PCRE2_UCHAR *)msg, sizeof msg);
            return br_error(BR_EFORMAT, "pre-tokenizer regex: %s at offset %zu", msg, (size_t)eoff);
        }
        t->jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;
    }
    free(b->ml);
    free(b->mr);
    free(b->mid);
    b->ml = b->mr = b->mid = NULL;
    *out = t;
    b->t = NULL;
    return BR_OK;
}

/* ---- BPE ----------------------------------------------------------------------------------- */

#define SMALL_PIECE 128

typedef struct {
    uint32_t rank;
    uint32_t pos;
} heap_ent_t;

static size_t bpe_scratch_size(size_t n)
{
    if (n < 2) n = 2;
    /* small: ranks (n). large: next/prev (2n), heap (up to 2n entries) */
    return n * (2 * sizeof(uint32_t) + sizeof(uint32_t)) + 2 * n * sizeof(heap_ent_t) + 64;
}

static inline int heap_less(heap_ent_t a, heap_ent_t b)
{
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(heap_ent_t *h, size_t *n, heap_ent_t e)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(e, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static heap_ent_t heap_pop(heap_ent_t *h, size_t *n)
{
    heap_ent_t top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && heap_less(h[c + 1], h[c])) c++;
        if (!heap_less(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

/* Length of the UTF-8 character at p[0..n) (1 for a byte that does not start a valid one):
 * SentencePiece vocabularies start BPE from characters. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    br_utf8_decode(p, n, &len);
    return len;
}

/* SentencePiece-style first symbols: one per character found in the vocabulary; the bytes of
 * any other character as <0xXX> tokens (byte_fallback) or one unk (consecutive unks fused when
 * fuse_unk).  Returns the count (<= n). */
static size_t sp_symbols(const br_tokenizer_t *t, const unsigned char *p, size_t n, int32_t *ids)
{
    size_t m = 0;
    for (size_t i = 0, k; i < n; i += k) {
        k = utf8_len(p + i, n - i);
        int32_t id = lookup_bytes(t, p + i, k);
        if (id != NO_ID) {
            ids[m++] = id;
            continue;
        }
        int all = t->byte_fallback;
        for (size_t j = 0; all && j < k; j++) all = t->byte_id[p[i + j]] != NO_ID;
        if (all) {
            for (size_t j = 0; j < k; j++) ids[m++] = t->byte_id[p[i + j]];
        } else if (!(t->fuse_unk && m > 0 && ids[m - 1] == t->unk)) {
            ids[m++] = t->unk;
        }
    }
    return m;
}

/* Merges symbols ids[0..n) in place: repeatedly the adjacent pair of lowest merge rank, leftmost
 * first.  Returns the new count. */
static size_t bpe_merge(const br_tokenizer_t *t, int32_t *ids, size_t n, void *scratch)
{
    if (n < 2) return n;
    if (n <= SMALL_PIECE) {
        uint32_t *rank = scratch; /* rank[i]: pair (ids[i], ids[i+1]) */
        int32_t *mid = (int32_t *)(rank + n);
        size_t m = n;
        for (size_t i = 0; i + 1 < m; i++)
            if (!lookup_pair(t, ids[i], ids[i + 1], &rank[i], &mid[i])) rank[i] = UINT32_MAX;
        while (m > 1) {
            size_t best = 0;
            uint32_t br = rank[0];
            for (size_t i = 1; i + 1 < m; i++)
                if (rank[i] < br) {
                    br = rank[i];
                    best = i;
                }
            if (br == UINT32_MAX) break;
            ids[best] = mid[best];
            memmove(ids + best + 1, ids + best + 2, (m - best - 2) * sizeof *ids);
            memmove(rank + best + 1, rank + best + 2, (m - best - 2) * sizeof *rank);
            memmove(mid + best + 1, mid + best + 2, (m - best - 2) * sizeof *mid);
            m--;
            if (best + 1 < m && !lookup_pair(t, ids[best], ids[best + 1], &rank[best], &mid[best]))
                rank[best] = UINT32_MAX;
            if (best > 0 && !lookup_pair(t, ids[best - 1], ids[best], &rank[best - 1], &mid[best - 1]))
                rank[best - 1] = UINT32_MAX;
        }
        return m;
    }
    /* long piece: linked list over symbol positions + lazy min-heap, O(n log n) */
    uint32_t *next = scratch, *prev = next + n;
    heap_ent_t *heap = (heap_ent_t *)(prev + n + (n & 1));
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        next[i] = (uint32_t)(i + 1);
        prev[i] = (uint32_t)(i - 1);
    }
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t r;
        int32_t id;
        if (lookup_pair(t, ids[i], ids[i + 1], &r, &id)) heap_push(heap, &hn, (heap_ent_t){r, (uint32_t)i});
    }
    while (hn) {
        heap_ent_t e = heap_pop(heap, &hn);
        uint32_t i = e.pos, j = next[i];
        if (ids[i] == NO_ID || j >= n) continue;
        uint32_t r;
        int32_t id;
        if (!lookup_pair(t, ids[i], ids[j], &r, &id) || r != e.rank) continue; /* stale */
        ids[i] = id;
        ids[j] = NO_ID;
        next[i] = next[j];
        if (next[j] < n) prev[next[j]] = i;
        if (next[i] < n && lookup_pair(t, ids[i], ids[next[i]], &r, &id))
            heap_push(heap, &hn, (heap_ent_t){r, i});
        if (i > 0) {
            uint32_t pi = prev[i];
            if (lookup_pair(t, ids[pi], ids[i], &r, &id)) heap_push(heap, &hn, (heap_ent_t){r, pi});
        }
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i = next[i]) ids[m++] = ids[i];
    return m;
}

/* BPE over one piece of n bytes; appends ids to out (capacity >= n). */
static void bpe_piece(const br_tokenizer_t *t, const unsigned char *p, size_t n, int32_t *out,
                      size_t *nout, void *scratch)
{
    int32_t *ids = out + *nout;
    size_t m = n;
    if (t->sp) m = sp_symbols(t, p, n, ids);
    else
        for (size_t i = 0; i < n; i++) ids[i] = t->byte_id[p[i]];
    *nout += bpe_merge(t, ids, m, scratch);
}

/* ---- encode -------------------------------------------------------------------------------- */

typedef struct {
    int32_t *ids;
    size_t n, cap;
    void *scratch;
    size_t scratch_cap;
} enc_t;

static br_status enc_reserve(enc_t *e, size_t more)
{
    if (e->n + more <= e->cap) return BR_OK;
    size_t nc = e->cap ? e->cap : 256;
    while (nc < e->n + more) nc *= 2;
    int32_t *ni = realloc(e->ids, nc * sizeof *ni);
    if (!ni) return br_error(BR_ENOMEM, "encode: out of memory");
    e->ids = ni;
    e->cap = nc;
    return BR_OK;
}

static br_status enc_piece(const br_tokenizer_t *t, enc_t *e, const unsigned char *p, size_t n)
{
    if (n == 0) return BR_OK;
    BR_TRY(enc_reserve(e, n));
    if (n <= 64 || t->direct_always) {
        int32_t id = lookup_bytes(t, p, n);
        if (id != NO_ID && (t->flags[id] & TF_DIRECT)) {
            e->ids[e->n++] = id;
            return BR_OK;
        }
    }
    size_t need = bpe_scratch_size(n);
    if (need > e->scratch_cap) {
        void *s = realloc(e->scratch, need);
        if (!s) return br_error(BR_ENOMEM, "encode: out of memory");
        e->scratch = s;
        e->scratch_cap = need;
    }
    bpe_piece(t, p, n, e->ids, &e->n, e->scratch);
    return BR_OK;
}

/* Pre-tokenises and encodes text without specials. */
static br_status enc_ordinary(const br_tokenizer_t *t, enc_t *e, const unsigned char *s, size_t len,
                              pcre2_match_data *md, pcre2_match_context **mctx, pcre2_jit_stack **stack)
{
    if (!t->re) return enc_piece(t, e, s, len);
    size_t pos = 0, from = 0; /* pos: first byte not yet encoded; from: where the search starts */
    while (from < len) {
        int rc = t->jit ? pcre2_jit_match(t->re, s, len, from, 0, md, *mctx)
                        : pcre2_match(t->re, s, len, from, 0, md, *mctx);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !*stack) {
            *mctx = pcre2_match_context_create(NULL);
            *stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, NULL);
            if (!*mctx || !*stack) return br_error(BR_ENOMEM, "encode: out of memory");
            pcre2_jit_stack_assign(*mctx, NULL, *stack);
            continue;
        }
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            char msg[256];
            pcre2_get_error_message(rc, (PCRE2_UCHAR *)msg, sizeof msg);
            return br_error(BR_EINVAL, "encode: regex failed at byte %zu: %s", from, msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], z = ov[1];
        if (z <= a) { /* empty match: the byte stays in the gap */
            from = a + 1;
            continue;
        }
        if (a > pos) BR_TRY(enc_piece(t, e, s + pos, a - pos)); /* bytes no alternative matched */
        BR_TRY(enc_piece(t, e, s + a, z - a));
        pos = from = z;
    }
    if (len > pos) BR_TRY(enc_piece(t, e, s + pos, len - pos));
    return BR_OK;
}

/* SentencePiece-style segment: a space is put in front (as the Prepend normalizer or the
 * Metaspace pre-tokenizer says), then the segment is one piece, or pieces that each start at a
 * space (Metaspace split). */
static br_status enc_sp(const br_tokenizer_t *t, enc_t *e, const unsigned char *s, size_t len, int first)
{
    int pre = t->prepend == PREPEND_ALWAYS || ((t->prepend == PREPEND_META_ALWAYS || (t->prepend == PREPEND_META_FIRST && first)) &&
                                               s[0] != ' ');
    unsigned char *buf = NULL;
    /* a literal U+2581 in the text is a space too (the vocabulary cannot tell them apart) */
    int meta = memmem(s, len, "\xE2\x96\x81", 3) != NULL;
    if (pre || meta) {
        buf = malloc(len + 1);
        if (!buf) return br_error(BR_ENOMEM, "encode: out of memory");
        size_t k = 0;
        if (pre) buf[k++] = ' ';
        for (size_t i = 0; i < len;) {
            if (meta && i + 3 <= len && !memcmp(s + i, "\xE2\x96\x81", 3)) {
                buf[k++] = ' ';
                i += 3;
            } else buf[k++] = s[i++];
        }
        s = buf;
        len = k;
    }
    br_status st = BR_OK;
    if (!t->split_space) st = enc_piece(t, e, s, len);
    else
        for (size_t i = 0; st == BR_OK && i < len;) {
            const unsigned char *sp = memchr(s + i + 1, ' ', len - i - 1);
            size_t j = sp ? (size_t)(sp - s) : len;
            st = enc_piece(t, e, s + i, j - i);
            i = j;
        }
    free(buf);
    return st;
}

/* One stretch of text between added tokens: normalise (NFC), then SentencePiece-style or
 * regex pre-tokenisation.  first: the stretch starts the text. */
static br_status enc_segment(const br_tokenizer_t *t, enc_t *e, const unsigned char *s, size_t len, int first,
                             pcre2_match_data *md, pcre2_match_context **mctx, pcre2_jit_stack **stack)
{
    if (len == 0) return BR_OK;
    char *norm = NULL;
    if (t->nfc && !br_nfc_quick((const char *)s, len)) {
        size_t nl;
        BR_TRY(br_nfc((const char *)s, len, &norm, &nl));
        s = (const unsigned char *)norm;
        len = nl;
    }
    br_status st = t->sp ? enc_sp(t, e, s, len, first) : enc_ordinary(t, e, s, len, md, mctx, stack);
    free(norm);
    return st;
}

static int is_ws(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

br_status br_tokenizer_encode(const br_tokenizer_t *t, const char *text, size_t len,
                              int allow_special, int32_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    if (!t) return br_error(BR_EINVAL, "encode: no tokenizer");
    if (!text && len) return br_error(BR_EINVAL, "encode: NULL text");
    enc_t e = {0};
    pcre2_match_data *md = t->re ? pcre2_match_data_create_from_pattern(t->re, NULL) : NULL;
    pcre2_match_context *mctx = NULL;
    pcre2_jit_stack *stack = NULL;
    br_status st = BR_OK;
    if (t->re && !md) st = br_error(BR_ENOMEM, "encode: out of memory");
    if (st == BR_OK) st = enc_reserve(&e, len / 3 + 16);
    const unsigned char *s = (const unsigned char *)text;
    size_t pos = 0;
    while (st == BR_OK && pos < len) {
        size_t best = len;
        int32_t best_id = NO_ID;
        {
            for (size_t k = 0; k < t->nspecial; k++) {
                int32_t id = t->special[k];
                if (!allow_special && !(t->flags[id] & TF_ADDED)) continue;
                size_t lim = best + t->len[id] < len ? best + t->len[id] : len; /* only hits before `best` */
                const unsigned char *hit = memmem(s + pos, lim - pos, t->bytes + t->off[id], t->len[id]);
                if (hit && (size_t)(hit - s) < best) {
                    best = (size_t)(hit - s);
                    best_id = id;
                }
            }
        }
        size_t end = best;
        if (best_id != NO_ID && (t->flags[best_id] & TF_LSTRIP))
            while (end > pos && is_ws(s[end - 1])) end--;
        st = enc_segment(t, &e, s + pos, end - pos, pos == 0, md, &mctx, &stack);
        if (st == BR_OK && best_id != NO_ID) {
            st = enc_reserve(&e, 1);
            if (st == BR_OK) e.ids[e.n++] = best_id;
            best += t->len[best_id];
            if (t->flags[best_id] & TF_RSTRIP)
                while (best < len && is_ws(s[best])) best++;
        }
        pos = best;
    }
    pcre2_match_data_free(md);
    pcre2_match_context_free(mctx);
    pcre2_jit_stack_free(stack);
    free(e.scratch);
    if (st != BR_OK) {
        free(e.ids);
        return st;
    }
    *ids = e.ids;
    *n = e.n;
    return BR_OK;
}

br_status br_tokenizer_decode(const br_tokenizer_t *t, const int32_t *ids, size_t n, char **text,
                              size_t *len)
{
    *text = NULL;
    if (len) *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= t->n_ids || !(t->flags[ids[i]] & TF_VALID))
            return br_error(BR_ERANGE, "decode: token id %d at position %zu is not in the vocabulary (%zu ids)",
                            ids[i], i, t->n_ids);
        total += t->len[ids[i]];
    }
    char *out = malloc(total + 1);
    if (!out) return br_error(BR_ENOMEM, "decode: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + k, t->bytes + t->off[ids[i]], t->len[ids[i]]);
        k += t->len[ids[i]];
    }
    for (int i = 0; i < t->strip_lead && k > 0 && out[0] == ' '; i++) memmove(out, out + 1, k--);
    out[k] = 0;
    *text = out;
    if (len) *len = k;
    return BR_OK;
}

size_t br_tokenizer_vocab_size(const br_tokenizer_t *t) { return t->n_ids; }

int32_t br_tokenizer_token_id(const br_tokenizer_t *t, const char *token)
{
    size_t n = strlen(token);
    for (size_t k = 0; k < t->nspecial; k++)
        if (t->len[t->special[k]] == n && !memcmp(t->bytes + t->off[t->special[k]], token, n)) return t->special[k];
    if (!t->tab || n == 0) return NO_ID;
    return lookup_bytes(t, (const unsigned char *)token, n);
}

int32_t br_tokenizer_eos_id(const br_tokenizer_t *t) { return t->eos; }

void br_tokenizer_post_ids(const br_tokenizer_t *t, int32_t *first, int32_t *last)
{
    *first = t->post_first >= 0 && (size_t)t->post_first < t->n_ids ? t->post_first : NO_ID;
    *last = t->post_last >= 0 && (size_t)t->post_last < t->n_ids ? t->post_last : NO_ID;
}

const unsigned char *br_tokenizer_token_bytes(const br_tokenizer_t *t, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= t->n_ids || !(t->flags[id] & TF_VALID)) {
        *len = 0;
        return NULL;
    }
    *len = t->len[id];
    return t->bytes + t->off[id];
}

int br_tokenizer_is_special(const br_tokenizer_t *t, int32_t id)
{
    return id >= 0 && (size_t)id < t->n_ids && (t->flags[id] & TF_SPECIAL);
}

const char *br_tokenizer_pattern(const br_tokenizer_t *t) { return t->pattern; }

int br_tokenizer_lossless(const br_tokenizer_t *t) { return !t->sp && !t->nfc; }

void br_tokenizer_free(br_tokenizer_t *t)
{
    if (!t) return;
    free(t->off);
    free(t->len);
    free(t->flags);
    free(t->bytes);
    free(t->tab);
    free(t->pairs);
    free(t->special);
    free(t->pattern);
    pcre2_code_free(t->re);
    free(t);
}

/* ---- loaders -------------------------------------------------------------------------------- */

static br_status add_sp(builder_t *b, const char *s, int64_t id);

/* Adds a token given in byte-level form (encoder.json, tokenizer.json vocab). */
static br_status add_bytelevel(builder_t *b, const char *s, int64_t id, const char *what)
{
    size_t n = strlen(s);
    unsigned char stack[256];
    unsigned char *buf = n <= sizeof stack ? stack : malloc(n);
    if (!buf) return br_error(BR_ENOMEM, "tokenizer: out of memory");
    long k = br_bytelevel_decode(buf, s, n);
    br_status st;
    if (k <= 0) st = br_error(BR_EFORMAT, "%s: token %lld \"%.40s\" is not in GPT-2's byte-level alphabet", what, (long long)id, s);
    else st = b_add(b, id, buf, (size_t)k, 0);
    if (buf != stack) free(buf);
    return st;
}

/* Looks a byte-level token string up by its bytes (tokens are unique). */
static int32_t id_of_bytelevel(builder_t *b, json_t *vocab, const char *s)
{
    json_t *v = json_object_get(vocab, s);
    if (!json_is_integer(v)) return NO_ID;
    json_int_t id = json_integer_value(v);
    if (id < 0 || (size_t)id >= b->t->n_ids) return NO_ID;
    return (int32_t)id;
}

static br_status add_merge_strings(builder_t *b, json_t *vocab, const char *l, const char *r, size_t line,
                                   const char *what)
{
    int32_t a = id_of_bytelevel(b, vocab, l), c = id_of_bytelevel(b, vocab, r);
    if (a == NO_ID || c == NO_ID)
        return br_error(BR_EFORMAT, "%s: merge %zu (\"%.40s\" \"%.40s\") uses a token missing from the vocab", what, line, l, r);
    size_t nl = strlen(l), nr = strlen(r);
    char stack[512];
    char *cat = nl + nr + 1 <= sizeof stack ? stack : malloc(nl + nr + 1);
    if (!cat) return br_error(BR_ENOMEM, "tokenizer: out of memory");
    memcpy(cat, l, nl);
    memcpy(cat + nl, r, nr + 1);
    int32_t m = id_of_bytelevel(b, vocab, cat);
    if (cat != stack) free(cat);
    if (m == NO_ID)
        return br_error(BR_EFORMAT, "%s: merge %zu (\"%.40s\" \"%.40s\") makes a token missing from the vocab", what, line, l, r);
    return b_merge(b, a, c, m);
}

static br_status add_vocab_object(builder_t *b, json_t *vocab, const char *what)
{
    if (!json_is_object(vocab) || json_object_size(vocab) == 0) return br_error(BR_EFORMAT, "%s: vocab is not a non-empty object", what);
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v)) return br_error(BR_EFORMAT, "%s: vocab entry \"%.40s\" is not an integer id", what, key);
        br_status st = b->t->sp ? add_sp(b, key, json_integer_value(v)) : add_bytelevel(b, key, json_integer_value(v), what);
        BR_TRY(st);
    }
    return BR_OK;
}

static br_status load_gpt2_dir(builder_t *b, const char *enc_path, const char *bpe_path)
{
    json_error_t je;
    json_t *vocab = json_load_file(enc_path, JSON_REJECT_DUPLICATES, &je);
    if (!vocab) return br_error(BR_EFORMAT, "%s: not valid JSON (line %d: %s)", enc_path, je.line, je.text);
    br_status st = add_vocab_object(b, vocab, enc_path);
    char *text = NULL;
    size_t size = 0;
    if (st == BR_OK) st = br_read_file(bpe_path, &text, &size);
    if (st == BR_OK) {
        char *save = NULL, *line = strtok_r(text, "\n", &save);
        size_t lineno = 0;
        while (st == BR_OK && line) {
            lineno++;
            size_t ln = strlen(line);
            if (ln && line[ln - 1] == '\r') line[--ln] = 0;
            if (ln && !(lineno == 1 && line[0] == '#')) {
                char *sp = strchr(line, ' ');
                if (!sp || strchr(sp + 1, ' ')) st = br_error(BR_EFORMAT, "%s:%zu: a merge line is two tokens separated by one space", bpe_path, lineno);
                else {
                    *sp = 0;
                    st = add_merge_strings(b, vocab, line, sp + 1, lineno, bpe_path);
                }
            }
            line = strtok_r(NULL, "\n", &save);
        }
        if (st == BR_OK && b->nmerge == 0) st = br_error(BR_EFORMAT, "%s: no merges", bpe_path);
    }
    free(text);
    if (st == BR_OK) {
        /* GPT-2's encoder.json holds <|endoftext|> as a regular entry: make it special */
        json_t *v = json_object_get(vocab, "<|endoftext|>");
        if (json_is_integer(v)) b->t->flags[json_integer_value(v)] |= TF_SPECIAL;
    }
    json_decref(vocab);
    return st;
}

/* Metaspace (pre-tokenizer): U+2581 for spaces, put before the text per prepend_scheme (or the
 * older add_prefix_space), and split before each U+2581 when split is true. */
static br_status metaspace(br_tokenizer_t *t, json_t *pt, const char *path)
{
    const char *rep = json_string_value(json_object_get(pt, "replacement"));
    if (rep && strcmp(rep, "\xE2\x96\x81"))
        return br_error(BR_EUNSUPPORTED, "%s: Metaspace replacement \"%s\" is not supported (only U+2581)", path, rep);
    const char *scheme = json_string_value(json_object_get(pt, "prepend_scheme"));
    json_t *aps = json_object_get(pt, "add_prefix_space");
    if (!scheme) scheme = aps && !json_is_true(aps) ? "never" : "always";
    if (!strcmp(scheme, "always")) t->prepend = PREPEND_META_ALWAYS;
    else if (!strcmp(scheme, "first")) t->prepend = PREPEND_META_FIRST;
    else if (!strcmp(scheme, "never")) t->prepend = PREPEND_NONE;
    else return br_error(BR_EUNSUPPORTED, "%s: Metaspace prepend_scheme \"%s\" is not supported", path, scheme);
    json_t *split = json_object_get(pt, "split");
    t->split_space = !split || json_is_true(split);
    t->sp = 1;
    return BR_OK;
}

static const char *pretok_pattern(br_tokenizer_t *t, json_t *pt, const char *path, br_status *st, int depth)
{
    *st = BR_OK;
    if (!pt || json_is_null(pt)) return NULL;
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (!type) {
        *st = br_error(BR_EFORMAT, "%s: pre_tokenizer has no type", path);
        return NULL;
    }
    if (!strcmp(type, "ByteLevel")) {
        if (json_is_true(json_object_get(pt, "add_prefix_space"))) {
            *st = br_error(BR_EUNSUPPORTED, "%s: ByteLevel add_prefix_space=true is not supported", path);
            return NULL;
        }
        json_t *ur = json_object_get(pt, "use_regex");
        return (!ur || json_is_true(ur)) ? br_pattern_gpt2 : NULL;
    }
    if (!strcmp(type, "Metaspace")) {
        *st = metaspace(t, pt, path);
        return NULL;
    }
    if (!strcmp(type, "Split")) {
        json_t *pat = json_object_get(pt, "pattern");
        const char *re = json_string_value(json_object_get(pat, "Regex"));
        const char *beh = json_string_value(json_object_get(pt, "behavior"));
        if (!re || (beh && strcmp(beh, "Isolated")) || json_is_true(json_object_get(pt, "invert"))) {
            *st = br_error(BR_EUNSUPPORTED, "%s: only Split with a Regex pattern, behavior Isolated, invert false is supported", path);
            return NULL;
        }
        return re;
    }
    if (!strcmp(type, "Sequence") && depth == 0) {
        json_t *list = json_object_get(pt, "pretokenizers");
        const char *found = NULL;
        size_t i;
        json_t *it;
        json_array_foreach(list, i, it) {
            const char *p = pretok_pattern(t, it, path, st, 1);
            if (*st != BR_OK) return NULL;
            if (p && found) {
                *st = br_error(BR_EUNSUPPORTED, "%s: more than one splitting pre-tokenizer", path);
                return NULL;
            }
            if (p) found = p;
        }
        return found;
    }
    *st = br_error(BR_EUNSUPPORTED, "%s: pre_tokenizer type %s is not supported (ByteLevel, Split, Metaspace, Sequence are)", path, type);
    return NULL;
}

enum { NORM_PREPEND = 1, NORM_REPLACE = 2 };

/* normalizer: NFC, and SentencePiece's Prepend("\u2581") + Replace(" " -> "\u2581"). */
static br_status normalizer(br_tokenizer_t *t, json_t *n, const char *path, int depth, int *seen)
{
    if (!n || json_is_null(n)) return BR_OK;
    const char *type = json_string_value(json_object_get(n, "type"));
    if (!type) return br_error(BR_EFORMAT, "%s: normalizer has no type", path);
    if (!strcmp(type, "NFC")) {
        t->nfc = 1;
        return BR_OK;
    }
    if (!strcmp(type, "Sequence") && depth == 0) {
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(n, "normalizers"), i, it) BR_TRY(normalizer(t, it, path, 1, seen));
        return BR_OK;
    }
    const char *prep = json_string_value(json_object_get(n, "prepend"));
    if (!strcmp(type, "Prepend") && prep && !strcmp(prep, "\xE2\x96\x81")) {
        *seen |= NORM_PREPEND;
        return BR_OK;
    }
    const char *from = json_string_value(json_object_get(json_object_get(n, "pattern"), "String"));
    const char *to = json_string_value(json_object_get(n, "content"));
    if (!strcmp(type, "Replace") && from && to && !strcmp(from, " ") && !strcmp(to, "\xE2\x96\x81")) {
        *seen |= NORM_REPLACE;
        return BR_OK;
    }
    return br_error(BR_EUNSUPPORTED, "%s: normalizer %s is not supported (NFC, Prepend \"\\u2581\" and Replace \" \" -> "
                    "\"\\u2581\" are)", path, type);
}

/* decoder of a SentencePiece-style vocabulary: Replace(U+2581 -> " "), ByteFallback, Fuse,
 * Strip(" ", n, 0) or Metaspace; all that changes is how many leading spaces decoding drops. */
static br_status sp_decoder(br_tokenizer_t *t, json_t *d, const char *path, int depth)
{
    if (!d || json_is_null(d)) return BR_OK;
    const char *type = json_string_value(json_object_get(d, "type"));
    if (!type) return br_error(BR_EFORMAT, "%s: decoder has no type", path);
    if (!strcmp(type, "Sequence") && depth == 0) {
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(d, "decoders"), i, it) BR_TRY(sp_decoder(t, it, path, 1));
        return BR_OK;
    }
    if (!strcmp(type, "ByteFallback") || !strcmp(type, "Fuse")) return BR_OK;
    const char *from = json_string_value(json_object_get(json_object_get(d, "pattern"), "String"));
    const char *to = json_string_value(json_object_get(d, "content"));
    if (!strcmp(type, "Replace") && from && to && !strcmp(from, "\xE2\x96\x81") && !strcmp(to, " ")) return BR_OK;
    if (!strcmp(type, "Strip") && to && !strcmp(to, " ") && json_integer_value(json_object_get(d, "stop")) == 0) {
        json_int_t k = json_integer_value(json_object_get(d, "start"));
        t->strip_lead = k < 0 ? 0 : k > 8 ? 8 : (int)k;
        return BR_OK;
    }
    if (!strcmp(type, "Metaspace")) {
        const char *scheme = json_string_value(json_object_get(d, "prepend_scheme"));
        json_t *aps = json_object_get(d, "add_prefix_space");
        t->strip_lead = scheme ? strcmp(scheme, "never") != 0 : !(aps && !json_is_true(aps));
        return BR_OK;
    }
    return br_error(BR_EUNSUPPORTED, "%s: decoder %s is not supported with a SentencePiece-style vocabulary", path, type);
}

/* A SentencePiece-style vocab entry: "<0xHH>" is byte HH (byte_fallback); U+2581 means space. */
static br_status add_sp(builder_t *b, const char *s, int64_t id)
{
    size_t n = strlen(s);
    unsigned hx;
    char tail;
    if (b->t->byte_fallback && n == 6 && sscanf(s, "<0x%2X%c", &hx, &tail) == 2 && tail == '>') {
        unsigned char byte = (unsigned char)hx;
        return b_add(b, id, &byte, 1, TF_BYTE);
    }
    if (n == 0) return br_error(BR_EFORMAT, "token %lld is empty", (long long)id);
    unsigned char stack[256] = {0};
    unsigned char *buf = n <= sizeof stack ? stack : malloc(n);
    if (!buf) return br_error(BR_ENOMEM, "tokenizer: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && !memcmp(s + i, "\xE2\x96\x81", 3)) {
            buf[k++] = ' ';
            i += 3;
        } else buf[k++] = (unsigned char)s[i++];
    }
    br_status st = b_add(b, id, buf, k, 0);
    if (buf != stack) free(buf);
    return st;
}

static br_status add_added_tokens(builder_t *b, json_t *added, const char *path)
{
    size_t i;
    json_t *m;
    json_array_foreach(added, i, m) {
        json_t *idv = json_object_get(m, "id");
        const char *content = json_string_value(json_object_get(m, "content"));
        if (!json_is_integer(idv) || !content || !*content) return br_error(BR_EFORMAT, "%s: added_tokens[%zu] needs an integer id and a content string", path, i);
        if (json_is_true(json_object_get(m, "single_word")))
            return br_error(BR_EUNSUPPORTED, "%s: added token \"%.40s\" has single_word=true, which braid does not support", path, content);
        json_t *sp = json_object_get(m, "special");
        int flags = (!sp || json_is_true(sp)) ? TF_SPECIAL : TF_ADDED;
        if (json_is_true(json_object_get(m, "lstrip"))) flags |= TF_LSTRIP;
        if (json_is_true(json_object_get(m, "rstrip"))) flags |= TF_RSTRIP;
        BR_TRY(b_add(b, json_integer_value(idv), (const unsigned char *)content, strlen(content), flags));
    }
    return BR_OK;
}

/* The id of a TemplateProcessing item {"SpecialToken": {"id": "<s>"}} (its special_tokens
 * entry has one id), or NO_ID for a sequence or anything else. */
static int32_t template_special(json_t *item, json_t *specials)
{
    const char *name = json_string_value(json_object_get(json_object_get(item, "SpecialToken"), "id"));
    json_t *ids = name ? json_object_get(json_object_get(specials, name), "ids") : NULL;
    json_t *id = json_array_size(ids) == 1 ? json_array_get(ids, 0) : NULL;
    return json_is_integer(id) && json_integer_value(id) >= 0 && json_integer_value(id) < (1 << 30)
               ? (int32_t)json_integer_value(id)
               : NO_ID;
}

/* post_processor: the special tokens a TemplateProcessing (alone or inside a Sequence, as in
 * Llama-3's tokenizer.json) puts before and after a single sequence ("<s>" of Llama-2,
 * "<|begin_of_text|>" of Llama-3).  Other processors add nothing braid needs to know. */
static void post_processor(br_tokenizer_t *t, json_t *pp, int depth)
{
    const char *type = json_string_value(json_object_get(pp, "type"));
    if (!type || depth > 4) return;
    if (!strcmp(type, "Sequence")) {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(pp, "processors"), i, p) post_processor(t, p, depth + 1);
    } else if (!strcmp(type, "TemplateProcessing")) {
        json_t *single = json_object_get(pp, "single"), *specials = json_object_get(pp, "special_tokens");
        size_t n = json_array_size(single);
        if (n < 2) return;
        t->post_first = template_special(json_array_get(single, 0), specials);
        t->post_last = template_special(json_array_get(single, n - 1), specials);
    }
}

static br_status load_hf_json(builder_t *b, json_t *root, const char *path, const char **pattern)
{
    json_t *model = json_object_get(root, "model");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    if (!json_is_object(model)) return br_error(BR_EFORMAT, "%s: no \"model\" object", path);
    if (mtype && strcmp(mtype, "BPE")) return br_error(BR_EUNSUPPORTED, "%s: model type %s is not supported (BPE only)", path, mtype);
    br_tokenizer_t *t = b->t;
    int seen = 0;
    BR_TRY(normalizer(t, json_object_get(root, "normalizer"), path, 0, &seen));
    if (seen == (NORM_PREPEND | NORM_REPLACE)) {
        t->sp = 1;
        t->prepend = PREPEND_ALWAYS;
    } else if (seen == NORM_REPLACE) t->sp = 1;
    else if (seen) return br_error(BR_EUNSUPPORTED, "%s: a Prepend normalizer without Replace(\" \" -> \"\\u2581\") is not supported", path);
    const char *cp = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    const char *ew = json_string_value(json_object_get(model, "end_of_word_suffix"));
    if ((cp && *cp) || (ew && *ew))
        return br_error(BR_EUNSUPPORTED, "%s: continuing_subword_prefix / end_of_word_suffix are not supported", path);
    br_status st;
    *pattern = pretok_pattern(t, json_object_get(root, "pre_tokenizer"), path, &st, 0);
    BR_TRY(st);
    t->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    t->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
    if (t->byte_fallback && !t->sp)
        return br_error(BR_EUNSUPPORTED, "%s: byte_fallback needs a SentencePiece-style vocabulary (Metaspace or Prepend+Replace normalizer)", path);
    if (t->sp && *pattern)
        return br_error(BR_EUNSUPPORTED, "%s: a regex pre-tokenizer together with a SentencePiece-style vocabulary is not supported", path);
    if (t->sp) BR_TRY(sp_decoder(t, json_object_get(root, "decoder"), path, 0));
    json_t *vocab = json_object_get(model, "vocab");
    BR_TRY(add_vocab_object(b, vocab, path));
    json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges)) return br_error(BR_EFORMAT, "%s: model.merges is not an array", path);
    size_t i;
    json_t *m;
    json_array_foreach(merges, i, m) {
        if (json_is_string(m)) {
            const char *s = json_string_value(m), *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) return br_error(BR_EFORMAT, "%s: merge %zu is not two tokens separated by one space", path, i);
            char *l = strndup(s, (size_t)(sp - s));
            if (!l) return br_error(BR_ENOMEM, "tokenizer: out of memory");
            st = add_merge_strings(b, vocab, l, sp + 1, i, path);
            free(l);
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            st = add_merge_strings(b, vocab, json_string_value(json_array_get(m, 0)),
                                   json_string_value(json_array_get(m, 1)), i, path);
        } else st = br_error(BR_EFORMAT, "%s: merge %zu is neither \"a b\" nor [\"a\", \"b\"]", path, i);
        BR_TRY(st);
    }
    if (json_is_true(json_object_get(model, "ignore_merges")) && !t->sp) t->direct_always = 1;
    BR_TRY(add_added_tokens(b, json_object_get(root, "added_tokens"), path));
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    json_t *uv = unk ? json_object_get(vocab, unk) : NULL;
    if (unk && !json_is_integer(uv)) return br_error(BR_EFORMAT, "%s: unk_token \"%.40s\" is not in the vocab", path, unk);
    if (uv) t->unk = (int32_t)json_integer_value(uv);
    post_processor(t, json_object_get(root, "post_processor"), 0);
    return BR_OK;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes base64 s[0..n) into out; returns the byte count or -1. */
static long b64dec(unsigned char *out, const char *s, size_t n)
{
    if (n % 4) return -1;
    long k = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            if (s[i + j] == '=' && i + 4 == n && j >= 2) {
                v[j] = 0;
                pad++;
            } else if ((v[j] = b64val((unsigned char)s[i + j])) < 0 || pad) return -1;
        }
        uint32_t w = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) | ((uint32_t)v[2] << 6) | (uint32_t)v[3];
        out[k++] = (unsigned char)(w >> 16);
        if (pad < 2) out[k++] = (unsigned char)(w >> 8);
        if (pad < 1) out[k++] = (unsigned char)w;
    }
    return k;
}

/* One base64 token of rank `rank` from a tiktoken file. */
static br_status add_b64(builder_t *b, const char *s, size_t n, int64_t rank, const char *path)
{
    unsigned char buf[4096];
    if (n == 0 || n > 4 * (sizeof buf / 3)) return br_error(BR_EFORMAT, "%s: token of rank %lld: bad base64 length", path, (long long)rank);
    long k = b64dec(buf, s, n);
    if (k <= 0) return br_error(BR_EFORMAT, "%s: token of rank %lld is not valid base64", path, (long long)rank);
    return b_add(b, rank, buf, (size_t)k, 0);
}

/* Known tiktoken encodings, told apart by their number of ranks (.tiktoken files carry neither
 * the regex nor the specials). */
static br_status tiktoken_defaults(builder_t *b, size_t nranks, const char **pattern, const char *path)
{
    struct { const char *name; size_t n; const char *pat; const char *sp[5]; int32_t sid[5]; } known[] = {
        {"r50k_base", 50256, br_pattern_gpt2, {"<|endoftext|>"}, {50256}},
        {"p50k_base", 50280, br_pattern_gpt2, {"<|endoftext|>"}, {50256}},
        {"cl100k_base", 100256, br_pattern_cl100k,
         {"<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|endofprompt|>"},
         {100257, 100258, 100259, 100260, 100276}},
        {"o200k_base", 199998, pattern_o200k, {"<|endoftext|>", "<|endofprompt|>"}, {199999, 200018}},
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        if (known[i].n != nranks) continue;
        *pattern = known[i].pat;
        for (int k = 0; k < 5 && known[i].sp[k]; k++)
            BR_TRY(b_add(b, known[i].sid[k], (const unsigned char *)known[i].sp[k], strlen(known[i].sp[k]), TF_SPECIAL));
        return BR_OK;
    }
    return br_error(BR_EUNSUPPORTED, "%s: %zu ranks match no known tiktoken encoding (r50k, p50k, cl100k, o200k); "
                    "use the JSON form that names pat_str and special_tokens", path, nranks);
}

/* .tiktoken: lines "BASE64 RANK". */
static br_status load_tiktoken_text(builder_t *b, char *text, const char *path, const char **pattern)
{
    size_t nranks = 0, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *sp = strchr(line, ' ');
        if (!sp) return br_error(BR_EFORMAT, "%s:%zu: expected \"BASE64 RANK\"", path, lineno);
        char *end;
        errno = 0;
        long long r = strtoll(sp + 1, &end, 10);
        if (errno || end == sp + 1 || (*end && *end != '\r')) return br_error(BR_EFORMAT, "%s:%zu: bad rank", path, lineno);
        BR_TRY(add_b64(b, line, (size_t)(sp - line), r, path));
        nranks++;
    }
    if (!nranks) return br_error(BR_EFORMAT, "%s: no ranks", path);
    b->derive_merges = 1;
    b->t->direct_always = 1;
    return tiktoken_defaults(b, nranks, pattern, path);
}

/* npm tiktoken's JSON: {"pat_str", "special_tokens": {name: id}, "bpe_ranks": "! OFFSET b64 b64 ...\n..."} */
static br_status load_tiktoken_json(builder_t *b, json_t *root, const char *path, const char **pattern)
{
    const char *ranks = json_string_value(json_object_get(root, "bpe_ranks"));
    *pattern = json_string_value(json_object_get(root, "pat_str"));
    if (!ranks || !*pattern) return br_error(BR_EFORMAT, "%s: tiktoken JSON needs string bpe_ranks and pat_str", path);
    const char *p = ranks;
    size_t lineno = 0;
    while (*p) {
        const char *eol = strchr(p, '\n');
        if (!eol) eol = p + strlen(p);
        lineno++;
        const char *q = memchr(p, ' ', (size_t)(eol - p));
        if (q) {
            char *end;
            long long off = strtoll(q + 1, &end, 10);
            if (end == q + 1 || (*end != ' ' && end != eol)) return br_error(BR_EFORMAT, "%s: bpe_ranks line %zu: bad offset", path, lineno);
            const char *tok = end;
            for (long long r = off; tok < eol; r++) {
                while (tok < eol && *tok == ' ') tok++;
                if (tok >= eol) break;
                const char *te = tok;
                while (te < eol && *te != ' ') te++;
                BR_TRY(add_b64(b, tok, (size_t)(te - tok), r, path));
                tok = te;
            }
        }
        p = *eol ? eol + 1 : eol;
    }
    if (!b->t->n_ids) return br_error(BR_EFORMAT, "%s: bpe_ranks is empty", path);
    json_t *sp = json_object_get(root, "special_tokens");
    const char *key;
    json_t *v;
    json_object_foreach(sp, key, v) {
        if (!json_is_integer(v) || !*key) return br_error(BR_EFORMAT, "%s: special token \"%.40s\" needs an integer id", path, key);
        BR_TRY(b_add(b, json_integer_value(v), (const unsigned char *)key, strlen(key), TF_SPECIAL));
    }
    b->derive_merges = 1;
    b->t->direct_always = 1;
    return BR_OK;
}

/* A tokenizer file's text (size bytes, NUL-terminated; label names it in errors): a
 * tokenizer.json, a tiktoken JSON or a tiktoken text file, into b.  *pattern may point into
 * *root (the parsed JSON, or NULL): the caller frees *root after b_finish. */
static br_status load_text(builder_t *b, char *text, size_t size, const char *label, const char **pattern,
                           json_t **root_out)
{
    if (strlen(text) != size) return br_error(BR_EFORMAT, "%s: not a tokenizer file (contains NUL bytes)", label);
    const char *p = text;
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
    if (*p != '{') return load_tiktoken_text(b, text, label, pattern);
    json_error_t je;
    json_t *root = *root_out = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    br_status st;
    if (!root) st = br_error(BR_EFORMAT, "%s: not valid JSON (line %d: %s)", label, je.line, je.text);
    else if (json_is_object(json_object_get(root, "model"))) st = load_hf_json(b, root, label, pattern);
    else if (json_is_string(json_object_get(root, "bpe_ranks"))) st = load_tiktoken_json(b, root, label, pattern);
    else if (json_is_integer(json_object_get(root, "!"))) st = br_error(BR_EINVAL, "%s: this is an encoder.json; pass its folder (with vocab.bpe)", label);
    else st = br_error(BR_EFORMAT, "%s: JSON with neither \"model\" (tokenizer.json) nor \"bpe_ranks\" (tiktoken)", label);
    return st;
}

br_status br_tokenizer_load_text(br_tokenizer_t **out, const char *text, const char *label)
{
    *out = NULL;
    builder_t b;
    BR_TRY(b_init(&b));
    const char *pattern = NULL;
    json_t *root = NULL;
    char *copy = strdup(text); /* the tiktoken reader splits lines in place */
    br_status st = copy ? load_text(&b, copy, strlen(copy), label, &pattern, &root) : br_error(BR_ENOMEM, "out of memory");
    if (st == BR_OK) st = b_finish(&b, pattern, out);
    if (st != BR_OK) st = br_error_wrap(st, "loading tokenizer");
    json_decref(root);
    free(copy);
    b_free(&b);
    return st;
}

br_status br_tokenizer_load(br_tokenizer_t **out, const char *path)
{
    *out = NULL;
    if (!path || !*path) return br_error(BR_EINVAL, "tokenizer: no path given");
    builder_t b;
    BR_TRY(b_init(&b));
    const char *pattern = NULL;
    br_status st = BR_OK;
    br_buf_t buf = BR_BUF_INIT, buf2 = BR_BUF_INIT;
    json_t *root = NULL;
    char *text = NULL;
    if (br_dir_exists(path)) {
        if ((st = br_buf_path(&buf, path, "tokenizer.json"))) goto done;
        if (br_file_exists(br_buf_str(&buf))) {
            path = br_buf_str(&buf);
        } else {
            st = br_buf_path(&buf, path, "encoder.json");
            if (st == BR_OK) st = br_buf_path(&buf2, path, "vocab.bpe");
            if (st == BR_OK && (!br_file_exists(br_buf_str(&buf)) || !br_file_exists(br_buf_str(&buf2))))
                st = br_error(BR_ENOTFOUND, "%s: folder holds neither tokenizer.json nor encoder.json + vocab.bpe", path);
            if (st == BR_OK) st = load_gpt2_dir(&b, br_buf_str(&buf), br_buf_str(&buf2));
            if (st == BR_OK) pattern = br_pattern_gpt2;
            goto done;
        }
    }
    size_t size;
    st = br_read_file(path, &text, &size);
    if (st == BR_OK) st = load_text(&b, text, size, path, &pattern, &root);
done:
    if (st == BR_OK) st = b_finish(&b, pattern, out);
    if (st != BR_OK) st = br_error_wrap(st, "loading tokenizer");
    json_decref(root);
    free(text);
    br_buf_free(&buf);
    br_buf_free(&buf2);
    b_free(&b);
    return st;
}
