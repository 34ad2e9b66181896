//! SimCLR (Chen et al. 2020, <https://arxiv.org/abs/2002.05709>; docs/reference.md §1.1): two augmented
//! views per source image in the view-major layout `[view 1 of 0..N; view 2 of 0..N]`, encoder
//! → MLP projection head `d → d → 128` (d = 512·width, ReLU, biases) → L2 normalisation →
//! symmetric NT-Xent over the 2N projections (τ = 0.5 by default; CSI hard-codes 0.5).
//!
//! With `distribution_shift = "rotations"` the training pool holds every normal image and its
//! 90°/180°/270° rotations as distinct instances (rotation on the raw image, before the views are
//! augmented): the NT-Xent baseline as FIRM trains it (docs/reference.md §1.6, pooled data set, Table 5:
//! 95.7 on Fashion-MNIST) and DROC's "distribution augmentation". Plain SimCLR on a single normal
//! class spreads the normal images uniformly over the sphere and, early in training, loses to the
//! raw-pixel floor (see the README's demo notes); the rotated copies give it negatives from
//! outside the normal distribution.

use candle_nn::VarBuilder;
use conad_losses::{L2_EPS, NtXent, NtXentConfig, NtXentVariant, l2_normalize};
use conad_models::{MlpHead, MlpHeadConfig, ResNet, ResNetConfig};
use serde::{Deserialize, Serialize};

use super::pool::{DistributionShift, pool_views};
use super::{
    BatchContext, BuildContext, Method, MethodBatch, MethodParams, StepContext, StepOutput,
};
use crate::error::{Error, Result};
use crate::score::{ScoreDef, standard_scores};

/// Parameters of SimCLR.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimClrConfig {
    /// NT-Xent temperature τ.
    pub temperature: f64,
    /// Output dimension of the projection head (128).
    pub projection_dim: usize,
    /// Hidden width of the projection head; `None` = the encoder's feature dimension (512·w).
    pub hidden_dim: Option<usize>,
    /// NT-Xent formulation (symmetric 2N×2N by default; FIRM's pairwise N×N as an option).
    pub variant: NtXentVariant,
    /// Shifted copies of the normal images added to the training pool as extra instances.
    pub distribution_shift: DistributionShift,
}

impl Default for SimClrConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            projection_dim: 128,
            hidden_dim: None,
            variant: NtXentVariant::Symmetric,
            distribution_shift: DistributionShift::None,
        }
    }
}

impl SimClrConfig {
    /// The projection head for an encoder with `feature_dim` outputs.
    pub fn head_config(&self, feature_dim: usize) -> MlpHeadConfig {
        MlpHeadConfig {
            in_dim: feature_dim,
            hidden_dims: vec![self.hidden_dim.unwrap_or(feature_dim)],
            out_dim: self.projection_dim,
            ..MlpHeadConfig::simclr(feature_dim)
        }
    }
}

impl MethodParams for SimClrConfig {
    fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(Error::invalid(
                "method.temperature",
                self.temperature,
                "must be positive and finite (SimCLR uses 0.5)",
            ));
        }
        if self.projection_dim == 0 {
            return Err(Error::invalid("method.projection_dim", 0, "must be ≥ 1"));
        }
        if self.hidden_dim == Some(0) {
            return Err(Error::invalid(
                "method.hidden_dim",
                0,
                "must be ≥ 1 (or omitted for the encoder's width)",
            ));
        }
        Ok(())
    }

    fn build(&self, ctx: BuildContext<'_>) -> Result<Box<dyn Method>> {
        Ok(Box::new(SimClrMethod::new(self, ctx.encoder, ctx.heads)?))
    }

    fn views_per_image(&self) -> usize {
        SimClrMethod::VIEWS * self.distribution_shift.shifts().len()
    }

    /// kNN max cosine on encoder features (CON2's "SimCLR (kNN)", §6.22), then the standard
    /// scores.
    fn scores(&self) -> Vec<ScoreDef> {
        standard_scores()
    }
}

/// SimCLR with its projection head.
#[derive(Debug)]
pub struct SimClrMethod {
    config: SimClrConfig,
    head: MlpHead,
    loss: NtXent,
}

impl SimClrMethod {
    /// Number of views per source image.
    pub const VIEWS: usize = 2;

    /// Builds the projection head under `vb.pp("projection")`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] and model errors.
    pub fn new(config: &SimClrConfig, encoder: &ResNetConfig, vb: VarBuilder<'_>) -> Result<Self> {
        config.validate()?;
        let head = MlpHead::new(
            &config.head_config(encoder.feature_dim()),
            vb.pp("projection"),
        )?;
        let loss = NtXent::new(NtXentConfig {
            temperature: config.temperature,
            variant: config.variant,
        })?;
        Ok(Self {
            config: config.clone(),
            head,
            loss,
        })
    }

