"""The reviewer suite's section of bench/serve/RESULTS.md from bench/serve/results.json
(`braid bench serve --suite --json`): per-row numbers with their spread over repeats, a verdict
per claim that follows from them, and what this scale cannot test.  report.py calls section()."""
import statistics

WINDOW_S = 0.5   # service-gap window
STEP_S = 0.05    # windows start every STEP_S seconds


def vals(runs, key):
    return [r[key] for r in runs if r.get(key) is not None]


def spread(v, fmt="{:.2f}"):
    """median [min-max] over repeats ('-' when no value)."""
    if not v:
        return "-"
    if len(v) == 1:
        return fmt.format(v[0])
    return (fmt + " [" + fmt + "-" + fmt + "]").format(statistics.median(v), min(v), max(v))


def med(v):
    return statistics.median(v) if v else float("nan")


def pick(runs, **kw):
    return [r for r in runs if all(r.get(k) == v for k, v in kw.items())]


def cost(prompt, gen):
    """VTC's service measure: prompt tokens + 2 x generated tokens."""
    return prompt + 2 * gen


def service_in(reqs, a, b, wgen=2):
    """Service a tenant's requests received in [a, b): the prompt at the first token, generated
    tokens (weight wgen: 2 is VTC's cost, 1 counts tokens) spread evenly from the first token to the end."""
    s = 0.0
    for _, arr, first, done, n_p, n_o in reqs:
        if a <= first < b:
            s += n_p
        if done > first:
            s += wgen * n_o * max(0.0, min(b, done) - max(a, first)) / (done - first)
        elif a <= first < b:
            s += wgen * n_o
    return s


def backlogged(reqs, a, b):
    """Some request waited (arrived, no first token yet) through all of [a, b)."""
    return any(arr <= a and first >= b for _, arr, first, _, _, _ in reqs)


def tenant_stats(run):
    """Per-tenant service and the worst service gap over windows where both tenants are backlogged."""
    tl = run["timeline"]
    per = {t: [x for x in tl if x[0] == t] for t in (0, 1)}
    end = max(x[3] for x in tl)
    arr_end = max(x[1] for x in tl)  # both tenants keep arriving until here: the contended period
    out = {}
    for t, reqs in per.items():
        ttft = sorted(x[2] - x[1] for x in reqs)
        p = lambda q: ttft[min(len(ttft) - 1, max(0, int(q * len(ttft) + 0.999) - 1))] if ttft else None
        out[t] = {"n": len(reqs), "tok_s": service_in(reqs, 0, arr_end, 1) / arr_end,
                  "demand_tok_s": sum(x[4] + x[5] for x in reqs) / arr_end,
                  "cost_s": sum(cost(x[4], x[5]) for x in reqs) / end, "ttft_p50": p(0.5), "ttft_p99": p(0.99)}
    gap, nwin, a = 0.0, 0, 0.0
    while a + WINDOW_S <= end:
        b = a + WINDOW_S
        if backlogged(per[0], a, b) and backlogged(per[1], a, b):
            nwin += 1
            gap = max(gap, abs(service_in(per[0], a, b) - service_in(per[1], a, b)) / WINDOW_S)
        a += STEP_S
    return out, gap, nwin


def disjoint_below(a, b):
    """Every value of a is below every value of b (the repeats separate the two)."""
    return bool(a) and bool(b) and max(a) < min(b)


