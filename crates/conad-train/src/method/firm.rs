//! FIRM — Focused In-distribution Representation Modeling (Willtl/firm; FIRM eq. 2;
//! docs/reference.md §1.6, §6.9–6.11): the training pool holds every normal image (inlier, class 0) and
//! its 90°/180°/270° rotations (outliers, label −1) as distinct items, drawn at random into
//! batches (1:3 only in expectation); two views per item; the depth-8 projection head with
//! batch norm; the FIRM loss — inlier anchors have every inlier key as a positive, outlier
//! anchors only their own other view. `pairwise` (`FIRMLoss`, N×N, view-1 anchors, the paper's
//! numbers) by default, `concat` (`FIRMLossv2`, 2N×2N) as an option; τ = 0.2.
//!
//! Scores (§6.9: report k = 1 and 5, k = 5 primary): `knn5` (S_cos), `knn`, `rot_knn` (S_rot),
//! `ens` (S_ens, 4 rotations × 10 crops), `kde`, `ocsvm_linear`, … .

use candle_core::Tensor;
use conad_losses::{Firm, FirmConfig, FirmVariant};
use conad_models::{MlpHead, MlpHeadConfig, ResNet};
use serde::{Deserialize, Serialize};

use super::pool::{DistributionShift, ProjectionKind, pool_views, project_two_views};
use super::{
    BatchContext, BuildContext, Method, MethodBatch, MethodParams, StepContext, StepOutput,
};
use crate::error::{Error, Result};
use crate::score::{ScoreDef, with_standard};

/// Parameters of FIRM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FirmParams {
    /// Temperature τ (0.2).
    pub temperature: f64,
    /// Loss variant.
    pub variant: FirmVariant,
    /// Projection head (FIRM's depth-8 head by default).
    pub projection: ProjectionKind,
}

impl Default for FirmParams {
    fn default() -> Self {
        Self {
            temperature: 0.2,
            variant: FirmVariant::Pairwise,
            projection: ProjectionKind::Firm,
        }
    }
}

impl FirmParams {
    fn loss_config(&self) -> FirmConfig {
        FirmConfig {
            temperature: self.temperature,
            variant: self.variant,
            ..FirmConfig::default()
        }
    }
}

impl MethodParams for FirmParams {
    fn validate(&self) -> Result<()> {
        Ok(self.loss_config().validate()?)
    }

    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn Method>> {
        let head_config = self.projection.head_config(ctx.encoder.feature_dim());
        Ok(Box::new(FirmMethod {
            params: self.clone(),
            loss: Firm::new(self.loss_config())?,
            head: MlpHead::new(&head_config, ctx.heads.pp("projection"))?,
            head_config,
        }))
    }

    fn views_per_image(&self) -> usize {
        2 * DistributionShift::Rotations.shifts().len()
    }

    fn scores(&self) -> Vec<ScoreDef> {
        with_standard(vec![ScoreDef::knn5()])
    }
}

/// FIRM with its projection head.
#[derive(Debug)]
pub struct FirmMethod {
    params: FirmParams,
    loss: Firm,
    head: MlpHead,
    head_config: MlpHeadConfig,
}

impl Method for FirmMethod {
    fn copies_per_image(&self) -> usize {
        DistributionShift::Rotations.shifts().len()
    }

    fn batch(&self, ctx: &BatchContext<'_>) -> Result<MethodBatch> {
        let n = ctx.indices.len();
        let (x, copies) = pool_views(ctx, DistributionShift::Rotations.shifts(), 2)?;
        // Inliers are class 0, rotated copies are outliers (−1).
        let labels = copies
            .iter()
            .map(|&c| if c == 0 { 0 } else { -1 })
            .collect();
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
        let x = batch.input(0, "FIRM")?;
        let (z, z1, z2) = project_two_views(encoder, &self.head, x, batch.source_images)?;
        Ok(StepOutput {
            loss: self.loss.forward(&z1, &z2, &batch.labels)?,
            monitored: Some(z.detach()),
        })
    }

    fn heads(&self) -> serde_json::Value {
        serde_json::json!({ "projection": self.head_config, "firm": self.params })
    }

    fn head_output(&self, head: &str, features: &Tensor) -> Result<Tensor> {
        match head {
            "projection" => Ok(self.head.forward(features, false)?),
            other => Err(Error::UnknownHead {
                method: "FIRM".into(),
                head: other.into(),
            }),
        }
    }
}
