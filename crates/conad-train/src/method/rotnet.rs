//! Rotation prediction ("RotNet", Gidaris et al. 2018; the "Rot. Pred." baseline of FIRM and
//! CSI; docs/reference.md §1.9): every source image appears under the four rotations 0°/90°/180°/270°
//! (one augmented view each, shift-major rows `s·N + n`), the encoder feeds a linear head
//! `Linear(d → 4)` trained with 4-way cross-entropy against the rotation label. Test-time
//! normality is `Σ_k log softmax(f(rot_k x))_k` (Hendrycks et al. 2019), returned negated as an
//! anomaly score (`rotnet`).

use candle_core::Tensor;
use conad_augment::Shift;
use conad_losses::{RotationCe, RotationCeConfig, shift_labels};
use conad_models::{LinearHead, LinearHeadConfig, ResNet};
use serde::{Deserialize, Serialize};

use super::pool::shifted_views;
use super::{
    BatchContext, BuildContext, Method, MethodBatch, MethodParams, StepContext, StepOutput,
};
use crate::error::{Error, Result};
use crate::score::{ScoreDef, ScoreRecipe};

/// Parameters of rotation prediction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RotNetParams {}

/// Name of the rotation head (for scores).
const ROTATION_HEAD: &str = "rotation";

impl MethodParams for RotNetParams {
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn Method>> {
        let head = LinearHead::new(
            &LinearHeadConfig {
                in_dim: ctx.encoder.feature_dim(),
                num_classes: Shift::ROTATIONS.len(),
                bias: true,
            },
            ctx.heads.pp(ROTATION_HEAD),
        )?;
        let loss = RotationCe::new(RotationCeConfig {
            n_classes: Shift::ROTATIONS.len(),
        })?;
        Ok(Box::new(RotNetMethod { head, loss }))
    }

    fn views_per_image(&self) -> usize {
        Shift::ROTATIONS.len()
    }

    /// Rotation classification needs no other image.
    fn min_batch_size(&self) -> usize {
        1
    }

    fn scores(&self) -> Vec<ScoreDef> {
        crate::score::with_standard(vec![ScoreDef {
            name: "rotnet",
            summary: "−Σ_k log softmax(f(rot_k x))_k over the four rotations (Hendrycks et al.; §1.9)",
            recipe: ScoreRecipe::ShiftLikelihood {
                head: ROTATION_HEAD.into(),
                shifts: Shift::ROTATIONS.to_vec(),
            },
        }])
    }
}

/// Rotation prediction with its linear head.
#[derive(Debug)]
pub struct RotNetMethod {
    head: LinearHead,
    loss: RotationCe,
}

impl Method for RotNetMethod {
    fn batch(&self, ctx: &BatchContext<'_>) -> Result<MethodBatch> {
        let n = ctx.indices.len();
        let k = Shift::ROTATIONS.len();
        let x = shifted_views(ctx, &Shift::ROTATIONS, 1)?;
        Ok(MethodBatch {
            inputs: vec![x],
            source_images: n,
            encoder_images: k * n,
            labels: shift_labels(n, k, 1).into_iter().map(i64::from).collect(),
        })
    }

    fn forward_loss(
        &self,
        encoder: &ResNet,
        batch: &MethodBatch,
        _step: &StepContext,
    ) -> Result<StepOutput> {
        let x = batch.input(0, "RotNet")?;
        let logits = self.head.forward(&encoder.features(x, true)?)?;
        let labels: Vec<u32> = batch.labels.iter().map(|&l| l as u32).collect();
        Ok(StepOutput {
            loss: self.loss.forward(&logits, &labels)?,
            monitored: None,
        })
    }

    fn heads(&self) -> serde_json::Value {
        serde_json::json!({ ROTATION_HEAD: self.head.config() })
    }

    fn head_output(&self, head: &str, features: &Tensor) -> Result<Tensor> {
        match head {
            ROTATION_HEAD => Ok(self.head.forward(features)?),
            other => Err(Error::UnknownHead {
                method: "RotNet".into(),
                head: other.into(),
            }),
        }
    }
}
