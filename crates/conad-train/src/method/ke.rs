//! Knowledge Exposure (KE, "Enhancing Anomaly Detection Generalization through Knowledge
//! Exposure: The Dual Effects of Augmentation", eq. 1; docs/reference.md §1.7, §6.13, §6.15).
//!
//! Batch: `N` anchors (the images under the run's training pipeline; the KE profiles use the
//! identity, eq. 1's `x`), then each image under each positive transform `T⁺_k` and each
//! negative transform `T⁻_k` at the training severity 1 (conad-augment's `ke_bank`, applied to
//! the raw image, then the run's test transform). Rows: `[anchors; T⁺_1(x) …; T⁻_1(x) …]`,
//! transform-major. Every transform draws from `seed → "method" → "transforms" → epoch →
//! image → slot`, so batches are reproducible for any thread count. Encoder features (no
//! head: "ResNet-18 without classification head"), L2-normalised, enter `conad_losses::KeLoss`
//! (τ = 0.2; eq. 1's own-transform denominator by default).
//!
//! The transforms are the class's Wasserstein selection (`conad ke select`, `conad train
//! --method ke --encoder RUN`), recorded in `selection`; without one, the parameters' lists are
//! used as given (defaults: flip and crop as positives, the two rotations as negatives — the
//! usual outcome of the selection on object classes, not a measured one).
//!
//! Scores: `ke` — one-class SVM with a sigmoid kernel (ν 0.5, γ "scale", coef0 0; KE's
//! appendix) on the L2-normalised encoder features; `ke_rbf` — the RBF variant (γ "scale",
//! §6.15); then the standard encoder scores.

use candle_core::Tensor;
use conad_augment::{AugmentConfig, Image, KeTransform, Pipeline, Shift, ke_bank::TRAIN_SEVERITY};
use conad_losses::{KeConfig, KeLoss, KeNegatives, L2_EPS, l2_normalize};
use conad_models::ResNet;
use conad_rng::SeedTree;
use conad_scorers::{Gamma, OcSvmKernel, OcSvmParams, ScorerConfig};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    BatchContext, BuildContext, Method, MethodBatch, MethodParams, StepContext, StepOutput,
};
use crate::augment_spec::AugmentSettings;
use crate::error::{Error, Result};
use crate::ke::KeSelection;
use crate::score::{ScoreDef, encoder_bank, with_standard};

/// Parameters of KE.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeParams {
    /// `T⁺`: transforms whose images are positives of the anchor (K = 2).
    pub positives: Vec<KeTransform>,
    /// `T⁻`: transforms whose images are negatives of the anchor (K = 2).
    pub negatives: Vec<KeTransform>,
    /// τ (0.2).
    pub temperature: f64,
    /// The denominator (`own_only` = eq. 1; `in_batch` = §6.13's reading).
    pub denominator: KeNegatives,
    /// Severity of the training transforms (1).
    pub severity: u8,
    /// The selection the lists came from (encoder, distances), if any.
    pub selection: Option<KeSelection>,
}

impl Default for KeParams {
    fn default() -> Self {
        Self {
            positives: vec![KeTransform::HorizontalFlip, KeTransform::RandomCrop],
            negatives: vec![KeTransform::Rot90, KeTransform::Rot270],
            temperature: 0.2,
            denominator: KeNegatives::OwnOnly,
            severity: TRAIN_SEVERITY,
            selection: None,
        }
    }
}

impl KeParams {
    /// These parameters with the positives and negatives of `selection`.
    #[must_use]
    pub fn with_selection(mut self, selection: KeSelection) -> Self {
        self.positives.clone_from(&selection.positives);
        self.negatives.clone_from(&selection.negatives);
        self.selection = Some(selection);
        self
    }

    fn loss_config(&self) -> KeConfig {
        KeConfig {
            temperature: self.temperature,
            negatives: self.denominator,
        }
    }

    fn transforms(&self) -> Vec<KeTransform> {
        self.positives
            .iter()
            .chain(&self.negatives)
            .copied()
            .collect()
    }
}

/// KE's scorer: one-class SVM, sigmoid kernel, ν 0.5, γ "scale", coef0 0 (§6.15).
fn sigmoid_ocsvm() -> ScorerConfig {
    ScorerConfig::Ocsvm(OcSvmParams::default().kernel(OcSvmKernel::Sigmoid {
        gamma: Gamma::Scale,
        coef0: 0.0,
    }))
}

impl MethodParams for KeParams {
    fn validate(&self) -> Result<()> {
        self.loss_config().validate()?;
        for (field, list) in [
            ("positives", &self.positives),
            ("negatives", &self.negatives),
        ] {
            if list.is_empty() {
                return Err(Error::invalid(
                    format!("method.{field}"),
                    "[]",
                    "KE needs at least one positive and one negative transform (K = 2 each); \
                     `conad ke select` ranks the bank",
                ));
            }
        }
        if let Some(t) = self.positives.iter().find(|t| self.negatives.contains(t)) {
            return Err(Error::invalid(
                "method.negatives",
                t,
                "a transform cannot be both a positive and a negative",
            ));
        }
        if !(1..=6).contains(&self.severity) {
            return Err(Error::invalid(
                "method.severity",
                self.severity,
                "severities run from 1 (KE's training severity) to 6",
            ));
        }
        Ok(())
    }

    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn Method>> {
        Ok(Box::new(KeMethod {
            params: self.clone(),
            loss: KeLoss::new(self.loss_config())?,
            augment: ctx.augment.clone(),
            seed: ctx.seed.child("transforms"),
        }))
    }

