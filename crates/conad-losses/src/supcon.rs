//! Supervised contrastive loss (Khosla et al. 2020, <https://arxiv.org/abs/2004.11362>) with the
//! conventions of HobbitLong/SupContrast (docs/reference.md §1.2), on the generic kernel.
//!
//! `features` is `[bsz, n_views, d]` (L2-normalised). Views are concatenated view-major into
//! `n_views·bsz` keys; anchors are all keys (`AnchorViews::All`) or view 0 (`First`). Positives:
//! keys with the anchor's label (or per an explicit image-pair mask), the anchor itself excluded
//! from positives and denominator. Reduction `L_out`; anchors without positives contribute 0 and
//! count in the mean; the loss is multiplied by `τ / τ_base`.
//! Without labels or mask it is SimCLR's NT-Xent (with `τ_base = τ`).

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, check_temperature};
use crate::info_nce::{EmptyAnchors, InfoNceConfig, PositiveReduction, ensure_finite, info_nce};
use crate::masks::{AnchorViews, ContrastMasks};

/// Configuration of [`SupCon`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupConConfig {
    /// Temperature τ (HobbitLong default 0.07; SupCon recipe 0.1; SimCLR via this code 0.5).
    pub temperature: f64,
    /// τ_base: the loss is scaled by τ/τ_base (0.07 in HobbitLong; set equal to τ for no scaling).
    pub base_temperature: f64,
    /// Which views are anchors (`contrast_mode`).
    pub anchors: AnchorViews,
}

impl Default for SupConConfig {
    fn default() -> Self {
        Self {
            temperature: 0.07,
            base_temperature: 0.07,
            anchors: AnchorViews::All,
        }
    }
}

impl SupConConfig {
    /// Checks both temperatures.
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`].
    pub fn validate(&self) -> Result<()> {
        check_temperature("temperature", self.temperature)?;
        check_temperature("base_temperature", self.base_temperature)
    }
}

/// The SupCon loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SupCon {
    config: SupConConfig,
}

impl SupCon {
    /// A validated loss.
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`].
    pub fn new(config: SupConConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The config.
    pub fn config(&self) -> &SupConConfig {
        &self.config
    }

    /// SupCon with class labels; `labels = None` gives SimCLR (positives = other views only).
    ///
    /// # Shapes
    /// `features`: `bsz × n_views × d`; `labels`: `bsz` → scalar.
    ///
    /// # Errors
    /// [`Error::Shape`] for a wrong rank or an empty batch; [`Error::LabelCount`] if
    /// `labels.len() != bsz`; [`Error::NonFiniteLoss`].
    pub fn forward(&self, features: &Tensor, labels: Option<&[i64]>) -> Result<Tensor> {
        let (bsz, n_views) = Self::check_features(features)?;
        let masks = match labels {
            None => ContrastMasks::instance_discrimination(bsz, n_views, self.config.anchors),
            Some(l) => {
                if l.len() != bsz {
                    return Err(Error::LabelCount {
                        what: "labels",
                        got: l.len(),
                        expected: bsz,
                    });
                }
                ContrastMasks::from_labels(l, n_views, self.config.anchors)?
            }
        };
        self.forward_masks(features, n_views, &masks)
    }

    /// SupCon with an explicit image-pair mask (`same[i·bsz + j]`: image `j` is a positive of
    /// image `i`; may be asymmetric).
    ///
    /// # Errors
    /// As [`SupCon::forward`]; [`Error::LabelCount`] if `same.len() != bsz²`.
    pub fn forward_with_mask(&self, features: &Tensor, same: &[bool]) -> Result<Tensor> {
        let (bsz, n_views) = Self::check_features(features)?;
        let masks = ContrastMasks::from_image_pairs(same, bsz, n_views, self.config.anchors)?;
        self.forward_masks(features, n_views, &masks)
    }

    fn check_features(features: &Tensor) -> Result<(usize, usize)> {
        match features.dims() {
            &[bsz, n_views, _] if bsz > 0 && n_views > 0 => Ok((bsz, n_views)),
            d => Err(Error::Shape {
                what: "features",
                got: d.to_vec(),
                expected: "bsz × n_views × d with bsz, n_views ≥ 1".into(),
            }),
        }
    }

    fn forward_masks(
        &self,
        features: &Tensor,
        n_views: usize,
        masks: &ContrastMasks,
    ) -> Result<Tensor> {
        // View-major contrast set: [view 0 of all images; view 1; …].
        let views: Vec<Tensor> = (0..n_views)
            .map(|v| features.narrow(1, v, 1)?.squeeze(1))
            .collect::<candle_core::Result<_>>()?;
        let contrast = Tensor::cat(&views, 0)?;
        let anchors = match self.config.anchors {
            AnchorViews::All => contrast.clone(),
            AnchorViews::First => views[0].clone(),
        };
        let kernel = InfoNceConfig {
            temperature: self.config.temperature,
            reduction: PositiveReduction::MeanLogProb,
            empty_anchors: EmptyAnchors::CountAsZero,
        };
        let loss = info_nce(&anchors, &contrast, masks, &kernel)?;
        let scaled = (loss * (self.config.temperature / self.config.base_temperature))?;
        ensure_finite("SupCon", scaled)
    }
}
