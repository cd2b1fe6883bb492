#!/usr/bin/python3
"""Reads experiments/rfos/runs/*/{summary.json,log.jsonl}; writes RESULTS.md and SVG plots.
usage: report.py RUNS_DIR OUT_DIR"""
import glob
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svg  # noqa: E402

runs, out = sys.argv[1], sys.argv[2]


def load(name):
    d = os.path.join(runs, name)
    with open(os.path.join(d, "summary.json")) as f:
        s = json.load(f)
    log = []
    with open(os.path.join(d, "log.jsonl")) as f:
        for line in f:
            if line.strip():
                log.append(json.loads(line))
    return s, log


def first_known(log, target):
    for r in log:
        if r.get("known_pairs", 0) >= target:
            return r["meta_steps"]
    return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return float(np.median(xs)) if xs else None


def fit(xs, ys):
    pts = [(x, y) for x, y in zip(xs, ys) if y]
    if len(pts) < 2:
        return None
    a = np.polyfit([math.log10(p[0]) for p in pts], [math.log10(p[1]) for p in pts], 1)
    return float(a[0]), float(a[1])


def fmt(v, p=3):
    if v is None:
        return "—"
    if isinstance(v, float) and (abs(v) >= 1e5):
        return f"{v:.3g}"
    if isinstance(v, float):
        return f"{v:.{p}f}"
    return str(v)


variants = {"history": [1, 2, 3, 4], "qgrid": [1, 3, 7, 15]}
data = {}
for kind, params in variants.items():
    for p in params:
        key = f"{kind}-{'h' if kind == 'history' else 'k'}{p}"
        rows = []
        for d in sorted(glob.glob(os.path.join(runs, key + "-s*"))):
            try:
                rows.append(load(os.path.basename(d)))
            except (OSError, ValueError):
                pass
        if rows:
            data[(kind, p)] = rows

md = ["# R-FOS and M-FOS experiments", "",
      "Produced by `experiments/rfos/run.sh` (runs: `braid rl rfos` / `braid rl mfos`, raw outputs in",
      "`experiments/rfos/runs/*/summary.json` and `log.jsonl`; this file and the plots by `report.py`).",
      "Reference R-FOS configuration throughout: matching pennies, epsilon-greedy Q-learner opponent",
      "(epsilon 0.1, Q0 0.5, Q <- 0.75 r + 0.25 Q), R-max gamma 0.8, epsilon 0.2, delta 0.2, Boltzmann",
      "temperature 0.25, m = floor(|S| ln(1/delta) / (epsilon (1-gamma))^2), 10 meta-steps per meta-episode.",
      "A sample is one meta-step (one inner round).", ""]

