#!/usr/bin/env bash
# Upcycling dense experts into mixtures of experts, at small scale on real text
# (../shared/papers/upcycling.md): a seed, three domain experts (code, law, math), then
#   BTM (ensemble), sparse upcycling, BTX top-1 and top-2, BAM expert-KV, BAM shared-KV, Nexus
# finetuned data-matched (same tokens) over several seeds and compute-matched (same training
# FLOPs as BTX top-1); then one more expert (the held-out bible domain) added to BTX and to
# Nexus with a short finetune on limited new-domain data.  Writes RESULTS.md, results.json and
# SVG plots beside this script (--quick: RESULTS-quick.md, results-quick.json, *-quick.svg).
#
#   experiments/upcycling/run.sh --quick   # < 15 min on 2 cores: tiny model, short runs
#   experiments/upcycling/run.sh           # full: 1.5 M parameters, 40 min on 2 cores (AMD EPYC)
#
# Runs are idempotent (a finished run is skipped), so an interrupted script resumes.
# Independent trainings run two at a time, one thread each (BRAID_JOBS to change).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"
B=${BRAID:-$ROOT/braid}
MODE=full
[ "${1:-}" = "--quick" ] && MODE=quick
JOBS=${BRAID_JOBS:-2}
if [ $MODE = quick ]; then
    W=runs/upcycling-quick; C=48; L=3; H=4; F=128; CTX=128; BATCH=16; SEQ=128
    SEED_STEPS=200; BRANCH_STEPS=100; MOE_STEPS=50; SEEDS="1 2 3"; EXT_BRANCH=60; EXT_STEPS=30
    EVAL_TOK=8192; MB=3
else
    W=runs/upcycling-full; C=128; L=6; H=4; F=384; CTX=128; BATCH=16; SEQ=128
    SEED_STEPS=1600; BRANCH_STEPS=600; MOE_STEPS=250; SEEDS="1 2 3"; EXT_BRANCH=300; EXT_STEPS=100
    EVAL_TOK=32768; MB=8
fi
TOK=$W/tok
DOMS=code,law,math
ALL=general,code,law,math
mkdir -p "$W" "$TOK"
T0=$(date +%s)
say() { echo "== [$(($(date +%s) - T0))s] $*" >&2; }
COMMON=(--data "$TOK" --batch $BATCH --seq $SEQ --eval-interval 0 --eval-batches 2 --ckpt-interval 0)
# wall time of every run: name seconds
TIMES=$W/times.tsv; touch "$TIMES"
timed() { # timed NAME CMD...: runs CMD unless NAME finished before, records its wall time
    local name=$1; shift
    if grep -q "^$name	" "$TIMES"; then return 0; fi
    local t=$(date +%s.%N)
    BRAID_QUIET=1 BRAID_THREADS=${THREADS:-1} "$@" > "$W/log-$name.txt" 2>&1 || { echo "run $name failed: see $W/log-$name.txt" >&2; tail -5 "$W/log-$name.txt" >&2; return 1; }
    echo "$name	$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')" >> "$TIMES"
}
export -f timed; export W TIMES B
par() { # runs the lines of stdin (shell commands) JOBS at a time
    xargs -P "$JOBS" -I{} bash -c '{}'
}

say "data: fetch, tokenizer (2048 ids, without the held-out bible), shards"
"$B" data fetch --domains general,code,law,math,bible --max-mb-per-domain $MB --quiet
[ -f "$TOK/tokenizer.json" ] || "$B" tokenizer train --input data/raw --exclude bible --vocab-size 2048 \
    --max-mb 8 --out "$TOK/tokenizer.json" > /dev/null
[ -f "$TOK/bible/val.bin" ] || "$B" data prepare --tokenizer "$TOK/tokenizer.json" --out "$TOK" --quiet \
    --domains general,code,law,math,bible > /dev/null

say "seed: C=$C L=$L F=$F, parallel blocks, $SEED_STEPS steps on $ALL"
cat > "$W/seed-config.json" <<EOF
{"model_type": "llama", "vocab_size": 2048, "hidden_size": $C, "intermediate_size": $F,
 "num_hidden_layers": $L, "num_attention_heads": $H, "num_key_value_heads": $H,
 "max_position_embeddings": $CTX, "tie_word_embeddings": true, "rms_norm_eps": 1e-5, "block": "parallel"}
EOF
THREADS=2 timed seed "$B" train --config "$W/seed-config.json" --mix general=1,code=1,law=1,math=1 \
    --out "$W/seed" --steps $SEED_STEPS --warmup 20 --lr 3e-3 "${COMMON[@]}"

say "branch: experts code, law, math (+ bible for the extension), $BRANCH_STEPS steps, $JOBS at a time"
{
    for d in code law math; do
        echo "timed expert-$d $B branch --from $W/seed --mix $d=0.9,general=0.1 --out $W/expert-$d --steps $BRANCH_STEPS --warmup 10 --lr 2e-3 --seed 2 ${COMMON[*]}"
    done
    echo "timed expert-bible $B branch --from $W/seed --mix bible=0.9,general=0.1 --out $W/expert-bible --steps $EXT_BRANCH --warmup 10 --lr 2e-3 --seed 2 ${COMMON[*]}"
} | par
EX=$W/expert-code,$W/expert-law,$W/expert-math
DD=$TOK/code,$TOK/law,$TOK/math

