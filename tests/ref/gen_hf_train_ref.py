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
import json, os, struct
import sys
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_hf_arch_ref import hf_forward  # noqa: E402  the forward the logits fixtures use

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


def make(arch, seed):
    d = f"tests/ref/hf_{arch}"
    cfg = json.load(open(f"{d}/config.json"))
    idx = json.load(open(f"{d}/model.safetensors.index.json"))
    p = {}
    for f in sorted(set(idx["weight_map"].values())):
        p.update(read_st(f"{d}/{f}"))
    for t in p.values():
        t.requires_grad_(True)
    V, L = cfg["vocab_size"], cfg["num_hidden_layers"]
    torch.manual_seed(seed)
    ids = torch.randint(0, V, (B, T))
    tg = torch.randint(0, V, (B, T))
    tg[0, 2] = -100
    logits = hf_forward(p, cfg, arch, ids)
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
