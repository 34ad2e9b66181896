//! CON2 — context contrasting and content alignment ("Two Is Better Than One: Aligned
//! Representation Pairs for Anomaly Detection"; eqs. 1, 5, 7, 8, 12, 16; docs/reference.md §1.4, §2.6,
//! §6.1–6.3).
//!
//! Batch: `N` source images and their context-transformed copies `t_c(x)` (invert by default,
//! for medical images; vertical flip or equalize as options), the context applied to the raw
//! image before the content augmentations of the run's pipeline; two views each →
//! `4N` rows `[view 1: x_0..x_{N−1}, t_c(x_0)..t_c(x_{N−1}) ; view 2: …]`. Two heads on the
//! shared encoder (`Linear(d→d)–ReLU–Linear(d→128)` each): h_φ for L_Context (SupCon with the
//! context label), h_ψ for L_Content (SupCon with the source-image label). Loss
//! `L_Context + α·L_Content`, α annealed linearly per step from 0 to 1 (§6.2). τ = 0.1 for
//! both heads (the paper gives none; §6.1).
//!
//! Scores (eq. 16, §6.3): `nnd` — S_NND, the mean over A = 40 content augmentations (20 on `x`,
//! 20 on `t_c(x)`) of `1 − max cos` to the training set under the same augmentation and
//! context — each augmentation one transformation shared by all images, as eq. 12 compares
//! `t(x)` with `t(X_train)` (`tta_per_image = true` keys them per image index instead, METHODS
//! §2.3's reading); `lh` — S_LH, the same ensemble with a Ledoit–Wolf Gaussian per augmentation
//! (§6.4); then the encoder-feature scores.

use candle_core::Tensor;
use conad_augment::Shift;
use conad_losses::{Con2, Con2Config, L2_EPS, l2_normalize};
use conad_models::{MlpHead, MlpHeadConfig, ResNet};
use conad_scorers::{GaussianParams, KnnParams, ScorerConfig};
use serde::{Deserialize, Serialize};

use super::pool::shifted_views;
use super::{
    BatchContext, BuildContext, Method, MethodBatch, MethodParams, StepContext, StepOutput,
};
use crate::error::{Error, Result};
use crate::score::{ScoreDef, with_standard};

/// CON2's context transform (§3.8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextTransform {
    /// `x ← 1 − x` (medical images; the paper's default).
    #[default]
    Invert,
    /// Vertical flip (best on CIFAR-10).
    Flip,
    /// PIL histogram equalisation.
    Equalize,
}

impl ContextTransform {
    /// The transform as a batch shift.
    pub const fn shift(self) -> Shift {
        match self {
            Self::Invert => Shift::Invert,
            Self::Flip => Shift::VerticalFlip,
            Self::Equalize => Shift::Equalize,
        }
    }
}

/// Parameters of CON2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Con2Params {
    /// The context transform t_c.
    pub context: ContextTransform,
    /// τ of L_Context (0.1, §6.1).
    pub context_temperature: f64,
    /// τ of L_Content (0.1).
    pub content_temperature: f64,
    /// α at the first step.
    pub alpha_start: f64,
    /// α at the last step.
    pub alpha_end: f64,
    /// Output dimension of both heads (128).
    pub projection_dim: usize,
    /// A, the number of test-time content augmentations of `nnd` and `lh` (40; even).
    pub tta: u64,
    /// `false` (the paper, eq. 12): each test-time augmentation is one transformation applied
    /// to every image; `true`: docs/reference.md §2.3's reading, parameters keyed by (augmentation,
    /// image index), so a test image shares them only with the training image of its index.
    pub tta_per_image: bool,
}

impl Default for Con2Params {
    fn default() -> Self {
        let loss = Con2Config::default();
        Self {
            context: ContextTransform::Invert,
            context_temperature: loss.context_temperature,
            content_temperature: loss.content_temperature,
            alpha_start: loss.alpha_start,
            alpha_end: loss.alpha_end,
            projection_dim: 128,
            tta: 40,
            tta_per_image: false,
        }
    }
}

