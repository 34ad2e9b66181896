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

/// One registered scorer: its name (command line, TOML, reports), aliases, what it computes and
/// its default parameters.
#[derive(Debug)]
pub struct ScorerInfo {
    /// Canonical name.
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// One line for `--help`.
    pub summary: &'static str,
    /// The default config.
    pub default: fn() -> ScorerConfig,
}

/// Every scorer, one line each: [`ScorerConfig::from_name`], [`ScorerConfig::name`], the CLI's
/// `--scorer` values and their help all come from this table (a test walks it).
pub const SCORERS: &[ScorerInfo] = &[
    ScorerInfo {
        name: "knn",
        aliases: &[],
        summary: "mean cosine similarity to the k nearest training embeddings (anomaly = 1 − similarity)",
        default: || ScorerConfig::Knn(KnnParams::default()),
    },
    ScorerInfo {
        name: "gaussian",
        aliases: &["lh"],
        summary: "Gaussian likelihood with Ledoit–Wolf shrinkage, S_LH (anomaly = −log-density)",
        default: || ScorerConfig::Gaussian(GaussianParams::default()),
    },
    ScorerInfo {
        name: "mahalanobis",
        aliases: &["ssd"],
        summary: "SSD: Mahalanobis distance to the nearest of k k-means clusters",
        default: || ScorerConfig::Mahalanobis(MahalanobisParams::default()),
    },
    ScorerInfo {
        name: "kde",
        aliases: &[],
        summary: "kernel density with an RBF kernel (anomaly = −log-density)",
        default: || ScorerConfig::Kde(KdeParams::default()),
    },
    ScorerInfo {
        name: "ocsvm",
        aliases: &["ocsvm-rbf"],
        summary: "one-class SVM with an RBF kernel (anomaly = −decision function)",
        default: || ScorerConfig::Ocsvm(OcSvmParams::default()),
    },
    ScorerInfo {
        name: "ocsvm-linear",
        aliases: &[],
        summary: "one-class SVM with a linear kernel (anomaly = −decision function)",
        default: || ScorerConfig::Ocsvm(OcSvmParams::default().kernel(OcSvmKernel::Linear)),
    },
    ScorerInfo {
        name: "ocsvm-sigmoid",
        aliases: &[],
        summary: "one-class SVM with a sigmoid kernel tanh(γ x·y), γ \"scale\" (KE's scorer; anomaly = −decision function)",
        default: || {
            ScorerConfig::Ocsvm(OcSvmParams::default().kernel(OcSvmKernel::Sigmoid {
                gamma: Gamma::Scale,
                coef0: 0.0,
            }))
        },
    },
    ScorerInfo {
        name: "center",
        aliases: &["centre"],
        summary: "cosine distance to the mean training embedding",
        default: || ScorerConfig::Center(CenterParams::default()),
    },
];

/// The canonical names of [`SCORERS`].
pub fn scorer_names() -> Vec<&'static str> {
    SCORERS.iter().map(|s| s.name).collect()
}

impl Default for ScorerConfig {
    fn default() -> Self {
        Self::Knn(KnnParams::default())
    }
}

impl ScorerConfig {
    /// Default parameters of a scorer by name or alias ([`SCORERS`], case-insensitive).
    ///
    /// # Errors
    /// [`Error::UnknownScorer`] listing the names.
    pub fn from_name(name: &str) -> Result<Self> {
        let wanted = name.to_ascii_lowercase();
        SCORERS
            .iter()
            .find(|s| s.name == wanted || s.aliases.contains(&wanted.as_str()))
            .map(|s| (s.default)())
            .ok_or_else(|| Error::UnknownScorer {
                name: name.to_string(),
                valid: scorer_names(),
            })
    }

    /// The scorer's name: the first [`SCORERS`] entry of its kind (`ocsvm` for both kernels).
    pub fn name(&self) -> &'static str {
        let kind = std::mem::discriminant(self);
        SCORERS
            .iter()
            .find(|s| std::mem::discriminant(&(s.default)()) == kind)
            .map_or("unregistered", |s| s.name)
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
            Self::Ocsvm(p) => match p.current_kernel() {
                OcSvmKernel::Rbf { .. } => Ok(Self::Ocsvm(p.kernel(OcSvmKernel::Rbf { gamma: g }))),
                OcSvmKernel::Sigmoid { coef0, .. } => Ok(Self::Ocsvm(
                    p.kernel(OcSvmKernel::Sigmoid { gamma: g, coef0 }),
                )),
                OcSvmKernel::Linear => Err(Error::OptionNotApplicable {
                    option: "--gamma",
                    scorer: "ocsvm-linear",
                    hint: "--gamma applies to kde and the RBF or sigmoid ocsvm",
                }),
            },
            other => Err(Error::OptionNotApplicable {
                option: "--gamma",
                scorer: other.name(),
                hint: "--gamma applies to kde and the RBF or sigmoid ocsvm",
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
