/* braid bench serve --suite: the serving measurements a reviewer asks for (bench/serve/run.sh),
 * on braid's scheduler in process (no HTTP), adapters loaded from PEFT folders on disk:
 *
 *   capacity   every request at t = 0 (saturation): requests/s between the 10th and 90th percentile
 *              end (no ramp-up, no drain), the least skewed popularity;
 *   load       open-loop Poisson arrivals at 50% and 80% of that capacity, Zipf popularity
 *              (P(adapter k) ~ k^-alpha) for alpha in {0.1, 0.3, 1}; TTFT and latency p50/p99;
 *   eviction   a small adapter memory budget: saturating throughput against everything resident
 *              (same requests), and cold starts (requests whose adapter was not resident when
 *              they arrived) at 50% load;
 *   tenants    two tenants at a 10:1 request ratio, 2x capacity offered (4x the requests), with VTC (braid's
 *              scheduler) and with arrival order across tenants (opts.fcfs); per-request
 *              timelines go to the JSON so that report.py computes service and service gaps.
 *
 * Every run is recorded (no medians here): report.py computes spreads over repeats and the
 * verdicts.  Distinct adapters served come from the scheduler's metrics
 * (braid_generation_tokens_total by adapter), loads and evictions from the registry's. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/rng.h"
#include "base/threads.h"
#include "base/timer.h"
#include "bench_cmds.h"
#include "bench_serve.h"
#include "proc.h"
#include "serve/adapters.h"
#include "serve/metrics.h"
#include "serve/sched.h"
#include "serve/tenants.h"

typedef struct {
    double arrival;
    int adapter, tenant, in_len, out_len;
    size_t text_off;
} sreq_t;

typedef struct {
    br_model_t *m;
    const br_tokenizer_t *tok;
    br_tenants_t *one, *two; /* one open tenant; heavy + light */
    const char *adir;
    const int32_t *text;
    size_t ntext;
    int io[2], oo[2], max_batch;
} suite_t;

typedef struct {
    const char *kind;
    int nad;
    double alpha, load, rate; /* rate 0: every request at t = 0 */
    int nreq, rep;
    size_t mem_budget;        /* 0: unlimited */
    bool prewarm, fcfs, two_tenants;
} run_spec_t;

/* Requests with Poisson arrivals at `rate` (0: all at once), Zipf(alpha) adapters over nad,
 * tenant 1 with probability 1/11 when two_tenants (a 10:1 request ratio). */
static sreq_t *make_requests(const suite_t *x, const run_spec_t *sp, uint64_t seed)
{
    sreq_t *w = calloc((size_t)sp->nreq, sizeof *w);
    double *cdf = calloc((size_t)sp->nad, sizeof *cdf);
    if (!w || !cdf) {
        free(w);
        free(cdf);
        return NULL;
    }
    double z = 0;
    for (int k = 0; k < sp->nad; k++) cdf[k] = z += pow(k + 1, -sp->alpha);
    br_rng_t r;
    br_rng_seed(&r, seed);
    double t = 0;
    for (int i = 0; i < sp->nreq; i++) {
        if (sp->rate > 0) t += -log(1 - br_rng_double(&r)) / sp->rate;
        double u = br_rng_double(&r) * z;
        int k = 0;
        while (k < sp->nad - 1 && cdf[k] < u) k++;
        int tenant = sp->two_tenants && br_rng_below(&r, 11) == 0;
        w[i] = (sreq_t){t, k, tenant, x->io[0] + (int)br_rng_below(&r, (uint64_t)(x->io[1] - x->io[0] + 1)),
                        x->oo[0] + (int)br_rng_below(&r, (uint64_t)(x->oo[1] - x->oo[0] + 1)),
                        br_rng_below(&r, x->ntext - (size_t)x->io[1])};
    }
    free(cdf);
    return w;
}

static void ad_name(char *buf, size_t cap, int k) { snprintf(buf, cap, "ad%04d", k); }

static bool resident(br_adapters_t *ads, const char *name)
{
    br_adapter_info_t info;
    br_adapters_info(ads, name, &info);
    return !strcmp(info.state, "ready");
}

