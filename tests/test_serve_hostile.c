/* braid serve probed as an attacker and a careless user would (issue 20), over loopback only and
 * in a few seconds: slow-drip connections and a one-address flood (per-IP limit, head and body
 * deadlines), /metrics cardinality and access, non-finite logits, chunked bodies over the limit,
 * run-time adapter paths (root, links, no content echoed, NUL in names), and the cases that
 * already held: oversized head/URL/body, deep JSON, NaN and huge numbers, a disconnect
 * mid-stream (KV pages back to zero), tenant isolation (/v1/models; 404, not 403). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/timer.h"
#include "harness.h"
#include "text/tokenizer.h"
#include "serve/metrics.h"
#include "serve/sched.h"
#include "serve/server.h"
#include "serve/tenants.h"

#include "serve/fixture.h"

#define HEAD_S 0.6
#define BODY_S 0.8
#define PER_IP 8
#define MAX_CONN 24

static int metrics_port;

/* ---- raw sockets (a client address of our choosing: 127.0.0.2 is another address on lo) ---- */

static int connect_from(const char *src, int to_port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &a.sin_addr);
    struct sockaddr_in b = {.sin_family = AF_INET, .sin_port = htons((uint16_t)to_port)};
    inet_pton(AF_INET, "127.0.0.1", &b.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || connect(fd, (struct sockaddr *)&b, sizeof b)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads until the peer closes or timeout_s passes; returns bytes read (-1: still open). */
static ssize_t read_all(int fd, char *out, size_t cap, double timeout_s)
{
    size_t n = 0;
    double t0 = br_now();
    while (br_now() - t0 < timeout_s) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t k = recv(fd, out + n, cap - 1 - n, 0);
        if (k <= 0) {
            out[n] = 0;
            return (ssize_t)n;
        }
        n += (size_t)k;
        if (n + 1 >= cap) break;
    }
    out[n] = 0;
    return -1;
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* A whole request from src; the response (status line first) into out. */
static long raw_request(const char *src, const char *req, size_t len, char *out, size_t cap)
{
    int fd = connect_from(src, port);
    if (fd < 0) return -1;
    long status = -1;
    if (send_all(fd, req, len)) { /* no half-close: the server reads that as the client gone */
        read_all(fd, out, cap, 5);
        if (!strncmp(out, "HTTP/1.", 7)) status = strtol(out + 9, NULL, 10);
    }
    close(fd);
    return status;
}

static long health_from(const char *src)
{
    char buf[4096];
    const char *req = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    return raw_request(src, req, strlen(req), buf, sizeof buf);
}

/* ---- 1. keyless connection exhaustion ---- */

typedef struct {
    int fd;
    bool closed;
    double closed_after;
} drip_t;

/* MAX_CONN connections that send one byte of a never-ending head every 50 ms: the server must close
 * each within the head deadline although bytes keep coming; while they are open, the one-address
 * flood takes at most PER_IP slots and another address is served. */
static void test_slow_drip_and_flood(void)
{
    drip_t d[MAX_CONN];
    int opened = 0;
    for (int i = 0; i < MAX_CONN; i++) {
        d[i] = (drip_t){.fd = connect_from("127.0.0.1", port)};
        if (d[i].fd >= 0) opened++;
    }
    CHECK(opened == MAX_CONN);
    const char *head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    double t0 = br_now();
    /* another address, while the flood is open */
    usleep(100000);
    long h = health_from("127.0.0.2");
    CHECK_MSG(h == 200, "/health from another address during a one-address flood: %ld", h);
    size_t pos = 0;
    int open_n = MAX_CONN;
    while (open_n > 0 && br_now() - t0 < HEAD_S + 2.0) {
        for (int i = 0; i < MAX_CONN; i++) {
            if (d[i].fd < 0 || d[i].closed) continue;
            char ch = pos < strlen(head) ? head[pos] : 'a';
            char b[256];
            ssize_t k = send(d[i].fd, &ch, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            ssize_t r = recv(d[i].fd, b, sizeof b, MSG_DONTWAIT);
            if (k < 0 || r == 0 || (r > 0 && strstr(b, "408"))) {
                d[i].closed = true;
                d[i].closed_after = br_now() - t0;
                open_n--;
            }
        }
        pos++;
        usleep(50000);
    }
    double worst = 0;
    for (int i = 0; i < MAX_CONN; i++) {
        if (d[i].closed && d[i].closed_after > worst) worst = d[i].closed_after;
        if (d[i].fd >= 0) close(d[i].fd);
    }
    CHECK_MSG(open_n == 0, "%d dripping connections still open after %.1f s (head deadline %.1f s)", open_n,
              br_now() - t0, HEAD_S);
    CHECK_MSG(worst < HEAD_S + 1.0, "the last dripping connection closed after %.2f s (deadline %.1f s)", worst, HEAD_S);
    /* and the flooding address is served again once they are gone */
    usleep(200000);
    CHECK_INT(health_from("127.0.0.1"), 200);
}

/* A complete head, then a body dripped one byte at a time: closed at the body deadline. */
static void test_body_deadline(void)
{
    int fd = connect_from("127.0.0.1", port);
    const char *head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-acme-test-1\r\n"
                       "Content-Length: 1000\r\n\r\n";
    CHECK(fd >= 0 && send_all(fd, head, strlen(head)));
    double t0 = br_now();
    bool closed = false;
    char b[512];
    while (!closed && br_now() - t0 < BODY_S + 2.0) {
        ssize_t k = send(fd, "{", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        ssize_t r = recv(fd, b, sizeof b, MSG_DONTWAIT);
        closed = k < 0 || r == 0 || (r > 0 && strstr(b, "408"));
        usleep(50000);
    }
    double took = br_now() - t0;
    close(fd);
    CHECK_MSG(closed && took < BODY_S + 1.0, "dripped body: closed %d after %.2f s (deadline %.1f s)", closed, took, BODY_S);
}

/* ---- 2. and 3. /metrics: bounded labels, admin only, operator listener ---- */

static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, prefix, strlen(prefix))) n++;
    return n;
}

