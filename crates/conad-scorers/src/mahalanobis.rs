//! SSD Mahalanobis score with k-means clusters (Sehwag et al.; docs/reference.md §2.10).
//!
//! 1. L2-normalise train and test features (ε = 1e-10);
//! 2. standardise per dimension with the *training* mean `m` and (population) std `s`:
//!    `x ← (x − m)/(s + 1e-10)`;
//! 3. k-means on the standardised training features (k = 1 by default: one cluster = the whole
//!    set); seeded k-means++ + Lloyd (module `kmeans`);
//! 4. per cluster `j`: `μ_j` = mean, `Σ_j` = biased covariance (1/n_j), `P_j = Σ_j⁺`
//!    (pseudo-inverse by symmetric eigendecomposition, eigenvalues ≤ `rcond·λ_max` dropped —
//!    numpy's `pinv` rule; default `rcond = 1e-10`, the reference's suggestion (docs/reference.md §2.10) against amplifying
//!    round-off; numpy's own default is 1e-15), or optionally Ledoit–Wolf shrinkage
//!    (SSD's code option) inverted by Cholesky;
//! 5. score `min_j (x − μ_j)ᵀ P_j (x − μ_j)`.
//!
//! **Anomaly score returned here: that minimum squared Mahalanobis distance**, unchanged (SSD's
//! score is already an anomaly score; higher = more anomalous).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::covariance::{Scatter, centered_scatter, cholesky_whitening, pinv_whitening};
use crate::embeddings::Embeddings;
use crate::error::{Error, Result};
use crate::kmeans::kmeans;
use crate::ledoit_wolf::ledoit_wolf_covariance;
use crate::similarity::matmul_nt_f64;
use crate::traits::{AnomalyScorer, Fit, impl_param_guard};

/// ε of SSD's L2 normalisation.
const SSD_NORM_EPS: f64 = 1e-10;
/// ε added to the per-dimension std.
const SSD_STD_EPS: f64 = 1e-10;
/// Query rows per scoring block.
const SCORE_BLOCK: usize = 256;

/// How each cluster's covariance is inverted.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SsdCovariance {
    /// Biased covariance, pseudo-inverse with relative eigenvalue cutoff `rcond` (SSD default).
    PseudoInverse {
        /// Eigenvalues ≤ `rcond · λ_max` count as zero (default 1e-10).
        rcond: f64,
    },
    /// scikit-learn Ledoit–Wolf shrinkage, inverted by Cholesky.
    LedoitWolf,
}

/// Validated SSD parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MahalanobisValidParams {
    n_clusters: usize,
    max_iter: usize,
    seed: u64,
    l2_normalize: bool,
    covariance: SsdCovariance,
}

impl Default for MahalanobisValidParams {
    fn default() -> Self {
        Self {
            n_clusters: 1,
            max_iter: 100,
            seed: 0,
            l2_normalize: true,
            covariance: SsdCovariance::PseudoInverse { rcond: 1e-10 },
        }
    }
}

impl MahalanobisValidParams {
    /// Number of k-means clusters.
    pub const fn n_clusters(&self) -> usize {
        self.n_clusters
    }
    /// Maximum Lloyd iterations.
    pub const fn max_iter(&self) -> usize {
        self.max_iter
    }
    /// Root seed of the k-means++ draws.
    pub const fn seed(&self) -> u64 {
        self.seed
    }
    /// Whether features are L2-normalised first.
    pub const fn l2_normalize(&self) -> bool {
        self.l2_normalize
    }
    /// Covariance inversion.
    pub const fn covariance(&self) -> SsdCovariance {
        self.covariance
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.n_clusters == 0 {
            return Err(Error::invalid(
                "n_clusters",
                "0",
                "need at least one cluster (SSD's default is 1)",
            ));
        }
        if self.max_iter == 0 {
            return Err(Error::invalid(
                "max_iter",
                "0",
                "k-means needs at least one Lloyd iteration (default 100)",
            ));
        }
        if let SsdCovariance::PseudoInverse { rcond } = self.covariance
            && !(rcond.is_finite() && (0.0..1.0).contains(&rcond))
        {
            return Err(Error::invalid(
                "rcond",
                rcond,
                "the relative eigenvalue cutoff must be in [0, 1) (default 1e-10)",
            ));
        }
        Ok(())
    }
}

