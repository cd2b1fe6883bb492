#!/usr/bin/python3
"""R-FOS / M-FOS results.

  report.py --collect RUNS_DIR RESULTS.json   every run's summary.json and a thinned log.jsonl
                                              into one file (the raw runs stay out of git)
  report.py RESULTS.json OUT_DIR [SUFFIX]     RESULTS{SUFFIX}.md and the SVG plots
"""
import glob
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svg  # noqa: E402

POLICIES = ("boltzmann", "greedy")
HISTORY = (1, 2, 3, 4)
GRID = (1, 3, 7, 15)


def collect(runs, dest):
    """One JSON file: {run name: {"summary": ..., "log": [...]}}, each log evenly thinned to at
    most 24 records (enough for the plots)."""
    res = {"runs": {}}
    for d in sorted(glob.glob(os.path.join(runs, "*"))):
        sp = os.path.join(d, "summary.json")
        if not os.path.exists(sp):
            continue
        with open(sp) as f:
            s = json.load(f)
        log = []
        lp = os.path.join(d, "log.jsonl")
        if os.path.exists(lp):
            with open(lp) as f:
                log = [json.loads(line) for line in f if line.strip()]
        if len(log) > 24:
            idx = sorted(set(np.linspace(0, len(log) - 1, 24).round().astype(int).tolist()))
            log = [log[i] for i in idx]
        res["runs"][os.path.basename(d)] = {"summary": s, "log": log}
    la = os.path.join(runs, "speed-loadavg.txt")
    if os.path.exists(la):
        res["speed_loadavg_before"] = open(la).read().split()[:3]
    tmp = dest + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, dest)
    print("wrote", dest, f"({len(res['runs'])} runs)")


def fmt(v, p=3):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, (int, np.integer)):
        return f"{v:.3g}" if abs(v) >= 1e5 else str(int(v))
    return f"{v:.3g}" if abs(v) >= 1e5 else f"{v:.{p}f}"


def censored_median(vals, cens):
    """Median of right-censored counts: (low, high); high is None when censored runs could lie
    anywhere above (treating them as +inf moves the median), low treats them as observed."""
    lo = float(np.median(vals))
    hi_vals = [math.inf if c else v for v, c in zip(vals, cens)]
    hi = float(np.median(hi_vals))
    return lo, (hi if math.isfinite(hi) else None)


def fit(xs, ys):
    pts = [(x, y) for x, y in zip(xs, ys) if y and y > 0]
    if len(pts) < 2:
        return None
    return float(np.polyfit([math.log10(p[0]) for p in pts], [math.log10(p[1]) for p in pts], 1)[0])


