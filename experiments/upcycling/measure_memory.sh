#!/bin/sh
# Peak memory of braid upcycle / extend at full size (docs/moe.md, "Output and memory"): random
# BF16 folders of a real shape, made outside git, then BTX of 4 experts (the base as expert 0)
# and extend with a fifth (ft3 again: only memory is measured), each under /usr/bin/time (peak
# RSS as %M).  Needs ~30 GB of disk for the 1B shape.  Usage: experiments/upcycling/measure_memory.sh [llama-3.2-1b|tinyllama-1.1b|smollm2-135m] [DIR]
set -eu
SHAPE=${1:-llama-3.2-1b}
D=${2:-$(mktemp -d "${TMPDIR:-/tmp}/braid-upcycle-mem-XXXXXX")}
B=${BRAID:-./braid}
[ -d "$D/ft3" ] || nice -n 10 /usr/bin/python3 experiments/upcycling/gen_random_folders.py --shape "$SHAPE" --experts 3 --out "$D"
du -sb "$D/base" | awk '{printf "one expert on disk: %.2f GB\n", $1 / 1e9}'
nice -n 10 /usr/bin/time -f "upcycle btx, 4 experts: peak RSS %M KB, %e s" "$B" upcycle --method btx --base "$D/base" \
    --base-as-expert --experts "$D/ft1,$D/ft2,$D/ft3" --shard-size 2GB --out "$D/moe"
nice -n 10 /usr/bin/time -f "extend to 5 experts: peak RSS %M KB, %e s" "$B" extend --moe "$D/moe" --expert "$D/ft3" \
    --shard-size 2GB --out "$D/moe5"
"$B" inspect "$D/moe5"
