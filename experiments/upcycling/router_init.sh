#!/usr/bin/env bash
# Routers before any training: how close does an untrained router initialised from domain text
# (--router-init hidden) get to a trained one, and to a random one?  On braid's own domains with
# the demo's seed and code/law/math experts (make demo builds them in runs/demo; SRC=DIR for
# others), for BTX top-1 and BAM, 3 seeds:
#   random          the default random router, untrained
#   hidden          rows from the mean router input of each domain's training text through the seed
#   random+train    random, then router-only training (braid train --train router, STEPS steps)
#   hidden+train    hidden, then the same router-only training
# Prints a markdown table (bits/byte per domain on the val split, own-expert share) with
# mean ± std over the seeds; everything else lands in runs/router-init/.
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
ev() { "$B" eval --model "$1" --data "$TOK" --domains general,code,law,math --max-tokens 16384 --batch 8 \
           --json "$1/eval.json" > "$1/eval.md" 2>/dev/null; }
for m in btx bam; do
    flags=(--method "$m"); [ "$m" = btx ] && flags+=(--top-k 1)
    for s in $SEEDS; do
        for init in random hidden; do
            d="$OUT/$m-$init-s$s"
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
/usr/bin/python3 - "$OUT" "$SEEDS" <<'PY'
import json, statistics as st, sys
out, seeds = sys.argv[1], sys.argv[2].split()
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
        cells.append(ms([100 * x for x in own]).replace(" ±", "% ±") + "%")
        print(f"| {name} | " + " | ".join(cells) + " |")
PY
