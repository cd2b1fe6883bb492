#!/usr/bin/python3
"""Per-layer PyTorch references for tests/test_nn_ref.c: forward outputs and autograd gradients
of the nn/ layers at small shapes, computed the way Hugging Face Llama computes them
(LlamaRMSNorm, rotate_half RoPE with position ids, eager causal attention with repeat_kv,
SiLU-gated MLP, F.cross_entropy with ignore_index) in float64 from float32 inputs.

Run from the repository root:  /usr/bin/python3 tests/ref/gen_nn_ref.py  (writes tests/ref/nn_ref.json)
"""
import json
import math

import torch
import torch.nn.functional as F

torch.manual_seed(7)
out = {}


def f32(t):
    return t.float().double()  # float32-representable values, computed in float64


def put(name, t):
    out[name] = [float(x) for x in t.detach().reshape(-1).tolist()]


# RMSNorm (LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * w)
N, C, eps = 3, 8, 1e-5
x = f32(torch.randn(N, C)).requires_grad_()
w = f32(torch.randn(C)).requires_grad_()
g = f32(torch.randn(N, C))
y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w
y.backward(g)
put("rms_x", x), put("rms_w", w), put("rms_g", g), put("rms_y", y), put("rms_dx", x.grad), put("rms_dw", w.grad)

# RoPE (HF apply_rotary_pos_emb with position_ids; theta 10000)
Nr, H, hd, theta = 4, 2, 8, 10000.0
pos = torch.tensor([0, 5, 2, 11])
inv = 1.0 / (theta ** (torch.arange(0, hd, 2).double() / hd))
ang = pos.double()[:, None] * inv[None, :]
emb = torch.cat((ang, ang), dim=-1)
cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
q = f32(torch.randn(Nr, H, hd)).requires_grad_()
rot = lambda t: torch.cat((-t[..., hd // 2:], t[..., : hd // 2]), dim=-1)
qr = q * cos + rot(q) * sin
gq = f32(torch.randn(Nr, H, hd))
qr.backward(gq)
out["rope_pos"] = pos.tolist()
put("rope_x", q), put("rope_y", qr), put("rope_g", gq), put("rope_dx", q.grad)

# causal attention with GQA (B,T,NH,hd) q, (B,T,NKV,hd) k/v; repeat_kv = repeat_interleave
B, T, NH, NKV, hd = 2, 6, 4, 2, 4
q = f32(torch.randn(B, T, NH, hd)).requires_grad_()
k = f32(torch.randn(B, T, NKV, hd)).requires_grad_()
v = f32(torch.randn(B, T, NKV, hd)).requires_grad_()
qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
kh, vh = kh.repeat_interleave(NH // NKV, dim=1), vh.repeat_interleave(NH // NKV, dim=1)
s = qh @ kh.transpose(-1, -2) / math.sqrt(hd)
s = s + torch.full((T, T), float("-inf")).double().triu(1)
p = torch.softmax(s, dim=-1)
o = (p @ vh).transpose(1, 2)
go = f32(torch.randn(B, T, NH, hd))
o.backward(go)
for n, t in (("q", q), ("k", k), ("v", v)):
    put("att_" + n, t), put("att_d" + n, t.grad)
put("att_out", o), put("att_g", go), put("att_p", p)

# SwiGLU
n = 10
gate = f32(torch.randn(n) * 3).requires_grad_()
up = f32(torch.randn(n)).requires_grad_()
gs = f32(torch.randn(n))
ys = F.silu(gate) * up
ys.backward(gs)
put("swi_gate", gate), put("swi_up", up), put("swi_g", gs), put("swi_y", ys)
put("swi_dgate", gate.grad), put("swi_dup", up.grad)

# cross-entropy, mean over non-ignored rows (ignore_index -100, as HF)
Nx, V = 4, 9
logits = f32(torch.randn(Nx, V) * 3).requires_grad_()
tg = torch.tensor([3, -100, 8, 0])
loss = F.cross_entropy(logits, tg, ignore_index=-100)
loss.backward()
put("xe_logits", logits), put("xe_dlogits", logits.grad)
out["xe_targets"] = tg.tolist()
out["xe_loss"] = float(loss)

with open("tests/ref/nn_ref.json", "w") as f:
    json.dump({"generator": "tests/ref/gen_nn_ref.py", "torch": torch.__version__, **out}, f)
    f.write("\n")
