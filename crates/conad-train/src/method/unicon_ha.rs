//! UniCon-HA: unilaterally aggregated contrastive learning with hierarchical augmentation (Wang
//! et al., ICCV 2023, eqs. 1, 4–10; docs/reference.md §1.5, §2.3, §6.6–§6.8).
//!
//! Batch: `N` normal images and their 90°, 180°, 270° rotations (the virtual outliers, 1 : 3),
//! two views each, **per stage**: stage `res_k` sees its own augmentation family `T_k` (the
//! `unicon_ha_stage` presets, strength growing with depth; each configurable), keyed by its own
//! seed node `seed → "method" → "stage" → k`. Rows are view-major and shift-major as in CSI:
//! `(v·4 + r)·N + n`.
//!
//! Forward (eq. 8): for every used stage, the encoder truncated at `res_k` on that stage's views,
//! then the stage head `g_k` (down-sampling blocks to the last stage's shape, pooling,
//! `Linear–ReLU–Linear` to 128; conad-models' `StageHead`) and L2 normalisation. Loss (eq. 9):
//! `(1/4) Σ_k λ_k L_UniCLR(T_k)` with soft aggregation (eqs. 6–7) at the last stage only; UniCLR
//! makes every un-rotated view a positive of every other un-rotated view and each rotated
//! sample a positive of its own other view only (`conad_losses::UniConHa`).
//!
//! Scores: `unicon_ha` — max cosine of the res4 feature averaged over 10 random views per
//! rotation (CSI's pipeline with crop area 0.54) to the same-rotation averaged training
//! features, mean over the four rotations (eq. 10 with the paper's "ensemble of
//! representations"); `unicon_ha_scores` — the same views with per-view scores averaged
//! (docs/reference.md §6.8's reading); then the encoder-feature scores (`knn` is eq. 10 without
//! test-time augmentation).

use conad_augment::{AugmentSpec, Augmenter, Shift};
use conad_losses::{
    L2_EPS, SoftAggregationConfig, StageAverage, UniConHa, UniConHaConfig, l2_normalize,
};
use conad_models::{ResNet, Stage, StageHead, StageHeadConfig};
use conad_rng::SeedTree;
use serde::{Deserialize, Serialize};

use super::pool::{shifted_views_with, validate_projection_and_ensemble};
use super::{
    BatchContext, BuildContext, Method, MethodBatch, MethodParams, StepContext, StepOutput,
};
use crate::error::{Error, Result};
use crate::score::{ScoreDef, with_standard};

/// One network stage UniCon-HA contrasts at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniConHaStage {
    /// The stage whose feature map the stage head reads.
    pub stage: Stage,
    /// λ of the stage in eq. 9.
    #[serde(default = "one")]
    pub weight: f64,
    /// The stage's augmentation family `T_k`.
    pub augment: AugmentSpec,
}

fn one() -> f64 {
    1.0
}

impl UniConHaStage {
    /// Stage `stage` with λ = 1 and the `unicon_ha_stage` preset of the same depth.
    pub fn proposal(stage: Stage) -> Self {
        Self {
            stage,
            weight: 1.0,
            augment: AugmentSpec::UniconHaStage {
                size: None,
                stage: stage.index() + 1,
            },
        }
    }
}

/// Parameters of UniCon-HA (defaults: the paper's where it is explicit, docs/reference.md §1.5
/// and §6.7 where it is not).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UniConHaParams {
    /// τ of every stage's UniCLR (0.5).
    pub temperature: f64,
    /// Used stages, shallow to deep (default res2, res3, res4 with λ = 1: the paper's best
    /// configuration, Table 6).
    pub stages: Vec<UniConHaStage>,
    /// Soft aggregation at the last stage (τ_ω = 0.5, eq. 6's per-anchor normalisation);
    /// `None` switches it off.
    pub soft_aggregation: Option<SoftAggregationConfig>,
    /// Divisor of eq. 9's stage sum (`four` = eq. 9; `used_stages` = §6.7).
    pub stage_average: StageAverage,
    /// Output dimension of the stage heads (128).
    pub projection_dim: usize,
    /// Random views per rotation in the test-time ensemble (10: 4 × 10 = CSI's 40).
    pub score_ensemble: usize,
}

impl Default for UniConHaParams {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            stages: [Stage::Res2, Stage::Res3, Stage::Res4]
                .into_iter()
                .map(UniConHaStage::proposal)
                .collect(),
            soft_aggregation: Some(SoftAggregationConfig::default()),
            stage_average: StageAverage::Four,
            projection_dim: 128,
            score_ensemble: 10,
        }
    }
}

/// CSI's evaluation crop area, used by the test-time ensemble (§2.4).
const EVAL_CROP_SCALE: f64 = 0.54;
/// A side every stage preset must build at when the parameters are checked.
const CHECK_SIDE: usize = 32;

impl UniConHaParams {
    fn loss_config(&self) -> UniConHaConfig {
        UniConHaConfig {
            temperature: self.temperature,
            stage_weights: self.stages.iter().map(|s| s.weight).collect(),
            soft_aggregation: self.soft_aggregation,
            stage_average: self.stage_average,
            ..UniConHaConfig::default()
        }
    }
}

