//! UniCon-HA: unilaterally aggregated contrastive learning with soft aggregation and
//! hierarchical augmentation (Wang et al., ICCV 2023, eqs. 1, 4–9; docs/reference.md §1.5, §6.6–6.7).
//!
//! A batch holds `M` samples — inliers (`D_in`) and virtual outliers (rotations of inliers,
//! `D_vout`, 1:3) — with two views each, stacked view-major into `2M` rows `[z¹; z²]`.
//!
//! * **UniCLR** (eqs. 1, 4–5; [`UniClr`] without soft aggregation): inlier anchor: positives =
//!   all other inlier views (`2B − 1`); outlier anchor: positive = its own other view only;
//!   denominator = the `2M − 1` other rows; `L_out`, mean over the `2M` anchors. Identical to
//!   FIRM's concat mask ([`crate::Firm`]) with one inlier class.
//! * **Soft aggregation** (eqs. 6–7): weights of the `I = 2B` inlier views
//!   `ω_i = Σ_{j≠i} e^{z_i·z_j/τ_ω} / Σ_k Σ_{j≠k} e^{z_k·z_j/τ_ω}` (sums over inlier views),
//!   **detached**, rescaled to mean 1 (`ω ← I·ω`); pair weights `π_ij = ω_i ω_j` on the
//!   log-probabilities (the `w_x w_x'` eq. 6 writes inside the log only adds a constant when
//!   the weights are detached). [`SoftNormalisation::PerAnchor`] (eq. 6, the default): anchor
//!   `i`'s term is `−Σ_{j∈P(i)} π_ij log p_ij / Σ_{j∈P(i)} π_ij`, averaged with the other
//!   anchors as in UniCLR (ω_i cancels, so an anchor is weighted by its partners only).
//!   [`SoftNormalisation::Global`] (docs/reference.md §6.6's reading): the inlier part
//!   `L_in = −Σ_{i∈I} Σ_{j∈P(i)} π_ij log p_ij / Σ_{i∈I} Σ_{j∈P(i)} π_ij` is normalised over all
//!   positive pairs, `loss = (I·L_in + Σ_{o} ℓ_o) / 2M`. Outlier anchors are unchanged; equal
//!   weights give plain UniCLR under both.
//! * **Hierarchical augmentation** (eqs. 8–9; [`UniConHa`]): one UniCLR per used stage (each
//!   with its own augmentation strength and head), `L = (1/4) Σ_s λ_s L_s` (eq. 9,
//!   [`StageAverage::Four`], the default; [`StageAverage::UsedStages`] divides by the number of
//!   stages used, docs/reference.md §6.7), soft aggregation only at the last stage (res4).
//!   Default: stages 2, 3, 4 with λ = 1.

use candle_core::Tensor;
use conad_kernels::RowIds;
use serde::{Deserialize, Serialize};

use crate::backend::{InfoNceBackend, contrast_set_loss};
use crate::checks::{host_f64, label_count, two_views, upload};
use crate::error::{Error, Result, check_temperature};
use crate::firm::FIRM_RULES;
use crate::info_nce::{ensure_finite, masked_log_softmax};
use crate::masks::ContrastMasks;

/// Where soft-aggregation pair weights are normalised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoftNormalisation {
    /// Per anchor over its positives (eq. 6).
    #[default]
    PerAnchor,
    /// Over every positive pair of the batch (docs/reference.md §6.6).
    Global,
}

/// Soft-aggregation settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoftAggregationConfig {
    /// τ_ω, sharpness of the weight distribution (0.5).
    pub temperature: f64,
    /// Normalisation of the pair weights.
    pub normalisation: SoftNormalisation,
}

impl Default for SoftAggregationConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            normalisation: SoftNormalisation::PerAnchor,
        }
    }
}

/// Configuration of [`UniClr`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UniClrConfig {
    /// τ (0.5).
    pub temperature: f64,
    /// Soft aggregation of inlier anchors (`None`: plain UniCLR).
    pub soft_aggregation: Option<SoftAggregationConfig>,
    /// Compute path of plain UniCLR (soft aggregation needs the composed path).
    pub backend: InfoNceBackend,
}

impl Default for UniClrConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            soft_aggregation: None,
            backend: InfoNceBackend::Composed,
        }
    }
}

