/* The data and tokenizer commands end to end through ./braid ($BRAID): exit codes and messages
 * on bad input, and an encode | decode round trip with a freshly trained tokenizer. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define TH_WANT_RUN
#include "harness.h"

static const char *braid;
static char dir[] = "/tmp/braid-datacli-XXXXXX";


int main(void)
{
    braid = getenv("BRAID");
    if (!braid || !*braid) {
        SKIP("BRAID is not set (make test sets it)");
        return th_exit();
    }
    if (!mkdtemp(dir)) return 1;
    char out[4096];
    CHECK_INT(th_run(out, sizeof out, "%s tokenizer encode --tokenizer /nonexistent/tok.json --text hi", braid), 1);
    CHECK(strstr(out, "braid: error:") && strstr(out, "/nonexistent/tok.json"));
    CHECK_INT(th_run(out, sizeof out, "%s tokenizer train --input /usr/share/common-licenses/GPL-3 --vocab-size 10 --out %s/t.json", braid, dir), 1);
    CHECK(strstr(out, "too small") != NULL);
    CHECK_INT(th_run(out, sizeof out, "%s tokenizer train --input /usr/share/common-licenses/GPL-3 --vocab-size 500 --out %s/t.json", braid, dir), 0);
    CHECK_INT(th_run(out, sizeof out, "printf 'caf\\303\\251 \\377 ok\\n' > %s/in.bin && %s tokenizer encode --tokenizer %s/t.json --input %s/in.bin | "
                              "%s tokenizer decode --tokenizer %s/t.json | cmp - %s/in.bin",
                  dir, braid, dir, dir, braid, dir, dir),
              0);
    CHECK_INT(th_run(out, sizeof out, "echo '1 2 abc' | %s tokenizer decode --tokenizer %s/t.json", braid, dir), 1);
    CHECK(strstr(out, "not a token id") != NULL);
    CHECK_INT(th_run(out, sizeof out, "echo '1 99999' | %s tokenizer decode --tokenizer %s/t.json", braid, dir), 1);
    CHECK(strstr(out, "99999") != NULL);
    CHECK_INT(th_run(out, sizeof out, "%s tokenizer encode --tokenizer %s/t.json --text '<|endoftext|>' --allow-special", braid, dir), 0);
    CHECK_STR(out, "499\n");
    CHECK_INT(th_run(out, sizeof out, "%s data prepare --tokenizer %s/t.json --raw /nonexistent/raw --out %s/tok", braid, dir, dir), 1);
    CHECK(strstr(out, "/nonexistent/raw") != NULL);
    CHECK_INT(th_run(out, sizeof out, "%s data prepare --raw x", braid), 2); /* --tokenizer is required */
    CHECK_INT(th_run(out, sizeof out, "%s data fetch --domains general,nosuch", braid), 2);
    CHECK(strstr(out, "nosuch") != NULL);
    CHECK_INT(th_run(out, sizeof out, "%s data fetch --list", braid), 0);
    CHECK(strstr(out, "glibc-source") && strstr(out, "bible-kjv") && strstr(out, "libpython3-stdlib"));
    /* a real fetch (Debian packages already installed, nothing to install): the programs run
     * from argument vectors, so paths with a quote and a space reach tar intact, and
     * dpkg-query's output (the versions) is read back.  The sanitizer build fetches only math:
     * it would spend over a minute reading glibc's sources. */
#ifdef __SANITIZE_ADDRESS__
    const bool with_code = false;
#else
    const bool with_code = true;
