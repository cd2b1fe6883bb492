#!/usr/bin/env python3
"""bench/infer/RESULTS.md from bench/infer/run.sh's JSON lines: medians per (model, type,
threads, engine), braid/llama.cpp ratios, 2-thread prefill scaling, and decode bytes/token as a
share of the copy and read-only bandwidths measured in the same run.
usage: report.py RAW.jsonl MACHINE.txt COMMAND"""
import json
import re
import statistics
import sys
from collections import defaultdict

raw, machine, command = sys.argv[1], sys.argv[2], sys.argv[3]
runs = defaultdict(list)  # (size, type, threads, engine) -> [record]
bw = defaultdict(list)    # threads -> [copy GB/s]
rbw = defaultdict(list)   # threads -> [read-only GB/s] (runs since the read stream was added)
skips = []
for line in open(raw):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if "skip" in r:
        skips.append(f"{r['skip']}: {r['why']}")
        continue
    if r["engine"] == "copy":
        bw[r["threads"]].append(r["copy_gb_s"])
        if "read_gb_s" in r:
            rbw[r["threads"]].append(r["read_gb_s"])
        continue
    m = re.search(r"([0-9a-z]+)-([a-z0-9_]+)\.gguf$", r["file"])
    runs[(m.group(1), m.group(2), r["threads"], r["engine"])].append(r)


def med(key, field):
    v = [r[field] for r in runs.get(key, []) if field in r]
    return statistics.median(v) if v else None


def fmt(v, d=1):
    return "—" if v is None else f"{v:.{d}f}"


def ratio(a, b):
    return "—" if a is None or not b else f"{a / b:.2f}x"


sizes = sorted({k[0] for k in runs}, key=lambda s: float(s[:-1]) * (1000 if s.endswith("b") else 1))
types = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k"]
bwm = {t: statistics.median(v) for t, v in bw.items()}
rbwm = {t: statistics.median(v) for t, v in rbw.items()}
out = []
out.append("# braid vs llama.cpp: inference on random-weight Llama GGUF files\n")
out.append("Written by `bench/infer/run.sh` (issue #14). Each cell is the median over rounds of "
           "separate processes pinned with `taskset` (1 thread: CPU 0, 2 threads: CPUs 0-1), the "
           "engines' order alternating between rounds, on the same GGUF file. braid runs twice: "
           "with `OPENBLAS_CORETYPE=Haswell` (what these machines set; \"hw\") and with "
           "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` (OpenBLAS's own choice; \"own\"); "
           "OpenBLAS is only used by F32 GEMMs. llama.cpp is node-llama-cpp 3.21.1's prebuilt CPU "
           "build (`bench/infer/llama_bench.mjs`).\n")
out.append("- prefill: the prompt's tokens in one batch (logits of the last); decode: greedy steps of "
           "one token (logits every step).\n"
           "- ratio = braid (best of hw/own for the ratio column; both shown) / llama.cpp.\n"
           "- BW% = decode tokens/s x bytes read per token (every matrix, one embedding row) / the "
           "stream-like copy bandwidth at that thread count measured in the same run (read + write "
           "bytes, as STREAM's Copy counts them), then / the read-only stream (a sum over the "
           "same buffer: what decode does with its weights) where the run measured it: \"copy / read\".\n"
           "- CPU ratio = llama.cpp's CPU seconds per token / braid's (hw) for the phase, whole process, every thread "
           "(> 1: braid needs less CPU). On a loaded machine a pinned process gets only a share of its "
           "CPUs, which wall time counts and CPU time does not; with 2 threads llama.cpp's spinning "
           "workers count too.\n"
           "- llama.cpp's decode may stop early (run.sh's --llama-max-s); its tok/s is then over the "
           "steps that ran (listed under the table).\n"
           "- RSS: peak resident set of the whole process (MiB); llama.cpp's includes node (~50 MiB).\n")
out.append("## Machine and load\n")
out.append("```\n" + open(machine).read().strip() + "\n```\n")
out.append("copy bandwidth (median of the measurements before and after): " +
           ", ".join(f"{t} thread{'s' if t > 1 else ''} {v:.2f} GB/s" for t, v in sorted(bwm.items())) + "\n")
if rbwm:
    out.append("read-only bandwidth (same measurements): " +
               ", ".join(f"{t} thread{'s' if t > 1 else ''} {v:.2f} GB/s" for t, v in sorted(rbwm.items())) + "\n")
out.append("The machine is shared with other engineers' builds and tests: see the load averages above; "
           "treat differences under ~15% as noise.\n")
out.append("## Table\n")
out.append("| model (prefill/decode) | type | thr | prefill tok/s braid hw / own | llama.cpp | ratio | CPU ratio "
           "| decode tok/s braid hw / own | llama.cpp | ratio | CPU ratio | braid BW% | llama BW% | 2t/1t prefill "
           "| RSS braid / llama |")
