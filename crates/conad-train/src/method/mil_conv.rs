//! MIL-Conv: multi-instance learning with convex representations on contaminated data ("Learn
//! Discrimination from Contaminated Data", eq. 10; docs/reference.md §1.8, §4.3, §6.16–§6.19).
//!
//! Batch: CSI's — `N` images × the four rotations × two views, view-major and shift-major (row
//! `(v·4 + s)·N + n`). Heads: projection `Linear(d→d)–ReLU–Linear(d→128)` and rotation classifier
//! `Linear(d→4)`. With `z` the `8N` normalised projections, the loss is
//! `L = L_Conv + λ₁ L_Mean + λ₂ L_Rot`:
//! - `L_Conv` (`conad_losses::MilConv`) on the `N` un-rotated first views: pseudo-normality over
//!   the batch, soft sampling (eq. 4, `p ∝ s`), Dirichlet convex combinations (drawn from the
//!   step's seed node, so a seed fixes the loss bit for bit), triplet loss with τ = 1 (eq. 6);
//! - `L_Mean` (`conad_losses::Msc`): NT-Xent between the two views of the `4N` rotated items
//!   (other rotations are negatives, as in CSI's con-SI), on `(z − c)/‖z − c‖` plus eq. 7's
//!   centre term `−zᵀc` once the centre `c` is fixed; before that on `z` (§6.18). `c` = normalise(mean of the
//!   normalised projections of every (contaminated) training image under the test transform),
//!   computed once at the start of epoch `round(center_after · epochs)` and kept in the
//!   non-trained variable `heads.center`;
//! - `L_Rot` (`conad_losses::RotationCe`): rotation cross-entropy on the `8N` logits.
//!
//! Paper score: max cosine of the encoder features to all (contaminated) training features
//! (`knn`, §2.2). Contamination itself is the data protocol's (`--contamination γ`, §4.3).

use candle_core::Tensor;
use conad_augment::Shift;
use conad_losses::{
    CenterTerm, L2_EPS, MilConv, MilConvConfig, Msc, MscConfig, RotationCe, RotationCeConfig,
    SamplingRule, l2_normalize, msc_center, shift_labels,
};
use conad_models::{LinearHead, MlpHead, ResNet};
use serde::{Deserialize, Serialize};

use super::centre::{FixedCentre, validate_center_after};
use super::pool::{projection_and_rotation_heads, shifted_views};
use super::{
    BatchContext, BuildContext, HookContext, Method, MethodBatch, MethodParams, StepContext,
    StepOutput,
};
use crate::error::{Error, Result};
use crate::score::{ScoreDef, with_standard};

/// Parameters of MIL-Conv (defaults: the paper's equations where they are explicit — eq. 4's
/// `p ∝ s`, eq. 6 without a temperature, eq. 7's `−fᵀf̄` — else docs/reference.md §6.16–§6.18,
/// whose readings of the explicit places remain options).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MilConvParams {
    /// τ of L_Conv (1 = eq. 6, which has no temperature; 0.5 = §6.17's reading).
    pub temperature: f64,
    /// Sampling probabilities from the pseudo-normality scores (`literal` = eq. 4; `shifted` =
    /// §6.16's reading).
    pub sampling: SamplingRule,
    /// `K` neighbours of the pseudo-normality score (5).
    pub neighbours: usize,
    /// Fraction of each batch taken as abnormal candidates (0.1).
    pub abnormal_fraction: f64,
    /// `C`, instances per convex combination (4).
    pub instances_per_combination: usize,
    /// τ of L_Mean's NT-Xent (0.5, CSI's: MIL-Conv's L_Mean is CSI's loss re-centred, §6.18).
    pub mean_temperature: f64,
    /// λ₁, weight of L_Mean (1).
    pub mean_weight: f64,
    /// L_Mean's centre term (`inner_product` = eq. 7's `−fᵀf̄`; `squared_distance` = MSC's
    /// `‖f − c‖²`, §6.18's reading).
    pub center_term: CenterTerm,
    /// λ₂, weight of L_Rot (1).
    pub rot_weight: f64,
    /// Fraction of the epochs before the centre is fixed (15 of 200 = 0.075).
    pub center_after: f64,
    /// Output dimension of the projection head (128).
    pub projection_dim: usize,
}

impl Default for MilConvParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            sampling: SamplingRule::Literal,
            neighbours: 5,
            abnormal_fraction: 0.1,
            instances_per_combination: 4,
            mean_temperature: 0.5,
            mean_weight: 1.0,
            center_term: CenterTerm::InnerProduct,
            rot_weight: 1.0,
            center_after: 0.075,
            projection_dim: 128,
        }
    }
}

const PROJECTION_HEAD: &str = "projection";
const ROTATION_HEAD: &str = "rotation";

