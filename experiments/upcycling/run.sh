#!/usr/bin/env bash
# Upcycling dense experts into mixtures of experts, at small scale on real text
# (../shared/papers/upcycling.md): a seed, then per independent seed s (1 2 3): three domain
# experts (code, law, math) branched with data order / seed s, every MoE assembled from them
# with router seed s -- BTM (posterior- and uniform-weighted ensembles), sparse upcycling,
# BTX top-1 and top-2, BTX top-1 + shared expert (Nexus's linear-router control), BAM
# expert-KV, BAM shared-KV, Nexus -- finetuned data-matched (same MoE tokens) and compute-matched
# (same training FLOPs as BTX top-1), plus dense controls: the seed continued for the same total
# tokens (experts + MoE finetune) and the same total training FLOPs as the arms.  Then the
# held-out bible expert is added to BTX top-1 and Nexus with finetune budgets 25/50/100/200.
# Every model is evaluated on each domain's validation split as fetched and with the val
# documents that near-duplicate a train document removed (braid data overlap: leakage).
# Writes RESULTS.md, results.json and SVG plots beside this script (--quick: *-quick.*).
#
#   experiments/upcycling/run.sh --quick   # < 15 min on an idle 2-core machine: tiny model
#   experiments/upcycling/run.sh           # full: see RESULTS.md's header for size and time
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
    SEED_STEPS=200; BRANCH_STEPS=100; MOE_STEPS=50; SEEDS="1 2 3"; EXT_BRANCH=60; EXT_BUDGETS="25 50 100 200"
    EVAL_TOK=8192; MB=3
else
    # seed: 0.64 M parameters (0.44 M non-embedding), 6000 steps x 2048 tokens = 12.3 M tokens
    # (~20 tokens/parameter, compute-optimal), ~10 min on 2 idle cores; the whole protocol is sized
    # to finish in about an hour on an idle 2-core machine (see RESULTS.md's header)
    W=runs/upcycling-full; C=96; L=4; H=4; F=256; CTX=128; BATCH=16; SEQ=128
    SEED_STEPS=6000; BRANCH_STEPS=300; MOE_STEPS=150; SEEDS="1 2 3"; EXT_BRANCH=150; EXT_BUDGETS="25 50 100 200"
    EVAL_TOK=12288; MB=8
fi
TOK=$W/tok
TOKD=$W/tok-dedup
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

say "leakage: near-duplicate val documents (word 8-gram Jaccard >= 0.5 with a train document)"
if [ ! -f "$TOKD/bible/val.bin" ]; then
    # train text is unchanged, so every model is evaluated on both val splits; only val shards differ
    rm -rf "$W/raw-dedup" && mkdir -p "$W/raw-dedup"
    for d in general code law math bible; do cp -r "data/raw/$d" "$W/raw-dedup/"; done
    "$B" data overlap --raw "$W/raw-dedup" --domains general,code,law,math,bible --dedupe --json "$W/overlap.json"
    "$B" data prepare --tokenizer "$TOK/tokenizer.json" --raw "$W/raw-dedup" --out "$TOKD" --quiet \
        --domains general,code,law,math,bible > /dev/null
fi

say "seed: C=$C L=$L F=$F, parallel blocks, $SEED_STEPS steps on $ALL"
cat > "$W/seed-config.json" <<EOF
{"model_type": "llama", "vocab_size": 2048, "hidden_size": $C, "intermediate_size": $F,
 "num_hidden_layers": $L, "num_attention_heads": $H, "num_key_value_heads": $H,
 "max_position_embeddings": $CTX, "tie_word_embeddings": true, "rms_norm_eps": 1e-5, "block": "parallel"}
EOF
THREADS=2 timed seed "$B" train --config "$W/seed-config.json" --mix general=1,code=1,law=1,math=1 \
    --out "$W/seed" --steps $SEED_STEPS --warmup 20 --lr 3e-3 "${COMMON[@]}"