say "upcycle: sparse, btx top-1/top-2, bam, bam-shared-kv, nexus"
up() { # up NAME METHOD [options]
    local name=$1 m=$2; shift 2
    [ -f "$W/$name/config.json" ] || "$B" upcycle --method $m --base "$W/seed" --out "$W/$name" "$@" > /dev/null
}
up sparse sparse --num-experts 3 --top-k 2
up btx1 btx --experts $EX --top-k 1
up btx2 btx --experts $EX --top-k 2
up bam bam --experts $EX
up bamskv bam-shared-kv --experts $EX
up nexus nexus --experts $EX --domain-data $DD --domain-tokens 8192 --nexus-hidden $C
METHODS="sparse btx1 btx2 bam bamskv nexus"

say "finetune: data-matched ($MOE_STEPS steps each, seeds $SEEDS) and compute-matched (steps x FLOPs(btx1)/FLOPs)"
/usr/bin/python3 "$HERE/flops.py" "$W" $SEQ $METHODS > "$W/flops.json"
{
    for m in $METHODS; do
        for s in $SEEDS; do
            echo "timed ft-$m-data-s$s $B train --init $W/$m --mix general=1,code=1,law=1,math=1 --out $W/ft-$m-data-s$s --steps $MOE_STEPS --warmup 5 --lr 1e-3 --seed $s ${COMMON[*]}"
        done
        steps=$(/usr/bin/python3 -c "import json;f=json.load(open('$W/flops.json'));print(max(1,round($MOE_STEPS*f['btx1']['train_flops_per_token']/f['$m']['train_flops_per_token'])))")
        echo "timed ft-$m-compute-s1 $B train --init $W/$m --mix general=1,code=1,law=1,math=1 --out $W/ft-$m-compute-s1 --steps $steps --warmup 5 --lr 1e-3 --seed 1 ${COMMON[*]}"
    done
} | par

say "extension: add the bible expert to BTX top-1 and to Nexus, finetune $EXT_STEPS steps on limited new-domain data"
[ -f "$W/btx1-plus/config.json" ] || "$B" extend --moe "$W/ft-btx1-data-s1" --expert "$W/expert-bible" --out "$W/btx1-plus" > /dev/null
cp "$W/nexus/upcycle.json" "$W/ft-nexus-data-s1/upcycle.json" 2>/dev/null || true
[ -f "$W/nexus-plus/config.json" ] || "$B" extend --moe "$W/ft-nexus-data-s1" --expert "$W/expert-bible" \
    --domain-data "$TOK/bible" --domain-tokens 8192 --base "$W/seed" --out "$W/nexus-plus" > /dev/null
{
    for m in btx1 nexus; do
        echo "timed ext-$m $B train --init $W/$m-plus --mix bible=0.5,general=0.125,code=0.125,law=0.125,math=0.125 --out $W/ext-$m --steps $EXT_STEPS --warmup 3 --lr 1e-3 --seed 1 ${COMMON[*]}"
    done
} | par

say "evaluate: bits per byte on every domain's validation split (+ routing)"
ev() { # ev NAME DIR [upcycle.json source]
    local name=$1 dir=$2
    [ -n "${3:-}" ] && cp "$3/upcycle.json" "$dir/upcycle.json" 2>/dev/null || true
    [ -f "$W/eval-$name.json" ] || BRAID_QUIET=1 "$B" eval --model "$dir" --data "$TOK" \
        --domains general,code,law,math,bible --max-tokens $EVAL_TOK --batch 8 --json "$W/eval-$name.json" > "$W/eval-$name.md"
}
ev seed "$W/seed"
for d in code law math bible; do ev expert-$d "$W/expert-$d"; done
[ -f "$W/eval-btm.json" ] || BRAID_QUIET=1 "$B" btm --experts $EX --data "$TOK" --domains general,code,law,math,bible \
    --max-tokens $EVAL_TOK --batch 8 --json "$W/eval-btm.json" > "$W/eval-btm.md"
for m in $METHODS; do
    for s in $SEEDS; do ev ft-$m-data-s$s "$W/ft-$m-data-s$s" "$W/$m"; done
    ev ft-$m-compute-s1 "$W/ft-$m-compute-s1" "$W/$m"
done
# extension labels: experts 0-2 from the MoE, 3 = bible
for m in btx1 nexus; do
    /usr/bin/python3 -c "
import json,sys
u=json.load(open('$W/$m/upcycle.json')); u['domain_data']=u.get('domain_data') or ['code','law','math']
u['domain_data']=list(u['domain_data'])[:3]+['bible']; u['experts']=list(u['experts'])[:3]+['$W/expert-bible']
json.dump(u,open('$W/ext-$m/upcycle.json','w'))"
    ev ext-$m "$W/ext-$m"
done

say "report"
echo "$(($(date +%s) - T0)) s on $(nproc) cores (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))" > "$W/elapsed.txt"
/usr/bin/python3 "$HERE/report.py" "$W" "$HERE" $MODE "$SEEDS" $METHODS
say "done in $(($(date +%s) - T0))s: $HERE/RESULTS$([ $MODE = quick ] && echo -quick).md"
