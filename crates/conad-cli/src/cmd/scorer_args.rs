//! The scorer flags of `conad score-embeddings`.
use anyhow::Result;
use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Args, ValueEnum};
use conad_scorers::{SCORERS, ScorerConfig};

/// `--scorer` values with their help, from the scorer table (`conad_scorers::SCORERS`).
fn scorer_parser() -> PossibleValuesParser {
    PossibleValuesParser::new(SCORERS.iter().map(|s| {
        PossibleValue::new(s.name)
            .help(s.summary)
            .aliases(s.aliases.iter().copied())
    }))
}

/// Which scorer and its parameters.
#[derive(Args, Debug, Clone)]
pub struct ScorerArgs {
    /// The scorer.
    #[arg(long, default_value = "knn", value_parser = scorer_parser())]
    pub scorer: String,
    /// Neighbours for knn (1 = max cosine); clusters for mahalanobis.
    #[arg(long)]
    pub k: Option<usize>,
    /// L2-normalise rows first: `on` or `off`. Default: the scorer's convention — on for knn
    /// and center (cosine: cannot be off), gaussian, mahalanobis, kde and the RBF ocsvm; off for
    /// ocsvm-linear. `--scorer ocsvm --normalize off` is scikit-learn's `OneClassSVM` on the raw
    /// features.
    #[arg(long, value_enum)]
    pub normalize: Option<Switch>,
    /// ν of the one-class SVM, in (0, 1].
    #[arg(long)]
    pub nu: Option<f64>,
    /// RBF γ with scikit-learn's convention k(x, y) = exp(−γ‖x − y‖²) (kde, ocsvm).
    #[arg(long)]
    pub gamma: Option<f32>,
    /// gaussian only: covariance = unbiased estimate + EPS·(tr Σ / d)·I instead of Ledoit–Wolf.
    #[arg(long)]
    pub ridge: Option<f64>,
}

/// An explicit on/off option.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

impl ScorerArgs {
    /// The validated scorer config.
    pub fn config(&self) -> Result<ScorerConfig> {
        let mut config = ScorerConfig::from_name(&self.scorer)?;
        if let Some(k) = self.k {
            config = config.with_k(k)?;
        }
        if let Some(switch) = self.normalize {
            config = config.with_normalize(switch == Switch::On)?;
        }
        if let Some(nu) = self.nu {
            config = config.with_nu(nu)?;
        }
        if let Some(gamma) = self.gamma {
            config = config.with_gamma(gamma)?;
        }
        if let Some(eps) = self.ridge {
            config = config.with_ridge(eps)?;
        }
        config.validate()?;
        Ok(config)
    }
}
