//! Benchmark of a detector's scoring (`conad score`'s work after decoding): a ResNet-18
//! (width 1) SimCLR detector with a kNN score, warm single-image latency and batch throughput,
//! at 28×28×1, 32×32×3 (CIFAR stem) and 224×224×3 (ImageNet stem). The Rust side of
//! `cargo xtask bench score`; the PyTorch side (eval-mode forward of the same network + a numpy
//! kNN over a bank of the same size) is `xtask/scripts/bench_score.py`.
//!
//! ```text
//! cargo run --release -p conad-train --example bench_score -- --side S --channels C
//!     [--bank N] [--images M] [--reps R] [--cache DIR] [--quick]
//! ```
//! The detector is trained once (1 epoch on `N` synthetic normal images, a quarter more held out
//! for calibration) and cached in `--cache` (default `target/bench/score`); later runs load it
//! from the file, as `conad score` does. Timed: `Detector::score_prepared` on prepared images —
//! the encoder forward, the kNN score, the p-value and the nearest normal image.
//! Prints one JSON object per case on stdout.

use std::path::PathBuf;
use std::time::Instant;

use conad_data::{Dataset, OneClassTask};
use conad_models::Stem;
use conad_rng::SeedTree;
use conad_train::detector::{Detector, DetectorFit, ThresholdChoice};
use conad_train::{
    MethodConfig, ModelConfig, ProgressMode, SimClrConfig, TrainConfig, TrainOptions,
};
use rand::Rng;

struct Args {
    side: usize,
    channels: usize,
    bank: usize,
    images: usize,
    reps: usize,
    cache: PathBuf,
    quick: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        side: 28,
        channels: 1,
        bank: 0,
        images: 0,
        reps: 20,
        cache: PathBuf::from("target/bench/score"),
        quick: false,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let val = || -> String {
            argv.get(i + 1).cloned().unwrap_or_else(|| {
                eprintln!("{} needs a value", argv[i]);
                std::process::exit(2)
            })
        };
        let num = |s: String| -> usize {
            s.parse().unwrap_or_else(|_| {
                eprintln!("not a number: {s}");
                std::process::exit(2)
            })
        };
        match argv[i].as_str() {
            "--quick" => {
                a.quick = true;
                i += 1;
                continue;
            }
            "--side" => a.side = num(val()),
            "--channels" => a.channels = num(val()),
            "--bank" => a.bank = num(val()),
            "--images" => a.images = num(val()),
            "--reps" => a.reps = num(val()),
            "--cache" => a.cache = PathBuf::from(val()),
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2)
            }
        }
        i += 2;
    }
    let large = a.side > 64;
    if a.bank == 0 {
        a.bank = if a.quick {
            32
        } else if large {
            256
        } else {
            1000
        };
    }
    if a.images == 0 {
        a.images = if a.quick {
            8
        } else if large {
            64
        } else {
            256
        };
    }
    if a.quick {
        a.reps = 2;
    }
    a
}

/// `n` synthetic images: smooth random blobs (seeded).
fn images(n: usize, side: usize, channels: usize, seed: u64) -> Dataset {
    let mut pixels = Vec::with_capacity(n * side * side * channels);
    for i in 0..n {
        let mut rng = SeedTree::new(seed).index(i as u64).rng();
        let (cy, cx) = (
            rng.random_range(0..side) as f64,
            rng.random_range(0..side) as f64,
        );
        let r2 = (side as f64 / 4.0).powi(2);
        for y in 0..side {
            for x in 0..side {
                let d2 = (y as f64 - cy).powi(2) + (x as f64 - cx).powi(2);
                for _ in 0..channels {
                    let noise: f64 = rng.random_range(0.0..30.0);
                    pixels.push((225.0 * (-d2 / r2).exp() + noise) as u8);
                }
            }
        }
    }
    Dataset::new(
        pixels,
        n,
        (side, side, channels),
        vec![0; n],
        vec!["normal".into()],
    )
    .expect("consistent synthetic images")
}

