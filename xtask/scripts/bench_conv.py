#!/usr/bin/python3
"""PyTorch side of `cargo xtask bench conv` (issue #4): forward, grad-input and grad-weight time of
every distinct ResNet-18 (CIFAR stem) conv layer shape, 32x32x3 and 28x28x1 at widths 1 and 1/4,
batch 64 — the same cases, inputs and JSON fields as crates/conad-engine/examples/bench_conv.rs.
torch 1.13 (oneDNN), 2 threads. Run: /usr/bin/python3 xtask/scripts/bench_conv.py [--quick] [--reps R]
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
ap = argparse.ArgumentParser()
ap.add_argument("--quick", action="store_true")
ap.add_argument("--reps", type=int, default=None)
ap.add_argument("--config", default=None)
a = ap.parse_args()
reps = a.reps if a.reps is not None else (1 if a.quick else 5)
batch = 4 if a.quick else 64
configs = [(0.125, 8, 3)] if a.quick else [(1.0, 32, 3), (0.25, 32, 3), (1.0, 28, 1), (0.25, 28, 1)]


def layers(side, channels, width):
    w = [max(1, round(c * width)) for c in (64, 128, 256, 512)]
    down = lambda s: (s + 2 - 3) // 2 + 1
    v = [("stem", channels, w[0], 3, 1, 1, side, 1), ("layer1", w[0], w[0], 3, 1, 1, side, 4)]
    s = side
    for i in range(1, 4):
        so = down(s)
        v += [(f"layer{i + 1}.0.conv1", w[i - 1], w[i], 3, 2, 1, s, 1),
              (f"layer{i + 1}.0.down", w[i - 1], w[i], 1, 2, 0, s, 1),
              (f"layer{i + 1}", w[i], w[i], 3, 1, 1, so, 3)]
        s = so
    return v


def pattern(shape, a, scale):
    n = 1
    for d in shape:
        n *= d
    i = torch.arange(n, dtype=torch.int64)
    return ((((i * a) % 1000).to(torch.float32) / 1000.0 - 0.5) * scale).reshape(shape)


def timeit(f):
    out = f()
    out = f()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = f()
        t.append(time.perf_counter() - t0)
    return sorted(t)[len(t) // 2], out


def fmt_width(w):
    return str(int(w)) if w == int(w) else repr(w)


print(f"bench_conv.py: torch {torch.__version__}, {torch.get_num_threads()} threads, batch {batch}", file=sys.stderr)
for width, side, ch in configs:
    config = f"w{fmt_width(width)}_{side}x{side}x{ch}"
    if a.config and a.config != config:
        continue
    for name, cin, cout, k, s, p, hw, count in layers(side, ch, width):
        x = pattern((batch, cin, hw, hw), 7919, 1.0)
        w = pattern((cout, cin, k, k), 104729, 0.1)
        with torch.no_grad():
            yshape = F.conv2d(x[:1], w, stride=s, padding=p).shape
        dy = pattern((batch, cout, yshape[2], yshape[3]), 31, 1.0)
        with torch.no_grad():
            tf, y = timeit(lambda: F.conv2d(x, w, stride=s, padding=p))
        xg = x.clone().requires_grad_()
        wg = w.clone().requires_grad_()
        # Backward only: the graph is built once outside the timer and kept.
        y_x = F.conv2d(xg, w, stride=s, padding=p)
        y_w = F.conv2d(x, wg, stride=s, padding=p)
        tgi, dx = timeit(lambda: torch.autograd.grad(y_x, xg, dy, retain_graph=True)[0])
        tgw, dw = timeit(lambda: torch.autograd.grad(y_w, wg, dy, retain_graph=True)[0])
        gf = 2.0 * batch * cout * yshape[2] * yshape[3] * cin * k * k / 1e9
        checksum = float(y.abs().mean() + dx.abs().mean() + dw.abs().mean())
        print(json.dumps({
            "bench": "conv", "case": f"{config}_{name}_{cin}to{cout}_k{k}s{s}_{hw}x{hw}", "impl": "torch",
            "seconds": round(tf + tgi + tgw, 6), "fwd_s": round(tf, 6), "gin_s": round(tgi, 6), "gw_s": round(tgw, 6),
            "fwd_gflops": round(gf / tf, 2), "gin_gflops": round(gf / tgi, 2), "gw_gflops": round(gf / tgw, 2),
            "count": count, "checksum": round(checksum, 6)}), flush=True)
