//! Benchmark: exact kNN max-cosine (bank 50 000 × 512, 10 000 queries) and the S_LH Gaussian
//! fit (50 000 × 512), the Rust side of `cargo xtask bench scorers`
//! (Python side: `xtask/scripts/bench_knn.py`, same data files, same checksums).
//!
//! ```text
//! cargo run --release -p conad-scorers --example bench_knn -- [--quick] [--data-dir DIR]
//! ```
//!
//! The data (standard normal `f32`, seed 20261122 through the conad seed tree) is generated once
//! into `DIR` (default `target/bench-data/knn`) as raw little-endian `f32` files
//! `bank_{n}x{d}.f32` / `queries_{m}x{d}.f32` (`numpy.fromfile(path, dtype="<f4")`). Each case runs
//! in a child process so its peak RSS (`VmHWM`) is its own. One JSON object per case on stdout:
//!
//! - `knn`: normalising the bank (in place) and the queries, blocked GEMM and max; `gflops` =
//!   2·m·n·d / seconds; `checksum` = mean over queries of the max cosine.
//! - `gaussian_fit`: S_LH fit (L2 normalisation, mean, Ledoit–Wolf covariance, Cholesky,
//!   whitening); `checksum` = the Ledoit–Wolf shrinkage.
//!
//! Peak RSS includes the loaded data (bank + queries for `knn`).
//!
//! With `--features hnsw` and the flag `--hnsw [EF_SEARCH]` (default 64), a third case
//! `knn_hnsw` also runs (not part of the default run; no Python counterpart). iid Gaussian data
//! has no neighbourhood structure for a graph index to exploit, so this case generates
//! embedding-like data of the same size in memory (seed-tree streams): a 16-dimensional latent
//! mixture of 32 clusters mapped linearly to 512 dimensions plus 5 % isotropic noise. It reports
//! the HNSW build (`build_seconds`; M = 16, ef_construction = 200), the queries (`seconds`), the
//! exact backend on the same data (`exact_seconds`) and `recall_at_1` (HNSW max cosine equal to
//! the exact one within 1e-5).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use conad_rng::SeedTree;
use conad_scorers::{
    EmbeddingMatrix, Embeddings, Fit, GaussianParams, KnnParams, TilePlan, peak_rss_mib,
};
use rand::Rng;

const DIM: usize = 512;
const SEED: u64 = 20_261_122;