fn detector(a: &Args) -> Detector {
    let tag = format!("det-{}x{}x{}-bank{}", a.side, a.side, a.channels, a.bank);
    let file = a.cache.join(format!("{tag}.conad"));
    if let Ok(d) = Detector::load(&file) {
        return d;
    }
    std::fs::create_dir_all(&a.cache).expect("cache folder");
    let n_cal = a.bank / 4;
    let all = images(a.bank + n_cal, a.side, a.channels, 1);
    let train_idx: Vec<usize> = (0..a.bank).collect();
    let cal_idx: Vec<usize> = (a.bank..a.bank + n_cal).collect();
    let test = images(8, a.side, a.channels, 2);
    let task = OneClassTask {
        train: all.select(&train_idx),
        train_is_contaminant: vec![false; a.bank],
        train_source_indices: train_idx,
        test,
        test_is_anomaly: vec![false; 8],
        test_source_indices: (0..8).collect(),
        calibration: Some(all.select(&cal_idx)),
        calibration_source_indices: cal_idx,
        normal_classes: vec![0],
        description: format!("synthetic {tag}"),
    };
    let config = TrainConfig {
        method: MethodConfig::new(SimClrConfig::default()),
        model: ModelConfig {
            width_multiplier: 1.0,
            stem: if a.side > 64 {
                Stem::ImageNet
            } else {
                Stem::Cifar
            },
            ..Default::default()
        },
        epochs: 1,
        batch_size: 32,
        eval_every: 0,
        ..Default::default()
    };
    let run = a.cache.join(format!("{tag}.run"));
    eprintln!(
        "training the benchmark detector {tag} (1 epoch, {} images) ...",
        a.bank
    );
    conad_train::train_with_options(
        &config,
        &task,
        &run,
        &TrainOptions {
            progress: ProgressMode::Hidden,
            ..Default::default()
        },
    )
    .expect("training the benchmark detector");
    let model = conad_train::load_run(&run).expect("loading the benchmark run");
    let d = Detector::fit(
        model,
        &task,
        DetectorFit {
            threshold: ThresholdChoice::Conformal { alpha: 0.2 },
            ..Default::default()
        },
    )
    .expect("fitting the benchmark detector");
    d.save(&file).expect("saving the benchmark detector");
    Detector::load(&file).expect("loading the benchmark detector")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let a = parse_args();
    let mut det = detector(&a);
    det.set_batch_size(64);
    let shape = format!("{}x{}x{}", a.side, a.side, a.channels);
    let queries = images(a.images, a.side, a.channels, 3);
    let one = queries.image(0);
    // Warm-up: first forward pass allocates the engine's buffers.
    let _ = det.score_prepared(one, 1).expect("scoring");
    let _ = det
        .score_prepared(&queries.images, queries.n)
        .expect("scoring");
    let mut lat = Vec::with_capacity(a.reps);
    for _ in 0..a.reps {
        let t = Instant::now();
        let v = det.score_prepared(one, 1).expect("scoring");
        lat.push(t.elapsed().as_secs_f64());
        std::hint::black_box(v);
    }
    let mut thr = Vec::new();
    let mut checksum = 0.0;
    for _ in 0..3.min(a.reps) {
        let t = Instant::now();
        let v = det
            .score_prepared(&queries.images, queries.n)
            .expect("scoring");
        thr.push(t.elapsed().as_secs_f64());
        checksum = v.iter().map(|v| v.score).sum::<f64>();
    }
    let per_image = median(thr) / a.images as f64;
    println!(
        "{{\"bench\":\"score\",\"case\":\"latency_{shape}\",\"impl\":\"conad\",\"seconds\":{},\"bank\":{}}}",
        median(lat),
        a.bank
    );
    println!(
        "{{\"bench\":\"score\",\"case\":\"throughput_{shape}\",\"impl\":\"conad\",\"seconds\":{per_image},\"images_per_second\":{},\"images\":{},\"checksum\":{checksum}}}",
        1.0 / per_image,
        a.images
    );
}