impl MilConvParams {
    fn conv_config(&self) -> MilConvConfig {
        MilConvConfig {
            neighbours: self.neighbours,
            abnormal_fraction: self.abnormal_fraction,
            instances_per_combination: self.instances_per_combination,
            triplets: None,
            temperature: self.temperature,
            sampling: self.sampling,
            mean_weight: self.mean_weight,
            rot_weight: self.rot_weight,
        }
    }

    fn mean_config(&self) -> MscConfig {
        MscConfig {
            temperature: self.mean_temperature,
            center_term: self.center_term,
            ..MscConfig::default()
        }
    }
}

impl MethodParams for MilConvParams {
    fn validate(&self) -> Result<()> {
        self.conv_config().validate()?;
        self.mean_config().validate()?;
        if self.projection_dim == 0 {
            return Err(Error::invalid("method.projection_dim", 0, "must be ≥ 1"));
        }
        validate_center_after(self.center_after)
    }

    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn Method>> {
        let (projection, rotation) = projection_and_rotation_heads(
            &ctx,
            self.projection_dim,
            PROJECTION_HEAD,
            ROTATION_HEAD,
        )?;
        let center = FixedCentre::new(&ctx.heads, self.projection_dim, self.center_after)?;
        Ok(Box::new(MilConvMethod {
            params: self.clone(),
            conv: MilConv::new(self.conv_config())?,
            mean: Msc::new(self.mean_config())?,
            rot: RotationCe::new(RotationCeConfig {
                n_classes: Shift::ROTATIONS.len(),
            })?,
            projection,
            rotation,
            center,
        }))
    }

    fn views_per_image(&self) -> usize {
        2 * Shift::ROTATIONS.len()
    }

    /// The pseudo-normality score needs `K` other images in the batch.
    fn min_batch_size(&self) -> usize {
        self.neighbours + 1
    }

    fn scores(&self) -> Vec<ScoreDef> {
        // Paper score: max cosine to every (contaminated) training feature = the standard `knn`.
        with_standard(Vec::new())
    }
}

/// MIL-Conv with its heads and (fixed) centre.
#[derive(Debug)]
pub struct MilConvMethod {
    params: MilConvParams,
    conv: MilConv,
    mean: Msc,
    rot: RotationCe,
    projection: MlpHead,
    rotation: LinearHead,
    center: FixedCentre,
}

impl Method for MilConvMethod {
    fn before_training(&mut self, _ctx: &HookContext<'_>) -> Result<()> {
        self.center.refresh()
    }

    fn on_epoch_start(&mut self, ctx: &HookContext<'_>) -> Result<()> {
        if !self.center.due(ctx) {
            return Ok(());
        }
        let features = FixedCentre::training_features(ctx)?;
        let z = l2_normalize(&self.projection.forward(&features, false)?, L2_EPS)?;
        self.center.fix(ctx, &msc_center(&z)?)
    }

    fn batch(&self, ctx: &BatchContext<'_>) -> Result<MethodBatch> {
        let n = ctx.indices.len();
        let x = shifted_views(ctx, &Shift::ROTATIONS, 2)?;
        Ok(MethodBatch {
            inputs: vec![x],
            source_images: n,
            encoder_images: 2 * Shift::ROTATIONS.len() * n,
            labels: Vec::new(),
        })
    }

    fn forward_loss(
        &self,
        encoder: &ResNet,
        batch: &MethodBatch,
        step: &StepContext,
    ) -> Result<StepOutput> {
        let x = batch.input(0, "MIL-Conv")?;
        let n = batch.source_images;
        let items = Shift::ROTATIONS.len() * n;
        let features = encoder.features(x, true)?;
        let z = l2_normalize(&self.projection.forward(&features, true)?, L2_EPS)?;
        // Rows 0..N: the first views of the un-rotated images.
        let conv = self
            .conv
            .forward(&z.narrow(0, 0, n)?, &mut step.seed.child("mil_conv").rng())?;
        let mean = self.mean.forward(
            &z.narrow(0, 0, items)?,
            &z.narrow(0, items, items)?,
            self.center.get(),
        )?;
        let labels = shift_labels(n, Shift::ROTATIONS.len(), 2);
        let rot = self
            .rot
            .forward(&self.rotation.forward(&features)?, &labels)?;
        Ok(StepOutput {
            loss: self.conv.total(&conv, &mean, &rot)?,
            monitored: Some(z.detach()),
        })
    }

    fn trains(&self, name: &str) -> bool {
        FixedCentre::trains(name)
    }

    fn heads(&self) -> serde_json::Value {
        serde_json::json!({
            PROJECTION_HEAD: self.projection.config(),
            ROTATION_HEAD: self.rotation.config(),
            "mil_conv": self.params,
        })
    }

    fn head_output(&self, head: &str, features: &Tensor) -> Result<Tensor> {
        match head {
            PROJECTION_HEAD => Ok(self.projection.forward(features, false)?),
            ROTATION_HEAD => Ok(self.rotation.forward(features)?),
            other => Err(Error::UnknownHead {
                method: "MIL-Conv".into(),
                head: other.into(),
            }),
        }
    }
}
