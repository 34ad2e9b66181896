//! Training methods: the [`Method`] trait the loop is generic over, the typed
//! [`MethodConfig`] and the [`METHODS`] registry (one entry per method).
//!
//! A method owns its heads (built into the run's `VarMap` under `heads.`), turns source-image
//! indices into input tensors with the run's augmenter, and maps a forward pass of the shared
//! encoder plus its heads to a scalar loss.

mod raw_pixels;
mod simclr;

use std::fmt;

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use conad_augment::{Augmenter, ImageBatchU8};
use conad_models::{ResNet, ResNetConfig};
use serde::{Deserialize, Serialize};

pub use raw_pixels::RawPixelsConfig;
pub use simclr::{DistributionShift, SimClrConfig, SimClrMethod};

use crate::error::{Error, Result};

/// Everything a method needs to build one training batch.
#[derive(Debug)]
pub struct BatchContext<'a> {
    /// The training split (uint8, `(N, H, W, C)`).
    pub images: &'a ImageBatchU8<'a>,
    /// Training-pool items of this batch: item `i` is image `i % N` under the method's shifted
    /// copy `i / N` (see [`Method::copies_per_image`]; with one copy, items are image indices).
    pub indices: &'a [usize],
    /// Zero-based epoch (keys the augmentation streams).
    pub epoch: u64,
    /// The run's training augmenter (keyed by `seed → "augment" → epoch → sample → view`).
    pub augmenter: &'a Augmenter,
    /// Device of the model.
    pub device: &'a Device,
}

/// Input tensors of one step.
#[derive(Clone, Debug)]
pub struct MethodBatch {
    /// The method's inputs (SimCLR: one `(V·N, C, H, W)` view-major tensor).
    pub inputs: Vec<Tensor>,
    /// Number of source images `N`.
    pub source_images: usize,
    /// Number of images the encoder sees (`V·N` for SimCLR); used for images/s.
    pub encoder_images: usize,
}

/// Result of a forward pass in training mode.
#[derive(Clone, Debug)]
pub struct StepOutput {
    /// Scalar loss (differentiable).
    pub loss: Tensor,
    /// L2-normalised embeddings the loss saw (`rows × d`), for the collapse monitor.
    pub monitored: Option<Tensor>,
}

/// A self-supervised training method.
pub trait Method: fmt::Debug + Send + Sync {
    /// Registry name (`simclr`, …).
    fn name(&self) -> &'static str;

    /// Size of the training pool per training image: `1` = the images themselves; `k` = every
    /// image plus `k − 1` shifted copies that enter the pool as distinct items (FIRM's and DROC's
    /// distribution augmentation: rotated copies of the normal images are extra instances). An
    /// epoch is one pass over the pool.
    fn copies_per_image(&self) -> usize {
        1
    }

    /// Builds the input tensors for the pool items `ctx.indices`.
    ///
    /// # Errors
    /// Augmentation or tensor errors.
    fn batch(&self, ctx: &BatchContext<'_>) -> Result<MethodBatch>;

    /// Forward pass through `encoder` (training mode) and the method's heads, and the loss.
    ///
    /// # Errors
    /// Model or loss errors (a non-finite loss included).
    fn forward_loss(&self, encoder: &ResNet, batch: &MethodBatch) -> Result<StepOutput>;

    /// Whether the variable `name` (e.g. `encoder.conv1.weight`, `heads.projection.fc0.bias`) is
    /// trained. Batch-norm running statistics are never trained, whatever this returns.
    fn trains(&self, _name: &str) -> bool {
        true
    }

    /// Head configurations, stored in the checkpoint metadata.
    fn heads(&self) -> serde_json::Value;
}

/// The method and its parameters; TOML `[method]` with `name = "…"` and the method's fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum MethodConfig {
    /// SimCLR / NT-Xent ([`SimClrConfig`]).
    Simclr(SimClrConfig),
    /// No training; the embedding is the flattened pixels in [0, 1] ([`RawPixelsConfig`]).
    RawPixels(RawPixelsConfig),
}

impl Default for MethodConfig {
    fn default() -> Self {
        Self::Simclr(SimClrConfig::default())
    }
}

/// One registry entry.
#[derive(Clone, Copy, Debug)]
pub struct MethodInfo {
    /// Name used in configs and on the command line.
    pub name: &'static str,
    /// Other accepted spellings on the command line (e.g. `raw` for `raw_pixels`).
    pub aliases: &'static [&'static str],
    /// One-line description.
    pub summary: &'static str,
    /// The method with default parameters.
    pub default: fn() -> MethodConfig,
}

/// Every method conad can train — one line per method.
#[rustfmt::skip]
pub const METHODS: &[MethodInfo] = &[
    MethodInfo { name: "simclr", aliases: &[], summary: "SimCLR: NT-Xent over two augmented views, MLP projection head (METHODS §1.1)", default: || MethodConfig::Simclr(SimClrConfig::default()) },
    MethodInfo { name: "raw_pixels", aliases: &["raw"], summary: "no training: the embedding is the flattened [0,1] pixels (the kNN floor)", default: || MethodConfig::RawPixels(RawPixelsConfig::default()) },
];

/// Names of every registered method.
pub fn method_names() -> Vec<&'static str> {
    METHODS.iter().map(|m| m.name).collect()
}

impl MethodConfig {
    /// The method `name` (or one of its aliases) with default parameters.
    ///
    /// # Errors
    /// [`Error::UnknownMethod`] listing the valid names.
    pub fn from_name(name: &str) -> Result<Self> {
        METHODS
            .iter()
            .find(|m| m.name == name || m.aliases.contains(&name))
            .map(|m| (m.default)())
            .ok_or_else(|| Error::UnknownMethod {
                name: name.to_string(),
                valid: method_names(),
            })
    }

    /// Registry name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Simclr(_) => "simclr",
            Self::RawPixels(_) => "raw_pixels",
        }
    }

    /// `false` for methods without trainable weights (raw pixels).
    pub fn trains(&self) -> bool {
        !matches!(self, Self::RawPixels(_))
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Simclr(c) => c.validate(),
            Self::RawPixels(_) => Ok(()),
        }
    }

    /// Builds the trainable method (heads under `vb`); `None` for methods that do not train.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] and model-construction errors.
    pub fn build(
        &self,
        encoder: &ResNetConfig,
        vb: VarBuilder<'_>,
    ) -> Result<Option<Box<dyn Method>>> {
        self.validate()?;
        Ok(match self {
            Self::Simclr(c) => Some(Box::new(SimClrMethod::new(c, encoder, vb)?)),
            Self::RawPixels(_) => None,
        })
    }
}
