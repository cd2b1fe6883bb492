#!/usr/bin/python3
"""Reference for br_gru_forward/backward: torch.nn.GRUCell, two steps unrolled, loss
sum(c * h2).  Writes tests/ref/gru_ref.txt: one 'name n v1 v2 ...' line per tensor
(row-major).  Run: /usr/bin/python3 tests/ref/gru_ref.py"""
import torch

torch.manual_seed(0)
N, C, H = 3, 4, 5
cell = torch.nn.GRUCell(C, H).double()
x1 = torch.randn(N, C, dtype=torch.float64, requires_grad=True)
x2 = torch.randn(N, C, dtype=torch.float64, requires_grad=True)
h0 = torch.randn(N, H, dtype=torch.float64, requires_grad=True)
c = torch.randn(N, H, dtype=torch.float64)
h1 = cell(x1, h0)
h2 = cell(x2, h1)
(c * h2).sum().backward()
out = [("w_ih", cell.weight_ih), ("w_hh", cell.weight_hh), ("b_ih", cell.bias_ih),
       ("b_hh", cell.bias_hh), ("x1", x1), ("x2", x2), ("h0", h0), ("c", c), ("h1", h1),
       ("h2", h2), ("dw_ih", cell.weight_ih.grad), ("dw_hh", cell.weight_hh.grad),
       ("db_ih", cell.bias_ih.grad), ("db_hh", cell.bias_hh.grad), ("dx1", x1.grad),
       ("dx2", x2.grad), ("dh0", h0.grad)]
with open("tests/ref/gru_ref.txt", "w") as f:
    f.write(f"# torch {torch.__version__} GRUCell N={N} C={C} H={H}\n")
    for name, t in out:
        v = t.detach().reshape(-1).tolist()
        f.write(name + " " + str(len(v)) + " " + " ".join(f"{x:.9g}" for x in v) + "\n")
