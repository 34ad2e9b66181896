//! Gaussian likelihood score S_LH (CON2; docs/reference.md §2.6, §6.4).
//!
//! Fit a multivariate normal to the (by default L2-normalised) training features,
//! `μ = mean`, `Σ` = a regularised covariance, and score
//!
//! `S_LH(x) = −log N(ẑ(x); μ, Σ) = ½[(ẑ−μ)ᵀΣ⁻¹(ẑ−μ) + ln det Σ + d ln 2π]`.
//!
//! **Anomaly score returned here: `S_LH` itself** (the paper's S_LH is already an anomaly score;
//! the normality score is the log-density, `−S_LH`).
//!
//! Covariance (docs/reference.md §6.4; the paper does not say, and BreastMNIST has n = 399 < d = 512):
//! - [`GaussianCovariance::LedoitWolf`] (default): scikit-learn 1.2.1's `LedoitWolf` exactly —
//!   biased empirical covariance `S = XᵀX/n` of the centred features, shrunk to
//!   `(1−β)S + β·(tr S/d)·I` with the closed-form β. Using the unbiased `1/(n−1)` instead would
//!   multiply Σ by `n/(n−1)`, which shifts every score by the same constant and rescales the
//!   Mahalanobis term by the same factor: identical ranking and AUROC.
//! - [`GaussianCovariance::Ridge`]: unbiased covariance plus `ε·(tr Σ/d)·I` (docs/reference.md §6.4's ridge
//!   alternative, ε = 1e-3); ε = 0 is the plain empirical covariance (fails when n ≤ d).
//!
//! Implementation: the scatter matrix is one blocked `f64` GEMM over 1024-row chunks (no
//! transformed copy of the bank), Cholesky and the triangular inverse `W = L⁻¹` via faer; scoring
//! is one `f64` GEMM per query block, `‖W(ẑ−μ)‖²`.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::covariance::{centered_scatter, cholesky_whitening};
use crate::embeddings::{Embeddings, NORM_EPS};
use crate::error::{Error, Result};
use crate::ledoit_wolf::ledoit_wolf_covariance;
use crate::similarity::matmul_nt_f64;
use crate::traits::{AnomalyScorer, Fit, impl_param_guard};

/// Query rows per scoring block.
const SCORE_BLOCK: usize = 256;

/// Covariance estimator for S_LH.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GaussianCovariance {
    /// scikit-learn's `LedoitWolf` (biased empirical covariance + closed-form shrinkage).
    LedoitWolf,
    /// Unbiased covariance `+ epsilon·(tr Σ/d)·I`.
    Ridge {
        /// Relative ridge ε ≥ 0 (docs/reference.md §6.4 suggests 1e-3).
        epsilon: f64,
    },
}

/// Validated S_LH parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GaussianValidParams {
    l2_normalize: bool,
    covariance: GaussianCovariance,
}

impl Default for GaussianValidParams {
    fn default() -> Self {
        Self {
            l2_normalize: true,
            covariance: GaussianCovariance::LedoitWolf,
        }
    }
}

impl GaussianValidParams {
    /// Whether rows are L2-normalised before fitting and scoring (default true, as CON2).
    pub const fn l2_normalize(&self) -> bool {
        self.l2_normalize
    }
    /// The covariance estimator.
    pub const fn covariance(&self) -> GaussianCovariance {
        self.covariance
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if let GaussianCovariance::Ridge { epsilon } = self.covariance
            && !(epsilon.is_finite() && epsilon >= 0.0)
        {
            return Err(Error::invalid(
                "epsilon",
                epsilon,
                "the ridge must be finite and ≥ 0 (docs/reference.md §6.4 suggests 1e-3)",
            ));
        }
        Ok(())
    }
}

/// Maps a raw row to the fitted feature space (optionally L2-normalised), in `f64`.
fn transform_row(row: &[f32], l2: bool, out: &mut [f64]) {
    let scale = if l2 {
        1.0 / crate::embeddings::dot64(row, row)
            .sqrt()
            .max(f64::from(NORM_EPS))
    } else {
        1.0
    };
    for (o, &v) in out.iter_mut().zip(row) {
        *o = f64::from(v) * scale;
    }
}

impl Fit for GaussianValidParams {
    type Fitted = GaussianScorer;

    fn fit(&self, train: Embeddings<'_>) -> Result<GaussianScorer> {
        self.validate()?;
        train.check_min_rows(2, "training bank")?;
        train.check_finite("training bank")?;
        let d = train.cols();
        let l2 = self.l2_normalize;
        let s = centered_scatter(train, None, |r, o| transform_row(r, l2, o));
        let (cov, shrinkage) = match self.covariance {
            GaussianCovariance::LedoitWolf => ledoit_wolf_covariance(&s),
            GaussianCovariance::Ridge { epsilon } => {
                let nm1 = (s.n - 1) as f64;
                let mut c: Vec<f64> = s.scatter.iter().map(|&v| v / nm1).collect();
                let tr = (0..d).map(|i| c[i * d + i]).sum::<f64>() / d as f64;
                for i in 0..d {
                    c[i * d + i] += epsilon * tr;
                }
                (c, 0.0)
            }
        };
        let (whitening, log_det) = cholesky_whitening(&cov, d, "training features")?;
        Ok(GaussianScorer {
            params: self.clone(),
            dim: d,
            mean: s.mean,
            whitening,
            log_det,
            shrinkage,
        })
    }
}