static void test_metrics_bounded(void)
{
    resp_t r = http("GET", "/metrics", "sk-ops-test-01", NULL);
    int before = count_lines(r.body, "braid_http_requests_total{");
    free(r.body);
    char path[128];
    for (int i = 0; i < 200; i++) { /* keyless: 401, each with a distinct URL */
        snprintf(path, sizeof path, "/v1/adapters/x%d", i);
        r = http("DELETE", path, NULL, NULL);
        free(r.body);
        snprintf(path, sizeof path, "/nowhere/%d", i);
        r = http("GET", path, NULL, NULL);
        free(r.body);
    }
    r = http("GET", "/metrics", "sk-ops-test-01", NULL);
    int after = count_lines(r.body, "braid_http_requests_total{");
    CHECK_MSG(after <= before + 2, "400 distinct URLs added %d series to braid_http_requests_total", after - before);
    CHECK(!strstr(r.body, "/v1/adapters/x1") && !strstr(r.body, "/nowhere/"));
    free(r.body);

    /* the registry caps every family (here directly: 5000 label sets) */
    br_metrics_t *m = NULL;
    CHECK_OK(br_metrics_create(&m));
    br_metric_t *f = br_metrics_counter(m, "t_total", "test", "a,b");
    char v[32];
    double t0 = br_now();
    for (int i = 0; i < 5000; i++) {
        snprintf(v, sizeof v, "v%d", i);
        br_metric_add(f, 1, v, "x");
    }
    double dt = br_now() - t0;
    char *text = br_metrics_render(m);
    int series = count_lines(text, "t_total{");
    CHECK_MSG(series <= 1024, "5000 label sets made %d series", series);
    double other = br_metric_get(f, "_other", "_other"), kept = br_metric_get(f, "v0", "x");
    CHECK_MSG(other + (series - 1) == 5000 && kept == 1, "overflow series %g, first series %g", other, kept);
    CHECK_MSG(dt < 0.5, "5000 updates took %.3f s (lookups should be O(1))", dt);
    free(text);
    br_metrics_free(m);
}