say "branch: per seed s, experts code, law, math (+ bible) branched with --seed s; $JOBS at a time"
{
    for s in $SEEDS; do
        for d in code law math; do
            echo "timed expert-$d-s$s $B branch --from $W/seed --mix $d=0.9,general=0.1 --out $W/s$s/expert-$d --steps $BRANCH_STEPS --warmup 10 --lr 2e-3 --seed $s ${COMMON[*]}"
        done
        echo "timed expert-bible-s$s $B branch --from $W/seed --mix bible=0.9,general=0.1 --out $W/s$s/expert-bible --steps $EXT_BRANCH --warmup 10 --lr 2e-3 --seed $s ${COMMON[*]}"
    done
} | par

say "upcycle per seed (router seed s): sparse, btx top-1/top-2, btx top-1 + shared expert, bam, bam-shared-kv, nexus"
METHODS="sparse btx1 btx2 btxs bam bamskv nexus"
for s in $SEEDS; do
    D=$W/s$s
    EX=$D/expert-code,$D/expert-law,$D/expert-math
    up() { # up NAME METHOD [options]
        local name=$1 m=$2; shift 2
        [ -f "$D/$name/config.json" ] || "$B" upcycle --method $m --base "$W/seed" --out "$D/$name" --seed $s "$@" > /dev/null
    }
    up sparse sparse --num-experts 3 --top-k 2
    up btx1 btx --experts $EX --top-k 1
    up btx2 btx --experts $EX --top-k 2
    up btxs btx --experts $EX --top-k 1 --shared-expert
    up bam bam --experts $EX
    up bamskv bam-shared-kv --experts $EX
    up nexus nexus --experts $EX --domain-data $TOK/code,$TOK/law,$TOK/math --domain-tokens 8192 --nexus-hidden $C
done

# FLOPs per token; steps of the compute-matched arms and of the dense controls
/usr/bin/python3 "$HERE/flops.py" "$W" $SEQ $(for m in $METHODS; do printf '%s=s1/%s ' $m $m; done) > "$W/flops.json"
/usr/bin/python3 "$HERE/controls.py" "$W/flops.json" $BRANCH_STEPS $MOE_STEPS $METHODS > "$W/controls.json"
cstep() { /usr/bin/python3 -c "import json;print(json.load(open('$W/controls.json'))$1)"; }

say "finetune: data-matched ($MOE_STEPS steps), compute-matched (FLOPs of BTX top-1), dense controls; seeds $SEEDS"
{
    for s in $SEEDS; do
        for m in $METHODS; do
            echo "timed ft-$m-data-s$s $B train --init $W/s$s/$m --mix general=1,code=1,law=1,math=1 --out $W/s$s/ft-$m-data --steps $MOE_STEPS --warmup 5 --lr 1e-3 --seed $s ${COMMON[*]}"
            echo "timed ft-$m-compute-s$s $B train --init $W/s$s/$m --mix general=1,code=1,law=1,math=1 --out $W/s$s/ft-$m-compute --steps $(cstep "['compute_steps']['$m']") --warmup 5 --lr 1e-3 --seed $s ${COMMON[*]}"
        done
        # the seed continued: one run per distinct (steps, mix) of the controls
        for c in $(cstep "['dense_runs']" | tr -d "[]' " | tr ',' ' '); do
            echo "timed $c-s$s $B train --init $W/seed --mix $(cstep "['dense']['$c']['mix']") --out $W/s$s/$c --steps $(cstep "['dense']['$c']['steps']") --warmup 10 --lr 2e-3 --seed $s ${COMMON[*]}"
        done
    done
} | par

say "extension: the bible expert joins BTX top-1 and Nexus (per seed), finetune budgets $EXT_BUDGETS"
EXT_MIX=bible=0.5,general=0.125,code=0.125,law=0.125,math=0.125
for s in $SEEDS; do
    D=$W/s$s
    [ -f "$D/btx1-plus/config.json" ] || "$B" extend --moe "$D/ft-btx1-data" --expert "$D/expert-bible" --seed $s --out "$D/btx1-plus" > /dev/null
    cp "$D/nexus/upcycle.json" "$D/ft-nexus-data/upcycle.json" 2>/dev/null || true
    [ -f "$D/nexus-plus/config.json" ] || "$B" extend --moe "$D/ft-nexus-data" --expert "$D/expert-bible" \
        --domain-data "$TOK/bible" --domain-tokens 8192 --base "$W/seed" --out "$D/nexus-plus" > /dev/null