scal = {}
for kind in variants:
    rows_md = []
    xs, all_known, half_known, near = [], [], [], []
    for p in variants[kind]:
        if (kind, p) not in data:
            continue
        rows = data[(kind, p)]
        s0 = rows[0][0]
        pairs, reach = s0["pairs"], s0.get("reachable_pairs", s0["pairs"])
        ak = [r[0]["samples_to_all_known"] for r in rows]
        hk = [first_known(r[1], math.ceil(0.5 * reach)) for r in rows]
        nk = [r[0]["samples_to_near_optimal"] if kind == "qgrid" else r[0]["samples_to_near_final"] for r in rows]
        known_end = [r[1][-1]["known_pairs"] for r in rows]
        steps = [r[0]["meta_steps"] for r in rows]
        fin = [r[0]["final_mean_reward"] for r in rows]
        gre = [r[0]["greedy_mean_reward"] for r in rows]
        xs.append(pairs)
        all_known.append(med(ak) if all(a is not None for a in ak) else None)
        half_known.append(med(hk))
        near.append(med(nk))
        opt = s0["optimal_mean_reward"] if kind == "qgrid" else s0.get("upper_bound_mean_reward")
        extra = ""
        if kind == "qgrid":
            pv = [r[0]["policy_value"] for r in rows]
            extra = f" | {s0['optimal_value']:.3f} | {np.mean(pv):.3f}"
        rows_md.append(
            f"| {p} | {s0['states']} | {pairs} | {reach} | {s0['m']} | {sum(a is not None for a in ak)}/{len(rows)}"
            f" | {fmt(med(ak))} | {fmt(med(hk))} | {fmt(med(nk))} | {np.mean(known_end):.1f} | {fmt(med(steps))}"
            f" | {np.mean(fin):.3f} ± {np.std(fin):.3f} | {np.mean(gre):.3f} ± {np.std(gre):.3f} | {fmt(opt)}{extra} |")
    scal[kind] = (xs, all_known, half_known, near)
    if kind == "history":
        md += ["## R-FOS, meta-state = last h joint actions (|S| = 4^h)", "",
               "Medians over seeds; `all known` counts the seeds that made every pair known within the cap",
               "(h = 3, 4 are capped, see run.sh).  `near-final`: first 1000-step block whose mean reward is",
               "within 0.05 of the run's final mean reward.  Upper bound: the full-information optimum",
               "1 - epsilon/2 = 0.95 (match the opponent's greedy action); the last h joint actions are not a",
               "Markov state, so the true optimum over h-history policies is below it and not computed.", "",
               "| h | \\|S\\| | \\|S\\|\\|A\\| | reachable pairs | m | all known | samples to all known | to 50% known | to near-final | known at end | meta-steps run | final mean reward (Boltzmann) | greedy policy | upper bound |",
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"] + rows_md + [""]
    else:
        md += ["## R-FOS, meta-state = opponent's Q-table on a grid of step 1/K (|S| = (K+1)^2): exact optimum", "",
               "The opponent's Q-values live on the grid, so this meta-MDP is Markov and known; value iteration",
               "on it gives the exact optimal discounted value (optimal value, from the start state) and the",
               "long-run mean reward of the optimal policy.  `policy value` is the exact discounted value of",
               "R-max's final greedy policy (optimistic about still-unknown pairs) from the start state.",
               "Reachable pairs: found by search over all actions and outcomes from the start state.",
               "`near-optimal`: first 1000-step block whose mean reward >= optimum - 0.05.", "",
               "| K | \\|S\\| | \\|S\\|\\|A\\| | reachable pairs | m | all known | samples to all known | to 50% known | to near-optimal | known at end | meta-steps run | final mean reward (Boltzmann) | greedy policy | optimal mean reward | optimal value | policy value |",
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"] + rows_md + [""]

# Scaling plots and slopes.
md += ["## Sample complexity against |S||A|", "",
       "The R-max bound grows as |S||A| m (each pair needs m samples) with m proportional to |S|; with",
       "|A| = 2 fixed that is (|S||A|)^2: **predicted log-log slope 2** (the full PAC bound adds",
       "polylog factors and a 1/((1-gamma) epsilon) horizon factor that do not change with |S|).",
       "Fitted slopes (least squares on log10 of the medians over seeds; all-known only at sizes where\nevery seed got there, the others over the seeds that did):", "",
       "| variant | quantity | fitted slope | sizes used |", "|---|---|---|---|"]
for kind in variants:
    xs, ak, hk, nr = scal.get(kind, ([], [], [], []))
    series = []
    for name, ys, col in (("all pairs known", ak, svg.COLORS[0]), ("50% of pairs known", hk, svg.COLORS[1]),
                          ("near-final" if kind == "history" else "near-optimal", nr, svg.COLORS[2])):
        f = fit(xs, ys)
        used = [x for x, y in zip(xs, ys) if y]
        md.append(f"| {kind} | samples to {name} | {fmt(f[0], 2) if f else '—'} | {used} |")
        pts = [(x, y) for x, y in zip(xs, ys) if y]
        if pts:
            lab = f"{name} (slope {f[0]:.2f})" if f else name
            series.append({"x": [p[0] for p in pts], "y": [p[1] for p in pts], "label": lab, "style": "both", "color": col})
    if xs:
        ms = [data[(kind, p)][0][0]["m"] for p in variants[kind] if (kind, p) in data]
        series.append({"x": xs, "y": [x * m for x, m in zip(xs, ms)], "label": "|S||A| m (slope 2)", "style": "line",
                       "color": "#000", "dash": "5,4"})
        # every seed's 50%-known point, to show the spread behind the medians
        sx, sy = [], []
        for p in variants[kind]:
            for s_, log_ in data.get((kind, p), []):
                v = first_known(log_, math.ceil(0.5 * s_.get("reachable_pairs", s_["pairs"])))
                if v:
                    sx.append(s_["pairs"])
                    sy.append(v)
        if sx:
            series.append({"x": sx, "y": sy, "label": "50% known, each seed", "style": "points", "color": "#f4a6a6"})
        svg.plot(os.path.join(out, f"scaling_{kind}.svg"), series,
                 f"R-FOS ({kind}): samples vs |S||A| (medians of 5 seeds)", "|S||A| (meta-state x meta-action pairs)",
                 "meta-steps (samples)", xlog=True, ylog=True)
md += ["", "![scaling history](scaling_history.svg)", "![scaling qgrid](scaling_qgrid.svg)", ""]

# Reward vs known pairs (seed 1 of each history size, fraction of pairs known).
series = []
for i, p in enumerate(variants["history"]):
    if ("history", p) not in data:
        continue
    s, log = data[("history", p)][0]
    xs = [r["known_pairs"] / s["pairs"] for r in log if r["known_event"]]
    ys = [r["mean_reward"] for r in log if r["known_event"]]
    if xs:
        series.append({"x": xs, "y": ys, "label": f"h = {p}", "style": "both", "color": svg.COLORS[i]})
if series:
    svg.plot(os.path.join(out, "reward_vs_known.svg"), series,
             "R-FOS (history): mean reward vs fraction of pairs known (seed 1)", "known pairs / |S||A|",
             "mean meta-reward since previous record", hlines=[(0.95, "upper bound 0.95", "#555"), (0.5, "random 0.5", "#aaa")])
series = []
for i, p in enumerate(variants["history"]):
    if ("history", p) not in data:
        continue
    s, log = data[("history", p)][0]
    series.append({"x": [r["meta_steps"] for r in log], "y": [r["mean_reward"] for r in log], "label": f"h = {p}",
                   "style": "line", "color": svg.COLORS[i]})
if series:
    svg.plot(os.path.join(out, "reward_vs_samples.svg"), series, "R-FOS (history): mean reward vs meta-steps (seed 1)",
             "meta-steps", "mean meta-reward", xlog=True, hlines=[(0.95, "upper bound 0.95", "#555")])
md += ["## Mean reward against known pairs", "",
       "![reward vs known](reward_vs_known.svg)", "![reward vs samples](reward_vs_samples.svg)", ""]

# Final vs optimal.
fx, fy, gy, oy, labels = [], [], [], [], []
i = 0
for kind in variants:
    for p in variants[kind]:
        if (kind, p) not in data:
            continue
        rows = data[(kind, p)]
        i += 1
        fx.append(i)
        fy.append(float(np.mean([r[0]["final_mean_reward"] for r in rows])))
        gy.append(float(np.mean([r[0]["greedy_mean_reward"] for r in rows])))
        s0 = rows[0][0]
        oy.append(s0["optimal_mean_reward"] if kind == "qgrid" else s0.get("upper_bound_mean_reward"))
        labels.append(f"{kind} {'h' if kind == 'history' else 'K'}={p}")
if fx:
    svg.plot(os.path.join(out, "final_vs_optimal.svg"),
             [{"x": fx, "y": fy, "label": "final (Boltzmann)", "style": "points", "color": svg.COLORS[0]},
              {"x": fx, "y": gy, "label": "greedy policy", "style": "points", "color": svg.COLORS[1]},
              {"x": fx, "y": oy, "label": "optimum / bound", "style": "points", "color": "#000"}],
             "Final mean reward vs optimum (means over seeds)",
             "configuration (1-4: history h=1..4, 5-8: qgrid K=1,3,7,15)", "mean meta-reward", ylim=(0.5, 1.0))
md += ["## Final reward against the optimum", "",
       "x = 1..4: history h = 1..4 (black: full-information upper bound); x = 5..8: qgrid K = 1, 3, 7, 15",
       "(black: exact optimum by value iteration).  Means over seeds.", "", "![final vs optimal](final_vs_optimal.svg)", ""]

# M-FOS.
mf = sorted(glob.glob(os.path.join(runs, "mfos-*")))
if mf:
    md += ["## M-FOS (IPD [[-1,-3],[0,-2]]; one run in matching pennies, payoffs 1/0), memory-1, exact values, discount 0.96", "",
           "Meta-episode: 50 opponent updates (one exact gradient step, lr 1, per meta-step) from random",
           "initial opponent logits N(0,1).  Evaluation: the trained shaper (deterministic) against 256 fresh",
           "opponents; payoffs are per-step averages over the whole meta-episode and over its last meta-step.",
           "Baselines on the same opponents: a naive learner and LOLA in the shaper's seat (both learning).",
           "Extortion check: shaper above mutual cooperation (-1) and above the opponent.", "",
           "| run | shaper | opponent | shaper (last step) | opponent (last step) | naive vs opp. | LOLA vs opp. | extortion | wall s |",
           "|---|---|---|---|---|---|---|---|---|"]
    series = []
    for i, d in enumerate(mf):
        with open(os.path.join(d, "summary.json")) as f:
            s = json.load(f)
        name = os.path.basename(d)
        md.append(f"| {name} | {s['shaper_payoff']:.3f} | {s['opponent_payoff']:.3f} | {s['shaper_payoff_last']:.3f} | "
                  f"{s['opponent_payoff_last']:.3f} | {s['naive_shaper_payoff']:.3f} / {s['naive_opponent_payoff']:.3f} | "
                  f"{s['lola_shaper_payoff']:.3f} / {s['lola_opponent_payoff']:.3f} | {'yes' if s['extortion'] else 'no'} | {s['wall_s']:.1f} |")
        if name.startswith("mfos-ipd-naive") and name.endswith("s1"):
            log = [json.loads(l) for l in open(os.path.join(d, "log.jsonl")) if l.strip()]
            algo = name.split("-")[3]
            series.append({"x": [r["iteration"] for r in log], "y": [r["shaper"] for r in log],
                           "label": f"{algo}: shaper", "style": "line", "color": svg.COLORS[len(series)]})
            series.append({"x": [r["iteration"] for r in log], "y": [r["opponent"] for r in log],
                           "label": f"{algo}: naive opponent", "style": "line", "color": svg.COLORS[len(series)], "dash": "4,3"})
    if series:
        svg.plot(os.path.join(out, "mfos_ipd.svg"), series, "M-FOS vs naive learner, IPD (seed 1): per-step payoff",
                 "iteration (ES generation / PPO update)", "mean per-step payoff",
                 hlines=[(-1, "mutual cooperation", "#555"), (-2, "mutual defection", "#aaa")])
    md += ["", "![mfos](mfos_ipd.svg)", ""]

sp = os.path.join(runs, "speed-h2", "summary.json")
if os.path.exists(sp):
    with open(sp) as f:
        s = json.load(f)
    md += ["## Speed", "",
           f"`braid rl rfos --history 2 --seed 1 --after-known 200000000 --eval-steps 0`: {s['meta_steps']:.3g} meta-steps in "
           f"{s['cpu_s']:.2f} s of CPU time = **{s['meta_steps_per_cpu_s'] / 1e6:.0f} million meta-steps/s on one core** "
           f"({s['meta_steps_per_s'] / 1e6:.0f} million/s wall-clock on the shared machine; goal 50 million/s).", ""]
    rates = [r[0]["meta_steps_per_cpu_s"] for k in data for r in data[k]]
    if rates:
        md += [f"Across all R-FOS runs: median {np.median(rates) / 1e6:.0f} million meta-steps per CPU-second "
               f"(min {min(rates) / 1e6:.0f}, max {max(rates) / 1e6:.0f}).", ""]

# Summary at the top, from the numbers above.
summ = ["## Summary", ""]
slopes = {}
for kind in variants:
    xs, ak, hk, nr = scal.get(kind, ([], [], [], []))
    slopes[kind] = [fit(xs, ak), fit(xs, hk), fit(xs, nr)]
def sl(f):
    return f"{f[0]:.2f}" if f else "n/a"
def gmean(kind, p, key):
    return float(np.mean([r[0][key] for r in data[(kind, p)]])) if (kind, p) in data else float("nan")
hs = [p for p in variants["history"] if ("history", p) in data]
ks = [p for p in variants["qgrid"] if ("qgrid", p) in data]
k_opt = [p for p in ks if gmean("qgrid", p, "greedy_mean_reward") >= gmean("qgrid", p, "optimal_mean_reward") - 0.005]
k_val = [p for p in ks if abs(gmean("qgrid", p, "policy_value") - gmean("qgrid", p, "optimal_value")) < 1e-6]
hmax = max(hs) if hs else None
known_hmax = float(np.mean([r[1][-1]["known_pairs"] for r in data[("history", hmax)]])) if hmax else float("nan")
steps_hmax = float(np.median([r[0]["meta_steps"] for r in data[("history", hmax)]])) if hmax else float("nan")
if data:
    summ += [
        f"* **Scaling.**  Bound's prediction: slope 2 in |S||A| (|S||A| m, m proportional to |S|).  Measured on the",
        f"  history meta-state: samples to all pairs known {sl(slopes['history'][0])} (h = 1, 2 only: for h >= 3 no seed",
        f"  made every pair known within the cap), to 50% known {sl(slopes['history'][1])}, to near-final reward",
        f"  {sl(slopes['history'][2])}; on the exact qgrid meta-MDP: all known {sl(slopes['qgrid'][0])} (K = 1, 3), 50% known",
        f"  {sl(slopes['qgrid'][1])}, near-optimal {sl(slopes['qgrid'][2])}.  Reaching *every* pair grows faster than the",
        "  bound's |S||A| m because some pairs need several rare opponent explorations in a row (visit",
        "  probability ~0.05^k); with gamma = 0.8 R-max's optimism stops paying for the trip to such a pair, so",
        f"  for large tables the known set saturates (history h = {hmax}: {known_hmax:.0f} of {4 ** hmax * 2} pairs known after"
        f" {steps_hmax:.2g} meta-steps).",
        "  Near-optimal behaviour comes far earlier and grows at or below the predicted slope.",
        "* **Optimality.**  On the exact (qgrid) meta-MDP, R-max's greedy policy reaches the optimal long-run",
        f"  mean reward (within 0.005) for K in {k_opt}; its exact discounted start-state value equals the optimum",
        f"  for K in {k_val} (elsewhere the greedy policy still heads for optimistic unknown pairs from the start",
        "  state).  With the last h joint actions as meta-state the greedy policy's reward is "
        + ", ".join(f"{gmean('history', p, 'greedy_mean_reward'):.3f}" for p in hs) + f" for h = {hs},",
        "  below the full-information 0.95: h recent actions do not pin down the opponent's Q-table.",
    ]
    mfr = []
    for d in mf:
        with open(os.path.join(d, "summary.json")) as f:
            mfr.append((os.path.basename(d), json.load(f)))
    es = [r for n, r in mfr if n.startswith("mfos-ipd-naive-es")]
    ppo = [r for n, r in mfr if n.startswith("mfos-ipd-naive-ppo")]
    if es or ppo:
        summ += [
            f"* **M-FOS extortion (IPD vs naive learner).**  ES: {sum(r['extortion'] for r in es)}/{len(es)} seeds extort "
            f"(shaper {np.mean([r['shaper_payoff'] for r in es]):.3f} per step vs mutual cooperation -1, opponent "
            f"{np.mean([r['opponent_payoff'] for r in es]):.3f}); PPO: {sum(r['extortion'] for r in ppo)}/{len(ppo)} "
            f"(shaper {np.mean([r['shaper_payoff'] for r in ppo]):.3f}, opponent {np.mean([r['opponent_payoff'] for r in ppo]):.3f}).",
            "  At the last meta-step the shaper gets "
            f"{min(r['shaper_payoff_last'] for r in es + ppo):.2f} to {max(r['shaper_payoff_last'] for r in es + ppo):.2f}"
            f" while the naive learner gets {np.mean([r['opponent_payoff_last'] for r in es + ppo]):.2f} on average;",
            f"  naive-vs-naive gives {np.mean([r['naive_shaper_payoff'] for r in es + ppo]):.2f} and LOLA-vs-naive "
            f"{np.mean([r['lola_shaper_payoff'] for r in es + ppo]):.2f} to the learner in the shaper's seat (same opponents).",
        ]
    summ.append("")
md[9:9] = summ

with open(os.path.join(out, "RESULTS.md.tmp"), "w") as f:
    f.write("\n".join(md) + "\n")
os.replace(os.path.join(out, "RESULTS.md.tmp"), os.path.join(out, "RESULTS.md"))
print("wrote", os.path.join(out, "RESULTS.md"))
