/* braid data overlap: near-duplicate documents between a domain's train.txt and val.txt
 * (leakage), and their removal from val.txt (also `braid data fetch --dedupe`).
 *
 * A document is the set of its word n-gram shingles (words: runs of ASCII letters, digits, '_'
 * and non-ASCII bytes, ASCII lower-cased; each n-gram hashed to 64 bits, FNV-1a).  A val
 * document is leaked when some train document has Jaccard |A ∩ B| / |A ∪ B| >= threshold with
 * it, computed exactly: the train shingles sorted as (hash, document) pairs give every val
 * document's intersection with each train document that shares a shingle. */
#include "data_overlap.h"

#include <dirent.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/buf.h"
#include "base/fileio.h"
#include "commands.h"

static const char SEP[] = "\n<|endoftext|>\n";

typedef struct {
    const char *p;
    size_t n;
} span_t;

typedef struct {
    uint64_t h;
    uint32_t doc;
} pair_t;

/* Splits text at SEP into documents (pointers into text); *out is malloc'd. */
static br_status split_docs(const char *text, size_t len, span_t **out, size_t *n)
{
    size_t cap = 16, k = 0, sl = sizeof SEP - 1;
    span_t *d = malloc(cap * sizeof *d);
    if (!d) return br_error(BR_ENOMEM, "out of memory");
    const char *p = text, *end = text + len;
    while (p <= end) {
        const char *q = p < end ? memmem(p, (size_t)(end - p), SEP, sl) : NULL;
        size_t n1 = (size_t)((q ? q : end) - p);
        if (k == cap) {
            span_t *t = realloc(d, 2 * cap * sizeof *d);
            if (!t) return free(d), br_error(BR_ENOMEM, "out of memory");
            d = t, cap *= 2;
        }
        d[k++] = (span_t){p, n1};
        if (!q) break;
        p = q + sl;
    }
    *out = d, *n = k;
    return BR_OK;
}

