/* The web console (issue 19): the status document and its helpers as pure functions (no
 * sockets), the routes over HTTP (static files, content types, CSP, /v1/status access), and
 * the page itself in a real browser (tests/console/console.mjs: Debian's chromium driven by
 * npm's puppeteer-core; skipped with a visible count when either is absent). */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "serve/fixture.h"
#include "base/log.h"
#include "base/timer.h"
#include "serve/console.h"
#include "serve/server.h"

/* ---- pure functions ---- */

static void test_quantile(void)
{
    const double b[] = {0.1, 0.5, 1.0};
    struct { double counts[4], q, want; } rows[] = {
        {{10, 0, 0, 0}, 0.5, 0.05},   /* inside the first bucket: from 0 */
        {{0, 10, 0, 0}, 0.5, 0.3},    /* halfway through (0.1, 0.5] */
        {{5, 5, 0, 0}, 0.5, 0.1},     /* exactly the first bucket's end */
        {{0, 0, 4, 0}, 0.25, 0.625},
        {{0, 0, 0, 3}, 0.5, 1.0},     /* +Inf bucket: the last bound */
        {{1, 0, 0, 99}, 0.99, 1.0},
        {{50, 50, 0, 0}, 0.99, 0.492},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        CHECK_NEAR(br_console_quantile(b, rows[i].counts, 3, rows[i].q), rows[i].want, 1e-9);
    double empty[4] = {0};
    CHECK(isnan(br_console_quantile(b, empty, 3, 0.5)));
}

static void test_ring(void)
{
    br_console_ring_t r;
    CHECK(br_console_ring_init(&r, 0) == BR_EINVAL);
    CHECK_OK(br_console_ring_init(&r, 3));
    CHECK(br_console_ring_at(&r, 0) == NULL);
    for (int i = 1; i <= 5; i++) br_console_ring_push(&r, &(br_console_sample_t){.t = i});
    CHECK_INT(r.n, 3);
    CHECK_NEAR(br_console_ring_at(&r, 0)->t, 5, 0);
    CHECK_NEAR(br_console_ring_at(&r, 2)->t, 3, 0);
    CHECK(br_console_ring_at(&r, 3) == NULL);
    br_console_ring_free(&r);
}

static void test_files(void)
{
    struct { const char *path, *type; } rows[] = {
        {"/index.html", "text/html; charset=utf-8"}, {"/console/app.js", "text/javascript; charset=utf-8"},
        {"/console/style.css", "text/css; charset=utf-8"}, {"/x.mjs", "text/javascript; charset=utf-8"},
        {"/a.svg", "image/svg+xml"}, {"/a.png", "image/png"}, {"/a.json", "application/json"},
        {"/a", "application/octet-stream"}, {"/a.b/c", "application/octet-stream"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) CHECK_STR(br_console_content_type(rows[i].path), rows[i].type);
    const br_console_file_t *f = br_console_file("/");
    CHECK(f && !strcmp(f->path, "/index.html") && f->len > 100 && strstr((const char *)f->data, "<!doctype html>"));
    CHECK(br_console_file("/console/app.js") && br_console_file("/console/api.js") && br_console_file("/console/style.css"));
    CHECK(!br_console_file("/console/") && !br_console_file("/console/../index.html") && !br_console_file("/app.js"));
    /* nothing inline: the page passes its own CSP */
    CHECK(f && !strstr((const char *)f->data, "<script>") && !strstr((const char *)f->data, "style=") &&
          !strstr((const char *)f->data, "onclick"));
    CHECK(strstr(BR_CONSOLE_CSP, "default-src 'self'") && !strstr(BR_CONSOLE_CSP, "unsafe"));
}

/* The registry reads the status uses: a label must match whole (tenant "a" is not "ab" nor
 * adapter "a"), histogram buckets are summed over series. */
static void test_metric_reads(void)
{
    br_metrics_t *m = NULL;
    CHECK_OK(br_metrics_create(&m));
    br_metric_t *c = br_metrics_counter(m, "t_total", "test", "tenant,adapter");
    br_metric_add(c, 2, "a", "x");
    br_metric_add(c, 3, "a", "a");
    br_metric_add(c, 5, "ab", "a");
    br_metric_add(c, 7, "b\"a", "y");
    CHECK(br_metrics_find(m, "t_total") == c && br_metrics_find(m, "t") == NULL);
    CHECK_NEAR(br_metric_sum(c, "tenant", "a"), 5, 0);
    CHECK_NEAR(br_metric_sum(c, "tenant", "ab"), 5, 0);
    CHECK_NEAR(br_metric_sum(c, "adapter", "a"), 8, 0);
    CHECK_NEAR(br_metric_sum(c, "tenant", "b\"a"), 7, 0);
    CHECK_NEAR(br_metric_sum(c, NULL, NULL), 17, 0);
    CHECK_NEAR(br_metric_sum(NULL, NULL, NULL), 0, 0);
    const double bounds[] = {1, 2};
    br_metric_t *h = br_metrics_histogram(m, "h_seconds", "test", "tenant", bounds, 2);
    br_metric_observe(h, 0.5, "a");
    br_metric_observe(h, 1.5, "b");
    br_metric_observe(h, 9, "b");
    br_metric_observe(h, 0.1, "b");
    double bo[2], co[3];
    CHECK_INT(br_metric_buckets(h, bo, co, 3), 3);
    CHECK(bo[0] == 1 && bo[1] == 2 && co[0] == 2 && co[1] == 1 && co[2] == 1);
    CHECK_INT(br_metric_buckets(h, bo, co, 2), 0);
    CHECK_INT(br_metric_buckets(c, NULL, co, 3), 0);
    CHECK_NEAR(br_metric_sum(h, "tenant", "b"), 3, 0);
    char *text = br_metrics_render(m); /* reading leaves the exposition as it was */
    CHECK(text && strstr(text, "h_seconds_bucket{tenant=\"b\",le=\"2\"} 2"));
    free(text);
    br_metrics_free(m);
}

static json_t *path(json_t *j, const char *a, const char *b)
{
    json_t *x = json_object_get(j, a);
    return b ? json_object_get(x, b) : x;
}

/* A hand-made status: every field lands where the page reads it, percentiles come from the
 * histogram deltas of the last minute, tokens/s from the per-second differences. */
static void test_status_json(void)
{
    const double bounds[] = {0.1, 1, 10};
    br_console_ring_t r;
    CHECK_OK(br_console_ring_init(&r, 120));
    for (int i = 0; i <= 90; i++) {
        br_console_sample_t s = {.t = 1000 + i, .gen_tokens = 5.0 * i, .queue = i == 90 ? 3 : 0, .running = 1, .kv_used = 7};
        /* one request a second, all in (0.1, 1]; from second 60 on, in (1, 10] */
        s.lat[1] = i < 60 ? i : 60;
        s.lat[2] = i < 60 ? 0 : i - 60;
        s.ttft[0] = i;
        br_console_ring_push(&r, &s);
    }
    br_console_adapter_t ads[] = {{"a1", "acme", {.state = "ready", .bytes = 2000000, .pins = 1, .idle_s = 4}},
                                  {"shared1", "", {.state = "unloaded"}}};
    br_console_tenant_t ts[] = {{"acme", false, 5, 20000, 1, 12, 300, 200, 120}, {"ops", true, 0, 0, 1, 0, 0, 0, 0}};
    br_console_status_t st = {.model = "seed", .uptime_s = 91, .waiting = 3, .running = 1, .kv_used = 7, .kv_total = 64,
                              .adapters_loaded = 1, .adapter_bytes = 2000000, .adapter_budget = 64e6, .cold_starts = 2,
                              .loads_ok = 2, .loads_error = 1, .evict_lru = 1, .evict_idle = 0, .evict_unload = 3,
                              .guard = true, .guard_pass = 9, .guard_flagged = 1, .guard_error = 0, .adapters = ads,
                              .nadapters = 2, .tenants = ts, .ntenants = 2, .ring = &r, .lat_bounds = bounds, .nb = 3};
    char *text = br_console_status_json(&st);
    json_error_t e;
    json_t *j = text ? json_loads(text, 0, &e) : NULL;
    CHECK_MSG(j != NULL, "status is JSON: %s", text ? e.text : "NULL");
    if (j) {
        CHECK_STR(json_string_value(path(j, "model", NULL)), "seed");
        CHECK_INT(json_integer_value(path(j, "queue", "waiting")), 3);
        CHECK_INT(json_integer_value(path(j, "kv_pages", "total")), 64);
        json_t *ad = path(j, "adapters", NULL);
        CHECK_NEAR(json_number_value(json_object_get(ad, "budget_bytes")), 64e6, 0);
        CHECK_NEAR(json_number_value(path(ad, "evictions", "unload")), 3, 0);
        CHECK_NEAR(json_number_value(path(ad, "loads", "error")), 1, 0);
        json_t *l0 = json_array_get(json_object_get(ad, "list"), 0), *l1 = json_array_get(json_object_get(ad, "list"), 1);
        CHECK_STR(json_string_value(json_object_get(l0, "state")), "ready");
        CHECK_INT(json_integer_value(json_object_get(l0, "bytes")), 2000000);
        CHECK_STR(json_string_value(json_object_get(l1, "owner")), "");
        CHECK(json_is_true(path(j, "guard", "enabled")));
        CHECK_NEAR(json_number_value(path(j, "guard", "flagged")), 1, 0);
        json_t *t0 = json_array_get(json_object_get(j, "tenants"), 0);
        CHECK_NEAR(json_number_value(json_object_get(t0, "tpm")), 20000, 0);
        CHECK_NEAR(json_number_value(json_object_get(t0, "tokens_last_minute")), 120, 0);
        CHECK(json_is_true(json_object_get(json_array_get(json_object_get(j, "tenants"), 1), "admin")));
        /* last minute: seconds 30..90, 30 requests in (0.1, 1] and 30 in (1, 10] */
        json_t *lat = path(j, "latency", NULL);
        CHECK_NEAR(json_number_value(json_object_get(lat, "window_s")), 60, 0);
        CHECK_NEAR(json_number_value(json_object_get(lat, "requests")), 60, 0);
        CHECK_NEAR(json_number_value(json_object_get(lat, "p50")), 1.0, 1e-9);
        CHECK_NEAR(json_number_value(json_object_get(lat, "p90")), 1 + 9 * 0.8, 1e-9);
        CHECK_NEAR(json_number_value(json_object_get(lat, "ttft_p50")), 0.05, 1e-9);
        json_t *se = path(j, "series", NULL);
        CHECK_INT(json_array_size(json_object_get(se, "t")), 91);
        CHECK_NEAR(json_number_value(json_array_get(json_object_get(se, "t"), 0)), -90, 0);
        CHECK_NEAR(json_number_value(json_array_get(json_object_get(se, "tokens_per_s"), 50)), 5, 1e-9);
        CHECK_NEAR(json_number_value(json_array_get(json_object_get(se, "queue"), 90)), 3, 0);
        CHECK(json_is_null(json_array_get(json_object_get(se, "p50"), 0))); /* nothing before the first sample */
        CHECK_NEAR(json_number_value(json_array_get(json_object_get(se, "p99"), 90)), 9.91, 1e-9);
        json_decref(j);
    }
    free(text);
    /* an empty ring: nulls, not NaN (which JSON cannot carry) */
    br_console_ring_t empty;
    CHECK_OK(br_console_ring_init(&empty, 4));
    st.ring = &empty;
    text = br_console_status_json(&st);
    j = text ? json_loads(text, 0, &e) : NULL;
    CHECK(j && json_is_null(path(j, "latency", "p50")) && json_array_size(path(j, "series", "t")) == 0);
    json_decref(j);
    free(text);
    br_console_ring_free(&empty);
    br_console_ring_free(&r);
}

/* ---- over HTTP ---- */

typedef struct {
    long status;
    char ctype[128], csp[512];
    size_t len;
} head_t;

static size_t on_head(char *p, size_t sz, size_t n, void *ud)
{
    head_t *h = ud;
    size_t len = sz * n;
    while (len && (p[len - 1] == '\r' || p[len - 1] == '\n')) len--;
    if (!strncasecmp(p, "Content-Type: ", 14)) snprintf(h->ctype, sizeof h->ctype, "%.*s", (int)(len - 14), p + 14);
    if (!strncasecmp(p, "Content-Security-Policy: ", 25)) snprintf(h->csp, sizeof h->csp, "%.*s", (int)(len - 25), p + 25);
    return sz * n;
}

static size_t count_body(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    ((head_t *)ud)->len += sz * n;
    return sz * n;
}

static head_t get_head(const char *url_path)
{
    head_t h = {0};
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, url_path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_head);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, count_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &h);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h.status);
    curl_easy_cleanup(c);
    return h;
}