/* Loads adapters 0..nad-1 before the clock starts (as many as the budget keeps). */
static void prewarm(br_adapters_t *ads, int nad)
{
    char name[32];
    for (int k = 0; k < nad; k++) {
        ad_name(name, sizeof name, k);
        br_adapters_prefetch(ads, name);
    }
    for (int tries = 0; tries < 2000; tries++) {
        int ready = 0;
        for (int k = 0; k < nad; k++) {
            ad_name(name, sizeof name, k);
            ready += resident(ads, name);
        }
        if (ready == nad) return;
        usleep(5000);
    }
}

static json_t *pcts(double *v, size_t n, const char *p50, const char *p99, json_t *o)
{
    qsort(v, n, sizeof *v, bench_cmp_double);
    json_object_set_new(o, p50, n ? json_real(bench_serve_pct(v, n, 0.5)) : json_null());
    json_object_set_new(o, p99, n ? json_real(bench_serve_pct(v, n, 0.99)) : json_null());
    return o;
}

/* Adapters with generated tokens in the scheduler's metrics. */
static int served_adapters(br_metrics_t *mx, int nad)
{
    br_metric_t *f = br_metrics_find(mx, "braid_generation_tokens_total");
    int n = 0;
    char name[32];
    for (int k = 0; k < nad; k++) {
        ad_name(name, sizeof name, k);
        n += br_metric_sum(f, "adapter", name) > 0;
    }
    return n;
}

/* The run's summary (and, for two tenants, every request's timeline) from its finished requests. */
static json_t *summarize(const run_spec_t *sp, const sreq_t *w, br_req_t **reqs, const bool *cold, double t0,
                         br_metrics_t *mx)
{
    size_t n = (size_t)sp->nreq, done = 0, ncold = 0, nwarm = 0;
    double *lat = calloc(n, sizeof *lat), *ttft = calloc(n, sizeof *ttft), *ct = calloc(n, sizeof *ct),
           *wt = calloc(n, sizeof *wt), *ends = calloc(n, sizeof *ends);
    json_t *tl = sp->two_tenants ? json_array() : NULL;
    double last = t0, first_end = INFINITY, toks = 0;
    bool *asked = calloc((size_t)sp->nad, sizeof *asked);
    int nasked = 0;
    for (size_t i = 0; lat && ttft && ct && wt && ends && asked && i < n; i++) {
        br_req_t *r = reqs[i];
        if (!r || r->finish == BR_FINISH_ERROR) continue;
        double f = r->t_first_token - r->t_arrival;
        ends[done] = r->t_done;
        lat[done] = r->t_done - r->t_arrival;
        ttft[done++] = f;
        if (cold[i]) ct[ncold++] = f;
        else wt[nwarm++] = f;
        toks += (double)r->n_out;
        if (r->t_done > last) last = r->t_done;
        if (r->t_done < first_end) first_end = r->t_done;
        nasked += !asked[w[i].adapter];
        asked[w[i].adapter] = true;
        if (tl)
            json_array_append_new(tl, json_pack("[i,f,f,f,i,i]", w[i].tenant, r->t_arrival - t0, r->t_first_token - t0,
                                                r->t_done - t0, (int)r->n_prompt, (int)r->n_out));
    }
    double wall = last - t0;
    json_t *o = json_pack("{s:s, s:i, s:f, s:f, s:f, s:i, s:i, s:I, s:b, s:b, s:I, s:I, s:f, s:f, s:f, s:i, s:i, s:i, s:i, s:I}",
                          "kind", sp->kind, "adapters", sp->nad, "alpha", sp->alpha, "load", sp->load, "rate", sp->rate,
                          "rep", sp->rep, "requests", sp->nreq, "mem_budget", (json_int_t)sp->mem_budget, "prewarm",
                          sp->prewarm, "fcfs", sp->fcfs, "done", (json_int_t)done, "errors", (json_int_t)(n - done),
                          "wall", wall, "req_s", wall > 0 ? done / wall : 0.0, "tok_s", wall > 0 ? toks / wall : 0.0,
                          "adapters_requested", nasked, "adapters_served", served_adapters(mx, sp->nad), "loads",
                          (int)br_metric_sum(br_metrics_find(mx, "braid_adapter_loads_total"), "result", "ok"),
                          "evictions", (int)br_metric_sum(br_metrics_find(mx, "braid_adapter_evictions_total"), NULL, NULL),
                          "cold",
                          (json_int_t)ncold);
    if (o && lat && ttft && ct && wt) {
        pcts(ttft, done, "ttft_p50", "ttft_p99", o);
        pcts(lat, done, "lat_p50", "lat_p99", o);
        pcts(ct, ncold, "cold_ttft_p50", "cold_ttft_p99", o);
        pcts(wt, nwarm, "warm_ttft_p50", "warm_ttft_p99", o);
    }
    /* keeping up: requests leave as fast as they came, (n-1) / span of ends against (n-1) / span of
     * arrivals (the realized rate: a short run's Poisson arrivals stray from the nominal one) */
    if (o && done > 1 && w[n - 1].arrival > w[0].arrival && last > first_end) {
        json_object_set_new(o, "offered_req_s", json_real((double)(n - 1) / (w[n - 1].arrival - w[0].arrival)));
        json_object_set_new(o, "served_req_s", json_real((double)(done - 1) / (last - first_end)));
    }
    /* saturation without the ramp-up and drain: the rate between the 10th and 90th percentile end */
    if (o && ends && done >= 10) {
        qsort(ends, done, sizeof *ends, bench_cmp_double);
        size_t a = done / 10, b = done - 1 - done / 10;
        if (ends[b] > ends[a]) json_object_set_new(o, "steady_req_s", json_real((double)(b - a) / (ends[b] - ends[a])));
    }
    if (o && tl) json_object_set_new(o, "timeline", tl);
    else json_decref(tl);
    free(lat);
    free(ttft);
    free(ct);
    free(wt);
    free(ends);
    free(asked);
    return o;
}

