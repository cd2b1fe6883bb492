#!/usr/bin/python3
"""FLOPs per token of each checkpoint of the upcycling experiment, from its config.json.

Counts multiply-adds of the matrix products (2 FLOPs each) a token actually runs: the
projections of every attention expert (soft routing runs them all), the routers, the top-k
FFN experts and the shared expert, the LM head, and causal attention over the average context
(T+1)/2.  Training = 3 x forward.  Usage: flops.py RUN_DIR T NAME[=DIR]...  -> JSON on stdout
(DIR relative to RUN_DIR; default NAME; "seed" is always included)."""
import json, sys

def flops(cfg, T):
    C, V, L = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
    F, NH, NKV = cfg["intermediate_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or C // NH
    n = max(1, cfg.get("num_attention_experts", 0) or 1)
    skv = cfg.get("attention_shared_kv", False)
    E = max(1, cfg.get("num_local_experts", 0) or 1)
    k = cfg.get("num_experts_per_tok", 1) if E > 1 else 1
    Fs = cfg.get("shared_expert_intermediate_size", 0) or 0
    HQ, HKV = n * NH, (NKV if skv else n * NKV)
    attn = C * HQ * hd * 2 + C * HKV * hd * 2 + (n * C if n > 1 else 0)
    ffn = 3 * C * F * k + 3 * C * Fs + (E * C if E > 1 else 0)
    active = L * (attn + ffn) + V * C
    core = L * 2 * HQ * hd * (T + 1) / 2
    fwd = 2 * active + 2 * core
    total = L * (attn + 3 * C * F * E + 3 * C * Fs + (E * C if E > 1 else 0)) + V * C
    return {"forward_flops_per_token": fwd, "train_flops_per_token": 3 * fwd,
            "active_params": active, "total_params": total}

if __name__ == "__main__":
    run, T = sys.argv[1], int(sys.argv[2])
    out = {}
    for arg in ["seed"] + sys.argv[3:]:
        name, _, d = arg.partition("=")
        out[name] = flops(json.load(open(f"{run}/{d or name}/config.json")), T)
    print(json.dumps(out, indent=2))
