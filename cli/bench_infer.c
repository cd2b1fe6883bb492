/* braid bench infer: inference speed on random-weight Llama models stored as GGUF, the files
 * llama.cpp runs too (bench/infer/run.sh runs both, alternating, and writes RESULTS.md).
 *
 *   --make 24m|134m|1b --dir DIR [--types f32,f16,...]  writes DIR/SIZE-TYPE.gguf (once)
 *   --gguf FILE                 prefill --prefill tokens, then decode --decode tokens greedily;
 *                               prints tokens/s, decode bytes/token and peak RSS
 *   --bandwidth                 a stream-like copy (GB/s, read + write bytes) and a read-only
 *                               stream on --threads
 *   --crossover                 decode matvec time per weight type and shape, 1 vs 2 threads
 * Every mode runs on --threads threads; run.sh pins the process with taskset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include "args.h"
#include "base/alloc.h"
#include "base/dtype.h"
#include "base/fileio.h"
#include "base/rng.h"
#include "base/threads.h"
#include "base/timer.h"
#include "bench_cmds.h"
#include "kernels/kernels.h"
#include "lm/gguf.h"
#include "lm/model.h"

static const char *const type_names[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k"};
static const br_wtype type_ids[] = {BR_WT_F32, BR_WT_F16, BR_WT_BF16, BR_WT_Q8_0, BR_WT_Q4_0, BR_WT_Q4_K, BR_WT_Q6_K};
enum { NTYPES = sizeof type_ids / sizeof *type_ids };

/* The three model shapes of issue #14 (untied head, vocab 32000, context 1024). */
static bool size_config(const char *size, br_model_config_t *c)
{
    br_config_defaults(c);
    c->vocab_size = 32000, c->max_position_embeddings = 1024, c->rms_norm_eps = 1e-5f;
    c->initializer_range = 0.02f, c->bos_token_id = -1, c->eos_token_id = -1;
    if (!strcasecmp(size, "24m")) {
        c->hidden_size = 288, c->num_hidden_layers = 6, c->num_attention_heads = 6;
        c->num_key_value_heads = 6, c->intermediate_size = 768;
    } else if (!strcasecmp(size, "134m")) {
        c->hidden_size = 768, c->num_hidden_layers = 12, c->num_attention_heads = 12;
        c->num_key_value_heads = 12, c->intermediate_size = 2048;
    } else if (!strcasecmp(size, "1b")) { /* TinyLlama-1.1B's shape */
        c->hidden_size = 2048, c->num_hidden_layers = 22, c->num_attention_heads = 32;
        c->num_key_value_heads = 4, c->intermediate_size = 5632;
    } else {
        return false;
    }
    return true;
}

/* A byte-level "gpt2" vocabulary llama.cpp accepts: GPT-2's 256 byte symbols, then "t<id>". */
typedef struct {
    char (*store)[12];
    const char **toks;
} vocab_t;

static bool vocab_make(vocab_t *v, size_t n)
{
    v->store = calloc(n, sizeof *v->store);
    v->toks = calloc(n, sizeof *v->toks);
    if (!v->store || !v->toks) return false;
    for (size_t b = 0, extra = 0; b < n; b++) {
        if (b < 256) {
            int cp = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174 ? (int)b : 256 + (int)extra++;
            if (cp < 0x80) v->store[b][0] = (char)cp;
            else v->store[b][0] = (char)(0xc0 | cp >> 6), v->store[b][1] = (char)(0x80 | (cp & 0x3f));
        } else {
            snprintf(v->store[b], sizeof v->store[b], "t%u", (unsigned)b);
        }
        v->toks[b] = v->store[b];
    }
    return true;
}

/* Writes DIR/SIZE-TYPE.gguf for every type in the comma list that is not there yet, from one
 * random F32 model (seed 1). */
static int make_files(const char *size, const char *dir, const char *types)
{
    br_model_config_t c;
    if (!size_config(size, &c)) {
        fprintf(stderr, "braid: error: --make %s: choose 24m, 134m or 1b\n", size);
        return 2;
    }
    char path[4096];
    bool todo[NTYPES] = {false}, any = false;
    for (int t = 0; t < NTYPES; t++) {
        const char *p = strstr(types, type_names[t]);
        size_t n = strlen(type_names[t]);
        if (!p || (p[n] && p[n] != ',') || (p != types && p[-1] != ',')) continue;
        snprintf(path, sizeof path, "%s/%s-%s.gguf", dir, size, type_names[t]);
        todo[t] = !br_file_exists(path);
        any |= todo[t];
    }
    if (!any) return 0;
    br_model_t *m = NULL;
    vocab_t v = {0};
    br_status s = br_model_create(&m, &c, false);
    if (!s && !vocab_make(&v, (size_t)c.vocab_size)) s = br_error(BR_ENOMEM, "out of memory");
    if (!s) br_model_init_random(m, 1);
    br_gguf_vocab_t gv = {.model = "gpt2", .pre = "default", .tokens = v.toks, .n_tokens = (size_t)c.vocab_size};
    for (int t = 0; t < NTYPES && !s; t++) {
        if (!todo[t]) continue;
        snprintf(path, sizeof path, "%s/%s-%s.gguf", dir, size, type_names[t]);
        s = br_model_save_gguf_vocab(m, path, type_ids[t], &gv);
        if (!s) printf("wrote %s\n", path);
    }
    br_model_free(m);
    free(v.store);
    free(v.toks);
    return s ? fail_status(s, dir) : 0;
}

