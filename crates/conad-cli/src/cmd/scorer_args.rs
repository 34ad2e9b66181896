//! The scorer flags shared by `conad score-embeddings` and `conad eval`.
use anyhow::Result;
use clap::{Args, ValueEnum};
use conad_scorers::ScorerConfig;

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ScorerName {
    /// Mean cosine similarity to the k nearest training embeddings (anomaly = 1 − similarity).
    Knn,
    /// Gaussian likelihood with Ledoit–Wolf shrinkage (S_LH, anomaly = −log-density).
    Gaussian,
    /// SSD: Mahalanobis distance to the nearest of k k-means clusters.
    Mahalanobis,
    /// Kernel density with an RBF kernel (anomaly = −log-density).
    Kde,
    /// One-class SVM with an RBF kernel (anomaly = −decision function).
    Ocsvm,
    /// One-class SVM with a linear kernel.
    OcsvmLinear,
    /// Cosine distance to the mean training embedding.
    Center,
}

impl ScorerName {
    pub const fn config_name(self) -> &'static str {
        match self {
            Self::Knn => "knn",
            Self::Gaussian => "gaussian",
            Self::Mahalanobis => "mahalanobis",
            Self::Kde => "kde",
            Self::Ocsvm => "ocsvm",
            Self::OcsvmLinear => "ocsvm-linear",
            Self::Center => "center",
        }
    }
}

/// Which scorer and its parameters.
#[derive(Args, Debug, Clone)]
pub struct ScorerArgs {
    /// The scorer.
    #[arg(long, value_enum, default_value_t = ScorerName::Knn)]
    pub scorer: ScorerName,
    /// Neighbours for knn (1 = max cosine); clusters for mahalanobis.
    #[arg(long)]
    pub k: Option<usize>,
    /// L2-normalise rows first (cosine scorers always do).
    #[arg(long)]
    pub normalize: bool,
    /// ν of the one-class SVM, in (0, 1].
    #[arg(long)]
    pub nu: Option<f64>,
    /// RBF γ with scikit-learn's convention k(x, y) = exp(−γ‖x − y‖²) (kde, ocsvm).
    #[arg(long)]
    pub gamma: Option<f32>,
}

impl ScorerArgs {
    /// The validated scorer config.
    pub fn config(&self) -> Result<ScorerConfig> {
        let mut config = ScorerConfig::from_name(self.scorer.config_name())?;
        if let Some(k) = self.k {
            config = config.with_k(k)?;
        }
        if self.normalize {
            config = config.with_normalize(true)?;
        }
        if let Some(nu) = self.nu {
            config = config.with_nu(nu)?;
        }
        if let Some(gamma) = self.gamma {
            config = config.with_gamma(gamma)?;
        }
        config.validate()?;
        Ok(config)
    }
}
