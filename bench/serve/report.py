#!/usr/bin/python3
"""bench/serve/RESULTS.md: the reviewer suite (`braid bench serve --suite`, bench/serve/results.json,
section by suite.py) and the policy comparison (`braid bench serve`, bench/serve/policies.json, with
its SVG plots).  Sections from "## Load test" on are hand-written and kept as they are.
Usage: /usr/bin/python3 bench/serve/report.py [machine note]   (bench/serve/run.sh runs it)"""
import json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suite  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
COLORS = {"batched": "#1f77b4", "one-adapter": "#ff7f0e", "merge": "#2ca02c"}


def svg_plot(path, title, ylabel, series, xs, logx=True):
    import math
    W, H, L, B, T, R = 560, 340, 70, 50, 40, 150
    ys = [v for s in series.values() for v in s if v is not None]
    ymax = max(ys) * 1.1 if ys else 1
    def X(x):
        lo, hi = math.log10(xs[0]), math.log10(xs[-1]) if len(xs) > 1 else math.log10(xs[0]) + 1
        return L + (math.log10(x) - lo) / ((hi - lo) or 1) * (W - L - R)
    def Y(y):
        return H - B - y / ymax * (H - B - T)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W/2 - R/2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{L}" y1="{H-B}" x2="{W-R}" y2="{H-B}" stroke="black"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H-B}" stroke="black"/>',
           f'<text x="{(L+W-R)/2}" y="{H-12}" text-anchor="middle">adapters (log scale)</text>',
           f'<text x="16" y="{(T+H-B)/2}" text-anchor="middle" transform="rotate(-90 16 {(T+H-B)/2})">{ylabel}</text>']
    for x in xs:
        out.append(f'<line x1="{X(x):.1f}" y1="{H-B}" x2="{X(x):.1f}" y2="{H-B+5}" stroke="black"/>')
        out.append(f'<text x="{X(x):.1f}" y="{H-B+18}" text-anchor="middle">{x}</text>')
    for k in range(5):
        y = ymax * k / 4
        out.append(f'<line x1="{L-5}" y1="{Y(y):.1f}" x2="{W-R}" y2="{Y(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L-8}" y="{Y(y)+4:.1f}" text-anchor="end">{y:.3g}</text>')
    for i, (name, vals) in enumerate(series.items()):
        pts = [(X(x), Y(v)) for x, v in zip(xs, vals) if v is not None]
        c = COLORS.get(name, "black")
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (c, " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)))
        for a, b in pts:
            out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{c}"/>')
        out.append(f'<rect x="{W-R+15}" y="{T+10+22*i}" width="14" height="4" fill="{c}"/>')
        out.append(f'<text x="{W-R+35}" y="{T+16+22*i}">{name}</text>')
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


def policy_section(j):
    res, w, d = j["results"], j["workload"], j["decode"]
    ns = sorted({r["adapters"] for r in res})
    pols = ["batched", "one-adapter", "merge"]
    get = lambda n, p, k: next((r[k] for r in res if r["adapters"] == n and r["policy"] == p), None)
    svg_plot(os.path.join(HERE, "throughput.svg"), "Throughput vs number of adapters", "requests / s",
             {p: [get(n, p, "req_s") for n in ns] for p in pols}, ns)
    svg_plot(os.path.join(HERE, "ttft.svg"), "Time to first token (p90) vs number of adapters", "seconds",
             {p: [get(n, p, "ttft_p90") for n in ns] for p in pols}, ns)
    note = j.get("note", "")
    L = []
    L.append("## Policy comparison: batched LoRA vs baselines (S-LoRA workload, overload)\n")
    L.append("From `bench/serve/policies.json`, written by (full mode of run.sh)\n")
    L.append("```sh\n./braid bench serve --requests %d --json bench/serve/policies.json\n```\n" % w["requests"])
    L.append(f"Workload (S-LoRA's): {w['requests']} requests per run, Gamma inter-arrival times at lambda = "
             f"{w['rate']:g} req/s with cv = {w['cv']:g}, adapter of each request floor(n X) with X ~ power law "
             f"(alpha = {w['alpha']:g}; 1 = uniform), prompt {w['in'][0]}-{w['in'][1]} tokens (windows of real text: "
             f"Debian's GPL-3), output {w['out'][0]}-{w['out'][1]} tokens (uniform, `ignore_eos`), greedy. Model: "
             f"Llama-style, width {w['hidden']}, {w['layers']} layers, random weights (timing does not depend on them); "
             f"adapters on q_proj and v_proj with ranks {w['rank']} and {2*w['rank']} alternating (mixed ranks), "
             f"written as PEFT folders and loaded on demand from disk during the run (cold starts included). "
             f"Each row is the median (by req/s) of {len(res[0].get('req_s_all_reps', [1]))} runs, the three policies "
             f"interleaved. Threads: {w['threads']}. {note}\n")
    L.append("Policies (all in the same run, same scheduler, same requests):\n")
    L.append("- **batched**: braid serve's scheduler: any mix of adapters in one batch (SGMV segments + BGMV rows).")
    L.append("- **one-adapter**: a batch only holds requests of one adapter; the next adapter's requests wait until "
             "the batch drains (llama.cpp server's grouping).")
    L.append("- **merge**: as one-adapter, but the adapter is merged into the base weights (W + s B A) at each switch "
             "and unmerged after (PEFT-style weight swapping; no LoRA compute in the forward).\n")
    L.append("| adapters | policy | req/s | tok/s | p50 s | p90 s | p99 s | TTFT mean s | TTFT p90 s | TTFT SLO (%g s) | batched / this |" % w["slo"])
    L.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in ns:
        b = get(n, "batched", "req_s")
        for p in pols:
            r = next(r for r in res if r["adapters"] == n and r["policy"] == p)
            L.append(f"| {n} | {p} | {r['req_s']:.1f} | {r['tok_s']:.0f} | {r['p50']:.2f} | {r['p90']:.2f} | "
                     f"{r['p99']:.2f} | {r['ttft_mean']:.2f} | {r['ttft_p90']:.2f} | {100*r['slo']:.0f}% | {b/r['req_s']:.2f}x |")
    L.append("\n![throughput](throughput.svg) ![ttft](ttft.svg)\n")
    b1, bn = get(ns[0], "batched", "req_s"), get(ns[-1], "batched", "req_s")
    L.append("## Goals\n")
    L.append(f"- Throughput with {ns[-1]} adapters vs with {ns[0]}: {bn:.1f} / {b1:.1f} req/s = **{100*bn/b1:.0f}%** (goal >= 90%).")
    if 100 in ns:
        L.append(f"- Batched vs merge-per-switch at 100 adapters: **{get(100, 'batched', 'req_s') / get(100, 'merge', 'req_s'):.1f}x** "
                 f"(goal >= 5x); vs one adapter per batch: {get(100, 'batched', 'req_s') / get(100, 'one-adapter', 'req_s'):.1f}x.")
    L.append(f"- Decode, base model, prompt 16, {d['out_tokens']} new tokens: one request **{d['single_tok_s']:.0f} tok/s**; "
             f"8 concurrent requests **{d['concurrent8_tok_s']:.0f} tok/s** aggregate ({d['concurrent8_tok_s']/d['single_tok_s']:.1f}x).\n")
    return L


def main():
    note = sys.argv[1] if len(sys.argv) > 1 else ""
    path = os.path.join(HERE, "RESULTS.md")
    old = open(path).read() if os.path.exists(path) else ""
    tail = old[old.index("## Load test"):] if "## Load test" in old else ""
    L = ["# braid serve: serving benchmark\n"]
    L += suite.section(json.load(open(os.path.join(HERE, "results.json"))), note)
    pol = os.path.join(HERE, "policies.json")
    if os.path.exists(pol):
        L += policy_section(json.load(open(pol)))
    text = "\n".join(L) + "\n" + tail
    tmp = path + ".tmp"
    open(tmp, "w").write(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