#endif
    if (!system("test -r /usr/share/metamath/databases/set.mm && ls /usr/src/glibc/glibc-*.tar.xz >/dev/null 2>&1 && "
                "dpkg-query -W glibc-source metamath-databases >/dev/null 2>&1")) {
        CHECK_INT(th_run(out, sizeof out, "%s data fetch --domains %s --max-mb-per-domain 0.2 --quiet "
                                          "--out \"%s/it's raw\" --cache \"%s/it's cache\" --npm-dir %s/npm",
                         braid, with_code ? "code,math" : "math", dir, dir, dir),
                  0);
        CHECK(strstr(out, "MANIFEST.json written") != NULL);
        CHECK_INT(th_run(out, sizeof out, "grep -A1 '\"package\": \"%s\"' \"%s/it's raw/MANIFEST.json\" | "
                                          "grep -c '\"version\": \"[0-9]'",
                         with_code ? "glibc-source" : "metamath-databases", dir),
                  0);
        CHECK_STR(out, "1\n");
        CHECK_INT(th_run(out, sizeof out, "test -s \"%s/it's raw/%s/train.txt\" && test -s \"%s/it's raw/math/val.txt\"",
                         dir, with_code ? "code" : "math", dir),
                  0);
        /* --dedupe is part of a domain's config: the domain is rebuilt and the manifest says so */
        CHECK_INT(th_run(out, sizeof out, "%s data fetch --quiet --domains math --max-mb-per-domain 0.2 --dedupe "
                                          "--out \"%s/it's raw\" --cache \"%s/it's cache\" --npm-dir %s/npm && "
                                          "grep -c dedupe_val \"%s/it's raw/MANIFEST.json\"", braid, dir, dir, dir, dir),
                  0);
        CHECK(strstr(out, "1\n") != NULL);
    } else
        SKIP("data fetch: the Debian packages glibc-source and metamath-databases are not installed");
    /* data overlap: a val document that near-duplicates a train document (one word of 200
     * changed) is leaked, an unrelated one and one sharing 60 of 200 words are not; --dedupe
     * removes exactly the leaked one, after which nothing leaks */
    {
        char p[4300];
        snprintf(p, sizeof p, "%s/ov/a", dir);
        CHECK_INT(th_run(out, sizeof out, "mkdir -p %s", p), 0);
        char base[2000] = "", near[2000] = "", far[2000] = "", half[2000] = "";
        for (int i = 0; i < 200; i++) {
            char w[16];
            snprintf(w, sizeof w, "w%d ", i);
            strcat(base, w);
            strcat(near, i == 100 ? "CHANGED " : w);
            snprintf(w, sizeof w, "v%d ", i);
            strcat(far, w);
            snprintf(w, sizeof w, i < 60 ? "w%d " : "u%d ", i);
            strcat(half, w);
        }
        const char *sep = "\n<|endoftext|>\n";
        FILE *f = fopen(strcat(strcpy((char[4400]){0}, p), "/train.txt"), "w");
        if (f) fprintf(f, "%s%sother words entirely here", base, sep), fclose(f);
        f = fopen(strcat(strcpy((char[4400]){0}, p), "/val.txt"), "w");
        if (f) fprintf(f, "%s%s%s%s%s", far, sep, near, sep, half), fclose(f);
        CHECK_INT(th_run(out, sizeof out, "%s data overlap --raw %s/ov --json %s/ov.json", braid, dir, dir), 0);
        CHECK_INT(th_run(out, sizeof out, "grep -c '\"val_docs\": 3' %s/ov.json && grep -c '\"leaked_docs\": 1' %s/ov.json", dir, dir), 0);
        CHECK_INT(th_run(out, sizeof out, "grep -c CHANGED %s/val.txt", p), 0); /* measuring changes nothing */
        CHECK_INT(th_run(out, sizeof out, "%s data overlap --raw %s/ov --dedupe", braid, dir), 0);
        CHECK_INT(th_run(out, sizeof out, "grep -c CHANGED %s/val.txt", p), 1);
        CHECK_INT(th_run(out, sizeof out, "grep -c 'v7 ' %s/val.txt && grep -c 'u70 ' %s/val.txt", p, p), 0);
        CHECK_INT(th_run(out, sizeof out, "%s data overlap --raw %s/ov --json %s/ov2.json && grep -c '\"val_docs\": 2' %s/ov2.json "
                                          "&& grep -c '\"leaked_docs\": 0' %s/ov2.json", braid, dir, dir, dir, dir), 0);
        CHECK_INT(th_run(out, sizeof out, "%s data overlap --raw %s/ov --threshold 2", braid, dir), 2);
        CHECK_INT(th_run(out, sizeof out, "%s data overlap --raw %s/nonexist", braid, dir), 1);
        CHECK(strstr(out, "braid: error:") && strstr(out, "nonexist"));
    }
    CHECK_INT(th_run(out, sizeof out, "%s tokenizer --help", braid), 0);
    CHECK_INT(th_run(out, sizeof out, "%s data prepare --help", braid), 0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return th_exit();
}