/* Bytes one decode step reads from the weights: every matrix except the token embedding
 * (one row of it is read), plus the norms. */
static br_status decode_bytes(const char *path, double *bytes)
{
    br_gguf_t *g;
    BR_TRY(br_gguf_open(&g, path));
    *bytes = 0;
    for (size_t i = 0; i < br_gguf_tensor_count(g); i++) {
        const br_gguf_tensor_t *t = br_gguf_tensor(g, i);
        bool embd = !strcmp(t->name, "token_embd.weight");
        *bytes += embd ? (double)t->nbytes / (double)t->ne[1] : (double)t->nbytes;
    }
    br_gguf_close(g);
    return BR_OK;
}

static int32_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return (int32_t)best;
}

typedef struct {
    double load_s, prefill_tok_s, decode_tok_s;
    double prefill_cpu_s, decode_cpu_s; /* the process's CPU time (all threads) in each phase */
} infer_times_t;

/* CPU seconds this process has run (every thread): on a shared machine a pinned process gets
 * only a share of its CPU, which wall time counts and this does not. */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Prefill `np` tokens in one call, then `nd` greedy decode steps of one token each. */
static br_status run_model(br_model_t *m, size_t np, size_t nd, infer_times_t *t)
{
    size_t V = (size_t)m->cfg.vocab_size, P = 16, npages = (np + nd + P - 1) / P;
    br_kv_pool_t *kv = NULL;
    br_model_config_t cfg = m->cfg;
    size_t page_bytes = 2 * (size_t)cfg.num_hidden_layers * (size_t)cfg.num_key_value_heads * P *
                        (size_t)(cfg.head_dim ? cfg.head_dim : cfg.hidden_size / cfg.num_attention_heads) * 4;
    BR_TRY(br_kv_pool_create(&kv, &cfg, P, npages * page_bytes));
    int32_t *pages = malloc(npages * sizeof *pages), *toks = malloc((np + 1) * sizeof *toks);
    float *logits = malloc(V * sizeof *logits);
    br_status s = pages && toks && logits ? BR_OK : br_error(BR_ENOMEM, "out of memory");
    for (size_t i = 0; i < npages && !s; i++) s = br_kv_pool_alloc_page(kv, &pages[i]);
    for (size_t i = 0; i < np; i++) toks[i] = (int32_t)((i * 7919 + 13) % V);
    br_seq_t sq = {.tokens = toks, .n_tokens = np, .start_pos = 0, .pages = pages,
                   .n_pages = npages, .want_logits = BR_LOGITS_LAST};
    double t0 = br_now(), c0 = cpu_seconds();
    if (!s) s = br_model_forward_batch(m, kv, &sq, 1, NULL, logits);
    t->prefill_tok_s = (double)np / (br_now() - t0);
    t->prefill_cpu_s = cpu_seconds() - c0;
    t0 = br_now(), c0 = cpu_seconds();
    for (size_t i = 0; i < nd && !s; i++) {
        toks[0] = argmax(logits, V);
        sq = (br_seq_t){.tokens = toks, .n_tokens = 1, .start_pos = np + i, .pages = pages,
                        .n_pages = npages, .want_logits = BR_LOGITS_LAST};
        s = br_model_forward_batch(m, kv, &sq, 1, NULL, logits);
    }
    t->decode_tok_s = (double)nd / (br_now() - t0);
    t->decode_cpu_s = cpu_seconds() - c0;
    free(pages);
    free(toks);
    free(logits);
    br_kv_pool_free(kv);
    return s;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int run_gguf(const char *path, long np, long nd, bool json)
{
    if (np < 1 || nd < 1 || np + nd > 1024) {
        fprintf(stderr, "braid: error: --prefill and --decode must be >= 1 and add up to <= 1024\n");
        return 2;
    }
    double bytes;
    br_status s = decode_bytes(path, &bytes);
    if (s) return fail_status(s, path);
    infer_times_t t = {0};
    br_model_t *m = NULL;
    double t0 = br_now();
    s = br_model_open_gguf(&m, path);
    t.load_s = br_now() - t0;
    if (!s) s = run_model(m, (size_t)np, (size_t)nd, &t);
    const char *wt = m ? br_wtype_name(m->wt) : "?";
    br_model_free(m);
    if (s) return fail_status(s, path);
    if (json)
        printf("{\"engine\": \"braid\", \"file\": \"%s\", \"type\": \"%s\", \"threads\": %d, \"kernels\": \"%s\", "
               "\"prefill\": %ld, \"decode\": %ld, \"load_s\": %.3f, \"prefill_tok_s\": %.2f, \"decode_tok_s\": %.2f, "
               "\"prefill_cpu_s\": %.3f, \"decode_cpu_s\": %.3f, \"decode_bytes_per_token\": %.0f, "
               "\"peak_rss_mib\": %.1f}\n",
               path, wt, br_get_threads(), br_kernels()->name, np, nd, t.load_s, t.prefill_tok_s,
               t.decode_tok_s, t.prefill_cpu_s, t.decode_cpu_s, bytes, peak_rss_mib());
    else
        printf("%s (%s, %d threads, %s kernels): load %.2f s, prefill %.1f tok/s, decode %.2f tok/s "
               "(%.1f MB/token, %.2f GB/s), peak RSS %.0f MiB\n",
               path, wt, br_get_threads(), br_kernels()->name, t.load_s, t.prefill_tok_s,
               t.decode_tok_s, bytes / 1e6, bytes * t.decode_tok_s / 1e9, peak_rss_mib());
    return 0;
}

/* A stream-like copy: dst = src over two buffers of `mib` MiB each, split across the threads
 * in fixed halves; the best of 10 passes, counting the bytes read and written (as STREAM's
 * Copy does).  Then a read-only stream (a sum of the source's 64-bit words): what decode does
 * with its weights, the rate one core can pull from memory. */
static int bandwidth(long mib, bool json)
{
    if (mib < 8 || mib > 4096) {
        fprintf(stderr, "braid: error: --mib must be 8..4096\n");
        return 2;
    }
    size_t n = (size_t)mib << 20;
    char *a = br_alloc(n), *b = br_alloc(n);
    if (!a || !b) {
        br_free(a), br_free(b);
        return fail_status(br_error(BR_ENOMEM, "cannot allocate 2 x %ld MiB", mib), "--bandwidth");
    }
    memset(a, 1, n);
    memset(b, 2, n);
    int nt = br_get_threads();
    double best = 1e30;
    for (int pass = 0; pass < 10; pass++) {
        double t0 = br_now();
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int k = 0; k < nt; k++) {
            size_t lo = n / (size_t)nt * (size_t)k, hi = k == nt - 1 ? n : n / (size_t)nt * (size_t)(k + 1);
            memcpy(b + lo, a + lo, hi - lo);
        }
        double dt = br_now() - t0;
        if (dt < best) best = dt;
    }
    double gbs = 2.0 * (double)n / best / 1e9, rbest = 1e30;
    uint64_t sink = 0;
    for (int pass = 0; pass < 10; pass++) {
        sink = 0;
        double t0 = br_now();
#pragma omp parallel for num_threads(nt) schedule(static) reduction(+ : sink)
        for (int k = 0; k < nt; k++) {
            size_t lo = n / 8 / (size_t)nt * (size_t)k, hi = k == nt - 1 ? n / 8 : n / 8 / (size_t)nt * (size_t)(k + 1);
            const uint64_t *w = (const uint64_t *)a;
            uint64_t acc = 0;
#pragma omp simd reduction(+ : acc)
            for (size_t i = lo; i < hi; i++) acc += w[i];
            sink += acc;
        }
        double dt = br_now() - t0;
        if (dt < rbest) rbest = dt;
    }
    double rgbs = (double)n / rbest / 1e9;
    if (sink != (uint64_t)n / 8 * 0x0101010101010101ull) /* every byte of a is 1 */
        return fail_status(br_error(BR_EIO, "the read stream summed %llu", (unsigned long long)sink), "--bandwidth");
    if (json)
        printf("{\"engine\": \"copy\", \"threads\": %d, \"mib\": %ld, \"copy_gb_s\": %.2f, \"read_gb_s\": %.2f}\n", nt,
               mib, gbs, rgbs);
    else printf("%ld MiB on %d threads: copy %.2f GB/s (read + write), read %.2f GB/s\n", mib, nt, gbs, rgbs);
    br_free(a);
    br_free(b);
    return 0;
}

