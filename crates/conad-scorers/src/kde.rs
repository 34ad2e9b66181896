//! Kernel density score with an RBF kernel (DROC / FIRM; docs/reference.md §2.7).
//!
//! Normality (paper): `f_kde(x) = (1/γ)·log Σ_m exp(−γ‖ẑ(x) − ẑ(x_m)‖²)` on L2-normalised
//! features, default bandwidth `γ = 10/(Var(X_train)·d)` ([`Gamma::Droc`]). FIRM's
//! `logsumexp(γ'·cos)/γ'` with `γ' = 2γ` equals `(f_kde + 2)/2`: same ranking.
//!
//! **Anomaly score returned here: `−f_kde(x)`.**
//!
//! Relation to scikit-learn's `KernelDensity(kernel="gaussian", bandwidth=h).score_samples`
//! (log-density) with `γ = 1/(2h²)`: `score_samples(x) = γ·f_kde(x) − ln n − (d/2)·ln(2πh²)`.
//!
//! The sum is a streaming log-sum-exp over blocked-GEMM tiles ([`rbf`](crate::rbf)), so memory is
//! O(bank + block) and nothing overflows for large γ.

use serde::{Deserialize, Serialize};

use crate::embeddings::Embeddings;
use crate::error::{Error, Result};
use crate::rbf::{Gamma, RbfBank, rbf_log_sum, to_feature_space};
use crate::similarity::TilePlan;
use crate::traits::{AnomalyScorer, Fit, impl_param_guard};

/// Validated KDE parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KdeValidParams {
    gamma: Gamma,
    l2_normalize: bool,
    tiles: TilePlan,
}

impl Default for KdeValidParams {
    fn default() -> Self {
        Self {
            gamma: Gamma::Droc,
            l2_normalize: true,
            tiles: TilePlan::default(),
        }
    }
}

impl KdeValidParams {
    /// Bandwidth rule.
    pub const fn gamma(&self) -> Gamma {
        self.gamma
    }
    /// Whether features are L2-normalised first.
    pub const fn l2_normalize(&self) -> bool {
        self.l2_normalize
    }

    pub(crate) fn validate(&self) -> Result<()> {
        self.gamma.validate()?;
        self.tiles.validate()
    }
}

impl Fit for KdeValidParams {
    type Fitted = KdeScorer;

    fn fit(&self, train: Embeddings<'_>) -> Result<KdeScorer> {
        self.validate()?;
        train.check_min_rows(1, "training bank")?;
        train.check_finite("training bank")?;
        let feats = to_feature_space(train, self.l2_normalize);
        let gamma = self.gamma.resolve(feats.view())?;
        Ok(KdeScorer {
            params: self.clone(),
            gamma,
            bank: RbfBank::new(feats),
        })
    }
}

/// KDE parameters (unchecked; builder setters; serde).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KdeParams(KdeValidParams);
impl_param_guard!(KdeParams, KdeValidParams);

impl KdeParams {
    /// Bandwidth rule (default [`Gamma::Droc`]).
    pub fn gamma(mut self, g: Gamma) -> Self {
        self.0.gamma = g;
        self
    }
    /// L2-normalise features first (default true).
    pub fn l2_normalize(mut self, on: bool) -> Self {
        self.0.l2_normalize = on;
        self
    }
    /// GEMM tiling (performance only).
    pub fn tiles(mut self, t: TilePlan) -> Self {
        self.0.tiles = t;
        self
    }
}

/// A fitted KDE scorer; anomaly = `−f_kde(x)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KdeScorer {
    params: KdeValidParams,
    /// Resolved γ.
    gamma: f32,
    bank: RbfBank,
}

impl KdeScorer {
    /// The resolved bandwidth γ.
    pub const fn gamma(&self) -> f32 {
        self.gamma
    }

    /// `log Σ_m exp(−γ‖x − x_m‖²)` per query (`γ·f_kde`), in `f64`.
    ///
    /// # Errors
    /// As [`AnomalyScorer::score_batch`].
    pub fn log_kernel_sum(&self, queries: Embeddings<'_>) -> Result<Vec<f64>> {
        self.bank.check("kde")?;
        if !(self.gamma.is_finite() && self.gamma > 0.0) {
            return Err(Error::CorruptModel {
                scorer: "kde",
                detail: format!("gamma = {}", self.gamma),
            });
        }
        queries.check_dim(self.bank.rows.cols(), "KDE queries")?;
        queries.check_finite("queries")?;
        Ok(rbf_log_sum(
            queries,
            &self.bank,
            None,
            self.gamma,
            self.params.l2_normalize,
            self.params.tiles,
        ))
    }
}

impl AnomalyScorer for KdeScorer {
    fn name(&self) -> &'static str {
        "kde"
    }
    fn dim(&self) -> usize {
        self.bank.rows.cols()
    }
    fn score_batch(&self, queries: Embeddings<'_>) -> Result<Vec<f32>> {
        let g = f64::from(self.gamma);
        Ok(self
            .log_kernel_sum(queries)?
            .into_iter()
            .map(|l| (-l / g) as f32)
            .collect())
    }
}
