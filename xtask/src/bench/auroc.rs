//! `cargo xtask bench auroc`: AUROC over 10^7 tied scores, conad-eval (1 and 2 threads) vs
//! sklearn's `roc_auc_score`. Headline: `auroc_speedup conad/sklearn = X`.
use super::BenchArgs;
use super::runner::{BenchSpec, Side};
use std::path::Path;

pub fn spec(root: &Path, _args: &BenchArgs) -> BenchSpec {
    let data = root.join("target/bench/auroc/scores.bin");
    let data = data.display().to_string();
    BenchSpec {
        name: "auroc",
        sides: vec![
            Side::Example {
                krate: "conad-eval",
                example: "bench_auroc",
                args: vec!["--data".into(), data.clone()],
                env: vec![],
            },
            Side::Python {
                script: "bench_auroc.py",
                args: vec!["--data".into(), data],
            },
        ],
        headline: "auroc_speedup",
        headline_ref: Some("sklearn"),
        headline_cases: vec![],
        agree: vec![("auroc", 1e-9)],
    }
}
