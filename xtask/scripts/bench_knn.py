#!/usr/bin/python3
"""Reference side of `cargo xtask bench scorers` (Rust side: crates/conad-scorers/examples/bench_knn.rs).

Exact kNN max-cosine, bank 50 000 x 512, 10 000 queries, on the data files the Rust side
generates (raw little-endian float32, `numpy.fromfile`), plus the S_LH Gaussian fit reference
(scikit-learn LedoitWolf on the L2-normalised bank). One JSON object per case on stdout:

  numpy  : normalise rows, chunks of 1000 queries, q @ bank.T, max          (Debian numpy + OpenBLAS)
  faiss  : normalise rows, IndexFlatIP, add, search k = 1                    (faiss-cpu, if importable)
  sklearn: LedoitWolf().fit(normalised bank) + Cholesky of the covariance    (S_LH fit reference)

Run (faiss lives in the project venv, which also sees Debian's numpy/sklearn):

  /work/main/.venv/bin/python xtask/scripts/bench_knn.py [--quick] [--data-dir DIR]
  /usr/bin/python3 xtask/scripts/bench_knn.py ...      # skips faiss with a note on stderr

Each case runs in a child process so that its peak RSS (ru_maxrss) is its own.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

DIM = 512


def sizes(quick):
    return (4000, 500) if quick else (50000, 10000)


def paths(data_dir, n, m):
    return (
        os.path.join(data_dir, f"bank_{n}x{DIM}.f32"),
        os.path.join(data_dir, f"queries_{m}x{DIM}.f32"),
    )


def load(path, rows):
    import numpy as np

    if not os.path.exists(path):
        sys.exit(
            f"{path} is missing: run the Rust side first (it writes the data):\n"
            f"  cargo run --release -p conad-scorers --example bench_knn -- [--quick]"
        )
    x = np.fromfile(path, dtype="<f4")
    if x.size != rows * DIM:
        sys.exit(f"{path}: {x.size} floats, expected {rows} x {DIM}")
    return x.reshape(rows, DIM)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def emit(case, impl, seconds, **extra):
    rec = {"bench": "knn", "case": case, "impl": impl, "seconds": round(seconds, 4)}
    rec.update(extra)
    rec["peak_rss_mib"] = round(peak_rss_mib(), 1)
    print(json.dumps(rec), flush=True)


def normalise_inplace(x):
    import numpy as np

    n = np.linalg.norm(x, axis=1, keepdims=True)
    np.maximum(n, 1e-8, out=n)
    x /= n


def case_numpy(n, m, bank, queries):
    import numpy as np

    t = time.perf_counter()
    normalise_inplace(bank)
    normalise_inplace(queries)
    maxima = np.empty(m, dtype=np.float32)
    for s in range(0, m, 1000):
        sims = queries[s : s + 1000] @ bank.T
        maxima[s : s + 1000] = sims.max(axis=1)
    secs = time.perf_counter() - t
    emit(
        f"bank{n}x{DIM}_q{m}",
        "numpy",
        secs,
        gflops=round(2.0 * m * n * DIM / secs / 1e9, 1),
        checksum=round(float(maxima.astype(np.float64).mean()), 6),
    )


def case_faiss(n, m, bank, queries):
    import numpy as np

    try:
        import faiss
    except ImportError as e:
        print(f"faiss not importable ({e}); skipping the faiss case "
              f"(install faiss-cpu in /work/main/.venv)", file=sys.stderr)
        return
    t = time.perf_counter()
    normalise_inplace(bank)
    normalise_inplace(queries)
    index = faiss.IndexFlatIP(DIM)
    index.add(bank)
    dist, _ = index.search(queries, 1)
    secs = time.perf_counter() - t
    emit(
        f"bank{n}x{DIM}_q{m}",
        "faiss",
        secs,
        gflops=round(2.0 * m * n * DIM / secs / 1e9, 1),
        checksum=round(float(dist[:, 0].astype(np.float64).mean()), 6),
        faiss_threads=faiss.omp_get_max_threads(),
    )


def case_sklearn_gaussian(n, bank):
    import numpy as np
    from sklearn.covariance import LedoitWolf

    t = time.perf_counter()
    x = bank.astype(np.float64)
    normalise_inplace(x)
    lw = LedoitWolf().fit(x)
    np.linalg.cholesky(lw.covariance_)
    secs = time.perf_counter() - t
    emit(f"gaussian_fit{n}x{DIM}", "sklearn", secs, checksum=round(float(lw.shrinkage_), 6))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--data-dir", default="target/bench-data/knn")
    ap.add_argument("--case", choices=["numpy", "faiss", "sklearn_gaussian"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    n, m = sizes(a.quick)
    bank_path, query_path = paths(a.data_dir, n, m)
    if a.case is None:
        # Parent: one child per case (clean peak RSS); data must exist.
        for p in (bank_path, query_path):
            if not os.path.exists(p):
                load(p, 0)  # exits with the how-to message
        for case in ("numpy", "faiss", "sklearn_gaussian"):
            cmd = [sys.executable, os.path.abspath(__file__), "--case", case, "--data-dir", a.data_dir]
            if a.quick:
                cmd.append("--quick")
            r = subprocess.run(cmd, stdout=subprocess.PIPE)
            sys.stdout.write(r.stdout.decode())
            sys.stdout.flush()
            if r.returncode != 0:
                sys.exit(f"case {case} failed with status {r.returncode}")
        return
    bank = load(bank_path, n)
    if a.case == "sklearn_gaussian":
        case_sklearn_gaussian(n, bank)
        return
    queries = load(query_path, m)
    if a.case == "numpy":
        case_numpy(n, m, bank, queries)
    else:
        case_faiss(n, m, bank, queries)


if __name__ == "__main__":
    main()