static int word_byte(unsigned char c) { return c >= 0x80 || c == '_' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z'); }

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The sorted, distinct n-gram shingle hashes of a document (a document of fewer than n words:
 * one shingle of all of them; no words: none).  *out is malloc'd (NULL when *n_out == 0). */
static br_status shingles(span_t d, int n, uint64_t **out, size_t *n_out)
{
    size_t nw = 0, cap = 64;
    span_t *w = malloc(cap * sizeof *w);
    if (!w) return br_error(BR_ENOMEM, "out of memory");
    for (size_t i = 0; i < d.n;) {
        if (!word_byte((unsigned char)d.p[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < d.n && word_byte((unsigned char)d.p[j])) j++;
        if (nw == cap) {
            span_t *t = realloc(w, 2 * cap * sizeof *w);
            if (!t) return free(w), br_error(BR_ENOMEM, "out of memory");
            w = t, cap *= 2;
        }
        w[nw++] = (span_t){d.p + i, j - i};
        i = j;
    }
    size_t ns = nw == 0 ? 0 : nw < (size_t)n ? 1 : nw - (size_t)n + 1, k = 0;
    uint64_t *s = ns ? malloc(ns * sizeof *s) : NULL;
    if (ns && !s) return free(w), br_error(BR_ENOMEM, "out of memory");
    for (size_t i = 0; i < ns; i++) {
        uint64_t h = 1469598103934665603ULL;
        size_t last = nw < (size_t)n ? nw : i + (size_t)n;
        for (size_t j = i; j < last; j++) {
            if (j > i) h = (h ^ ' ') * 1099511628211ULL;
            for (size_t b = 0; b < w[j].n; b++) {
                unsigned char c = (unsigned char)w[j].p[b];
                h = (h ^ (c >= 'A' && c <= 'Z' ? c | 32 : c)) * 1099511628211ULL;
            }
        }
        s[i] = h;
    }
    free(w);
    if (ns) qsort(s, ns, sizeof *s, cmp_u64);
    for (size_t i = 0; i < ns; i++)
        if (!k || s[i] != s[k - 1]) s[k++] = s[i];
    *out = s, *n_out = k;
    return BR_OK;
}

static int cmp_pair(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h ? 1 : (x->doc > y->doc) - (x->doc < y->doc);
}

/* Index of the first pair with hash >= h. */
static size_t lower_bound(const pair_t *p, size_t n, uint64_t h)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p[mid].h < h) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Marks leaked[i] for every val document with a train document at Jaccard >= thr; fills the
 * shingle counts of st. */
static br_status find_leaks(const span_t *tr, size_t ntr, const span_t *va, size_t nva, int n, double thr,
                            bool *leaked, br_overlap_stats_t *st)
{
    size_t *tsize = calloc(ntr ? ntr : 1, sizeof *tsize), np = 0, cap = 1024;
    uint32_t *cnt = calloc(ntr ? ntr : 1, sizeof *cnt), *touched = malloc((ntr ? ntr : 1) * sizeof *touched);
    pair_t *pairs = malloc(cap * sizeof *pairs);
    br_status s = tsize && cnt && touched && pairs ? BR_OK : br_error(BR_ENOMEM, "out of memory");
    for (size_t j = 0; j < ntr && !s; j++) {
        uint64_t *h = NULL;
        size_t nh = 0;
        s = shingles(tr[j], n, &h, &nh);
        tsize[j] = nh;
        if (!s && np + nh > cap) {
            while (np + nh > cap) cap *= 2;
            pair_t *t = realloc(pairs, cap * sizeof *pairs);
            if (!t) s = br_error(BR_ENOMEM, "out of memory");
            else pairs = t;
        }
        for (size_t i = 0; i < nh && !s; i++) pairs[np++] = (pair_t){h[i], (uint32_t)j};
        free(h);
    }
    if (!s && np) qsort(pairs, np, sizeof *pairs, cmp_pair);
    for (size_t i = 0; i < nva && !s; i++) {
        uint64_t *h = NULL;
        size_t nh = 0, nt = 0;
        s = shingles(va[i], n, &h, &nh);
        for (size_t k = 0; k < nh && !s; k++) {
            size_t a = lower_bound(pairs, np, h[k]);
            if (a < np && pairs[a].h == h[k]) st->val_shingles_in_train++;
            for (; a < np && pairs[a].h == h[k]; a++)
                if (cnt[pairs[a].doc]++ == 0) touched[nt++] = pairs[a].doc;
        }
        st->val_shingles += nh;
        double best = 0;
        for (size_t k = 0; k < nt; k++) {
            uint32_t j = touched[k];
            double jac = (double)cnt[j] / (double)(nh + tsize[j] - cnt[j]);
            best = jac > best ? jac : best;
            cnt[j] = 0;
        }
        leaked[i] = nh > 0 && best >= thr;
        free(h);
    }
    free(tsize), free(cnt), free(touched), free(pairs);
    return s;
}

br_status br_overlap_domain(const char *dir, int n, double thr, bool drop, br_overlap_stats_t *st)
{
    memset(st, 0, sizeof *st);
    if (n < 1 || n > 64 || !(thr > 0 && thr <= 1))
        return br_error(BR_EINVAL, "overlap: n-gram length %d must be 1..64 and the threshold %g in (0, 1]", n, thr);
    char tp[4096], vp[4096];
    if ((size_t)snprintf(tp, sizeof tp, "%s/train.txt", dir) >= sizeof tp || (size_t)snprintf(vp, sizeof vp, "%s/val.txt", dir) >= sizeof vp)
        return br_error(BR_ERANGE, "%s: path too long", dir);
    char *tt = NULL, *vt = NULL;
    size_t tl = 0, vl = 0, ntr = 0, nva = 0;
    span_t *tr = NULL, *va = NULL;
    bool *leaked = NULL;
    br_status s = br_read_file(tp, &tt, &tl);
    if (!s) s = br_read_file(vp, &vt, &vl);
    if (!s) s = split_docs(tt, tl, &tr, &ntr);
    if (!s) s = split_docs(vt, vl, &va, &nva);
    if (!s && !(leaked = calloc(nva ? nva : 1, sizeof *leaked))) s = br_error(BR_ENOMEM, "out of memory");
    if (!s) s = find_leaks(tr, ntr, va, nva, n, thr, leaked, st);
    br_buf_t kept = BR_BUF_INIT;
    for (size_t i = 0; i < nva && !s; i++) {
        st->val_docs++;
        st->val_bytes += va[i].n;
        if (leaked[i]) {
            st->leaked_docs++;
            st->leaked_bytes += va[i].n;
        } else if (drop) {
            if (kept.len) s = br_buf_append(&kept, SEP, sizeof SEP - 1);
            if (!s) s = br_buf_append(&kept, va[i].p, va[i].n);
        }
    }
    if (!s && drop && st->leaked_docs) s = br_write_file_atomic(vp, kept.len ? kept.data : "", kept.len);
    br_buf_free(&kept);
    free(tt), free(vt), free(tr), free(va), free(leaked);
    return s ? br_error_wrap(s, "overlap %s", dir) : BR_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* "a,b,c": the sorted folders of raw that hold a val.txt (*out malloc'd; "" when none). */
static br_status domain_dirs(const char *raw, char **out)
{
    DIR *dp = opendir(raw);
    if (!dp) return br_error(BR_EIO, "cannot open the folder %s (run braid data fetch, or give --raw)", raw);
    char *names[256];
    size_t k = 0, total = 1;
    br_status s = BR_OK;
    for (struct dirent *e; (e = readdir(dp)) && !s;) {
        char p[4096];
        if (e->d_name[0] == '.' || (size_t)snprintf(p, sizeof p, "%s/%s/val.txt", raw, e->d_name) >= sizeof p ||
            !br_file_exists(p))
            continue;
        if (k == 256) s = br_error(BR_ERANGE, "%s: more than 256 domains", raw);
        else if (!(names[k] = strdup(e->d_name))) s = br_error(BR_ENOMEM, "out of memory");
        else total += strlen(names[k++]) + 1;
    }
    closedir(dp);
    char *list = s ? NULL : calloc(total, 1);
    if (!s && !list) s = br_error(BR_ENOMEM, "out of memory");
    qsort(names, k, sizeof *names, cmp_str);
    for (size_t i = 0; i < k; i++) {
        if (list) {
            if (i) strcat(list, ",");
            strcat(list, names[i]);
        }
        free(names[i]);
    }
    *out = list;
    return s;
}

int data_overlap(int argc, char **argv)
{
    const char *raw = "data/raw", *domains = NULL, *json_path = NULL;
    int n = 8;
    double thr = 0.5;
    bool dedupe = false;
    const opt_t opts[] = {
        {"raw", OPT_STR, &raw, "DIR", "corpus from 'braid data fetch' (default data/raw)", false},
        {"domains", OPT_STR, &domains, "LIST", "comma-separated domains (default: every folder of --raw with a val.txt)", false},
        {"ngram", OPT_INT, &n, "N", "words per shingle (default 8)", false},
        {"threshold", OPT_DOUBLE, &thr, "J", "Jaccard at or above which a val document is a near-duplicate (default 0.5)", false},
        {"dedupe", OPT_BOOL, &dedupe, NULL, "remove the near-duplicate documents from each val.txt (atomic rewrite)", false},
        {"json", OPT_STR, &json_path, "FILE", "also write the measurements as JSON", false},
    };
    cmd_spec_t spec = {"braid data overlap [--raw data/raw] [--domains LIST] [--dedupe]",
                       "Measures train/validation leakage per domain: the validation documents that have a "
                       "near-duplicate in train (word n-gram shingles, exact Jaccard), their bytes, and the share "
                       "of validation n-grams that occur in train.  With --dedupe, removes those documents from "
                       "val.txt (train.txt is never changed).",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (n < 1 || n > 64 || !(thr > 0 && thr <= 1)) {
        fprintf(stderr, "braid: error: --ngram must be 1..64 and --threshold in (0, 1]\n");
        return 2;
    }
    char *list = NULL;
    if (domains) list = strdup(domains);
    else {
        br_status s = domain_dirs(raw, &list);
        if (s) return fail_status(s, "data overlap");
    }
    if (!list) return fail_status(br_error(BR_ENOMEM, "out of memory"), "data overlap");
    json_t *root = json_object();
    br_status s = BR_OK;
    printf("%-10s %9s %7s %12s %16s%s\n", "domain", "val docs", "leaked", "leaked bytes", "val n-grams seen",
           dedupe ? "  (removed)" : "");
    int nd = 0;
    for (char *d = strtok(list, ","); d && !s; d = strtok(NULL, ",")) {
        char dir[4096];
        if ((size_t)snprintf(dir, sizeof dir, "%s/%s", raw, d) >= sizeof dir) {
            s = br_error(BR_ERANGE, "%s/%s: path too long", raw, d);
            break;
        }
        br_overlap_stats_t st;
        s = br_overlap_domain(dir, n, thr, dedupe, &st);
        if (s) break;
        nd++;
        double seen = st.val_shingles ? (double)st.val_shingles_in_train / (double)st.val_shingles : 0;
        printf("%-10s %9zu %7zu %11.1f%% %15.1f%%\n", d, st.val_docs, st.leaked_docs,
               st.val_bytes ? 100.0 * (double)st.leaked_bytes / (double)st.val_bytes : 0.0, 100 * seen);
        json_object_set_new(root, d, json_pack("{s:I, s:I, s:I, s:I, s:f, s:i, s:f, s:b}", "val_docs", (json_int_t)st.val_docs,
                                               "leaked_docs", (json_int_t)st.leaked_docs, "val_bytes", (json_int_t)st.val_bytes,
                                               "leaked_bytes", (json_int_t)st.leaked_bytes, "val_ngram_share_in_train", seen,
                                               "n", n, "threshold", thr, "removed", dedupe));
    }
    if (!s && !nd) s = br_error(BR_ENOTFOUND, "data overlap: no domain folders in %s (run braid data fetch)", raw);
    if (!s && json_path) {
        char *txt = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        s = txt ? br_write_file_atomic(json_path, txt, strlen(txt)) : br_error(BR_ENOMEM, "out of memory");
        free(txt);
    }
    json_decref(root);
    free(list);
    return s ? fail_status(s, "data overlap") : 0;
}
