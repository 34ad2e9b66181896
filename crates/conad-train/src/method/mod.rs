//! Training methods: the [`Method`] trait the loop is generic over, the contexts it receives,
//! and the registry ([`METHODS`], [`MethodConfig`], `registry.rs`).
//!
//! A method is one file here (its typed [`MethodParams`] and its [`Method`]) plus one line in
//! [`METHODS`]. It owns:
//! - its heads (built into the run's `VarMap` under `heads.` from a [`BuildContext`]),
//! - its batch ([`Method::batch`]: pool items → input tensors, with the step's context, the
//!   training labels and the run's augmenter or augmenters of its own),
//! - its loss ([`Method::forward_loss`], with the [`StepContext`]: epoch, step, total steps,
//!   the step's seed node),
//! - its hooks ([`Method::before_training`], [`Method::on_epoch_start`]; no-ops by default),
//! - its test-time scores ([`MethodParams::scores`], paper score first; fitted and applied by
//!   [`crate::score`], which the trainer's online evaluation, `conad eval` and `cargo xtask reproduce`
//!   all call).

mod centre;
mod con2;
mod csi;
mod firm;
mod ke;
mod mil_conv;
mod msc;
mod pool;
mod raw_pixels;
mod registry;
mod rotnet;
mod simclr;
mod supcon;
mod unicon_ha;

use std::fmt;

use candle_core::{Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use conad_augment::{Augmenter, ImageBatchU8};
use conad_models::{ResNet, ResNetConfig};
use conad_rng::SeedTree;

pub use con2::{Con2Method, Con2Params, ContextTransform};
pub use csi::{CsiMethod, CsiParams};
pub use firm::{FirmMethod, FirmParams};
pub use ke::{KeMethod, KeParams};
pub use mil_conv::{MilConvMethod, MilConvParams};
pub use msc::{MscMethod, MscParams};
pub use pool::{DistributionShift, ProjectionKind};
pub use raw_pixels::RawPixelsConfig;
pub use registry::{METHODS, MethodConfig, MethodInfo, MethodParams, method_names};
pub use rotnet::{RotNetMethod, RotNetParams};
pub use simclr::{SimClrConfig, SimClrMethod};
pub use supcon::{SupConLabels, SupConMethod, SupConParams};
pub use unicon_ha::{UniConHaMethod, UniConHaParams, UniConHaStage};

use crate::augment_spec::AugmentSettings;
use crate::error::{Error, Result};

/// Where in training a step is; reaches both the batch builder and the loss.
#[derive(Clone, Debug)]
pub struct StepContext {
    /// Zero-based epoch.
    pub epoch: u64,
    /// Zero-based step within the epoch.
    pub step: u64,
    /// Zero-based step counted from the start of training.
    pub global_step: u64,
    /// Steps per epoch.
    pub steps_per_epoch: u64,
    /// Steps of the whole run (`epochs × steps_per_epoch`).
    pub total_steps: u64,
    /// The step's own seed node (`seed → "step" → global_step`): draws a method makes per step
    /// (MIL-Conv's Dirichlet weights, sampling) come from here.
    pub seed: SeedTree,
}

impl StepContext {
    /// Step `step` of `epoch` for a run of `epochs × steps_per_epoch` steps under `root`.
    pub fn new(root: &SeedTree, epoch: u64, step: u64, steps_per_epoch: u64, epochs: u64) -> Self {
        let global_step = epoch * steps_per_epoch + step;
        Self {
            epoch,
            step,
            global_step,
            steps_per_epoch,
            total_steps: epochs * steps_per_epoch,
            seed: root.child("step").index(global_step),
        }
    }
}

/// What a method receives when it is built (for training, or from a checkpoint for scoring).
pub struct BuildContext<'a> {
    /// The encoder the method trains.
    pub encoder: &'a ResNetConfig,
    /// Var builder under `heads.`: every head is created through it (and so is checkpointed).
    pub heads: VarBuilder<'a>,
    /// The run's augmentation settings (resolved: sizes are the data's).
    pub augment: &'a AugmentSettings,
    /// The method's own seed node (`seed → "method"`), e.g. for augmenters of its own.
    pub seed: SeedTree,
}

impl fmt::Debug for BuildContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildContext")
            .field("encoder", self.encoder)
            .field("augment", self.augment)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for HookContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookContext")
            .field("epoch", &self.epoch)
            .field("epochs", &self.epochs)
            .finish_non_exhaustive()
    }
}

