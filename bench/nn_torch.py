#!/usr/bin/python3
"""PyTorch peer for `braid bench nn`: times the same operations at the same shapes with the same
thread count, reads braid's JSON lines (from a file or stdin) and prints both side by side with
the ratio torch_us / braid_us (> 1: braid is faster).

    ./braid bench nn --json > /tmp/nn.json && bench/nn_torch.py /tmp/nn.json

PyTorch ops are the ones a PyTorch Llama training step runs (HF LlamaRMSNorm, rotate_half RoPE,
eager causal attention with repeat_kv, F.silu(g) * u, F.cross_entropy, torch.optim.AdamW).
Backward times are autograd backward through that op alone (torch.autograd.grad with a random
upstream gradient), forward times are without autograd recording.
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

PRESETS = {
    "d256": dict(B=16, T=256, d=256, NH=4, NKV=4, F=1024, V=8192),
    "d512": dict(B=8, T=256, d=512, NH=8, NKV=8, F=1408, V=8192),
}


def median_us(fn, min_time):
    """(median wall us, mean CPU us of the process) per call, as braid bench nn measures."""
    fn()
    ts = []
    start, cpu0 = time.perf_counter(), time.process_time()
    while len(ts) < 3 or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
        if len(ts) >= 1000:
            break
    cpu = (time.process_time() - cpu0) / len(ts)
    ts.sort()
    return ts[len(ts) // 2] * 1e6, cpu * 1e6


def rmsnorm(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope(x, cos, sin):  # x (B,T,H,hd); cos, sin (T,hd)
    return x * cos[None, :, None, :] + rotate_half(x) * sin[None, :, None, :]


def attention(q, k, v, NH, NKV):  # (B,T,H,hd) -> (B,T,NH,hd), as HF eager attention
    B, T, _, hd = q.shape
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    if NKV != NH:
        k = k.repeat_interleave(NH // NKV, dim=1)
        v = v.repeat_interleave(NH // NKV, dim=1)
    s = q @ k.transpose(-1, -2) / math.sqrt(hd)
    mask = torch.full((T, T), float("-inf")).triu(1)
    p = torch.softmax(s + mask, dim=-1)
    return (p @ v).transpose(1, 2)


def ops(p, min_time):
    B, T, d, NH, NKV, Fh, V = (p[k] for k in ("B", "T", "d", "NH", "NKV", "F", "V"))
    N, hd = B * T, d // NH
    g = torch.Generator().manual_seed(0)
    r = lambda *s, scale=1.0: (torch.rand(*s, generator=g) * 2 - 1) * scale
    res = {}

    def fwd_bwd(name, f, inputs, out_shape):
        with torch.no_grad():
            res[name + " fwd"] = median_us(lambda: f(*inputs), min_time)
        ins = [t.detach().requires_grad_(t.is_floating_point()) for t in inputs]
        y = f(*ins)
        gy = r(*out_shape)
        need = [t for t in ins if t.requires_grad]
        res[name + " bwd"] = median_us(
            lambda: torch.autograd.grad(y, need, gy, retain_graph=True), min_time)

    x, w = r(N, d), r(d)
    tokens = torch.randint(0, V, (N,), generator=g)
    wte = r(V, d)
    fwd_bwd("embedding", lambda wt: F.embedding(tokens, wt), [wte], (N, d))
    fwd_bwd("rmsnorm", rmsnorm, [x, w], (N, d))
    W = r(Fh, d, scale=0.05)
    fwd_bwd("linear d->F", F.linear, [x, W], (N, Fh))
    inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))
    fr = torch.arange(T).float()[:, None] * inv[None, :]
    emb = torch.cat((fr, fr), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    q = r(B, T, NH, hd)
    fwd_bwd("rope", lambda t: rope(t, cos, sin), [q], (B, T, NH, hd))
    res["rope fwd (q)"], res["rope bwd (q)"] = res.pop("rope fwd"), res.pop("rope bwd")
    k, v = r(B, T, NKV, hd), r(B, T, NKV, hd)
    fwd_bwd("attention", lambda a, b, c: attention(a, b, c, NH, NKV), [q, k, v], (B, T, NH, hd))
    gate, up = r(N, Fh, scale=3), r(N, Fh)
    fwd_bwd("swiglu", lambda a, b: F.silu(a) * b, [gate, up], (N, Fh))
    y = r(N, d)
    with torch.no_grad():
        res["residual add"] = median_us(lambda: x.add_(y), min_time)
    logits = r(N, V, scale=4)
    fwd_bwd("softmax", lambda t: torch.softmax(t, dim=-1), [logits], (N, V))
    res["softmax fwd (V)"], res["softmax bwd (V)"] = res.pop("softmax fwd"), res.pop("softmax bwd")
    targets = torch.randint(0, V, (N,), generator=g)
    with torch.no_grad():
        res["xent fwd (V)"] = median_us(lambda: F.cross_entropy(logits, targets), min_time)
    lg = logits.detach().requires_grad_(True)
    loss = F.cross_entropy(lg, targets)
    res["xent bwd (V)"] = median_us(lambda: torch.autograd.grad(loss, [lg], retain_graph=True), min_time)

    def fused():
        l2 = logits.detach().requires_grad_(True)
        F.cross_entropy(l2, targets).backward()

    res["xent fused (V)"] = median_us(fused, min_time)
    nparam = 2 * V * d + 8 * (4 * d * d + 3 * d * Fh)
    P = torch.nn.Parameter(r(nparam))
    P.grad = r(nparam, scale=1e-3)
    opt = torch.optim.AdamW([P], lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    res["adamw step"] = median_us(opt.step, min_time)
    res["clip grad norm"] = median_us(lambda: torch.nn.utils.clip_grad_norm_([P], 1e9), min_time)
    return res


def main():
    src = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin
    rows = [json.loads(l) for l in src if l.strip().startswith("{")]
    if not rows:
        sys.exit("nn_torch.py: no JSON lines from `braid bench nn --json`")
    threads = rows[0]["threads"]
    torch.set_num_threads(threads)
    min_time = float(sys.argv[2]) if len(sys.argv) > 2 else 0.2
    print(f"torch {torch.__version__}, {threads} threads (same as braid); ratios = torch/braid")
    for name in PRESETS:
        mine = [r for r in rows if r["preset"] == name]
        if not mine:
            continue
        theirs = ops(PRESETS[name], min_time)
        print(f"preset {name}")
        print(f"{'operation':<18} {'braid us':>10} {'torch us':>10} {'ratio':>6}"
              f" {'braid cpu':>10} {'torch cpu':>10} {'ratio':>6}")
        tb = tt = cb = ct = 0.0
        for r in mine:
            if r["op"] not in theirs:
                continue
            t, c = theirs[r["op"]]
            tb, tt, cb, ct = tb + r["us"], tt + t, cb + r["cpu_us"], ct + c
            print(f"{r['op']:<18} {r['us']:>10.1f} {t:>10.1f} {t / r['us']:>6.2f}"
                  f" {r['cpu_us']:>10.1f} {c:>10.1f} {c / r['cpu_us']:>6.2f}")
        print(f"{'total':<18} {tb:>10.1f} {tt:>10.1f} {tt / tb:>6.2f} {cb:>10.1f} {ct:>10.1f} {ct / cb:>6.2f}")


if __name__ == "__main__":
    main()
