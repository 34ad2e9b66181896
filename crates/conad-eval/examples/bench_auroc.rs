//! Benchmark: AUROC over 10⁷ tied scores (conad) — the Rust side of `cargo xtask bench auroc`.
//!
//! ```text
//! cargo run --release -p conad-eval --example bench_auroc -- [--quick] [--data PATH] [--n N] [--repeats R]
//! /usr/bin/python3 xtask/scripts/bench_auroc.py            [--quick] [--data PATH] [--repeats R]
//! ```
//!
//! Data: `n` scores and labels in a little-endian binary file (default
//! `target/bench_auroc/scores_n{n}.bin`; created here if missing or holding another n, read by
//! both sides):
//! 8 bytes magic `CONADAUC`, `u64` n, `n` × `f64` scores, `n` × `u8` labels (1 = anomaly).
//! Labels are anomalies with probability 0.1; scores are `N(0,1)` for normals and `N(1,1)` for
//! anomalies, rounded to 1e-4 so there are many ties (about 10⁵ distinct values). The draws come
//! from `conad_rng::SeedTree::new(0).child("bench_auroc")`; n = 10⁷ (10⁵ with `--quick`).
//!
//! Cases (one JSON line each, median over `--repeats` runs, default 3): `n{n}_1thread` on a
//! dedicated 1-thread rayon pool — the "one core" figure, comparable with sklearn — and
//! `n{n}_2threads` on a 2-thread pool. Timed: the `auroc(&scores, &labels)` call only (validation,
//! partition, sort, walk and all allocations), not the file I/O. `seconds` is wall time;
//! `cpu_seconds` (CPU time of all threads, from `/proc/self/task/*/schedstat`) helps to read
//! figures taken on a loaded machine.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use conad_rng::SeedTree;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

const MAGIC: &[u8; 8] = b"CONADAUC";

struct Args {
    data: Option<PathBuf>,
    n: usize,
    repeats: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        data: None,
        n: 10_000_000,
        repeats: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--quick" => args.n = 100_000,
            "--data" => args.data = Some(PathBuf::from(value("--data")?)),
            "--n" => args.n = value("--n")?.parse().map_err(|e| format!("--n: {e}"))?,
            "--repeats" => {
                args.repeats = value("--repeats")?
                    .parse()
                    .map_err(|e| format!("--repeats: {e}"))?
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.n < 2 || args.repeats == 0 {
        return Err("need --n ≥ 2 and --repeats ≥ 1".into());
    }
    Ok(args)
}

fn generate(n: usize) -> (Vec<f64>, Vec<bool>) {
    let mut rng = SeedTree::new(0).child("bench_auroc").rng();
    let mut scores = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let anomaly = rng.random::<f64>() < 0.1;
        let z: f64 = StandardNormal.sample(&mut rng);
        let s = z + if anomaly { 1.0 } else { 0.0 };
        scores.push((s * 1e4).round() / 1e4);
        labels.push(anomaly);
    }
    (scores, labels)
}

fn write_data(path: &Path, scores: &[f64], labels: &[bool]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut buf = Vec::with_capacity(16 + 9 * scores.len());
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&(scores.len() as u64).to_le_bytes());
    for s in scores {
        buf.extend_from_slice(&s.to_le_bytes());
    }
    buf.extend(labels.iter().map(|&l| u8::from(l)));
    Ok(conad_fs::write_atomic(path, &buf)?)
}

fn read_data(path: &Path) -> Result<(Vec<f64>, Vec<bool>), String> {
    let buf = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if buf.len() < 16 || &buf[..8] != MAGIC {
        return Err(format!("{}: not a bench_auroc data file", path.display()));
    }
    let n = u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes")) as usize;
    if buf.len() != 16 + 9 * n {
        return Err(format!(
            "{}: truncated ({} bytes for n = {n})",
            path.display(),
            buf.len()
        ));
    }
    let scores = buf[16..16 + 8 * n]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    let labels = buf[16 + 8 * n..].iter().map(|&b| b != 0).collect();
    Ok((scores, labels))
}

fn peak_rss_mib() -> f64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// CPU time of all threads of this process so far (sum of `/proc/self/task/*/schedstat`, ns).
fn cpu_seconds() -> f64 {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    tasks
        .filter_map(|t| fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        * 1e-9
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let path = args
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("target/bench_auroc/scores_n{}.bin", args.n)));
    // Reuse the file only if it holds the requested n (a `--quick` run and a full run may share
    // one `--data` path); otherwise (re)generate it. The Python side reads whatever n it holds.
    let existing = if path.exists() {
        Some(read_data(&path)?)
    } else {
        None
    };
    let (scores, labels) = match existing {
        Some((s, l)) if s.len() == args.n => (s, l),
        _ => {
            eprintln!("generating {} scores into {}", args.n, path.display());
            let (s, l) = generate(args.n);
            write_data(&path, &s, &l).map_err(|e| format!("{}: {e}", path.display()))?;
            (s, l)
        }
    };
    let n = scores.len();
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| e.to_string())?;
        let mut times = Vec::with_capacity(args.repeats);
        let mut cpu = Vec::with_capacity(args.repeats);
        let mut value = f64::NAN;
        for _ in 0..args.repeats {
            let c = cpu_seconds();
            let t = Instant::now();
            value = pool
                .install(|| conad_eval::auroc(&scores, &labels))
                .map_err(|e| e.to_string())?;
            times.push(t.elapsed().as_secs_f64());
            cpu.push(cpu_seconds() - c);
        }
        times.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        let line = serde_json::json!({
            "bench": "auroc",
            "case": format!("n{n}_{threads}thread{}", if threads == 1 { "" } else { "s" }),
            "impl": "conad",
            "seconds": times[times.len() / 2],
            "min_seconds": times[0],
            "cpu_seconds": cpu[cpu.len() / 2],
            "repeats": args.repeats,
            "n": n,
            "threads": threads,
            "auroc": value,
            "peak_rss_mib": peak_rss_mib(),
        });
        println!("{line}");
    }
    Ok(())
}
