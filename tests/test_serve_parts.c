/* serve/ parts that need no model: tenants (keys, ownership, rate limits), metrics text,
 * UTF-8 helpers, and the adapter registry (on-demand loading off the caller's thread, LRU within
 * a budget, idle drop, malformed adapters refused, register/unload). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/log.h"
#include "base/timer.h"
#include "harness.h"
#include "lora_fixture.h"
#include "lm/peft.h"
#include "nn/lora.h"
#include "serve/adapters.h"
#include "serve/metrics.h"
#include "serve/tenants.h"
#include "serve/util.h"

static void test_tenants(void)
{
    const char *js = "{\"tenants\": ["
                     "{\"name\": \"acme\", \"keys\": [\"sk-acme-0001\"], \"adapters\": [\"sql\"], \"rps\": 2},"
                     "{\"name\": \"beta\", \"keys\": [\"sk-beta-0001\", \"sk-beta-0002\"], \"tpm\": 600,"
                     " \"weight\": 2, \"admin\": true}]}";
    br_tenants_t *t = NULL;
    CHECK_OK(br_tenants_parse(&t, js, strlen(js), "t.json"));
    if (!t) return;
    CHECK_INT(br_tenants_count(t), 2);
    CHECK(!br_tenants_is_open(t));
    br_tenant_t *acme = br_tenants_auth(t, "Bearer sk-acme-0001");
    br_tenant_t *beta = br_tenants_auth(t, "Bearer sk-beta-0002");
    CHECK(acme && !strcmp(acme->name, "acme"));
    CHECK(beta && !strcmp(beta->name, "beta") && beta->admin && beta->weight == 2);
    CHECK(br_tenants_auth(t, "Bearer sk-acme-0002") == NULL);
    CHECK(br_tenants_auth(t, "sk-acme-0001") == NULL);
    CHECK(br_tenants_auth(t, NULL) == NULL);
    CHECK(br_tenants_may_use(t, acme, "sql"));
    CHECK(!br_tenants_may_use(t, beta, "sql"));
    CHECK(br_tenants_may_use(t, beta, "shared1")); /* owned by nobody */

    /* rps 2: a burst of 2, then 429 with Retry-After; refills with time */
    int ra = 0;
    CHECK_OK(br_tenants_admit(t, acme, 100.0, 10, &ra));
    CHECK_OK(br_tenants_admit(t, acme, 100.0, 10, &ra));
    CHECK_STATUS(br_tenants_admit(t, acme, 100.0, 10, &ra), BR_EBUSY);
    CHECK(ra >= 1);
    CHECK_OK(br_tenants_admit(t, acme, 100.6, 10, &ra));
    /* tpm 600 (10 tokens/s): prompt 500 ok, charge 200 more -> in debt -> wait ~11 s */
    CHECK_OK(br_tenants_admit(t, beta, 50.0, 500, &ra));
    br_tenants_charge(t, beta, 50.0, 200);
    CHECK_STATUS(br_tenants_admit(t, beta, 50.0, 1, &ra), BR_EBUSY);
    CHECK_MSG(ra >= 10 && ra <= 12, "retry after %d", ra);
    CHECK_OK(br_tenants_admit(t, beta, 50.0 + ra, 1, &ra));
    CHECK_STATUS(br_tenants_admit(t, beta, 1000.0, 700, &ra), BR_EINVAL); /* can never fit */
    br_tenants_free(t);

    const char *bad[] = {
        "{\"tenants\": []}",
        "{\"tenants\": [{\"name\": \"a\", \"keys\": []}]}",
        "{\"tenants\": [{\"name\": \"a b\", \"keys\": [\"12345678\"]}]}",
        "{\"tenants\": [{\"name\": \"a\", \"keys\": [\"short\"]}]}",
        "{\"tenants\": [{\"name\": \"a\", \"keys\": [\"12345678\"], \"rps\": -1}]}",
        "{\"tenants\": [{\"name\": \"a\", \"keys\": [\"12345678\"], \"colour\": 1}]}",
        "{\"tenants\": [{\"name\": \"a\", \"keys\": [\"12345678\"]}, {\"name\": \"b\", \"keys\": [\"12345678\"]}]}",
        "{\"tenants\": [{\"name\": \"a\", \"keys\": [\"12345678\"], \"adapters\": [\"x\"]},"
        " {\"name\": \"b\", \"keys\": [\"87654321\"], \"adapters\": [\"x\"]}]}",
        "[1, 2",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        br_tenants_t *b = NULL;
        br_status s = br_tenants_parse(&b, bad[i], strlen(bad[i]), "bad.json");
        CHECK_MSG(s == BR_EFORMAT && !b, "bad tenants file %zu accepted (%s)", i, br_status_name(s));
        CHECK_MSG(strstr(br_errmsg(), "bad.json") != NULL, "message lacks the file: %s", br_errmsg());
    }
    br_tenants_t *o = NULL;
    CHECK_OK(br_tenants_open(&o));
    CHECK(o && br_tenants_auth(o, NULL) && br_tenants_auth(o, NULL)->admin);
    br_tenants_free(o);
}