done
{
    for s in $SEEDS; do
        for m in btx1 nexus; do
            for n in $EXT_BUDGETS; do
                echo "timed ext-$m-$n-s$s $B train --init $W/s$s/$m-plus --mix $EXT_MIX --out $W/s$s/ext-$m-$n --steps $n --warmup 3 --lr 1e-3 --seed $s ${COMMON[*]}"
            done
        done
    done
} | par

say "evaluate: bits per byte on every domain's validation split, as fetched and deduplicated (+ routing)"
EVD=general,code,law,math,bible
ev() { # ev NAME DIR [upcycle.json source]: eval-NAME.json (val as fetched) and eval-NAME-dedup.json
    local name=$1 dir=$2
    [ -n "${3:-}" ] && cp "$3/upcycle.json" "$dir/upcycle.json" 2>/dev/null || true
    [ -f "$W/eval-$name.json" ] || BRAID_QUIET=1 "$B" eval --model "$dir" --data "$TOK" \
        --domains $EVD --max-tokens $EVAL_TOK --batch 8 --json "$W/eval-$name.json" > "$W/eval-$name.md"
    [ -f "$W/eval-$name-dedup.json" ] || BRAID_QUIET=1 "$B" eval --model "$dir" --data "$TOKD" \
        --domains $EVD --max-tokens $EVAL_TOK --batch 8 --json "$W/eval-$name-dedup.json" > /dev/null
}
btm() { # btm NAME WEIGHTS EXPERTS
    local name=$1 wt=$2 ex=$3
    [ -f "$W/eval-$name.json" ] || BRAID_QUIET=1 "$B" btm --weights $wt --experts $ex --data "$TOK" --domains $EVD \
        --max-tokens $EVAL_TOK --batch 8 --json "$W/eval-$name.json" > /dev/null
    [ -f "$W/eval-$name-dedup.json" ] || BRAID_QUIET=1 "$B" btm --weights $wt --experts $ex --data "$TOKD" --domains $EVD \
        --max-tokens $EVAL_TOK --batch 8 --json "$W/eval-$name-dedup.json" > /dev/null
}
ev seed "$W/seed"
for s in $SEEDS; do
    D=$W/s$s
    for d in code law math bible; do ev expert-$d-s$s "$D/expert-$d"; done
    btm btm-post-s$s posterior $D/expert-code,$D/expert-law,$D/expert-math
    btm btm-unif-s$s uniform $D/expert-code,$D/expert-law,$D/expert-math
    for m in $METHODS; do
        ev ft-$m-data-s$s "$D/ft-$m-data" "$D/$m"
        ev ft-$m-compute-s$s "$D/ft-$m-compute" "$D/$m"
    done
    for c in $(cstep "['dense_runs']" | tr -d "[]' " | tr ',' ' '); do ev $c-s$s "$D/$c"; done
    # extension labels: experts 0-2 from the MoE, 3 = bible
    for m in btx1 nexus; do
        for n in $EXT_BUDGETS; do
            /usr/bin/python3 -c "
import json
u=json.load(open('$D/$m/upcycle.json')); u['domain_data']=u.get('domain_data') or ['code','law','math']
u['domain_data']=list(u['domain_data'])[:3]+['bible']; u['experts']=list(u['experts'])[:3]+['$D/expert-bible']
json.dump(u,open('$D/ext-$m-$n/upcycle.json','w'))"
            ev ext-$m-$n-s$s "$D/ext-$m-$n"
        done
    done
done

say "report"
echo "$(($(date +%s) - T0)) s on $(nproc) cores (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))" > "$W/elapsed.txt"
/usr/bin/python3 "$HERE/report.py" "$W" "$HERE" $MODE "$SEEDS" "$EXT_BUDGETS" $METHODS
say "done in $(($(date +%s) - T0))s: $HERE/RESULTS$([ $MODE = quick ] && echo -quick).md"
