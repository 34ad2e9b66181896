//! The configuration of the fused loss: temperature, mask rules, reduction, treatment of anchors
//! without positives and which rows are anchors (docs/reference.md §0 "Two reductions",
//! "The generic kernel"; §1.1 NT-Xent, §1.2 SupCon).

use serde::{Deserialize, Serialize};

use super::reduction::{EmptyAnchors, PositiveReduction};
use super::rules::{MaskRules, PositiveRule};
use crate::error::{Result, check_temperature};

/// Which rows of `z` act as anchors (all rows are keys).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorRows {
    /// Every row (SimCLR; HobbitLong `contrast_mode='all'`).
    #[default]
    All,
    /// The first `n` rows (`contrast_mode='one'` on a view-major batch: `n` = images).
    Leading(usize),
}

/// Configuration of the fused loss.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FusedInfoNceConfig {
    /// Temperature τ > 0.
    pub temperature: f64,
    /// Positive and denominator rules.
    pub rules: MaskRules,
    /// Combination of positives.
    pub reduction: PositiveReduction,
    /// Treatment of anchors without positives.
    pub empty_anchors: EmptyAnchors,
    /// Anchor rows of `z` ([`fused_info_nce`](crate::fused_info_nce) only;
    /// [`fused_info_nce_qk`](crate::fused_info_nce_qk) uses every row of `q` and needs
    /// [`AnchorRows::All`]).
    pub anchors: AnchorRows,
}

impl Default for FusedInfoNceConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            rules: MaskRules::default(),
            reduction: PositiveReduction::MeanLogProb,
            empty_anchors: EmptyAnchors::CountAsZero,
            anchors: AnchorRows::All,
        }
    }
}

impl FusedInfoNceConfig {
    /// Checks the temperature.
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`](crate::Error::InvalidTemperature).
    pub fn validate(&self) -> Result<()> {
        check_temperature(self.temperature)
    }

    /// SimCLR / NT-Xent on a view-major batch (positives: same instance).
    pub fn nt_xent(temperature: f64) -> Self {
        Self {
            temperature,
            ..Self::default()
        }
    }

    /// SupCon (positives: same label; HobbitLong conventions; the τ/τ_base factor is the
    /// caller's).
    pub fn supcon(temperature: f64) -> Self {
        Self {
            temperature,
            rules: MaskRules {
                positives: PositiveRule::SameLabel,
                ..MaskRules::default()
            },
            ..Self::default()
        }
    }
}
