/* braid bench serve: S-LoRA's workload against braid's scheduler and two baselines in the same
 * run (bench/serve/README in docs/serve.md): Gamma arrivals, power-law adapter popularity,
 * n adapters, uniform input/output lengths.  Drives the scheduler in process (no HTTP), with
 * adapters loaded on demand from PEFT folders on disk.  Prompts are windows of real text (the
 * GPL-3 licence shipped by Debian) tokenized with the given tokenizer.  `--suite` runs the reviewer
 * suite instead (capacity, load below it, eviction, tenant fairness: bench_serve_suite.c). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "base/buf.h"
#include "base/dtype.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/rng.h"
#include "base/timer.h"
#include "bench_cmds.h"
#include "bench_serve.h"
#include "proc.h"
#include "base/threads.h"
#include "lm/model.h"
#include "lm/peft.h"
#include "text/tokenizer.h"
#include "nn/lora.h"
#include "serve/adapters.h"
#include "serve/sched.h"
#include "serve/tenants.h"

typedef struct {
    double arrival;  /* seconds from the start */
    int adapter;     /* -1: base model */
    int in_len, out_len;
    size_t text_off;
} wl_req_t;

/* Marsaglia-Tsang Gamma(k, 1) for k > 0. */
static double gamma_sample(br_rng_t *r, double k)
{
    if (k < 1) return gamma_sample(r, k + 1) * pow(br_rng_double(r) + 1e-300, 1.0 / k);
    double d = k - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double x = br_rng_normal(r), v = 1 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = br_rng_double(r);
        if (log(u + 1e-300) < 0.5 * x * x + d - d * v + d * log(v)) return d * v;
    }
}

double bench_serve_pct(const double *v, size_t n, double p)
{
    if (!n) return 0;
    size_t i = (size_t)ceil(p * (double)n) - 1;
    if (i >= n) i = n - 1;
    return v[i];
}

typedef struct {
    double req_s, tok_s, p50, p90, p99, mean_lat, ttft_mean, ttft_p90, slo;
    double wall, merge_s;
    size_t done;
} result_t;

static const char *policy_names[] = {"batched", "one-adapter", "merge"};

static br_status run_one(br_model_t *m, const br_tokenizer_t *tok, br_tenants_t *ten, const char *adir, int policy,
                         const wl_req_t *wl, size_t nreq, const int32_t *text, size_t max_batch, double slo,
                         result_t *res)
{
    br_adapters_opts_t ao = {.dir = adir, .shapes = br_lora_shapes_from_config(&m->cfg), .mem_budget = 0, .idle_s = 0};
    br_adapters_t *ads = NULL;
    BR_TRY(br_adapters_create(&ads, &ao));
    br_sched_opts_t so = {.model = m, .tok = tok, .adapters = ads, .tenants = ten, .max_batch_tokens = max_batch,
                          .kv_budget_bytes = 512u << 20, .page_tokens = 16, .max_running = 64, .seed = 1,
                          .policy = policy};
    br_sched_t *s = NULL;
    br_status st = br_sched_create(&s, &so);
    if (st != BR_OK) {
        br_adapters_free(ads);
        return st;
    }
    br_req_t **reqs = calloc(nreq, sizeof *reqs);
    double t0 = br_now();
    for (size_t i = 0; i < nreq && st == BR_OK; i++) {
        double wait = t0 + wl[i].arrival - br_now();
        if (wait > 0) usleep((useconds_t)(wait * 1e6));
        int32_t *p = malloc((size_t)wl[i].in_len * sizeof *p);
        memcpy(p, text + wl[i].text_off, (size_t)wl[i].in_len * sizeof *p);
        br_gen_params_t gp = {.max_tokens = wl[i].out_len, .temperature = 0, .top_p = 1, .ignore_eos = true};
        st = br_req_create(&reqs[i], p, (size_t)wl[i].in_len, &gp);
        if (st != BR_OK) break;
        reqs[i]->tenant = br_tenants_get(ten, 0);
        if (wl[i].adapter >= 0) snprintf(reqs[i]->adapter, sizeof reqs[i]->adapter, "ad%04d", wl[i].adapter);
        st = br_sched_submit(s, reqs[i]);
    }
    double *lat = calloc(nreq, sizeof *lat), *ttft = calloc(nreq, sizeof *ttft);
    double last = t0, toks = 0, lat_sum = 0, ttft_sum = 0;
    size_t done = 0, ok_slo = 0;
    for (size_t i = 0; i < nreq; i++) {
        if (!reqs[i]) continue;
        while (!br_req_wait(reqs[i], SIZE_MAX, 1.0)) {}
        br_req_t *r = reqs[i];
        if (r->finish == BR_FINISH_ERROR) {
            BR_WARN("request %zu failed: %s", i, r->errmsg);
            continue;
        }
        lat[done] = r->t_done - r->t_arrival;
        ttft[done] = r->t_first_token - r->t_arrival;
        lat_sum += lat[done];
        ttft_sum += ttft[done];
        ok_slo += ttft[done] <= slo;
        toks += (double)r->n_out;
        if (r->t_done > last) last = r->t_done;
        done++;
    }
    double wall = last - t0;
    qsort(lat, done, sizeof *lat, bench_cmp_double);
    qsort(ttft, done, sizeof *ttft, bench_cmp_double);
    *res = (result_t){.req_s = done / wall, .tok_s = toks / wall, .p50 = bench_serve_pct(lat, done, 0.5), .p90 = bench_serve_pct(lat, done, 0.9),
                      .p99 = bench_serve_pct(lat, done, 0.99), .mean_lat = done ? lat_sum / done : 0,
                      .ttft_mean = done ? ttft_sum / done : 0, .ttft_p90 = bench_serve_pct(ttft, done, 0.9),
                      .slo = done ? (double)ok_slo / done : 0, .wall = wall, .done = done};
    for (size_t i = 0; i < nreq; i++) br_req_unref(reqs[i]);
    free(reqs);
    free(lat);
    free(ttft);
    br_sched_free(s);
    br_adapters_free(ads);
    return st;
}

