#!/usr/bin/python3
"""The PyTorch side of `braid bench train`: the same Llama configs (presets a and b), same
batch, same threads, timed the same way (median of N steps after one warm-up step).

A training step = zero_grad + forward + mean cross-entropy + backward + clip_grad_norm_ +
AdamW (torch.optim.AdamW, default foreach implementation), float32 on the CPU.  Attention uses
F.scaled_dot_product_attention(is_causal=True), PyTorch's fused kernel, where the installed
torch has it (>= 2.0), else Hugging Face's eager attention (softmax(QK^T/sqrt(d) + mask) V).  The forward is the
same model under torch.inference_mode() with the loss.

Prints one JSON object like `braid bench train --json`.
usage: bench/lm_train_torch.py --preset a|b [--steps N] [--threads N]
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

PRESETS = {
    "a": dict(vocab=8192, d=256, layers=4, heads=4, kv=4, ffn=1024, T=256, B=16),
    "b": dict(vocab=8192, d=512, layers=8, heads=8, kv=8, ffn=1408, T=256, B=8),
}


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(nn.Module):
    def __init__(self, p):
        super().__init__()
        d, self.nh, self.nkv = p["d"], p["heads"], p["kv"]
        self.hd = d // self.nh
        self.input_layernorm = RMSNorm(d)
        self.q_proj = nn.Linear(d, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hd, d, bias=False)
        self.post_attention_layernorm = RMSNorm(d)
        self.gate_proj = nn.Linear(d, p["ffn"], bias=False)
        self.up_proj = nn.Linear(d, p["ffn"], bias=False)
        self.down_proj = nn.Linear(p["ffn"], d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        u = self.input_layernorm(x)
        q = self.q_proj(u).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(u).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(u).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.nkv != self.nh:
            k = k.repeat_interleave(self.nh // self.nkv, dim=1)
            v = v.repeat_interleave(self.nh // self.nkv, dim=1)
        if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0: fused kernel
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # Debian bookworm's torch 1.13: Hugging Face's eager attention
            att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hd)) + mask
            a = torch.softmax(att, dim=-1) @ v
        h = x + self.o_proj(a.transpose(1, 2).reshape(B, T, -1))
        z = self.post_attention_layernorm(h)
        return h + self.down_proj(F.silu(self.gate_proj(z)) * self.up_proj(z))


class Llama(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.embed_tokens = nn.Embedding(p["vocab"], p["d"])
        self.layers = nn.ModuleList(Block(p) for _ in range(p["layers"]))
        self.norm = RMSNorm(p["d"])
        self.lm_head = nn.Linear(p["d"], p["vocab"], bias=False)
        hd = p["d"] // p["heads"]
        inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))
        fr = torch.arange(p["T"]).float()[:, None] * inv[None]
        emb = torch.cat((fr, fr), -1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)
        self.register_buffer("mask", torch.full((p["T"], p["T"]), float("-inf")).triu(1), persistent=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, ids):
        x = self.embed_tokens(ids)
        for blk in self.layers:
            x = blk(x, self.cos, self.sin, self.mask)
        return self.lm_head(self.norm(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="a", choices=PRESETS)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    p = PRESETS[a.preset]
    B, T, V = p["B"], p["T"], p["vocab"]
    model = Llama(p)
    decay = [t for t in model.parameters() if t.dim() == 2]
    nodecay = [t for t in model.parameters() if t.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    ids = torch.randint(0, V, (B, T))
    tgt = torch.randint(0, V, (B, T))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(ids).view(-1, V), tgt.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    def fwd():
        with torch.inference_mode():
            F.cross_entropy(model(ids).view(-1, V), tgt.view(-1))

    times = {}
    for name, fn in (("train", step), ("forward", fwd)):
        fn()
        ts = []
        for _ in range(a.steps):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        times[name] = statistics.median(ts)
    n = B * T
    print(json.dumps({
        "impl": "pytorch", "torch": torch.__version__, "preset": a.preset, "threads": torch.get_num_threads(),
        "params": sum(t.numel() for t in model.parameters()),
        "step_s": round(times["train"], 4), "tokens_per_s": round(n / times["train"], 1),
        "forward_tokens_per_s": round(n / times["forward"], 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
