//! `cargo xtask bench conv`: per-layer convolution speed of conad-engine next to
//! PyTorch 1.13 (oneDNN, 2 threads): forward, grad-input and grad-weight GF/s for every distinct
//! ResNet-18 (CIFAR stem) conv layer shape, 32×32×3 and 28×28×1 inputs at widths 1 and 1/4,
//! batch 64 (32 images × 2 views). Both sides build the same deterministic inputs and must agree
//! on a checksum (mean |y| + mean |dx| + mean |dw|). Headline: `conv_ratio conad/torch`, the
//! geometric mean over layer shapes of torch time / conad time (forward + both gradients).
use super::BenchArgs;
use super::runner::{BenchSpec, Side};
use std::path::Path;

pub fn spec(_root: &Path, _args: &BenchArgs) -> BenchSpec {
    BenchSpec {
        name: "conv",
        sides: vec![
            Side::Example {
                krate: "conad-engine",
                example: "bench_conv",
                args: vec![],
                env: vec![],
            },
            Side::Python {
                script: "bench_conv.py",
                args: vec![],
            },
        ],
        headline: "conv_ratio",
        headline_ref: Some("torch"),
        headline_cases: vec![],
        agree: vec![("checksum", 1e-3)],
    }
}
