//! A serialisable scorer choice: [`ScorerConfig`] names a scorer and its parameters (serde,
//! tagged by `scorer`), fits to a [`FittedScorer`] (serde, so a detector file can carry it) or
//! to a `Box<dyn AnomalyScorer>`.
//!
//! TOML example:
//!
//! ```toml
//! scorer = "knn"
//! k = 5
//! norm_weighting = false
//! ```
//!
//! With the cargo feature `hnsw`, the kNN scorer can search an approximate HNSW graph instead
//! of the whole bank (`backend` defaults to `"exact"`; omitted HNSW fields take their defaults):
//!
//! ```toml
//! scorer = "knn"
//! k = 5
//! [backend.hnsw]
//! m = 16
//! ef_search = 128
//! ```
//!
//! The CLI flags `--scorer knn|gaussian|mahalanobis|kde|ocsvm|ocsvm-linear|center [--k K]
//! [--normalize on|off] [--nu NU] [--gamma G] [--ridge EPS]` map to [`ScorerConfig::from_name`]
//! and the `with_*` methods, which reject an option that does not apply to the chosen scorer.

use serde::{Deserialize, Serialize};

use crate::center::{CenterParams, CenterScorer};
use crate::embeddings::Embeddings;
use crate::error::{Error, Result};
use crate::gaussian::{GaussianParams, GaussianScorer};
use crate::kde::{KdeParams, KdeScorer};
use crate::knn::{KnnParams, KnnScorer};
use crate::mahalanobis::{MahalanobisParams, MahalanobisScorer};
use crate::ocsvm::{OcSvmKernel, OcSvmParams, OcSvmScorer};
use crate::rbf::Gamma;
use crate::traits::{AnomalyScorer, Fit};

/// Which scorer, with its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scorer", rename_all = "snake_case")]
pub enum ScorerConfig {
    /// kNN cosine ([`KnnParams`]).
    Knn(KnnParams),
    /// Gaussian likelihood S_LH ([`GaussianParams`]).
    Gaussian(GaussianParams),
    /// SSD Mahalanobis ([`MahalanobisParams`]).
    Mahalanobis(MahalanobisParams),
    /// RBF KDE ([`KdeParams`]).
    Kde(KdeParams),
    /// One-class SVM ([`OcSvmParams`]).
    Ocsvm(OcSvmParams),
    /// Centre score ([`CenterParams`]).
    Center(CenterParams),
}

impl Default for ScorerConfig {
    fn default() -> Self {
        Self::Knn(KnnParams::default())
    }
}

