#!/usr/bin/env bash
# Dense LM training/forward speed: braid vs PyTorch (Debian python3-torch) on presets a and b,
# same batch, same threads, one after the other in the same run; prints both and the ratios.
#   bench/lm_train.sh [PRESETS...]   (default: a b)   THREADS=N (default 2)   STEPS=N (default 3)
set -u
cd "$(dirname "$0")/.."
threads=${THREADS:-2}; steps=${STEPS:-3}
presets=("$@"); [ ${#presets[@]} -eq 0 ] && presets=(a b)
have_torch=1; /usr/bin/python3 -c 'import torch' 2>/dev/null || have_torch=0
for p in "${presets[@]}"; do
  b=$(./braid bench train --preset "$p" --threads "$threads" --steps "$steps" --json) || exit 1
  echo "braid   $b"
  if [ $have_torch = 0 ]; then echo "pytorch: not installed (apt-get install python3-torch); no ratio"; continue; fi
  t=$(/usr/bin/python3 bench/lm_train_torch.py --preset "$p" --threads "$threads" --steps "$steps") || exit 1
  echo "pytorch $t"
  /usr/bin/python3 - "$b" "$t" <<'PY'
import json, sys
b, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
r1 = b["tokens_per_s"] / t["tokens_per_s"]; r2 = b["forward_tokens_per_s"] / t["forward_tokens_per_s"]
print(f"preset {b['preset']} ({b['threads']} threads): train {b['tokens_per_s']:.0f} vs {t['tokens_per_s']:.0f} tok/s = {r1:.2f}x PyTorch "
      f"(goal 1.5x: {'met' if r1 >= 1.5 else 'NOT met'}); forward {b['forward_tokens_per_s']:.0f} vs {t['forward_tokens_per_s']:.0f} tok/s = {r2:.2f}x "
      f"({'met' if r2 >= 1.5 else 'NOT met'}); decode {b['decode_tokens_per_s_b1']:.0f} tok/s batch 1, {b['decode_tokens_per_s_b16']:.0f} tok/s batch 16; "
      f"peak RSS {b['peak_rss_mb']:.0f} MB vs {t['peak_rss_mb']:.0f} MB")
PY
done
