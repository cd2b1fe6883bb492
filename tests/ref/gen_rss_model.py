#!/usr/bin/python3
"""A Llama-3.2-1B-shaped model folder with random BF16 weights (not a fixture: for measuring
braid's peak memory on a real-size checkpoint, docs/lm.md).  Same config as
meta-llama/Llama-3.2-1B (16 layers, width 2048, 32 heads / 8 KV heads of 64, SwiGLU 8192,
vocabulary 128256, tied embeddings, rope_scaling llama3), two shards + index.  The values are
random BF16 bit patterns of magnitude 2^-7..2^-6 (fast to make; the numbers do not matter).

    /usr/bin/python3 tests/ref/gen_rss_model.py /tmp/llama-1b-shape [LAYERS]
"""
import json, os, struct, sys
import numpy as np

out = sys.argv[1]
L = int(sys.argv[2]) if len(sys.argv) > 2 else 16
V, C, F, NH, NKV, hd = 128256, 2048, 8192, 32, 8, 64
cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V,
       "hidden_size": C, "intermediate_size": F, "num_hidden_layers": L,
       "num_attention_heads": NH, "num_key_value_heads": NKV, "head_dim": hd,
       "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
       "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                        "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
       "tie_word_embeddings": True, "hidden_act": "silu", "attention_bias": False,
       "mlp_bias": False, "bos_token_id": 128000, "eos_token_id": 128001,
       "torch_dtype": "bfloat16"}
rng = np.random.default_rng(0)
shapes = [("model.embed_tokens.weight", (V, C))]
for l in range(L):
    p = f"model.layers.{l}."
    shapes += [(p + "input_layernorm.weight", (C,)), (p + "self_attn.q_proj.weight", (NH * hd, C)),
               (p + "self_attn.k_proj.weight", (NKV * hd, C)), (p + "self_attn.v_proj.weight", (NKV * hd, C)),
               (p + "self_attn.o_proj.weight", (C, NH * hd)), (p + "post_attention_layernorm.weight", (C,)),
               (p + "mlp.gate_proj.weight", (F, C)), (p + "mlp.up_proj.weight", (F, C)),
               (p + "mlp.down_proj.weight", (C, F))]
shapes.append(("model.norm.weight", (C,)))
split = next(i for i, (n, _) in enumerate(shapes) if n.startswith(f"model.layers.{L // 2}."))
os.makedirs(out, exist_ok=True)
files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
wmap, total = {}, 0
for fi, part in enumerate((shapes[:split], shapes[split:])):
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in part:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
        wmap[name] = files[fi]
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(f"{out}/{files[fi]}", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for name, shape in part:
            n = int(np.prod(shape))
            if len(shape) == 1:
                f.write(np.full(n, 0x3f80, np.uint16).tobytes())  # norms: 1.0
                continue
            for s in range(0, n, 1 << 24):
                r = rng.integers(0, 1 << 16, min(1 << 24, n - s), dtype=np.uint16)
                f.write(((r & 0x807f) | 0x3c00).astype(np.uint16).tobytes())
    total += off
json.dump({"metadata": {"total_size": total}, "weight_map": wmap}, open(f"{out}/model.safetensors.index.json", "w"), indent=1)
json.dump(cfg, open(f"{out}/config.json", "w"), indent=2)
print(f"wrote {out}: {L} layers, {total / 1e9:.2f} GB of BF16 weights")
