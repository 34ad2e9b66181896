//! SupCon on the rotation pool (Khosla et al. 2020 eq. 2, HobbitLong/SupContrast conventions;
//! FIRM's SupCon and SupCon* baselines, FIRM Table 5; docs/reference.md §1.2, §1.6): the training pool
//! holds every normal image and its 90°/180°/270° rotations as distinct items; each item gets
//! two views; the SupCon loss uses labels per item — `binary` (inlier 1 / rotated copy 0, so
//! every outlier is a positive of every other outlier — FIRM's "SupCon") or `rotation` (the
//! rotation index, FIRM's "SupCon*", the default). τ = 0.2 as in FIRM's study, τ_base = τ.

use candle_core::Tensor;
use conad_losses::{SupCon, SupConConfig};
use conad_models::{MlpHead, MlpHeadConfig, ResNet};
use serde::{Deserialize, Serialize};

use super::pool::{DistributionShift, ProjectionKind, pool_views, project_two_views};
use super::{
    BatchContext, BuildContext, Method, MethodBatch, MethodParams, StepContext, StepOutput,
};
use crate::error::{Error, Result};
use crate::score::{ScoreDef, standard_scores};

/// Which label each pool item carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupConLabels {
    /// Inlier 1, rotated copy 0 (FIRM's "SupCon").
    Binary,
    /// The rotation index 0–3 (FIRM's "SupCon*").
    #[default]
    Rotation,
}

/// Parameters of SupCon on the rotation pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupConParams {
    /// Temperature τ (0.2 in FIRM's study).
    pub temperature: f64,
    /// Labels of the pool items.
    pub labels: SupConLabels,
    /// Projection head (FIRM's study uses its depth-8 head for every loss).
    pub projection: ProjectionKind,
    /// Pool of shifted copies.
    pub distribution_shift: DistributionShift,
}

impl Default for SupConParams {
    fn default() -> Self {
        Self {
            temperature: 0.2,
            labels: SupConLabels::Rotation,
            projection: ProjectionKind::Firm,
            distribution_shift: DistributionShift::Rotations,
        }
    }
}

impl SupConParams {
    fn loss_config(&self) -> SupConConfig {
        SupConConfig {
            temperature: self.temperature,
            base_temperature: self.temperature,
            ..SupConConfig::default()
        }
    }
}

impl MethodParams for SupConParams {
    fn validate(&self) -> Result<()> {
        Ok(self.loss_config().validate()?)
    }

    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn Method>> {
        let head_config = self.projection.head_config(ctx.encoder.feature_dim());
        Ok(Box::new(SupConMethod {
            params: self.clone(),
            loss: SupCon::new(self.loss_config())?,
            head: MlpHead::new(&head_config, ctx.heads.pp("projection"))?,
            head_config,
        }))
    }

    fn views_per_image(&self) -> usize {
        2 * self.distribution_shift.shifts().len()
    }

    /// S_cos with k = 1 first (FIRM Table 15 reports S_cos), then the standard scores.
    fn scores(&self) -> Vec<ScoreDef> {
        standard_scores()
    }
}

/// SupCon with its projection head.
#[derive(Debug)]
pub struct SupConMethod {
    params: SupConParams,
    loss: SupCon,
    head: MlpHead,
    head_config: MlpHeadConfig,
}

impl Method for SupConMethod {
    fn copies_per_image(&self) -> usize {
        self.params.distribution_shift.shifts().len()
    }

    fn batch(&self, ctx: &BatchContext<'_>) -> Result<MethodBatch> {
        let n = ctx.indices.len();
        let (x, copies) = pool_views(ctx, self.params.distribution_shift.shifts(), 2)?;
        let labels = match self.params.labels {
            SupConLabels::Rotation => copies,
            SupConLabels::Binary => copies.iter().map(|&c| i64::from(c == 0)).collect(),
        };
        Ok(MethodBatch {
            inputs: vec![x],
            source_images: n,
            encoder_images: 2 * n,
            labels,
        })
    }

    fn forward_loss(
        &self,
        encoder: &ResNet,
        batch: &MethodBatch,
        _step: &StepContext,
    ) -> Result<StepOutput> {
        let x = batch.input(0, "SupCon")?;
        let n = batch.source_images;
        let (z, z1, z2) = project_two_views(encoder, &self.head, x, n)?;
        let features = Tensor::stack(&[&z1, &z2], 1)?;
        Ok(StepOutput {
            loss: self.loss.forward(&features, Some(&batch.labels))?,
            monitored: Some(z.detach()),
        })
    }

    fn heads(&self) -> serde_json::Value {
        serde_json::json!({ "projection": self.head_config, "supcon": self.params })
    }

    fn head_output(&self, head: &str, features: &Tensor) -> Result<Tensor> {
        match head {
            "projection" => Ok(self.head.forward(features, false)?),
            other => Err(Error::UnknownHead {
                method: "SupCon".into(),
                head: other.into(),
            }),
        }
    }
}
