#!/usr/bin/env python3
"""Serving replicas behind HAProxy (issue 18), loopback only, run by tests/test_serve_cluster.c.

Three `braid serve` replicas behind scripts/serve_cluster.sh: adapter affinity (adapter loads
summed over the replicas' /metrics == distinct adapters), tenants and keys enforced through the
proxy, a replica's SIGTERM drains (/health 503 while it still serves, no client failure), a
replica killed under load (requests started after the kill all succeed, the ones it held get a
clean 5xx, the supervisor restarts it and it takes its adapters back), SIGTERM of the whole
cluster finishes in-flight streams.  Prints "N passed, N failed[, N skipped]" last.
"""
import http.client, json, os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BRAID = os.environ.get("BRAID", os.path.join(ROOT, "braid"))
NREP, NAD = 3, 8
passed = failed = skipped = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, flush=True)


def free_base_port(n):
    """A port P with P..P+n all free on 127.0.0.1 (bound and released; a small race is acceptable)."""
    for _ in range(50):
        s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
        if p + n > 65000:
            continue
        socks = []
        try:
            for i in range(n + 1):
                t = socket.socket(); socks.append(t); t.bind(("127.0.0.1", p + i))
            return p
        except OSError:
            pass
        finally:
            for t in socks: t.close()
    raise RuntimeError("no free port range")


