#include "serve/console.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/timer.h"

/* ---- static files ---- */

const char BR_CONSOLE_CSP[] = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                              "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
                              "frame-ancestors 'none'";

/* build/gen/console_files.inc (Makefile: scripts/embed_web.sh web/console) defines
 * console_files[] and console_nfiles; builds that do not generate it (scripts/fuzz.sh compiles
 * src/ directly) serve no page. */
#if defined(__has_include) && __has_include("console_files.inc")
#include "console_files.inc"
#else
static const br_console_file_t console_files[1] = {{0}};
static const size_t console_nfiles = 0;
#endif

const br_console_file_t *br_console_file(const char *url)
{
    if (!strcmp(url, "/")) url = "/index.html";
    for (size_t i = 0; i < console_nfiles; i++)
        if (!strcmp(console_files[i].path, url)) return &console_files[i];
    return NULL;
}

const char *br_console_content_type(const char *path)
{
    static const struct { const char *ext, *type; } types[] = {
        {".html", "text/html; charset=utf-8"},        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},    {".mjs", "text/javascript; charset=utf-8"},
        {".svg", "image/svg+xml"},                    {".png", "image/png"},
        {".json", "application/json"},
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof *types; i++)
            if (!strcmp(dot, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}

/* ---- ring ---- */

br_status br_console_ring_init(br_console_ring_t *r, size_t cap)
{
    *r = (br_console_ring_t){0};
    if (!cap) return br_error(BR_EINVAL, "console: a ring needs at least one sample");
    r->v = calloc(cap, sizeof *r->v);
    if (!r->v) return br_error(BR_ENOMEM, "console: out of memory for %zu samples", cap);
    r->cap = cap;
    return BR_OK;
}

void br_console_ring_free(br_console_ring_t *r)
{
    free(r->v);
    *r = (br_console_ring_t){0};
}

void br_console_ring_push(br_console_ring_t *r, const br_console_sample_t *s)
{
    if (!r->cap) return;
    r->v[r->head] = *s;
    r->head = (r->head + 1) % r->cap;
    if (r->n < r->cap) r->n++;
}

const br_console_sample_t *br_console_ring_at(const br_console_ring_t *r, size_t ago)
{
    if (!r || ago >= r->n) return NULL;
    return &r->v[(r->head + r->cap - 1 - ago) % r->cap];
}

double br_console_quantile(const double *bounds, const double *counts, int nb, double q)
{
    double total = 0;
    for (int b = 0; b <= nb; b++) total += counts[b];
    if (!(total > 0) || nb < 1) return NAN;
    double rank = q * total, below = 0;
    for (int b = 0; b < nb; b++) {
        if (below + counts[b] >= rank && counts[b] > 0) {
            double lo = b ? bounds[b - 1] : 0, hi = bounds[b];
            return lo + (hi - lo) * (rank - below) / counts[b];
        }
        below += counts[b];
    }
    return bounds[nb - 1];
}

/* ---- the status document ---- */

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* Quantile q of the observations between two samples (newer - older, per bucket). */
static double window_quantile(const br_console_status_t *st, const br_console_sample_t *nw,
                              const br_console_sample_t *old, bool ttft, double q, double *count)
{
    double d[BR_CONSOLE_NB];
    double n = 0;
    int nb = st->nb < BR_CONSOLE_NB ? st->nb : BR_CONSOLE_NB - 1;
    for (int b = 0; b <= nb; b++) {
        double a = ttft ? nw->ttft[b] : nw->lat[b], z = old ? (ttft ? old->ttft[b] : old->lat[b]) : 0;
        d[b] = a - z > 0 ? a - z : 0;
        n += d[b];
    }
    if (count) *count = n;
    return br_console_quantile(st->lat_bounds, d, nb, q);
}

static json_t *adapters_json(const br_console_status_t *st)
{
    json_t *list = json_array();
    for (size_t i = 0; i < st->nadapters; i++) {
        const br_console_adapter_t *a = &st->adapters[i];
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:I, s:i, s:f}", "name", a->name, "owner",
                                              a->owner ? a->owner : "", "state", a->info.state ? a->info.state : "unloaded",
                                              "bytes", (json_int_t)a->info.bytes, "pins", a->info.pins, "idle_s",
                                              a->info.idle_s));
    }
    return json_pack("{s:I, s:I, s:f, s:f, s:{s:f, s:f}, s:{s:f, s:f, s:f}, s:o}", "loaded",
                     (json_int_t)st->adapters_loaded, "bytes", (json_int_t)st->adapter_bytes, "budget_bytes",
                     st->adapter_budget, "cold_starts", st->cold_starts, "loads", "ok", st->loads_ok, "error",
                     st->loads_error, "evictions", "lru", st->evict_lru, "idle", st->evict_idle, "unload",
                     st->evict_unload, "list", list);
}

