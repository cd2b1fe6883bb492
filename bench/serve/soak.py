#!/usr/bin/python3
"""Soak load for braid serve (bench/serve/soak.sh starts the server): for DURATION seconds,
mixed traffic on 127.0.0.1 only -- completions and chat (base and adapters of three tenants,
half streamed, some streams dropped after the first event), expected 4xx (bad JSON, unknown
model, wrong key, over-long body), adapter churn (register / use / delete at run time), and a
/health probe twice a second (429 from the tenants' rps limits is counted, not an error) -- while the server's RSS is sampled from /proc.  Prints a JSON
summary; exit status 1 on any unexpected answer.

    soak.py PORT PID DURATION_S ADAPTERS_N
"""
import http.client, json, random, socket, sys, threading, time

PORT, PID, DURATION, NAD = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
KEYS = {"t0": "sk-soak-t0-0001", "t1": "sk-soak-t1-0001", "t2": "sk-soak-t2-0001"}
ADMIN = "sk-soak-ops-001"
lock = threading.Lock()
stats = {"ok": 0, "expected_4xx": 0, "dropped_streams": 0, "churn_cycles": 0, "register_503_retried": 0, "rate_limited_429": 0, "errors": 0}
error_samples = []
health_ms = []
rss = []  # (t, kB)
t_start = time.time()
stop = threading.Event()


def count(key, n=1):
    with lock:
        stats[key] += n


def error(msg):
    with lock:
        stats["errors"] += 1
        if len(error_samples) < 20:
            error_samples.append("%.0fs %s" % (time.time() - t_start, msg[:300]))


def call(method, path, key=None, body=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    c.request(method, path, body=json.dumps(body) if isinstance(body, dict) else body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def owned(tenant):
    # ad0000.. are owned round-robin by t0, t1, t2; every fourth is shared
    i = int(tenant[1])
    return ["ad%04d" % k for k in range(NAD) if k % 4 == i]


def traffic(seed):
    rnd = random.Random(seed)
    while not stop.is_set():
        tenant = rnd.choice(list(KEYS))
        model = rnd.choice(["model"] + owned(tenant) + ["ad%04d" % k for k in range(3, NAD, 4)])
        chat = rnd.random() < 0.3
        stream = rnd.random() < 0.5
        body = {"model": model, "max_tokens": rnd.randint(1, 24), "temperature": rnd.choice([0, 0.7, 1.0]),
                "stream": stream, "ignore_eos": True}
        if chat:
            body["messages"] = [{"role": "user", "content": "Tell me about the licence, part %d." % rnd.randint(0, 99)}]
        else:
            body["prompt"] = "The licensee shall " * rnd.randint(1, 8)
        path = "/v1/chat/completions" if chat else "/v1/completions"
        try:
            if stream and rnd.random() < 0.3:  # drop the stream after the first event
                s = socket.create_connection(("127.0.0.1", PORT), timeout=30)
                b = json.dumps(body).encode()
                s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
                           "Content-Length: %d\r\n\r\n" % (path, KEYS[tenant], len(b))).encode() + b)
                got = s.recv(4096)
                s.close()
                if got.startswith(b"HTTP/1.1 200"):
                    count("dropped_streams")
                elif got.startswith(b"HTTP/1.1 429") and b"Retry-After" in got:
                    count("rate_limited_429")
                else:
                    error("dropped stream: %r" % got[:200])
                continue
            st, data = call("POST", path, KEYS[tenant], body)
            if st == 200 and (not stream or data.rstrip().endswith(b"data: [DONE]")):
                count("ok")
            elif st == 429:  # the tenant's rps limit (tenants.json): an answer, not an error; back off
                count("rate_limited_429")
                time.sleep(0.25)
            else:
                error("%s %s -> %d %r" % (path, model, st, data[:200]))
        except Exception as e:
            error("%s %s: %r" % (path, model, e))


BAD = [  # (method, path, key, body, expected status)
    ("POST", "/v1/completions", KEYS["t0"], "{\"model\": ", 400),
    ("POST", "/v1/completions", KEYS["t0"], {"model": "nope", "prompt": "x"}, 404),
    ("POST", "/v1/completions", KEYS["t0"], {"model": "ad0001", "prompt": "x"}, 404),  # t1's adapter
    ("POST", "/v1/completions", "sk-wrong-key-000", {"model": "model", "prompt": "x"}, 401),
    ("POST", "/v1/completions", KEYS["t1"], {"model": "model", "prompt": "x", "temperature": 9}, 400),
    ("POST", "/v1/completions", KEYS["t1"], "{\"model\": \"model\", \"prompt\": \"" + "a" * 300000 + "\"}", 413),
    ("GET", "/metrics", KEYS["t2"], None, 403),
    ("DELETE", "/v1/adapters/x%00y", ADMIN, None, 400),
]


