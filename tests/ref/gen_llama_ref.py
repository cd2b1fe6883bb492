#!/usr/bin/python3
"""Reference dumps for tests/test_lm_ref.c, written by PyTorch (Debian's python3-torch).

A small, self-contained Hugging Face LlamaForCausalLM (same maths as transformers'
modeling_llama.py: RMSNorm in float32, RoPE with rotate_half, GQA by repeating K/V heads,
SwiGLU MLP, causal softmax attention, mean cross-entropy ignoring -100) is built with random
weights in float64, saved as config.json + model.safetensors (float32), and for one fixed
batch we dump the logits, the loss, every parameter's gradient and the losses of a few AdamW
steps (torch.optim.AdamW, decay on matrices only, grad clipping) into ref.safetensors.

Two configurations:
  llama_tiny      sequential blocks, GQA (4 heads, 2 KV heads), untied head, 2 layers
  llama_tiny_par  parallel blocks (BAM: x + Attn(u) + FFN(u), u = Norm(x)), tied head, MHA

Run from the repository root:  /usr/bin/python3 tests/ref/gen_llama_ref.py
"""
import json
import math
import os
import struct

import torch

torch.manual_seed(1234)


def write_safetensors(path, tensors, metadata=None, dtype=torch.float32):
    """Minimal safetensors writer (the format is an 8-byte length, JSON header, raw data)."""
    names = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int32: "I32"}
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        t = t.detach().contiguous()
        if t.is_floating_point():
            t = t.to(dtype)
        if t.dtype in (torch.bfloat16, torch.float16):
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def rmsnorm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Llama:
    def __init__(self, cfg):
        self.cfg = cfg
        V, C, F = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
        NH, NKV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        hd = C // NH
        std = cfg["initializer_range"]
        p = {}

        def mat(name, o, i):
            p[name] = (torch.randn(o, i, dtype=torch.float64) * std).requires_grad_()

        def norm(name):
            # random-ish norms (not all ones) so the norm gradients are exercised
            p[name] = (1 + 0.1 * torch.randn(C, dtype=torch.float64)).requires_grad_()

        mat("model.embed_tokens.weight", V, C)
        for l in range(cfg["num_hidden_layers"]):
            pre = f"model.layers.{l}."
            norm(pre + "input_layernorm.weight")
            mat(pre + "self_attn.q_proj.weight", NH * hd, C)
            mat(pre + "self_attn.k_proj.weight", NKV * hd, C)
            mat(pre + "self_attn.v_proj.weight", NKV * hd, C)
            mat(pre + "self_attn.o_proj.weight", C, NH * hd)
            if cfg["block"] == "sequential":
                norm(pre + "post_attention_layernorm.weight")
            mat(pre + "mlp.gate_proj.weight", F, C)
            mat(pre + "mlp.up_proj.weight", F, C)
            mat(pre + "mlp.down_proj.weight", C, F)
        norm("model.norm.weight")
        if not cfg["tie_word_embeddings"]:
            mat("lm_head.weight", V, C)
        # store in float32 precision so the C side starts from exactly these values
        with torch.no_grad():
            for t in p.values():
                t.copy_(t.float().double())
        self.p = p

    def forward(self, ids):
        cfg, p = self.cfg, self.p
        B, T = ids.shape
        C, NH, NKV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
        hd, eps = C // NH, cfg["rms_norm_eps"]
        inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        freqs = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
        x = p["model.embed_tokens.weight"][ids]
        for l in range(cfg["num_hidden_layers"]):
            pre = f"model.layers.{l}."
            u = rmsnorm(x, p[pre + "input_layernorm.weight"], eps)
            q = (u @ p[pre + "self_attn.q_proj.weight"].T).view(B, T, NH, hd).transpose(1, 2)
            k = (u @ p[pre + "self_attn.k_proj.weight"].T).view(B, T, NKV, hd).transpose(1, 2)
            v = (u @ p[pre + "self_attn.v_proj.weight"].T).view(B, T, NKV, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = k.repeat_interleave(NH // NKV, dim=1)
            v = v.repeat_interleave(NH // NKV, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask
            att = torch.softmax(att, dim=-1)
            a = (att @ v).transpose(1, 2).reshape(B, T, NH * hd)
            a = a @ p[pre + "self_attn.o_proj.weight"].T

            def mlp(z):
                g = z @ p[pre + "mlp.gate_proj.weight"].T
                up = z @ p[pre + "mlp.up_proj.weight"].T
                return (torch.nn.functional.silu(g) * up) @ p[pre + "mlp.down_proj.weight"].T

            if cfg["block"] == "sequential":
                h = x + a
                x = h + mlp(rmsnorm(h, p[pre + "post_attention_layernorm.weight"], eps))
            else:
                x = x + a + mlp(u)
        x = rmsnorm(x, p["model.norm.weight"], eps)
        head = p["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else p["lm_head.weight"]
        return x @ head.T


def make(outdir, cfg, B, T, steps=4):
    os.makedirs(outdir, exist_ok=True)
    m = Llama(cfg)
    V = cfg["vocab_size"]
    ids = torch.randint(0, V, (B, T + 1))
    inputs, targets = ids[:, :T].clone(), ids[:, 1:].clone()
    targets[0, 2] = -100  # one ignored target
    logits = m.forward(inputs)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-100)
    loss.backward()
    ref = {"inputs": inputs.to(torch.int32), "targets": targets.clamp(min=-1).to(torch.int32),
           "logits": logits.detach().float(), "loss": loss.detach().float().reshape(1)}
    for n, t in m.p.items():
        ref["grad." + n] = t.grad.float()
    # save the initial weights (float32) before the optimizer touches them
    write_safetensors(os.path.join(outdir, "model.safetensors"), {n: t.float() for n, t in m.p.items()},
                      {"format": "pt"})
    write_safetensors(os.path.join(outdir, "model_bf16.safetensors"),
                      {n: t.float() for n, t in m.p.items()}, {"format": "pt"}, dtype=torch.bfloat16)
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    # AdamW steps on the same batch
    decay = [t for n, t in m.p.items() if t.dim() == 2]
    nodecay = [t for n, t in m.p.items() if t.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        logits = m.forward(inputs)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-100)
        loss.backward()
        losses.append(loss.item())
        torch.nn.utils.clip_grad_norm_(list(m.p.values()), 1.0)
        opt.step()
    ref["adamw_losses"] = torch.tensor(losses, dtype=torch.float32)
    write_safetensors(os.path.join(outdir, "ref.safetensors"), ref,
                      {"generator": "tests/ref/gen_llama_ref.py", "torch": torch.__version__,
                       "adamw": "lr=1e-2 betas=(0.9,0.95) eps=1e-8 wd=0.1 (matrices) clip=1.0"})


base = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
    "vocab_size": 61, "hidden_size": 32, "intermediate_size": 40, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "initializer_range": 0.1,
    "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False, "block": "sequential",
}
here = os.path.dirname(os.path.abspath(__file__))
make(os.path.join(here, "llama_tiny"), base, B=2, T=9)
par = dict(base, block="parallel", tie_word_embeddings=True, num_key_value_heads=4, num_hidden_layers=3)
make(os.path.join(here, "llama_tiny_par"), par, B=3, T=7)
print("wrote", os.path.join(here, "llama_tiny"), "and llama_tiny_par")
