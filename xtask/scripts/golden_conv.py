#!/usr/bin/python3
"""Golden fixtures for conad-engine (issue #4): conv2d forward / grad-input / grad-weight and
training-mode BatchNorm2d(+ReLU) forward / gradients / running statistics, from PyTorch 1.13.

Run from the repository root:  /usr/bin/python3 xtask/scripts/golden_conv.py
Writes fixtures/engine/conv.safetensors and fixtures/engine/batch_norm.safetensors (f32,
safetensors written by hand below — Debian has no `safetensors` module). Inputs come from a fixed
torch seed; every case stores its inputs, the upstream gradient `dy` and the expected outputs.
"""
import json
import struct
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

torch.manual_seed(20261122)
OUT = Path(__file__).resolve().parents[2] / "fixtures" / "engine"


def save(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    print(f"{path}: {len(tensors)} tensors, {8 + len(h) + offset} bytes", file=sys.stderr)


# (name, N, C_in, H, W, C_out, k, stride, padding): stride 1 and 2, padding, 1×1 downsample convs,
# batch 1, non-square inputs, 1 and 3 channels, a batch large enough to span several chunks.
CONV_CASES = [
    ("stem3_s1_p1", 2, 3, 7, 5, 4, 3, 1, 1),
    ("gray_s1_p1_batch1", 1, 1, 6, 6, 3, 3, 1, 1),
    ("s2_p1_nonsquare", 3, 4, 9, 6, 5, 3, 2, 1),
    ("down1x1_s2", 2, 6, 8, 7, 8, 1, 2, 0),
    ("pw1x1_s1", 2, 5, 4, 3, 6, 1, 1, 0),
    ("s2_p0_odd", 2, 3, 7, 7, 2, 3, 2, 0),
    ("tiny_maps_many_chunks", 40, 4, 2, 2, 3, 3, 1, 1),
    ("k5_p2_s2", 2, 2, 8, 9, 3, 5, 2, 2),
    # ≥ 512 output pixels, 23 wide: the direct kernel with a partial second vector and a
    # 3-of-12 output-channel tile (conad-engine's direct_conv).
    ("wide_map_patches_layout", 2, 2, 24, 23, 3, 3, 1, 1),
    # Direct kernel: two full 16-pixel vectors per row, 8-channel tiles.
    ("direct_w32_tile8", 1, 4, 6, 32, 8, 3, 1, 1),
    # Direct kernel: 14-pixel rows, two rows per tile, two 8-channel tiles.
    ("direct_w14_two_rows", 2, 3, 4, 14, 16, 3, 1, 1),
    # Direct kernel with a 5×5 kernel ("same" padding 2).
    ("direct_k5_p2", 1, 2, 6, 20, 8, 5, 1, 2),
    # Winograd F(2x2,3x3) (>= 64 channels): odd, non-square map (partial edge tiles), an input
    # channel count that is not a multiple of 16.
    ("winograd_c72_o64_odd_nonsquare", 2, 72, 5, 3, 64, 3, 1, 1),
]
# Cases drawn after the batch-norm cases (added 2026-12-06; drawing them last keeps every earlier
# fixture's inputs unchanged): the Winograd weight gradient of a 16 → 16 layer (conad-engine's
# 16 × 16 block kernel; odd map, partial tiles) and of 32 → 24 channels (GEMM path, ragged output
# channels).
LATE_CONV_CASES = [
    ("winograd_gw_c16_o16_odd", 3, 16, 9, 11, 16, 3, 1, 1),
    ("winograd_gw_c32_o24", 2, 32, 6, 7, 24, 3, 1, 1),
]
conv = {}


def conv_case(name, n, cin, h, w, cout, k, s, p):
    x = torch.randn(n, cin, h, w, requires_grad=True)
    wt = (torch.randn(cout, cin, k, k) / (cin * k * k) ** 0.5).requires_grad_()
    y = F.conv2d(x, wt, stride=s, padding=p)
    dy = torch.randn_like(y)
    y.backward(dy)
    conv.update({f"{name}.x": x, f"{name}.w": wt, f"{name}.dy": dy, f"{name}.y": y,
                 f"{name}.dx": x.grad, f"{name}.dw": wt.grad,
                 f"{name}.meta": torch.tensor([s, p], dtype=torch.float32)})


for case in CONV_CASES:
    conv_case(*case)

# (name, N, C, H, W, relu, affine)
BN_CASES = [
    ("relu_affine", 3, 4, 5, 3, True, True),
    ("plain_affine", 2, 3, 4, 4, False, True),
    ("relu_batch1", 1, 2, 3, 5, True, True),
    ("nonaffine", 4, 3, 2, 2, False, False),
]
bn = {}
for name, n, c, h, w, relu, affine in BN_CASES:
    m = torch.nn.BatchNorm2d(c, momentum=0.1, eps=1e-5, affine=affine)
    with torch.no_grad():
        m.running_mean.copy_(torch.randn(c))
        m.running_var.copy_(torch.rand(c) + 0.5)
        if affine:
            m.weight.copy_(torch.randn(c))
            m.bias.copy_(torch.randn(c))
    rm0, rv0 = m.running_mean.clone(), m.running_var.clone()
    x = (torch.randn(n, c, h, w) * 2 + 0.5).requires_grad_()
    m.train()
    y = m(x)
    if relu:
        y = F.relu(y)
    dy = torch.randn_like(y)
    y.backward(dy)
    t = {f"{name}.x": x, f"{name}.dy": dy, f"{name}.y": y, f"{name}.dx": x.grad,
         f"{name}.rm0": rm0, f"{name}.rv0": rv0, f"{name}.rm": m.running_mean, f"{name}.rv": m.running_var,
         f"{name}.meta": torch.tensor([float(relu), float(affine)])}
    if affine:
        t.update({f"{name}.gamma": m.weight, f"{name}.beta": m.bias,
                  f"{name}.dgamma": m.weight.grad, f"{name}.dbeta": m.bias.grad})
    bn.update(t)
save(OUT / "batch_norm.safetensors", bn)

for case in LATE_CONV_CASES:
    conv_case(*case)
save(OUT / "conv.safetensors", conv)
