#!/usr/bin/python3
"""Hub-style model folders for the architectures braid runs (llama with llama3 RoPE scaling,
mistral, qwen2 with q/k/v biases and linear RoPE scaling, qwen3 with q/k norms and a head_dim
that is not hidden_size / heads), random weights stored as BF16 in two shards plus
model.safetensors.index.json, and their float64 PyTorch reference: logits for a batch and
greedy decoding, for tests/test_lm_arch.c.

The maths follows transformers' modeling_llama.py, modeling_mistral.py, modeling_qwen2.py and
modeling_qwen3.py (and modeling_rope_utils.py for rope_scaling): pre-norm blocks, RMSNorm
w * x / sqrt(mean(x^2) + eps), rotate_half RoPE, GQA by repeat_kv, causal softmax with scale
hd^-0.5, SwiGLU MLP, tied or untied head.  Qwen2: q/k/v projections biased, o_proj not.
Qwen3: q_norm/k_norm (RMSNorm over head_dim) on each head before RoPE.  Everything in float64
from the BF16-rounded weights, so only braid's arithmetic differs.  Widths are reduced (the
fixtures stay small: ~3 MB); head_dim, the GQA ratio and the per-architecture parts are real.

Run from the repository root:  /usr/bin/python3 tests/ref/gen_hf_arch_ref.py
Real widths (not committed: ~60-250 MB each), at the true layer shapes of Qwen3-0.6B and
Llama-3.2-1B (2 layers, vocabulary 360).  test_lm_arch generates the Qwen3-0.6B one into a
temporary folder at test time when torch is installed (a visible skip otherwise); by hand:
    /usr/bin/python3 tests/ref/gen_hf_arch_ref.py --real-width /tmp/braid-real [qwen3 llama]
    build/tests/test_lm_arch /tmp/braid-real/hf_qwen3 /tmp/braid-real/hf_llama
"""
import json, math, os, shutil, struct, sys
import torch

REAL = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--real-width" else None
ONLY = sys.argv[3:]  # --real-width OUT [ARCH...]: only those architectures (test_lm_arch: qwen3)

BASE = dict(vocab_size=360, hidden_size=128, intermediate_size=192, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            rms_norm_eps=1e-6, hidden_act="silu", initializer_range=0.02, attention_dropout=0.0,
            bos_token_id=351, eos_token_id=351, torch_dtype="bfloat16")
ARCHS = {
    "llama": dict(architectures=["LlamaForCausalLM"], model_type="llama", head_dim=32,
                  rope_theta=500000.0, tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
                  pretraining_tp=1,
                  rope_scaling=dict(rope_type="llama3", factor=4.0, low_freq_factor=1.0,
                                    high_freq_factor=4.0, original_max_position_embeddings=64)),
    "mistral": dict(architectures=["MistralForCausalLM"], model_type="mistral", head_dim=None,
                    rope_theta=1000000.0, tie_word_embeddings=False, sliding_window=4096),
    "qwen2": dict(architectures=["Qwen2ForCausalLM"], model_type="qwen2", rope_theta=1000000.0,
                  tie_word_embeddings=True, use_sliding_window=False, sliding_window=32768,
                  max_window_layers=21, rope_scaling=dict(type="linear", factor=2.0)),
    "qwen3": dict(architectures=["Qwen3ForCausalLM"], model_type="qwen3", head_dim=128,
                  rope_theta=1000000.0, tie_word_embeddings=True, attention_bias=False,
                  use_sliding_window=False, sliding_window=None, max_window_layers=28),
}
PROMPT_T, NEW = 11, 12
# At the real widths two layers barely move the residual stream and greedy repeats one token
# (a weak test of the KV cache): the blocks' output projections get a larger scale there.
OUT_GAIN = 16 if REAL else 1


def bf16(t):
    return t.to(torch.bfloat16).to(torch.float64)


