//! Benchmark of whole SimCLR training epochs as a user runs them: data, augmentation, forward,
//! backward, optimiser — the budget profile (ResNet-18 at width 1/4, batch 64 source images × 2
//! views, AdamW) on BreastMNIST's normal training images (399 at 28×28×1, 6 steps per epoch).
//! The Rust side of `cargo xtask bench epoch`; the PyTorch side (torchvision transforms, a
//! 2-worker DataLoader) is `xtask/scripts/bench_epoch.py`.
//!
//! ```text
//! cargo run --release -p conad-train --example bench_epoch -- --data BREASTMNIST.npz
//!     [--epochs E] [--out DIR] [--quick]
//! ```
//! Trains `E` epochs (default 4) through `conad_train::train_with_options` (no checkpoints, no
//! online evaluation) and reports the median wall time of epochs 2..E (the first warms the
//! allocator and the thread pool). Prints one JSON object on stdout.

use std::path::PathBuf;

use conad_data::{DataSpec, OneClassProtocol};
use conad_train::{
    Precision, ProgressMode, ResumePolicy, TrainOptions, profile, train_with_options,
};

/// Large blocks (activations, gradients) on transparent huge pages (conad-engine's
/// `HugePageAlloc`; width-1 training steps measured 3–10 % faster).
#[global_allocator]
static ALLOC: conad_train::HugePageAlloc = conad_train::HugePageAlloc;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut data = PathBuf::from("../shared/data/medmnist/breastmnist.npz");
    let mut epochs = 4u64;
    let mut out = PathBuf::from("target/bench/epoch/run");
    let mut precision = Precision::F32;
    let mut i = 0;
    while i < argv.len() {
        let val = || {
            argv.get(i + 1).cloned().unwrap_or_else(|| {
                eprintln!("{} needs a value", argv[i]);
                std::process::exit(2)
            })
        };
        match argv[i].as_str() {
            "--quick" => {
                epochs = 2;
                i += 1;
                continue;
            }
            "--data" => data = PathBuf::from(val()),
            "--epochs" => {
                epochs = val().parse().unwrap_or_else(|_| {
                    eprintln!("--epochs needs a number");
                    std::process::exit(2)
                })
            }
            "--out" => out = PathBuf::from(val()),
            "--precision" => {
                precision = val().parse().unwrap_or_else(|e: String| {
                    eprintln!("--precision: {e}");
                    std::process::exit(2)
                })
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2)
            }
        }
        i += 2;
    }
    let spec: DataSpec = format!("medmnist:{}", data.display())
        .parse()
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
    let loaded = spec.load().unwrap_or_else(|e| {
        eprintln!("{e} (pass --data PATH/breastmnist.npz)");
        std::process::exit(2)
    });
    let task = OneClassProtocol::default()
        .build(&loaded)
        .expect("BreastMNIST's one-class task");
    let mut config = profile("simclr", "budget").expect("the simclr budget profile");
    config.epochs = epochs.max(2);
    config.view_budget = None;
    config.eval_points = None;
    config.eval_every = 0;
    config.checkpoint_every = 0;
    config.precision = precision;
    let report = train_with_options(
        &config,
        &task,
        &out,
        &TrainOptions {
            resume: ResumePolicy::Overwrite,
            progress: ProgressMode::Hidden,
            ..Default::default()
        },
    )
    .expect("training");
    let mut secs: Vec<f64> = report.history.epochs[1..]
        .iter()
        .map(|e| e.seconds)
        .collect();
    secs.sort_by(f64::total_cmp);
    let median = secs[secs.len() / 2];
    let images = report.history.epochs[1].images;
    println!(
        "{{\"bench\":\"epoch\",\"case\":\"simclr_breastmnist_w0.25_b64x2{}\",\"impl\":\"conad\",\"seconds\":{median},\"images_per_second\":{},\"source_images\":{},\"epochs_timed\":{}}}",
        if precision == Precision::Bf16 {
            "_bf16"
        } else {
            ""
        },
        images as f64 / median,
        task.train.n,
        secs.len()
    );
}