def load_rows(L, runs, ns, cap):
    L.append("### 1-2. Load below capacity, adapter popularity skew\n")
    L.append("Capacity is measured first: every request of a row submitted at t = 0 (Zipf alpha = 0.1, the "
             "most adapters in use); capacity = the steady rate, requests finished between the 10th and 90th "
             "percentile end over that time (no ramp-up, no drain; the req/s column is finished / (last end - "
             "start) for every row); the load rows then offer open-loop "
             "Poisson arrivals at 50% and 80% of that median.  Adapter k of n is drawn with P ~ k^-alpha (Zipf; "
             "alpha 0.1 is near uniform, alpha 1 concentrates traffic on a few).  All adapters resident "
             "(loaded before the clock starts).  Cells: median [min-max] over the repeats.\n")
    L.append("| adapters | row | alpha | offered req/s | requests | adapters served | req/s | tok/s | TTFT p50 s | TTFT p99 s | latency p50 s | latency p99 s |")
    L.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in ns:
        c = pick(runs, kind="capacity", adapters=n)
        L.append(f"| {n} | capacity (t = 0): steady {spread(vals(c, 'steady_req_s'), '{:.1f}')} req/s, median "
                 f"{cap[str(n)]:.1f} | 0.1 | all at once | {c[0]['requests']} | {spread(vals(c, 'adapters_served'), '{:.0f}')} | "
                 f"{spread(vals(c, 'req_s'), '{:.1f}')} | {spread(vals(c, 'tok_s'), '{:.0f}')} | {spread(vals(c, 'ttft_p50'))} | "
                 f"{spread(vals(c, 'ttft_p99'))} | {spread(vals(c, 'lat_p50'))} | {spread(vals(c, 'lat_p99'))} |")
        for al in (0.1, 0.3, 1.0):
            for ld in (0.5, 0.8):
                r = pick(runs, kind="load", adapters=n, alpha=al, load=ld)
                if not r:
                    continue
                L.append(f"| {n} | {int(ld * 100)}% | {al:g} | {r[0]['rate']:.1f} | {r[0]['requests']} | "
                         f"{spread(vals(r, 'adapters_served'), '{:.0f}')} | {spread(vals(r, 'req_s'), '{:.1f}')} | "
                         f"{spread(vals(r, 'tok_s'), '{:.0f}')} | {spread(vals(r, 'ttft_p50'))} | {spread(vals(r, 'ttft_p99'))} | "
                         f"{spread(vals(r, 'lat_p50'))} | {spread(vals(r, 'lat_p99'))} |")
    L.append("")


def load_verdicts(V, runs, ns):
    for n in ns:
        rows = pick(runs, kind="load", adapters=n) + pick(runs, kind="capacity", adapters=n)
        if not rows:
            continue
        short = [r for r in rows if r["adapters_served"] < n]
        uni = pick(runs, kind="load", adapters=n, alpha=0.1)
        V.append(f"- **\"{n} adapters\" means {n} in use**: every row has >= {min(r['requests'] for r in rows)} requests "
                 f"(>= 10 per adapter); the scheduler's metrics show {min(r['adapters_served'] for r in uni)}-"
                 f"{max(r['adapters_served'] for r in uni)} distinct adapters served at alpha 0.1"
                 + (f"; {len(short)} runs served fewer than {n} (at alpha "
                    f"{', '.join(sorted({'%g' % r['alpha'] for r in short}))}: Zipf skew leaves the tail unused, "
                    f"as the table's 'adapters served' shows)" if short else f"; every run served all {n}") + ".")
        for ld in (0.5, 0.8):
            rs = pick(runs, kind="load", adapters=n, load=ld)
            ratio = [r["served_req_s"] / r["offered_req_s"] for r in rs if r.get("served_req_s")]
            if not ratio:
                continue
            below = sum(x < 0.9 for x in ratio)
            V.append(f"- **Keeps up at {int(ld * 100)}% of capacity ({n} adapters)**: served / offered rate "
                     f"(each over its own span: ends, arrivals) {spread(ratio)} over {len(ratio)} runs (all alphas) -> "
                     + ("**supported** (>= 0.9 in every run: no queue builds up)." if not below else
                        f"**supported in the median** ({below} of {len(ratio)} runs below 0.9: in a 100-request run "
                        "a few slow requests at the end stretch the span of ends; see the drift line below)."
                        if med(ratio) >= 0.9 else "**not supported**: the server fell behind the offered rate."))
        cap_v = vals(pick(runs, kind="capacity", adapters=n), "steady_req_s")
        res_v = vals(pick(runs, kind="resident", adapters=n), "steady_req_s")
        if cap_v and res_v:
            V.append(f"- **Machine drift ({n} adapters)**: saturating throughput (steady rate) {spread(cap_v, '{:.1f}')} "
                     f"req/s at the start (capacity rows) and {spread(res_v, '{:.1f}')} req/s in the later all-resident "
                     "rows, with the same model and request mix (alpha 1 there): the difference is the shared "
                     "machine's load, and it bounds how precisely 50% and 80% of capacity are hit.")
        lo = [r["ttft_p99"] for r in pick(runs, kind="load", adapters=n, alpha=0.1, load=0.8)]
        hi = [r["ttft_p99"] for r in pick(runs, kind="load", adapters=n, alpha=1.0, load=0.8)]
        if lo and hi:
            if disjoint_below(hi, lo) or disjoint_below(lo, hi):
                which = "skewed (alpha 1)" if disjoint_below(hi, lo) else "near-uniform (alpha 0.1)"
                v = (f"differs: the {which} popularity is faster in every repeat (the alphas ran interleaved "
                     "within each repeat, so the machine's drift is spread over them; 3 repeats of 100 requests "
                     "each: a p99 is about the slowest request, so treat this as a hint, not a measurement)")
            else:
                v = "**no difference resolvable** (the repeats' ranges overlap)"
            V.append(f"- **Skew and latency at 80% load ({n} adapters)**: TTFT p99 alpha 0.1 {spread(lo)} s vs alpha 1 "
                     f"{spread(hi)} s -> {v}.  Batched LoRA puts any mix of adapters in one batch, so skew should "
                     f"not matter when everything is resident; this checks it.")


