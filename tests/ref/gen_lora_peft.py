#!/usr/bin/python3
"""Writes tests/ref/lora_peft/: a small LoRA adapter laid out exactly as Hugging Face PEFT's
save_pretrained writes it (adapter_config.json + adapter_model.safetensors with PEFT tensor
names; safetensors as the Rust library writes it: __metadata__ {"format": "pt"}, tensors
sorted by name, header padded with spaces to 8 bytes), plus expected.safetensors: inputs x and,
for every adapted module, delta = scale * x A^T B^T computed in float64 by numpy.

Base shapes (what tests/test_nn_lora.c passes): 2 layers, hidden 16, q/o 16x16, k/v 8x16,
gate/up 24x16, down 16x24.  Mixed ranks (rank_pattern), a per-module alpha (alpha_pattern),
and one module stored as F16 exercise what PEFT files contain in practice.

Run: /usr/bin/python3 tests/ref/gen_lora_peft.py   (numpy only)"""
import json, os, struct
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "lora_peft")
C, QO, KV, F, L = 16, 16, 8, 24, 2
SHAPES = {"q_proj": (QO, C), "k_proj": (KV, C), "v_proj": (KV, C), "o_proj": (C, QO),
          "gate_proj": (F, C), "up_proj": (F, C), "down_proj": (C, F)}
PARENT = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn",
          "o_proj": "self_attn", "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
R, ALPHA = 4, 8.0
TARGETS = ["q_proj", "v_proj", "down_proj"]
RANK_PATTERN = {"down_proj": 2}
ALPHA_PATTERN = {"model.layers.1.self_attn.v_proj": 3.0}
F16_MODULES = {"model.layers.0.mlp.down_proj"}

DT = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset, blobs = 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": DT[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def rank_of(module):
    for k, v in RANK_PATTERN.items():
        if module == k or module.endswith("." + k):
            return v
    return R


def alpha_of(module):
    for k, v in ALPHA_PATTERN.items():
        if module == k or module.endswith("." + k):
            return v
    return ALPHA


def main():
    rng = np.random.default_rng(1234)
    os.makedirs(OUT, exist_ok=True)
    tensors, expected = {}, {}
    x = rng.standard_normal((3, max(C, F))).astype(np.float32)
    expected["x"] = x
    for layer in range(L):
        for proj in TARGETS:
            module = f"model.layers.{layer}.{PARENT[proj]}.{proj}"
            out_f, in_f = SHAPES[proj]
            r = rank_of(module)
            a = (rng.standard_normal((r, in_f)) / np.sqrt(in_f)).astype(np.float32)
            b = (rng.standard_normal((out_f, r)) * 0.5).astype(np.float32)
            if module in F16_MODULES:
                a, b = a.astype(np.float16), b.astype(np.float16)
            tensors[f"base_model.model.{module}.lora_A.weight"] = a
            tensors[f"base_model.model.{module}.lora_B.weight"] = b
            scale = alpha_of(module) / r
            xi = x[:, :in_f].astype(np.float64)
            delta = scale * (xi @ a.astype(np.float64).T) @ b.astype(np.float64).T
            expected[f"delta.{layer}.{proj}"] = delta.astype(np.float32)
    write_safetensors(os.path.join(OUT, "adapter_model.safetensors"), tensors, {"format": "pt"})
    write_safetensors(os.path.join(HERE, "lora_peft_expected.safetensors"), expected, {"format": "pt"})
    config = {
        "alpha_pattern": ALPHA_PATTERN, "auto_mapping": None,
        "base_model_name_or_path": "braid-test-base", "bias": "none", "fan_in_fan_out": False,
        "inference_mode": True, "init_lora_weights": True, "layer_replication": None,
        "layers_pattern": None, "layers_to_transform": None, "loftq_config": {},
        "lora_alpha": ALPHA, "lora_dropout": 0.05, "megatron_config": None,
        "megatron_core": "megatron.core", "modules_to_save": None, "peft_type": "LORA", "r": R,
        "rank_pattern": RANK_PATTERN, "revision": None, "target_modules": TARGETS,
        "task_type": "CAUSAL_LM", "use_dora": False, "use_rslora": False}
    with open(os.path.join(OUT, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
