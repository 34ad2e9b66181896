//! `cargo xtask bench load`: decode all 70,000 Fashion-MNIST images (IDX .gz) with conad-data.
//! There is no reference side; the figure to watch is `seconds` (goal ≤ 1 s).
use super::BenchArgs;
use super::runner::{BenchSpec, Side};
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

pub fn spec(_root: &Path, args: &BenchArgs) -> Result<BenchSpec> {
    let dir = args
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from("/usr/share/datasets/fashion-mnist"));
    if !dir.join("train-images-idx3-ubyte.gz").exists() {
        bail!(
            "no Fashion-MNIST at {}: run `apt-get install -y dataset-fashion-mnist` or pass --data DIR",
            dir.display()
        );
    }
    Ok(BenchSpec {
        name: "load",
        sides: vec![Side::Example {
            krate: "conad-data",
            example: "bench_load",
            args: vec!["--dir".into(), dir.display().to_string()],
            env: vec![],
        }],
        headline: "load",
        headline_ref: None,
        headline_cases: vec![],
        agree: vec![],
    })
}