impl ScorerConfig {
    /// Default parameters of a scorer by name: `knn`, `gaussian`, `mahalanobis`, `kde`,
    /// `ocsvm` (= `ocsvm-rbf`), `ocsvm-linear`, `center` (also `centre`).
    ///
    /// # Errors
    /// [`Error::UnknownScorer`].
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "knn" => Self::Knn(KnnParams::default()),
            "gaussian" | "lh" => Self::Gaussian(GaussianParams::default()),
            "mahalanobis" | "ssd" => Self::Mahalanobis(MahalanobisParams::default()),
            "kde" => Self::Kde(KdeParams::default()),
            "ocsvm" | "ocsvm-rbf" => Self::Ocsvm(OcSvmParams::default()),
            "ocsvm-linear" => Self::Ocsvm(OcSvmParams::default().kernel(OcSvmKernel::Linear)),
            "center" | "centre" => Self::Center(CenterParams::default()),
            _ => return Err(Error::UnknownScorer(name.to_string())),
        })
    }

    /// The scorer's name.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Knn(_) => "knn",
            Self::Gaussian(_) => "gaussian",
            Self::Mahalanobis(_) => "mahalanobis",
            Self::Kde(_) => "kde",
            Self::Ocsvm(_) => "ocsvm",
            Self::Center(_) => "center",
        }
    }

    /// `--k K`: neighbours for `knn`; number of k-means clusters for `mahalanobis` (SSD's k).
    ///
    /// # Errors
    /// [`Error::OptionNotApplicable`] for other scorers.
    pub fn with_k(self, k: usize) -> Result<Self> {
        match self {
            Self::Knn(p) => Ok(Self::Knn(p.k(k))),
            Self::Mahalanobis(p) => Ok(Self::Mahalanobis(p.n_clusters(k))),
            other => Err(Error::OptionNotApplicable {
                option: "--k",
                scorer: other.name(),
                hint: "--k applies to knn (neighbours) and mahalanobis (clusters)",
            }),
        }
    }

    /// `--normalize`: L2-normalise features first (gaussian, mahalanobis, kde, ocsvm). Cosine
    /// scorers (knn, center) always normalise, so `true` is accepted there and `false` rejected.
    ///
    /// # Errors
    /// [`Error::OptionNotApplicable`] for `false` on knn/center.
    pub fn with_normalize(self, on: bool) -> Result<Self> {
        match self {
            Self::Gaussian(p) => Ok(Self::Gaussian(p.l2_normalize(on))),
            Self::Mahalanobis(p) => Ok(Self::Mahalanobis(p.l2_normalize(on))),
            Self::Kde(p) => Ok(Self::Kde(p.l2_normalize(on))),
            Self::Ocsvm(p) => Ok(Self::Ocsvm(p.l2_normalize(on))),
            s @ (Self::Knn(_) | Self::Center(_)) if on => Ok(s),
            other => Err(Error::OptionNotApplicable {
                option: "--normalize",
                scorer: other.name(),
                hint: "cosine scorers always L2-normalise; turning it off is not possible",
            }),
        }
    }

    /// Whether the scorer L2-normalises rows before scoring (its default resolved).
    pub fn l2_normalizes(&self) -> bool {
        match self {
            Self::Knn(_) | Self::Center(_) => true,
            Self::Gaussian(p) => p.unchecked().l2_normalize(),
            Self::Mahalanobis(p) => p.unchecked().l2_normalize(),
            Self::Kde(p) => p.unchecked().l2_normalize(),
            Self::Ocsvm(p) => p.unchecked().l2_normalize(),
        }
    }

    /// `--ridge EPS`: the gaussian scorer's covariance as the unbiased estimate plus
    /// `EPS·(tr Σ / d)·I` instead of Ledoit–Wolf shrinkage.
    ///
    /// # Errors
    /// [`Error::OptionNotApplicable`] for other scorers.
    pub fn with_ridge(self, epsilon: f64) -> Result<Self> {
        match self {
            Self::Gaussian(p) => Ok(Self::Gaussian(
                p.covariance(crate::gaussian::GaussianCovariance::Ridge { epsilon }),
            )),
            other => Err(Error::OptionNotApplicable {
                option: "--ridge",
                scorer: other.name(),
                hint: "--ridge applies to the gaussian scorer only",
            }),
        }
    }

    /// `--nu NU` for the one-class SVM.
    ///
    /// # Errors
    /// [`Error::OptionNotApplicable`] for other scorers (ν itself is checked at fit time).
    pub fn with_nu(self, nu: f64) -> Result<Self> {
        match self {
            Self::Ocsvm(p) => Ok(Self::Ocsvm(p.nu(nu))),
            other => Err(Error::OptionNotApplicable {
                option: "--nu",
                scorer: other.name(),
                hint: "--nu applies to ocsvm only",
            }),
        }
    }

    /// `--gamma G` (scikit-learn's `k(x,y) = exp(−γ‖x−y‖²)`) for kde and the RBF one-class SVM.
    ///
    /// # Errors
    /// [`Error::OptionNotApplicable`] for other scorers or a linear SVM.
    pub fn with_gamma(self, gamma: f32) -> Result<Self> {
        let g = Gamma::Value { value: gamma };
        match self {
            Self::Kde(p) => Ok(Self::Kde(p.gamma(g))),
            Self::Ocsvm(p) if matches!(p.current_kernel(), OcSvmKernel::Rbf { .. }) => {
                Ok(Self::Ocsvm(p.kernel(OcSvmKernel::Rbf { gamma: g })))
            }
            other => Err(Error::OptionNotApplicable {
                option: "--gamma",
                scorer: other.name(),
                hint: "--gamma applies to kde and the RBF ocsvm",
            }),
        }
    }

    /// Validates the parameters.
    ///
    /// # Errors
    /// The scorer's typed validation error.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Knn(p) => p.validate(),
            Self::Gaussian(p) => p.validate(),
            Self::Mahalanobis(p) => p.validate(),
            Self::Kde(p) => p.validate(),
            Self::Ocsvm(p) => p.validate(),
            Self::Center(p) => p.validate(),
        }
    }

    /// Fits and returns a trait object.
    ///
    /// # Errors
    /// As [`Fit::fit`].
    pub fn fit_boxed(&self, train: Embeddings<'_>) -> Result<Box<dyn AnomalyScorer>> {
        Ok(Box::new(self.fit(train)?))
    }
}

impl Fit for ScorerConfig {
    type Fitted = FittedScorer;

    fn fit(&self, train: Embeddings<'_>) -> Result<FittedScorer> {
        Ok(match self {
            Self::Knn(p) => FittedScorer::Knn(p.fit(train)?),
            Self::Gaussian(p) => FittedScorer::Gaussian(p.fit(train)?),
            Self::Mahalanobis(p) => FittedScorer::Mahalanobis(p.fit(train)?),
            Self::Kde(p) => FittedScorer::Kde(p.fit(train)?),
            Self::Ocsvm(p) => FittedScorer::Ocsvm(p.fit(train)?),
            Self::Center(p) => FittedScorer::Center(p.fit(train)?),
        })
    }
}

/// Any fitted scorer (serde, tagged by `scorer`), for detector files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scorer", rename_all = "snake_case")]
pub enum FittedScorer {
    /// kNN cosine.
    Knn(KnnScorer),
    /// Gaussian S_LH.
    Gaussian(GaussianScorer),
    /// SSD Mahalanobis.
    Mahalanobis(MahalanobisScorer),
    /// RBF KDE.
    Kde(KdeScorer),
    /// One-class SVM.
    Ocsvm(OcSvmScorer),
    /// Centre score.
    Center(CenterScorer),
}

impl FittedScorer {
    fn inner(&self) -> &dyn AnomalyScorer {
        match self {
            Self::Knn(s) => s,
            Self::Gaussian(s) => s,
            Self::Mahalanobis(s) => s,
            Self::Kde(s) => s,
            Self::Ocsvm(s) => s,
            Self::Center(s) => s,
        }
    }
}

impl AnomalyScorer for FittedScorer {
    fn name(&self) -> &'static str {
        self.inner().name()
    }
    fn dim(&self) -> usize {
        self.inner().dim()
    }
    fn score_batch(&self, queries: Embeddings<'_>) -> Result<Vec<f32>> {
        self.inner().score_batch(queries)
    }
    fn score(&self, query: &[f32]) -> Result<f32> {
        self.inner().score(query)
    }
}