out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for s in sizes:
    for ty in types:
        for t in (1, 2):
            k = lambda e: (s, ty, t, e)
            if not any(k(e) in runs for e in ("braid-haswell", "braid-own", "llama.cpp")):
                continue
            ph, po, pl = med(k("braid-haswell"), "prefill_tok_s"), med(k("braid-own"), "prefill_tok_s"), med(k("llama.cpp"), "prefill_tok_s")
            dh, do, dl = med(k("braid-haswell"), "decode_tok_s"), med(k("braid-own"), "decode_tok_s"), med(k("llama.cpp"), "decode_tok_s")
            pb = max([v for v in (ph, po) if v is not None], default=None)
            db = max([v for v in (dh, do) if v is not None], default=None)
            bpt = med(k("braid-haswell"), "decode_bytes_per_token") or med(k("braid-own"), "decode_bytes_per_token")
            def pct(d):
                if d is None or not bpt or t not in bwm:
                    return "—"
                c = f"{100 * d * bpt / 1e9 / bwm[t]:.0f}%"
                return c if t not in rbwm else f"{c} / {100 * d * bpt / 1e9 / rbwm[t]:.0f}%"
            scal = "—"
            if t == 2:
                p1 = max([v for v in (med((s, ty, 1, "braid-haswell"), "prefill_tok_s"),
                                      med((s, ty, 1, "braid-own"), "prefill_tok_s")) if v is not None], default=None)
                scal = ratio(pb, p1)
            lens = next(((r.get("prefill"), r.get("decode")) for e in ("braid-haswell", "llama.cpp") for r in runs.get(k(e), [])), (None, None))
            def cpu_per_token(e, field):
                # CPU seconds per token of the phase (llama.cpp's decode may have run fewer steps)
                n = "prefill" if field == "prefill_cpu_s" else "decode"
                v = [r[field] / (r.get("decode_steps", r[n]) if n == "decode" else r[n])
                     for r in runs.get(k(e), []) if field in r and r.get(n)]
                return statistics.median(v) if v else None
            def cpu_ratio(field):
                b = cpu_per_token("braid-haswell", field)
                l = cpu_per_token("llama.cpp", field)
                return "—" if not b or l is None else f"{l / b:.2f}x"
            rss = f"{fmt(med(k('braid-haswell'), 'peak_rss_mib'), 0)} / {fmt(med(k('llama.cpp'), 'peak_rss_mib'), 0)}"
            out.append(f"| {s} ({lens[0]}/{lens[1]}) | {ty.upper()} | {t} | {fmt(ph)} / {fmt(po)} | {fmt(pl)} | {ratio(pb, pl)} "
                       f"| {cpu_ratio('prefill_cpu_s')} | {fmt(dh, 2)} / {fmt(do, 2)} | {fmt(dl, 2)} | {ratio(db, dl)} "
                       f"| {cpu_ratio('decode_cpu_s')} | {pct(db)} | {pct(dl)} | {scal} | {rss} |")
short = sorted({f"{k[0]} {k[1]} {k[2]}t: {r['decode_steps']}/{r['decode']} steps"
                for k, v in runs.items() if k[3] == "llama.cpp" for r in v if r.get("decode_steps", 0) < r.get("decode", 0)})
if short:
    out.append("\nllama.cpp decode cut short (--llama-max-s): " + "; ".join(short))
if skips:
    out.append("\nskipped: " + "; ".join(skips))
if not any(k[1] == "q4_k" for k in runs):
    out.append("\nQ4_K: no row in this run (add `q4_k` to `--types`; Q4_K needs a width that is a multiple of "
               "256, so the 24m model (288) has none).\n")
else:
    out.append("\nQ4_K: no 24m row (its width 288 is not a multiple of Q4_K's 256-value super-blocks).\n")
out.append("## Commands\n")
out.append("```\n" + command + "\n# per cell, per round (FILE = $BRAID_BENCH_CACHE/SIZE-TYPE.gguf, written by\n"
           "#   braid bench infer --make SIZE --dir $BRAID_BENCH_CACHE):\n"
           "OPENBLAS_CORETYPE=Haswell taskset -c CPUS ./braid bench infer --gguf FILE --threads T --prefill 512 --decode 128 --json\n"
           "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE taskset -c CPUS ./braid bench infer --gguf FILE --threads T ... --json\n"
           "taskset -c CPUS node bench/infer/llama_bench.mjs .npm-local/llama-cpp/node_modules FILE T 512 128\n"
           "taskset -c CPUS ./braid bench infer --bandwidth --threads T --json\n```\n")
out.append("Raw JSON lines of this run: `bench/infer/RESULTS.jsonl`.\n")
print("\n".join(out))
