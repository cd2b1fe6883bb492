#!/usr/bin/python3
"""A tiny Mixtral checkpoint written the way Hugging Face writes one, and its logits, for
tests/test_lm_moe.c (braid must read Mixtral checkpoints made elsewhere).

Same maths as transformers' modeling_mixtral.py (MixtralSparseMoeBlock): router logits =
gate(x); routing weights = softmax over all experts (float32); top-k; divided by their sum;
expert = w2(silu(w1 x) * w3 x); sequential pre-norm blocks with RoPE (rotate_half) and GQA.
config.json carries Mixtral's fields only (no norm_topk_prob, no block): renormalisation is
implied by model_type "mixtral".

Run from the repository root:  /usr/bin/python3 tests/ref/gen_mixtral_ref.py
"""
import json, math, os, struct
import torch

torch.manual_seed(7)
OUT = "tests/ref/mixtral_tiny"
cfg = {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "vocab_size": 61,
       "hidden_size": 32, "intermediate_size": 40, "num_hidden_layers": 2, "num_attention_heads": 4,
       "num_key_value_heads": 2, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
       "rope_theta": 1000000.0, "num_local_experts": 4, "num_experts_per_tok": 2,
       "router_aux_loss_coef": 0.02, "output_router_logits": False, "sliding_window": None,
       "tie_word_embeddings": False, "hidden_act": "silu", "initializer_range": 0.02,
       "router_jitter_noise": 0.0, "attention_dropout": 0.0, "torch_dtype": "float32"}

def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        raw = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)

V, C, F, L = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
NH, NKV, E, K = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["num_local_experts"], cfg["num_experts_per_tok"]
hd, eps = C // NH, cfg["rms_norm_eps"]
p = {}
def mat(name, o, i, std=0.2):
    p[name] = (torch.randn(o, i, dtype=torch.float64) * std).float().double()
def norm(name):
    p[name] = (1 + 0.1 * torch.randn(C, dtype=torch.float64)).float().double()
mat("model.embed_tokens.weight", V, C, 1.0)
for l in range(L):
    pre = f"model.layers.{l}."
    norm(pre + "input_layernorm.weight")
    mat(pre + "self_attn.q_proj.weight", NH * hd, C)
    mat(pre + "self_attn.k_proj.weight", NKV * hd, C)
    mat(pre + "self_attn.v_proj.weight", NKV * hd, C)
    mat(pre + "self_attn.o_proj.weight", C, NH * hd)
    norm(pre + "post_attention_layernorm.weight")
    mat(pre + "block_sparse_moe.gate.weight", E, C, 0.5)
    for j in range(E):
        mat(pre + f"block_sparse_moe.experts.{j}.w1.weight", F, C)
        mat(pre + f"block_sparse_moe.experts.{j}.w2.weight", C, F)
        mat(pre + f"block_sparse_moe.experts.{j}.w3.weight", F, C)
norm("model.norm.weight")
mat("lm_head.weight", V, C)

def rms(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

def rot(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

def forward(ids):
    B, T = ids.shape
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    fr = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    emb = torch.cat((fr, fr), -1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    x = p["model.embed_tokens.weight"][ids]
    for l in range(L):
        pre = f"model.layers.{l}."
        u = rms(x, p[pre + "input_layernorm.weight"])
        q = (u @ p[pre + "self_attn.q_proj.weight"].T).view(B, T, NH, hd).transpose(1, 2)
        k = (u @ p[pre + "self_attn.k_proj.weight"].T).view(B, T, NKV, hd).transpose(1, 2)
        v = (u @ p[pre + "self_attn.v_proj.weight"].T).view(B, T, NKV, hd).transpose(1, 2)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        k, v = k.repeat_interleave(NH // NKV, 1), v.repeat_interleave(NH // NKV, 1)
        a = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask, -1) @ v
        h = x + a.transpose(1, 2).reshape(B, T, C) @ p[pre + "self_attn.o_proj.weight"].T
        z = rms(h, p[pre + "post_attention_layernorm.weight"]).reshape(-1, C)
        # MixtralSparseMoeBlock
        logits = z @ p[pre + "block_sparse_moe.gate.weight"].T
        w = torch.softmax(logits, dim=1)
        w, sel = torch.topk(w, K, dim=-1)
        w = w / w.sum(-1, keepdim=True)
        out = torch.zeros_like(z)
        for j in range(E):
            e = f"{pre}block_sparse_moe.experts.{j}."
            y = (torch.nn.functional.silu(z @ p[e + "w1.weight"].T) * (z @ p[e + "w3.weight"].T)) @ p[e + "w2.weight"].T
            wj = (w * (sel == j)).sum(-1, keepdim=True)
            out = out + wj * y
        x = h + out.view(B, T, C)
    return rms(x, p["model.norm.weight"]) @ p["lm_head.weight"].T

os.makedirs(OUT, exist_ok=True)
ids = torch.randint(0, V, (2, 9))
logits = forward(ids)
json.dump(cfg, open(f"{OUT}/config.json", "w"), indent=2)
write_safetensors(f"{OUT}/model.safetensors", p)
write_safetensors(f"{OUT}/ref.safetensors", {"inputs": ids.to(torch.float64), "logits": logits})
print(f"wrote {OUT}: logits {tuple(logits.shape)}")