def evict_rows(L, V, runs, ns, w):
    L.append("### 3. Eviction and cold starts\n")
    L.append(f"A small adapter budget (`mem_budget`, {w['evict_frac']:g} of all adapters' bytes: about "
             f"{w['evict_frac']:.0%} of them fit; an adapter is {w['adapter_bytes'] / 1e3:.0f} kB on average) against "
             "unlimited memory with everything loaded before the clock starts, on the same requests (Zipf alpha 1), "
             "the two interleaved in each repeat.  Throughput rows saturate (all requests at t = 0); the cold-start "
             "row offers 50% of capacity.  A request is *cold* when its adapter was not resident (state \"ready\" "
             "in the registry) when it arrived; its TTFT includes the load from disk and any wait for memory "
             "held by pinned adapters.\n")
    L.append("| adapters | row | budget kB | req/s | TTFT p50 s | TTFT p99 s | loads | evictions | cold requests | cold TTFT p50 s | cold TTFT p99 s | warm TTFT p50 s | warm TTFT p99 s |")
    L.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in ns:
        for kind, label in (("resident", "all resident, saturating"), ("evict", "small budget, saturating"),
                            ("cold", "small budget, 50% load")):
            r = pick(runs, kind=kind, adapters=n)
            if not r:
                continue
            budget = f"{r[0]['mem_budget'] / 1e3:.0f}" if r[0]["mem_budget"] else "unlimited"
            L.append(f"| {n} | {label} | {budget} | {spread(vals(r, 'req_s'), '{:.1f}')} | "
                     f"{spread(vals(r, 'ttft_p50'))} | {spread(vals(r, 'ttft_p99'))} | {spread(vals(r, 'loads'), '{:.0f}')} | "
                     f"{spread(vals(r, 'evictions'), '{:.0f}')} | {spread(vals(r, 'cold'), '{:.0f}')} | "
                     f"{spread(vals(r, 'cold_ttft_p50'))} | {spread(vals(r, 'cold_ttft_p99'))} | "
                     f"{spread(vals(r, 'warm_ttft_p50'))} | {spread(vals(r, 'warm_ttft_p99'))} |")
        res, ev = pick(runs, kind="resident", adapters=n), pick(runs, kind="evict", adapters=n)
        paired = [1 - e["req_s"] / r["req_s"] for r, e in zip(sorted(res, key=lambda x: x["rep"]),
                                                               sorted(ev, key=lambda x: x["rep"]))]
        if paired:
            sep = min(paired) > 0 or max(paired) < 0
            V.append(f"- **Throughput cost of eviction ({n} adapters)**: 1 - evict / resident req/s, paired by repeat: "
                     f"{spread([100 * p for p in paired], '{:.0f}%')} -> "
                     + (f"**a cost is measured** (same sign in every repeat)." if sep and min(paired) > 0 else
                        "**faster with eviction?** the repeats say so; treat as noise of this machine." if sep else
                        "**not resolvable** at this scale (the repeats straddle zero)."))
        cold = pick(runs, kind="cold", adapters=n)
        c99, w99 = vals(cold, "cold_ttft_p99"), vals(cold, "warm_ttft_p99")
        ratio = [r["served_req_s"] / r["offered_req_s"] for r in cold if r.get("served_req_s")]
        if c99 and w99:
            V.append(f"- **Cold starts ({n} adapters, 50% load)**: cold TTFT p50 {spread(vals(cold, 'cold_ttft_p50'))} s, "
                     f"p99 {spread(c99)} s, against warm requests' p99 {spread(w99)} s in the same runs "
                     f"({spread(vals(cold, 'cold'), '{:.0f}')} of {cold[0]['requests']} requests cold; served / "
                     f"offered {spread(ratio)}"
                     + (": below 0.9, the small budget cut capacity under the offered 50%, so cold requests also "
                        "queue behind each other" if ratio and med(ratio) < 0.9 else "") + ") -> "
                     + ("**cold starts are slower in every repeat**." if disjoint_below(w99, c99) else
                        "**no separation** between cold and warm p99 over the repeats."))
    L.append("")