static void test_metrics_access(void)
{
    resp_t r = http("GET", "/metrics", NULL, NULL);
    CHECK_MSG(is_error(&r, 401, "invalid_api_key") && !strstr(r.body, "a2"), "keyless /metrics: %ld", r.status);
    free(r.body);
    r = http("GET", "/metrics", "sk-acme-test-1", NULL);
    CHECK_MSG(is_error(&r, 403, NULL), "non-admin /metrics: %ld", r.status);
    free(r.body);
    r = http("GET", "/metrics", "sk-ops-test-01", NULL);
    CHECK(r.status == 200 && strstr(r.body, "braid_kv_pages_total"));
    free(r.body);
    /* the operator listener needs no key and serves nothing else */
    CHECK(metrics_port > 0);
    r = http_at(metrics_port, "GET", "/metrics", NULL, NULL, 0);
    CHECK(r.status == 200 && strstr(r.body, "braid_kv_pages_total"));
    free(r.body);
    r = http_at(metrics_port, "POST", "/v1/completions", NULL, "{}", 2);
    CHECK_INT(r.status, 404);
    free(r.body);
}

/* ---- 7. chunked body over the limit ---- */

static void test_chunked_413(void)
{
    size_t chunk = 16 * 1024, nchunks = 8; /* 128 KiB > the 64 KiB limit */
    const char *head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-acme-test-1\r\n"
                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    size_t cap = strlen(head) + nchunks * (chunk + 16) + 16;
    char *req = malloc(cap), *resp = malloc(8192);
    size_t n = (size_t)snprintf(req, cap, "%s", head);
    for (size_t i = 0; i < nchunks; i++) {
        n += (size_t)snprintf(req + n, cap - n, "%zx\r\n", chunk);
        memset(req + n, 'a', chunk);
        n += chunk;
        memcpy(req + n, "\r\n", 2);
        n += 2;
    }
    memcpy(req + n, "0\r\n\r\n", 5);
    n += 5;
    long st = raw_request("127.0.0.1", req, n, resp, 8192);
    CHECK_MSG(st == 413 && strstr(resp, "request_too_large"), "chunked body over the limit: %ld", st);
    /* and a chunked body under the limit still works */
    n = (size_t)snprintf(req, cap, "%s", head);
    const char *body = "{\"model\": \"model\", \"prompt\": \"x\", \"max_tokens\": 2}";
    n += (size_t)snprintf(req + n, cap - n, "%zx\r\n%s\r\n0\r\n\r\n", strlen(body), body);
    st = raw_request("127.0.0.1", req, n, resp, 8192);
    CHECK_MSG(st == 200, "small chunked body: %ld", st);
    free(req);
    free(resp);
}

/* ---- 8. run-time adapter loading ---- */