def bad_traffic(seed):
    rnd = random.Random(seed)
    while not stop.is_set():
        m, p, k, b, want = rnd.choice(BAD)
        if m == "DELETE":
            p = "/v1/adapters/x%d%%00y" % rnd.randint(0, 10 ** 6)  # distinct URLs: must not grow /metrics
        try:
            st, data = call(m, p, k, b)
            if st == want:
                count("expected_4xx")
            else:
                error("%s %s -> %d (want %d) %r" % (m, p, st, want, data[:200]))
        except Exception as e:
            error("%s %s: %r" % (m, p, e))
        time.sleep(0.02)


def churn():
    i = 0
    while not stop.is_set():
        name, src = "dyn%d" % (i % 5), "ad%04d" % (i % NAD)
        i += 1
        try:
            st, data = call("POST", "/v1/adapters", ADMIN, {"name": name, "path": src})
            while st == 503 and not stop.is_set():  # adapter memory full of pinned adapters: retry, as told
                count("register_503_retried")
                time.sleep(0.2)
                st, data = call("POST", "/v1/adapters", ADMIN, {"name": name, "path": src})
            if stop.is_set():
                break
            if st != 200:
                error("register %s -> %d %r" % (name, st, data[:200]))
                continue
            st, data = call("POST", "/v1/completions", ADMIN, {"model": name, "prompt": "x", "max_tokens": 4})
            if st != 200:
                error("use %s -> %d %r" % (name, st, data[:200]))
            st, data = call("DELETE", "/v1/adapters/" + name, ADMIN)
            if st != 200:
                error("delete %s -> %d %r" % (name, st, data[:200]))
            count("churn_cycles")
        except Exception as e:
            error("churn: %r" % e)
        time.sleep(0.2)


def health():
    while not stop.is_set():
        t0 = time.time()
        try:
            st, _ = call("GET", "/health", timeout=10)
            if st != 200:
                error("/health -> %d" % st)
            with lock:
                health_ms.append((time.time() - t0) * 1e3)
        except Exception as e:
            error("/health: %r" % e)
        time.sleep(0.5)


def sample_rss():
    while not stop.is_set():
        with open("/proc/%d/status" % PID) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss.append((time.time() - t_start, int(line.split()[1])))
        stop.wait(5)


def metrics_lines():
    st, data = call("GET", "/metrics", ADMIN)
    return len(data.splitlines()) if st == 200 else -1


def main():
    m0 = metrics_lines()
    threads = [threading.Thread(target=traffic, args=(k,)) for k in range(4)]
    threads += [threading.Thread(target=bad_traffic, args=(99,)), threading.Thread(target=churn),
                threading.Thread(target=health), threading.Thread(target=sample_rss)]
    for t in threads:
        t.start()
    time.sleep(DURATION)
    stop.set()
    for t in threads:
        t.join()
    m1 = metrics_lines()
    warm = min(60.0, DURATION * 0.1)
    after = [kb for t, kb in rss if t >= warm]
    hs = sorted(health_ms)
    pct = lambda p: hs[min(len(hs) - 1, int(p * len(hs)))] if hs else None
    out = dict(stats, duration_s=DURATION, rss_kb_first=rss[0][1] if rss else None,
               rss_kb_after_warmup=after[0] if after else None, rss_kb_end=rss[-1][1] if rss else None,
               rss_kb_max=max(kb for _, kb in rss) if rss else None,
               rss_growth_after_warmup_pct=round(100.0 * (after[-1] - after[0]) / after[0], 2) if after else None,
               health_probes=len(hs), health_ms_p50=pct(0.5), health_ms_p99=pct(0.99), health_ms_max=hs[-1] if hs else None,
               metrics_lines_start=m0, metrics_lines_end=m1, warmup_s=warm, error_samples=error_samples)
    print(json.dumps(out, indent=1))
    return 1 if stats["errors"] else 0


sys.exit(main())
