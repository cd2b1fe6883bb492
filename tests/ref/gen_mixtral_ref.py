#!/usr/bin/python3
"""A tiny Mixtral checkpoint written the way Hugging Face writes one, and its logits, for
tests/test_lm_moe.c (braid must read Mixtral checkpoints made elsewhere).  Then the Mixtral
reference for braid's upcycling (tests/test_moe_stream.c): three BF16 Llama folders of one base
(tests/ref/upcycle_tiny/{base,ft1,ft2}, ft1 sharded with an index, each with a tokenizer), which
`braid upcycle` (BTX and sparse) turns into Mixtral folders; this script checks every expert and
averaged tensor of braid's output against its own construction (bit for bit) and writes the
float64 logits and greedy ids of the Mixtral forward below on braid's output (routers included,
so the fixture holds for braid's router seed 5).

Same maths as transformers' modeling_mixtral.py (MixtralSparseMoeBlock): router logits =
gate(x); routing weights = softmax over all experts (float32); top-k; divided by their sum;
expert = w2(silu(w1 x) * w3 x); sequential pre-norm blocks with RoPE (rotate_half) and GQA.
config.json carries Mixtral's fields only (no norm_topk_prob, no block): renormalisation is
implied by model_type "mixtral".

Run from the repository root after `make`:  /usr/bin/python3 tests/ref/gen_mixtral_ref.py
"""
import json, math, os, shutil, struct, subprocess, tempfile
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

