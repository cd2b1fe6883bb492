#!/usr/bin/env bash
# Data-parallel training on this machine (docs/distributed.md): the same global batch as
# 1 process x 2 threads, then 2 ranks x 1 thread (mpirun over shared memory), one after the
# other in the same run; prints tokens/s, the time per step in communication and the ratio.
#   bench/dist_train.sh [PRESETS...]   (default: a b)   STEPS=N (default 3)
set -u
cd "$(dirname "$0")/.."
steps=${STEPS:-3}
presets=("$@"); [ ${#presets[@]} -eq 0 ] && presets=(a b)
if ! command -v mpirun >/dev/null 2>&1; then echo "bench dist_train: skipped (no mpirun: make deps installs openmpi-bin)"; exit 0; fi
mpirun=(mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl self,vader
        --mca btl_vader_single_copy_mechanism none -np 2)
for p in "${presets[@]}"; do
  case $p in a) B=16 ;; *) B=8 ;; esac
  one=$(./braid bench train --preset "$p" --threads 2 --steps "$steps" --batch "$B" --no-decode --json) || exit 1
  two=$("${mpirun[@]}" ./braid bench train --preset "$p" --threads 1 --steps "$steps" --batch $((B / 2)) --mpi --json) || exit 1
  echo "1x2  $one"
  echo "2x1  $two"
  /usr/bin/python3 - "$p" "$one" "$two" <<'PY'
import json, sys
p, a, b = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"preset {p}: 1 rank x 2 threads {a['tokens_per_s']:.0f} tok/s; 2 ranks x 1 thread {b['tokens_per_s']:.0f} tok/s "
      f"= {b['tokens_per_s'] / a['tokens_per_s']:.2f}x; communication {1e3 * b['comm_s']:.0f} ms of a {b['step_s']:.2f} s step "
      f"({100 * b['comm_fraction']:.1f}%, {b['grad_mb']:.0f} MB of F32 parameters), waiting {1e3 * b['wait_s']:.0f} ms")
PY
done
