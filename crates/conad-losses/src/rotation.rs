//! Rotation-prediction cross-entropy (RotNet / "Rot. Pred.", docs/reference.md §1.9; also CSI's
//! L_cls-SI, §1.3, and MIL-Conv's L_Rot, §1.8): a linear head on the encoder feature predicts
//! which of `K` shifts (rotations 0°, 90°, 180°, 270°) was applied;
//! `L = −(1/M) Σ_m log softmax(logits_m)_{y_m}`.
//!
//! Shift labels of a shift-expanded batch are block-major ([`shift_labels`]): with `n` images
//! and `K` shifts, rows `[k·n, (k+1)·n)` carry label `k`, repeated for every view (docs/reference.md §1.3
//! step 3).

use candle_core::{D, Tensor};
use serde::{Deserialize, Serialize};

use crate::checks::{label_count, matrix, upload};
use crate::error::{Error, Result};
use crate::info_nce::ensure_finite;

/// Configuration of [`RotationCe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RotationCeConfig {
    /// Number of shift classes `K` (4 rotations).
    pub n_classes: usize,
}

impl Default for RotationCeConfig {
    fn default() -> Self {
        Self { n_classes: 4 }
    }
}

impl RotationCeConfig {
    /// Checks `n_classes ≥ 2`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        if self.n_classes >= 2 {
            Ok(())
        } else {
            Err(Error::invalid(
                "n_classes",
                self.n_classes,
                "a classification needs at least 2 classes (4 rotations)",
            ))
        }
    }
}

/// Block-major shift labels: `n_views` repetitions of `[0;n] ++ [1;n] ++ … ++ [K−1;n]`.
pub fn shift_labels(n_images: usize, n_shifts: usize, n_views: usize) -> Vec<u32> {
    (0..n_views * n_shifts * n_images)
        .map(|r| ((r % (n_shifts * n_images)) / n_images.max(1)) as u32)
        .collect()
}

/// The rotation cross-entropy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationCe {
    config: RotationCeConfig,
}

impl RotationCe {
    /// A validated loss.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn new(config: RotationCeConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The config.
    pub fn config(&self) -> &RotationCeConfig {
        &self.config
    }

    /// Mean cross-entropy of `logits` against `labels`.
    ///
    /// # Shapes
    /// `logits`: `M × K`, `labels`: `M` → scalar.
    ///
    /// # Errors
    /// [`Error::Shape`] for an empty batch or `K != n_classes`; [`Error::LabelCount`];
    /// [`Error::LabelRange`] for a label ≥ K; [`Error::NonFiniteLoss`] for NaN/∞ logits.
    pub fn forward(&self, logits: &Tensor, labels: &[u32]) -> Result<Tensor> {
        let (m, k) = matrix(logits, "shift logits")?;
        if k != self.config.n_classes {
            return Err(Error::Shape {
                what: "shift logits",
                got: logits.dims().to_vec(),
                expected: format!("M × {} (n_classes)", self.config.n_classes),
            });
        }
        label_count("shift labels", labels.len(), m)?;
        let mut one_hot = vec![0.0; m * k];
        for (i, &y) in labels.iter().enumerate() {
            if y as usize >= k {
                return Err(Error::LabelRange {
                    index: i,
                    value: i64::from(y),
                    classes: k,
                });
            }
            one_hot[i * k + y as usize] = 1.0;
        }
        // log softmax with the (detached) row max subtracted.
        let max = logits.detach().max_keepdim(D::Minus1)?;
        let shifted = logits.broadcast_sub(&max)?;
        let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
        let log_p = shifted.broadcast_sub(&lse)?;
        let picked = (log_p * upload(one_hot, (m, k), logits)?)?.sum_all()?;
        ensure_finite("rotation cross-entropy", (picked / -(m as f64))?)
    }

    /// Fraction of rows whose arg-max equals the label (a diagnostic, not differentiable).
    ///
    /// # Errors
    /// As [`RotationCe::forward`].
    pub fn accuracy(&self, logits: &Tensor, labels: &[u32]) -> Result<f64> {
        let (m, _) = matrix(logits, "shift logits")?;
        label_count("shift labels", labels.len(), m)?;
        let pred = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
        let hits = pred.iter().zip(labels).filter(|(p, y)| p == y).count();
        Ok(hits as f64 / m as f64)
    }
}