def mean_sd(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "—"
    return f"{np.mean(xs):.3f} ± {np.std(xs, ddof=1) if len(xs) > 1 else 0:.3f}"


def report(path, out, suffix):
    with open(path) as f:
        res = json.load(f)
    runs = res["runs"]

    def group(prefix):
        return [runs[k] for k in sorted(runs) if k.rsplit("-s", 1)[0] == prefix]

    md = [f"# R-FOS and M-FOS experiments{' (quick mode)' if suffix else ''}", "",
          "Produced by `experiments/rfos/run.sh` (`QUICK=1` for the quick mode): `braid rl rfos` / `braid rl mfos`",
          f"runs collected into `experiments/rfos/results{suffix}.json` (summaries and thinned logs of every run;",
          "the raw runs stay in the git-ignored `experiments/rfos/runs/`), this file and the plots by `report.py`.",
          "Reference R-FOS configuration throughout: matching pennies, epsilon-greedy Q-learner opponent",
          "(epsilon 0.1, Q0 0.5, Q <- 0.75 r + 0.25 Q), R-max gamma 0.8, epsilon 0.2, delta 0.2,",
          "m = floor(|S| ln(1/delta) / (epsilon (1-gamma))^2), Boltzmann temperature 0.25 or greedy (`--greedy`,",
          "the theorem's algorithm), 10 meta-steps per meta-episode.  A sample is one meta-step (one inner round).", ""]
    summ = ["## Summary", ""]

    # ---- The PAC count on the exact meta-MDP. ----
    md += ["## The PAC count on the exactly solvable meta-MDP (qgrid)", "",
           "The R-max theorem bounds the number of steps t at which the algorithm's current policy is not",
           "epsilon-optimal from the state it is in: V^pi_t(s_t) < V*(s_t) - epsilon, with epsilon = 0.2 on the",
           "discounted scale (values in [0, 5]).  With the opponent's Q-table on a grid of step 1/K as meta-state,",
           "the meta-MDP is Markov and known, so `braid rl rfos --state qgrid` computes V* by value iteration and,",
           "every time R-max's policy changes (a pair becomes known), the exact V^pi of the policy it then",
           "executes (Boltzmann or greedy over its optimistic Q), and counts the steps taken from states where",
           "V^pi < V* - epsilon (`eps_bad_steps`).  A run is **censored** when the step cap ended it with reachable",
           "pairs still unknown (the policy could still change, so its count is a lower bound); censored runs are",
           "kept, not dropped: the median's range below treats them as observed (low) and as +inf (high).",
           "Reachable pairs: found by search from the start state; the bound's |S| is the reachable part.", ""]
    pac = {}
    for pol in POLICIES:
        rows = []
        for K in GRID:
            g = group(f"qgrid-{pol}-k{K}")
            if not g:
                continue
            s0 = g[0]["summary"]
            vals = [r["summary"]["eps_bad_steps"] for r in g]
            cens = [bool(r["summary"]["eps_censored"]) for r in g]
            after = [r["summary"]["eps_bad_after_known"] for r in g]
            last_inc = []
            for r in g:
                li, prev = 0, None
                for rec in r["log"]:
                    v = rec.get("eps_bad_steps")
                    if prev is not None and v is not None and v > prev:
                        li = rec["meta_steps"]
                    prev = v
                last_inc.append(li / max(1, r["summary"]["meta_steps"]))
            lo, hi = censored_median(vals, cens)
            pac[(pol, K)] = (s0["reachable_pairs"], lo, hi, vals, cens)
            ak = [r["summary"]["samples_to_all_known"] for r in g]
            rows.append(f"| {K} | {s0['states']} | {s0['reachable_pairs']} | {s0['m']} | "
                        + ", ".join(fmt(v) + ("+" if c else "") for v, c in zip(vals, cens))
                        + f" | {fmt(lo)}" + ("" if hi == lo else f" – {fmt(hi) if hi is not None else '∞'}")
                        + f" | {sum(cens)}/{len(g)} | {', '.join(fmt(a) if a is not None else '—' for a in after)}"
                        + f" | {np.median(last_inc):.2f} | {sum(a is not None for a in ak)}/{len(g)}"
                        + f" | {fmt(float(np.median([r['summary']['meta_steps'] for r in g])))}"
                        + f" | {mean_sd([r['summary']['greedy_mean_reward'] for r in g])} | {s0['optimal_mean_reward']:.3f} |")
        if rows:
            md += [f"### R-max with {pol} action choice", "",
                   "| K | \\|S\\| | reachable pairs | m | eps-bad steps per seed (+ censored) | median (range) | censored | after all known | last increase (fraction of run) | all known | meta-steps run | greedy policy mean reward | optimal mean reward |",
                   "|---|---|---|---|---|---|---|---|---|---|---|---|---|"] + rows + [""]
    fits = {}
    series = []
    for i, pol in enumerate(POLICIES):
        pts = [(pac[(pol, K)][0], pac[(pol, K)][1], pac[(pol, K)][2]) for K in GRID if (pol, K) in pac]
        if not pts:
            continue
        exact = [(x, lo) for x, lo, hi in pts if hi == lo]
        fits[pol] = (fit([p[0] for p in exact], [p[1] for p in exact]), [p[0] for p in exact],
                     fit([p[0] for p in pts], [p[1] for p in pts]), [p[0] for p in pts],
                     any(hi != lo for _, lo, hi in pts))
        series.append({"x": [p[0] for p in pts], "y": [max(p[1], 1) for p in pts], "label": f"{pol}: median (low end)",
                       "style": "both", "color": svg.COLORS[2 * i]})
        sx, sy, cx, cy = [], [], [], []
        for K in GRID:
            if (pol, K) not in pac:
                continue
            x, _, _, vals, cens = pac[(pol, K)]
            for v, c in zip(vals, cens):
                (cx if c else sx).append(x)
                (cy if c else sy).append(max(v, 1))
        if sx:
            series.append({"x": sx, "y": sy, "label": f"{pol}: each seed", "style": "points", "color": svg.COLORS[2 * i]})
        if cx:
            series.append({"x": cx, "y": cy, "label": f"{pol}: censored seed (lower bound)", "style": "points",
                           "color": svg.COLORS[2 * i + 1]})
    if series:
        xs = sorted({p[0] for p in pac.values()})
        y0 = min(p[1] for p in pac.values() if p[1] > 0) if any(p[1] > 0 for p in pac.values()) else 1
        series.append({"x": xs, "y": [y0 * (x / xs[0]) ** 2 for x in xs], "label": "slope 2 (the bound's |S|^2 |A|)",
                       "style": "line", "color": "#000", "dash": "5,4"})
        svg.plot(os.path.join(out, f"pac_count{suffix}.svg"), series,
                 "R-FOS (qgrid): meta-steps with a non-epsilon-optimal policy vs reachable pairs",
                 "reachable (state, action) pairs", "eps-bad meta-steps", xlog=True, ylog=True)
    md += ["Fitted log-log slope of the median count against reachable pairs (the bound: slope 2, since",
           "m grows with |S| and every pair needs m samples):", "",
           "| action choice | slope, uncensored sizes only | sizes | slope, all sizes (censored medians at their low end) | sizes |",
           "|---|---|---|---|---|"]
    for pol, (f1, x1, f2, x2, anyc) in fits.items():
        md.append(f"| {pol} | {fmt(f1, 2) if f1 is not None else '—'} | {x1} | {fmt(f2, 2) if f2 is not None else '—'}"
                  f"{' (a lower bound on the larger sizes)' if anyc else ''} | {x2} |")
    md += ["", f"![PAC count](pac_count{suffix}.svg)", ""]
    curve = []
    for i, K in enumerate(GRID):
        g = group(f"qgrid-boltzmann-k{K}")
        if g and g[0]["log"]:
            lg = [r for r in g[0]["log"] if r.get("eps_bad_steps") is not None]
            curve.append({"x": [r["meta_steps"] for r in lg], "y": [max(r["eps_bad_steps"], 1) for r in lg],
                          "label": f"K = {K}", "style": "line", "color": svg.COLORS[i]})
    if curve:
        svg.plot(os.path.join(out, f"pac_curve{suffix}.svg"), curve,
                 "R-FOS (qgrid, Boltzmann, seed 1): cumulative eps-bad meta-steps", "meta-steps", "eps-bad meta-steps",
                 xlog=True, ylog=True)
        md += ["The cumulative count over a run (seed 1); `last increase` in the tables above says where, as a",
               "fraction of the run, each seed's count last grew.", "", f"![PAC curve](pac_curve{suffix}.svg)", ""]

    # ---- History meta-state vs brute force. ----
    hrows, brute = [], {}
    for h in HISTORY:
        gb, gg = group(f"history-boltzmann-h{h}"), group(f"history-greedy-h{h}")
        if not gb:
            continue
        bf = [r["summary"] for r in gb if "brute_force_best_mean_reward" in r["summary"]]
        if bf:
            brute[h] = (float(np.mean([b["brute_force_best_mean_reward"] for b in bf])),
                        float(np.max([b["brute_force_best_stderr"] for b in bf])))
        s0 = gb[0]["summary"]
        known_end = [r["log"][-1]["known_pairs"] if r["log"] else None for r in gb]
        hrows.append(f"| {h} | {s0['states']} | {s0['pairs']} | {s0['m']} | {mean_sd([r['summary']['final_mean_reward'] for r in gb])}"
                     f" | {mean_sd([r['summary']['greedy_mean_reward'] for r in gb])}"
                     f" | {mean_sd([r['summary']['greedy_mean_reward'] for r in gg]) if gg else '—'}"
                     f" | {fmt(brute[h][0]) + ' ± ' + fmt(brute[h][1]) if h in brute else 'not computable (2^' + str(4 ** h) + ' policies)'}"
                     f" | {np.mean([k for k in known_end if k is not None]):.0f} of {s0['pairs']} | {s0['upper_bound_mean_reward']:.3f} |")
    if hrows:
        md += ["## The history meta-state (last h joint actions) against a brute-force optimum", "",
               "Not Markov (the opponent's real state is its Q-table), so value iteration cannot give the optimum.",
               "For h <= 2 `--brute-force` measures every deterministic policy over h-histories (16 and 65,536",
               "policies) by simulation with successive quartering on common random numbers, and re-runs the",
               "winner on an independent stream (± its standard error from 10 batch means; mean over seeds 1-3).",
               "The brute force optimises long-run mean reward, R-max discounted value (gamma 0.8).",
               "`greedy policy`: R-max's final greedy policy run for 1e6 meta-steps after training; Boltzmann runs",
               "a stochastic policy, which a deterministic brute force does not cover (in matching pennies",
               "randomising can pay).  Mean ± sample std over seeds.", "",
               "| h | \\|S\\| | \\|S\\|\\|A\\| | m | Boltzmann: final training reward | Boltzmann run: greedy policy | greedy R-max: greedy policy | brute-force best deterministic | known pairs at end (Boltzmann) | full-information bound |",
               "|---|---|---|---|---|---|---|---|---|---|"] + hrows + [""]

    # ---- M-FOS. ----
    mf = [(k, runs[k]["summary"]) for k in sorted(runs) if k.startswith("mfos-")]
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
        for name, s in mf:
            md.append(f"| {name} | {s['shaper_payoff']:.3f} | {s['opponent_payoff']:.3f} | {s['shaper_payoff_last']:.3f} | "
                      f"{s['opponent_payoff_last']:.3f} | {s['naive_shaper_payoff']:.3f} / {s['naive_opponent_payoff']:.3f} | "
                      f"{s['lola_shaper_payoff']:.3f} / {s['lola_opponent_payoff']:.3f} | {'yes' if s['extortion'] else 'no'} | {s['wall_s']:.1f} |")
            log = runs[name]["log"]
            if name.startswith("mfos-ipd-naive") and name.endswith("s1") and log:
                algo = name.split("-")[3]
                series.append({"x": [r["iteration"] for r in log], "y": [r["shaper"] for r in log],
                               "label": f"{algo}: shaper", "style": "line", "color": svg.COLORS[len(series)]})
                series.append({"x": [r["iteration"] for r in log], "y": [r["opponent"] for r in log],
                               "label": f"{algo}: naive opponent", "style": "line", "color": svg.COLORS[len(series)], "dash": "4,3"})
        if series:
            svg.plot(os.path.join(out, f"mfos_ipd{suffix}.svg"), series, "M-FOS vs naive learner, IPD (seed 1): per-step payoff",
                     "iteration (ES generation / PPO update)", "mean per-step payoff",
                     hlines=[(-1, "mutual cooperation", "#555"), (-2, "mutual defection", "#aaa")])
        md += ["", f"![mfos](mfos_ipd{suffix}.svg)", ""]

    # ---- Speed. ----
    sp = runs.get("speed-h2", {}).get("summary")
    if sp:
        la = res.get("speed_loadavg_before", ["?"] * 3)
        md += ["## Speed", "",
               f"`taskset -c 0 braid rl rfos --history 2 --seed 1 --after-known N --eval-steps 0`, run alone after every",
               f"other job (1/5/15-minute load averages just before: {' / '.join(la)}): {sp['meta_steps']:.3g} meta-steps in",
               f"{sp['wall_s']:.2f} s wall = **{sp['meta_steps_per_s'] / 1e6:.0f} million meta-steps/s** "
               f"({sp['meta_steps_per_cpu_s'] / 1e6:.0f} million per CPU-second; goal 50 million/s).", ""]

    # ---- Summary from the numbers above. ----
    if fits:
        for pol, (f1, x1, f2, x2, anyc) in fits.items():
            summ.append(f"* **PAC count, {pol} R-max (qgrid, exact).**  The median number of meta-steps with a non-epsilon-optimal"
                        f" policy grows with slope {fmt(f1, 2) if f1 is not None else 'n/a'} in the reachable pairs over the sizes"
                        f" where no run was censored ({x1})"
                        + (f", {fmt(f2, 2)} over all sizes with censored medians at their lower ends ({x2})" if f2 is not None and anyc else "")
                        + "; the bound allows slope 2.  "
                        + ("Too few uncensored sizes to fit a slope without the censored ones. " if len(x1) < 2 else
                           "Two sizes only: a two-point slope, not a fit. " if len(x1) == 2 else "")
                        + ("The measured growth is within the bound's." if f1 is not None and f1 <= 2.2 and (f2 is None or f2 <= 2.2) else
                           "The count grows faster than the bound's leading term here." if f1 is not None and f1 > 2.2 else ""))
    for h, (b, se) in brute.items():
        gb = group(f"history-boltzmann-h{h}")
        gg = group(f"history-greedy-h{h}")
        gm = float(np.mean([r["summary"]["greedy_mean_reward"] for r in gg])) if gg else float("nan")
        bm = float(np.mean([r["summary"]["final_mean_reward"] for r in gb]))
        verdict = ("near-optimal among deterministic policies" if gm >= b - 0.01 else
                   f"{b - gm:.3f} below the best deterministic policy")
        summ.append(f"* **History h = {h}.**  Greedy R-max's policy earns {gm:.3f}, the brute-force best deterministic policy "
                    f"{b:.3f} ± {se:.3f}: {verdict}; Boltzmann R-max's training reward is {bm:.3f}.")
    es = [s for n, s in mf if n.startswith("mfos-ipd-naive-es")]
    ppo = [s for n, s in mf if n.startswith("mfos-ipd-naive-ppo")]
    if es or ppo:
        summ.append(f"* **M-FOS extortion (IPD vs naive learner).**  ES: {sum(r['extortion'] for r in es)}/{len(es)} seeds extort "
                    f"(shaper {mean_sd([r['shaper_payoff'] for r in es])} per step vs mutual cooperation -1, opponent "
                    f"{mean_sd([r['opponent_payoff'] for r in es])}); PPO: {sum(r['extortion'] for r in ppo)}/{len(ppo)} "
                    f"(shaper {mean_sd([r['shaper_payoff'] for r in ppo])}).")
    summ += ["", "**What this scale cannot test.**  The paper's meta-MDPs are larger (longer histories, richer",
             "opponents) and its bound has polylog and horizon factors that a 4-size sweep cannot separate from the",
             "leading |S|^2|A| term; the count is measured for one game, one opponent and one (epsilon, delta, gamma).",
             "The history meta-state has no exact optimum beyond h = 2 (2^64 policies at h = 3).", ""]
    md[10:10] = summ
    dest = os.path.join(out, f"RESULTS{suffix}.md")
    with open(dest + ".tmp", "w") as f:
        f.write("\n".join(md) + "\n")
    os.replace(dest + ".tmp", dest)
    print("wrote", dest)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--collect":
        collect(sys.argv[2], sys.argv[3])
    elif len(sys.argv) in (3, 4):
        report(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else "")
    else:
        sys.exit(__doc__)
