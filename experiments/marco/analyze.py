#!/usr/bin/python3
"""Summarise a MARCO experiment (experiments/marco/run.sh).

usage:
  analyze.py select SWEEP_TASK_DIR
      prints "ANNEAL UPDATES" of the model-free setting with the largest area under the
      learning curve (mean over the tuning seeds) in SWEEP_TASK_DIR/aA-uU/seedS/log.jsonl
  analyze.py report RUNS_DIR SWEEP_DIR MODE SECONDS SEEDS "TUNE_SEEDS"
      RUNS_DIR holds TASK/METHOD/seedN/log.jsonl (one JSON object per evaluation) and
      summary.json; writes RESULTS.md + results.json (full) or RESULTS-quick.md +
      results-quick.json, a learning-curve SVG and a ratio-curve SVG per task.

The sample-efficiency ratio of a MARCO variant at target return g, on seed s, is
(real steps the model-free learner of seed s needs to reach g) / (real steps MARCO of seed s
needs), where "reach" means: the first evaluation (after step 0) whose return, averaged with the
next evaluation's, is >= g.  Targets: 10 evenly spaced returns from just above the untrained
policy's return (step-0 evaluation, mean over the model-free seeds) up to the model-free
plateau (mean over seeds of the mean of its last 3 evaluations)."""
import glob
import json
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
COLORS = {"vdn": "#1f77b4", "qmix": "#1f77b4", "marco-no-explore": "#ff7f0e", "marco": "#2ca02c"}
LABELS = {"vdn": "VDN (model-free)", "qmix": "QMIX (model-free)",
          "marco-no-explore": "MARCO without exploration", "marco": "MARCO"}
N_TARGETS = 10


def read_run(d):
    """(log rows, summary) of a finished run; None for a missing or unfinished one (no summary)."""
    path = os.path.join(d, "log.jsonl")
    if not os.path.exists(path) or not os.path.exists(os.path.join(d, "summary.json")):
        return None
    rows = [json.loads(l) for l in open(path) if l.strip()]
    summ = os.path.join(d, "summary.json")
    return rows, json.load(open(summ))


def load(runs):
    out = {}
    for path in sorted(glob.glob(os.path.join(runs, "*", "*", "seed*", "log.jsonl"))):
        parts = path.split(os.sep)
        task, method, seed = parts[-4], parts[-3], int(parts[-2][4:])
        r = read_run(os.path.dirname(path))
        if r:
            out.setdefault(task, {}).setdefault(method, {})[seed] = r
    return out


def auc(rows, budget=None):
    """Area under the learning curve (trapezoids over real steps), divided by the steps covered:
    the mean return over training.  Step 0 (the untrained policy) is included."""
    pts = [(x["real_steps"], x["eval_return"]) for x in rows]
    if budget is not None:
        pts = [p for p in pts if p[0] <= budget]
    if len(pts) < 2:
        return pts[0][1] if pts else None
    a = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(pts, pts[1:]))
    return a / (pts[-1][0] - pts[0][0])


def sweep_table(task_dir):
    """{(anneal, updates): [auc per tuning seed]}"""
    res = {}
    for cfg in sorted(glob.glob(os.path.join(task_dir, "a*-u*"))):
        name = os.path.basename(cfg)
        an, up = name[1:].split("-u")
        for sd in sorted(glob.glob(os.path.join(cfg, "seed*"))):
            r = read_run(sd)
            if r:
                res.setdefault((int(an), int(up)), []).append(auc(r[0]))
    return res


def select(task_dir):
    t = sweep_table(task_dir)
    if not t:
        sys.exit(f"analyze.py select: no sweep runs under {task_dir}")
    # ties (e.g. nothing learned anywhere) go to the smaller anneal, then more updates
    best = max(t, key=lambda k: (statistics.mean(t[k]), -k[0], k[1]))
    return best


