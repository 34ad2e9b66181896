//! FIRM — Focused In-distribution Representation Modeling ("Learning In-Distribution
//! Representations for Anomaly Detection", eq. 2 (NT-Xent eq. 1); Willtl/firm `FIRMLoss` /
//! `FIRMLossv2`; docs/reference.md §1.6, §6.9–6.10).
//!
//! A batch holds `N` items, each an inlier with class label `y ≥ 0` or a synthetic outlier
//! (shifted copy, OE image) with label `y < 0` (−1), and two views `z¹, z²` of every item.
//!
//! * [`FirmVariant::Pairwise`] (`FIRMLoss`, used for the paper's numbers, docs/reference.md §6.9):
//!   logits `z¹ z²ᵀ / τ` (N×N), view-1 rows are the anchors, all N view-2 rows the keys (no
//!   self-pair exists). Inlier anchor `i`: uniform target over the inlier keys of its class,
//!   **including `j = i`** (its own second view); outlier anchor: one-hot on `j = i`.
//!   `loss = −(1/N) Σ_i Σ_j p_ij log q_ij` — `L_out` with view-1 anchors only.
//! * [`FirmVariant::Concat`] (`FIRMLossv2`, the package default): 2N×2N on `[z¹; z²]`, the anchor
//!   excluded from its positives and denominator; inlier rows: positives = all other rows of
//!   inliers of the same class (own other view included); outlier rows: positive = the paired
//!   row `i ± N` only; mean over 2N rows. With one inlier class and τ = 0.5 this is UniCon-HA's
//!   UniCLR ([`crate::UniClr`]).
//!
//! Golden mask (docs/reference.md §1.6): labels `[1, 2, 2, −1, −1]` → concat row 0 has its only positive
//! at column 5; rows 1, 2 are positives of each other and of columns 6, 7; rows 3, 4 only at 8,
//! 9; the lower half mirrors this.

use candle_core::Tensor;
use conad_kernels::{Denominator, MaskRules, PositiveRule, RowIds};
use serde::{Deserialize, Serialize};

use crate::backend::{InfoNceBackend, anchor_key_loss, contrast_set_loss};
use crate::checks::{label_count, two_views};
use crate::error::{Result, check_temperature};
use crate::info_nce::ensure_finite;
use crate::masks::ContrastMasks;

/// Which FIRM loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirmVariant {
    /// N×N, view-1 anchors (`FIRMLoss`; reproduction default).
    #[default]
    Pairwise,
    /// 2N×2N, all rows anchors (`FIRMLossv2`).
    Concat,
}

/// Configuration of [`Firm`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FirmConfig {
    /// Temperature (0.2; 0.5 for unlabeled multi-class CIFAR-10).
    pub temperature: f64,
    /// Loss variant.
    pub variant: FirmVariant,
    /// Compute path.
    pub backend: InfoNceBackend,
}

impl Default for FirmConfig {
    fn default() -> Self {
        Self {
            temperature: 0.2,
            variant: FirmVariant::Pairwise,
            backend: InfoNceBackend::Composed,
        }
    }
}

impl FirmConfig {
    /// Checks τ.
    ///
    /// # Errors
    /// [`crate::Error::InvalidTemperature`].
    pub fn validate(&self) -> Result<()> {
        check_temperature("temperature", self.temperature)
    }
}

/// The positive rule of FIRM and UniCLR: same instance, or same inlier class (label ≥ 0).
pub(crate) const FIRM_RULES: MaskRules = MaskRules {
    positives: PositiveRule::SameInstanceOrInlierLabel,
    denominator: Denominator::AllOthers,
};

/// Row ids of the pairwise form: instance `i`, label `labels[i]`.
pub(crate) fn pairwise_ids(labels: &[i64]) -> Result<RowIds> {
    Ok(RowIds::with_labels(
        (0..labels.len() as i64).collect(),
        labels.to_vec(),
    )?)
}

/// The FIRM loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Firm {
    config: FirmConfig,
}

impl Firm {
    /// A validated loss.
    ///
    /// # Errors
    /// As [`FirmConfig::validate`].
    pub fn new(config: FirmConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The config.
    pub fn config(&self) -> &FirmConfig {
        &self.config
    }

    /// The pairwise masks (N view-1 anchors × N view-2 keys).
    ///
    /// # Errors
    /// [`crate::Error::LabelCount`] for no labels.
    pub fn pairwise_masks(labels: &[i64]) -> Result<ContrastMasks> {
        let ids = pairwise_ids(labels)?;
        ContrastMasks::from_rules_qk(&ids, &ids, &FIRM_RULES)
    }

    /// The concat masks (2N × 2N on `[z¹; z²]`).
    ///
    /// # Errors
    /// [`crate::Error::LabelCount`] for no labels.
    pub fn concat_masks(labels: &[i64]) -> Result<ContrastMasks> {
        ContrastMasks::from_rules(&RowIds::view_major_labelled(labels, 2)?, &FIRM_RULES)
    }

    /// The loss of two views of `N` items with labels (`≥ 0` inlier class, `< 0` outlier).
    ///
    /// # Shapes
    /// `z1`, `z2`: `N × d` L2-normalised; `labels`: `N` → scalar.
    ///
    /// # Errors
    /// [`crate::Error::Shape`], [`crate::Error::LabelCount`], [`crate::Error::NonFiniteLoss`],
    /// [`crate::Error::Kernel`].
    pub fn forward(&self, z1: &Tensor, z2: &Tensor, labels: &[i64]) -> Result<Tensor> {
        let (n, _) = two_views(z1, z2)?;
        label_count("labels", labels.len(), n)?;
        let c = &self.config;
        let loss = match c.variant {
            FirmVariant::Pairwise => {
                let ids = pairwise_ids(labels)?;
                anchor_key_loss(
                    z1,
                    z2,
                    &ids,
                    &ids,
                    FIRM_RULES.positives,
                    c.temperature,
                    c.backend,
                )?
            }
            FirmVariant::Concat => contrast_set_loss(
                &Tensor::cat(&[z1, z2], 0)?,
                &RowIds::view_major_labelled(labels, 2)?,
                FIRM_RULES.positives,
                c.temperature,
                c.backend,
            )?,
        };
        ensure_finite("FIRM", loss)
    }
}