/// Everything a method needs to build one training batch.
#[derive(Debug)]
pub struct BatchContext<'a> {
    /// The training split (uint8, `(N, H, W, C)`).
    pub images: &'a ImageBatchU8<'a>,
    /// Class labels of the training images (one per image; a one-class task has one value,
    /// a contaminated one hides which images are anomalies).
    pub labels: &'a [u32],
    /// Training-pool items of this batch: item `i` is image `i % N` under the method's shifted
    /// copy `i / N` (see [`Method::copies_per_image`]; with one copy, items are image indices).
    pub indices: &'a [usize],
    /// Epoch, step, total steps and the step's seed node.
    pub step: &'a StepContext,
    /// The run's training augmenter (`augment.train`, keyed by
    /// `seed → "augment" → epoch → sample → view`); methods with pipelines of their own hold
    /// them and ignore it.
    pub augmenter: &'a Augmenter,
    /// Device of the model.
    pub device: &'a Device,
}

/// What a hook receives (before training, at the start of each epoch).
pub struct HookContext<'a> {
    /// Zero-based epoch about to start (the first epoch of this session for
    /// [`Method::before_training`]).
    pub epoch: u64,
    /// Epochs of the whole run.
    pub epochs: u64,
    /// The encoder as it is now.
    pub encoder: &'a ResNet,
    /// Every variable of the run (encoder and heads): a hook that fixes state (MSC's centre)
    /// writes it into a non-trained variable under `heads.`, so checkpoints carry it.
    pub vars: &'a VarMap,
    /// The training split.
    pub images: &'a ImageBatchU8<'a>,
    /// The run's deterministic test transform (for embedding the training set).
    pub test_transform: &'a Augmenter,
    /// Images per forward pass when embedding.
    pub batch_size: usize,
    /// Device of the model.
    pub device: &'a Device,
}

/// Input tensors of one step.
#[derive(Clone, Debug)]
pub struct MethodBatch {
    /// The method's inputs (SimCLR: one `(V·N, C, H, W)` view-major tensor).
    pub inputs: Vec<Tensor>,
    /// Number of source items `N` in the batch.
    pub source_images: usize,
    /// Number of images the encoder sees (`V·N` for SimCLR); used for images/s.
    pub encoder_images: usize,
    /// Per-row integer labels the loss needs (pool labels, shift labels), if any.
    pub labels: Vec<i64>,
}

impl MethodBatch {
    /// The `i`-th input tensor, or a typed error naming the method.
    ///
    /// # Errors
    /// [`Error::MissingInput`] if the batch has fewer inputs.
    pub fn input(&self, i: usize, method: &str) -> Result<&Tensor> {
        self.inputs.get(i).ok_or_else(|| Error::MissingInput {
            method: method.to_string(),
            index: i,
        })
    }
}

/// Result of a forward pass in training mode.
#[derive(Clone, Debug)]
pub struct StepOutput {
    /// Scalar loss (differentiable).
    pub loss: Tensor,
    /// L2-normalised embeddings the loss saw (`rows × d`), for the collapse monitor.
    pub monitored: Option<Tensor>,
}

/// A self-supervised training method (built from its [`MethodParams`]).
pub trait Method: fmt::Debug + Send + Sync {
    /// Size of the training pool per training image: `1` = the images themselves; `k` = every
    /// image plus `k − 1` shifted copies that enter the pool as distinct items (FIRM's and
    /// DROC's distribution augmentation). An epoch is one pass over the pool.
    fn copies_per_image(&self) -> usize {
        1
    }

    /// Runs once per training session before its first step (also after a resume: state must
    /// follow from the weights and the epoch so that resumed runs stay bit-identical).
    ///
    /// # Errors
    /// The hook's own errors.
    fn before_training(&mut self, _ctx: &HookContext<'_>) -> Result<()> {
        Ok(())
    }

    /// Runs at the start of every epoch, before its first step.
    ///
    /// # Errors
    /// The hook's own errors.
    fn on_epoch_start(&mut self, _ctx: &HookContext<'_>) -> Result<()> {
        Ok(())
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
    fn forward_loss(
        &self,
        encoder: &ResNet,
        batch: &MethodBatch,
        step: &StepContext,
    ) -> Result<StepOutput>;

    /// Whether the variable `name` (e.g. `encoder.conv1.weight`, `heads.projection.fc0.bias`) is
    /// trained. Batch-norm running statistics are never trained, whatever this returns.
    fn trains(&self, _name: &str) -> bool {
        true
    }

    /// Head configurations, stored in the checkpoint metadata.
    fn heads(&self) -> serde_json::Value;

    /// The output of head `head` (as named by the method's scores) on encoder `features`, in
    /// eval mode — CSI's projection and shift logits, RotNet's rotation logits.
    ///
    /// # Errors
    /// [`Error::UnknownHead`] for a head the method does not have; model errors.
    fn head_output(&self, head: &str, _features: &Tensor) -> Result<Tensor> {
        Err(Error::UnknownHead {
            method: "this method".into(),
            head: head.into(),
        })
    }
}

/// The seed-tree path of a method's own nodes: `seed → "method"`.
pub(crate) fn method_seed(root: &SeedTree) -> SeedTree {
    root.child("method")
}
