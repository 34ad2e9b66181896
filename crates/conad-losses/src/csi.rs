//! CSI: contrasting shifted instances (Tack et al. 2020, <https://arxiv.org/abs/2007.08176>,
//! L_con-SI, L_cls-SI and L_CSI of §2.1; alinlab/CSI `simclr_CSI` mode; docs/reference.md §1.3).
//!
//! **Layout** (view-major over a shift-expanded batch): `N` images, `K` shifts (4 rotations),
//! two views → `2·K·N` rows
//! `[view 1: shift 0 of images 0..N, shift 1, …, shift K−1 ; view 2: same order]`.
//! Row `r` is instance `r mod K·N` (image × shift), its shift label is `(r mod K·N) / N`.
//!
//! * **L_con-SI**: NT-Xent over all `2KN` normalised projections, τ = 0.5 (hard-coded in CSI):
//!   the positive of row `r` is `r ± KN` (same image, same shift, other view); every other shift
//!   of the same image is a negative; the denominator holds the `2KN − 1` other rows; mean over
//!   all `2KN` anchors.
//! * **L_cls-SI**: cross-entropy of the shift head's logits against the shift label, mean over
//!   the `2KN` rows ([`crate::RotationCe`]).
//! * **Total** `= L_con-SI + λ·L_cls-SI` with λ = 1 (CSI asserts `sim_lambda = 1`).
//!
//! With `K = 1` and λ = 0 this is SimCLR's NT-Xent (CSI's SimCLR baseline).

use candle_core::Tensor;
use conad_kernels::{PositiveRule, RowIds};
use serde::{Deserialize, Serialize};

use crate::backend::{InfoNceBackend, contrast_set_loss};
use crate::checks::{matrix, weight};
use crate::error::{Error, Result, check_temperature};
use crate::info_nce::ensure_finite;
use crate::rotation::{RotationCe, RotationCeConfig, shift_labels};

/// Configuration of [`Csi`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsiConfig {
    /// Temperature of L_con-SI (CSI hard-codes 0.5).
    pub temperature: f64,
    /// λ, the weight of L_cls-SI (1 in CSI).
    pub shift_weight: f64,
    /// Number of shifting transforms `K` including the identity (4 rotations).
    pub n_shifts: usize,
    /// Compute path of L_con-SI.
    pub backend: InfoNceBackend,
}

impl Default for CsiConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            shift_weight: 1.0,
            n_shifts: 4,
            backend: InfoNceBackend::Composed,
        }
    }
}

impl CsiConfig {
    /// Checks τ, λ and `K ≥ 1`.
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`], [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        check_temperature("temperature", self.temperature)?;
        weight("shift_weight", self.shift_weight)?;
        if self.n_shifts == 0 {
            return Err(Error::invalid(
                "n_shifts",
                "0",
                "at least the identity shift (1); CSI uses 4 rotations",
            ));
        }
        Ok(())
    }
}

/// The parts of the CSI objective.
#[derive(Clone, Debug)]
pub struct CsiParts {
    /// `L_con-SI + λ·L_cls-SI` (differentiable scalar).
    pub loss: Tensor,
    /// L_con-SI (scalar).
    pub con_si: Tensor,
    /// L_cls-SI (scalar).
    pub cls_si: Tensor,
    /// Shift-classification accuracy of the batch (diagnostic).
    pub shift_accuracy: f64,
}

/// The CSI objective.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Csi {
    config: CsiConfig,
}

impl Csi {
    /// A validated objective.
    ///
    /// # Errors
    /// As [`CsiConfig::validate`].
    pub fn new(config: CsiConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The config.
    pub fn config(&self) -> &CsiConfig {
        &self.config
    }

    /// Instance ids of the `2KN` rows (row `r` → `r mod KN`).
    pub fn row_ids(&self, n_images: usize) -> RowIds {
        RowIds::view_major(self.config.n_shifts * n_images, 2)
    }

    /// Shift labels of the `2KN` rows.
    pub fn shift_labels(&self, n_images: usize) -> Vec<u32> {
        shift_labels(n_images, self.config.n_shifts, 2)
    }

    /// The total loss (see [`Csi::forward_parts`]).
    ///
    /// # Errors
    /// As [`Csi::forward_parts`].
    pub fn forward(&self, z: &Tensor, shift_logits: &Tensor) -> Result<Tensor> {
        Ok(self.forward_parts(z, shift_logits)?.loss)
    }

    /// L_con-SI, L_cls-SI and their sum.
    ///
    /// # Shapes
    /// `z`: `2KN × d` L2-normalised projections in the layout of the module docs;
    /// `shift_logits`: `2KN × K` (shift head on the same rows) → scalars.
    ///
    /// # Errors
    /// [`Error::Shape`] if the rows are not a positive multiple of `2K` or the two inputs
    /// disagree; [`Error::NonFiniteLoss`] for NaN/∞ inputs; [`Error::Kernel`] from the fused path.
    pub fn forward_parts(&self, z: &Tensor, shift_logits: &Tensor) -> Result<CsiParts> {
        let (rows, _) = matrix(z, "projections")?;
        let k = self.config.n_shifts;
        if rows % (2 * k) != 0 {
            return Err(Error::Shape {
                what: "projections",
                got: z.dims().to_vec(),
                expected: format!(
                    "2·K·N × d rows with K = {k} shifts (a multiple of {})",
                    2 * k
                ),
            });
        }
        let (lrows, _) = matrix(shift_logits, "shift logits")?;
        if lrows != rows {
            return Err(Error::Shape {
                what: "shift logits",
                got: shift_logits.dims().to_vec(),
                expected: format!("{rows} × {k} (one row per projection)"),
            });
        }
        let n = rows / (2 * k);
        let con_si = contrast_set_loss(
            z,
            &self.row_ids(n),
            PositiveRule::SameInstance,
            self.config.temperature,
            self.config.backend,
        )?;
        let ce = RotationCe::new(RotationCeConfig {
            n_classes: k.max(2),
        })?;
        let labels = self.shift_labels(n);
        let (cls_si, shift_accuracy) = if k >= 2 {
            (
                ce.forward(shift_logits, &labels)?,
                ce.accuracy(shift_logits, &labels)?,
            )
        } else {
            // K = 1 (SimCLR): no shift to classify.
            (con_si.zeros_like()?, 1.0)
        };
        let loss = ensure_finite("CSI", (&con_si + (&cls_si * self.config.shift_weight)?)?)?;
        Ok(CsiParts {
            loss,
            con_si,
            cls_si,
            shift_accuracy,
        })
    }
}
