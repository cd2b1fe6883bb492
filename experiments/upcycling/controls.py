#!/usr/bin/python3
"""Steps of the compute-matched MoE finetunes and of the dense controls (the seed continued).

Usage: controls.py FLOPS_JSON BRANCH_STEPS MOE_STEPS METHOD...  -> JSON on stdout.

Every training step is BATCH x SEQ tokens, the same for every run, so tokens are counted in
steps.  An arm built from branched experts consumed, after the seed, 3 x BRANCH_STEPS (three
experts, each 0.9 its domain + 0.1 general) + MOE_STEPS (uniform over general, code, law, math);
sparse upcycling has no experts and consumed MOE_STEPS.
  data-matched control:    the seed continued for the arm's total steps, on the arm's exact
                           domain composition (general, code, law, math shares);
  compute-matched control: the seed continued for as many steps as the arm's total training
                           FLOPs allow at the seed's FLOPs/token: 3 x BRANCH_STEPS x F_seed +
                           steps_m x F_m, where the compute-matched arm m runs
                           steps_m = MOE_STEPS x F_btx1 / F_m (so this total is the same for
                           every branched arm).
The FLOPs of the extra bible expert are not counted: it serves only the extension."""
import json, sys

f = json.load(open(sys.argv[1]))
B, M, methods = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
F = {m: f[m]["train_flops_per_token"] for m in f}


def mix(branch, moe):
    w = {"general": 0.1 * branch + 0.25 * moe, "code": 0.3 * branch + 0.25 * moe,
         "law": 0.3 * branch + 0.25 * moe, "math": 0.3 * branch + 0.25 * moe}
    t = sum(w.values())
    return ",".join(f"{d}={w[d] / t:.4f}" for d in w)


out = {"compute_steps": {}, "dense": {}, "arm_controls": {}, "definition": __doc__}
ref = F.get("btx1", F["seed"])
for m in methods:
    out["compute_steps"][m] = max(1, round(M * ref / F[m]))
    branch = 0 if m == "sparse" else 3 * B
    flops = branch * F["seed"] + out["compute_steps"][m] * F[m]
    runs = {"data": (branch + M, mix(branch, M)),
            "compute": (max(1, round(flops / F["seed"])), mix(branch, M))}
    out["arm_controls"][m] = {}
    for kind, (steps, mx) in runs.items():
        name = f"dense-{steps}"
        out["dense"].setdefault(name, {"steps": steps, "mix": mx, "train_flops": steps * F["seed"]})
        if out["dense"][name]["mix"] != mx:  # same length, other composition
            name = f"dense-{steps}-{'sparse' if m == 'sparse' else 'branch'}"
            out["dense"].setdefault(name, {"steps": steps, "mix": mx, "train_flops": steps * F["seed"]})
        out["arm_controls"][m][kind] = name
    out["arm_controls"][m]["arm_train_flops"] = {"data": branch * F["seed"] + M * F[m], "compute": flops}
out["dense_runs"] = sorted(out["dense"])
print(json.dumps(out, indent=2))
