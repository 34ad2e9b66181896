//! NT-Xent / SimCLR loss (Chen et al. 2020, <https://arxiv.org/abs/2002.05709>; docs/reference.md §1.1) on
//! the generic kernel.
//!
//! * [`NtXentVariant::Symmetric`]: the 2N×2N form of SimCLR, CSI `NT_xent`, HobbitLong
//!   `SupConLoss(labels=None)`, MSC and FIRM `NTXentLossv2`: all 2N rows are anchors, the
//!   positive of row `i` is row `(i + N) mod 2N`, the denominator holds the 2N − 1 other rows;
//!   `loss = (1/2N) Σ_i ℓ_i`.
//! * [`NtXentVariant::Pairwise`]: FIRM's `NTXentLoss` (its NT-Xent baseline): logits
//!   `z¹ z²ᵀ / τ` (N×N), anchors are the view-1 rows, keys all N view-2 rows (positive on the
//!   diagonal), `loss = (1/N) Σ_i ℓ_i` — one-directional.
//!
//! Inputs are L2-normalised projections (see [`crate::l2_normalize`]).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, check_temperature};
use crate::info_nce::{EmptyAnchors, InfoNceConfig, PositiveReduction, ensure_finite, info_nce};
use crate::masks::{AnchorViews, ContrastMasks};

/// Which NT-Xent formulation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NtXentVariant {
    /// 2N×2N, both views are anchors (SimCLR).
    #[default]
    Symmetric,
    /// N×N view-1 anchors against view-2 keys (FIRM `NTXentLoss`).
    Pairwise,
}

/// Configuration of [`NtXent`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NtXentConfig {
    /// Temperature τ (SimCLR/CSI 0.5, MSC 0.25, FIRM 0.2).
    pub temperature: f64,
    /// Formulation.
    pub variant: NtXentVariant,
}

impl Default for NtXentConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            variant: NtXentVariant::Symmetric,
        }
    }
}

impl NtXentConfig {
    /// Checks the temperature.
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`].
    pub fn validate(&self) -> Result<()> {
        check_temperature("temperature", self.temperature)
    }
}

/// The NT-Xent loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NtXent {
    config: NtXentConfig,
}

impl NtXent {
    /// A validated loss.
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`].
    pub fn new(config: NtXentConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The config.
    pub fn config(&self) -> &NtXentConfig {
        &self.config
    }

    /// Loss of two views `z1`, `z2` (row `i` of each is image `i`).
    ///
    /// # Shapes
    /// `z1`, `z2`: `N × d` (L2-normalised) → scalar.
    ///
    /// # Errors
    /// [`Error::Shape`] if the views differ in shape or are not `N × d` with N ≥ 1 (the symmetric
    /// variant needs N ≥ 1, giving one negative-free denominator when N = 1);
    /// [`Error::NonFiniteLoss`] for NaN/inf inputs.
    pub fn forward(&self, z1: &Tensor, z2: &Tensor) -> Result<Tensor> {
        if z1.rank() != 2 || z1.dims() != z2.dims() || z1.dim(0)? == 0 {
            return Err(Error::Shape {
                what: "views",
                got: [z1.dims(), z2.dims()].concat(),
                expected: "two N × d tensors of the same shape, N ≥ 1".into(),
            });
        }
        let n = z1.dim(0)?;
        let kernel = InfoNceConfig {
            temperature: self.config.temperature,
            reduction: PositiveReduction::MeanLogProb,
            empty_anchors: EmptyAnchors::CountAsZero,
        };
        let loss = match self.config.variant {
            NtXentVariant::Symmetric => {
                let z = Tensor::cat(&[z1, z2], 0)?;
                let masks = ContrastMasks::instance_discrimination(n, 2, AnchorViews::All);
                info_nce(&z, &z, &masks, &kernel)?
            }
            NtXentVariant::Pairwise => {
                info_nce(z1, z2, &ContrastMasks::pairwise_diagonal(n), &kernel)?
            }
        };
        ensure_finite("NT-Xent", loss)
    }
}