impl MethodParams for UniConHaParams {
    fn validate(&self) -> Result<()> {
        self.loss_config().validate()?;
        for pair in self.stages.windows(2) {
            if pair[0].stage >= pair[1].stage {
                return Err(Error::invalid(
                    "method.stages",
                    format!("{:?} then {:?}", pair[0].stage, pair[1].stage),
                    "stages must be listed shallow to deep, each once (default res2, res3, res4)",
                ));
            }
        }
        for (i, s) in self.stages.iter().enumerate() {
            s.augment.to_augment_config(CHECK_SIDE).map_err(|e| {
                Error::invalid(
                    format!("method.stages[{i}].augment"),
                    format!("{:?}", s.augment),
                    e.to_string(),
                )
            })?;
        }
        validate_projection_and_ensemble(
            self.projection_dim,
            self.score_ensemble,
            "UniCon-HA follows CSI: 10 views per rotation",
        )
    }

    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn Method>> {
        let heads = self
            .stages
            .iter()
            .map(|s| {
                let mut config = StageHeadConfig::unicon_ha(ctx.encoder, s.stage);
                config.projection.out_dim = self.projection_dim;
                let name = format!("stage{}", s.stage.index() + 1);
                Ok(StageHead::new(&config, ctx.heads.pp(name))?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Box::new(UniConHaMethod {
            params: self.clone(),
            loss: UniConHa::new(self.loss_config())?,
            heads,
            seed: ctx.seed.child("stage"),
        }))
    }

    fn views_per_image(&self) -> usize {
        2 * Shift::ROTATIONS.len() * self.stages.len()
    }

    fn scores(&self) -> Vec<ScoreDef> {
        let draws = self.score_ensemble as u64;
        with_standard(vec![
            ScoreDef::rotation_tta(
                "unicon_ha",
                "max cosine of the res4 feature averaged over 10 views per rotation to the same-rotation averaged training features, mean over 4 rotations (eq. 10 + CSI-style TTA; §2.3)",
                draws,
                EVAL_CROP_SCALE,
                true,
            ),
            ScoreDef::rotation_tta(
                "unicon_ha_scores",
                "per-view max cosine against the same-rotation training bank, averaged over 10 views × 4 rotations (docs/reference.md §6.8's reading)",
                draws,
                EVAL_CROP_SCALE,
                false,
            ),
        ])
    }
}

/// UniCon-HA with one stage head per used stage.
#[derive(Debug)]
pub struct UniConHaMethod {
    params: UniConHaParams,
    loss: UniConHa,
    heads: Vec<StageHead>,
    /// `seed → "method" → "stage"`: stage `k`'s augmenter is keyed by `… → k`.
    seed: SeedTree,
}

impl UniConHaMethod {
    /// Stage `k`'s augmenter for images of side `side`.
    fn augmenter(&self, stage: &UniConHaStage, side: usize) -> Result<Augmenter> {
        let index = stage.stage.index() as u64 + 1;
        Ok(Augmenter::with_seed_node(
            &stage.augment.to_augment_config(side)?,
            self.seed.index(index),
        )?)
    }
}

impl Method for UniConHaMethod {
    fn batch(&self, ctx: &BatchContext<'_>) -> Result<MethodBatch> {
        let n = ctx.indices.len();
        let [_, h, w] = ctx.images.image_shape();
        let inputs = self
            .params
            .stages
            .iter()
            .map(|s| shifted_views_with(ctx, &self.augmenter(s, h.min(w))?, &Shift::ROTATIONS, 2))
            .collect::<Result<Vec<_>>>()?;
        let rows = 2 * Shift::ROTATIONS.len() * n;
        Ok(MethodBatch {
            inputs,
            source_images: n,
            encoder_images: rows * self.params.stages.len(),
            labels: Vec::new(),
        })
    }

    fn forward_loss(
        &self,
        encoder: &ResNet,
        batch: &MethodBatch,
        _step: &StepContext,
    ) -> Result<StepOutput> {
        let m = Shift::ROTATIONS.len() * batch.source_images;
        // Row r of a view block is rotation r / N of image r % N: inliers are rotation 0.
        let inlier: Vec<bool> = (0..m).map(|r| r < batch.source_images).collect();
        let mut views = Vec::with_capacity(self.heads.len());
        let mut last = None;
        for (i, (stage, head)) in self.params.stages.iter().zip(&self.heads).enumerate() {
            let x = batch.input(i, "UniCon-HA")?;
            let h = encoder.forward_to(x, stage.stage, true)?;
            let z = l2_normalize(&head.forward(&h, true)?, L2_EPS)?;
            views.push((z.narrow(0, 0, m)?, z.narrow(0, m, m)?));
            last = Some(z);
        }
        Ok(StepOutput {
            loss: self.loss.forward(&views, &inlier)?,
            monitored: last.map(|z| z.detach()),
        })
    }

    fn heads(&self) -> serde_json::Value {
        let heads: Vec<_> = self.heads.iter().map(StageHead::config).collect();
        serde_json::json!({
            "stages": heads,
            "unicon_ha": self.params,
        })
    }
}
