//! Mean-Shifted Contrastive loss (Reiss & Hoshen 2023, "Mean-Shifted Contrastive Loss for
//! Anomaly Detection"; talreiss/Mean-Shifted-Anomaly-Detection; docs/reference.md §1.8, §6.18),
//! MIL-Conv's `L_Mean`.
//!
//! With L2-normalised features `f` and a fixed centre `c` (the L2-normalised mean of the
//! normalised training features, [`msc_center`], computed once and kept fixed):
//!
//! * **contrastive term**: NT-Xent (2N×2N, diagonal removed, mean over 2N, τ = 0.25) on the
//!   re-centred features `f̃ = (f − c)/‖f − c‖`; positives = the other view of the same instance.
//!   For MIL-Conv pass CSI's 8N shifted views as `f1` = view 1 (4N rows), `f2` = view 2: the
//!   positive of row `r` is then `r ± 4N` and other rotations are negatives (docs/reference.md §1.8).
//! * **centre term** ([`CenterTerm`]), weight 1: MSC's angular loss
//!   `mean_i ‖f¹_i − c‖² + mean_i ‖f²_i − c‖²` (= `4 − 4·mean f·c` over the 2N unit rows;
//!   [`CenterTerm::SquaredDistance`], MSC's default) or MIL-Conv's eq. 7 term `−f(x)ᵀ f̄` averaged
//!   over the 2N anchors ([`CenterTerm::InnerProduct`]; a quarter of MSC's gradient).
//!
//! Without a centre (`None`; MIL-Conv's first 15 epochs, §6.18) the loss is the plain NT-Xent
//! and the angular term is omitted.

use candle_core::{D, Tensor};
use conad_kernels::{PositiveRule, RowIds};
use serde::{Deserialize, Serialize};

use crate::backend::{InfoNceBackend, contrast_set_loss};
use crate::checks::{matrix, two_views, weight};
use crate::error::{Error, Result, check_temperature};
use crate::info_nce::ensure_finite;
use crate::normalize::{L2_EPS, l2_normalize};

/// The form of the centre term (docs/reference.md §1.8, §6.18).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CenterTerm {
    /// MSC's angular loss `mean ‖f¹ − c‖² + mean ‖f² − c‖²` (talreiss/Mean-Shifted-Anomaly-Detection).
    #[default]
    SquaredDistance,
    /// MIL-Conv eq. 7: `−mean_{2N rows} f·c`.
    InnerProduct,
}

/// Configuration of [`Msc`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MscConfig {
    /// τ of the contrastive term (0.25 in MSC; CSI's 0.5 in MIL-Conv's L_Mean).
    pub temperature: f64,
    /// Weight of the centre term (1).
    pub center_weight: f64,
    /// Form of the centre term.
    pub center_term: CenterTerm,
    /// Compute path of the contrastive term.
    pub backend: InfoNceBackend,
}

impl Default for MscConfig {
    fn default() -> Self {
        Self {
            temperature: 0.25,
            center_weight: 1.0,
            center_term: CenterTerm::SquaredDistance,
            backend: InfoNceBackend::Composed,
        }
    }
}

impl MscConfig {
    /// Checks τ and the weight.
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`], [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        check_temperature("temperature", self.temperature)?;
        weight("center_weight", self.center_weight)
    }
}

/// The centre `c = normalise(mean_i normalise(f_i))` of a feature bank, shape `d` (no gradient).
///
/// # Shapes
/// `features`: `N × d` → `d`.
///
/// # Errors
/// [`Error::Shape`] for an empty bank; [`Error::NonFiniteLoss`] for NaN/∞ features.
pub fn msc_center(features: &Tensor) -> Result<Tensor> {
    matrix(features, "features")?;
    let f = l2_normalize(&features.detach(), L2_EPS)?;
    let c = l2_normalize(&f.mean_keepdim(0)?, L2_EPS)?;
    ensure_finite("MSC centre", c.sum_all()?)?;
    Ok(c.squeeze(0)?)
}

/// The parts of an MSC evaluation.
#[derive(Clone, Debug)]
pub struct MscParts {
    /// `contrastive + center_weight·angular`.
    pub loss: Tensor,
    /// NT-Xent on the re-centred features.
    pub contrastive: Tensor,
    /// Angular centre term (0 without a centre).
    pub angular: Tensor,
}

/// The MSC loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Msc {
    config: MscConfig,
}

impl Msc {
    /// A validated loss.
    ///
    /// # Errors
    /// As [`MscConfig::validate`].
    pub fn new(config: MscConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The config.
    pub fn config(&self) -> &MscConfig {
        &self.config
    }

    /// The loss (see [`Msc::forward_parts`]).
    ///
    /// # Errors
    /// As [`Msc::forward_parts`].
    pub fn forward(&self, f1: &Tensor, f2: &Tensor, center: Option<&Tensor>) -> Result<Tensor> {
        Ok(self.forward_parts(f1, f2, center)?.loss)
    }

    /// Contrastive and angular terms of two views.
    ///
    /// # Shapes
    /// `f1`, `f2`: `N × d` L2-normalised features; `center`: `d` or `1 × d` (treated as a
    /// constant) → scalars.
    ///
    /// # Errors
    /// [`Error::Shape`] for mismatched views or centre; [`Error::NonFiniteLoss`];
    /// [`Error::Kernel`].
    pub fn forward_parts(
        &self,
        f1: &Tensor,
        f2: &Tensor,
        center: Option<&Tensor>,
    ) -> Result<MscParts> {
        let (n, d) = two_views(f1, f2)?;
        let f = Tensor::cat(&[f1, f2], 0)?;
        let (shifted, angular) = match center {
            None => (f, f1.zeros_like()?.sum_all()?),
            Some(c) => {
                if c.elem_count() != d || c.rank() > 2 {
                    return Err(Error::Shape {
                        what: "centre",
                        got: c.dims().to_vec(),
                        expected: format!("{d} or 1 × {d}"),
                    });
                }
                let c = c.detach().reshape((1, d))?.to_dtype(f.dtype())?;
                let diff = f.broadcast_sub(&c)?;
                let angular = match self.config.center_term {
                    // mean over view 1 + mean over view 2 = 2 · mean over all 2N rows.
                    CenterTerm::SquaredDistance => (diff.sqr()?.sum(D::Minus1)?.mean_all()? * 2.0)?,
                    CenterTerm::InnerProduct => {
                        f.broadcast_mul(&c)?.sum(D::Minus1)?.mean_all()?.neg()?
                    }
                };
                (l2_normalize(&diff, L2_EPS)?, angular)
            }
        };
        let contrastive = contrast_set_loss(
            &shifted,
            &RowIds::view_major(n, 2),
            PositiveRule::SameInstance,
            self.config.temperature,
            self.config.backend,
        )?;
        let loss = ensure_finite(
            "MSC",
            (&contrastive + (&angular * self.config.center_weight)?)?,
        )?;
        Ok(MscParts {
            loss,
            contrastive,
            angular,
        })
    }
}