impl UniClrConfig {
    /// Checks τ, τ_ω, and that soft aggregation runs on the composed path.
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`]; [`Error::InvalidConfig`] for soft aggregation with
    /// [`InfoNceBackend::Fused`] (the fused op has 0/1 positive weights only).
    pub fn validate(&self) -> Result<()> {
        check_temperature("temperature", self.temperature)?;
        if let Some(sa) = self.soft_aggregation {
            check_temperature("soft_aggregation.temperature", sa.temperature)?;
            if self.backend == InfoNceBackend::Fused {
                return Err(Error::invalid(
                    "backend",
                    "fused",
                    "soft aggregation weights pairs; use the composed backend",
                ));
            }
        }
        Ok(())
    }
}

/// Soft-aggregation weights of the inlier views (eq. 7), rescaled to mean 1 — host values,
/// no gradient. Fewer than two views give weight 1 each (there is no pair to compare).
///
/// # Shapes
/// `z_inliers`: `I × d` L2-normalised inlier views → `I` weights.
///
/// # Errors
/// [`Error::InvalidTemperature`]; [`Error::NonFiniteInput`] for NaN/∞ features.
pub fn soft_aggregation_weights(z_inliers: &Tensor, temperature: f64) -> Result<Vec<f64>> {
    check_temperature("soft_aggregation.temperature", temperature)?;
    let (i_n, d) = z_inliers.dims2()?;
    if i_n < 2 {
        return Ok(vec![1.0; i_n]);
    }
    let z = host_f64(z_inliers, "inlier projections")?;
    let dot = |a: usize, b: usize| -> f64 {
        z[a * d..(a + 1) * d]
            .iter()
            .zip(&z[b * d..(b + 1) * d])
            .map(|(x, y)| x * y)
            .sum()
    };
    let mut s = vec![0.0; i_n * i_n];
    let mut max = f64::NEG_INFINITY;
    for a in 0..i_n {
        for b in 0..i_n {
            if a != b {
                s[a * i_n + b] = dot(a, b) / temperature;
                max = max.max(s[a * i_n + b]);
            }
        }
    }
    // The common factor e^{max} cancels in the ratio.
    let rows: Vec<f64> = (0..i_n)
        .map(|a| {
            (0..i_n)
                .filter(|&b| b != a)
                .map(|b| (s[a * i_n + b] - max).exp())
                .sum()
        })
        .collect();
    let total: f64 = rows.iter().sum();
    Ok(rows.iter().map(|r| i_n as f64 * r / total).collect())
}

/// The parts of a UniCLR evaluation.
#[derive(Clone, Debug)]
pub struct UniClrParts {
    /// The loss.
    pub loss: Tensor,
    /// Soft-aggregation weights of the inlier views in row order (mean 1), when used.
    pub weights: Option<Vec<f64>>,
}

/// UniCLR (optionally with soft aggregation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UniClr {
    config: UniClrConfig,
}

impl UniClr {
    /// A validated loss.
    ///
    /// # Errors
    /// As [`UniClrConfig::validate`].
    pub fn new(config: UniClrConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The config.
    pub fn config(&self) -> &UniClrConfig {
        &self.config
    }

    /// Labels of the kernel's rule: inliers 0, outliers −1.
    fn labels(inlier: &[bool]) -> Vec<i64> {
        inlier.iter().map(|&b| if b { 0 } else { -1 }).collect()
    }

    /// The masks on the `2M` rows.
    ///
    /// # Errors
    /// [`Error::LabelCount`] for an empty batch.
    pub fn masks(inlier: &[bool]) -> Result<ContrastMasks> {
        ContrastMasks::from_rules(
            &RowIds::view_major_labelled(&Self::labels(inlier), 2)?,
            &FIRM_RULES,
        )
    }

    /// The loss (see [`UniClr::forward_parts`]).
    ///
    /// # Errors
    /// As [`UniClr::forward_parts`].
    pub fn forward(&self, z1: &Tensor, z2: &Tensor, inlier: &[bool]) -> Result<Tensor> {
        Ok(self.forward_parts(z1, z2, inlier)?.loss)
    }

    /// UniCLR of two views of `M` samples, soft-aggregated when configured.
    ///
    /// # Shapes
    /// `z1`, `z2`: `M × d` L2-normalised; `inlier`: `M` → scalar.
    ///
    /// # Errors
    /// [`Error::Shape`], [`Error::LabelCount`], [`Error::NonFiniteInput`] (soft aggregation),
    /// [`Error::NonFiniteLoss`], [`Error::Kernel`].
    pub fn forward_parts(&self, z1: &Tensor, z2: &Tensor, inlier: &[bool]) -> Result<UniClrParts> {
        let (m, _) = two_views(z1, z2)?;
        label_count("inlier flags", inlier.len(), m)?;
        let Some(sa) = self.config.soft_aggregation else {
            let loss = contrast_set_loss(
                &Tensor::cat(&[z1, z2], 0)?,
                &RowIds::view_major_labelled(&Self::labels(inlier), 2)?,
                FIRM_RULES.positives,
                self.config.temperature,
                self.config.backend,
            )?;
            return Ok(UniClrParts {
                loss: ensure_finite("UniCLR", loss)?,
                weights: None,
            });
        };
        let z = Tensor::cat(&[z1, z2], 0)?;
        let rows: Vec<u32> = (0..2 * m as u32)
            .filter(|&r| inlier[r as usize % m])
            .collect();
        let weights = if rows.is_empty() {
            Vec::new()
        } else {
            let idx = Tensor::new(rows.as_slice(), z.device())?;
            soft_aggregation_weights(&z.detach().index_select(&idx, 0)?, sa.temperature)?
        };
        let loss = self.weighted(&z, inlier, &weights, sa.normalisation)?;
        Ok(UniClrParts {
            loss,
            weights: Some(weights),
        })
    }

    /// UniCLR with given inlier-view weights `ω` (row order of the inlier views in `[z¹; z²]`,
    /// any positive scale), normalised as the configured soft aggregation says (per anchor
    /// without one). Equal weights give plain UniCLR.
    ///
    /// # Errors
    /// As [`UniClr::forward_parts`]; [`Error::LabelCount`] if `weights` does not have one entry
    /// per inlier view; [`Error::InvalidConfig`] for negative/non-finite weights or weights that
    /// give every positive pair weight 0.
    pub fn forward_with_weights(
        &self,
        z1: &Tensor,
        z2: &Tensor,
        inlier: &[bool],
        weights: &[f64],
    ) -> Result<Tensor> {
        let (m, _) = two_views(z1, z2)?;
        label_count("inlier flags", inlier.len(), m)?;
        let normalisation = self
            .config
            .soft_aggregation
            .map_or(SoftNormalisation::PerAnchor, |sa| sa.normalisation);
        self.weighted(&Tensor::cat(&[z1, z2], 0)?, inlier, weights, normalisation)
    }

    fn weighted(
        &self,
        z: &Tensor,
        inlier: &[bool],
        weights: &[f64],
        normalisation: SoftNormalisation,
    ) -> Result<Tensor> {
        let m = inlier.len();
        let n_in = 2 * inlier.iter().filter(|&&b| b).count();
        label_count("soft-aggregation weights", weights.len(), n_in)?;
        if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
            return Err(Error::invalid(
                "soft-aggregation weights",
                w,
                "weights must be finite and ≥ 0",
            ));
        }
        let masks = Self::masks(inlier)?;
        let rows = 2 * m;
        // Position of each row among the inlier views.
        let mut pos = vec![usize::MAX; rows];
        let mut next = 0;
        for (r, p) in pos.iter_mut().enumerate() {
            if inlier[r % m] {
                *p = next;
                next += 1;
            }
        }
        // Σ of the pair weights: per anchor, or over every positive pair of the batch.
        let anchor_total = |a: usize| -> f64 {
            (0..rows)
                .filter(|&b| masks.weight(a, b) > 0.0)
                .map(|b| weights[pos[a]] * weights[pos[b]])
                .sum()
        };
        let global: f64 = (0..rows).filter(|&a| inlier[a % m]).map(anchor_total).sum();
        let mut w = vec![0.0; rows * rows];
        for a in 0..rows {
            let count: f64 = (0..rows).map(|b| f64::from(masks.weight(a, b))).sum();
            let total = match normalisation {
                SoftNormalisation::PerAnchor if inlier[a % m] => anchor_total(a),
                _ => global,
            };
            if inlier[a % m] && total <= 0.0 {
                return Err(Error::invalid(
                    "soft-aggregation weights",
                    format!("{weights:?}"),
                    "every positive pair of an inlier anchor has weight 0",
                ));
            }
            for b in 0..rows {
                if masks.weight(a, b) > 0.0 {
                    w[a * rows + b] = if inlier[a % m] {
                        let scale = match normalisation {
                            SoftNormalisation::PerAnchor => 1.0,
                            SoftNormalisation::Global => n_in as f64,
                        };
                        scale * weights[pos[a]] * weights[pos[b]] / total
                    } else {
                        1.0 / count
                    };
                }
            }
        }
        let log_p = masked_log_softmax(z, z, &masks, self.config.temperature)?;
        let sum = (log_p * upload(w, (rows, rows), z)?)?.sum_all()?;
        ensure_finite("UniCLR (soft aggregation)", (sum / -(rows as f64))?)
    }
}

/// The divisor of eq. 9's stage sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageAverage {
    /// `1/4` whatever the number of stages used (eq. 9).
    #[default]
    Four,
    /// `1/S` over the `S` stages used (docs/reference.md §6.7).
    UsedStages,
}

impl StageAverage {
    fn divisor(self, stages: usize) -> f64 {
        match self {
            Self::Four => 4.0,
            Self::UsedStages => stages as f64,
        }
    }
}

/// Configuration of [`UniConHa`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UniConHaConfig {
    /// τ of every stage's UniCLR (0.5).
    pub temperature: f64,
    /// λ_s of the used stages, shallow to deep (default stages 2, 3, 4: `[1, 1, 1]`).
    pub stage_weights: Vec<f64>,
    /// Soft aggregation at the last stage (`None` disables it).
    pub soft_aggregation: Option<SoftAggregationConfig>,
    /// Divisor of the stage sum.
    pub stage_average: StageAverage,
    /// Compute path of the stages without soft aggregation (a soft-aggregated last stage always
    /// runs composed).
    pub backend: InfoNceBackend,
}

impl Default for UniConHaConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            stage_weights: vec![1.0; 3],
            soft_aggregation: Some(SoftAggregationConfig::default()),
            stage_average: StageAverage::Four,
            backend: InfoNceBackend::Composed,
        }
    }
}

impl UniConHaConfig {
    /// Checks τ, the stage weights (≥ 1 stage, finite, ≥ 0) and the soft-aggregation settings.
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`], [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        if self.stage_weights.is_empty() {
            return Err(Error::invalid(
                "stage_weights",
                "[]",
                "at least one stage (docs/reference.md §6.7: stages 2, 3, 4 with λ = 1)",
            ));
        }
        for &w in &self.stage_weights {
            crate::checks::weight("stage_weights", w)?;
        }
        self.stage(true).validate()
    }

    /// The UniCLR of one stage: soft aggregation (composed path) at the last stage only.
    fn stage(&self, last: bool) -> UniClrConfig {
        let soft_aggregation = if last { self.soft_aggregation } else { None };
        UniClrConfig {
            temperature: self.temperature,
            soft_aggregation,
            backend: if soft_aggregation.is_some() {
                InfoNceBackend::Composed
            } else {
                self.backend
            },
        }
    }
}

