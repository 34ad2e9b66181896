//! `cargo xtask bench augment`: SimCLR-augmented 32×32 RGB views per second, conad-augment vs
//! torchvision 0.14 (a DataLoader with 2 worker processes, and a 1-thread per-image loop).
//! Headline: `augment_speedup conad/torch = X` on the `simclr_cifar32` case.
use super::BenchArgs;
use super::runner::{BenchSpec, Side};
use std::path::Path;

pub fn spec(_root: &Path, _args: &BenchArgs) -> BenchSpec {
    BenchSpec {
        name: "augment",
        sides: vec![
            Side::Example {
                krate: "conad-augment",
                example: "bench_augment",
                args: vec![],
                env: vec![],
            },
            Side::Python {
                script: "bench_augment.py",
                // The 2-thread per-image torch loop spins in OpenMP for >10 min on a busy machine.
                args: vec!["--cases".into(), "dataloader,loop1".into()],
            },
        ],
        headline: "augment_speedup",
        headline_ref: Some("torch"),
        headline_cases: vec!["simclr_cifar32"],
        agree: vec![],
    }
}