static void test_adapter_paths(void)
{
    char body[1024], outside[256], secret[300], cmd[4096];
    snprintf(outside, sizeof outside, "%s/outside", tmp);
    snprintf(secret, sizeof secret, "%s/secret.txt", tmp);
    /* outside the root: a real adapter folder, a missing one; inside: links out */
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s && cp %s/a1/* %s/ && echo 'rootsecret:x:0:0' > %s && mkdir -p %s/evil %s/linkdir && "
             "ln -sf %s %s/evil/adapter_config.json && cp %s/a1/adapter_model.safetensors %s/evil/ && "
             "rmdir %s/linkdir && ln -s %s %s/linkdir",
             outside, adapters_dir, outside, secret, adapters_dir, adapters_dir, secret, adapters_dir, adapters_dir,
             adapters_dir, adapters_dir, outside, adapters_dir);
    CHECK(system(cmd) == 0);
    resp_t r1, r2;
    snprintf(body, sizeof body, "{\"name\": \"x1\", \"path\": \"%s\"}", outside);
    r1 = http("POST", "/v1/adapters", "sk-ops-test-01", body);
    snprintf(body, sizeof body, "{\"name\": \"x1\", \"path\": \"%s/missing\"}", outside);
    r2 = http("POST", "/v1/adapters", "sk-ops-test-01", body);
    CHECK_MSG(r1.status == 404 && r2.status == 404, "outside the root: %ld %ld", r1.status, r2.status);
    /* the answers must not tell an existing folder from a missing one (beyond the echoed path) */
    char *m1 = strstr(r1.body, "is not a PEFT"), *m2 = strstr(r2.body, "is not a PEFT");
    CHECK_MSG(m1 && m2 && !strcmp(m1, m2), "%s vs %s", r1.body, r2.body);
    free(r1.body);
    free(r2.body);
    const char *refused[] = {"evil", "linkdir", "../outside", "a1/../../outside"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        snprintf(body, sizeof body, "{\"name\": \"x2\", \"path\": \"%s\"}", refused[i]);
        r1 = http("POST", "/v1/adapters", "sk-ops-test-01", body);
        CHECK_MSG(r1.status == 404 && !strstr(r1.body, "rootsecret"), "%s: %ld %s", refused[i], r1.status, r1.body);
        free(r1.body);
    }
    /* a malformed config inside the root: refused without quoting it */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/junk && echo 'rootsecret is here' > %s/junk/adapter_config.json && "
                              "cp %s/a1/adapter_model.safetensors %s/junk/",
             adapters_dir, adapters_dir, adapters_dir, adapters_dir);
    CHECK(system(cmd) == 0);
    r1 = http("POST", "/v1/adapters", "sk-ops-test-01", "{\"name\": \"x3\", \"path\": \"junk\"}");
    CHECK_MSG(r1.status == 400 && !strstr(r1.body, "rootsecret"), "malformed config: %ld %s", r1.status, r1.body);
    free(r1.body);
    /* a relative path inside the root works */
    r1 = http("POST", "/v1/adapters", "sk-ops-test-01", "{\"name\": \"rel\", \"path\": \"shared1\"}");
    CHECK_MSG(r1.status == 200, "relative path in the root: %ld %s", r1.status, r1.body);
    free(r1.body);
    /* NUL and other bytes outside the alphabet in DELETE names; a1 must survive */
    const char *bad[] = {"/v1/adapters/a1%00x", "/v1/adapters/a1%2fx", "/v1/adapters/a1%0a", "/v1/adapters/"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r1 = http("DELETE", bad[i], "sk-ops-test-01", NULL);
        CHECK_MSG(r1.status == 400, "DELETE %s: %ld %s", bad[i], r1.status, r1.body);
        free(r1.body);
    }
    r1 = http("POST", "/v1/completions", "sk-acme-test-1", "{\"model\": \"a1\", \"prompt\": \"x\", \"max_tokens\": 2}");
    CHECK_MSG(r1.status == 200, "a1 after the DELETE attempts: %ld %s", r1.status, r1.body);
    free(r1.body);
}

/* ---- cases that already held ---- */