/* One run of spec sp: a fresh registry and scheduler, the requests at their arrival times. */
static br_status run_spec(const suite_t *x, const run_spec_t *sp, json_t *runs)
{
    sreq_t *w = make_requests(x, sp, 1000u * (uint64_t)sp->nad + 17u * (uint64_t)sp->rep + (uint64_t)(sp->alpha * 100));
    br_req_t **reqs = calloc((size_t)sp->nreq, sizeof *reqs);
    bool *cold = calloc((size_t)sp->nreq, sizeof *cold);
    br_metrics_t *mx = NULL;
    br_adapters_t *ads = NULL;
    br_sched_t *s = NULL;
    br_status st = w && reqs && cold ? br_metrics_create(&mx) : br_error(BR_ENOMEM, "out of memory");
    br_adapters_opts_t ao = {.dir = x->adir, .shapes = br_lora_shapes_from_config(&x->m->cfg), .mem_budget = sp->mem_budget,
                             .metrics = mx};
    if (st == BR_OK) st = br_adapters_create(&ads, &ao);
    br_tenants_t *ten = sp->two_tenants ? x->two : x->one;
    br_sched_opts_t so = {.model = x->m, .tok = x->tok, .adapters = ads, .tenants = ten, .metrics = mx,
                          .max_batch_tokens = (size_t)x->max_batch, .kv_budget_bytes = 512u << 20, .page_tokens = 16,
                          .max_running = 64, .seed = 1, .fcfs = sp->fcfs};
    if (st == BR_OK) st = br_sched_create(&s, &so);
    if (st == BR_OK && sp->prewarm) prewarm(ads, sp->nad);
    double t0 = br_now();
    for (int i = 0; i < sp->nreq && st == BR_OK; i++) {
        double wait = t0 + w[i].arrival - br_now();
        if (wait > 0) usleep((useconds_t)(wait * 1e6));
        int32_t *p = malloc((size_t)w[i].in_len * sizeof *p);
        if (!p) {
            st = br_error(BR_ENOMEM, "out of memory");
            break;
        }
        memcpy(p, x->text + w[i].text_off, (size_t)w[i].in_len * sizeof *p);
        br_gen_params_t gp = {.max_tokens = w[i].out_len, .temperature = 0, .top_p = 1, .ignore_eos = true};
        st = br_req_create(&reqs[i], p, (size_t)w[i].in_len, &gp);
        if (st != BR_OK) break;
        reqs[i]->tenant = br_tenants_get(ten, (size_t)w[i].tenant);
        ad_name(reqs[i]->adapter, sizeof reqs[i]->adapter, w[i].adapter);
        cold[i] = !resident(ads, reqs[i]->adapter);
        st = br_sched_submit(s, reqs[i]);
    }
    for (int i = 0; i < sp->nreq; i++)
        if (reqs && reqs[i])
            while (!br_req_wait(reqs[i], SIZE_MAX, 1.0)) {}
    if (st == BR_OK) {
        json_t *o = summarize(sp, w, reqs, cold, t0, mx);
        if (!o) st = br_error(BR_ENOMEM, "out of memory");
        else {
            fprintf(stderr, "bench serve --suite: %-8s n %d alpha %.1f load %.2f budget %zu fcfs %d rep %d: %.1f req/s, "
                    "TTFT p99 %.2f s, %d adapters served, %d cold\n", sp->kind, sp->nad, sp->alpha, sp->load,
                    sp->mem_budget, sp->fcfs, sp->rep, json_real_value(json_object_get(o, "req_s")),
                    json_real_value(json_object_get(o, "ttft_p99")),
                    (int)json_integer_value(json_object_get(o, "adapters_served")),
                    (int)json_integer_value(json_object_get(o, "cold")));
            json_array_append_new(runs, o);
        }
    }
    for (int i = 0; reqs && i < sp->nreq; i++) br_req_unref(reqs[i]);
    br_sched_free(s);
    br_adapters_free(ads);
    br_metrics_free(mx);
    free(reqs);
    free(cold);
    free(w);
    return st;
}

