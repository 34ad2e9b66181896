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

use candle_core::{DType, Tensor};
use candle_nn::Init;
use conad_losses::{L2_EPS, Msc, MscConfig, l2_normalize, msc_center};
use conad_models::ResNet;
use serde::{Deserialize, Serialize};

use super::{
    BatchContext, BuildContext, HookContext, Method, MethodBatch, MethodParams, StepContext,
    StepOutput, pool::pool_views,
};
use crate::embed::embed;
use crate::error::{Error, Result};
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

/// Name of the centre variable under `heads.`.
const CENTER_VAR: &str = "center";

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
        if !(0.0..1.0).contains(&self.center_after) {
            return Err(Error::invalid(
                "method.center_after",
                self.center_after,
                "must be in [0, 1): the fraction of epochs before the centre is fixed",
            ));
        }
        Ok(())
    }

    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn Method>> {
        let d = ctx.encoder.feature_dim();
        let center = ctx.heads.get_with_hints(d, CENTER_VAR, Init::Const(0.0))?;
        let center_set = center_is_set(&center)?;
        Ok(Box::new(MscMethod {
            params: self.clone(),
            loss: Msc::new(self.loss_config())?,
            center,
            center_set,
        }))
    }

    fn views_per_image(&self) -> usize {
        2
    }

    fn scores(&self) -> Vec<ScoreDef> {
        with_standard(vec![ScoreDef::knn2()])
    }
}

fn center_is_set(c: &Tensor) -> Result<bool> {
    Ok(c.abs()?
        .sum_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?
        > 0.0)
}

/// MSC with its (fixed) centre.
#[derive(Debug)]
pub struct MscMethod {
    params: MscParams,
    loss: Msc,
    center: Tensor,
    center_set: bool,
}

impl MscMethod {
    /// The epoch at whose start the centre is fixed.
    fn center_epoch(&self, epochs: u64) -> u64 {
        (self.params.center_after * epochs as f64).round() as u64
    }
}

impl Method for MscMethod {
    fn before_training(&mut self, _ctx: &HookContext<'_>) -> Result<()> {
        // A resumed run restored `heads.center` from its checkpoint after `build`.
        self.center_set = center_is_set(&self.center)?;
        Ok(())
    }

    fn on_epoch_start(&mut self, ctx: &HookContext<'_>) -> Result<()> {
        if self.center_set || ctx.epoch < self.center_epoch(ctx.epochs) {
            return Ok(());
        }
        let bank = embed(
            ctx.encoder,
            ctx.images,
            ctx.test_transform,
            ctx.batch_size,
            ctx.device,
        )?;
        let features = Tensor::from_slice(bank.as_slice(), (bank.rows(), bank.cols()), ctx.device)?;
        let c = msc_center(&features)?;
        let name = format!("heads.{CENTER_VAR}");
        let vars = ctx.vars.data().lock().map_err(|_| {
            candle_core::Error::Msg("the run's variables are poisoned by a panicked thread".into())
        })?;
        let var = vars
            .get(&name)
            .ok_or_else(|| Error::MissingVariable { name: name.clone() })?;
        var.set(&c)?;
        self.center = var.as_tensor().clone();
        self.center_set = true;
        tracing::info!(
            epoch = ctx.epoch,
            "MSC centre fixed from the training features"
        );
        Ok(())
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
        let center = self.center_set.then_some(&self.center);
        let loss = self
            .loss
            .forward(&f.narrow(0, 0, n)?, &f.narrow(0, n, n)?, center)?;
        Ok(StepOutput {
            loss,
            monitored: Some(f.detach()),
        })
    }

    fn trains(&self, name: &str) -> bool {
        name != format!("heads.{CENTER_VAR}")
    }

    fn heads(&self) -> serde_json::Value {
        serde_json::json!({ "msc": self.params })
    }
}
