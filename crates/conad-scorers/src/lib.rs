//! Anomaly scorers on embeddings, for contrastive self-supervised anomaly detection
//! (docs/reference.md §2, "Score functions"). No deep-learning framework in the dependency tree: pass
//! embeddings from any model as row-major `f32` slices.
//!
//! | scorer | docs/reference.md | paper normality | anomaly score returned |
//! |---|---|---|---|
//! | [`KnnScorer`] | §2.2, §6.9, §6.22 | mean top-k cosine `s_cosk` (× ‖f‖ with norm weighting) | `1 − s_cosk` (`−‖f‖·s_cosk`) |
//! | [`GaussianScorer`] | §2.6, §6.4 | `log N(ẑ; μ, Σ_LW)` | S_LH = `−log N` |
//! | [`MahalanobisScorer`] | §2.10 | — (SSD is a distance) | `min_j` squared Mahalanobis |
//! | [`KdeScorer`] | §2.7 | `(1/γ) log Σ exp(−γ‖x−x_m‖²)` | its negation |
//! | [`OcSvmScorer`] | §2.8, §6.15 | sklearn `decision_function` | its negation |
//! | [`CenterScorer`] | §2.9 | `cos(ẑ, c)` | `1 − cos` |
//! | [`CsiScorer`] | §2.4, §2.5 | CSI score | its negation |
//! | [`ConformalCalibrator`], [`ThresholdRule`] | — | split-conformal p-values, thresholds | `score > threshold` |
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
//! Approximate kNN (cargo feature `hnsw`, off by default): `KnnParams::backend(KnnBackend::Hnsw(
//! HnswParams { .. }))` builds a deterministic HNSW graph (Malkov & Yashunin 2018; module `hnsw`)
//! at fit time, for banks over ~10⁶ rows where exact search gets slow. It is written here rather
//! than taken from `hnsw_rs` (~70 extra crates; parallel insertion and an unseeded level
//! generator): levels come from the seed tree keyed by node index and insertion is sequential, so
//! the same seed gives a bit-identical graph and scores whatever the thread count; queries run in
//! parallel. The fitted graph serialises with the scorer. Exact search (the default) covers the
//! the papers' banks (≤ 60 000 × 512) in seconds.

pub mod calibration;
pub mod center;
pub mod config;
mod covariance;
pub mod csi;
pub mod embeddings;
pub mod ensemble;
pub mod error;
pub mod gaussian;
#[cfg(feature = "hnsw")]
pub mod hnsw;
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
pub mod wasserstein;

pub use calibration::{ConformalCalibrator, ThresholdRule, f1_optimal_threshold, flaggable_ranks};
pub use center::{CenterParams, CenterScorer, CenterValidParams};
pub use config::{FittedScorer, SCORERS, ScorerConfig, ScorerInfo, scorer_names};
pub use csi::{CsiParams, CsiScorer, CsiShift, CsiShiftFeatures, CsiValidParams};
pub use embeddings::{EmbeddingMatrix, Embeddings};
pub use ensemble::{GroupedScorer, TtaEnsemble};
pub use error::{Error, Result};
pub use gaussian::{GaussianCovariance, GaussianParams, GaussianScorer, GaussianValidParams};
#[cfg(feature = "hnsw")]
pub use hnsw::{HnswIndex, HnswParams};
pub use kde::{KdeParams, KdeScorer, KdeValidParams};
pub use knn::{KnnBackend, KnnParams, KnnScorer, KnnValidParams};
pub use mahalanobis::{
    MahalanobisParams, MahalanobisScorer, MahalanobisValidParams, SsdCluster, SsdCovariance,
};
pub use ocsvm::{OcSvmKernel, OcSvmParams, OcSvmScorer, OcSvmValidParams};
pub use rbf::Gamma;
pub use similarity::TilePlan;
pub use traits::{AnomalyScorer, Fit, ParamGuard};
pub use wasserstein::{Wasserstein, WassersteinMethod, wasserstein1};

/// Peak resident memory of this process (`VmHWM` from `/proc/self/status`), in MiB; `None` where
/// unavailable (non-Linux). Used by the benchmark example.
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