static void test_oversized_and_malformed(void)
{
    char *buf = malloc(200 * 1024), resp[8192];
    /* a 100 KiB header, a 20 KiB URL: refused (4xx) or closed, and the server goes on */
    int n = snprintf(buf, 1024, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(buf + n, 'a', 100 * 1024);
    n += 100 * 1024;
    n += snprintf(buf + n, 64, "\r\n\r\n");
    long st = raw_request("127.0.0.1", buf, (size_t)n, resp, sizeof resp);
    CHECK_MSG(st == -1 || (st >= 400 && st < 500), "100 KiB header: %ld", st);
    n = snprintf(buf, 64, "GET /");
    memset(buf + n, 'u', 20 * 1024);
    n += 20 * 1024;
    n += snprintf(buf + n, 64, " HTTP/1.1\r\nHost: x\r\n\r\n");
    st = raw_request("127.0.0.1", buf, (size_t)n, resp, sizeof resp);
    CHECK_MSG(st == -1 || (st >= 400 && st < 500), "20 KiB URL: %ld", st);
    const char *garbage = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n";
    st = raw_request("127.0.0.1", garbage, strlen(garbage), resp, sizeof resp);
    CHECK_MSG(st == -1 || (st >= 400 && st < 500), "TLS hello on plain HTTP: %ld", st);
    /* a body over the limit by Content-Length */
    n = snprintf(buf, 200, "{\"model\": \"model\", \"prompt\": \"");
    memset(buf + n, 'a', 100 * 1024);
    strcpy(buf + n + 100 * 1024, "\"}");
    resp_t r = http("POST", "/v1/completions", "sk-acme-test-1", buf);
    CHECK(is_error(&r, 413, "request_too_large"));
    free(r.body);
    /* 20,000 nested lists (40 KB: under the body limit) */
    size_t depth = 20000;
    for (size_t i = 0; i < depth; i++) buf[i] = '[';
    for (size_t i = 0; i < depth; i++) buf[depth + i] = ']';
    buf[2 * depth] = 0;
    r = http("POST", "/v1/completions", "sk-acme-test-1", buf);
    CHECK(is_error(&r, 400, "invalid_json"));
    free(r.body);
    /* NaN, Infinity and numbers past double or int64 */
    const char *nums[] = {"{\"model\": \"model\", \"prompt\": \"x\", \"temperature\": NaN}",
                          "{\"model\": \"model\", \"prompt\": \"x\", \"temperature\": Infinity}",
                          "{\"model\": \"model\", \"prompt\": \"x\", \"temperature\": 1e400}",
                          "{\"model\": \"model\", \"prompt\": \"x\", \"max_tokens\": 1e300}",
                          "{\"model\": \"model\", \"prompt\": \"x\", \"max_tokens\": 99999999999999999999999}",
                          "{\"model\": \"model\", \"prompt\": \"x\", \"top_p\": -0.0}",
                          "{\"model\": \"model\", \"prompt\": [1e10]}"};
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
        r = http("POST", "/v1/completions", "sk-acme-test-1", nums[i]);
        CHECK_MSG(r.status == 400, "%s: %ld %s", nums[i], r.status, r.body);
        free(r.body);
    }
    free(buf);
    CHECK_INT(health_from("127.0.0.1"), 200);
}

static double kv_used(void)
{
    resp_t r = http("GET", "/metrics", "sk-ops-test-01", NULL);
    char *p = strstr(r.body, "\nbraid_kv_pages_used ");
    double v = p ? strtod(p + 21, NULL) : -1;
    free(r.body);
    return v;
}

static void test_disconnect_mid_stream(void)
{
    for (int k = 0; k < 3; k++) {
        int fd = connect_from("127.0.0.1", port);
        const char *body = "{\"model\": \"a1\", \"prompt\": \"x\", \"max_tokens\": 500, \"stream\": true, \"ignore_eos\": true}";
        char req[512], buf[4096];
        int n = snprintf(req, sizeof req,
                         "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-acme-test-1\r\n"
                         "Content-Length: %zu\r\n\r\n%s",
                         strlen(body), body);
        CHECK(fd >= 0 && send_all(fd, req, (size_t)n));
        double t0 = br_now();
        bool got = false;
        while (!got && br_now() - t0 < 5) {
            ssize_t r = recv(fd, buf, sizeof buf - 1, 0);
            if (r <= 0) break;
            buf[r] = 0;
            got = strstr(buf, "data: ") != NULL;
        }
        CHECK(got);
        close(fd); /* mid-stream */
    }
    double used = -1;
    for (int i = 0; i < 100 && used != 0; i++) {
        used = kv_used();
        if (used) usleep(30000);
    }
    CHECK_MSG(used == 0, "KV pages in use after three mid-stream disconnects: %g", used);
}

static void test_tenant_isolation(void)
{
    resp_t r = http("GET", "/v1/models", "sk-acme-test-1", NULL);
    CHECK_MSG(r.status == 200 && strstr(r.body, "\"a1\"") && strstr(r.body, "\"shared1\"") && !strstr(r.body, "\"a2\""),
              "acme's models: %s", r.body);
    free(r.body);
    r = http("GET", "/v1/models", "sk-beta-test-1", NULL);
    CHECK_MSG(r.status == 200 && strstr(r.body, "\"a2\"") && !strstr(r.body, "\"a1\""), "beta's models: %s", r.body);
    free(r.body);
    /* another tenant's adapter reads exactly like a missing one */
    resp_t a = http("POST", "/v1/completions", "sk-acme-test-1", "{\"model\": \"a2\", \"prompt\": \"x\"}");
    resp_t b = http("POST", "/v1/completions", "sk-acme-test-1", "{\"model\": \"zz\", \"prompt\": \"x\"}");
    CHECK(is_error(&a, 404, "model_not_found") && is_error(&b, 404, "model_not_found"));
    free(a.body);
    free(b.body);
    a = http("GET", "/v1/models", "sk-nobody-0001", NULL);
    CHECK(is_error(&a, 401, "invalid_api_key"));
    free(a.body);
}

