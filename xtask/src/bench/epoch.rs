//! `cargo xtask bench epoch`: whole SimCLR training epochs on BreastMNIST's 399 normal training
//! images (budget profile: ResNet-18 width 1/4, batch 64 × 2 views, AdamW; data, augmentation,
//! forward, backward, optimiser) in conad (`conad_train::train_with_options`) and in PyTorch
//! (torchvision transforms, a 2-worker DataLoader). Median epoch time over epochs 2–4 on each
//! side. Headline: `epoch_ratio conad/pytorch = X` (torch epoch time / conad epoch time).
//! `--precision bf16`: conad's `precision = "bf16"` against PyTorch's CPU bf16 autocast.
//! `--data FILE` points at `breastmnist.npz` (default `../shared/data/medmnist/breastmnist.npz`).
use super::BenchArgs;
use super::runner::{BenchSpec, Side};
use std::path::Path;

pub fn spec(root: &Path, args: &BenchArgs) -> BenchSpec {
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| root.join("../shared/data/medmnist/breastmnist.npz"))
        .display()
        .to_string();
    let run = root.join("target/bench/epoch/run").display().to_string();
    BenchSpec {
        name: "epoch",
        sides: vec![
            Side::Example {
                krate: "conad-train",
                example: "bench_epoch",
                args: vec![
                    "--data".into(),
                    data.clone(),
                    "--out".into(),
                    run,
                    "--precision".into(),
                    args.precision.name().into(),
                ],
                env: vec![],
            },
            Side::Python {
                script: "bench_epoch.py",
                args: vec![
                    "--data".into(),
                    data,
                    "--precision".into(),
                    args.precision.name().into(),
                ],
            },
        ],
        headline: "epoch_ratio conad/pytorch",
        headline_ref: Some("torch"),
        headline_cases: vec![],
        agree: vec![],
    }
}