def req(port, method, path, body=None, key=None, timeout=60):
    """(status, body text); status 0 = connection error."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    if key: h["Authorization"] = "Bearer " + key
    try:
        c.request(method, path, json.dumps(body) if body is not None else None, h)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as e:
        return 0, repr(e)
    finally:
        c.close()


def completion(port, model, key, max_tokens=8, **kw):
    b = {"model": model, "prompt": "the quick brown fox", "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True}
    b.update(kw)
    return req(port, "POST", "/v1/completions", b, key)


def metric_sum(text, name, labels=""):
    tot = 0.0
    for line in text.splitlines():
        if line.startswith(name) and labels in line and not line.startswith("#"):
            tot += float(line.rsplit(" ", 1)[1])
    return tot


def main():
    if not shutil.which("haproxy"):
        print("haproxy not installed (make deps installs it): cluster tests skipped")
        global skipped
        skipped = 24
        return 0
    tmp = tempfile.mkdtemp(prefix="braid-cluster-test.")
    env = dict(os.environ, BRAID_THREADS="1", BRAID=BRAID)
    subprocess.run([BRAID, "bench", "serve", "--write-fixture", tmp, "--adapters", str(NAD), "--hidden", "64",
                    "--layers", "2", "--vocab", "352"], check=True, stderr=subprocess.DEVNULL, env=env)
    # t0/t1 own ad0000.. round robin (k % 3 == 0 / 1), k % 3 == 2 are shared; ops is admin
    keys = {"t0": "sk-cluster-t0-0001", "t1": "sk-cluster-t1-0001", "ops": "sk-cluster-ops-001"}
    owner = {}
    for k in range(NAD):
        owner["ad%04d" % k] = "t%d" % (k % 3) if k % 3 < 2 else "t0"
    tenants = [{"name": t, "keys": [keys[t]], "adapters": ["ad%04d" % k for k in range(NAD) if k % 3 == i]}
               for i, t in enumerate(["t0", "t1"])]
    tenants.append({"name": "ops", "keys": [keys["ops"]], "admin": True})
    with open(os.path.join(tmp, "tenants.json"), "w") as f:
        json.dump({"tenants": tenants}, f)
    port = free_base_port(NREP)
    cdir = os.path.join(tmp, "cluster")
    cluster = subprocess.Popen(
        ["bash", os.path.join(ROOT, "scripts/serve_cluster.sh"), "--replicas", str(NREP), "--port", str(port),
         "--dir", cdir, "--", "--model", os.path.join(tmp, "model"), "--adapters", os.path.join(tmp, "adapters"),
         "--tenants", os.path.join(tmp, "tenants.json"), "--kv-mem", "16"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT, start_new_session=True)
    try:
        url = cluster.stdout.readline().decode().strip()
        check(url == "http://127.0.0.1:%d" % port, "serve_cluster.sh prints the URL (got %r)" % url)
        if not url:
            return 1
        run_checks(port, cdir, keys, owner)
        whole_cluster_sigterm(cluster, port, keys, owner)
    finally:
        if cluster.poll() is None:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def replica_pid(cdir, i):
    with open(os.path.join(cdir, "replica%d.pid" % i)) as f:
        return int(f.read())


def replica_metrics(port, i, key):
    st, text = req(port + i, "GET", "/metrics", key=key)
    return text if st == 200 else ""


def run_checks(port, cdir, keys, owner):
    adm = keys["ops"]
    # ---- affinity: 4 requests per adapter, all at once, through the proxy ----
    res = []
    def one(ad):
        res.append(completion(port, ad, keys[owner[ad]])[0])
    ths = [threading.Thread(target=one, args=(ad,)) for ad in owner for _ in range(4)]
    for t in ths: t.start()
    for t in ths: t.join()
    check(res.count(200) == len(ths), "affinity requests all 200 (%s)" % sorted(set(res)))
    loads = [metric_sum(replica_metrics(port, i, adm), "braid_adapter_loads_total", 'result="ok"') for i in range(1, NREP + 1)]
    colds = [metric_sum(replica_metrics(port, i, adm), "braid_adapter_cold_start_seconds_count") for i in range(1, NREP + 1)]
    print("adapter loads per replica %s, cold starts %s (%d adapters, %d requests)" % (loads, colds, len(owner), len(res)))
    check(sum(loads) == len(owner), "affinity: adapter loads over all replicas == distinct adapters (%s)" % loads)
    check(sum(colds) == len(owner), "affinity: cold starts == distinct adapters (%s)" % colds)
    check(sum(1 for x in loads if x > 0) >= 2, "adapters spread over at least two replicas (%s)" % loads)

    # ---- tenants and keys through the proxy ----
    ad_t0 = next(a for a in owner if owner[a] == "t0" and int(a[2:]) % 3 == 0)
    check(completion(port, ad_t0, None)[0] == 401, "no key through the proxy: 401")
    check(completion(port, ad_t0, "sk-wrong-key-000")[0] == 401, "wrong key through the proxy: 401")
    check(completion(port, ad_t0, keys["t1"])[0] == 404, "another tenant's adapter through the proxy: 404")
    check(completion(port, ad_t0, keys["t0"])[0] == 200, "own adapter through the proxy: 200")
    check(req(port, "GET", "/metrics", key=adm)[0] == 404, "/metrics is not routed by the proxy")
    check(req(port + 1, "GET", "/metrics", key=keys["t0"])[0] == 403, "replica /metrics with a tenant key: 403")

    # ---- one replica's SIGTERM drains: /health 503 while still serving, clients see nothing ----
    home = {i: l for i, l in enumerate(loads, 1)}
    victim = max(home, key=home.get)       # the replica holding the most adapters
    results, stop = [], threading.Event()
    def load():
        ads = list(owner)
        k = 0
        while not stop.is_set():
            ad = ads[k % len(ads)]; k += 1
            t0 = time.time()
            st, body = completion(port, ad, keys[owner[ad]], max_tokens=32)
            results.append((t0, time.time(), st, body))
    def run_load(action, secs_after):
        results.clear(); stop.clear()
        ths = [threading.Thread(target=load) for _ in range(6)]
        for t in ths: t.start()
        time.sleep(0.7)
        t_act = time.time()
        action()
        time.sleep(secs_after)
        stop.set()
        for t in ths: t.join()
        return t_act
    pid = replica_pid(cdir, victim)
    def term():
        os.kill(pid, signal.SIGTERM)
        time.sleep(0.15)
        hs = req(port + victim, "GET", "/health")[0]
        gs = completion(port + victim, ad_t0, keys["t0"])[0]
        check(hs == 503, "a stopping replica answers /health 503 (got %d)" % hs)
        check(gs == 200, "a stopping replica still serves during its grace period (got %d)" % gs)
    run_load(term, 2.0)
    bad = [r[2] for r in results if r[2] != 200]
    check(len(results) > 20 and not bad, "SIGTERM of one replica under load: %d requests, failures %s" % (len(results), bad))
    wait_rejoin(port, cdir, victim, pid, adm)

    # ---- a replica killed under load ----
    pid = replica_pid(cdir, victim)
    t_dead = [0.0]
    def kill():
        os.kill(pid, signal.SIGKILL)
        while port_open(port + victim): time.sleep(0.002)
        t_dead[0] = time.time()  # its listener is closed: nothing can be sent to it any more
    t_kill = run_load(kill, 2.0)
    after = [r for r in results if r[0] > t_dead[0]]
    before_fail = [r for r in results if r[0] <= t_kill and r[2] != 200]
    bad_after = [(r[2], "sent %+.3f s, answered %+.3f s after the death" % (r[0] - t_dead[0], r[1] - t_dead[0]), r[3][:80])
                 for r in after if r[2] != 200]
    print("kill under load: %d requests after the kill, %d failed before it (statuses %s)" %
          (len(after), len(before_fail), sorted(set(r[2] for r in before_fail))))
    check(len(after) > 20 and not bad_after, "requests started after the kill all succeed (%s)" % bad_after)
    check(all(500 <= r[2] <= 599 for r in before_fail), "requests the dead replica held get a 5xx, not a broken "
          "connection (%s)" % [(r[2], r[3][:60]) for r in before_fail])
    check(len(before_fail) <= 6, "at most the in-flight requests fail (%d)" % len(before_fail))
    wait_rejoin(port, cdir, victim, pid, adm)


def port_open(port):
    """True while something accepts connections on 127.0.0.1:port (a killed process's threads
    keep its sockets open for a moment after its main thread is a zombie)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_rejoin(port, cdir, victim, old_pid, adm):
    """The supervisor restarts the replica; HAProxy's check brings it back; it gets its adapters."""
    t0 = time.time()
    while time.time() - t0 < 30:
        try:
            if replica_pid(cdir, victim) != old_pid and req(port + victim, "GET", "/health")[0] == 200:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    check(req(port + victim, "GET", "/health")[0] == 200, "replica %d restarted and healthy" % victim)
    time.sleep(1.0)  # rise 2 x inter 250 ms
    # with consistent hashing the restarted replica gets its adapters back
    served = 0
    for _ in range(3):
        for k in range(NAD):
            ad = "ad%04d" % k
            key = "sk-cluster-t%d-0001" % (k % 3) if k % 3 < 2 else "sk-cluster-t0-0001"
            completion(port, ad, key)
        served = metric_sum(replica_metrics(port, victim, adm), "braid_requests_total", 'code="200"')
        if served > 0: break
        time.sleep(0.5)
    check(served > 0, "the restarted replica %d serves its adapters again (%d requests)" % (victim, served))


