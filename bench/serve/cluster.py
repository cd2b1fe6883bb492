#!/usr/bin/env python3
"""Open-loop S-LoRA-style load through HAProxy (bench/serve/cluster.sh runs it).

  cluster.py URL NREQ RATE CV ALPHA NADAPTERS SEED REPLICA_PORT...

Requests arrive at Gamma inter-arrival times (rate RATE req/s, coefficient of variation CV);
each names adapter floor(n X) with X ~ numpy.random.power(ALPHA) (braid bench serve's
make_workload); prompts are 8-64 token ids (uniform; `prompt` as a list of ids, so the length
is exact -- timing does not depend on the text with the fixture's random weights), 8-32 new
tokens (uniform) with ignore_eos, greedy.  Latency is measured from the scheduled arrival (a late start
counts against the server), so queueing shows up in p99.  Afterwards every replica's /metrics
(open: the cluster runs without --tenants on loopback) gives cold starts and their time.
Prints one JSON object.
"""
import http.client, json, math, random, sys, threading, time
from concurrent.futures import ThreadPoolExecutor


def gamma(rng, k):
    return rng.gammavariate(k, 1.0)


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    out = {"cold_n": 0.0, "cold_s": 0.0, "loads": 0.0}
    for line in text.splitlines():
        if line.startswith("braid_adapter_cold_start_seconds_count"):
            out["cold_n"] += float(line.split()[-1])
        elif line.startswith("braid_adapter_cold_start_seconds_sum"):
            out["cold_s"] += float(line.split()[-1])
        elif line.startswith("braid_adapter_loads_total") and 'result="ok"' in line:
            out["loads"] += float(line.split()[-1])
    return out


def main():
    url, nreq, rate, cv, alpha, nad, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), \
        float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
    rports = [int(p) for p in sys.argv[8:]]
    host, port = url.split("//")[1].split(":")
    port = int(port)
    rng = random.Random(seed)
    shape = 1 / (cv * cv)
    t, work = 0.0, []
    for _ in range(nreq):
        t += gamma(rng, shape) / (rate * shape)
        x = rng.random() ** (1 / alpha)
        ad = min(nad - 1, int(math.floor(nad * x)))
        prompt = [rng.randrange(1, 1000) for _ in range(rng.randint(8, 64))]
        work.append((t, "ad%04d" % ad, prompt, rng.randint(8, 32)))
    lat, toks, errs = [], [0], []
    lock = threading.Lock()

    def one(t0, w):
        at, ad, prompt, out = w
        c = http.client.HTTPConnection(host, port, timeout=300)
        body = json.dumps({"model": ad, "prompt": prompt, "max_tokens": out, "temperature": 0, "ignore_eos": True})
        try:
            c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            done = time.time()
            with lock:
                if r.status == 200:
                    lat.append(done - (t0 + at))
                    toks[0] += json.loads(data)["usage"]["completion_tokens"]
                else:
                    errs.append("%d %s" % (r.status, data[:160].decode("utf-8", "replace")))
        except (OSError, http.client.HTTPException) as e:
            with lock:
                errs.append(repr(e))
        finally:
            c.close()

    t0 = time.time()
    with ThreadPoolExecutor(max_workers=256) as ex:
        for w in work:
            d = t0 + w[0] - time.time()
            if d > 0:
                time.sleep(d)
            ex.submit(one, t0, w)
    span = time.time() - t0
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
    m = [metrics(p) for p in rports]
    cold_n = sum(x["cold_n"] for x in m)
    print(json.dumps({"requests": nreq, "ok": len(lat), "errors": errs[:10], "n_errors": len(errs),
                      "seconds": round(span, 2), "req_s": round(len(lat) / span, 2), "tok_s": round(toks[0] / span, 1),
                      "p50_s": round(q(0.5), 3), "p90_s": round(q(0.9), 3), "p99_s": round(q(0.99), 3),
                      "mean_s": round(sum(lat) / max(1, len(lat)), 3), "cold_starts": cold_n,
                      "cold_start_mean_s": round(sum(x["cold_s"] for x in m) / cold_n, 4) if cold_n else 0,
                      "loads_per_replica": [x["loads"] for x in m]}))


if __name__ == "__main__":
    main()