static json_t *tenants_json(const br_console_status_t *st)
{
    json_t *list = json_array();
    for (size_t i = 0; i < st->ntenants; i++) {
        const br_console_tenant_t *t = &st->tenants[i];
        json_array_append_new(list, json_pack("{s:s, s:b, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "name", t->name, "admin",
                                              t->admin, "rps", t->rps, "tpm", t->tpm, "weight", t->weight, "requests",
                                              t->requests, "prompt_tokens", t->prompt_tokens, "generation_tokens",
                                              t->gen_tokens, "tokens_last_minute", t->tokens_last_min));
    }
    return list;
}

/* Latency over the last minute (or what the ring holds). */
static json_t *latency_json(const br_console_status_t *st)
{
    const br_console_sample_t *nw = br_console_ring_at(st->ring, 0);
    const br_console_sample_t *old = NULL;
    for (size_t ago = 1; nw && (old = br_console_ring_at(st->ring, ago)); ago++)
        if (nw->t - old->t >= 60 || !br_console_ring_at(st->ring, ago + 1)) break;
    if (!nw)
        return json_pack("{s:i, s:i, s:n, s:n, s:n, s:n, s:n}", "window_s", 0, "requests", 0, "p50", "p90", "p99",
                         "ttft_p50", "ttft_p99");
    double n = 0;
    json_t *j = json_object();
    json_object_set_new(j, "p50", num_or_null(window_quantile(st, nw, old, false, 0.5, &n)));
    json_object_set_new(j, "p90", num_or_null(window_quantile(st, nw, old, false, 0.9, NULL)));
    json_object_set_new(j, "p99", num_or_null(window_quantile(st, nw, old, false, 0.99, NULL)));
    json_object_set_new(j, "ttft_p50", num_or_null(window_quantile(st, nw, old, true, 0.5, NULL)));
    json_object_set_new(j, "ttft_p99", num_or_null(window_quantile(st, nw, old, true, 0.99, NULL)));
    json_object_set_new(j, "requests", json_real(n));
    json_object_set_new(j, "window_s", json_real(old ? nw->t - old->t : 0));
    return j;
}

/* One value per second, oldest first. */
static json_t *series_json(const br_console_status_t *st)
{
    json_t *t = json_array(), *tps = json_array(), *q = json_array(), *run = json_array(), *kv = json_array(),
           *p50 = json_array(), *p99 = json_array();
    const br_console_sample_t *nw = br_console_ring_at(st->ring, 0);
    size_t n = st->ring ? st->ring->n : 0;
    for (size_t k = n; k-- > 0;) {
        const br_console_sample_t *s = br_console_ring_at(st->ring, k), *prev = br_console_ring_at(st->ring, k + 1);
        json_array_append_new(t, json_real(s->t - nw->t));
        double dt = prev ? s->t - prev->t : 0;
        json_array_append_new(tps, dt > 0 ? json_real((s->gen_tokens - prev->gen_tokens) / dt) : json_real(0));
        json_array_append_new(q, json_real(s->queue));
        json_array_append_new(run, json_real(s->running));
        json_array_append_new(kv, json_real(s->kv_used));
        const br_console_sample_t *old = NULL;
        for (size_t a = k + 1; (old = br_console_ring_at(st->ring, a)) && s->t - old->t < 10; a++) {}
        json_array_append_new(p50, num_or_null(window_quantile(st, s, old, false, 0.5, NULL)));
        json_array_append_new(p99, num_or_null(window_quantile(st, s, old, false, 0.99, NULL)));
    }
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "t", t, "tokens_per_s", tps, "queue", q, "running", run,
                     "kv_used", kv, "p50", p50, "p99", p99);
}

char *br_console_status_json(const br_console_status_t *st)
{
    json_t *j = json_pack("{s:s, s:f, s:{s:I, s:I}, s:{s:I, s:I}, s:o, s:{s:b, s:f, s:f, s:f}, s:o, s:o, s:o}", "model",
                          st->model ? st->model : "", "uptime_s", st->uptime_s, "queue", "waiting",
                          (json_int_t)st->waiting, "running", (json_int_t)st->running, "kv_pages", "used",
                          (json_int_t)st->kv_used, "total", (json_int_t)st->kv_total, "adapters", adapters_json(st),
                          "guard", "enabled", st->guard, "pass", st->guard_pass, "flagged", st->guard_flagged, "error",
                          st->guard_error, "tenants", tenants_json(st), "latency", latency_json(st), "series",
                          series_json(st));
    if (!j) return NULL;
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return text;
}