def tenant_rows(L, V, runs):
    t = pick(runs, kind="tenants")
    if not t:
        return
    L.append("### 4. Two tenants at 10:1, with and without VTC\n")
    L.append(f"One stream of {t[0]['requests']} Poisson arrivals at {t[0]['rate']:.1f} req/s, twice the larger of "
             "the capacity and the all-resident rows' steady rate (measured just before: the machine's speed drifts), "
             "so a queue builds and the scheduler's choice matters; each request the light tenant's with probability 1/11 (a 10:1 request "
             "ratio), Zipf alpha 1 over the adapters, at most 64 requests running.  **VTC**: braid's scheduler "
             "(virtual token counters: prompt + 2 x generated tokens; a tenant that becomes active is lifted to the "
             "smallest active counter).  **FCFS**: `br_sched_opts_t.fcfs`, the oldest waiting request of any tenant "
             "first.  Service = prompt + generated tokens served per second while requests arrive (0 to the last "
             "arrival: the contended period), demand = the tenant's requests' tokens over the same time; the **service gap** is the largest "
             f"|heavy - light| service (VTC cost units: prompt + 2 x generated, per second) over {WINDOW_S:g} s windows "
             f"(every {STEP_S:g} s) in which both tenants had a request waiting the whole window; windows = how many "
             "such windows there were (0: the light tenant never waited a whole window, gap 0).\n")
    L.append("| scheduler | heavy tok/s (demand) | light tok/s (demand) | heavy TTFT p50 / p99 s | light TTFT p50 / p99 s | worst service gap (cost/s) | windows both backlogged |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    res = {}
    for fcfs, name in ((False, "VTC"), (True, "FCFS")):
        st = [tenant_stats(r) for r in pick(runs, kind="tenants", fcfs=fcfs)]
        g = lambda t_, k: [s[0][t_][k] for s in st if s[0][t_][k] is not None]
        res[name] = {"gap": [s[1] for s in st], "windows": [s[2] for s in st], "light99": g(1, "ttft_p99"),
                     "light_tok": g(1, "tok_s"),
                     "heavy_tok": g(0, "tok_s")}
        L.append(f"| {name} | {spread(g(0, 'tok_s'), '{:.0f}')} ({med(g(0, 'demand_tok_s')):.0f}) | "
                 f"{spread(g(1, 'tok_s'), '{:.0f}')} ({med(g(1, 'demand_tok_s')):.0f}) | "
                 f"{spread(g(0, 'ttft_p50'))} / {spread(g(0, 'ttft_p99'))} | {spread(g(1, 'ttft_p50'))} / "
                 f"{spread(g(1, 'ttft_p99'))} | {spread([s[1] for s in st], '{:.0f}')} | {spread([s[2] for s in st], '{:.0f}')} |")
    L.append("")
    v, f = res["VTC"], res["FCFS"]
    V.append(f"- **VTC protects the light tenant**: light tenant's TTFT p99 {spread(v['light99'])} s with VTC vs "
             f"{spread(f['light99'])} s with FCFS -> "
             + ("**supported** (lower in every repeat)." if disjoint_below(v["light99"], f["light99"]) else
                "**not resolvable** (the repeats overlap)."))
    nw = {k: [s for s in res[k]["windows"]] for k in res}
    if not any(nw["VTC"]) and not any(nw["FCFS"]):
        verdict = ("**not tested**: neither scheduler let the light tenant wait a whole window, so no window had "
                   "both tenants backlogged (the offered overload was too short to build a queue).")
    elif disjoint_below(v["gap"], f["gap"]):
        verdict = "**supported** (smaller in every repeat)."
    elif not any(nw["VTC"]):
        verdict = ("**supported in the sense VTC promises**: under VTC the light tenant never waited a whole window "
                   "(no window had both backlogged), while FCFS had such windows in some repeats.")
    else:
        verdict = "**not resolvable** (the repeats overlap)."
    V.append(f"- **VTC bounds the service gap**: worst gap {spread(v['gap'], '{:.0f}')} with VTC "
             f"({spread(nw['VTC'], '{:.0f}')} windows both backlogged) vs {spread(f['gap'], '{:.0f}')} with FCFS "
             f"({spread(nw['FCFS'], '{:.0f}')} windows) (cost units/s) -> " + verdict)
    V.append(f"- **Service per tenant**: light tenant {spread(v['light_tok'], '{:.0f}')} tok/s with VTC vs "
             f"{spread(f['light_tok'], '{:.0f}')} with FCFS; heavy {spread(v['heavy_tok'], '{:.0f}')} vs "
             f"{spread(f['heavy_tok'], '{:.0f}')}.  The light tenant asks for 1/11 of the requests, less than its fair "
             "half, so VTC should serve it as it comes (service close to its demand) while FCFS makes it wait "
             "behind the heavy tenant's queue.")


def section(j, note):
    runs, w = j["runs"], j["workload"]
    ns = sorted({r["adapters"] for r in runs})
    reps = w["reps"]
    L = ["## Reviewer suite: capacity, load below it, skew, eviction, tenant fairness\n",
         "Generated by `bench/serve/report.py` (this part by `bench/serve/suite.py`) from `bench/serve/results.json`, "
         "written by `bash bench/serve/run.sh` (`--quick`: 10 adapters only):\n",
         "```sh\n./braid bench serve --suite [--quick] --json bench/serve/results.json\n```\n",
         f"In process on braid's scheduler (no HTTP): Llama-style model, width {w['hidden']}, {w['layers']} layers, "
         f"random weights (timing does not depend on them); adapters on q_proj and v_proj, ranks {w['rank']} and "
         f"{2 * w['rank']} alternating, PEFT folders on disk loaded by the registry's thread; prompts "
         f"{w['in'][0]}-{w['in'][1]} tokens of real text, outputs {w['out'][0]}-{w['out'][1]} tokens (`ignore_eos`), "
         f"greedy; at most {w['max_running']} requests running; {w['threads']} threads; every row repeated {reps} times "
         f"(each run recorded in results.json; a fresh scheduler and registry per run). {note}\n"]
    V = []
    load_rows(L, runs, ns, j["capacity"])
    load_verdicts(V, runs, ns)
    evict_rows(L, V, runs, ns, w)
    tenant_rows(L, V, runs)
    L.append("### Verdicts\n")
    L += V
    L.append("")
    L.append("### What this scale cannot test\n")
    L.append("- **GPU effects**: S-LoRA's claims are about GPU memory (unified paging of KV and adapter weights, "
             "custom kernels, host-to-device adapter copies).  Here everything is CPU memory on a shared 2-core VM; "
             "a \"cold start\" is a read of a PEFT folder from the page cache plus parsing, not a PCIe copy.")
    L.append("- **Model size**: a random "
             f"{w['hidden']}-wide, {w['layers']}-layer model; with 7B-class models the base forward dominates and "
             "adapter compute, loading and merging costs change in proportion.")
    L.append("- **Thousands of adapters under load**: the quick mode uses 10 adapters; the full mode adds 100 "
             "(>= 1000 requests per row).  S-LoRA's 2000 adapters would need >= 20,000 requests per row.")
    L.append("- **Absolute numbers**: the machine is shared (see the load average above); compare rows that ran "
             "interleaved (resident vs evict, VTC vs FCFS) rather than absolute throughput across sections.")
    L.append("- **Long-horizon fairness**: runs last seconds; VTC's bound is about backlogged tenants over any "
             "interval, and the gap here is measured over a few dozen windows per run.\n")
    return L