static void test_metrics(void)
{
    br_metrics_t *m = NULL;
    CHECK_OK(br_metrics_create(&m));
    br_metric_t *c = br_metrics_counter(m, "braid_requests_total", "Requests", "tenant,code");
    br_metric_t *g = br_metrics_gauge(m, "braid_queue_depth", "Waiting requests", "");
    double bounds[] = {0.1, 1};
    br_metric_t *h = br_metrics_histogram(m, "braid_latency_seconds", "Latency", "tenant", bounds, 2);
    br_metric_add(c, 1, "acme", "200");
    br_metric_add(c, 2, "acme", "200");
    br_metric_add(c, 1, "we\"ird", "429");
    br_metric_set(g, 5);
    br_metric_observe(h, 0.05, "acme");
    br_metric_observe(h, 0.5, "acme");
    br_metric_observe(h, 7, "acme");
    CHECK_NEAR(br_metric_get(c, "acme", "200"), 3, 0);
    CHECK_NEAR(br_metric_get(h, "acme"), 3, 0);
    char *text = br_metrics_render(m);
    CHECK(text != NULL);
    if (text) {
        CHECK(strstr(text, "# TYPE braid_requests_total counter\n") != NULL);
        CHECK(strstr(text, "braid_requests_total{tenant=\"acme\",code=\"200\"} 3\n") != NULL);
        CHECK(strstr(text, "braid_requests_total{tenant=\"we\\\"ird\",code=\"429\"} 1\n") != NULL);
        CHECK(strstr(text, "braid_queue_depth 5\n") != NULL);
        CHECK(strstr(text, "braid_latency_seconds_bucket{tenant=\"acme\",le=\"0.1\"} 1\n") != NULL);
        CHECK(strstr(text, "braid_latency_seconds_bucket{tenant=\"acme\",le=\"1\"} 2\n") != NULL);
        CHECK(strstr(text, "braid_latency_seconds_bucket{tenant=\"acme\",le=\"+Inf\"} 3\n") != NULL);
        CHECK(strstr(text, "braid_latency_seconds_count{tenant=\"acme\"} 3\n") != NULL);
        CHECK(strstr(text, "braid_latency_seconds_sum{tenant=\"acme\"} 7.55\n") != NULL);
    }
    free(text);
    br_metrics_free(m);
}

static void test_utf8(void)
{
    CHECK(br_serve_name_ok("sql-v2.1_x", 100));
    CHECK(!br_serve_name_ok("..", 100));
    CHECK(!br_serve_name_ok("a/b", 100));
    CHECK(!br_serve_name_ok("", 100));
    CHECK_INT(br_utf8_valid_len("h\xc3\xa9llo", 6), 6);
    CHECK_INT(br_utf8_valid_len("h\xc3", 2), 1);
    CHECK_INT(br_utf8_valid_len("a\xed\xa0\x80", 4), 1); /* surrogate */
    CHECK_INT(br_utf8_valid_len("a\xc0\xaf", 3), 1);     /* overlong */
    CHECK_INT(br_utf8_incomplete_tail("ab\xe2\x82", 4), 2);
    CHECK_INT(br_utf8_incomplete_tail("ab\xe2\x82\xac", 5), 0);
    CHECK_INT(br_utf8_incomplete_tail("ab", 2), 0);
    char out[64];
    size_t n = br_utf8_repair(out, "a\xff" "b", 3);
    CHECK_INT(n, 5);
    CHECK_STR(out, "a\xef\xbf\xbd" "b");
}


