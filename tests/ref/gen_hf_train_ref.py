#!/usr/bin/python3
"""Float64 reference of the training loss and its gradients on the Hub-style fixture folders
tests/ref/hf_{llama,mistral,qwen2,qwen3} (written by gen_hf_arch_ref.py), for
tests/test_lm_hftrain.c: braid's backward of every architecture part it trains (Qwen2's q/k/v
biases, Qwen3's per-head q/k RMSNorm, llama3 and linear RoPE scaling, GQA, tied heads).

The forward follows transformers' modeling_llama.py / modeling_mistral.py / modeling_qwen2.py /
modeling_qwen3.py (and modeling_rope_utils.py), as in gen_hf_arch_ref.py; the loss is
LlamaForCausalLM's: mean cross-entropy over the targets that are not ignored (-100 there, -1 in
braid).  torch.autograd gives the gradients, everything in float64 from the stored BF16
weights.  Stored per architecture in tests/ref/hf_train/<arch>.safetensors: inputs, targets
(I32), loss (F64) and F32 gradients "grad.<name>" of every 1-D tensor (norms, biases, q/k
norms) and of two matrices (layer 0 k_proj, layer 1 down_proj).

Run from the repository root:  /usr/bin/python3 tests/ref/gen_hf_train_ref.py
"""
import json, math, os, struct
import torch

B, T = 2, 9
ARCHS = ["llama", "mistral", "qwen2", "qwen3"]


def read_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        raw = bytearray(data[a:b])
        if h["dtype"] == "BF16":
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16)
        elif h["dtype"] == "F32":
            t = torch.frombuffer(raw, dtype=torch.float32)
        else:
            raise ValueError(h["dtype"])
        out[name] = t.to(torch.float64).reshape(h["shape"])
    return out


def write_st(path, tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (t, dtype) in tensors.items():
        tt = {"I32": torch.int32, "F32": torch.float32, "F64": torch.float64}[dtype]
        raw = t.detach().to(tt).contiguous().numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def inv_freq(cfg, hd):
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    rs = cfg.get("rope_scaling")
    if not rs:
        return inv
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":
        return inv / rs["factor"]
    assert kind == "llama3"
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wl, high_wl = old / lo, old / hi
    wavelen = 2 * math.pi / inv
    out = torch.where(wavelen > low_wl, inv / factor, inv)
    smooth = (old / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * out / factor + smooth * out
    medium = ~(wavelen < high_wl) * ~(wavelen > low_wl)
    return torch.where(medium, smoothed, out)


def make(arch, seed):
    d = f"tests/ref/hf_{arch}"
    cfg = json.load(open(f"{d}/config.json"))
    idx = json.load(open(f"{d}/model.safetensors.index.json"))
    p = {}
    for f in sorted(set(idx["weight_map"].values())):
        p.update(read_st(f"{d}/{f}"))
    for t in p.values():
        t.requires_grad_(True)
    V, C, L = cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"]
    NH, NKV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or C // NH
    eps = cfg["rms_norm_eps"]
    tied = cfg.get("tie_word_embeddings", False)
    head = p["model.embed_tokens.weight"] if tied else p["lm_head.weight"]

    def rms(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def rot(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    inv = inv_freq(cfg, hd)
    torch.manual_seed(seed)
    ids = torch.randint(0, V, (B, T))
    tg = torch.randint(0, V, (B, T))
    tg[0, 2] = -100
    fr = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    emb = torch.cat((fr, fr), -1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    x = p["model.embed_tokens.weight"][ids]
    for l in range(L):
        pre = f"model.layers.{l}."
        u = rms(x, p[pre + "input_layernorm.weight"])
        q, k, v = (u @ p[pre + f"self_attn.{n}_proj.weight"].T for n in "qkv")
        if arch == "qwen2":
            q, k, v = (t + p[pre + f"self_attn.{n}_proj.bias"] for t, n in zip((q, k, v), "qkv"))
        q, k, v = q.view(B, T, NH, hd), k.view(B, T, NKV, hd), v.view(B, T, NKV, hd)
        if arch == "qwen3":
            q, k = rms(q, p[pre + "self_attn.q_norm.weight"]), rms(k, p[pre + "self_attn.k_norm.weight"])
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        k, v = k.repeat_interleave(NH // NKV, 1), v.repeat_interleave(NH // NKV, 1)
        a = torch.softmax((q @ k.transpose(-1, -2)) * hd ** -0.5 + mask, -1) @ v
        h = x + a.transpose(1, 2).reshape(B, T, NH * hd) @ p[pre + "self_attn.o_proj.weight"].T
        z = rms(h, p[pre + "post_attention_layernorm.weight"])
        g = z @ p[pre + "mlp.gate_proj.weight"].T
        x = h + (torch.nn.functional.silu(g) * (z @ p[pre + "mlp.up_proj.weight"].T)) @ p[pre + "mlp.down_proj.weight"].T
    logits = rms(x, p["model.norm.weight"]) @ head.T
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), tg.reshape(-1), ignore_index=-100)
    loss.backward()
    keep = [n for n, t in p.items() if t.dim() == 1]
    keep += ["model.layers.0.self_attn.k_proj.weight", f"model.layers.{L - 1}.mlp.down_proj.weight"]
    out = {"inputs": (ids, "I32"), "targets": (torch.where(tg < 0, -1, tg), "I32"),
           "loss": (loss.detach().reshape(1), "F64")}
    for n in keep:
        out["grad." + n] = (p[n].grad, "F32")
    os.makedirs("tests/ref/hf_train", exist_ok=True)
    write_st(f"tests/ref/hf_train/{arch}.safetensors", out)
    print(f"{arch}: loss {loss.item():.6f}, {len(keep)} gradients")


for i, arch in enumerate(ARCHS):
    make(arch, 200 + i)
