/* BPE training: the incremental trainer must learn exactly the merges of a naive trainer that
 * recounts every pair after every merge (same tie rule), be deterministic across thread
 * counts, write a tokenizer.json that braid and (when installed) Hugging Face's Rust tokenizers
 * read to the same ids, and reject bad input clearly. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fileio.h"
#include "harness.h"
#include "text/bpe_train.h"
#include "text/bytelevel.h"
#include "text/tokenizer.h"

static char dir[] = "/tmp/braid-bpe-XXXXXX";
static char corpus[300];

/* Real text: the licences every Debian system ships. */
static size_t make_corpus(void)
{
    snprintf(corpus, sizeof corpus, "%s/licences.txt", dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cat /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0 "
                              "/usr/share/common-licenses/MPL-2.0 > %s", corpus);
    if (system(cmd) != 0) return 0;
    struct stat st;
    return stat(corpus, &st) == 0 ? (size_t)st.st_size : 0;
}

/* ---- naive reference trainer --------------------------------------------------------------- */

typedef struct {
    int *sym;
    int n;
    long count;
} word_t;

typedef struct {
    unsigned char *b[4096];
    int len[4096];
    int n;
} syms_t;

static int sym_lookup(syms_t *S, const unsigned char *p, int n)
{
    for (int i = 0; i < S->n; i++)
        if (S->len[i] == n && !memcmp(S->b[i], p, (size_t)n)) return i;
    return -1;
}