    /// The projection head.
    pub fn head(&self) -> &MlpHead {
        &self.head
    }
}

impl Method for SimClrMethod {
    fn copies_per_image(&self) -> usize {
        self.config.distribution_shift.shifts().len()
    }

    fn batch(&self, ctx: &BatchContext<'_>) -> Result<MethodBatch> {
        let n = ctx.indices.len();
        let (x, _) = pool_views(ctx, self.config.distribution_shift.shifts(), Self::VIEWS)?;
        Ok(MethodBatch {
            inputs: vec![x],
            source_images: n,
            encoder_images: Self::VIEWS * n,
            labels: Vec::new(),
        })
    }

    fn forward_loss(
        &self,
        encoder: &ResNet,
        batch: &MethodBatch,
        _step: &StepContext,
    ) -> Result<StepOutput> {
        let x = batch.input(0, "SimCLR")?;
        let n = batch.source_images;
        let features = encoder.features(x, true)?;
        let z = l2_normalize(&self.head.forward(&features, true)?, L2_EPS)?;
        let loss = self
            .loss
            .forward(&z.narrow(0, 0, n)?, &z.narrow(0, n, n)?)?;
        Ok(StepOutput {
            loss,
            monitored: Some(z.detach()),
        })
    }

    fn heads(&self) -> serde_json::Value {
        serde_json::json!({
            "projection": self.head.config(),
            "simclr": self.config,
        })
    }

    fn head_output(
        &self,
        head: &str,
        features: &candle_core::Tensor,
    ) -> Result<candle_core::Tensor> {
        match head {
            "projection" => Ok(self.head.forward(features, false)?),
            other => Err(Error::UnknownHead {
                method: "SimCLR".into(),
                head: other.into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;
    use conad_augment::{AugmentConfig, Augmenter, ImageBatchU8};
    use conad_models::seeded_var_builder;
    use conad_rng::SeedTree;

    /// With rotated copies, pool item `k·N + i` is image `i` turned `k` quarter turns
    /// counter-clockwise (identity augmentation makes the views exact): item 0 is image 0 as is,
    /// item N+1 is image 1 rotated by 90°, and an item outside the 4N pool is a typed error.
    #[test]
    fn rotation_pool_items_are_rotated_images() {
        // Two 2×2 grey images: [[1, 2], [3, 4]] and [[5, 6], [7, 8]].
        let pixels: Vec<u8> = (1..=8).collect();
        let images = ImageBatchU8::new(&pixels, 2, 2, 2, 1).unwrap();
        let augmenter =
            Augmenter::new(&AugmentConfig::from_steps(Vec::new()), SeedTree::new(0)).unwrap();
        let varmap = VarMap::new();
        let dev = Device::Cpu;
        let vb = seeded_var_builder(&varmap, SeedTree::new(0), DType::F32, &dev);
        let resnet = ResNetConfig {
            in_channels: 1,
            width_multiplier: 0.125,
            ..Default::default()
        };
        let config = SimClrConfig {
            distribution_shift: DistributionShift::Rotations,
            ..Default::default()
        };
        let method = SimClrMethod::new(&config, &resnet, vb).unwrap();
        assert_eq!(method.copies_per_image(), 4);
        let step = StepContext::new(&SeedTree::new(0), 0, 0, 1, 1);
        let ctx = |indices: &'static [usize]| BatchContext {
            images: &images,
            labels: &[0, 0],
            indices,
            step: &step,
            augmenter: &augmenter,
            device: &dev,
        };
        let batch = method.batch(&ctx(&[0, 3])).unwrap();
        let x: Vec<f32> = batch.inputs[0].flatten_all().unwrap().to_vec1().unwrap();
        let px = |v: &[u8]| v.iter().map(|&p| f32::from(p) / 255.0).collect::<Vec<_>>();
        // Views are view-major: [view 1 of item 0, view 1 of item 3, view 2 of item 0, …].
        // Item 3 = image 1 (index 3 % 2) under rotation 1 (3 / 2): [[5,6],[7,8]] turned 90° ccw
        // is [[6, 8], [5, 7]].
        assert_eq!(&x[0..4], &px(&[1, 2, 3, 4])[..]);
        assert_eq!(&x[4..8], &px(&[6, 8, 5, 7])[..]);
        assert_eq!(&x[8..16], &x[0..8]);
        assert!(matches!(
            method.batch(&ctx(&[8])),
            Err(Error::PoolIndex { item: 8, pool: 8 })
        ));
        // Plain SimCLR keeps the images as the pool.
        let plain = SimClrMethod::new(
            &SimClrConfig::default(),
            &resnet,
            seeded_var_builder(&VarMap::new(), SeedTree::new(1), DType::F32, &dev),
        );
        assert_eq!(plain.unwrap().copies_per_image(), 1);
    }
}