def steps_to(rows, target):
    """Real steps of the first evaluation whose return, averaged with the next one, reaches
    the target (None if never)."""
    if target is None:
        return None
    r = [x["eval_return"] for x in rows]
    for i in range(len(r)):
        if rows[i]["real_steps"] <= 0:  # the untrained policy does not count
            continue
        v = (r[i] + r[i + 1]) / 2 if i + 1 < len(r) else r[i]
        if v >= target:
            return rows[i]["real_steps"]
    return None


def value_at(rows, steps):
    """Return of the last evaluation at or before `steps` real steps."""
    best = None
    for x in rows:
        if x["real_steps"] <= steps:
            best = x["eval_return"]
    return best


def final(rows, k=3):
    r = [x["eval_return"] for x in rows[-k:]]
    return sum(r) / len(r)


def mean_sd(v, nd=3):
    v = [x for x in v if x is not None]
    if not v:
        return "n/a"
    if len(v) == 1:
        return f"{v[0]:.{nd}f}"
    return f"{statistics.mean(v):.{nd}f} ± {statistics.stdev(v):.{nd}f}"


def oracle(n, days):
    """P(all n prisoners in the room within `days` days): the return of the oracle that tells as
    soon as all have been in (an upper bound on the Dec-POMDP optimum)."""
    return sum((-1) ** k * math.comb(n, k) * ((n - k) / n) ** days for k in range(n + 1))
