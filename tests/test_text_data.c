/* Token shards and the mixed-domain loader: round trips in both widths, malformed shards,
 * mixture weights (chi-square-free: counts within a few sigma), seed reproducibility, exact
 * resume from a saved state, and bad mixes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <math.h>

#include "base/fileio.h"
#include "harness.h"
#include "text/data.h"

static char dir[] = "/tmp/braid-data-XXXXXX";

static void path_of(char *buf, size_t cap, const char *rel)
{
    snprintf(buf, cap, "%s/%s", dir, rel);
}

static void test_shards(void)
{
    char p[512];
    uint32_t toks[1000];
    for (int i = 0; i < 1000; i++) toks[i] = (uint32_t)(i * 37 % 50000);
    path_of(p, sizeof p, "a.bin");
    CHECK_OK(br_shard_write(p, toks, 1000, 50257, 4321));
    br_shard_t *s = NULL;
    CHECK_OK(br_shard_open(&s, p));
    if (s) {
        CHECK_INT(br_shard_ntokens(s), 1000);
        CHECK_INT(br_shard_nbytes(s), 4321);
        CHECK_INT(br_shard_vocab(s), 50257);
        int32_t out[1000];
        CHECK_OK(br_shard_read(s, 0, 1000, out));
        int same = 1;
        for (int i = 0; i < 1000; i++) same &= out[i] == (int32_t)toks[i];
        CHECK(same);
        CHECK_OK(br_shard_read(s, 990, 10, out));
        CHECK_INT(out[9], toks[999]);
        CHECK_STATUS(br_shard_read(s, 990, 11, out), BR_ERANGE);
        CHECK_STATUS(br_shard_read(s, 1001, 0, out), BR_ERANGE);
        /* evaluation windows: (1000 - 1) / 10 = 99 windows of 11 tokens, overlapping by one */
        CHECK_INT(br_shard_nwindows(s, 10), 99);
        CHECK_INT(br_shard_nwindows(s, 999), 1);
        CHECK_INT(br_shard_nwindows(s, 1000), 0);
        CHECK_OK(br_shard_window(s, 98, 10, out));
        CHECK_INT(out[0], toks[980]);
        CHECK_INT(out[10], toks[990]);
        CHECK_STATUS(br_shard_window(s, 99, 10, out), BR_ERANGE);
        CHECK_STATUS(br_shard_window(s, 0, 0, out), BR_EINVAL);
        br_shard_close(s);
    }
    char *data;
    size_t size;
    CHECK_OK(br_read_file(p, &data, &size));
    CHECK_INT(size, 64 + 2 * 1000); /* uint16 for a vocab that fits */
    CHECK(!memcmp(data, "BRAIDTOK", 8));
    free(data);
    /* uint32 width for a large vocab */
    uint32_t big[3] = {0, 70000, 99999};
    path_of(p, sizeof p, "b.bin");
    CHECK_OK(br_shard_write(p, big, 3, 100000, 9));
    CHECK_OK(br_shard_open(&s, p));
    if (s) {
        int32_t out[3];
        CHECK_OK(br_shard_read(s, 0, 3, out));
        CHECK(out[1] == 70000 && out[2] == 99999);
        br_shard_close(s);
    }
    CHECK_OK(br_read_file(p, &data, &size));
    CHECK_INT(size, 64 + 12);
    /* malformed: truncated, bad magic, bad width, count mismatch, token >= vocab */
    path_of(p, sizeof p, "bad.bin");
    CHECK_OK(br_write_file_atomic(p, data, size - 1));
    CHECK_STATUS(br_shard_open(&s, p), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "truncated") != NULL && s == NULL);
    CHECK_OK(br_write_file_atomic(p, data, 30));
    CHECK_STATUS(br_shard_open(&s, p), BR_EFORMAT);
    data[0] = 'X';
    CHECK_OK(br_write_file_atomic(p, data, size));
    CHECK_STATUS(br_shard_open(&s, p), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "magic") != NULL);
    data[0] = 'B';
    data[16] = 3;
    CHECK_OK(br_write_file_atomic(p, data, size));
    CHECK_STATUS(br_shard_open(&s, p), BR_EFORMAT);
    data[16] = 4;
    data[12] = 5; /* vocab 100000 -> 99845: token 99999 no longer fits */
    data[13] = 0;
    data[14] = 0;
    data[15] = 0;
    CHECK_OK(br_write_file_atomic(p, data, size));
    CHECK_OK(br_shard_open(&s, p));
    if (s) {
        int32_t out[3];
        CHECK_STATUS(br_shard_read(s, 0, 3, out), BR_EFORMAT);
        br_shard_close(s);
    }
    free(data);
    CHECK_STATUS(br_shard_open(&s, "/nonexistent/x.bin"), BR_ENOTFOUND);
    uint32_t over[1] = {10};
    CHECK_STATUS(br_shard_write(p, over, 1, 10, 0), BR_ERANGE);
    CHECK_STATUS(br_shard_write(p, over, 1, 0, 0), BR_EINVAL);
    br_shard_close(NULL);
}

/* Domain d's shard holds tokens d*1000 + i, so a window's domain and start are visible. */
static void make_domain(const char *name, size_t n, uint32_t vocab)
{
    char p[512];
    snprintf(p, sizeof p, "%s/tok/%s", dir, name);
    CHECK_OK(br_mkdir_p(p));
    uint32_t *t = malloc(n * sizeof *t);
    uint32_t base = (uint32_t)(name[0] - 'a') * 1000;
    for (size_t i = 0; i < n; i++) t[i] = base + (uint32_t)i;
    snprintf(p, sizeof p, "%s/tok/%s/train.bin", dir, name);
    CHECK_OK(br_shard_write(p, t, n, vocab, n * 4));
    free(t);
}