/* ---- the live side ---- */

#define TENANT_HIST 61 /* per-tenant token totals over the last minute, one a second */

struct br_console {
    br_console_opts_t o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started, stop;
    double t0;
    br_console_ring_t ring;
    double bounds[BR_CONSOLE_NB];
    int nb;
    size_t ntenants;
    double *tenant_hist;       /* ntenants x TENANT_HIST, ring indexed by hist_head */
    size_t hist_head, hist_n;
    br_metric_t *m_gen, *m_prompt, *m_lat, *m_ttft, *m_kv, *m_req, *m_cold, *m_loads, *m_evict, *m_guard;
};

static double tenant_tokens(br_console_t *c, const char *name)
{
    return br_metric_sum(c->m_gen, "tenant", name) + br_metric_sum(c->m_prompt, "tenant", name);
}

void br_console_sample(br_console_t *c)
{
    br_console_sample_t s = {.t = br_now()};
    s.gen_tokens = br_metric_sum(c->m_gen, NULL, NULL);
    double counts[BR_CONSOLE_NB + 1];
    int nc = br_metric_buckets(c->m_lat, NULL, counts, BR_CONSOLE_NB + 1);
    for (int b = 0; b < nc && b < BR_CONSOLE_NB; b++) s.lat[b] = counts[b];
    nc = br_metric_buckets(c->m_ttft, NULL, counts, BR_CONSOLE_NB + 1);
    for (int b = 0; b < nc && b < BR_CONSOLE_NB; b++) s.ttft[b] = counts[b];
    size_t waiting = 0, running = 0;
    br_sched_load(c->o.sched, &waiting, &running);
    s.queue = (double)waiting;
    s.running = (double)running;
    s.kv_used = br_metric_sum(c->m_kv, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    br_console_ring_push(&c->ring, &s);
    for (size_t i = 0; i < c->ntenants; i++)
        c->tenant_hist[i * TENANT_HIST + c->hist_head] = tenant_tokens(c, br_tenants_get(c->o.tenants, i)->name);
    c->hist_head = (c->hist_head + 1) % TENANT_HIST;
    if (c->hist_n < TENANT_HIST) c->hist_n++;
    pthread_mutex_unlock(&c->mu);
}

static void *sampler_main(void *arg)
{
    br_console_t *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        pthread_mutex_unlock(&c->mu);
        br_console_sample(c);
        pthread_mutex_lock(&c->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        if (!c->stop) pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

br_status br_console_create(br_console_t **out, const br_console_opts_t *o)
{
    *out = NULL;
    br_console_t *c = calloc(1, sizeof *c);
    if (!c) return br_error(BR_ENOMEM, "console: out of memory");
    c->o = *o;
    c->t0 = br_now();
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    br_metrics_t *m = o->metrics;
    c->m_gen = br_metrics_find(m, "braid_generation_tokens_total");
    c->m_prompt = br_metrics_find(m, "braid_prompt_tokens_total");
    c->m_lat = br_metrics_find(m, "braid_request_latency_seconds");
    c->m_ttft = br_metrics_find(m, "braid_time_to_first_token_seconds");
    c->m_kv = br_metrics_find(m, "braid_kv_pages_used");
    c->m_req = br_metrics_find(m, "braid_requests_total");
    c->m_cold = br_metrics_find(m, "braid_adapter_cold_start_seconds");
    c->m_loads = br_metrics_find(m, "braid_adapter_loads_total");
    c->m_evict = br_metrics_find(m, "braid_adapter_evictions_total");
    c->m_guard = br_metrics_find(m, "braid_guard_verdicts_total");
    double counts[BR_CONSOLE_NB + 1];
    int nc = br_metric_buckets(c->m_lat, c->bounds, counts, BR_CONSOLE_NB + 1);
    c->nb = nc > 0 && nc <= BR_CONSOLE_NB ? nc - 1 : 0;
    c->ntenants = br_tenants_count(o->tenants);
    br_status st = br_console_ring_init(&c->ring, BR_CONSOLE_SECONDS);
    if (st == BR_OK && c->ntenants) {
        c->tenant_hist = calloc(c->ntenants * TENANT_HIST, sizeof *c->tenant_hist);
        if (!c->tenant_hist) st = br_error(BR_ENOMEM, "console: out of memory");
    }
    if (st == BR_OK && pthread_create(&c->thread, NULL, sampler_main, c))
        st = br_error(BR_ENOMEM, "console: cannot start the sampler thread");
    if (st != BR_OK) {
        br_console_free(c);
        return st;
    }
    c->started = true;
    *out = c;
    return BR_OK;
}

void br_console_free(br_console_t *c)
{
    if (!c) return;
    if (c->started) {
        pthread_mutex_lock(&c->mu);
        c->stop = true;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
    }
    br_console_ring_free(&c->ring);
    free(c->tenant_hist);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Adapters as the registry knows them (every name, with owner and state). */
static br_console_adapter_t *gather_adapters(br_console_t *c, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    if (br_adapters_list(c->o.adapters, names, n) != BR_OK) return NULL;
    br_console_adapter_t *a = calloc(*n ? *n : 1, sizeof *a + 64);
    if (!a) return NULL;
    char *owners = (char *)(a + (*n ? *n : 1));
    for (size_t i = 0; i < *n; i++) {
        char *ow = owners + 64 * i;
        br_adapters_owner(c->o.adapters, (*names)[i], ow, 64);
        if (!ow[0]) {
            const br_tenant_t *t = br_tenants_owner(c->o.tenants, (*names)[i]);
            if (t) snprintf(ow, 64, "%s", t->name);
        }
        a[i].name = (*names)[i];
        a[i].owner = ow;
        br_adapters_info(c->o.adapters, (*names)[i], &a[i].info);
    }
    return a;
}

char *br_console_status(br_console_t *c)
{
    br_console_status_t st = {.model = c->o.model, .uptime_s = br_now() - c->t0, .adapter_budget = c->o.adapter_budget,
                              .guard = c->o.guard, .lat_bounds = c->bounds, .nb = c->nb};
    br_sched_load(c->o.sched, &st.waiting, &st.running);
    st.kv_total = br_sched_pages_total(c->o.sched);
    st.kv_used = (size_t)br_metric_sum(c->m_kv, NULL, NULL);
    br_adapters_stats(c->o.adapters, &st.adapters_loaded, &st.adapter_bytes);
    st.cold_starts = br_metric_sum(c->m_cold, NULL, NULL);
    st.loads_ok = br_metric_sum(c->m_loads, "result", "ok");
    st.loads_error = br_metric_sum(c->m_loads, "result", "error");
    st.evict_lru = br_metric_sum(c->m_evict, "reason", "lru");
    st.evict_idle = br_metric_sum(c->m_evict, "reason", "idle");
    st.evict_unload = br_metric_sum(c->m_evict, "reason", "unload");
    st.guard_pass = br_metric_sum(c->m_guard, "verdict", "pass");
    st.guard_flagged = br_metric_sum(c->m_guard, "verdict", "flagged");
    st.guard_error = br_metric_sum(c->m_guard, "verdict", "error");
    char **names = NULL;
    size_t nn = 0;
    br_console_adapter_t *ads = gather_adapters(c, &names, &nn);
    st.adapters = ads;
    st.nadapters = ads ? nn : 0;
    br_console_tenant_t *ts = calloc(c->ntenants ? c->ntenants : 1, sizeof *ts);
    char *text = NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; ts && i < c->ntenants; i++) {
        br_tenant_t *t = br_tenants_get(c->o.tenants, i);
        ts[i] = (br_console_tenant_t){.name = t->name, .admin = t->admin, .rps = t->rps, .tpm = t->tpm,
                                      .weight = t->weight, .requests = br_metric_sum(c->m_req, "tenant", t->name),
                                      .prompt_tokens = br_metric_sum(c->m_prompt, "tenant", t->name),
                                      .gen_tokens = br_metric_sum(c->m_gen, "tenant", t->name)};
        if (c->hist_n) {
            size_t oldest = (c->hist_head + TENANT_HIST - c->hist_n) % TENANT_HIST;
            ts[i].tokens_last_min = ts[i].prompt_tokens + ts[i].gen_tokens - c->tenant_hist[i * TENANT_HIST + oldest];
        }
    }
    st.tenants = ts;
    st.ntenants = ts ? c->ntenants : 0;
    st.ring = &c->ring;
    if (ads && ts) text = br_console_status_json(&st);
    pthread_mutex_unlock(&c->mu);
    free(ts);
    free(ads);
    br_adapters_free_names(names, nn);
    return text;
}