static void test_routes(void)
{
    struct { const char *path, *type; } rows[] = {
        {"/", "text/html; charset=utf-8"}, {"/index.html", "text/html; charset=utf-8"},
        {"/console/app.js", "text/javascript; charset=utf-8"}, {"/console/style.css", "text/css; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        head_t h = get_head(rows[i].path); /* no key: the files hold no data */
        CHECK_MSG(h.status == 200 && !strcmp(h.ctype, rows[i].type) && h.len == br_console_file(rows[i].path)->len,
                  "%s: %ld %s %zu bytes", rows[i].path, h.status, h.ctype, h.len);
        CHECK_STR(h.csp, BR_CONSOLE_CSP);
    }
    CHECK_INT(get_head("/console/nope.js").status, 404);
    resp_t r = http("POST", "/", NULL, "{}");
    CHECK(r.status == 405);
    free(r.body);
    /* /v1/status: the rules of /metrics */
    r = http("GET", "/v1/status", NULL, NULL);
    CHECK(is_error(&r, 401, "invalid_api_key"));
    free(r.body);
    r = http("GET", "/v1/status", "sk-acme-test-1", NULL);
    CHECK(is_error(&r, 403, NULL));
    free(r.body);
    r = http("GET", "/v1/status", "sk-ops-test-01", NULL);
    json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    CHECK_MSG(j && json_is_array(path(j, "adapters", "list")) && json_array_size(json_object_get(j, "tenants")) == 4 &&
              json_integer_value(path(j, "kv_pages", "total")) > 0 && json_is_true(path(j, "guard", "enabled")),
              "status: %ld %.300s", r.status, r.body ? r.body : "");
    json_decref(j);
    free(r.body);
}

/* After a request on a1: the status shows it loaded, a cold start, the tenant's tokens, and a
 * sample with its latency. */
static void test_status_live(br_server_t *s)
{
    (void)s;
    resp_t r = http("POST", "/v1/completions", "sk-acme-test-1",
                    "{\"model\": \"a1\", \"prompt\": \"hello\", \"max_tokens\": 4, \"temperature\": 0}");
    CHECK_MSG(r.status == 200, "completion: %ld %s", r.status, r.body ? r.body : "");
    free(r.body);
    usleep(1300 * 1000); /* the sampler's next second */
    r = http("GET", "/v1/status", "sk-ops-test-01", NULL);
    json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    json_t *a1 = NULL, *acme = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(path(j, "adapters", "list"), i, v) if (!strcmp(json_string_value(json_object_get(v, "name")), "a1")) a1 = v;
    json_array_foreach(json_object_get(j, "tenants"), i, v) if (!strcmp(json_string_value(json_object_get(v, "name")), "acme")) acme = v;
    CHECK_MSG(a1 && !strcmp(json_string_value(json_object_get(a1, "state")), "ready") &&
              json_integer_value(json_object_get(a1, "bytes")) > 0 && !strcmp(json_string_value(json_object_get(a1, "owner")), "acme"),
              "a1: %s", r.body ? r.body : "");
    CHECK(json_number_value(path(j, "adapters", "cold_starts")) >= 1);
    CHECK(acme && json_number_value(json_object_get(acme, "generation_tokens")) >= 1 &&
          json_number_value(json_object_get(acme, "requests")) >= 1 &&
          json_number_value(json_object_get(acme, "tokens_last_minute")) >= 1);
    CHECK(json_number_value(path(j, "latency", "requests")) >= 1 && json_is_number(path(j, "latency", "p50")));
    CHECK(json_number_value(path(j, "guard", "pass")) + json_number_value(path(j, "guard", "flagged")) >= 1);
    json_decref(j);
    free(r.body);
}

/* ---- in a browser ---- */

#define BROWSER_CHECKS 27 /* "ok" lines tests/console/console.mjs prints when all pass */

static void test_browser(void)
{
    const char *pup = getenv("BRAID_PUPPETEER_DIR");
    if (!pup) pup = ".npm-local/node_modules/puppeteer-core";
    char pkg[512];
    snprintf(pkg, sizeof pkg, "%s/package.json", pup);
    if (access("/usr/bin/chromium", X_OK) || system("command -v node >/dev/null 2>&1") || access(pkg, R_OK)) {
        SKIP("chromium (/usr/bin/chromium), node or puppeteer-core (%s) absent: %d browser checks skipped", pup,
             BROWSER_CHECKS);
        th_skipped += BROWSER_CHECKS - 1; /* the summary counts every check not run */
        return;
    }
    const char *out = "build/test-artefacts/console";
    if (system("mkdir -p build/test-artefacts/console && rm -f build/test-artefacts/console/*.png")) {
        CHECK_MSG(false, "cannot create %s", out);
        return;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "timeout 240 node tests/console/console.mjs http://127.0.0.1:%d %s %s 2>&1", port, pup, out);
    FILE *f = popen(cmd, "r");
    char line[2048];
    int seen = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "ok - ", 5)) {
            th_passed++;
            seen++;
        } else if (!strncmp(line, "not ok - ", 9)) {
            TH_RECORD(false, "browser: %s", line + 9);
            seen++;
        } else {
            fputs(line, stderr);
        }
    }
    int rc = f ? pclose(f) : -1;
    CHECK_MSG(rc == 0 && seen == BROWSER_CHECKS, "the browser script exited %d after %d checks", rc, seen);
    fprintf(stderr, "console screenshots: %s/{playground,operator,phone}.png\n", out);
}

int main(void)
{
    br_log_set_level(BR_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    test_quantile();
    test_ring();
    test_metric_reads();
    test_files();
    test_status_json();
    CHECK_OK(fixture_setup("braid_console_"));
    br_server_opts_t o = {.model_dir = model_dir, .adapters_dir = adapters_dir, .tenants_file = tenants_path, .port = 0,
                          .max_body = 64 * 1024, .kv_mem_mb = 8, .adapter_mem_mb = 64, .guard = "parden"};
    br_server_t *s = NULL;
    CHECK_OK(br_server_start(&s, &o));
    if (s) {
        port = br_server_port(s);
        test_routes();
        test_status_live(s);
        test_browser();
        br_server_free(s);
    }
    fixture_teardown();
    return th_exit();
}