/* Returns the merges as "A B" byte-level strings in *out (caller frees). */
static int naive_train(const char *text, size_t len, int vocab, char ***out)
{
    pcre2_code *re;
    int err;
    PCRE2_SIZE eoff;
    re = pcre2_compile((PCRE2_SPTR)br_pattern_gpt2, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                       &err, &eoff, NULL);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    word_t *w = NULL;
    int nw = 0, cap = 0;
    size_t from = 0;
    while (from < len && pcre2_match(re, (PCRE2_SPTR)text, len, from, 0, md, NULL) > 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        int n = (int)(ov[1] - ov[0]);
        const unsigned char *p = (const unsigned char *)text + ov[0];
        from = ov[1];
        int found = -1;
        for (int i = 0; i < nw && found < 0; i++) {
            if (w[i].n != n) continue;
            int same = 1;
            for (int k = 0; k < n && same; k++) same = w[i].sym[k] == p[k];
            if (same) found = i;
        }
        if (found >= 0) {
            w[found].count++;
            continue;
        }
        if (nw == cap) w = realloc(w, (size_t)(cap = cap ? cap * 2 : 1024) * sizeof *w);
        w[nw].sym = malloc((size_t)n * sizeof(int));
        for (int k = 0; k < n; k++) w[nw].sym[k] = p[k];
        w[nw].n = n;
        w[nw].count = 1;
        nw++;
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    static syms_t S;
    S.n = 0;
    for (int b = 0; b < 256; b++) {
        S.b[b] = malloc(1);
        S.b[b][0] = (unsigned char)b;
        S.len[b] = 1;
        S.n++;
    }
    char **merges = malloc(4096 * sizeof *merges);
    int nm = 0;
    while (S.n < vocab - 1) {
        /* count every pair from scratch */
        long best = 0;
        int ba = -1, bb = -1;
        long *pc = calloc((size_t)S.n * (size_t)S.n, sizeof *pc);
        for (int i = 0; i < nw; i++)
            for (int k = 0; k + 1 < w[i].n; k++) pc[(size_t)w[i].sym[k] * (size_t)S.n + (size_t)w[i].sym[k + 1]] += w[i].count;
        for (int a = 0; a < S.n; a++)
            for (int b = 0; b < S.n; b++) {
                long c = pc[(size_t)a * (size_t)S.n + (size_t)b];
                if (c > best) { /* ties: the first (smallest a, then b) wins */
                    best = c;
                    ba = a;
                    bb = b;
                }
            }
        free(pc);
        if (best < 2) break;
        unsigned char cat[1024];
        int cl = S.len[ba] + S.len[bb];
        memcpy(cat, S.b[ba], (size_t)S.len[ba]);
        memcpy(cat + S.len[ba], S.b[bb], (size_t)S.len[bb]);
        int nid = sym_lookup(&S, cat, cl);
        if (nid < 0) {
            nid = S.n++;
            S.b[nid] = malloc((size_t)cl);
            memcpy(S.b[nid], cat, (size_t)cl);
            S.len[nid] = cl;
        }
        char la[2100], lb[2100];
        br_bytelevel_encode(la, S.b[ba], (size_t)S.len[ba]);
        br_bytelevel_encode(lb, S.b[bb], (size_t)S.len[bb]);
        merges[nm] = malloc(strlen(la) + strlen(lb) + 2);
        sprintf(merges[nm], "%s %s", la, lb);
        nm++;
        for (int i = 0; i < nw; i++) {
            int j = 0;
            for (int k = 0; k < w[i].n;) {
                if (k + 1 < w[i].n && w[i].sym[k] == ba && w[i].sym[k + 1] == bb) {
                    w[i].sym[j++] = nid;
                    k += 2;
                } else w[i].sym[j++] = w[i].sym[k++];
            }
            w[i].n = j;
        }
    }
    for (int i = 0; i < nw; i++) free(w[i].sym);
    free(w);
    for (int i = 0; i < S.n; i++) free(S.b[i]);
    *out = merges;
    return nm;
}

static void test_against_naive(void)
{
    /* a slice of the corpus keeps the O(V^2) reference fast */
    char *text;
    size_t len;
    CHECK_OK(br_read_file(corpus, &text, &len));
    if (!text) return;
    size_t cut = 40000;
    while (cut < len && text[cut - 1] != '\n') cut++;
    char small[320];
    snprintf(small, sizeof small, "%s/small.txt", dir);
    CHECK_OK(br_write_file_atomic(small, text, cut));
    char out[320];
    snprintf(out, sizeof out, "%s/small.json", dir);
    br_bpe_train_opts_t o = {.vocab_size = 700, .quiet = 1, .threads = 2};
    br_bpe_train_stats_t st;
    CHECK_OK(br_bpe_train(small, out, &o, &st));
    char **ref;
    int nref = naive_train(text, cut, 700, &ref);
    json_t *j = json_load_file(out, 0, NULL);
    json_t *merges = json_object_get(json_object_get(j, "model"), "merges");
    CHECK_INT(json_array_size(merges), nref);
    CHECK_INT(st.merges, nref);
    int first_bad = -1;
    for (int i = 0; i < nref && i < (int)json_array_size(merges); i++)
        if (first_bad < 0 && strcmp(json_string_value(json_array_get(merges, (size_t)i)), ref[i])) first_bad = i;
    CHECK_MSG(first_bad < 0, "merge %d differs: incremental \"%s\", naive \"%s\"", first_bad,
              first_bad >= 0 ? json_string_value(json_array_get(merges, (size_t)first_bad)) : "",
              first_bad >= 0 ? ref[first_bad] : "");
    for (int i = 0; i < nref; i++) free(ref[i]);
    free(ref);
    json_decref(j);
    free(text);
}

static void test_train_and_load(void)
{
    char a[320], b[320];
    snprintf(a, sizeof a, "%s/t1.json", dir);
    snprintf(b, sizeof b, "%s/t2.json", dir);
    br_bpe_train_opts_t o = {.vocab_size = 1024, .quiet = 1, .threads = 1};
    br_bpe_train_stats_t st;
    CHECK_OK(br_bpe_train(corpus, a, &o, &st));
    CHECK_INT(st.vocab_size, 1024);
    CHECK(st.unique_words > 1000);
    o.threads = 2;
    CHECK_OK(br_bpe_train(corpus, b, &o, &st));
    char *x, *y;
    size_t nx, ny;
    CHECK_OK(br_read_file(a, &x, &nx));
    CHECK_OK(br_read_file(b, &y, &ny));
    CHECK_MSG(x && y && nx == ny && !memcmp(x, y, nx), "1 and 2 threads give different tokenizer.json files");
    free(x);
    free(y);
    br_tokenizer_t *t = NULL;
    CHECK_OK(br_tokenizer_load(&t, a));
    if (!t) return;
    CHECK_INT(br_tokenizer_vocab_size(t), 1024);
    CHECK_INT(br_tokenizer_eos_id(t), 1023);
    CHECK(br_tokenizer_is_special(t, 1023));
    char *text;
    size_t len;
    CHECK_OK(br_read_file(corpus, &text, &len));
    int32_t *ids;
    size_t n;
    CHECK_OK(br_tokenizer_encode(t, text, len, 0, &ids, &n));
    CHECK_MSG((double)len / (double)n > 3.0, "%zu bytes -> %zu tokens: a 1024 vocab should compress > 3 bytes/token", len, n);
    char *back;
    size_t bl;
    CHECK_OK(br_tokenizer_decode(t, ids, n, &back, &bl));
    CHECK(bl == len && !memcmp(back, text, len));
    free(back);
    free(ids);
    /* Hugging Face's Rust tokenizers (npm @anush008/tokenizers) reads the file to the same ids */
    if (system("node --version >/dev/null 2>&1") == 0 && br_file_exists(".npm-local/node_modules/@anush008/tokenizers/package.json")) {
        char cmd[800];
        snprintf(cmd, sizeof cmd, "node tests/ref/hf_encode.js %s %s", a, corpus);
        FILE *p = popen(cmd, "r");
        size_t cap = 1 << 22, k = 0, same = 1;
        char *line = malloc(cap);
        CHECK_OK(br_tokenizer_encode(t, text, len, 0, &ids, &n));
        if (p && fgets(line, (int)cap, p)) {
            char *q = line, *end;
            for (long v = strtol(q, &end, 10); end != q; q = end, v = strtol(q, &end, 10)) {
                if (k >= n || ids[k] != v) same = 0;
                k++;
            }
            CHECK_MSG(same && k == n, "HF tokenizers gives %zu ids, braid %zu (same prefix: %zu)", k, n, same);
        } else CHECK_MSG(0, "node tests/ref/hf_encode.js failed");
        if (p) pclose(p);
        free(line);
        free(ids);
    } else SKIP("node or npm @anush008/tokenizers absent: HF compatibility not checked");
    free(text);
    br_tokenizer_free(t);
    /* cl100k pattern variant loads back with a Split pre-tokenizer */
    o.pattern = br_pattern_cl100k;
    o.vocab_size = 400;
    CHECK_OK(br_bpe_train(corpus, b, &o, &st));
    CHECK_OK(br_tokenizer_load(&t, b));
    if (t) CHECK_STR(br_tokenizer_pattern(t), br_pattern_cl100k);
    br_tokenizer_free(t);
}

static void test_bad_input(void)
{
    char out[320], p[320];
    snprintf(out, sizeof out, "%s/bad.json", dir);
    br_bpe_train_opts_t o = {.vocab_size = 100, .quiet = 1};
    CHECK_STATUS(br_bpe_train(corpus, out, &o, NULL), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "too small") != NULL);
    o.vocab_size = 2000000;
    CHECK_STATUS(br_bpe_train(corpus, out, &o, NULL), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "too large") != NULL);
    o.vocab_size = 300;
    CHECK_STATUS(br_bpe_train("/nonexistent/corpus", out, &o, NULL), BR_ENOTFOUND);
    snprintf(p, sizeof p, "%s/empty.txt", dir);
    CHECK_OK(br_write_file_atomic(p, "", 0));
    CHECK_STATUS(br_bpe_train(p, out, &o, NULL), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "empty") != NULL);
    snprintf(p, sizeof p, "%s/latin1.txt", dir);
    CHECK_OK(br_write_file_atomic(p, "caf\xe9 au lait\n", 13));
    CHECK_STATUS(br_bpe_train(p, out, &o, NULL), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "UTF-8") != NULL && strstr(br_errmsg(), "offset 3") != NULL);
    snprintf(p, sizeof p, "%s/nodocs", dir);
    CHECK_OK(br_mkdir_p(p));
    CHECK_STATUS(br_bpe_train(p, out, &o, NULL), BR_ENOTFOUND);
    CHECK(!br_file_exists(out));
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    if (make_corpus() < 50000) {
        SKIP("/usr/share/common-licenses is missing");
        return th_exit();
    }
    test_against_naive();
    test_train_and_load();
    test_bad_input();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return th_exit();
}