/* Median steady_req_s of runs[from..] of kind `kind` (NULL: any). */
static double median_steady_kind(json_t *runs, size_t from, const char *kind)
{
    double v[256];
    size_t n = 0;
    for (size_t i = from; i < json_array_size(runs) && n < 256; i++) {
        json_t *o = json_array_get(runs, i), *st = json_object_get(o, "steady_req_s");
        if (kind && strcmp(json_string_value(json_object_get(o, "kind")), kind)) continue;
        v[n++] = json_real_value(st ? st : json_object_get(o, "req_s"));
    }
    return bench_median(v, n);
}

/* The tenant rows run this many times a row's requests: a queue must build up (at 1.5x capacity, a
 * third of the arrivals wait) for the order of admission to matter. */
#define TENANT_MULT 4

/* Every measurement for nad adapters (see the file comment); appends to runs. */
static br_status suite_for(const suite_t *x, int nad, int nreq, int reps, size_t ad_bytes_per, double evict_frac,
                           bool tenants, json_t *runs, json_t *caps)
{
    static const double alphas[] = {0.1, 0.3, 1.0}, loads[] = {0.5, 0.8};
    br_status st = BR_OK;
    size_t from = json_array_size(runs);
    for (int rep = 0; rep < reps && st == BR_OK; rep++)
        st = run_spec(x, &(run_spec_t){"capacity", nad, 0.1, 1, 0, nreq, rep, 0, true, false, false}, runs);
    if (st != BR_OK) return st;
    double cap = median_steady_kind(runs, from, NULL);
    char key[16];
    snprintf(key, sizeof key, "%d", nad);
    json_object_set_new(caps, key, json_real(cap));
    fprintf(stderr, "bench serve --suite: capacity with %d adapters: %.1f req/s (median of %d)\n", nad, cap, reps);
    for (int rep = 0; rep < reps && st == BR_OK; rep++) /* every alpha and load in each repeat: drift spreads evenly */
        for (int a = 0; a < 3 && st == BR_OK; a++)
            for (int l = 0; l < 2 && st == BR_OK; l++)
                st = run_spec(x, &(run_spec_t){"load", nad, alphas[a], loads[l], loads[l] * cap, nreq, rep, 0, true,
                                               false, false}, runs);
    size_t budget = (size_t)(evict_frac * (double)nad * (double)ad_bytes_per);
    if (budget < 2 * ad_bytes_per) budget = 2 * ad_bytes_per;
    for (int rep = 0; rep < reps && st == BR_OK; rep++) { /* interleaved: the machine's load drifts */
        st = run_spec(x, &(run_spec_t){"resident", nad, 1.0, 1, 0, nreq, rep, 0, true, false, false}, runs);
        if (st == BR_OK)
            st = run_spec(x, &(run_spec_t){"evict", nad, 1.0, 1, 0, nreq, rep, budget, true, false, false}, runs);
        if (st == BR_OK)
            st = run_spec(x, &(run_spec_t){"cold", nad, 1.0, 0.5, 0.5 * cap, nreq, rep, budget, true, false, false}, runs);
    }
    /* overload must hold even when the machine got faster since capacity was measured: twice the
     * larger of the capacity and the resident rows' steady rate (measured just before) */
    double now_cap = median_steady_kind(runs, from, "resident");
    double over = 2 * (now_cap > cap ? now_cap : cap);
    for (int rep = 0; tenants && rep < reps && st == BR_OK; rep++)
        for (int f = 0; f < 2 && st == BR_OK; f++)
            st = run_spec(x, &(run_spec_t){"tenants", nad, 1.0, over / cap, over, TENANT_MULT * nreq, rep, 0, true, f == 1,
                                           true}, runs);
    return st;
}