def write_st(path, tensors, dtype):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        if dtype == "BF16":
            raw = t.to(torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes()
        elif dtype == "I32":
            raw = t.to(torch.int32).contiguous().numpy().tobytes()
        else:
            raw = t.to(torch.float64).contiguous().numpy().tobytes()
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
    return off


def inv_freq(cfg, hd):
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    rs = cfg.get("rope_scaling")
    if not rs:
        return inv
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":  # _compute_linear_scaling_rope_parameters
        return inv / rs["factor"]
    assert kind == "llama3"  # _compute_llama3_parameters
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wl, high_wl = old / lo, old / hi
    wavelen = 2 * math.pi / inv
    out = torch.where(wavelen > low_wl, inv / factor, inv)
    smooth = (old / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * out / factor + smooth * out
    medium = ~(wavelen < high_wl) * ~(wavelen > low_wl)
    return torch.where(medium, smoothed, out)



def hf_forward(p, cfg, arch, ids):
    """Logits (B, T, V) of the published Llama/Mistral/Qwen2/Qwen3 modeling code in float64: p maps
    Hugging Face tensor names to tensors, cfg is config.json, arch one of ARCHS."""
    B, T = ids.shape
    C, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    NH, NKV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or C // NH
    eps = cfg["rms_norm_eps"]
    head = p["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings", False) else p["lm_head.weight"]

    def rms(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def rot(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    inv = inv_freq(cfg, hd)
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
        y = (torch.nn.functional.silu(g) * (z @ p[pre + "mlp.up_proj.weight"].T)) @ p[pre + "mlp.down_proj.weight"].T
        x = h + y
    return rms(x, p["model.norm.weight"]) @ head.T

# the true layer shapes (--real-width): Qwen3-0.6B and Llama-3.2-1B
REAL_SHAPES = {
    "qwen3": dict(hidden_size=1024, intermediate_size=3072, num_attention_heads=16, num_key_value_heads=8, head_dim=128),
    "llama": dict(hidden_size=2048, intermediate_size=8192, num_attention_heads=32, num_key_value_heads=8, head_dim=64),
}


def make(arch, seed):
    torch.manual_seed(seed)
    cfg = dict(BASE, **ARCHS[arch])
    if REAL:
        cfg.update(REAL_SHAPES[arch])
    if cfg.get("head_dim") is None:
        cfg.pop("head_dim", None)
    V, C, F, L = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    NH, NKV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or C // NH
    p = {}

    def mat(name, o, i, std):
        p[name] = bf16(torch.randn(o, i, dtype=torch.float64) * std)

    def vec(name, n, one):
        p[name] = bf16((1.0 if one else 0.0) + (0.1 if one else 0.05) * torch.randn(n, dtype=torch.float64))

    # a tied head reads the embedding: keep it small so the residual stream is not just the
    # input token (greedy would repeat it)
    mat("model.embed_tokens.weight", V, C, 0.05 if cfg["tie_word_embeddings"] else 1.0)
    for l in range(L):
        pre = f"model.layers.{l}."
        vec(pre + "input_layernorm.weight", C, True)
        mat(pre + "self_attn.q_proj.weight", NH * hd, C, C ** -0.5)
        mat(pre + "self_attn.k_proj.weight", NKV * hd, C, C ** -0.5)
        mat(pre + "self_attn.v_proj.weight", NKV * hd, C, C ** -0.5)
        if arch == "qwen2":
            vec(pre + "self_attn.q_proj.bias", NH * hd, False)
            vec(pre + "self_attn.k_proj.bias", NKV * hd, False)
            vec(pre + "self_attn.v_proj.bias", NKV * hd, False)
        if arch == "qwen3":
            vec(pre + "self_attn.q_norm.weight", hd, True)
            vec(pre + "self_attn.k_norm.weight", hd, True)
        mat(pre + "self_attn.o_proj.weight", C, NH * hd, (NH * hd) ** -0.5 * OUT_GAIN)
        vec(pre + "post_attention_layernorm.weight", C, True)
        mat(pre + "mlp.gate_proj.weight", F, C, C ** -0.5)
        mat(pre + "mlp.up_proj.weight", F, C, C ** -0.5)
        mat(pre + "mlp.down_proj.weight", C, F, F ** -0.5 * OUT_GAIN)
    vec("model.norm.weight", C, True)
    if not cfg["tie_word_embeddings"]:
        mat("lm_head.weight", V, C, C ** -0.5)

    def forward(ids):
        return hf_forward(p, cfg, arch, ids)

    ids = torch.randint(0, V, (2, PROMPT_T))
    logits = forward(ids)
    # greedy decoding of the first row, recomputing the whole prefix each step (no cache)
    seq, gap = ids[:1].clone(), float("inf")
    for _ in range(NEW):
        last = forward(seq)[0, -1]
        top = torch.topk(last, 2).values
        gap = min(gap, float(top[0] - top[1]))
        seq = torch.cat((seq, last.argmax().view(1, 1)), 1)

    out = f"{REAL}/hf_{arch}" if REAL else f"tests/ref/hf_{arch}"
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    names = list(p)
    half = next(i for i, n in enumerate(names) if n.startswith(f"model.layers.{L // 2}."))
    shards = [dict((n, p[n]) for n in names[:half]), dict((n, p[n]) for n in names[half:])]
    files = [f"model-0000{i + 1}-of-00002.safetensors" for i in range(2)]
    total = sum(write_st(f"{out}/{f}", s, "BF16") for f, s in zip(files, shards))
    wmap = {n: files[0] if n in shards[0] else files[1] for n in names}
    json.dump({"metadata": {"total_size": total}, "weight_map": wmap}, open(f"{out}/model.safetensors.index.json", "w"), indent=2)
    json.dump(cfg, open(f"{out}/config.json", "w"), indent=2)
    json.dump({"bos_token_id": 351, "eos_token_id": 351, "do_sample": False},
              open(f"{out}/generation_config.json", "w"), indent=2)
    write_st(f"{out}/ref.safetensors", {"logits": logits}, "F64")
    write_st(f"{out}/ref_ids.safetensors", {"inputs": ids, "greedy": seq}, "I32")
    print(f"wrote {out}: hd {hd}, logits {tuple(logits.shape)}, greedy {seq[0, PROMPT_T:].tolist()}, "
          f"min top-2 gap {gap:.4f}")
    return gap


if __name__ == "__main__":
    for i, arch in enumerate(ARCHS):
        if REAL and (arch not in REAL_SHAPES or (ONLY and arch not in ONLY)):
            continue
        assert make(arch, 100 + i) > 2e-3, "greedy too close to a tie: pick another seed"
    if not REAL:
        shutil.copy("tests/ref/serve_tokenizer.json", "tests/ref/hf_qwen3/tokenizer.json")
