//! `cargo xtask bench scorers`: kNN max-cosine with a 50,000 × 512 bank and 10,000 queries,
//! conad-scorers vs numpy + OpenBLAS and faiss-cpu `IndexFlatIP` (when importable), plus the
//! S_LH (Ledoit–Wolf Gaussian) fit time. Headline: `knn_ratio conad/numpy = X`.
use super::BenchArgs;
use super::runner::{BenchSpec, Side};
use std::path::Path;

pub fn spec(root: &Path, _args: &BenchArgs) -> BenchSpec {
    let dir = root.join("target/bench/scorers");
    let dir = dir.display().to_string();
    BenchSpec {
        name: "scorers",
        sides: vec![
            Side::Example {
                krate: "conad-scorers",
                example: "bench_knn",
                args: vec!["--data-dir".into(), dir.clone()],
                env: vec![],
            },
            Side::Python {
                script: "bench_knn.py",
                args: vec!["--data-dir".into(), dir],
            },
        ],
        headline: "knn_ratio",
        headline_ref: Some("numpy"),
        headline_cases: vec![],
        agree: vec![("checksum", 1e-4)],
    }
}