/* Tokenizer, prompt text, model (random weights) and n adapters on disk in a fresh temporary
 * folder (x->adir, which the caller removes). */
static br_status suite_setup(suite_t *x, br_tokenizer_t **tok, int32_t **text, br_model_t **m, const char *tok_path,
                             const char *text_path, int hidden, int layers, int vocab, int rank, int nmax, char *adir,
                             size_t *ad_bytes)
{
    BR_TRY(br_tokenizer_load(tok, tok_path));
    char *raw = NULL;
    size_t rawn = 0;
    BR_TRY(br_read_file(text_path, &raw, &rawn));
    br_status st = br_tokenizer_encode(*tok, raw, rawn, 0, text, &x->ntext);
    free(raw);
    BR_TRY(st);
    if (x->ntext < (size_t)x->io[1] * 2 + 1024) return br_error(BR_EINVAL, "%s is too short for prompts", text_path);
    BR_TRY(bench_serve_model(m, *tok, hidden, layers, vocab));
    br_model_init_random(*m, 1);
    if (!mkdtemp(adir)) return br_error(BR_EIO, "mkdtemp %s failed", adir);
    br_lora_shapes_t shapes = br_lora_shapes_from_config(&(*m)->cfg);
    BR_TRY(bench_serve_write_adapters(adir, &shapes, nmax, rank, ad_bytes));
    x->m = *m;
    x->tok = *tok;
    x->text = *text;
    x->adir = adir;
    BR_TRY(br_tenants_open(&x->one));
    const char *two = "{\"tenants\": [{\"name\": \"heavy\", \"keys\": [\"sk-heavy-bench\"]},"
                      " {\"name\": \"light\", \"keys\": [\"sk-light-bench\"]}]}";
    return br_tenants_parse(&x->two, two, strlen(two), "bench tenants");
}

