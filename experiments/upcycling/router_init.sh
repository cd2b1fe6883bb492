#!/usr/bin/env bash
# Routers before any training: how close does an untrained router initialised from domain text
# (--router-init hidden) get to a trained one, and to a random one?  On braid's own domains with
# the demo's seed and code/law/math experts (make demo builds them in runs/demo; SRC=DIR for
# others), for BTX top-1 and BAM, 3 seeds:
#   random          the default random router, untrained
#   hidden          rows from the mean router input of each domain's training text through the seed
#   random+train    random, then router-only training (braid train --train router, STEPS steps)
#   hidden+train    hidden, then the same router-only training
# Prints markdown tables (bits/byte per domain on the val split, own-expert share) with
# mean ± std over the seeds and puts them into experiments/upcycling/RESULTS.md, between the
# "router_init.sh" markers (replacing what is there); everything else lands in runs/router-init/.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${BRAID:-./braid}
SRC=${SRC:-runs/demo}
TOK=${TOK:-data/demo-tok}
OUT=${OUT:-runs/router-init}
STEPS=${STEPS:-150}
SEEDS=${SEEDS:-"1 2 3"}
EX="$SRC/expert-code,$SRC/expert-law,$SRC/expert-math"
TEXT="code=$TOK/code,law=$TOK/law,math=$TOK/math"   # token folders: their train split
mkdir -p "$OUT"
T0=$SECONDS
ev() { "$B" eval --model "$1" --data "$TOK" --domains general,code,law,math --max-tokens 16384 --batch 8 \
           --json "$1/eval.json" > "$1/eval.md" 2>/dev/null; }
# references: the dense seed and each expert (evaluated once; a rerun skips what exists)
for r in seed expert-code expert-law expert-math; do
    [ -f "$OUT/ref-$r.json" ] || "$B" eval --model "$SRC/$r" --data "$TOK" --domains general,code,law,math \
        --max-tokens 16384 --batch 8 --json "$OUT/ref-$r.json" > /dev/null 2>&1
done
for m in btx bam; do
    flags=(--method "$m"); [ "$m" = btx ] && flags+=(--top-k 1)
    for s in $SEEDS; do
        for init in random hidden; do
            d="$OUT/$m-$init-s$s"
            [ -f "$d-train/eval.json" ] && continue
            extra=(); [ "$init" = hidden ] && extra=(--domain-text "$TEXT")
            "$B" upcycle "${flags[@]}" --base "$SRC/seed" --experts "$EX" --router-init "$init" "${extra[@]}" \
                --seed "$s" --out "$d" > /dev/null 2>&1
            ev "$d"
            "$B" train --init "$d" --train router --data "$TOK" --mix general=1,code=1,law=1,math=1 --steps "$STEPS" \
                --warmup 10 --lr 3e-3 --batch 16 --seq 128 --seed "$s" --eval-interval 0 --ckpt-interval 0 \
                --out "$d-train" > /dev/null 2>&1
            cp "$d/upcycle.json" "$d-train/"
            ev "$d-train"
        done
    done
done
# wall time of all the work in OUT (a rerun that reuses runs adds only its own time)
echo $(( $(cat "$OUT/elapsed_s" 2>/dev/null || echo 0) + SECONDS - T0 )) > "$OUT/elapsed_s"
/usr/bin/python3 - "$OUT" "$SEEDS" "$STEPS" "$SRC" "$(cat "$OUT/elapsed_s")" <<'PY'
import json, os, statistics as st, sys
out, seeds, steps, src, secs = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4], sys.argv[5]
lines = []
def print(s=""): lines.append(s)
doms = ["general", "code", "law", "math"]
def ms(v): return f"{st.mean(v):.3f} ± {st.stdev(v) if len(v) > 1 else 0:.3f}"
for m in ["btx", "bam"]:
    print(f"\n**{m}{' top-1' if m == 'btx' else ''}** (bits/byte on val; own-expert share = tokens of code/law/math routed to their own domain's expert, mean over layers and the three domains)\n")
    print("| router | " + " | ".join(doms) + " | average | own-expert share |")
    print("|---|" + "---:|" * (len(doms) + 2))
    for init, name in [("random", "random, untrained"), ("hidden", "hidden, untrained"),
                       ("random-train", "random + router-only training"), ("hidden-train", "hidden + router-only training")]:
        base, tr = init.split("-")[0], "-train" if init.endswith("train") else ""
        js = [json.load(open(f"{out}/{m}-{base}-s{s}{tr}/eval.json")) for s in seeds]
        cells = [ms([j["domains"][d]["bits_per_byte"] for j in js]) for d in doms]
        cells.append(ms([sum(j["domains"][d]["bits_per_byte"] for d in doms) / len(doms) for j in js]))
        own = [sum(j["routing"]["specialisation"][d]["own_expert_share"] for d in doms[1:]) / 3 for j in js]
        cells.append(f"{100 * st.mean(own):.1f}% ± {100 * (st.stdev(own) if len(own) > 1 else 0):.1f}%")
        print(f"| {name} | " + " | ".join(cells) + " |")
ref = {r: json.load(open(f"{out}/ref-{r}.json"))["domains"] for r in ["seed", "expert-code", "expert-law", "expert-math"]}
print("\n**references** (dense models, bits/byte on val; *own expert* = each domain's expert on its own domain, the general column the seed's)\n")
print("| model | " + " | ".join(doms) + " | average |")
print("|---|" + "---:|" * (len(doms) + 1))
own = [ref["seed"]["general"]["bits_per_byte"]] + [ref[f"expert-{d}"][d]["bits_per_byte"] for d in doms[1:]]
for name, v in [("seed (dense)", [ref["seed"][d]["bits_per_byte"] for d in doms]), ("own expert", own)]:
    print(f"| {name} | " + " | ".join(f"{x:.3f}" for x in v) + f" | {sum(v) / len(v):.3f} |")
body = "\n".join(lines)
sys.stdout.write(body + "\n")
md = "experiments/upcycling/RESULTS.md"
start, end = "<!-- router_init.sh: start -->", "<!-- router_init.sh: end -->"
text = open(md).read() if os.path.exists(md) else ""
intro = (f"Seed and code/law/math experts: `{src}` (the `make demo` models: 4 layers, width 64, parallel blocks); "
         f"router samples: each domain's train split (16384 tokens); evaluation: val split, 16384 tokens per domain; "
         f"router-only training: {steps} steps x 16 x 128 tokens of general+code+law+math, lr 3e-3; seeds {', '.join(seeds)} "
         f"(router init for random, data order for training; hidden is deterministic, so its untrained rows show std 0). "
         f"Command: `experiments/upcycling/router_init.sh` ({secs} s on 2 cores shared with other builds and tests).\n")
section = f"{start}\n## Routers before training (`--router-init hidden`)\n\n{intro}{body}\n{end}"
if start in text and end in text:
    text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(md + ".tmp", "w").write(text)
os.replace(md + ".tmp", md)
PY
