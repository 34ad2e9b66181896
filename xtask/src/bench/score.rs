//! `cargo xtask bench score`: scoring images with a ResNet-18 (width 1) detector — warm
//! single-image latency and batch throughput at 28×28×1, 32×32×3 and 224×224×3 — in conad
//! (`Detector::score_prepared`: forward, kNN score, p-value, nearest normal image) and in
//! PyTorch (eval-mode forward of the same network under `no_grad` + a numpy kNN over a bank of
//! the same size). Headline: `score_throughput conad/pytorch = X` (torch seconds per image /
//! conad seconds per image, geometric mean over the three throughput cases).
use super::BenchArgs;
use super::runner::{BenchSpec, Side};
use std::path::Path;

/// (side, channels) of the compared inputs.
const CONFIGS: [(&str, &str); 3] = [("28", "1"), ("32", "3"), ("224", "3")];

pub fn spec(root: &Path, args: &BenchArgs) -> BenchSpec {
    let configs: &[(&str, &str)] = if args.quick { &CONFIGS[..1] } else { &CONFIGS };
    let cache = root.join("target/bench/score").display().to_string();
    let mut sides = Vec::new();
    for (side, channels) in configs {
        let a: Vec<String> = ["--side", side, "--channels", channels]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        let mut conad = a.clone();
        conad.extend(["--cache".to_string(), cache.clone()]);
        sides.push(Side::Example {
            krate: "conad-train",
            example: "bench_score",
            args: conad,
            env: vec![],
        });
        sides.push(Side::Python {
            script: "bench_score.py",
            args: a,
        });
    }
    BenchSpec {
        name: "score",
        sides,
        headline: "score_throughput conad/pytorch",
        headline_ref: Some("torch"),
        headline_cases: vec![
            "throughput_28x28x1",
            "throughput_32x32x3",
            "throughput_224x224x3",
        ],
        agree: vec![],
    }
}