/* long: over 120 lines only by its option table; the work is in suite_setup and suite_for. */
int bench_serve_suite(int argc, char **argv)
{
    const char *tok_path = "tests/ref/serve_tokenizer.json", *text_path = "/usr/share/common-licenses/GPL-3";
    const char *ns_s = "10,100", *json_out = NULL, *in_s = "8,64", *out_s = "8,32";
    int per = 10, min_req = 100, reps = 3, hidden = 256, layers = 4, vocab = 4096, rank = 8, max_batch = 256;
    double evict_frac = 0.3;
    bool quick = false, suite = true;
    const opt_t opts[] = {
        {"suite", OPT_BOOL, &suite, NULL, "run this suite (instead of the policy comparison)", false},
        {"adapters", OPT_STR, &ns_s, "LIST", "numbers of adapters (default 10,100)", false},
        {"per-adapter", OPT_INT, &per, "K", "requests per row: K x adapters, at least --min-requests (default 10)", false},
        {"min-requests", OPT_INT, &min_req, "N", "fewest requests per row (default 100)", false},
        {"reps", OPT_INT, &reps, "N", "repeats of every row, each recorded (default 3)", false},
        {"evict-frac", OPT_DOUBLE, &evict_frac, "F", "adapter memory budget of the eviction rows, as a fraction of all adapters' bytes (default 0.3)", false},
        {"in", OPT_STR, &in_s, "LO,HI", "prompt tokens, uniform (default 8,64)", false},
        {"out", OPT_STR, &out_s, "LO,HI", "output tokens, uniform (default 8,32)", false},
        {"hidden", OPT_INT, &hidden, "C", "model width (default 256)", false},
        {"layers", OPT_INT, &layers, "L", "model depth (default 4)", false},
        {"vocab", OPT_INT, &vocab, "V", "model vocabulary (default 4096)", false},
        {"rank", OPT_INT, &rank, "R", "LoRA rank of even adapters, odd ones 2R (default 8)", false},
        {"max-batch-tokens", OPT_INT, &max_batch, "N", "scheduler rows per step (default 256)", false},
        {"tokenizer", OPT_STR, &tok_path, "PATH", "tokenizer (default tests/ref/serve_tokenizer.json)", false},
        {"text", OPT_STR, &text_path, "PATH", "real text the prompts are cut from (default Debian's GPL-3)", false},
        {"json", OPT_STR, &json_out, "PATH", "write every run as JSON (bench/serve/report.py reads it)", false},
        {"quick", OPT_BOOL, &quick, NULL, "10 adapters only (the rows keep 3 repeats)", false},
    };
    cmd_spec_t spec = {"braid bench serve --suite [options]",
                       "Capacity, then open-loop Poisson load at 50% and 80% of it under Zipf adapter popularity "
                       "(alpha 0.1, 0.3, 1), eviction under a small adapter budget (cold starts, throughput cost), and "
                       "two tenants at 10:1 with and without VTC. Every run goes to --json; bench/serve/report.py "
                       "turns it into RESULTS.md.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    int ns[8];
    suite_t x = {.max_batch = max_batch};
    int nn = bench_serve_parse_list(quick ? "10" : ns_s, ns, 8);
    if (nn <= 0 || bench_serve_parse_list(in_s, x.io, 2) != 2 || bench_serve_parse_list(out_s, x.oo, 2) != 2 || x.io[0] > x.io[1] ||
        x.oo[0] > x.oo[1] || per < 1 || min_req < 1 || reps < 1 || reps > 20 || !(evict_frac > 0) || hidden < 8 ||
        hidden % 4 || layers < 1 || rank < 1 || max_batch < 1) {
        fprintf(stderr, "braid: error: bad list or size (see --help)\n");
        return 2;
    }
    br_log_set_level(BR_LOG_WARN);
    int nmax = 0;
    for (int i = 0; i < nn; i++) nmax = ns[i] > nmax ? ns[i] : nmax;
    br_tokenizer_t *tok = NULL;
    int32_t *text = NULL;
    br_model_t *m = NULL;
    char adir[] = "/tmp/braid_bench_serve_suite_XXXXXX";
    size_t ad_bytes = 0;
    br_status st = suite_setup(&x, &tok, &text, &m, tok_path, text_path, hidden, layers, vocab, rank, nmax, adir, &ad_bytes);
    json_t *runs = json_array(), *caps = json_object();
    for (int k = 0; k < nn && st == BR_OK; k++) {
        int nreq = per * ns[k] > min_req ? per * ns[k] : min_req;
        st = suite_for(&x, ns[k], nreq, reps, ad_bytes / (size_t)nmax, evict_frac, k == 0, runs, caps);
    }
    if (st == BR_OK && json_out) {
        json_t *root = json_pack("{s:o, s:o, s:{s:[i,i], s:[i,i], s:i, s:i, s:i, s:i, s:i, s:f, s:i, s:i, s:f, s:i}}",
                                 "runs", runs, "capacity", caps, "workload", "in", x.io[0], x.io[1], "out", x.oo[0],
                                 x.oo[1], "hidden", hidden, "layers", layers, "rank", rank, "per_adapter", per,
                                 "min_requests", min_req, "evict_frac", evict_frac, "reps", reps, "threads",
                                 br_get_threads(), "adapter_bytes", (double)ad_bytes / nmax, "max_running", 64);
        st = bench_serve_write_json(json_out, root);
    } else {
        json_decref(runs);
        json_decref(caps);
    }
    if (adir[strlen(adir) - 1] != 'X') {
        char *const rm[] = {"rm", "-rf", adir, NULL};
        if (proc_run(rm, NULL, 0, NULL)) fprintf(stderr, "bench serve: could not remove %s\n", adir);
    }
    br_tenants_free(x.one);
    br_tenants_free(x.two);
    br_model_free(m);
    br_tokenizer_free(tok);
    free(text);
    return st == BR_OK ? 0 : fail_status(st, "bench serve --suite");
}
