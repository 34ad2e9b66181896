//! Anomaly scorers on embeddings, for contrastive self-supervised anomaly detection
//! (METHODS §2, "Score functions"). No deep-learning framework in the dependency tree: pass
//! embeddings from any model as row-major `f32` slices.
//!
//! | scorer | METHODS | paper normality | anomaly score returned |
//! |---|---|---|---|
//! | [`KnnScorer`] | §2.2, §6.9, §6.22 | mean top-k cosine `s_cosk` (× ‖f‖ with norm weighting) | `1 − s_cosk` (`−‖f‖·s_cosk`) |
//! | [`GaussianScorer`] | §2.6, §6.4 | `log N(ẑ; μ, Σ_LW)` | S_LH = `−log N` |
//! | [`MahalanobisScorer`] | §2.10 | — (SSD is a distance) | `min_j` squared Mahalanobis |
//! | [`KdeScorer`] | §2.7 | `(1/γ) log Σ exp(−γ‖x−x_m‖²)` | its negation |
//! | [`OcSvmScorer`] | §2.8, §6.15 | sklearn `decision_function` | its negation |
//! | [`CenterScorer`] | §2.9 | `cos(ẑ, c)` | `1 − cos` |
//! | [`CsiScorer`] | §2.4, §2.5 | CSI score | its negation |
//! | [`TtaEnsemble`] | §2.3, §2.6, §6.3, §6.8 | mean over augmentation groups | mean anomaly score |
//!
//! **Convention: every `score` returns an anomaly score — higher means more anomalous.**
//! AUROC with anomalies as the positive class on these scores equals AUROC with normal as the
//! positive class on the papers' normality scores (§4.6).
//!
//! API (linfa style): `XParams` (builder setters, serde) → [`ParamGuard::check`] → fitted with
//! [`Fit::fit`] on a training bank → [`AnomalyScorer::score`] / [`AnomalyScorer::score_batch`].
//! [`ScorerConfig`] names a scorer and its parameters (serde, tagged) and builds a
//! [`FittedScorer`] or a `Box<dyn AnomalyScorer>`; fitted scorers serialise with serde.
//!
//! ```
//! use conad_scorers::{AnomalyScorer, Embeddings, Fit, ScorerConfig};
//! let train = vec![1.0_f32, 0.0, 0.9, 0.1, 0.0, 1.0];
//! let bank = Embeddings::new(&train, 3, 2)?;
//! let knn = ScorerConfig::from_name("knn")?.with_k(1)?.fit_boxed(bank)?;
//! assert!(knn.score(&[1.0, 0.0])? < 1e-6);               // a bank member: anomaly 0
//! assert!(knn.score(&[-1.0, -1.0])? > 1.7);            // nearest cosine −1/√2: 1.707
//! # Ok::<(), conad_scorers::Error>(())
//! ```
//!
//! Performance: kNN, KDE and RBF-SVM scoring run as blocked GEMMs (the `gemm` crate's AVX-512
//! kernels) with the reduction fused after each tile, so memory is O(bank + block) for any number
//! of queries; Gaussian fits build the covariance with a blocked `f64` GEMM. Results do not depend
//! on the number of rayon threads (fixed work partitions merged in a fixed order).
//!
//! No approximate (HNSW) backend: `hnsw_rs` 0.3.5 would add ~70 crates (env_logger, regex, jiff,
//! nix, mmap-rs, a second `rand`) and its graph construction is not driven by conad's seed tree;
//! exact search covers the METHODS banks (≤ 60 000 × 512) in seconds.

pub mod center;
pub mod config;
mod covariance;
pub mod csi;
pub mod embeddings;
pub mod ensemble;
pub mod error;
pub mod gaussian;
pub mod kde;
mod kmeans;
pub mod knn;
mod ledoit_wolf;
pub mod mahalanobis;
pub mod ocsvm;
pub mod rbf;
pub mod similarity;
mod smo;
mod topk;
pub mod traits;

pub use center::{CenterParams, CenterScorer, CenterValidParams};
pub use config::{FittedScorer, ScorerConfig};
pub use csi::{CsiParams, CsiScorer, CsiShift, CsiShiftFeatures, CsiValidParams};
pub use embeddings::{EmbeddingMatrix, Embeddings};
pub use ensemble::{GroupedScorer, TtaEnsemble};
pub use error::{Error, Result};
pub use gaussian::{GaussianCovariance, GaussianParams, GaussianScorer, GaussianValidParams};
pub use kde::{KdeParams, KdeScorer, KdeValidParams};
pub use knn::{KnnParams, KnnScorer, KnnValidParams};
pub use mahalanobis::{
    MahalanobisParams, MahalanobisScorer, MahalanobisValidParams, SsdCluster, SsdCovariance,
};
pub use ocsvm::{OcSvmKernel, OcSvmParams, OcSvmScorer, OcSvmValidParams};
pub use rbf::Gamma;
pub use similarity::TilePlan;
pub use traits::{AnomalyScorer, Fit, ParamGuard};

/// Peak resident memory of this process (`VmHWM` from `/proc/self/status`), in MiB; `None` where
/// unavailable (non-Linux). Used by the benchmark example.
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