/// S_LH parameters (unchecked; builder setters; serde).
///
/// ```
/// use conad_scorers::{AnomalyScorer, Embeddings, Fit, GaussianParams};
/// let train: Vec<f32> = (0..40).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
/// let g = GaussianParams::default().fit(Embeddings::new(&train, 20, 2)?)?;
/// assert!(g.score(&[1.0, 0.0])?.is_finite());
/// # Ok::<(), conad_scorers::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GaussianParams(GaussianValidParams);
impl_param_guard!(GaussianParams, GaussianValidParams);

impl GaussianParams {
    /// L2-normalise rows first (default true).
    pub fn l2_normalize(mut self, on: bool) -> Self {
        self.0.l2_normalize = on;
        self
    }
    /// Covariance estimator (default Ledoit–Wolf).
    pub fn covariance(mut self, c: GaussianCovariance) -> Self {
        self.0.covariance = c;
        self
    }
}

/// A fitted Gaussian; anomaly = `−log N(ẑ; μ, Σ)` (S_LH).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaussianScorer {
    params: GaussianValidParams,
    dim: usize,
    mean: Vec<f64>,
    /// `L⁻¹` (row-major `d × d`) where `Σ = L Lᵀ`.
    whitening: Vec<f64>,
    log_det: f64,
    shrinkage: f64,
}

impl GaussianScorer {
    /// The parameters it was fitted with.
    pub const fn params(&self) -> &GaussianValidParams {
        &self.params
    }
    /// Training mean μ (in the normalised space if `l2_normalize`).
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }
    /// `ln det Σ`.
    pub const fn log_det(&self) -> f64 {
        self.log_det
    }
    /// Ledoit–Wolf shrinkage β used (0 for the ridge estimator).
    pub const fn shrinkage(&self) -> f64 {
        self.shrinkage
    }

    /// Squared Mahalanobis distances `(ẑ−μ)ᵀΣ⁻¹(ẑ−μ)`, one per query.
    ///
    /// # Errors
    /// As [`AnomalyScorer::score_batch`].
    pub fn mahalanobis_sq(&self, queries: Embeddings<'_>) -> Result<Vec<f64>> {
        if self.mean.len() != self.dim || self.whitening.len() != self.dim * self.dim {
            return Err(Error::CorruptModel {
                scorer: "gaussian",
                detail: format!(
                    "dim {} but mean has {} and whitening {} entries",
                    self.dim,
                    self.mean.len(),
                    self.whitening.len()
                ),
            });
        }
        queries.check_dim(self.dim, "Gaussian queries")?;
        queries.check_finite("queries")?;
        let d = self.dim;
        let m = queries.rows();
        let blocks: Vec<Vec<f64>> = (0..m.div_ceil(SCORE_BLOCK))
            .into_par_iter()
            .map(|b| {
                let r0 = b * SCORE_BLOCK;
                let r1 = (r0 + SCORE_BLOCK).min(m);
                let rows = r1 - r0;
                let mut centred = vec![0.0f64; rows * d];
                for (i, out) in centred.chunks_exact_mut(d).enumerate() {
                    transform_row(queries.row(r0 + i), self.params.l2_normalize, out);
                    for (v, mu) in out.iter_mut().zip(&self.mean) {
                        *v -= mu;
                    }
                }
                let mut y = vec![0.0f64; rows * d];
                matmul_nt_f64(&centred, rows, &self.whitening, d, d, &mut y);
                y.chunks_exact(d)
                    .map(|r| r.iter().map(|v| v * v).sum())
                    .collect()
            })
            .collect();
        Ok(blocks.into_iter().flatten().collect())
    }

    /// Log-densities `log N(ẑ; μ, Σ)` in `f64` (the normality score).
    ///
    /// # Errors
    /// As [`AnomalyScorer::score_batch`].
    pub fn log_density(&self, queries: Embeddings<'_>) -> Result<Vec<f64>> {
        let c = self.log_det + self.dim as f64 * (2.0 * std::f64::consts::PI).ln();
        Ok(self
            .mahalanobis_sq(queries)?
            .into_iter()
            .map(|m2| -0.5 * (m2 + c))
            .collect())
    }
}

impl AnomalyScorer for GaussianScorer {
    fn name(&self) -> &'static str {
        "gaussian"
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn score_batch(&self, queries: Embeddings<'_>) -> Result<Vec<f32>> {
        Ok(self
            .log_density(queries)?
            .into_iter()
            .map(|l| (-l) as f32)
            .collect())
    }
}