/// SSD parameters (unchecked; builder setters; serde).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MahalanobisParams(MahalanobisValidParams);
impl_param_guard!(MahalanobisParams, MahalanobisValidParams);

impl MahalanobisParams {
    /// Number of k-means clusters (default 1).
    pub fn n_clusters(mut self, k: usize) -> Self {
        self.0.n_clusters = k;
        self
    }
    /// Maximum Lloyd iterations (default 100, as SSD's FAISS call).
    pub fn max_iter(mut self, it: usize) -> Self {
        self.0.max_iter = it;
        self
    }
    /// Seed of the k-means++ initialisation (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
    }
    /// L2-normalise features first (default true).
    pub fn l2_normalize(mut self, on: bool) -> Self {
        self.0.l2_normalize = on;
        self
    }
    /// Covariance inversion (default pseudo-inverse, rcond 1e-10).
    pub fn covariance(mut self, c: SsdCovariance) -> Self {
        self.0.covariance = c;
        self
    }
}

/// One cluster's Gaussian: mean and whitening `W` (`rank × d`, row-major) with
/// `(x−μ)ᵀ P (x−μ) = ‖W(x−μ)‖²`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SsdCluster {
    /// Cluster mean in the standardised space.
    pub mean: Vec<f64>,
    /// Whitening rows.
    pub whitening: Vec<f64>,
    /// Number of whitening rows (numerical rank of Σ_j).
    pub rank: usize,
    /// Training rows in this cluster.
    pub size: usize,
}

/// A fitted SSD scorer; anomaly = `min_j` squared Mahalanobis distance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MahalanobisScorer {
    params: MahalanobisValidParams,
    dim: usize,
    /// Per-dimension training mean (after L2 normalisation).
    feature_mean: Vec<f64>,
    /// Per-dimension training std + 1e-10.
    feature_scale: Vec<f64>,
    clusters: Vec<SsdCluster>,
}

fn l2_row(row: &[f32], l2: bool, out: &mut [f64]) {
    let s = if l2 {
        // SSD divides by ‖x‖ + 1e-10 (not max(‖x‖, ε)).
        1.0 / (crate::embeddings::dot64(row, row).sqrt() + SSD_NORM_EPS)
    } else {
        1.0
    };
    for (o, &v) in out.iter_mut().zip(row) {
        *o = f64::from(v) * s;
    }
}

impl MahalanobisScorer {
    /// Fitted clusters.
    pub fn clusters(&self) -> &[SsdCluster] {
        &self.clusters
    }

    fn standardize_row(&self, row: &[f32], out: &mut [f64]) {
        l2_row(row, self.params.l2_normalize, out);
        for ((o, m), s) in out
            .iter_mut()
            .zip(&self.feature_mean)
            .zip(&self.feature_scale)
        {
            *o = (*o - m) / s;
        }
    }

    /// Squared Mahalanobis distance of every query to every cluster (`m × k` row-major).
    ///
    /// # Errors
    /// As [`AnomalyScorer::score_batch`].
    pub fn cluster_distances(&self, queries: Embeddings<'_>) -> Result<Vec<f64>> {
        let d = self.dim;
        let bad = self.clusters.is_empty()
            || self.feature_mean.len() != d
            || self.feature_scale.len() != d
            || self
                .clusters
                .iter()
                .any(|c| c.mean.len() != d || c.whitening.len() != c.rank * d);
        if bad {
            return Err(Error::CorruptModel {
                scorer: "mahalanobis",
                detail: "cluster means/whitening do not match the dimension".into(),
            });
        }
        queries.check_dim(self.dim, "Mahalanobis queries")?;
        queries.check_finite("queries")?;
        let (d, k, m) = (self.dim, self.clusters.len(), queries.rows());
        let blocks: Vec<Vec<f64>> = (0..m.div_ceil(SCORE_BLOCK))
            .into_par_iter()
            .map(|b| {
                let r0 = b * SCORE_BLOCK;
                let r1 = (r0 + SCORE_BLOCK).min(m);
                let rows = r1 - r0;
                let mut x = vec![0.0f64; rows * d];
                for (i, out) in x.chunks_exact_mut(d).enumerate() {
                    self.standardize_row(queries.row(r0 + i), out);
                }
                let mut dist = vec![0.0f64; rows * k];
                let mut centred = vec![0.0f64; rows * d];
                for (j, c) in self.clusters.iter().enumerate() {
                    for (dst, src) in centred.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                        for ((o, v), mu) in dst.iter_mut().zip(src).zip(&c.mean) {
                            *o = v - mu;
                        }
                    }
                    let mut y = vec![0.0f64; rows * c.rank];
                    matmul_nt_f64(&centred, rows, &c.whitening, c.rank, d, &mut y);
                    for i in 0..rows {
                        dist[i * k + j] = if c.rank == 0 {
                            0.0
                        } else {
                            y[i * c.rank..(i + 1) * c.rank].iter().map(|v| v * v).sum()
                        };
                    }
                }
                dist
            })
            .collect();
        Ok(blocks.into_iter().flatten().collect())
    }
}