struct Args {
    quick: bool,
    data_dir: PathBuf,
    case: Option<String>,
    tiles: TilePlan,
    /// `ef_search` of the optional HNSW case (`--hnsw [EF]`).
    hnsw_ef: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        data_dir: PathBuf::from("target/bench-data/knn"),
        case: None,
        tiles: TilePlan::default(),
        hnsw_ef: None,
    };
    let mut it = std::env::args().skip(1).peekable();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--data-dir" => {
                args.data_dir = it.next().ok_or("--data-dir needs a path")?.into();
            }
            "--case" => args.case = Some(it.next().ok_or("--case needs knn|gaussian_fit")?),
            "--hnsw" if cfg!(feature = "hnsw") => {
                let ef = it.peek().and_then(|v| v.parse::<usize>().ok());
                if ef.is_some() {
                    it.next();
                }
                args.hnsw_ef = Some(ef.unwrap_or(64));
            }
            "--hnsw" => return Err("--hnsw needs `--features hnsw`".into()),
            "--tiles" => {
                let v = it.next().ok_or("--tiles needs QUERY_BLOCK,BANK_TILE")?;
                let (a, b) = v.split_once(',').ok_or("--tiles QUERY_BLOCK,BANK_TILE")?;
                args.tiles = TilePlan {
                    query_block: a.parse().map_err(|e| format!("--tiles: {e}"))?,
                    bank_tile: b.parse().map_err(|e| format!("--tiles: {e}"))?,
                };
            }
            "-h" | "--help" => {
                return Err(
                    "usage: bench_knn [--quick] [--data-dir DIR] [--tiles QUERY_BLOCK,BANK_TILE] \
                     [--hnsw [EF_SEARCH]]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    Ok(args)
}

fn sizes(quick: bool) -> (usize, usize) {
    if quick {
        (4_000, 500)
    } else {
        (50_000, 10_000)
    }
}

/// Writes `rows × DIM` standard normals (Box–Muller on the seed-tree stream `name`), streaming.
fn generate(path: &Path, name: &str, rows: usize) -> std::io::Result<()> {
    if path.exists() {
        let expected = (rows * DIM * 4) as u64;
        if std::fs::metadata(path)?.len() == expected {
            return Ok(());
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut w = conad_fs::AtomicFile::create(path)?;
    let mut rng = SeedTree::new(SEED).child("bench-knn").child(name).rng();
    let mut buf = Vec::with_capacity(DIM * 4);
    for _ in 0..rows {
        buf.clear();
        for _ in 0..DIM / 2 {
            let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
            let u2: f64 = rng.random::<f64>();
            let r = (-2.0 * u1.ln()).sqrt();
            let t = std::f64::consts::TAU * u2;
            buf.extend_from_slice(&((r * t.cos()) as f32).to_le_bytes());
            buf.extend_from_slice(&((r * t.sin()) as f32).to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    Ok(w.commit()?)
}

/// Reads raw little-endian `f32` in 1 MiB pieces (no second full-size byte buffer, so the
/// peak RSS is the data itself).
fn read_f32(path: &Path, rows: usize) -> std::io::Result<Vec<f32>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len() as usize;
    if len != rows * DIM * 4 {
        return Err(std::io::Error::other(format!(
            "{}: {len} bytes, expected {} ({rows} × {DIM} f32); delete it to regenerate",
            path.display(),
            rows * DIM * 4
        )));
    }
    let mut out = Vec::with_capacity(rows * DIM);
    let mut piece = vec![0u8; 1 << 20];
    while out.len() < rows * DIM {
        let want = ((rows * DIM - out.len()) * 4).min(piece.len());
        f.read_exact(&mut piece[..want])?;
        out.extend(
            piece[..want]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
    }
    Ok(out)
}

fn paths(dir: &Path, n: usize, m: usize) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("bank_{n}x{DIM}.f32")),
        dir.join(format!("queries_{m}x{DIM}.f32")),
    )
}

fn run_knn(args: &Args) -> Result<String, Box<dyn std::error::Error>> {
    let (n, m) = sizes(args.quick);
    let (bank_path, query_path) = paths(&args.data_dir, n, m);
    let bank = read_f32(&bank_path, n)?;
    let queries = read_f32(&query_path, m)?;
    let t = Instant::now();
    let knn = KnnParams::default()
        .k(1)
        .tiles(args.tiles)
        .fit_owned(EmbeddingMatrix::new(bank, n, DIM)?)?;
    let maxima = knn.normality_batch(Embeddings::new(&queries, m, DIM)?)?;
    let secs = t.elapsed().as_secs_f64();
    let checksum = maxima.iter().map(|&v| f64::from(v)).sum::<f64>() / m as f64;
    let gflops = 2.0 * (m * n * DIM) as f64 / secs / 1e9;
    Ok(format!(
        r#"{{"bench":"knn","case":"bank{n}x{DIM}_q{m}","impl":"conad","seconds":{secs:.4},"gflops":{gflops:.1},"peak_rss_mib":{:.1},"bank_mib":{:.1},"checksum":{checksum:.6}}}"#,
        peak_rss_mib().unwrap_or(f64::NAN),
        (n * DIM * 4) as f64 / (1024.0 * 1024.0),
    ))
}

/// `rows × DIM` embedding-like points (see the module docs): latent `z = c + 0.5·ε` (16-d,
/// 32 centres `c ~ N(0, I)`), `x = W z + 0.05·η` with `W ~ N(0, 1/16)` of size 512 × 16.
#[cfg(feature = "hnsw")]
fn low_rank_points(rows: usize, stream: &str) -> Vec<f32> {
    const LATENT: usize = 16;
    const CLUSTERS: usize = 32;
    let gauss = |rng: &mut conad_rng::ChaCha8Rng| {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    };
    let tree = SeedTree::new(SEED).child("bench-knn-hnsw");
    let mut shared = tree.child("model").rng();
    let w: Vec<f32> = (0..DIM * LATENT)
        .map(|_| gauss(&mut shared) / (LATENT as f32).sqrt())
        .collect();
    let centres: Vec<f32> = (0..CLUSTERS * LATENT).map(|_| gauss(&mut shared)).collect();
    let mut rng = tree.child(stream).rng();
    let mut out = Vec::with_capacity(rows * DIM);
    let mut z = [0.0f32; LATENT];
    for _ in 0..rows {
        let c = rng.random_range(0..CLUSTERS);
        for (j, zj) in z.iter_mut().enumerate() {
            *zj = centres[c * LATENT + j] + 0.5 * gauss(&mut rng);
        }
        for i in 0..DIM {
            let wz: f32 = w[i * LATENT..(i + 1) * LATENT]
                .iter()
                .zip(&z)
                .map(|(a, b)| a * b)
                .sum();
            out.push(wz + 0.05 * gauss(&mut rng));
        }
    }
    out
}

#[cfg(feature = "hnsw")]
fn run_knn_hnsw(args: &Args, ef_search: usize) -> Result<String, Box<dyn std::error::Error>> {
    use conad_scorers::{HnswParams, KnnBackend};
    let (n, m) = sizes(args.quick);
    let bank = low_rank_points(n, "bank");
    let queries = low_rank_points(m, "queries");
    let qv = Embeddings::new(&queries, m, DIM)?;
    let t = Instant::now();
    let exact = KnnParams::default()
        .fit(Embeddings::new(&bank, n, DIM)?)?
        .normality_batch(qv)?;
    let exact_secs = t.elapsed().as_secs_f64();
    let params = HnswParams {
        ef_search,
        ..HnswParams::default()
    };
    let t = Instant::now();
    let knn = KnnParams::default()
        .backend(KnnBackend::Hnsw(params))
        .fit_owned(EmbeddingMatrix::new(bank, n, DIM)?)?;
    let build = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let maxima = knn.normality_batch(qv)?;
    let secs = t.elapsed().as_secs_f64();
    let hits = maxima
        .iter()
        .zip(&exact)
        .filter(|(a, e)| **a >= **e - 1e-5)
        .count();
    let checksum = maxima.iter().map(|&v| f64::from(v)).sum::<f64>() / m as f64;
    Ok(format!(
        r#"{{"bench":"knn","case":"hnsw_lowrank{n}x{DIM}_q{m}_ef{ef_search}","impl":"conad","seconds":{secs:.4},"build_seconds":{build:.3},"exact_seconds":{exact_secs:.4},"recall_at_1":{:.4},"peak_rss_mib":{:.1},"checksum":{checksum:.6}}}"#,
        hits as f64 / m as f64,
        peak_rss_mib().unwrap_or(f64::NAN),
    ))
}

fn run_gaussian(args: &Args) -> Result<String, Box<dyn std::error::Error>> {
    let (n, m) = sizes(args.quick);
    let (bank_path, _) = paths(&args.data_dir, n, m);
    let bank = read_f32(&bank_path, n)?;
    let t = Instant::now();
    let g = GaussianParams::default().fit(Embeddings::new(&bank, n, DIM)?)?;
    let secs = t.elapsed().as_secs_f64();
    Ok(format!(
        r#"{{"bench":"knn","case":"gaussian_fit{n}x{DIM}","impl":"conad","seconds":{secs:.4},"peak_rss_mib":{:.1},"checksum":{:.6}}}"#,
        peak_rss_mib().unwrap_or(f64::NAN),
        g.shrinkage()
    ))
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let result = match args.case.as_deref() {
        Some("knn") => run_knn(&args),
        Some("gaussian_fit") => run_gaussian(&args),
        #[cfg(feature = "hnsw")]
        Some("knn_hnsw") => run_knn_hnsw(&args, args.hnsw_ef.unwrap_or(64)),
        Some(other) => Err(format!("unknown case `{other}`").into()),
        None => {
            // Parent: make the data, then run each case in its own process (clean peak RSS).
            let (n, m) = sizes(args.quick);
            let (bp, qp) = paths(&args.data_dir, n, m);
            let generated = generate(&bp, "bank", n).and_then(|()| generate(&qp, "queries", m));
            if let Err(e) = generated {
                eprintln!("generating data in {}: {e}", args.data_dir.display());
                std::process::exit(1);
            }
            eprintln!(
                "data: {} and {} (threads: {})",
                bp.display(),
                qp.display(),
                rayon::current_num_threads()
            );
            let exe = std::env::current_exe().expect("own path");
            let mut cases = vec!["knn", "gaussian_fit"];
            if args.hnsw_ef.is_some() {
                cases.push("knn_hnsw");
            }
            for case in cases {
                let mut cmd = Command::new(&exe);
                cmd.arg("--case")
                    .arg(case)
                    .arg("--data-dir")
                    .arg(&args.data_dir);
                let t = args.tiles;
                cmd.arg("--tiles")
                    .arg(format!("{},{}", t.query_block, t.bank_tile));
                if args.quick {
                    cmd.arg("--quick");
                }
                if let Some(ef) = args.hnsw_ef {
                    cmd.arg("--hnsw").arg(ef.to_string());
                }
                let out = cmd.output().expect("spawn benchmark case");
                std::io::stderr().write_all(&out.stderr).ok();
                if !out.status.success() {
                    eprintln!("case {case} failed: {}", out.status);
                    std::process::exit(1);
                }
                std::io::stdout().write_all(&out.stdout).ok();
            }
            return;
        }
    };
    match result {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
