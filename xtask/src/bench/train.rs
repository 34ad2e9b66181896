//! `cargo xtask bench train`: one ResNet-18 SimCLR training step (B = 32 source images × 2 views,
//! forward → NT-Xent → backward → AdamW on an augmented batch) in conad (candle on CPU) and in
//! PyTorch (Debian `python3-torch`, two threads), for 32×32×3 and 28×28×1 inputs at widths 1 and
//! 1/4. Each configuration runs conad then torch, configuration after configuration, every round.
//! Headline: `train_step_ratio conad/pytorch = X` (torch step time / conad step time, geometric
//! mean over the four configurations; > 1 means conad is faster). `--precision bf16` runs conad's
//! `precision = "bf16"` against PyTorch's CPU bf16 autocast (both sides name the cases `…_bf16`).
use super::BenchArgs;
use super::runner::{BenchSpec, Side};
use std::path::Path;

/// (width, side, channels) of the compared configurations.
const CONFIGS: [(&str, &str, &str); 4] = [
    ("1", "32", "3"),
    ("0.25", "32", "3"),
    ("1", "28", "1"),
    ("0.25", "28", "1"),
];

pub fn spec(_root: &Path, args: &BenchArgs) -> BenchSpec {
    let configs: &[(&str, &str, &str)] = if args.quick { &CONFIGS[..1] } else { &CONFIGS };
    let mut sides = Vec::new();
    for (width, side, channels) in configs {
        let a: Vec<String> = [
            "--width",
            width,
            "--side",
            side,
            "--channels",
            channels,
            "--batch",
            "32",
            "--precision",
            args.precision.name(),
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        sides.push(Side::Example {
            krate: "conad-train",
            example: "bench_train_step",
            args: a.clone(),
            env: vec![],
        });
        sides.push(Side::Python {
            script: "bench_train.py",
            args: a,
        });
    }
    BenchSpec {
        name: "train",
        sides,
        headline: "train_step_ratio conad/pytorch",
        headline_ref: Some("torch"),
        headline_cases: vec![],
        agree: vec![],
    }
}
