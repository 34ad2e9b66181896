//! Mean-Shifted Contrastive learning (Reiss & Hoshen 2023; talreiss/Mean-Shifted-Anomaly-
//! Detection; MIL-Conv's L_Mean; docs/reference.md §1.8, §6.18), trained from scratch: two views of each
//! source image, L2-normalised encoder features `f` (no projection head), NT-Xent on the
//! re-centred features `(f − c)/‖f − c‖` (τ = 0.25) plus the angular centre term
//! `mean‖f¹ − c‖² + mean‖f² − c‖²`.
//!
//! The centre `c` = normalise(mean of the normalised training features) under the test
//! transform, computed **once** at the start of epoch `round(center_after · epochs)` from the
//! encoder as it is then and kept fixed (MSC computes it from its pretrained model; MIL-Conv,
//! training from scratch, switches re-centring on after 15 of 200 epochs — `center_after` =
//! 0.075 by default). Before that the loss is the plain NT-Xent on `f`. The centre lives in the
//! non-trained variable `heads.center`, so checkpoints carry it and a resumed run is
//! bit-identical. Score: `knn2` (mean cosine to the 2 nearest training features, the ranking of
//! MSC's summed squared distances).

use conad_losses::{L2_EPS, Msc, MscConfig, l2_normalize, msc_center};
use conad_models::ResNet;
use serde::{Deserialize, Serialize};

use super::centre::{FixedCentre, validate_center_after};
use super::{
    BatchContext, BuildContext, HookContext, Method, MethodBatch, MethodParams, StepContext,
    StepOutput, pool::pool_views,
};
use crate::error::Result;
use crate::score::{ScoreDef, with_standard};

/// Parameters of MSC.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MscParams {
    /// τ of the contrastive term (0.25).
    pub temperature: f64,
    /// Weight of the angular centre term (1).
    pub center_weight: f64,
    /// Fraction of the epochs trained with plain NT-Xent before the centre is fixed.
    pub center_after: f64,
}

impl Default for MscParams {
    fn default() -> Self {
        Self {
            temperature: 0.25,
            center_weight: 1.0,
            center_after: 0.075,
        }
    }
}

impl MscParams {
    fn loss_config(&self) -> MscConfig {
        MscConfig {
            temperature: self.temperature,
            center_weight: self.center_weight,
            ..MscConfig::default()
        }
    }
}

impl MethodParams for MscParams {
    fn validate(&self) -> Result<()> {
        self.loss_config().validate()?;
        validate_center_after(self.center_after)
    }

    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn Method>> {
        Ok(Box::new(MscMethod {
            params: self.clone(),
            loss: Msc::new(self.loss_config())?,
            center: FixedCentre::new(&ctx.heads, ctx.encoder.feature_dim(), self.center_after)?,
        }))
    }

    fn views_per_image(&self) -> usize {
        2
    }

    fn scores(&self) -> Vec<ScoreDef> {
        with_standard(vec![ScoreDef::knn2()])
    }
}

/// MSC with its (fixed) centre.
#[derive(Debug)]
pub struct MscMethod {
    params: MscParams,
    loss: Msc,
    center: FixedCentre,
}

impl Method for MscMethod {
    fn before_training(&mut self, _ctx: &HookContext<'_>) -> Result<()> {
        self.center.refresh()
    }

    fn on_epoch_start(&mut self, ctx: &HookContext<'_>) -> Result<()> {
        if !self.center.due(ctx) {
            return Ok(());
        }
        let features = FixedCentre::training_features(ctx)?;
        self.center.fix(ctx, &msc_center(&features)?)
    }

    fn batch(&self, ctx: &BatchContext<'_>) -> Result<MethodBatch> {
        let n = ctx.indices.len();
        let (x, _) = pool_views(ctx, &[conad_augment::Shift::Identity], 2)?;
        Ok(MethodBatch {
            inputs: vec![x],
            source_images: n,
            encoder_images: 2 * n,
            labels: Vec::new(),
        })
    }

    fn forward_loss(
        &self,
        encoder: &ResNet,
        batch: &MethodBatch,
        _step: &StepContext,
    ) -> Result<StepOutput> {
        let x = batch.input(0, "MSC")?;
        let n = batch.source_images;
        let f = l2_normalize(&encoder.features(x, true)?, L2_EPS)?;
        let loss =
            self.loss
                .forward(&f.narrow(0, 0, n)?, &f.narrow(0, n, n)?, self.center.get())?;
        Ok(StepOutput {
            loss,
            monitored: Some(f.detach()),
        })
    }

    fn trains(&self, name: &str) -> bool {
        FixedCentre::trains(name)
    }

    fn heads(&self) -> serde_json::Value {
        serde_json::json!({ "msc": self.params })
    }
}
