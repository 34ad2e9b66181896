#!/usr/bin/python3
"""PyTorch side of `cargo xtask bench epoch`: whole SimCLR training epochs as a PyTorch user writes
them — the same work as `crates/conad-train/examples/bench_epoch.rs`.

BreastMNIST's normal ("normal, benign", label 1) training images (399, 28x28 grey) from the
official npz; a Dataset returning two views of torchvision 0.14 transforms on tensors
(RandomResizedCrop(28, scale (0.08, 1)), RandomHorizontalFlip, RandomApply([ColorJitter(0.4, 0.4,
0.4, 0.1)], p 0.8), RandomGrayscale(0.2): conad's `simclr_cifar` preset); a DataLoader with
batch 64, shuffle, drop_last, 2 persistent worker processes (one torch thread each); a CIFAR-stem
ResNet-18 at width 1/4 (`torch_resnet.py`), projection head d -> d -> 128 (ReLU, biases), NT-Xent
(tau 0.5) over the 128 projections, backward, AdamW (lr 1e-3, weight decay 1e-3); main process
`torch.set_num_threads(2)`. Timed: the wall time of each epoch; reported: the median over epochs
2..E (the first starts the workers).

Usage: bench_epoch.py [--quick] [--data BREASTMNIST.npz] [--epochs E]
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as T

from torch_resnet import ResNet18, nt_xent


class TwoViews(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images
        self.t = T.Compose([
            T.RandomResizedCrop(28, scale=(0.08, 1.0)),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
        ])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = torch.from_numpy(self.images[i]).unsqueeze(0).float().div(255.0)
        return self.t(x), self.t(x)


def worker_init(_):
    torch.set_num_threads(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--data", default="../shared/data/medmnist/breastmnist.npz")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--precision", choices=["f32", "bf16"], default="f32",
                   help="bf16: torch.autocast('cpu', dtype=torch.bfloat16) around forward and loss")
    a = p.parse_args()
    epochs = 2 if a.quick else max(2, a.epochs)
    npz = np.load(a.data)
    images = npz["train_images"][npz["train_labels"].reshape(-1) == 1]
    torch.set_num_threads(2)
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(
        TwoViews(images), batch_size=64, shuffle=True, drop_last=True, num_workers=2,
        persistent_workers=True, worker_init_fn=worker_init)
    encoder = ResNet18(1, 0.25)
    d = encoder.dim
    head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 128))
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-3)
    encoder.train()
    head.train()
    secs, views = [], 0
    for _ in range(epochs):
        t = time.perf_counter()
        views = 0
        for v1, v2 in loader:
            x = torch.cat([v1, v2])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
                z = F.normalize(head(encoder(x)).float(), dim=1)
                loss = nt_xent(z, 0.5)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            views += x.shape[0]
        secs.append(time.perf_counter() - t)
    timed = sorted(secs[1:])
    median = timed[len(timed) // 2]
    suffix = "_bf16" if a.precision == "bf16" else ""
    print(json.dumps({"bench": "epoch", "case": "simclr_breastmnist_w0.25_b64x2" + suffix, "impl": "torch",
                      "seconds": median, "images_per_second": views / median,
                      "source_images": len(images), "epochs_timed": len(timed)}))


if __name__ == "__main__":
    main()
