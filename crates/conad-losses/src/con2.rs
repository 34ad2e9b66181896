//! CON2 — context contrasting and content alignment ("Two Is Better Than One: Aligned
//! Representation Pairs for Anomaly Detection", eqs. 1 (ℓ), 5 (L_Context), 7 (L_Content), 8 (total)
//! and the appendix SupCon form; docs/reference.md §1.4,
//! §6.1–6.2).
//!
//! **Layout**: `N` source images `x` and their context-transformed copies `t_c(x)` form `2N`
//! samples `[x_0..x_{N−1}, t_c(x_0)..t_c(x_{N−1})]`; each sample has two content views, stacked
//! view-major → `4N` rows `[view 1 of the 2N samples ; view 2 of the 2N samples]`. Row `r` is
//! sample `s = r mod 2N`, context label `s / N` (0 = original, 1 = transformed) and source image
//! `s mod N`.
//!
//! * **L_Context** (head h_φ): single-pair terms `ℓ(z, z', Z) = −log(e^{z·z'/τ} / Σ_{z''≠z}
//!   e^{z·z''/τ})` averaged over all ordered pairs with the same context label (each anchor has
//!   `2N − 1` positives) = SupCon (`L_out`) with context labels, τ_base = τ.
//! * **L_Content** (head h_ψ): positives of a row are the other 3 rows of its source image
//!   (`x`'s two views and `t_c(x)`'s two views); `(1/12N) Σ` over those ordered pairs = SupCon
//!   with source-image labels.
//! * **Total** `L = L_Context + α·L_Content`, α annealed linearly from `alpha_start` (0) to
//!   `alpha_end` (1) per optimisation step: `α = start + (end − start)·min(step / total, 1)`,
//!   α = 0 at the first step (docs/reference.md §6.2).
//!
//! τ is not stated by the paper; the default 0.1 for both heads follows docs/reference.md §6.1.

use candle_core::Tensor;
use conad_kernels::{PositiveRule, RowIds};
use serde::{Deserialize, Serialize};

use crate::backend::{InfoNceBackend, contrast_set_loss};
use crate::checks::{matrix, same_dtype, weight};
use crate::error::{Error, Result, check_temperature};
use crate::info_nce::ensure_finite;

/// Configuration of [`Con2`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Con2Config {
    /// τ of L_Context (docs/reference.md §6.1: 0.1; sweep {0.07, 0.1, 0.2, 0.5}).
    pub context_temperature: f64,
    /// τ of L_Content.
    pub content_temperature: f64,
    /// α at step 0.
    pub alpha_start: f64,
    /// α at the last step (and after it).
    pub alpha_end: f64,
    /// Compute path of both InfoNCE terms.
    pub backend: InfoNceBackend,
}

impl Default for Con2Config {
    fn default() -> Self {
        Self {
            context_temperature: 0.1,
            content_temperature: 0.1,
            alpha_start: 0.0,
            alpha_end: 1.0,
            backend: InfoNceBackend::Composed,
        }
    }
}

impl Con2Config {
    /// Checks both temperatures and the α end points (finite, ≥ 0).
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`], [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        check_temperature("context_temperature", self.context_temperature)?;
        check_temperature("content_temperature", self.content_temperature)?;
        weight("alpha_start", self.alpha_start)?;
        weight("alpha_end", self.alpha_end)
    }

    /// α at optimisation step `step` (0-based) of `total_steps`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `total_steps == 0`.
    pub fn alpha(&self, step: u64, total_steps: u64) -> Result<f64> {
        if total_steps == 0 {
            return Err(Error::invalid(
                "total_steps",
                "0",
                "the α schedule runs over at least one step",
            ));
        }
        let t = (step as f64 / total_steps as f64).min(1.0);
        Ok(self.alpha_start + (self.alpha_end - self.alpha_start) * t)
    }
}

/// The parts of the CON2 objective.
#[derive(Clone, Debug)]
pub struct Con2Parts {
    /// `L_Context + α·L_Content`.
    pub loss: Tensor,
    /// L_Context.
    pub context: Tensor,
    /// L_Content.
    pub content: Tensor,
    /// α used.
    pub alpha: f64,
}

/// The CON2 objective.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Con2 {
    config: Con2Config,
}

impl Con2 {
    /// A validated objective.
    ///
    /// # Errors
    /// As [`Con2Config::validate`].
    pub fn new(config: Con2Config) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The config.
    pub fn config(&self) -> &Con2Config {
        &self.config
    }

    /// Per-sample context labels `[0; N] ++ [1; N]` of the `2N` samples.
    pub fn context_labels(n_images: usize) -> Vec<i64> {
        (0..2 * n_images).map(|s| (s / n_images) as i64).collect()
    }

    /// Per-sample source-image labels `[0..N] ++ [0..N]` of the `2N` samples.
    pub fn content_labels(n_images: usize) -> Vec<i64> {
        (0..2 * n_images).map(|s| (s % n_images) as i64).collect()
    }

    fn ids(labels: &[i64]) -> Result<RowIds> {
        Ok(RowIds::view_major_labelled(labels, 2)?)
    }

    /// The total loss (see [`Con2::forward_parts`]).
    ///
    /// # Errors
    /// As [`Con2::forward_parts`].
    pub fn forward(
        &self,
        z_context: &Tensor,
        z_content: &Tensor,
        step: u64,
        total_steps: u64,
    ) -> Result<Tensor> {
        Ok(self
            .forward_parts(z_context, z_content, step, total_steps)?
            .loss)
    }

    /// L_Context, L_Content and `L_Context + α·L_Content` at `step` of `total_steps`.
    ///
    /// # Shapes
    /// `z_context`, `z_content`: `4N × d` L2-normalised outputs of the two heads on the same
    /// rows (layout in the module docs) → scalars.
    ///
    /// # Errors
    /// [`Error::Shape`] if the rows are not a positive multiple of 4 or the inputs disagree;
    /// [`Error::InvalidConfig`] for `total_steps = 0`; [`Error::NonFiniteLoss`]; [`Error::Kernel`].
    pub fn forward_parts(
        &self,
        z_context: &Tensor,
        z_content: &Tensor,
        step: u64,
        total_steps: u64,
    ) -> Result<Con2Parts> {
        let (rows, _) = matrix(z_context, "context projections")?;
        let (rows_c, _) = matrix(z_content, "content projections")?;
        if rows % 4 != 0 {
            return Err(Error::Shape {
                what: "context projections",
                got: z_context.dims().to_vec(),
                expected: "4N × d (N images, original + context copy, two views)".into(),
            });
        }
        if rows_c != rows {
            return Err(Error::Shape {
                what: "content projections",
                got: z_content.dims().to_vec(),
                expected: format!("{rows} × d, the rows of the context projections"),
            });
        }
        same_dtype(z_context, z_content)?;
        let alpha = self.config.alpha(step, total_steps)?;
        let n = rows / 4;
        let context = contrast_set_loss(
            z_context,
            &Self::ids(&Self::context_labels(n))?,
            PositiveRule::SameLabel,
            self.config.context_temperature,
            self.config.backend,
        )?;
        let content = contrast_set_loss(
            z_content,
            &Self::ids(&Self::content_labels(n))?,
            PositiveRule::SameLabel,
            self.config.content_temperature,
            self.config.backend,
        )?;
        let loss = ensure_finite("CON2", (&context + (&content * alpha)?)?)?;
        Ok(Con2Parts {
            loss,
            context,
            content,
            alpha,
        })
    }
}
