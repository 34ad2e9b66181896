#!/usr/bin/python3
"""Benchmark: sklearn roc_auc_score on the same 10^7 tied scores as the conad side.

    cargo run --release -p conad-eval --example bench_auroc -- [--quick] [--data PATH]   # writes the data
    /usr/bin/python3 xtask/scripts/bench_auroc.py [--quick] [--data PATH] [--repeats R]

Reads the binary file written by `crates/conad-eval/examples/bench_auroc.rs` (default
`target/bench_auroc/scores_n{n}.bin`, n = 10^7, 10^5 with --quick): 8 bytes magic `CONADAUC`,
u64 n, n float64 scores, n uint8 labels (1 = anomaly), all little-endian. The data are not
regenerated here (no shared RNG): run the Rust side first.

Prints one JSON line: case `n{n}_1thread` (n as stored in the file; roc_auc_score is single-threaded: a numpy mergesort
plus cumulative sums), median wall seconds over --repeats runs (default 3) of the
`roc_auc_score(labels, scores)` call only, and the AUROC value so the runner can check that both
sides agree.
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
from sklearn.metrics import roc_auc_score

MAGIC = b"CONADAUC"


def cpu_seconds():
    return time.process_time()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="n = 10^5 instead of 10^7")
    ap.add_argument("--data", help="data file written by the Rust side")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n_default = 100_000 if args.quick else 10_000_000
    path = args.data or f"target/bench_auroc/scores_n{n_default}.bin"
    if not os.path.exists(path):
        sys.exit(
            f"{path} does not exist: run `cargo run --release -p conad-eval --example bench_auroc"
            f"{' -- --quick' if args.quick else ''}` first (it writes the data)"
        )
    with open(path, "rb") as f:
        if f.read(8) != MAGIC:
            sys.exit(f"{path}: not a bench_auroc data file")
        (n,) = np.frombuffer(f.read(8), dtype="<u8")
    n = int(n)
    scores = np.fromfile(path, dtype="<f8", count=n, offset=16)
    labels = np.fromfile(path, dtype=np.uint8, count=n, offset=16 + 8 * n).astype(bool)
    if scores.shape[0] != n or labels.shape[0] != n:
        sys.exit(f"{path}: truncated")

    times, cpu, value = [], [], None
    for _ in range(args.repeats):
        c0, t0 = cpu_seconds(), time.perf_counter()
        value = roc_auc_score(labels, scores)
        times.append(time.perf_counter() - t0)
        cpu.append(cpu_seconds() - c0)
    times.sort()
    cpu.sort()
    print(json.dumps({
        "bench": "auroc",
        "case": f"n{n}_1thread",
        "impl": "sklearn",
        "seconds": times[len(times) // 2],
        "min_seconds": times[0],
        "cpu_seconds": cpu[len(cpu) // 2],
        "repeats": args.repeats,
        "n": n,
        "threads": 1,
        "auroc": float(value),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


if __name__ == "__main__":
    main()