impl Con2Params {
    fn loss_config(&self) -> Con2Config {
        Con2Config {
            context_temperature: self.context_temperature,
            content_temperature: self.content_temperature,
            alpha_start: self.alpha_start,
            alpha_end: self.alpha_end,
            ..Con2Config::default()
        }
    }
}

const CONTEXT_HEAD: &str = "context";
const CONTENT_HEAD: &str = "content";

impl MethodParams for Con2Params {
    fn validate(&self) -> Result<()> {
        self.loss_config().validate()?;
        if self.projection_dim == 0 {
            return Err(Error::invalid("method.projection_dim", 0, "must be ≥ 1"));
        }
        if self.tta < 2 || !self.tta.is_multiple_of(2) {
            return Err(Error::invalid(
                "method.tta",
                self.tta,
                "must be even and ≥ 2 (half on x, half on its context copy; CON2 uses 40)",
            ));
        }
        Ok(())
    }

    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn Method>> {
        let head = MlpHeadConfig {
            out_dim: self.projection_dim,
            ..MlpHeadConfig::simclr(ctx.encoder.feature_dim())
        };
        Ok(Box::new(Con2Method {
            params: self.clone(),
            loss: Con2::new(self.loss_config())?,
            context: MlpHead::new(&head, ctx.heads.pp(CONTEXT_HEAD))?,
            content: MlpHead::new(&head, ctx.heads.pp(CONTENT_HEAD))?,
        }))
    }

    fn views_per_image(&self) -> usize {
        4
    }

    fn scores(&self) -> Vec<ScoreDef> {
        let context = self.context.shift();
        with_standard(vec![
            ScoreDef::tta(
                "nnd",
                "S_NND: mean over A TTA (half on t_c(x)) of 1 − max cos to the same-augmentation bank (eq. 16, §2.6)",
                context,
                self.tta,
                self.tta_per_image,
                ScorerConfig::Knn(KnnParams::default().k(1)),
            ),
            ScoreDef::tta(
                "lh",
                "S_LH: mean over A TTA of −log N(ẑ; μ_t, Σ_t), Ledoit–Wolf covariance (eq. 16, §2.6, §6.4)",
                context,
                self.tta,
                self.tta_per_image,
                ScorerConfig::Gaussian(GaussianParams::default()),
            ),
        ])
    }
}

/// CON2 with its context and content heads.
#[derive(Debug)]
pub struct Con2Method {
    params: Con2Params,
    loss: Con2,
    context: MlpHead,
    content: MlpHead,
}

impl Method for Con2Method {
    fn batch(&self, ctx: &BatchContext<'_>) -> Result<MethodBatch> {
        let n = ctx.indices.len();
        let x = shifted_views(ctx, &[Shift::Identity, self.params.context.shift()], 2)?;
        Ok(MethodBatch {
            inputs: vec![x],
            source_images: n,
            encoder_images: 4 * n,
            labels: Vec::new(),
        })
    }

    fn forward_loss(
        &self,
        encoder: &ResNet,
        batch: &MethodBatch,
        step: &StepContext,
    ) -> Result<StepOutput> {
        let x = batch.input(0, "CON2")?;
        let features = encoder.features(x, true)?;
        let z_context = l2_normalize(&self.context.forward(&features, true)?, L2_EPS)?;
        let z_content = l2_normalize(&self.content.forward(&features, true)?, L2_EPS)?;
        let loss = self
            .loss
            .forward(&z_context, &z_content, step.global_step, step.total_steps)?;
        Ok(StepOutput {
            loss,
            monitored: Some(z_content.detach()),
        })
    }

    fn heads(&self) -> serde_json::Value {
        serde_json::json!({
            CONTEXT_HEAD: self.context.config(),
            CONTENT_HEAD: self.content.config(),
            "con2": self.params,
        })
    }

    fn head_output(&self, head: &str, features: &Tensor) -> Result<Tensor> {
        match head {
            CONTEXT_HEAD => Ok(self.context.forward(features, false)?),
            CONTENT_HEAD => Ok(self.content.forward(features, false)?),
            other => Err(Error::UnknownHead {
                method: "CON2".into(),
                head: other.into(),
            }),
        }
    }
}