static void test_mix(void)
{
    char tok[512];
    snprintf(tok, sizeof tok, "%s/tok", dir);
    make_domain("alpha", 500, 8192);
    make_domain("beta", 300, 8192);
    make_domain("code", 200, 8192);
    make_domain("empty", 0, 8192);
    make_domain("other", 100, 16384);
    br_mix_t *m = NULL;
    CHECK_OK(br_mix_create(&m, tok, "alpha=3, beta=1,code=0", "train", 7));
    if (!m) return;
    CHECK_INT(br_mix_ndomains(m), 3);
    CHECK_STR(br_mix_domain(m, 1), "beta");
    CHECK(br_mix_domain(m, 3) == NULL);
    CHECK_INT(br_mix_vocab(m), 8192);
    enum { B = 64, T = 16, STEPS = 50 };
    int32_t *batch = malloc(B * (T + 1) * sizeof *batch);
    size_t counts[3] = {0};
    int windows_ok = 1;
    br_mix_state_t st;
    int32_t *saved = malloc(B * (T + 1) * sizeof *saved);
    for (int step = 0; step < STEPS; step++) {
        if (step == 20) br_mix_get_state(m, &st);
        CHECK_OK(br_mix_next_batch(m, batch, B, T));
        if (step == 20) memcpy(saved, batch, B * (T + 1) * sizeof *batch);
        for (int b = 0; b < B; b++) {
            int32_t *row = batch + b * (T + 1);
            int d = row[0] / 1000;
            if (d >= 0 && d < 3) counts[d]++;
            for (int k = 1; k <= T; k++) windows_ok &= row[k] == row[k - 1] + 1; /* contiguous */
        }
    }
    CHECK(windows_ok);
    CHECK_INT(counts[2], 0); /* weight 0 */
    double n = (double)B * STEPS, pa = 0.75;
    double sd = sqrt(n * pa * (1 - pa));
    CHECK_MSG(fabs((double)counts[0] - n * pa) < 4 * sd, "alpha drawn %zu times of %.0f, expected %.0f", counts[0], n, n * pa);
    /* resume from the saved state reproduces step 20 exactly */
    br_mix_set_state(m, &st);
    CHECK_OK(br_mix_next_batch(m, batch, B, T));
    CHECK(!memcmp(batch, saved, B * (T + 1) * sizeof *batch));
    /* same seed -> same stream; another seed -> another */
    br_mix_t *m2 = NULL, *m3 = NULL;
    CHECK_OK(br_mix_create(&m2, tok, "alpha=3,beta=1,code=0", "train", 7));
    CHECK_OK(br_mix_create(&m3, tok, "alpha=3,beta=1,code=0", "train", 8));
    int32_t *b2 = malloc(B * (T + 1) * sizeof *b2);
    if (m2 && m3) {
        br_mix_free(m);
        CHECK_OK(br_mix_create(&m, tok, "alpha=3,beta=1,code=0", "train", 7));
        CHECK_OK(br_mix_next_batch(m, batch, B, T));
        CHECK_OK(br_mix_next_batch(m2, b2, B, T));
        CHECK(!memcmp(batch, b2, B * (T + 1) * sizeof *batch));
        CHECK_OK(br_mix_next_batch(m3, b2, B, T));
        CHECK(memcmp(batch, b2, B * (T + 1) * sizeof *batch) != 0);
        /* window longer than a domain */
        CHECK_STATUS(br_mix_next_batch(m, batch, 1, 300), BR_EINVAL);
        CHECK(strstr(br_errmsg(), "beta") != NULL);
        CHECK_STATUS(br_mix_next_batch(m, batch, 1, 0), BR_EINVAL);
    }
    br_mix_free(m2);
    br_mix_free(m3);
    br_mix_free(m);
    free(b2);
    free(batch);
    free(saved);
    /* bad mixes */
    br_mix_t *x = NULL;
    CHECK_STATUS(br_mix_create(&x, tok, "alpha,empty", "train", 1), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "empty") != NULL);
    CHECK_STATUS(br_mix_create(&x, tok, "alpha,missing", "train", 1), BR_ENOTFOUND);
    CHECK(strstr(br_errmsg(), "missing") != NULL);
    CHECK_STATUS(br_mix_create(&x, tok, "alpha,other", "train", 1), BR_EINVAL); /* vocab differs */
    CHECK_STATUS(br_mix_create(&x, tok, "alpha=-1", "train", 1), BR_EINVAL);
    CHECK_STATUS(br_mix_create(&x, tok, "alpha=abc", "train", 1), BR_EINVAL);
    CHECK_STATUS(br_mix_create(&x, tok, "alpha=0", "train", 1), BR_EINVAL);
    CHECK_STATUS(br_mix_create(&x, tok, "alpha,alpha", "train", 1), BR_EINVAL);
    CHECK_STATUS(br_mix_create(&x, tok, "../etc", "train", 1), BR_EINVAL);
    CHECK_STATUS(br_mix_create(&x, tok, "", "train", 1), BR_EINVAL);
    CHECK_STATUS(br_mix_create(&x, tok, "alpha", "val", 1), BR_ENOTFOUND);
    CHECK(x == NULL);
    br_mix_free(NULL);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_shards();
    test_mix();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return th_exit();
}
