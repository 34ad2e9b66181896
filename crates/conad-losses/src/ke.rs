//! Knowledge Exposure contrastive loss ("Enhancing Anomaly Detection Generalization through
//! Knowledge Exposure: The Dual Effects of Augmentation", eq. 1; docs/reference.md §1.7, §6.13).
//!
//! For anchor `x` with representations of its positive transforms `{x⁺} = {T(x): T ∈ T⁺}` and
//! negative transforms `{x⁻} = {T(x): T ∈ T⁻}` (K = 2 each, chosen per class by Wasserstein
//! distance in CLIP space):
//!
//! `L(x) = −(1/|{x⁺}|) · log( Σ_{x'∈x⁺} e^{sim(z(x), z(x'))/τ} / Σ_{x'∈D(x)} e^{sim(z(x), z(x'))/τ} )`
//!
//! — the `L_in` reduction ([`crate::PositiveReduction::LogSumProb`]) scaled by `1/|{x⁺}|`
//! outside the log, as eq. 1 writes it; τ = 0.2; mean over the batch's anchors. The
//! denominator set `D(x)` is the ambiguous part (docs/reference.md §6.13), a config enum:
//!
//! * [`KeNegatives::OwnOnly`] (eq. 1 literally, the default): `D(x) = {x⁺} ∪ {x⁻}`, the
//!   anchor's own transforms only.
//! * [`KeNegatives::InBatch`] (docs/reference.md §6.13's recommendation): additionally every other row of the batch — the
//!   other anchors and all their transforms — is a negative (standard InfoNCE). The anchor
//!   itself never is. The two readings differ only by these in-batch negatives.
//!
//! docs/reference.md §6.13 also recommends a second standard SimCLR view of `x` as an extra positive:
//! pass it as one more slice of `positives`.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::checks::{matrix, same_dtype};
use crate::error::{Error, Result, check_temperature};
use crate::info_nce::{
    EmptyAnchors, InfoNceConfig, PositiveReduction, ensure_finite, info_nce_per_anchor,
};
use crate::masks::ContrastMasks;

/// Which keys enter the denominator (docs/reference.md §6.13, flag `ke_in_batch_negatives`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeNegatives {
    /// Eq. 1 literally: the anchor's own positives and negatives only (the default).
    #[default]
    OwnOnly,
    /// Own positives and negatives plus every other row of the batch (docs/reference.md
    /// §6.13's recommendation).
    InBatch,
}

/// Configuration of [`KeLoss`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeConfig {
    /// τ (0.2).
    pub temperature: f64,
    /// Denominator reading.
    pub negatives: KeNegatives,
}

impl Default for KeConfig {
    fn default() -> Self {
        Self {
            temperature: 0.2,
            negatives: KeNegatives::OwnOnly,
        }
    }
}

impl KeConfig {
    /// Checks τ.
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`].
    pub fn validate(&self) -> Result<()> {
        check_temperature("temperature", self.temperature)
    }
}

/// The KE loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeLoss {
    config: KeConfig,
}

impl KeLoss {
    /// A validated loss.
    ///
    /// # Errors
    /// As [`KeConfig::validate`].
    pub fn new(config: KeConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The config.
    pub fn config(&self) -> &KeConfig {
        &self.config
    }

    /// Masks for `n` anchors against the keys `[anchors (n); positives (n·p, row i·p + a);
    /// negatives (n·q, row i·q + b)]`.
    ///
    /// # Errors
    /// Never for consistent sizes (the masks are validated as in [`ContrastMasks::new`]).
    pub fn masks(&self, n: usize, p: usize, q: usize) -> Result<ContrastMasks> {
        let in_batch = self.config.negatives == KeNegatives::InBatch;
        ContrastMasks::from_fn(n, n + n * p + n * q, |i, j| {
            if j < n {
                // Other anchors: negatives in the in-batch reading; the anchor itself never.
                (in_batch && j != i, 0.0)
            } else if j < n + n * p {
                let own = (j - n) / p == i;
                (own || in_batch, if own { 1.0 } else { 0.0 })
            } else {
                let own = (j - n - n * p) / q == i;
                (own || in_batch, 0.0)
            }
        })
    }

    /// Per-anchor losses `L(x_i)`, differentiable.
    ///
    /// # Shapes
    /// `anchors`: `N × d`; `positives`: `N × P × d`; `negatives`: `N × Q × d` (all
    /// L2-normalised; P, Q ≥ 1) → `N`.
    ///
    /// # Errors
    /// [`Error::Shape`] for mismatched or empty inputs; [`Error::DType`].
    pub fn forward_per_anchor(
        &self,
        anchors: &Tensor,
        positives: &Tensor,
        negatives: &Tensor,
    ) -> Result<Tensor> {
        let (n, d) = matrix(anchors, "anchors")?;
        let p = Self::transforms(positives, "positives", n, d)?;
        let q = Self::transforms(negatives, "negatives", n, d)?;
        same_dtype(anchors, positives)?;
        same_dtype(anchors, negatives)?;
        let keys = Tensor::cat(
            &[
                anchors,
                &positives.reshape((n * p, d))?,
                &negatives.reshape((n * q, d))?,
            ],
            0,
        )?;
        let per = info_nce_per_anchor(
            anchors,
            &keys,
            &self.masks(n, p, q)?,
            &InfoNceConfig {
                temperature: self.config.temperature,
                reduction: PositiveReduction::LogSumProb,
                empty_anchors: EmptyAnchors::CountAsZero,
            },
        )?;
        Ok((per.losses / p as f64)?)
    }

    /// The mean of [`KeLoss::forward_per_anchor`] over the `N` anchors.
    ///
    /// # Errors
    /// As [`KeLoss::forward_per_anchor`]; [`Error::NonFiniteLoss`].
    pub fn forward(
        &self,
        anchors: &Tensor,
        positives: &Tensor,
        negatives: &Tensor,
    ) -> Result<Tensor> {
        let per = self.forward_per_anchor(anchors, positives, negatives)?;
        ensure_finite("KE", per.mean_all()?)
    }

    fn transforms(t: &Tensor, what: &'static str, n: usize, d: usize) -> Result<usize> {
        match t.dims() {
            &[tn, k, td] if tn == n && td == d && k > 0 => Ok(k),
            got => Err(Error::Shape {
                what,
                got: got.to_vec(),
                expected: format!("{n} × K × {d} (one slice per anchor, K ≥ 1, anchor's d)"),
            }),
        }
    }
}