def whole_cluster_sigterm(cluster, port, keys, owner):
    """Streams in flight when the cluster gets SIGTERM finish with [DONE]; the script exits 0."""
    outs = []
    started = threading.Barrier(5)
    def stream(ad):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = {"model": ad, "prompt": "the quick brown fox", "max_tokens": 200, "temperature": 0,
                "ignore_eos": True, "stream": True}
        try:
            c.request("POST", "/v1/completions", json.dumps(body),
                      {"Content-Type": "application/json", "Authorization": "Bearer " + keys[owner[ad]]})
            r = c.getresponse()
            first = r.read1(65536)
            started.wait(10)
            rest = r.read().decode("utf-8", "replace")
            outs.append((r.status, first.decode() + rest))
        except (OSError, http.client.HTTPException, threading.BrokenBarrierError) as e:
            outs.append((0, repr(e)))
        finally:
            c.close()
    ths = [threading.Thread(target=stream, args=(ad,)) for ad in list(owner)[:4]]
    for t in ths: t.start()
    started.wait(10)
    t0 = time.time()
    cluster.send_signal(signal.SIGTERM)
    for t in ths: t.join()
    try:
        rc = cluster.wait(90)
    except subprocess.TimeoutExpired:
        rc = None
    ok = [o for o in outs if o[0] == 200 and "data: [DONE]" in o[1] and '"finish_reason":"length"' in o[1].replace(" ", "")]
    check(len(ok) == 4, "cluster SIGTERM: the 4 streams in flight finish (%s)" % [(o[0], o[1][-80:]) for o in outs if o not in ok])
    check(rc == 0, "cluster SIGTERM: serve_cluster.sh exits 0 (got %s after %.1f s)" % (rc, time.time() - t0))
    check(req(port, "GET", "/health", timeout=3)[0] == 0, "after the cluster stopped nothing listens on its port")


if __name__ == "__main__":
    rc = 1
    try:
        rc = main()
    finally:
        print("%d passed, %d failed" % (passed, failed) + (", %d skipped" % skipped if skipped else ""))
    sys.exit(1 if failed or rc else 0)
