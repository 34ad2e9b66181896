#!/usr/bin/python3
"""PyTorch side of `cargo xtask bench train`: one ResNet-18 SimCLR training step.

The same work as `crates/conad-train/examples/bench_train_step.rs`: a CIFAR-stem ResNet-18
(3x3 stride-1 stem, no max-pool, stage widths 64/128/256/512 times the width multiplier, BatchNorm in
training mode) on B source images x 2 views, MLP projection head d -> d -> 128 (ReLU, biases),
L2 normalisation, symmetric NT-Xent over the 2B projections (tau = 0.5), backward, AdamW
(lr 1e-3, weight decay 0.01). Timed: forward + loss + backward + optimizer step on an already
augmented batch (augmentation is timed separately on the conad side and excluded from both).
Two threads (`torch.set_num_threads(2)`), float32, CPU. Prints one JSON line per case:

    {"bench":"train_step","case":"simclr_w0.25_28x28x1_b32x2","impl":"torch","seconds":…,…}

With `--precision bf16` the forward pass and the loss run under PyTorch's CPU bf16 autocast
(convolutions and linear layers in bf16 through oneDNN, f32 master weights).

Usage: bench_train.py [--quick] [--steps N] [--width W] [--batch B] [--side S] [--channels C]
                      [--precision f32|bf16]
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_resnet import ResNet18, conv_macs, nt_xent


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--side", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--precision", choices=["f32", "bf16"], default="f32",
                   help="bf16: torch.autocast('cpu', dtype=torch.bfloat16) around forward and loss")
    a = p.parse_args()
    if a.quick:
        a.steps, a.width, a.batch, a.side = 1, 1.0 / 16.0, 4, 8
    torch.set_num_threads(2)
    torch.manual_seed(0)
    encoder = ResNet18(a.channels, a.width)
    d = encoder.dim
    head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 128))
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    g = torch.Generator().manual_seed(0)
    views = torch.rand(2 * a.batch, a.channels, a.side, a.side, generator=g)
    encoder.train()
    head.train()
    times, fwd, bwd, optt = [], [], [], []
    for step in range(a.steps + 1):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            z = F.normalize(head(encoder(views)).float(), dim=1, eps=1e-12)
            loss = nt_xent(z, 0.5)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        print(f"step {step}: loss {loss.item():.4f} forward {t1 - t0:.3f}s backward {t2 - t1:.3f}s "
              f"optimizer {t3 - t2:.4f}s", file=sys.stderr)
        if step > 0:
            times.append(t3 - t0)
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
            optt.append(t3 - t2)

    def median(v):
        v = sorted(v)
        return v[len(v) // 2]

    s = median(times)
    # Convolution work of a step as conad counts it: forward, input gradient (not the stem's),
    # weight gradient, 2 flops per multiply-add.
    stem = a.channels * encoder.conv1.out_channels * 9 * a.side * a.side
    gflop = 2.0 * 2 * a.batch * (3 * conv_macs(encoder, a.channels, a.side) - stem) / 1e9
    print(json.dumps({
        "bench": "train_step",
        "case": f"simclr_w{a.width:g}_{a.side}x{a.side}x{a.channels}_b{a.batch}x2"
                + ("_bf16" if a.precision == "bf16" else ""),
        "impl": "torch",
        "seconds": s,
        "images_per_second": 2 * a.batch / s,
        "forward_s": median(fwd),
        "backward_s": median(bwd),
        "optimizer_s": median(optt),
        "conv_gflop": gflop,
        "effective_gflops": gflop / s,
    }))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)


if __name__ == "__main__":
    main()
