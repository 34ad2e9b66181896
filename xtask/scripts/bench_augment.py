#!/usr/bin/python3
"""Reference for `crates/conad-augment/examples/bench_augment.rs`: SimCLR augmentation at CIFAR
strength with torchvision 0.14 transforms on tensors, the same work as the conad side.

    cargo run --release -p conad-augment --example bench_augment -- [--quick] [--images N] [--views V]
    /usr/bin/python3 xtask/scripts/bench_augment.py [--quick] [--images N] [--views V] [--repeats R]
        [--no-dataloader]

Work per repeat: N random uint8 32×32×3 images (fixed seed; drawn with numpy, not the same
pixels as the Rust side, which does not matter for throughput) → ToTensor (permute + float/255) →
V views each of
RandomResizedCrop(32) → RandomHorizontalFlip() → RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)],
p=0.8) → RandomGrayscale(0.2), written view-major into a preallocated (V·B, 3, 32, 32) tensor per
batch of B = 512 images.

Cases (one JSON line each, impl "torch", `seconds` = median over --repeats of one pass over all N
images; select with --cases, default all three):
- `simclr_cifar32` ("dataloader"): a torch DataLoader with 2 worker processes (one torch thread
  each, persistent, timed after a warm-up pass) — the usual way to use 2 cores for torchvision
  augmentation, and the case compared with the conad side (same case name);
- `simclr_cifar32_loop_threads2` ("loop2"): a plain per-image loop in this process with
  torch.set_num_threads(2). On 32×32 tensors the intra-op threads cannot help, and when the cores
  are shared with other processes OpenMP's spin-waiting makes this ~10× slower than one thread;
- `simclr_cifar32_loop_threads1` ("loop1"): the same loop with torch.set_num_threads(1).
The per-image loop runs at a few hundred views/s, so the default N is 4096 (512 with --quick);
use the same --images on both sides.
"""
import argparse
import json
import resource
import sys
import time

import numpy as np
import torch
import torchvision
import torchvision.transforms as T

H = W = 32
C = 3
BATCH = 512


def simclr_transform():
    return T.Compose([
        T.RandomResizedCrop(32),  # scale (0.08, 1), ratio (3/4, 4/3), bilinear, antialias off for tensors
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
    ])


def to_tensor(hwc):
    return torch.from_numpy(hwc).permute(2, 0, 1).float().div(255.0)


def loop_pass(data, views, transform):
    n = data.shape[0]
    for start in range(0, n, BATCH):
        chunk = data[start:start + BATCH]
        b = chunk.shape[0]
        out = torch.empty(views * b, C, H, W)
        for k in range(b):
            x = to_tensor(chunk[k])
            for v in range(views):
                out[v * b + k] = transform(x)


class Views(torch.utils.data.Dataset):
    def __init__(self, data, views):
        self.data, self.views, self.transform = data, views, simclr_transform()

    def __len__(self):
        return self.data.shape[0]

    def __getitem__(self, i):
        x = to_tensor(self.data[i])
        return tuple(self.transform(x) for _ in range(self.views))


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def emit(case, seconds, n, views, **extra):
    rec = {"bench": "augment", "case": case, "impl": "torch", "seconds": round(seconds, 6),
           "images_per_s": round(views * n / seconds, 1), "images": n, "views": views, "batch": BATCH,
           "peak_rss_mib": round(peak_rss_mib(), 1)}
    rec.update(extra)
    print(json.dumps(rec), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="512 images, 2 repeats")
    ap.add_argument("--images", type=int, default=4096)
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", default="dataloader,loop2,loop1",
                    help="comma-separated subset of dataloader, loop2, loop1")
    args = ap.parse_args()
    if args.quick:
        args.images, args.repeats = min(args.images, 512), min(args.repeats, 2)
    if args.images <= 0 or args.views <= 0 or args.repeats <= 0:
        sys.exit("--images, --views and --repeats must be positive")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - {"dataloader", "loop2", "loop1"}
    if unknown:
        sys.exit(f"unknown --cases {sorted(unknown)}; use dataloader, loop2, loop1")
    torch.manual_seed(0)
    data = np.random.default_rng(0).integers(0, 256, size=(args.images, H, W, C), dtype=np.uint8)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}", file=sys.stderr)

    def timed(fn):
        fn()  # warm-up (starts DataLoader workers)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return median(times)

    if "dataloader" in cases:
        torch.set_num_threads(2)
        loader = torch.utils.data.DataLoader(Views(data, args.views), batch_size=BATCH, shuffle=False,
                                             num_workers=2, persistent_workers=True)

        def dl_pass():
            for batch in loader:
                torch.cat(batch)  # the view-major (V·B, 3, 32, 32) tensor

        sec = timed(dl_pass)
        print(f"dataloader (2 workers): {args.views * args.images / sec:.0f} views/s", file=sys.stderr)
        emit("simclr_cifar32", sec, args.images, args.views, workers=2)
        del loader

    transform = simclr_transform()
    for name, threads in [("loop2", 2), ("loop1", 1)]:
        if name not in cases:
            continue
        torch.set_num_threads(threads)
        sec = timed(lambda: loop_pass(data, args.views, transform))
        print(f"loop, {threads} torch thread(s): {args.views * args.images / sec:.0f} views/s", file=sys.stderr)
        emit(f"simclr_cifar32_loop_threads{threads}", sec, args.images, args.views, threads=threads)


if __name__ == "__main__":
    main()
