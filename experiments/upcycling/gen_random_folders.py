#!/usr/bin/python3
"""Model folders of a real shape with random BF16 weights, for measuring `braid upcycle` at full
size without downloading anything (docs/moe.md, "Memory").  Writes OUT/base and OUT/ft1..ftN:
the base N(0, 0.02^2) (norms 1), each "finetune" = base + 0.002 * N(0, 1), in the Hub's layout
(config.json, shards of at most 2 GB + model.safetensors.index.json, BF16), one tensor at a time
so this script itself needs about one tensor of memory.  Outside git; run under `nice`.

  nice -n 10 /usr/bin/python3 experiments/upcycling/gen_random_folders.py --shape llama-3.2-1b --experts 4 --out DIR
"""
import argparse, json, os, struct
import torch

SHAPES = {
    # meta-llama/Llama-3.2-1B config.json (tied embeddings, llama3 RoPE scaling)
    "llama-3.2-1b": {"vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
                     "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64, "tie_word_embeddings": True,
                     "rope_theta": 500000.0, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
                     "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}},
    # TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T
    "tinyllama-1.1b": {"vocab_size": 32000, "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
                       "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 64, "tie_word_embeddings": False,
                       "rope_theta": 10000.0, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5},
    # HuggingFaceTB/SmolLM2-135M
    "smollm2-135m": {"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                     "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64, "tie_word_embeddings": True,
                     "rope_theta": 100000.0, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5},
}

def tensors(c):
    C, F, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    q, kv = c["num_attention_heads"] * c["head_dim"], c["num_key_value_heads"] * c["head_dim"]
    yield "model.embed_tokens.weight", (V, C)
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        yield p + "input_layernorm.weight", (C,)
        yield p + "self_attn.q_proj.weight", (q, C)
        yield p + "self_attn.k_proj.weight", (kv, C)
        yield p + "self_attn.v_proj.weight", (kv, C)
        yield p + "self_attn.o_proj.weight", (C, q)
        yield p + "post_attention_layernorm.weight", (C,)
        yield p + "mlp.gate_proj.weight", (F, C)
        yield p + "mlp.up_proj.weight", (F, C)
        yield p + "mlp.down_proj.weight", (C, F)
    yield "model.norm.weight", (C,)
    if not c["tie_word_embeddings"]:
        yield "lm_head.weight", (V, C)

def nbytes(shape):
    n = 2
    for d in shape:
        n *= d
    return n

def write_folder(d, c, seed, noise_seed, shard_bytes=2 * 10**9):
    os.makedirs(d, exist_ok=True)
    cfg = dict(c, architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu", initializer_range=0.02,
               bos_token_id=1, eos_token_id=2, torch_dtype="bfloat16")
    json.dump(cfg, open(f"{d}/config.json", "w"), indent=2)
    shards, cur, size = [], [], 0
    for name, shape in tensors(c):
        if cur and size + nbytes(shape) > shard_bytes:
            shards.append(cur)
            cur, size = [], 0
        cur.append((name, shape))
        size += nbytes(shape)
    shards.append(cur)
    gb, gn = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(noise_seed)
    wmap, total = {}, 0
    for k, part in enumerate(shards):
        fn = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for name, shape in part:
            header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + nbytes(shape)]}
            off += nbytes(shape)
            wmap[name] = fn
        total += off
        h = json.dumps(header).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        with open(f"{d}/{fn}", "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
            for name, shape in part:
                t = torch.ones(shape) if len(shape) == 1 else torch.randn(shape, generator=gb) * 0.02
                if noise_seed:
                    t += 0.002 * torch.randn(shape, generator=gn)
                f.write(t.to(torch.bfloat16).view(torch.int16).numpy().tobytes())
                del t
    json.dump({"metadata": {"total_size": total}, "weight_map": wmap}, open(f"{d}/model.safetensors.index.json", "w"),
              indent=2)
    return total

ap = argparse.ArgumentParser()
ap.add_argument("--shape", choices=sorted(SHAPES), default="llama-3.2-1b")
ap.add_argument("--experts", type=int, default=4)
ap.add_argument("--out", required=True)
a = ap.parse_args()
torch.set_num_threads(1)
c = SHAPES[a.shape]
print(f"base: {write_folder(f'{a.out}/base', c, 1, 0) / 1e9:.2f} GB")
for i in range(1, a.experts + 1):
    print(f"ft{i}: {write_folder(f'{a.out}/ft{i}', c, 1, 100 + i) / 1e9:.2f} GB")
