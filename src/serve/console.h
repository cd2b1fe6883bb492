/* The web console of `braid serve` (issue 19; docs/serve.md, "Console").
 *
 *   GET /            web/console/index.html, embedded at build time (scripts/embed_web.sh
 *   GET /console/F   writes build/gen/console_files.inc from web/console/), no key needed,
 *                    served with a strict Content-Security-Policy (BR_CONSOLE_CSP)
 *   GET /v1/status   the operator view's JSON (admin keys only, the rules of /metrics)
 *
 * The status is built from what the server keeps anyway (metrics registry, scheduler load,
 * adapter registry, tenants) plus a ring of per-second samples that a sampler thread takes
 * (tokens/s, queue, running, KV pages, latency histogram counts), so the page can chart the
 * last minutes without parsing Prometheus text.  The JSON itself comes from pure functions
 * (br_console_status_json, br_console_quantile, the ring), tested without sockets. */
#ifndef BR_SERVE_CONSOLE_H
#define BR_SERVE_CONSOLE_H
#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"
#include "serve/adapters.h"
#include "serve/metrics.h"
#include "serve/sched.h"
#include "serve/tenants.h"

/* ---- static files ---- */

typedef struct {
    const char *path;          /* "/index.html", "/console/app.js", ... */
    const unsigned char *data;
    size_t len;
} br_console_file_t;

/* default-src 'self', nothing inline, no other host, no framing. */
extern const char BR_CONSOLE_CSP[];
/* The embedded file a GET of `url` serves ("/" is /index.html); NULL when none (also in builds
 * without the generated table, e.g. the fuzzers'). */
const br_console_file_t *br_console_file(const char *url);
/* Content-Type by extension (html, css, js/mjs, svg, png, json; else application/octet-stream). */
const char *br_console_content_type(const char *path);

/* ---- per-second samples ---- */

#define BR_CONSOLE_NB 16       /* latency histogram buckets kept (bounds + the +Inf bucket) */
#define BR_CONSOLE_SECONDS 300 /* samples kept: the last five minutes */

typedef struct {
    double t;                  /* seconds (monotonic) */
    double gen_tokens;         /* totals since start */
    double lat[BR_CONSOLE_NB]; /* request latency: observations per bucket, totals since start */
    double ttft[BR_CONSOLE_NB];
    double queue, running, kv_used;
} br_console_sample_t;

typedef struct {
    br_console_sample_t *v;
    size_t cap, n, head;       /* head: where the next sample goes */
} br_console_ring_t;

br_status br_console_ring_init(br_console_ring_t *r, size_t cap);
void br_console_ring_free(br_console_ring_t *r);
void br_console_ring_push(br_console_ring_t *r, const br_console_sample_t *s);
/* The sample `ago` pushes back (0: the newest); NULL past the oldest. */
const br_console_sample_t *br_console_ring_at(const br_console_ring_t *r, size_t ago);

/* Quantile q of a histogram given per-bucket counts[0..nb] (counts[nb]: above the last bound),
 * interpolated linearly inside the bucket as Prometheus' histogram_quantile does (the first
 * bucket starts at 0; a quantile in the +Inf bucket is the last bound).  NaN when empty. */
double br_console_quantile(const double *bounds, const double *counts, int nb, double q);

/* ---- the status document ---- */

typedef struct {
    const char *name, *owner;  /* owner "" when shared */
    br_adapter_info_t info;
} br_console_adapter_t;

typedef struct {
    const char *name;
    bool admin;
    double rps, tpm, weight;   /* limits (0: none) */
    double requests, prompt_tokens, gen_tokens, tokens_last_min;
} br_console_tenant_t;

typedef struct {
    const char *model;
    double uptime_s;
    size_t waiting, running, kv_used, kv_total;
    size_t adapters_loaded, adapter_bytes;
    double adapter_budget;     /* bytes; 0: unlimited */
    double cold_starts, loads_ok, loads_error, evict_lru, evict_idle, evict_unload;
    bool guard;
    double guard_pass, guard_flagged, guard_error;
    const br_console_adapter_t *adapters;
    size_t nadapters;
    const br_console_tenant_t *tenants;
    size_t ntenants;
    const br_console_ring_t *ring;   /* may be empty */
    const double *lat_bounds;        /* nb bounds of the latency / TTFT histograms */
    int nb;
} br_console_status_t;

/* The JSON of GET /v1/status (malloc'd; NULL when out of memory):
 *   {"model", "uptime_s", "queue": {"waiting", "running"}, "kv_pages": {"used", "total"},
 *    "adapters": {"loaded", "bytes", "budget_bytes", "cold_starts", "loads": {"ok", "error"},
 *                 "evictions": {"lru", "idle", "unload"},
 *                 "list": [{"name", "owner", "state", "bytes", "pins", "idle_s"}]},
 *    "guard": {"enabled", "pass", "flagged", "error"},
 *    "tenants": [{"name", "admin", "rps", "tpm", "weight", "requests", "prompt_tokens",
 *                 "generation_tokens", "tokens_last_minute"}],
 *    "latency": {"window_s", "requests", "p50", "p90", "p99", "ttft_p50", "ttft_p99"}
 *                                                    (seconds over the last minute; null: none),
 *    "series": {"t", "tokens_per_s", "queue", "running", "kv_used", "p50", "p99"}}
 *                                     (one value per second, oldest first; t: seconds ago <= 0;
 *                                      p50/p99 over the 10 s ending at each second, null: none) */
char *br_console_status_json(const br_console_status_t *st);

/* ---- the live side: a sampler thread over the server's parts ---- */

typedef struct {
    const char *model;
    br_metrics_t *metrics;
    br_sched_t *sched;
    br_adapters_t *adapters;
    br_tenants_t *tenants;
    double adapter_budget;     /* bytes; 0: unlimited */
    bool guard;
} br_console_opts_t;

typedef struct br_console br_console_t;
br_status br_console_create(br_console_t **out, const br_console_opts_t *o);
void br_console_free(br_console_t *c); /* stops the sampler; NULL is a no-op */
/* Takes a sample now (the sampler does it once a second; tests call it directly). */
void br_console_sample(br_console_t *c);
/* The status document now (malloc'd), NULL when out of memory. */
char *br_console_status(br_console_t *c);
#endif