def write_safetensors(path, tensors, bf16=False):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        if bf16:
            raw = t.detach().to(torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes()
        else:
            raw = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "BF16" if bf16 else "F32", "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
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

def rms(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

def rot(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

def forward(p, cfg, ids):
    """transformers' MixtralForCausalLM forward in float64 (no cache): logits (B, T, V)."""
    C, L, NH, NKV = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    E, K, eps = cfg["num_local_experts"], cfg["num_experts_per_tok"], cfg["rms_norm_eps"]
    hd = cfg.get("head_dim") or C // NH
    B, T = ids.shape
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    fr = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    emb = torch.cat((fr, fr), -1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    x = p["model.embed_tokens.weight"][ids]
    for l in range(L):
        pre = f"model.layers.{l}."
        u = rms(x, p[pre + "input_layernorm.weight"], eps)
        q = (u @ p[pre + "self_attn.q_proj.weight"].T).view(B, T, NH, hd).transpose(1, 2)
        k = (u @ p[pre + "self_attn.k_proj.weight"].T).view(B, T, NKV, hd).transpose(1, 2)
        v = (u @ p[pre + "self_attn.v_proj.weight"].T).view(B, T, NKV, hd).transpose(1, 2)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        k, v = k.repeat_interleave(NH // NKV, 1), v.repeat_interleave(NH // NKV, 1)
        a = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask, -1) @ v
        h = x + a.transpose(1, 2).reshape(B, T, NH * hd) @ p[pre + "self_attn.o_proj.weight"].T
        z = rms(h, p[pre + "post_attention_layernorm.weight"], eps).reshape(-1, C)
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
    head = p["lm_head.weight"] if "lm_head.weight" in p else p["model.embed_tokens.weight"]
    return rms(x, p["model.norm.weight"], eps) @ head.T

os.makedirs(OUT, exist_ok=True)
ids = torch.randint(0, V, (2, 9))
logits = forward(p, cfg, ids)
json.dump(cfg, open(f"{OUT}/config.json", "w"), indent=2)
write_safetensors(f"{OUT}/model.safetensors", p)
write_safetensors(f"{OUT}/ref.safetensors", {"inputs": ids.to(torch.float64), "logits": logits})
print(f"wrote {OUT}: logits {tuple(logits.shape)}")

# ---- braid upcycle's output against this reference ----------------------------------------
UP = "tests/ref/upcycle_tiny"
ucfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 360, "hidden_size": 32,
        "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 8, "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": False, "hidden_act": "silu", "initializer_range": 0.02, "bos_token_id": 1,
        "eos_token_id": 2, "torch_dtype": "bfloat16"}
gu = torch.Generator().manual_seed(11)

def bf16(t):
    return t.to(torch.bfloat16).to(torch.float64)

def dense_names(c):
    C, F, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    q, kv = c["num_attention_heads"] * c["head_dim"], c["num_key_value_heads"] * c["head_dim"]
    shapes = {"model.embed_tokens.weight": (c["vocab_size"], C)}
    for l in range(L):
        pre = f"model.layers.{l}."
        shapes.update({pre + "input_layernorm.weight": (C,), pre + "self_attn.q_proj.weight": (q, C),
                       pre + "self_attn.k_proj.weight": (kv, C), pre + "self_attn.v_proj.weight": (kv, C),
                       pre + "self_attn.o_proj.weight": (C, q), pre + "post_attention_layernorm.weight": (C,),
                       pre + "mlp.gate_proj.weight": (F, C), pre + "mlp.up_proj.weight": (F, C),
                       pre + "mlp.down_proj.weight": (C, F)})
    shapes["model.norm.weight"] = (C,)
    shapes["lm_head.weight"] = (c["vocab_size"], C)
    return shapes

def rand_like_shapes(shapes):
    out = {}
    for n, sh in shapes.items():
        if len(sh) == 1:
            out[n] = bf16(1 + 0.1 * torch.randn(sh, generator=gu, dtype=torch.float64))
        else:
            out[n] = bf16(0.3 * torch.randn(sh, generator=gu, dtype=torch.float64))
    return out

def write_folder(d, params, shards=1):
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    json.dump(ucfg, open(f"{d}/config.json", "w"), indent=2)
    shutil.copy("tests/ref/serve_tokenizer.json", f"{d}/tokenizer.json")
    json.dump({"bos_token": "<s>", "eos_token": "</s>"}, open(f"{d}/tokenizer_config.json", "w"))
    names = list(params)
    if shards == 1:
        write_safetensors(f"{d}/model.safetensors", params, bf16=True)
        return
    per, wmap = (len(names) + shards - 1) // shards, {}
    for k in range(shards):
        fn = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: params[n] for n in names[k * per:(k + 1) * per]}
        write_safetensors(f"{d}/{fn}", part, bf16=True)
        wmap.update({n: fn for n in part})
    json.dump({"metadata": {"total_size": 0}, "weight_map": wmap}, open(f"{d}/model.safetensors.index.json", "w"), indent=2)

def read_folder(d):
    files = [f for f in sorted(os.listdir(d)) if f.endswith(".safetensors")]
    out = {}
    for f in files:
        raw = open(f"{d}/{f}", "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        hdr = json.loads(raw[8:8 + n])
        for name, e in hdr.items():
            if name == "__metadata__":
                continue
            b, en = e["data_offsets"]
            buf = bytearray(raw[8 + n + b:8 + n + en])
            dt = {"BF16": torch.bfloat16, "F32": torch.float32, "F16": torch.float16}[e["dtype"]]
            out[name] = torch.frombuffer(buf, dtype=dt).reshape(e["shape"]).to(torch.float64)
    return out

def greedy(p, c, prompt, n):
    ids = prompt.clone()
    for _ in range(n):
        nxt = forward(p, c, ids)[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat((ids, nxt), 1)
    return ids[:, prompt.shape[1]:]

shapes = dense_names(ucfg)
base = rand_like_shapes(shapes)
fts = [{n: bf16(t + 0.05 * t.abs().mean() * torch.randn(t.shape, generator=gu, dtype=torch.float64)) for n, t in base.items()}
       for _ in range(2)]
write_folder(f"{UP}/base", base)
write_folder(f"{UP}/ft1", fts[0], shards=2)
write_folder(f"{UP}/ft2", fts[1])
proj_w = {"gate": "w1", "down": "w2", "up": "w3"}
uids = torch.randint(0, ucfg["vocab_size"], (2, 7), generator=gu)
ref = {"inputs": uids.to(torch.float64)}
for method, experts, extra in (("btx", fts, []), ("sparse", [base] * 3, ["--num-experts", "3"])):
    tmp = tempfile.mkdtemp(prefix="braid-upcycle-ref-")
    out = f"{tmp}/moe"
    subprocess.run(["./braid", "upcycle", "--method", method, "--base", f"{UP}/base", "--experts", f"{UP}/ft1,{UP}/ft2",
                    "--out", out, "--seed", "5", "--shard-size", "40KB"] + extra, check=True, stdout=subprocess.DEVNULL)
    mc = json.load(open(f"{out}/config.json"))
    assert mc["model_type"] == "mixtral" and mc["architectures"] == ["MixtralForCausalLM"], mc
    assert mc["num_local_experts"] == len(experts) and mc["num_experts_per_tok"] == 2 and mc["torch_dtype"] == "bfloat16"
    idx = json.load(open(f"{out}/model.safetensors.index.json"))
    got = read_folder(out)
    assert set(idx["weight_map"]) == set(got)
    for n, t in base.items():  # this script's own upcycling, bit for bit
        parts = n.split(".")
        if ".mlp." in n:
            l, w = parts[2], proj_w[parts[4].split("_")[0]]
            for j, ex in enumerate(experts):
                assert torch.equal(got[f"model.layers.{l}.block_sparse_moe.experts.{j}.{w}.weight"], ex[n]), (method, n, j)
        else:
            want = t if method == "sparse" else bf16((0.5 * fts[0][n].float() + 0.5 * fts[1][n].float()).double())
            assert torch.equal(got[n], want), (method, n)
    mcfg = dict(mc, head_dim=ucfg["head_dim"])
    ref[f"{method}_logits"] = forward(got, mcfg, uids)
    ref[f"{method}_greedy"] = greedy(got, mcfg, uids, 6).to(torch.float64)
    shutil.rmtree(tmp)
write_safetensors(f"{UP}/ref.safetensors", ref)
print(f"wrote {UP}: btx and sparse logits {tuple(ref['btx_logits'].shape)}, greedy ids {tuple(ref['btx_greedy'].shape)}")