/* Aggregate decode tokens/s of `conc` identical requests at once (prompt 16, `out` tokens). */
static br_status decode_rate(br_model_t *m, const br_tokenizer_t *tok, br_tenants_t *ten, const int32_t *text, int conc,
                             int out, double *tok_s)
{
    br_adapters_opts_t ao = {.shapes = br_lora_shapes_from_config(&m->cfg)};
    br_adapters_t *ads = NULL;
    BR_TRY(br_adapters_create(&ads, &ao));
    br_sched_opts_t so = {.model = m, .tok = tok, .adapters = ads, .tenants = ten, .max_batch_tokens = 256,
                          .kv_budget_bytes = 256u << 20, .max_running = 64, .seed = 1};
    br_sched_t *s = NULL;
    br_status st = br_sched_create(&s, &so);
    br_req_t *r[64] = {0};
    double t0 = br_now(), first = 0, last = 0;
    for (int i = 0; i < conc && st == BR_OK; i++) {
        int32_t *p = malloc(16 * sizeof *p);
        memcpy(p, text + 16 * i, 16 * sizeof *p);
        br_gen_params_t gp = {.max_tokens = out, .temperature = 0, .top_p = 1, .ignore_eos = true};
        st = br_req_create(&r[i], p, 16, &gp);
        if (st == BR_OK) {
            r[i]->tenant = br_tenants_get(ten, 0);
            st = br_sched_submit(s, r[i]);
        }
    }
    double gen = 0;
    for (int i = 0; i < conc; i++) {
        if (!r[i]) continue;
        while (!br_req_wait(r[i], SIZE_MAX, 1.0)) {}
        if (!first || r[i]->t_first_token < first) first = r[i]->t_first_token;
        if (r[i]->t_done > last) last = r[i]->t_done;
        gen += (double)r[i]->n_out - 1;
        br_req_unref(r[i]);
    }
    (void)t0;
    *tok_s = gen / (last - first);
    br_sched_free(s);
    br_adapters_free(ads);
    return st;
}