/* Decode matvec time (best of 15) for each weight type on the models' shapes at 1 and 2
 * threads: the data behind the decode thread policy (src/lm/infer.c, docs/threads.md). */
static int crossover(void)
{
    static const size_t shapes[][2] = {{288, 288},   {288, 768},   {768, 288},   {768, 768},
                                       {768, 2048},  {2048, 768},  {2048, 256},  {2048, 2048},
                                       {2048, 5632}, {5632, 2048}, {288, 32000}, {2048, 32000}};
    const br_kernels_t *k = br_kernels();
    int old = br_get_threads();
    printf("%-5s %6s %6s %10s %10s %7s\n", "type", "C", "OC", "1t us", "2t us", "2t/1t");
    for (int t = 0; t < NTYPES; t++)
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
            size_t C = shapes[i][0], OC = shapes[i][1], rb;
            if (br_wtype_row_bytes(type_ids[t], C, &rb)) continue;
            float *x = br_alloc(C * 4), *y = br_alloc(OC * 4), *wf = br_alloc(C * 4);
            uint8_t *w = br_alloc(OC * rb);
            br_rng_t r;
            br_rng_seed(&r, 7);
            br_rng_fill_uniform(&r, x, C, -1, 1);
            for (size_t o = 0; o < OC && w; o++) {
                br_rng_fill_uniform(&r, wf, C, -1, 1);
                (void)br_wtype_quantize(type_ids[t], w + o * rb, wf, 1, C);
            }
            double best[2] = {1e30, 1e30};
            for (int rep = 0; rep < 15 && w; rep++)
                for (int nt = 1; nt <= 2; nt++) {
                    br_set_threads(nt);
                    double t0 = br_now();
                    k->matvec[type_ids[t]](y, x, w, C, OC);
                    double dt = br_now() - t0;
                    if (dt < best[nt - 1]) best[nt - 1] = dt;
                }
            printf("%-5s %6zu %6zu %10.1f %10.1f %7.2f\n", type_names[t], C, OC, best[0] * 1e6,
                   best[1] * 1e6, best[1] / best[0]);
            br_free(x), br_free(y), br_free(wf), br_free(w);
        }
    br_set_threads(old);
    return 0;
}