impl Fit for MahalanobisValidParams {
    type Fitted = MahalanobisScorer;

    fn fit(&self, train: Embeddings<'_>) -> Result<MahalanobisScorer> {
        self.validate()?;
        train.check_min_rows(2, "training bank")?;
        train.check_finite("training bank")?;
        let (n, d) = (train.rows(), train.cols());
        if self.n_clusters > n {
            return Err(Error::TooManyClusters {
                clusters: self.n_clusters,
                rows: n,
            });
        }
        let l2 = self.l2_normalize;
        // Per-dimension mean and population std of the (normalised) training features.
        let s0: Scatter = centered_scatter(train, None, |r, o| l2_row(r, l2, o));
        let feature_mean = s0.mean.clone();
        let feature_scale: Vec<f64> = (0..d)
            .map(|i| (s0.scatter[i * d + i] / n as f64).max(0.0).sqrt() + SSD_STD_EPS)
            .collect();
        let mut scorer = MahalanobisScorer {
            params: self.clone(),
            dim: d,
            feature_mean,
            feature_scale,
            clusters: Vec::new(),
        };
        let standardize = |r: &[f32], o: &mut [f64]| scorer.standardize_row(r, o);

        let assignment: Vec<usize> = if self.n_clusters == 1 {
            vec![0; n]
        } else {
            let mut z = vec![0.0f32; n * d];
            let mut buf = vec![0.0f64; d];
            for (i, out) in z.chunks_exact_mut(d).enumerate() {
                standardize(train.row(i), &mut buf);
                for (o, v) in out.iter_mut().zip(&buf) {
                    *o = *v as f32;
                }
            }
            let zx = Embeddings::new(&z, n, d)?;
            kmeans(zx, self.n_clusters, self.max_iter, self.seed).assignment
        };

        let mut clusters = Vec::with_capacity(self.n_clusters);
        for c in 0..self.n_clusters {
            let members: Vec<usize> = (0..n).filter(|&i| assignment[i] == c).collect();
            if members.len() < 2 {
                return Err(Error::ClusterTooSmall {
                    cluster: c,
                    size: members.len(),
                });
            }
            let s = if self.n_clusters == 1 {
                centered_scatter(train, None, standardize)
            } else {
                centered_scatter(train, Some(&members), standardize)
            };
            let (whitening, rank) = match self.covariance {
                SsdCovariance::PseudoInverse { rcond } => {
                    let nj = s.n as f64;
                    let cov: Vec<f64> = s.scatter.iter().map(|v| v / nj).collect();
                    pinv_whitening(&cov, d, rcond)?
                }
                SsdCovariance::LedoitWolf => {
                    let (cov, _) = ledoit_wolf_covariance(&s);
                    let (w, _) = cholesky_whitening(&cov, d, &format!("cluster {c}"))?;
                    (w, d)
                }
            };
            clusters.push(SsdCluster {
                mean: s.mean,
                whitening,
                rank,
                size: members.len(),
            });
        }
        scorer.clusters = clusters;
        Ok(scorer)
    }
}

impl AnomalyScorer for MahalanobisScorer {
    fn name(&self) -> &'static str {
        "mahalanobis"
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn score_batch(&self, queries: Embeddings<'_>) -> Result<Vec<f32>> {
        let k = self.clusters.len();
        let dist = self.cluster_distances(queries)?;
        Ok(dist
            .chunks_exact(k)
            .map(|r| r.iter().copied().fold(f64::INFINITY, f64::min) as f32)
            .collect())
    }
}