int bench_serve_parse_list(const char *s, int *v, int cap)
{
    int n = 0;
    while (*s && n < cap) {
        char *end;
        long x = strtol(s, &end, 10);
        if (end == s || x < 1) return -1;
        v[n++] = (int)x;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

/* The benchmark's Llama-style model: width C (4 heads), L layers, vocabulary max(V, tokenizer's). */
br_status bench_serve_model(br_model_t **m, const br_tokenizer_t *tok, int hidden, int layers, int vocab)
{
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = vocab > (int)br_tokenizer_vocab_size(tok) ? vocab : (int)br_tokenizer_vocab_size(tok);
    c.hidden_size = hidden;
    c.intermediate_size = (hidden * 8 / 3 + 63) / 64 * 64;
    c.num_hidden_layers = layers;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 4;
    c.max_position_embeddings = 256;
    return br_model_create(m, &c, false);
}

/* Writes root (freed) as indented JSON, atomically. */
br_status bench_serve_write_json(const char *path, json_t *root)
{
    char *js = json_dumps(root, JSON_INDENT(1));
    json_decref(root);
    if (!js) return br_error(BR_ENOMEM, "out of memory");
    br_status st = br_write_file_atomic(path, js, strlen(js));
    free(js);
    return st;
}

/* ad0000.. in adir: PEFT folders, ranks R and 2R alternating, on q_proj and v_proj. */
br_status bench_serve_write_adapters(const char *adir, const br_lora_shapes_t *shapes, int n, int rank, size_t *bytes)
{
    br_rng_t rng;
    br_rng_seed(&rng, 3);
    br_status st = BR_OK;
    for (int i = 0; i < n && st == BR_OK; i++) {
        br_lora_adapter_t *a = NULL;
        st = br_lora_create(&a, shapes, i % 2 ? 2 * rank : rank, 16, (1u << BR_PROJ_Q) | (1u << BR_PROJ_V), false, (uint64_t)i);
        if (st != BR_OK) break;
        br_rng_fill_normal(&rng, a->params, a->n_params, 0.05f);
        br_buf_t d = BR_BUF_INIT;
        *bytes += br_lora_bytes(a);
        st = br_buf_printf(&d, "%s/ad%04d", adir, i);
        if (st == BR_OK) st = br_lora_save(a, br_buf_str(&d));
        br_buf_free(&d);
        br_lora_free(a);
    }
    return st;
}

/* S-LoRA's workload over nad adapters: Gamma arrivals, power-law popularity, uniform lengths
 * (malloc'd, nreq entries; NULL when out of memory). */
static wl_req_t *make_workload(int nreq, int nad, double rate, double cv, double alpha, const int io[2],
                               const int oo[2], size_t ntext)
{
    wl_req_t *wl = calloc((size_t)nreq, sizeof *wl);
    if (!wl) return NULL;
    br_rng_t wr;
    br_rng_seed(&wr, 1000 + (uint64_t)nad);
    double t = 0, shape = 1 / (cv * cv);
    for (int i = 0; i < nreq; i++) {
        t += gamma_sample(&wr, shape) / (rate * shape);
        double x = pow(br_rng_double(&wr), 1 / alpha); /* numpy.random.power(alpha) */
        wl[i] = (wl_req_t){t, (int)(x * nad) < nad ? (int)(x * nad) : nad - 1,
                           io[0] + (int)br_rng_below(&wr, (uint64_t)(io[1] - io[0] + 1)),
                           oo[0] + (int)br_rng_below(&wr, (uint64_t)(oo[1] - oo[0] + 1)),
                           br_rng_below(&wr, ntext - (size_t)io[1])};
    }
    return wl;
}

/* The median run by req/s of reps runs. */
static result_t median_run(const result_t *runs, int reps)
{
    result_t sorted[15];
    memcpy(sorted, runs, (size_t)reps * sizeof *sorted);
    for (int a = 0; a < reps; a++)
        for (int b = a + 1; b < reps; b++)
            if (sorted[b].req_s < sorted[a].req_s) {
                result_t t2 = sorted[a];
                sorted[a] = sorted[b];
                sorted[b] = t2;
            }
    return sorted[reps / 2];
}

/* One table row (and its JSON record in jr) for policy p with nad adapters. */
static void print_row(json_t *jr, int nad, int p, const result_t *r, double batched_req, const result_t *runs, int reps)
{
    printf("| %d | %s | %.1f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f%% | %.2fx |\n", nad, policy_names[p],
           r->req_s, r->tok_s, r->p50, r->p90, r->p99, r->ttft_mean, r->ttft_p90, 100 * r->slo, batched_req / r->req_s);
    fflush(stdout);
    json_t *all = json_array();
    for (int a = 0; a < reps; a++) json_array_append_new(all, json_real(runs[a].req_s));
    json_array_append_new(jr, json_pack("{s:i, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:o}", "adapters", nad,
                                        "policy", policy_names[p], "req_s", r->req_s, "tok_s", r->tok_s, "p50", r->p50,
                                        "p90", r->p90, "p99", r->p99, "ttft_mean", r->ttft_mean, "ttft_p90", r->ttft_p90,
                                        "slo", r->slo, "wall", r->wall, "done", (json_int_t)r->done, "req_s_all_reps", all));
}

/* --write-fixture DIR: DIR/model (config.json, model.safetensors, tokenizer.json) for braid serve;
 * *adir becomes DIR/adapters (created), where the adapters are written next. */
static br_status write_fixture_model(br_model_t *m, const char *dir, const char *tok_path, char *adir, size_t cap)
{
    char mdir[4096], tpath[4096];
    BR_TRY(br_path_join(mdir, sizeof mdir, dir, "model"));
    BR_TRY(br_model_save(m, mdir, BR_DT_F32));
    BR_TRY(br_path_join(tpath, sizeof tpath, mdir, "tokenizer.json"));
    char *raw = NULL;
    size_t n = 0;
    BR_TRY(br_read_file(tok_path, &raw, &n));
    br_status st = br_write_file_atomic(tpath, raw, n);
    free(raw);
    BR_TRY(st);
    BR_TRY(br_path_join(adir, cap, dir, "adapters"));
    if (mkdir(adir, 0755) && errno != EEXIST) return br_error(BR_EIO, "cannot create %s: %s", adir, strerror(errno));
    return BR_OK;
}

/* long: over 120 lines only by its option table and the result table's plumbing: each step (model,
 * adapters, workload, runs, medians, rows, JSON) is one of the helpers above. */
int bench_serve(int argc, char **argv)
{
    const char *tok_path = "tests/ref/serve_tokenizer.json", *text_path = "/usr/share/common-licenses/GPL-3";
    const char *ns_s = "1,10,100,1000", *json_out = NULL, *in_s = "8,64", *out_s = "8,32", *fixture = NULL;
    int nreq = 200, hidden = 256, layers = 4, vocab = 4096, rank = 8, max_batch = 256;
    double rate = 100, cv = 1, alpha = 1, slo = 1.0;
    bool quick = false, suite = false; /* --suite is dispatched before parsing; listed for --help */
    int reps = 3;
    const opt_t opts[] = {
        {"adapters", OPT_STR, &ns_s, "LIST", "numbers of adapters to run (default 1,10,100,1000)", false},
        {"requests", OPT_INT, &nreq, "N", "requests per run (default 200)", false},
        {"rate", OPT_DOUBLE, &rate, "R", "arrival rate lambda, requests/s (default 100: saturates a 2-core machine)", false},
        {"cv", OPT_DOUBLE, &cv, "CV", "coefficient of variation of the Gamma inter-arrival times (default 1: Poisson)", false},
        {"alpha", OPT_DOUBLE, &alpha, "A", "power-law exponent of adapter popularity (default 1: uniform; smaller: skewed)", false},
        {"in", OPT_STR, &in_s, "LO,HI", "prompt tokens, uniform (default 8,64)", false},
        {"out", OPT_STR, &out_s, "LO,HI", "output tokens, uniform (default 8,32)", false},
        {"slo", OPT_DOUBLE, &slo, "S", "time-to-first-token SLO in seconds (default 1)", false},
        {"hidden", OPT_INT, &hidden, "C", "model width (default 256; 4 heads)", false},
        {"layers", OPT_INT, &layers, "L", "model depth (default 4)", false},
        {"vocab", OPT_INT, &vocab, "V", "model vocabulary (default 4096)", false},
        {"rank", OPT_INT, &rank, "R", "LoRA rank of even adapters; odd ones get 2R (mixed ranks; default 8)", false},
        {"max-batch-tokens", OPT_INT, &max_batch, "N", "scheduler rows per step (default 256)", false},
        {"tokenizer", OPT_STR, &tok_path, "PATH", "tokenizer (default tests/ref/serve_tokenizer.json)", false},
        {"text", OPT_STR, &text_path, "PATH", "real text the prompts are cut from (default Debian's GPL-3)", false},
        {"json", OPT_STR, &json_out, "PATH", "also write the results as JSON", false},
        {"reps", OPT_INT, &reps, "N", "repetitions, policies interleaved; the median run (by req/s) is reported (default 3)", false},
        {"quick", OPT_BOOL, &quick, NULL, "small run (adapters 1,10; 60 requests; 1 rep) for a smoke test", false},
        {"suite", OPT_BOOL, &suite, NULL, "run the reviewer suite instead (capacity, load, eviction, tenants; see --suite --help)", false},
        {"write-fixture", OPT_STR, &fixture, "DIR", "only write the model (DIR/model, with the tokenizer) and the largest number of adapters (DIR/adapters) for `braid serve`, then exit (bench/serve/soak.sh)", false},
    };
    cmd_spec_t spec = {"braid bench serve [options]",
                       "S-LoRA's serving workload on braid's scheduler (batched heterogeneous LoRA) and, in the same "
                       "run, two baselines: one adapter per batch (llama.cpp server) and merge-per-switch (PEFT-style "
                       "weight swapping). Prints throughput, latency percentiles, time to first token and SLO "
                       "attainment per number of adapters, then single-request vs 8-request decode tokens/s.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--suite")) return bench_serve_suite(argc, argv);
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    int ns[16], io[2], oo[2];
    int nn = bench_serve_parse_list(quick ? "1,10" : ns_s, ns, 16);
    if (quick) {
        nreq = 60;
        reps = 1;
    }
    if (reps < 1 || reps > 15) reps = 3;
    if (nn <= 0 || bench_serve_parse_list(in_s, io, 2) != 2 || bench_serve_parse_list(out_s, oo, 2) != 2 || io[0] > io[1] || oo[0] > oo[1] ||
        nreq < 1 || !(rate > 0) || !(cv > 0) || !(alpha > 0) || hidden < 8 || hidden % 4 || layers < 1 || rank < 1) {
        fprintf(stderr, "braid: error: bad list or size (see --help)\n");
        return 2;
    }
    br_log_set_level(BR_LOG_WARN);
    br_tokenizer_t *tok = NULL;
    br_status st = br_tokenizer_load(&tok, tok_path);
    if (st != BR_OK) return fail_status(st, "bench serve");
    char *raw = NULL;
    size_t rawn = 0;
    int32_t *text = NULL;
    size_t ntext = 0;
    st = br_read_file(text_path, &raw, &rawn);
    if (st == BR_OK) st = br_tokenizer_encode(tok, raw, rawn, 0, &text, &ntext);
    free(raw);
    if (st == BR_OK && ntext < (size_t)io[1] * 2 + 1024) st = br_error(BR_EINVAL, "%s is too short", text_path);
    br_model_t *m = NULL;
    if (st == BR_OK) st = bench_serve_model(&m, tok, hidden, layers, vocab);
    if (st != BR_OK) {
        br_tokenizer_free(tok);
        free(text);
        return fail_status(st, "bench serve");
    }
    br_model_init_random(m, 1);
    br_tenants_t *ten = NULL;
    br_tenants_open(&ten);
    /* adapters on disk, as PEFT folders: ranks R and 2R alternate, q_proj and v_proj */
    int maxn = 0;
    for (int i = 0; i < nn; i++) maxn = ns[i] > maxn ? ns[i] : maxn;
    char adir[4096] = "/tmp/braid_bench_serve_XXXXXX";
    if (fixture) {
        st = write_fixture_model(m, fixture, tok_path, adir, sizeof adir);
        if (st != BR_OK) return fail_status(st, "bench serve --write-fixture");
    } else if (!mkdtemp(adir)) {
        return fail_status(br_error(BR_EIO, "mkdtemp failed"), "bench serve");
    }
    br_lora_shapes_t shapes = br_lora_shapes_from_config(&m->cfg);
    double tw = br_now();
    size_t ad_bytes = 0;
    if (st == BR_OK) st = bench_serve_write_adapters(adir, &shapes, maxn, rank, &ad_bytes);
    fprintf(stderr, "bench serve: model %zu parameters (C %d, L %d, V %d); %d adapters written in %.1f s (%.1f MB)\n",
            m->n_params, hidden, layers, m->cfg.vocab_size, maxn, br_now() - tw, ad_bytes / 1e6);
    if (fixture) { /* the fixture is written: no benchmark */
        br_model_free(m);
        br_tenants_free(ten);
        br_tokenizer_free(tok);
        free(text);
        if (st == BR_OK) fprintf(stderr, "bench serve: fixture in %s (model, adapters)\n", fixture);
        return st == BR_OK ? 0 : fail_status(st, "bench serve --write-fixture");
    }
    printf("## braid bench serve: %d requests, lambda %.0f req/s, cv %.1f, alpha %.2f, in %d-%d, out %d-%d tokens, "
           "TTFT SLO %.1f s, %d threads, median of %d interleaved runs\n\n",
           nreq, rate, cv, alpha, io[0], io[1], oo[0], oo[1], slo, br_get_threads(), reps);
    printf("| adapters | policy | req/s | tok/s | p50 s | p90 s | p99 s | TTFT mean s | TTFT p90 s | SLO | vs batched |\n");
    printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    json_t *jr = json_array();
    double base_batched = 0;
    for (int k = 0; k < nn && st == BR_OK; k++) {
        /* the same workload for every policy */
        wl_req_t *wl = make_workload(nreq, ns[k], rate, cv, alpha, io, oo, ntext);
        if (!wl) {
            st = br_error(BR_ENOMEM, "out of memory");
            break;
        }
        /* reps rounds of the three policies, interleaved (the machine's load drifts); median by req/s */
        result_t runs[3][15];
        for (int rep = 0; rep < reps && st == BR_OK; rep++)
            for (int p = 0; p < 3 && st == BR_OK; p++)
                st = run_one(m, tok, ten, adir, p, wl, (size_t)nreq, text, (size_t)max_batch, slo, &runs[p][rep]);
        if (st != BR_OK) break;
        double batched_req = 0;
        for (int p = 0; p < 3; p++) {
            result_t r = median_run(runs[p], reps);
            if (p == 0) batched_req = r.req_s;
            if (p == 0 && k == 0) base_batched = r.req_s;
            print_row(jr, ns[k], p, &r, batched_req, runs[p], reps);
        }
        free(wl);
    }
    double d1 = 0, d8 = 0;
    if (st == BR_OK) st = decode_rate(m, tok, ten, text, 1, 64, &d1);
    if (st == BR_OK) st = decode_rate(m, tok, ten, text, 8, 64, &d8);
    if (st == BR_OK) {
        printf("\nDecode (base model, prompt 16, 64 new tokens): 1 request %.0f tok/s; 8 concurrent %.0f tok/s "
               "aggregate (%.1fx)\n",
               d1, d8, d8 / d1);
        json_t *last = json_array_get(jr, json_array_size(jr) - 3);
        if (last && base_batched > 0)
            printf("Throughput with %d adapters / with %d: %.0f%% (goal >= 90%%)\n", ns[nn - 1], ns[0],
                   100 * json_real_value(json_object_get(last, "req_s")) / base_batched);
    }
    if (st == BR_OK && json_out) {
        json_t *root = json_pack("{s:o, s:{s:f, s:f, s:i}, s:{s:i, s:f, s:f, s:f, s:[i,i], s:[i,i], s:f, s:i, s:i, s:i, s:i}}",
                                 "results", jr, "decode", "single_tok_s", d1, "concurrent8_tok_s", d8, "out_tokens", 64,
                                 "workload", "requests", nreq, "rate", rate, "cv", cv, "alpha", alpha, "in", io[0], io[1],
                                 "out", oo[0], oo[1], "slo", slo, "hidden", hidden, "layers", layers, "rank", rank,
                                 "threads", br_get_threads());
        st = bench_serve_write_json(json_out, root);
    } else {
        json_decref(jr);
    }
    char *const rm[] = {"rm", "-rf", adir, NULL};
    if (proc_run(rm, NULL, 0, NULL)) fprintf(stderr, "bench serve: could not remove %s\n", adir);
    br_tenants_free(ten);
    br_model_free(m);
    br_tokenizer_free(tok);
    free(text);
    return st == BR_OK ? 0 : fail_status(st, "bench serve");
}