int bench_infer(int argc, char **argv)
{
    const char *gguf = NULL, *make = NULL, *dir = NULL, *types = "f32,f16,bf16,q8_0,q4_0";
    long threads = 0, np = 512, nd = 128, mib = 256;
    bool json = false, bw = false, cross = false;
    const opt_t opts[] = {
        {"gguf", OPT_STR, &gguf, "FILE", "time this GGUF: prefill, then greedy decode", false},
        {"make", OPT_STR, &make, "SIZE", "write random-weight models of SIZE (24m, 134m, 1b) into --dir", false},
        {"dir", OPT_STR, &dir, "DIR", "where --make writes SIZE-TYPE.gguf (kept files are reused)", false},
        {"types", OPT_STR, &types, "LIST", "--make's weight types (default f32,f16,bf16,q8_0,q4_0)", false},
        {"threads", OPT_LONG, &threads, "N", "threads (default: BRAID_THREADS or all cores)", false},
        {"prefill", OPT_LONG, &np, "N", "prompt tokens, run as one batch (default 512)", false},
        {"decode", OPT_LONG, &nd, "N", "greedy decode steps of one token (default 128)", false},
        {"bandwidth", OPT_BOOL, &bw, NULL, "measure stream-like copy and read-only bandwidth instead", false},
        {"mib", OPT_LONG, &mib, "N", "--bandwidth buffer size in MiB (default 256)", false},
        {"crossover", OPT_BOOL, &cross, NULL, "time decode matvecs per type and shape at 1 and 2 threads", false},
        {"json", OPT_BOOL, &json, NULL, "one JSON line", false},
    };
    cmd_spec_t spec = {"braid bench infer --gguf FILE | --make SIZE --dir DIR | --bandwidth | --crossover",
                       "Inference speed on GGUF files that llama.cpp runs too (bench/infer/run.sh compares "
                       "both and writes bench/infer/RESULTS.md): prefill tokens/s, decode tokens/s, decode "
                       "bytes per token and peak RSS; a stream-like copy bandwidth; decode matvec thread "
                       "crossover per weight type.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (threads < 0 || threads > 1024) {
        fprintf(stderr, "braid: error: --threads must be 1..1024\n");
        return 2;
    }
    if (threads) br_set_threads((int)threads);
    if (make) {
        if (!dir) {
            fprintf(stderr, "braid: error: --make needs --dir DIR\n");
            return 2;
        }
        return make_files(make, dir, types);
    }
    if (bw) return bandwidth(mib, json);
    if (cross) return crossover();
    if (!gguf) {
        fprintf(stderr, "braid: error: give --gguf FILE, --make SIZE --dir DIR, --bandwidth or --crossover\n");
        return 2;
    }
    return run_gguf(gguf, np, nd, json);
}
