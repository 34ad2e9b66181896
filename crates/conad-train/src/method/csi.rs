//! CSI: contrasting shifted instances (Tack et al. 2020, <https://arxiv.org/abs/2007.08176>,
//! eqs. 3–5; alinlab/CSI `simclr_CSI`; docs/reference.md §1.3, §2.4, §2.5).
//!
//! Batch: `N` images × the four rotations × two views, view-major and shift-major
//! (`[view 1: rot 0 of 0..N, rot 90, rot 180, rot 270 ; view 2: …]`, row `(v·4 + s)·N + n`),
//! augmented with the run's pipeline (the `csi` preset puts the rotation after the horizontal
//! flip). Heads on the encoder: projection `Linear(d→d)–ReLU–Linear(d→128)` and shift
//! classifier `Linear(d→4)`. Loss: L_con-SI (NT-Xent over the `8N` normalised projections,
//! other rotations of the same image are negatives, τ = 0.5) + λ·L_cls-SI (λ = 1).
//!
//! Scores: `csi` — the CSI ensemble score (T = 10 random views per rotation with crop area 0.54,
//! projection means, λ balancing from the training set, shift logits); `csi_simclr` — CSI's
//! "simclr" score (identity shift only, no logits, λ = 1); then the encoder-feature scores.

use candle_core::Tensor;
use conad_augment::Shift;
use conad_losses::{Csi, CsiConfig, L2_EPS, l2_normalize};
use conad_models::{LinearHead, MlpHead, ResNet};
use serde::{Deserialize, Serialize};

use super::pool::{projection_and_rotation_heads, shifted_views, validate_projection_and_ensemble};
use super::{
    BatchContext, BuildContext, Method, MethodBatch, MethodParams, StepContext, StepOutput,
};
use crate::error::{Error, Result};
use crate::score::{ScoreDef, ScoreRecipe, with_standard};

/// Parameters of CSI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsiParams {
    /// τ of L_con-SI (CSI hard-codes 0.5).
    pub temperature: f64,
    /// λ, the weight of L_cls-SI (1 in CSI).
    pub shift_weight: f64,
    /// Output dimension of the projection head (128).
    pub projection_dim: usize,
    /// T, random views per image and rotation in the `csi` score (10 in CSI).
    pub score_ensemble: usize,
}

impl Default for CsiParams {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            shift_weight: 1.0,
            projection_dim: 128,
            score_ensemble: 10,
        }
    }
}

const PROJECTION_HEAD: &str = "projection";
const SHIFT_HEAD: &str = "shift";
/// CSI's evaluation crop area (§2.4).
const EVAL_CROP_SCALE: f64 = 0.54;

impl CsiParams {
    fn loss_config(&self) -> CsiConfig {
        CsiConfig {
            temperature: self.temperature,
            shift_weight: self.shift_weight,
            n_shifts: Shift::ROTATIONS.len(),
            ..CsiConfig::default()
        }
    }
}

impl MethodParams for CsiParams {
    fn validate(&self) -> Result<()> {
        self.loss_config().validate()?;
        validate_projection_and_ensemble(
            self.projection_dim,
            self.score_ensemble,
            "CSI uses T = 10 views per rotation",
        )
    }

    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn Method>> {
        let (projection, shift) =
            projection_and_rotation_heads(&ctx, self.projection_dim, PROJECTION_HEAD, SHIFT_HEAD)?;
        Ok(Box::new(CsiMethod {
            params: self.clone(),
            loss: Csi::new(self.loss_config())?,
            projection,
            shift,
        }))
    }

    fn views_per_image(&self) -> usize {
        2 * Shift::ROTATIONS.len()
    }

    fn scores(&self) -> Vec<ScoreDef> {
        with_standard(vec![
            ScoreDef {
                name: "csi",
                summary: "CSI ensemble score: λ-balanced s_con + s_cls over 4 rotations × T views, crop 0.54 (§2.4, §2.5)",
                recipe: ScoreRecipe::Csi {
                    projection: PROJECTION_HEAD.into(),
                    shift_head: Some(SHIFT_HEAD.into()),
                    shifts: Shift::ROTATIONS.to_vec(),
                    ensemble: self.score_ensemble,
                    crop_scale: EVAL_CROP_SCALE,
                    balance: true,
                },
            },
            ScoreDef {
                name: "csi_simclr",
                summary: "CSI's \"simclr\" score: ‖v‖·max cos of the mean projection, identity shift, λ = 1 (§2.5)",
                recipe: ScoreRecipe::Csi {
                    projection: PROJECTION_HEAD.into(),
                    shift_head: None,
                    shifts: vec![Shift::Identity],
                    ensemble: self.score_ensemble,
                    crop_scale: EVAL_CROP_SCALE,
                    balance: false,
                },
            },
        ])
    }
}

/// CSI with its projection and shift heads.
#[derive(Debug)]
pub struct CsiMethod {
    params: CsiParams,
    loss: Csi,
    projection: MlpHead,
    shift: LinearHead,
}

impl Method for CsiMethod {
    fn batch(&self, ctx: &BatchContext<'_>) -> Result<MethodBatch> {
        let n = ctx.indices.len();
        let rows = 2 * Shift::ROTATIONS.len() * n;
        let x = shifted_views(ctx, &Shift::ROTATIONS, 2)?;
        Ok(MethodBatch {
            inputs: vec![x],
            source_images: n,
            encoder_images: rows,
            labels: Vec::new(),
        })
    }

    fn forward_loss(
        &self,
        encoder: &ResNet,
        batch: &MethodBatch,
        _step: &StepContext,
    ) -> Result<StepOutput> {
        let x = batch.input(0, "CSI")?;
        let features = encoder.features(x, true)?;
        let z = l2_normalize(&self.projection.forward(&features, true)?, L2_EPS)?;
        let logits = self.shift.forward(&features)?;
        Ok(StepOutput {
            loss: self.loss.forward(&z, &logits)?,
            monitored: Some(z.detach()),
        })
    }

    fn heads(&self) -> serde_json::Value {
        serde_json::json!({
            PROJECTION_HEAD: self.projection.config(),
            SHIFT_HEAD: self.shift.config(),
            "csi": self.params,
        })
    }

    fn head_output(&self, head: &str, features: &Tensor) -> Result<Tensor> {
        match head {
            PROJECTION_HEAD => Ok(self.projection.forward(features, false)?),
            SHIFT_HEAD => Ok(self.shift.forward(features)?),
            other => Err(Error::UnknownHead {
                method: "CSI".into(),
                head: other.into(),
            }),
        }
    }
}