def svg_plot(task, methods, path):
    W, H, L, R, T, B = 640, 400, 70, 20, 40, 55
    pts = [(x["real_steps"], x["eval_return"]) for m in methods.values() for rows, _ in m.values()
           for x in rows if x["real_steps"] > 0]
    if not pts:
        return
    xmin = min(p[0] for p in pts)
    xmax = max(p[0] for p in pts)
    ymin = min(p[1] for p in pts)
    ymax = max(p[1] for p in pts)
    if ymax - ymin < 1e-6:
        ymax = ymin + 1
    pad = 0.05 * (ymax - ymin)
    ymin, ymax = ymin - pad, ymax + pad
    lx0, lx1 = math.log10(xmin), math.log10(max(xmax, xmin * 1.0001))

    def X(s):
        return L + (math.log10(max(s, xmin)) - lx0) / (lx1 - lx0) * (W - L - R)

    def Y(v):
        return T + (ymax - v) / (ymax - ymin) * (H - T - B)

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W/2}" y="22" text-anchor="middle" font-size="15">{task}: greedy return vs real environment steps</text>',
         f'<line x1="{L}" y1="{H-B}" x2="{W-R}" y2="{H-B}" stroke="black"/>',
         f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H-B}" stroke="black"/>',
         f'<text x="{(L+W-R)/2}" y="{H-15}" text-anchor="middle">real environment steps (log scale)</text>',
         f'<text x="18" y="{(T+H-B)/2}" text-anchor="middle" transform="rotate(-90 18 {(T+H-B)/2})">mean greedy return over seeds (band: min-max)</text>']
    for e in range(int(math.floor(lx0)), int(math.ceil(lx1)) + 1):
        for mul in (1, 2, 5):
            s = mul * 10 ** e
            if xmin <= s <= xmax:
                o.append(f'<line x1="{X(s):.1f}" y1="{H-B}" x2="{X(s):.1f}" y2="{H-B+5}" stroke="black"/>')
                o.append(f'<text x="{X(s):.1f}" y="{H-B+18}" text-anchor="middle">{s:g}</text>')
    for k in range(6):
        v = ymin + k * (ymax - ymin) / 5
        o.append(f'<line x1="{L-5}" y1="{Y(v):.1f}" x2="{W-R}" y2="{Y(v):.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{L-8}" y="{Y(v)+4:.1f}" text-anchor="end">{v:.2f}</text>')
    ly = T + 8
    for method, seeds in methods.items():
        c = COLORS.get(method, "black")
        grid = sorted({x["real_steps"] for rows, _ in seeds.values() for x in rows if x["real_steps"] > 0})
        mean, lo, hi = [], [], []
        for s in grid:
            vals = [value_at(rows, s) for rows, _ in seeds.values()]
            vals = [v for v in vals if v is not None]
            mean.append(sum(vals) / len(vals)), lo.append(min(vals)), hi.append(max(vals))
        if not grid:
            continue
        band = " ".join(f"{X(s):.1f},{Y(v):.1f}" for s, v in zip(grid, hi))
        band += " " + " ".join(f"{X(s):.1f},{Y(v):.1f}" for s, v in reversed(list(zip(grid, lo))))
        o.append(f'<polygon points="{band}" fill="{c}" fill-opacity="0.15" stroke="none"/>')
        line = " ".join(f"{X(s):.1f},{Y(v):.1f}" for s, v in zip(grid, mean))
        o.append(f'<polyline points="{line}" fill="none" stroke="{c}" stroke-width="2"/>')
        o.append(f'<line x1="{L+12}" y1="{ly}" x2="{L+36}" y2="{ly}" stroke="{c}" stroke-width="3"/>')
        o.append(f'<text x="{L+42}" y="{ly+4}">{LABELS.get(method, method)}</text>')
        ly += 16
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def ratio_svg(task, targets, curves, first_eval, path):
    """Ratio (log scale) against target return: per MARCO variant the median over the seeds
    where both reached the target, band min-max, hollow markers where fewer than all seeds
    give a ratio."""
    W, H, L, R, T, B = 640, 400, 70, 20, 40, 55
    vals = [r for c in curves.values() for per in c for r in per if r]
    if not vals or not targets:
        return False
    lo = min(min(vals), 0.5)
    hi = max(max(vals), 2.0)
    ly0, ly1 = math.log10(lo) - 0.05, math.log10(hi) + 0.05
    x0, x1 = targets[0], targets[-1]
    if x1 - x0 < 1e-9:
        x1 = x0 + 1

    def X(v):
        return L + (v - x0) / (x1 - x0) * (W - L - R)

    def Y(r):
        return T + (ly1 - math.log10(r)) / (ly1 - ly0) * (H - T - B)

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W/2}" y="22" text-anchor="middle" font-size="15">{task}: model-free / MARCO real steps to reach a return</text>',
         f'<line x1="{L}" y1="{H-B}" x2="{W-R}" y2="{H-B}" stroke="black"/>',
         f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H-B}" stroke="black"/>',
         f'<text x="{(L+W-R)/2}" y="{H-15}" text-anchor="middle">target return (untrained policy -> model-free plateau)</text>',
         f'<text x="18" y="{(T+H-B)/2}" text-anchor="middle" transform="rotate(-90 18 {(T+H-B)/2})">sample-efficiency ratio (log; median, band min-max)</text>']
    for r in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100):
        if lo <= r <= hi:
            o.append(f'<line x1="{L-5}" y1="{Y(r):.1f}" x2="{W-R}" y2="{Y(r):.1f}" stroke="{"#888" if r == 1 else "#ddd"}"/>')
            o.append(f'<text x="{L-8}" y="{Y(r)+4:.1f}" text-anchor="end">{r:g}x</text>')
    for k, v in enumerate(targets):
        if k % 2 == 0 or k == len(targets) - 1:
            o.append(f'<text x="{X(v):.1f}" y="{H-B+18}" text-anchor="middle">{v:.2f}</text>')
    ly = T + 8
    for m, per in curves.items():
        c = COLORS[m]
        pts = [(targets[k], statistics.median(p), min(p), max(p), len(p)) for k, p in enumerate(per) if p]
        if not pts:
            continue
        if len(pts) > 1:
            band = " ".join(f"{X(t):.1f},{Y(h):.1f}" for t, _, _, h, _ in pts)
            band += " " + " ".join(f"{X(t):.1f},{Y(l):.1f}" for t, _, l, _, _ in reversed(pts))
            o.append(f'<polygon points="{band}" fill="{c}" fill-opacity="0.15" stroke="none"/>')
            o.append(f'<polyline points="{" ".join(f"{X(t):.1f},{Y(md):.1f}" for t, md, _, _, _ in pts)}" fill="none" stroke="{c}" stroke-width="2"/>')
        nseeds = max(p[4] for p in pts)
        for t, md, _, _, n in pts:
            fill = c if n == nseeds else "white"
            o.append(f'<circle cx="{X(t):.1f}" cy="{Y(md):.1f}" r="4" fill="{fill}" stroke="{c}" stroke-width="2"/>')
        o.append(f'<line x1="{L+12}" y1="{ly}" x2="{L+36}" y2="{ly}" stroke="{c}" stroke-width="3"/>')
        o.append(f'<text x="{L+42}" y="{ly+4}">{LABELS[m]} (first evaluation at {first_eval.get(m, "?")} real steps)</text>')
        ly += 16
    o.append(f'<text x="{L+12}" y="{ly+4}" fill="#555">hollow: fewer seeds reached the target with both methods</text>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")
    return True


def fmt_ratio(per):
    if not per:
        return "—"
    if len(per) == 1:
        return f"{per[0]:.2f}x"
    return f"{statistics.median(per):.2f}x ({min(per):.2f}-{max(per):.2f})"


def analyze_task(task, methods, sweep_dir, mode):
    """-> (markdown lines, results dict, verdict facts)"""
    mf = "qmix" if "qmix" in methods else "vdn"
    order = [m for m in (mf, "marco-no-explore", "marco") if m in methods]
    methods = {m: methods[m] for m in order}
    any_summary = next((s for rows, s in methods[order[0]].values() if s), {})
    n_agents = any_summary.get("n_agents")
    env = any_summary.get("env", task)
    res = {"env": env, "n_agents": n_agents, "model_free": mf, "methods": {}}
    md = [f"## {task} ({env}, {n_agents} agents)\n"]
    # the model-free setting chosen on the tuning seeds
    table = sweep_table(os.path.join(sweep_dir, task)) if sweep_dir else {}
    if table:
        best = select(os.path.join(sweep_dir, task))
        res["sweep"] = {f"eps_anneal={a},updates={u}": v for (a, u), v in sorted(table.items())}
        res["chosen"] = {"eps_anneal": best[0], "updates": best[1]}
        cells = ", ".join(f"{a}/{u}: {statistics.mean(v):.3f}" + (" **(chosen)**" if (a, u) == best else "")
                          for (a, u), v in sorted(table.items()))
        md.append(f"Model-free tuning ({LABELS[mf]}, tuning seeds only, not reported below): mean return over "
                  f"training (area under the learning curve / real steps) per `--eps-anneal`/`--updates`: {cells}.\n")
    rand = statistics.mean(rows[0]["eval_return"] for rows, _ in methods[mf].values())
    plateau = statistics.mean(final(rows) for rows, _ in methods[mf].values())
    res["untrained_return"], res["model_free_plateau"] = rand, plateau
    if env.startswith("switch") and n_agents:
        days = 4 * n_agents - 6
        res["oracle_return"] = oracle(n_agents, days)
        md.append(f"Oracle return (tell as soon as all {n_agents} have been in the room within {days} days; an upper "
                  f"bound on the optimum): {res['oracle_return']:.3f}.\n")
    svg = f"marco_{task}{'' if mode == 'full' else '_quick'}.svg"
    svg_plot(task, methods, os.path.join(HERE, svg))
    md.append(f"![{task}]({svg})\n")
    budgets = {m: max(s.get("real_steps", rows[-1]["real_steps"]) for rows, s in methods[m].values()) for m in order}
    mb = min((budgets[m] for m in order if m.startswith("marco")), default=budgets[mf])
    first_eval = {m: min((r["real_steps"] for rows, _ in methods[m].values() for r in rows if r["real_steps"] > 0), default=None)
                  for m in order}
    md.append("| method | seeds | real-step budget | first evaluation after | final return (mean ± sd) | "
              f"return at {mb} real steps (mean ± sd) | mean return over training (AUC/steps) |")
    md.append("|---|---|---|---|---|---|---|")
    for m in order:
        seeds = methods[m]
        fin = [final(rows) for rows, _ in seeds.values()]
        at = [value_at(rows, mb) for rows, _ in seeds.values()]
        au = [auc(rows, mb) for rows, _ in seeds.values()]
        md.append(f"| {LABELS[m]} | {len(seeds)} | {budgets[m]} | {first_eval[m]} | {mean_sd(fin)} | {mean_sd(at)} | {mean_sd(au)} |")
        res["methods"][m] = {"budget": budgets[m], "first_eval": first_eval[m], "seeds": {
            str(sd): {"final_return": final(rows), f"return_at_{mb}": value_at(rows, mb), f"auc_to_{mb}": auc(rows, mb),
                      "param_hash": s.get("param_hash")} for sd, (rows, s) in sorted(seeds.items())}}
    md.append("")
    facts = {"task": task, "learned": plateau > rand + 1e-9, "curves": {}, "mf_first": None}
    if plateau <= rand + 1e-9:
        md.append(f"The model-free plateau ({plateau:.3f}) is not above the untrained policy's return ({rand:.3f}): "
                  "nothing learned this task within the budget, so there is no target to compare at.\n")
        res["targets"] = []
        return md, res, facts
    targets = [rand + (k + 1) / N_TARGETS * (plateau - rand) for k in range(N_TARGETS)]
    res["targets"] = targets
    reach = {m: {sd: [steps_to(rows, g) for g in targets] for sd, (rows, _) in methods[m].items()} for m in order}
    for m in order:
        for sd in reach[m]:
            res["methods"][m]["seeds"][str(sd)]["steps_to_target"] = reach[m][sd]
    md.append(f"Ratio curve: model-free real steps / MARCO real steps to reach each target, paired by seed; "
              f"median (min-max) over the seeds where both reached it, and how many did. "
              f"Targets go from the untrained return ({rand:.3f}) to the model-free plateau ({plateau:.3f}).\n")
    ratio_file = f"marco_{task}_ratio{'' if mode == 'full' else '_quick'}.svg"
    hdr = "| target | " + " | ".join(f"{LABELS[m]}: seeds reaching (median steps)" for m in order) + \
          " | " + " | ".join(f"ratio vs {LABELS[m]}" for m in order if m != mf) + " |"
    md.append(hdr)
    md.append("|" + "---|" * (1 + len(order) + len(order) - 1))
    curves = {m: [] for m in order if m != mf}
    res["ratios"] = {m: [] for m in curves}
    for k, g in enumerate(targets):
        cells = []
        for m in order:
            v = [reach[m][sd][k] for sd in reach[m] if reach[m][sd][k] is not None]
            cells.append(f"{len(v)}/{len(reach[m])}" + (f" ({statistics.median(v):.0f})" if v else ""))
        for m in curves:
            per, cens = [], []
            for sd in sorted(reach[m]):
                a, b = reach[mf].get(sd, [None] * N_TARGETS)[k], reach[m][sd][k]
                if a is not None and b is not None:
                    per.append(a / b)
                    cens.append(a / b)
                elif a is None and b is not None:
                    cens.append(f">{budgets[mf] / b:.2f}")
                elif a is not None:
                    cens.append(f"<{a / budgets[m]:.2f}")
                else:
                    cens.append(None)
            curves[m].append(per)
            res["ratios"][m].append(cens)
            cells.append(fmt_ratio(per))
        md.append(f"| {g:.3f} ({(k + 1) * 100 // N_TARGETS}%) | " + " | ".join(cells) + " |")
    md.append("")
    if ratio_svg(task, targets, curves, first_eval, os.path.join(HERE, ratio_file)):
        md.append(f"![{task} ratio]({ratio_file})\n")
    md.append("A ratio `<x` in results.json: model-free reached the target, MARCO never did within its budget "
              "(so the ratio is below x); `>x`: the reverse.\n")
    facts["curves"] = curves
    facts["censored"] = res["ratios"]
    facts["targets"] = targets
    mfv = [v[0] for v in reach[mf].values() if v[0] is not None]
    facts["mf_first"] = statistics.median(mfv) if mfv else None
    facts["first_eval"] = first_eval
    facts["final"] = {m: [final(rows) for rows, _ in methods[m].values()] for m in order}
    facts["at_mb"] = {m: [value_at(rows, mb) for rows, _ in methods[m].values()] for m in order}
    facts["mb"] = mb
    facts["mf"] = mf
    return md, res, facts


def verdicts(all_facts):
    md = ["## Verdicts\n"]
    learned = [f for f in all_facts if f["learned"]]
    # claim 1: fewer real samples to the same return
    md.append("**Claim 1: MARCO reaches a given return with fewer real samples than the model-free learner.** "
              "Per task and target, the median over seeds of the ratio with censoring kept: a seed where only the "
              "model-free learner reached the target counts as ratio 0 (MARCO lost), one where only MARCO reached it "
              "as infinity, seeds where neither did are left out. Counted: targets with median > 1, out of the targets "
              "any seed reached.\n")
    best_ratio = None
    for f in learned:
        for m, per_t in f["curves"].items():
            meds, wins, meas = [], 0, 0
            for cens in f["censored"][m]:
                vals = [0.0 if isinstance(x, str) and x.startswith("<") else math.inf if isinstance(x, str) else x
                        for x in cens if x is not None]
                if not vals:
                    continue
                meas += 1
                med = statistics.median(vals)
                wins += med > 1
                if math.isfinite(med):
                    meds.append(med)
            top = max(meds) if meds else None
            if top is not None:
                best_ratio = top if best_ratio is None else max(best_ratio, top)
            if meas == 0:
                v = "not measurable: no target reached"
            elif wins > meas / 2:
                v = "supported on this task"
            elif wins == 0:
                v = "not supported: the model-free learner is as fast or faster at every target"
            else:
                v = (f"mixed, not supported overall: MARCO is faster only at {wins} of {meas} targets "
                     "(the table shows which)")
            md.append(f"- {f['task']} / {LABELS[m]}: median ratio > 1 at {wins} of {meas} targets"
                      + (f" (largest finite median {top:.2f}x)" if top is not None else "") + f". Verdict: {v}.")
    md.append("")
    md.append("**Claim 2: \"up to 20x fewer real samples\".** ")
    if best_ratio is None:
        md[-1] += "No ratio could be measured: not tested by this run."
    elif best_ratio >= 20:
        md[-1] += f"Largest median ratio {best_ratio:.1f}x: reached on at least one task/target."
    else:
        md[-1] += f"Largest median ratio over all tasks and targets: {best_ratio:.2f}x, below 20x: not reproduced here."
    md.append("")
    md.append("**Claim 3: the exploration policy makes MARCO more sample-efficient than MARCO without it.** "
              "Compared on the same seeds by final return (mean of the last 3 evaluations), paired by seed.\n")
    for f in learned:
        if "marco" in f["final"] and "marco-no-explore" in f["final"]:
            a, b = f["at_mb"]["marco"], f["at_mb"]["marco-no-explore"]
            fa, fb = f["final"]["marco"], f["final"]["marco-no-explore"]
            d = [x - y for x, y in zip(fa, fb)]
            sd = statistics.stdev(d) if len(d) > 1 else 0
            mean_d = statistics.mean(d)
            v = ("supported" if mean_d > sd and mean_d > 0 else
                 "contradicted" if mean_d < -sd and mean_d < 0 else "not resolved (difference within one sd of the paired seeds)")
            md.append(f"- {f['task']}: final return MARCO {mean_sd(fa)} vs without exploration {mean_sd(fb)}; "
                      f"paired difference {mean_d:+.3f} ± {sd:.3f}. Verdict: {v}.")
    for f in all_facts:
        if not f["learned"]:
            md.append(f"- {f['task']}: the model-free learner did not improve on the untrained policy: no verdict.")
    md.append("")
    return md


def main_report(argv):
    runs, sweep, mode, seconds, nseeds, tune = argv[0], argv[1], argv[2], int(argv[3]), int(argv[4]), argv[5]
    data = load(runs)
    full = mode == "full"
    title = "quick run (`--quick`: small budgets, NOT the full experiment)" if not full else "full run"
    md = [f"# MARCO vs model-free value decomposition — {title}\n"]
    md.append(f"Command: `experiments/marco/run.sh{'' if full else ' --quick'}` ({nseeds} reported seeds 1-{nseeds}, "
              f"model-free settings tuned on separate seeds {tune}; {seconds} s wall for all runs on 2 cores at nice 10"
              + ("" if full else ", on a machine shared with other jobs (load average about 15-20 on 2 cores), so "
                 "several times slower than on an idle machine") + "). "
              "Every number below is read from the runs' `log.jsonl` files by `experiments/marco/analyze.py`; "
              f"per-seed values are in `{'results.json' if full else 'results-quick.json'}`. Evaluation episodes are "
              "greedy, not counted as real steps, and use their own environments and random stream (training is "
              "bit-identical however often a run is evaluated: `tests/test_rl_marco_cli.c`).\n")
    if os.environ.get("MARCO_RUN_NOTE"):  # e.g. how an interrupted run was resumed
        md.append(f"Note on this run: {os.environ['MARCO_RUN_NOTE']}\n")
    if not full:
        md.append("Full mode, not run here: `experiments/marco/run.sh` (3 tasks: switch with 4 and 5 agents, "
                  "switch-bridges-5 with 3 agents; 5 seeds; 3x2 model-free sweep (annealing 2k/5k/10k, 1 or 4 "
                  "updates) on 1 tuning seed; model-free budget 24k real steps, MARCO 6k; sized to finish in "
                  "about an hour on 2 idle cores).\n")
    results = {"mode": mode, "seeds": nseeds, "tuning_seeds": tune.split(), "seconds": seconds,
               "n_targets": N_TARGETS, "tasks": {}}
    facts = []
    order = sorted(data, key=lambda t: (t.startswith("simple"), t))
    for task in order:
        tmd, tres, tf = analyze_task(task, data[task], sweep, mode)
        md.extend(tmd)
        results["tasks"][task] = tres
        facts.append(tf)
    md.extend(verdicts(facts))
    md.append("## What this scale cannot test\n")
    md.append("- The paper's absolute numbers: its budgets are millions of real steps on larger tasks (SMAC-like "
              "and particle tasks with more agents); here model-free budgets are 24k (12k quick) real steps.")
    md.append("- Whether a ratio grows with task difficulty beyond 5 agents or bridges longer than 5: random "
              "exploration reaches the riddle after bridges of length L with probability 2^-(L n), so larger "
              "settings need budgets this machine cannot give every seed and method.")
    md.append("- Hyper-parameter fairness on MARCO's side: MARCO's settings (model size, updates per iteration, "
              "beta) are not swept; only the model-free baseline is tuned. A tuned MARCO could do better.")
    md.append("- Wall-clock cost: MARCO spends far more computation per real step (model fits, policy training "
              "in the model); the ratio counts real steps only, as the claim does.")
    if not full:
        md.append("- Anything statistical at quick size: 3 seeds, 2x2 sweep on one tuning seed, small models; "
                  "read the quick run as a check that the pipeline works, not as evidence.")
    name = "RESULTS.md" if full else "RESULTS-quick.md"
    with open(os.path.join(HERE, name), "w") as f:
        f.write("\n".join(md) + "\n")
    tmp = os.path.join(HERE, ".results.json.tmp")
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, os.path.join(HERE, "results.json" if full else "results-quick.json"))
    print("\n".join(md))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "select":
        a, u = select(sys.argv[2])
        print(a, u)
    elif len(sys.argv) == 8 and sys.argv[1] == "report":
        main_report(sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