/// The parts of a UniCon-HA evaluation.
#[derive(Clone, Debug)]
pub struct UniConHaParts {
    /// `Σ_s λ_s L_s / 4` (or `/ S`, [`StageAverage`]).
    pub loss: Tensor,
    /// `L_s` of every stage (before λ).
    pub stages: Vec<Tensor>,
    /// Soft-aggregation weights of the last stage.
    pub weights: Option<Vec<f64>>,
}

/// UniCLR summed over the network stages it uses, `(1/4) Σ_s λ_s L_s` (hierarchical
/// augmentation, eq. 9; docs/reference.md §1.5).
#[derive(Clone, Debug, PartialEq)]
pub struct UniConHa {
    config: UniConHaConfig,
}

impl UniConHa {
    /// A validated objective.
    ///
    /// # Errors
    /// As [`UniConHaConfig::validate`].
    pub fn new(config: UniConHaConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The config.
    pub fn config(&self) -> &UniConHaConfig {
        &self.config
    }

    /// The loss (see [`UniConHa::forward_parts`]).
    ///
    /// # Errors
    /// As [`UniConHa::forward_parts`].
    pub fn forward(&self, stages: &[(Tensor, Tensor)], inlier: &[bool]) -> Result<Tensor> {
        Ok(self.forward_parts(stages, inlier)?.loss)
    }

    /// One UniCLR per stage on that stage's two views, weighted by λ, summed and divided as
    /// [`StageAverage`] says.
    ///
    /// # Shapes
    /// `stages[s]`: `(z¹, z²)`, each `M × d_s` L2-normalised, shallow to deep; `inlier`: `M` →
    /// scalar.
    ///
    /// # Errors
    /// [`Error::LabelCount`] if the number of stages differs from `stage_weights`; as
    /// [`UniClr::forward_parts`].
    pub fn forward_parts(
        &self,
        stages: &[(Tensor, Tensor)],
        inlier: &[bool],
    ) -> Result<UniConHaParts> {
        let s_n = self.config.stage_weights.len();
        label_count("stages", stages.len(), s_n)?;
        let mut losses = Vec::with_capacity(s_n);
        let mut weights = None;
        let mut total: Option<Tensor> = None;
        for (s, ((z1, z2), &lambda)) in stages.iter().zip(&self.config.stage_weights).enumerate() {
            let parts =
                UniClr::new(self.config.stage(s + 1 == s_n))?.forward_parts(z1, z2, inlier)?;
            let term = (&parts.loss * lambda)?;
            total = Some(match total {
                None => term,
                Some(t) => (t + term)?,
            });
            if parts.weights.is_some() {
                weights = parts.weights;
            }
            losses.push(parts.loss);
        }
        let total = total.ok_or(Error::LabelCount {
            what: "stages",
            got: 0,
            expected: s_n,
        })?;
        Ok(UniConHaParts {
            loss: ensure_finite(
                "UniCon-HA",
                (total / self.config.stage_average.divisor(s_n))?,
            )?,
            stages: losses,
            weights,
        })
    }
}
