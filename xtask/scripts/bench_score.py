#!/usr/bin/python3
"""PyTorch side of `cargo xtask bench score`: scoring images with a ResNet-18 detector.

The same work as `crates/conad-train/examples/bench_score.rs`: a ResNet-18 at width 1 (CIFAR stem
for 28/32 px: 3x3 stride-1 convolution, no max-pool; ImageNet stem for 224 px: 7x7 stride-2
convolution and 3x3 stride-2 max-pool) in eval mode under `torch.no_grad()`, features L2-normalised
and scored by max cosine against a bank of the same size (numpy + OpenBLAS matrix product),
plus the nearest bank image (the argmax). Timed: warm single-image latency (one image), and
batch throughput (M images in batches of 64). Two threads, float32, CPU.

Usage: bench_score.py [--quick] --side S --channels C [--bank N] [--images M] [--reps R]
"""
import argparse
import json
import time

import numpy as np
import torch

from torch_resnet import ResNet18


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--side", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--bank", type=int, default=0)
    p.add_argument("--images", type=int, default=0)
    p.add_argument("--reps", type=int, default=20)
    a = p.parse_args()
    large = a.side > 64
    bank_n = a.bank or (32 if a.quick else 256 if large else 1000)
    m = a.images or (8 if a.quick else 64 if large else 256)
    reps = 2 if a.quick else a.reps
    torch.set_num_threads(2)
    torch.manual_seed(0)
    net = ResNet18(a.channels, 1.0, large).eval()
    rng = np.random.default_rng(0)
    bank = rng.standard_normal((bank_n, 512)).astype(np.float32)
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    x = torch.rand(m, a.channels, a.side, a.side)

    def score(batch):
        with torch.no_grad():
            f = net(batch).numpy()
        f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        sims = f @ bank.T
        nearest = sims.argmax(axis=1)
        return 1.0 - sims[np.arange(len(f)), nearest], nearest

    score(x[:1])
    score(x)
    lat = []
    for _ in range(reps):
        t = time.perf_counter()
        score(x[:1])
        lat.append(time.perf_counter() - t)
    thr = []
    for _ in range(min(3, reps)):
        t = time.perf_counter()
        for i in range(0, m, 64):
            score(x[i:i + 64])
        thr.append(time.perf_counter() - t)
    shape = f"{a.side}x{a.side}x{a.channels}"
    per_image = float(np.median(thr)) / m
    print(json.dumps({"bench": "score", "case": f"latency_{shape}", "impl": "torch",
                      "seconds": float(np.median(lat)), "bank": bank_n}))
    print(json.dumps({"bench": "score", "case": f"throughput_{shape}", "impl": "torch",
                      "seconds": per_image, "images_per_second": 1.0 / per_image, "images": m}))


if __name__ == "__main__":
    main()