/* ---- 4. non-finite logits: a 5xx error for that request, never text ---- */

static void test_non_finite_logits(void)
{
    br_model_t *m = NULL;
    char path[256];
    snprintf(path, sizeof path, "%s/tokenizer.json", model_dir);
    br_tokenizer_t *tok = NULL;
    br_tenants_t *ten = NULL;
    br_adapters_t *ads = NULL;
    br_sched_t *s = NULL;
    CHECK_OK(br_model_load(&m, model_dir, false));
    CHECK_OK(br_tokenizer_load(&tok, path));
    CHECK_OK(br_tenants_open(&ten));
    if (!m || !tok || !ten) goto out;
    br_adapters_opts_t ao = {.shapes = br_lora_shapes_from_config(&m->cfg)};
    CHECK_OK(br_adapters_create(&ads, &ao));
    /* weights that overflow: every logit becomes +-Inf or NaN */
    for (size_t i = 0; i < m->n_params; i++) m->params[i] *= 1e30f;
    br_sched_opts_t so = {.model = m, .tok = tok, .adapters = ads, .tenants = ten, .kv_budget_bytes = 4 << 20, .seed = 1};
    CHECK_OK(br_sched_create(&s, &so));
    if (!s) goto out;
    int32_t *ids = malloc(3 * sizeof *ids);
    ids[0] = 1;
    ids[1] = 2;
    ids[2] = 3;
    br_gen_params_t gp = {.max_tokens = 8, .temperature = 1, .top_p = 1};
    br_req_t *r = NULL;
    CHECK_OK(br_req_create(&r, ids, 3, &gp));
    r->tenant = br_tenants_get(ten, 0);
    CHECK_OK(br_sched_submit(s, r));
    for (int i = 0; i < 100 && !br_req_wait(r, SIZE_MAX, 0.1); i++) {
    }
    pthread_mutex_lock(&r->mu);
    CHECK(r->done && r->finish == BR_FINISH_ERROR && r->server_fault && r->text_len == 0);
    CHECK_MSG(strstr(r->errmsg, "non-finite"), "message: %s", r->errmsg);
    pthread_mutex_unlock(&r->mu);
    br_req_unref(r);
out:
    br_sched_free(s);
    br_adapters_free(ads);
    br_tenants_free(ten);
    br_tokenizer_free(tok);
    br_model_free(m);
}

int main(void)
{
    br_log_set_level(BR_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    double t0 = br_now();
    CHECK_OK(fixture_setup("braid_hostile_"));
    br_server_opts_t o = {.model_dir = model_dir, .adapters_dir = adapters_dir, .tenants_file = tenants_path, .port = 0,
                          .max_body = 64 * 1024, .kv_mem_mb = 8, .adapter_mem_mb = 64, .max_connections = MAX_CONN,
                          .max_connections_per_ip = PER_IP, .head_timeout_s = HEAD_S, .body_timeout_s = BODY_S,
                          .metrics_addr = "127.0.0.1:0"};
    br_server_t *s = NULL;
    CHECK_OK(br_server_start(&s, &o));
    if (s) {
        port = br_server_port(s);
        metrics_port = br_server_metrics_port(s);
        test_tenant_isolation();
        test_metrics_access();
        test_metrics_bounded();
        test_chunked_413();
        test_adapter_paths();
        test_oversized_and_malformed();
        test_disconnect_mid_stream();
        test_body_deadline();
        test_slow_drip_and_flood();
        br_server_free(s);
    }
    test_non_finite_logits();
    fixture_teardown();
    fprintf(stderr, "hostile suite: %.1f s\n", br_now() - t0);
    return th_exit();
}