    fn views_per_image(&self) -> usize {
        1 + self.positives.len() + self.negatives.len()
    }

    fn min_batch_size(&self) -> usize {
        match self.denominator {
            // Eq. 1 contrasts an anchor with its own transforms only.
            KeNegatives::OwnOnly => 1,
            _ => 2,
        }
    }

    fn scores(&self) -> Vec<ScoreDef> {
        with_standard(vec![
            ScoreDef {
                name: "ke",
                summary: "one-class SVM, sigmoid kernel, ν 0.5, γ \"scale\" on the normalised encoder features (KE's appendix; §6.15)",
                recipe: encoder_bank(sigmoid_ocsvm()),
            },
            ScoreDef {
                name: "ke_rbf",
                summary: "one-class SVM, RBF kernel, ν 0.5, γ \"scale\" on the normalised encoder features (§6.15's variant)",
                recipe: encoder_bank(ScorerConfig::Ocsvm(OcSvmParams::default().kernel(
                    OcSvmKernel::Rbf {
                        gamma: Gamma::Scale,
                    },
                ))),
            },
        ])
    }
}

/// KE with its transforms.
#[derive(Debug)]
pub struct KeMethod {
    params: KeParams,
    loss: KeLoss,
    augment: AugmentSettings,
    /// `seed → "method" → "transforms"`.
    seed: SeedTree,
}

impl KeMethod {
    fn test_pipeline(&self, side: usize) -> Result<Pipeline> {
        let config: AugmentConfig = self.augment.test.to_augment_config(side)?;
        Ok(Pipeline::new(&config)?)
    }
}

impl Method for KeMethod {
    fn batch(&self, ctx: &BatchContext<'_>) -> Result<MethodBatch> {
        let n = ctx.indices.len();
        let [_, h, w] = ctx.images.image_shape();
        let [vc, vh, vw] = ctx.augmenter.view_shape(ctx.images, &[Shift::Identity])?;
        let per = vc * vh * vw;
        let transforms = self.params.transforms();
        let rows = n * (1 + transforms.len());
        let mut buf = vec![0f32; rows * per];
        let (anchors, rest) = buf.split_at_mut(n * per);
        ctx.augmenter
            .augment_batch_into(ctx.images, ctx.indices, ctx.step.epoch, 1, anchors)?;
        let test = self.test_pipeline(h.min(w))?;
        let epoch = self.seed.index(ctx.step.epoch);
        rest.par_chunks_mut(per)
            .enumerate()
            .try_for_each(|(r, slot)| -> Result<()> {
                let (k, b) = (r / n, r % n);
                let image = ctx.indices[b];
                let img = ctx.images.image(image)?;
                let mut rng = epoch.index(image as u64).index(k as u64).rng();
                let t = transforms[k].apply(&img, self.params.severity, &mut rng)?;
                let out: Image = test.apply(&t, Shift::Identity, &mut rng.clone(), &mut rng)?;
                if out.shape() != [vc, vh, vw] {
                    return Err(Error::invalid(
                        "augment.test",
                        format!("{:?}", out.shape()),
                        format!(
                            "KE's transformed views ({}) go through the test transform and share a \
                             batch with the anchors of shape {:?}: the two pipelines must give one size",
                            transforms[k],
                            [vc, vh, vw]
                        ),
                    ));
                }
                slot.copy_from_slice(out.data());
                Ok(())
            })?;
        Ok(MethodBatch {
            inputs: vec![Tensor::from_vec(buf, (rows, vc, vh, vw), ctx.device)?],
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
        let n = batch.source_images;
        let (p, q) = (self.params.positives.len(), self.params.negatives.len());
        let x = batch.input(0, "KE")?;
        let z = l2_normalize(&encoder.features(x, true)?, L2_EPS)?;
        let d = z.dim(1)?;
        // Transform-major rows → (N, K, d).
        let block = |start: usize, k: usize| -> Result<Tensor> {
            Ok(z.narrow(0, start, k * n)?
                .reshape((k, n, d))?
                .transpose(0, 1)?
                .contiguous()?)
        };
        let anchors = z.narrow(0, 0, n)?;
        let positives = block(n, p)?;
        let negatives = block(n * (1 + p), q)?;
        Ok(StepOutput {
            loss: self.loss.forward(&anchors, &positives, &negatives)?,
            monitored: Some(anchors.detach()),
        })
    }

    fn heads(&self) -> serde_json::Value {
        serde_json::json!({ "ke": self.params })
    }
}