/* Polls acquire until the loader answers (at most ~5 s). */
static br_status acquire_polls(br_adapters_t *r, const char *name, const br_lora_adapter_t **a, int polls)
{
    br_status s = BR_EBUSY;
    for (int i = 0; i < polls && s == BR_EBUSY; i++) {
        s = br_adapters_acquire(r, name, a);
        if (s == BR_EBUSY) usleep(10000);
    }
    return s;
}
#define acquire_wait(r, n, a) acquire_polls(r, n, a, 500)

static void test_registry(void)
{
    char dir[] = "/tmp/braid_adapters_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char cmd[512];
    /* three valid copies of the fixture, one with broken shapes, one garbage */
    snprintf(cmd, sizeof cmd,
             "for n in a b c; do mkdir -p %s/$n && cp tests/ref/lora_peft/* %s/$n/; done && "
             "mkdir -p %s/bad && echo '{\"r\": 4, \"lora_alpha\": 8}' > %s/bad/adapter_config.json && "
             "echo junk > %s/bad/adapter_model.safetensors && mkdir -p %s/notadapter",
             dir, dir, dir, dir, dir, dir);
    CHECK(system(cmd) == 0);
    br_lora_shapes_t s = fixture_shapes();
    br_lora_adapter_t *probe = NULL;
    CHECK_OK(br_lora_load(&probe, "tests/ref/lora_peft", &s));
    size_t one = probe ? br_lora_bytes(probe) : 1000;
    br_lora_free(probe);

    br_metrics_t *m = NULL;
    CHECK_OK(br_metrics_create(&m));
    /* run-time registrations anywhere under / (the root itself is tested in test_serve_hostile) */
    br_adapters_opts_t o = {.dir = dir, .shapes = s, .mem_budget = 2 * one + one / 2, .idle_s = 0, .metrics = m, .root = "/"};
    char fixture_abs[4096];
    CHECK(realpath("tests/ref/lora_peft", fixture_abs) != NULL);
    br_adapters_t *r = NULL;
    CHECK_OK(br_adapters_create(&r, &o));
    if (!r) return;
    char **names = NULL;
    size_t nn = 0;
    CHECK_OK(br_adapters_list(r, &names, &nn));
    CHECK_INT(nn, 4); /* a b bad c */
    if (nn == 4) CHECK(!strcmp(names[0], "a") && !strcmp(names[2], "bad") && !strcmp(names[3], "c"));
    br_adapters_free_names(names, nn);

    CHECK_STATUS(br_adapters_lookup(r, "nope"), BR_ENOTFOUND);
    CHECK_STATUS(br_adapters_lookup(r, "../etc"), BR_EINVAL);
    CHECK_OK(br_adapters_lookup(r, "a"));
    const br_lora_adapter_t *a = NULL, *b = NULL, *c = NULL;
    /* first acquire never blocks: it queues the load */
    double t0 = br_now();
    br_status first = br_adapters_acquire(r, "a", &a);
    CHECK(br_now() - t0 < 0.05);
    CHECK(first == BR_EBUSY || first == BR_OK);
    if (first == BR_OK) br_adapters_release(r, "a");
    CHECK_OK(acquire_wait(r, "a", &a));
    CHECK(a && !strcmp(a->name, "a"));
    CHECK_OK(acquire_wait(r, "b", &b));
    /* budget holds 2: with a and b pinned, c must wait */
    CHECK_STATUS(acquire_polls(r, "c", &c, 20), BR_EBUSY);
    br_adapters_release(r, "a");
    CHECK_OK(acquire_wait(r, "c", &c)); /* evicts a (LRU, unpinned) */
    size_t loaded = 0, bytes = 0;
    br_adapters_stats(r, &loaded, &bytes);
    CHECK_INT(loaded, 2);
    CHECK(bytes <= o.mem_budget);
    br_adapters_release(r, "b");
    br_adapters_release(r, "c");

    /* malformed adapter: a clear error, then the registry still serves others */
    const br_lora_adapter_t *bad = NULL;
    br_status sb = acquire_wait(r, "bad", &bad);
    CHECK_MSG(sb == BR_EFORMAT, "bad adapter: %s (%s)", br_status_name(sb), br_errmsg());
    CHECK(strstr(br_errmsg(), "adapter_model.safetensors") != NULL);
    CHECK_STATUS(br_adapters_acquire(r, "notadapter", &bad), BR_ENOTFOUND);
    CHECK_OK(acquire_wait(r, "b", &b));
    br_adapters_release(r, "b");

    /* idle drop: everything unpinned goes */
    br_adapters_expire(r, br_now() + 1e6);
    br_adapters_stats(r, &loaded, &bytes);
    CHECK_INT(loaded, 2); /* idle_s = 0 disables it */

    /* a registration that cannot load (memory full of pinned adapters: 503, try again) leaves
     * no name behind: the same name then registers another folder */
    CHECK_OK(acquire_wait(r, "b", &b));
    CHECK_OK(acquire_wait(r, "c", &c));
    snprintf(cmd, sizeof cmd, "%s/a", dir);
    CHECK_STATUS(br_adapters_register(r, "dyn0", fixture_abs, ""), BR_ENOMEM);
    CHECK_STATUS(br_adapters_lookup(r, "dyn0"), BR_ENOTFOUND);
    br_adapters_release(r, "b");
    br_adapters_release(r, "c");
    CHECK_OK(br_adapters_register(r, "dyn0", cmd, ""));
    CHECK_OK(br_adapters_unload(r, "dyn0"));

    /* run-time registration and unload */
    CHECK_OK(br_adapters_register(r, "dyn", fixture_abs, "acme"));
    char owner[64];
    br_adapters_owner(r, "dyn", owner, sizeof owner);
    CHECK_STR(owner, "acme");
    CHECK_STATUS(br_adapters_register(r, "dyn", dir, ""), BR_EBUSY);
    CHECK_STATUS(br_adapters_register(r, "x", "/nonexistent/folder", ""), BR_ENOTFOUND);
    snprintf(cmd, sizeof cmd, "%s/bad", dir);
    CHECK_STATUS(br_adapters_register(r, "bad2", cmd, ""), BR_EFORMAT);
    CHECK_OK(acquire_wait(r, "dyn", &a));
    CHECK_OK(br_adapters_unload(r, "dyn")); /* pinned: goes at release */
    CHECK_STATUS(br_adapters_acquire(r, "dyn", &b), BR_ENOTFOUND);
    br_adapters_release(r, "dyn");
    CHECK_STATUS(br_adapters_lookup(r, "dyn"), BR_ENOTFOUND);
    CHECK_OK(br_adapters_unload(r, "a")); /* folder adapter: unloaded but still known */
    CHECK_OK(br_adapters_lookup(r, "a"));
    CHECK_STATUS(br_adapters_unload(r, "zzz"), BR_ENOTFOUND);
    char *text = br_metrics_render(m);
    CHECK(text && strstr(text, "braid_adapter_cold_start_seconds_count") != NULL);
    CHECK(text && strstr(text, "braid_adapter_evictions_total{reason=\"lru\"}") != NULL);
    free(text);
    br_adapters_free(r);

    /* idle drop with a short idle time */
    o.idle_s = 0.2;
    o.mem_budget = 0;
    CHECK_OK(br_adapters_create(&r, &o));
    CHECK_OK(acquire_wait(r, "a", &a));
    br_adapters_release(r, "a");
    br_adapters_expire(r, br_now() + 0.5);
    br_adapters_stats(r, &loaded, &bytes);
    CHECK_INT(loaded, 0);
    CHECK_INT(bytes, 0);
    br_adapters_free(r);
    br_metrics_free(m);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    br_log_set_level(BR_LOG_WARN);
    test_tenants();
    test_metrics();
    test_utf8();
    test_registry();
    return th_exit();
}
