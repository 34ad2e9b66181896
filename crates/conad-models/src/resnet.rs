//! ResNet encoder with BasicBlocks (ResNet-18 by default), trainable in candle.
//!
//! docs/reference.md §0 "Backbone default": CIFAR variant for ≤ 64 px inputs (3×3 stride-1 stem, no
//! max-pool, stages [2, 2, 2, 2] with widths 64/128/256/512, global average pool → 512-d) and
//! ImageNet variant (7×7/2 stem + 3×3/2 max-pool) for 224 px inputs. He et al. 2016,
//! <https://arxiv.org/abs/1512.03385>.
//!
//! Unlike `candle-transformers`' inference-only ResNet, batch norm runs in training mode when
//! asked (batch statistics, running statistics updated) and every stage output is reachable
//! (UniCon-HA's stage heads read res2–res4, docs/reference.md §1.5). Parameter names are torchvision's, so a
//! torchvision `resnet18` safetensors file loads as is.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::VarMap;
//! use conad_models::{ResNet, ResNetConfig, seeded_var_builder};
//! use conad_rng::SeedTree;
//! let cfg = ResNetConfig { width_multiplier: 0.125, ..Default::default() };
//! let varmap = VarMap::new();
//! let vb = seeded_var_builder(&varmap, SeedTree::new(7).child("init"), DType::F32, &Device::Cpu);
//! let net = ResNet::new(&cfg, vb)?;
//! let x = Tensor::zeros((2, 3, 16, 16), DType::F32, &Device::Cpu)?;
//! let stages = net.forward_stages(&x, true)?;
//! assert_eq!(stages.res2.dims(), &[2, 16, 8, 8]);
//! assert_eq!(net.features(&x, false)?.dims(), &[2, 64]);
//! # Ok::<(), conad_models::Error>(())
//! ```

use candle_core::{ModuleT, Tensor};
use candle_nn::{Linear, VarBuilder};

use crate::basic_block::BasicBlock;
use crate::config::{ResNetConfig, Stage, Stem};
use crate::error::{Error, Result};
use crate::layers::{
    BatchNorm, Conv2d, conv2d_no_bias, engine_error, global_avg_pool, linear, max_pool2d,
};

/// The four stage feature maps of one forward pass.
#[derive(Clone, Debug)]
pub struct ResNetStages {
    /// `layer1` output, `N × 64w × H₁ × W₁` (H₁ = H for the CIFAR stem, H/4 for ImageNet).
    pub res1: Tensor,
    /// `layer2` output, `N × 128w × H₁/2 × W₁/2`.
    pub res2: Tensor,
    /// `layer3` output, `N × 256w × H₁/4 × W₁/4`.
    pub res3: Tensor,
    /// `layer4` output, `N × 512w × H₁/8 × W₁/8`.
    pub res4: Tensor,
}

impl ResNetStages {
    /// The feature map of `stage`.
    pub fn get(&self, stage: Stage) -> &Tensor {
        match stage {
            Stage::Res1 => &self.res1,
            Stage::Res2 => &self.res2,
            Stage::Res3 => &self.res3,
            Stage::Res4 => &self.res4,
        }
    }

    /// Globally average-pooled `res4`: the encoder feature (`N × 512w`).
    pub fn pooled(&self) -> Result<Tensor> {
        global_avg_pool(&self.res4)
    }
}

/// A BasicBlock ResNet encoder with an optional linear classifier `fc`.
#[derive(Clone, Debug)]
pub struct ResNet {
    config: ResNetConfig,
    conv1: Conv2d,
    bn1: BatchNorm,
    layers: [Vec<BasicBlock>; 4],
    fc: Option<Linear>,
}

impl ResNet {
    /// Builds the network from `vb` (torchvision names at `vb`'s prefix).
    ///
    /// Use [`crate::seeded_var_builder`] for a fresh seeded initialisation, or a safetensors
    /// `VarBuilder` / a loaded `VarMap` for stored weights.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`ResNetConfig::validate`]; a candle error if a stored tensor
    /// is missing or has another shape.
    pub fn new(config: &ResNetConfig, vb: VarBuilder<'_>) -> Result<Self> {
        config.validate()?;
        let widths = config.stage_widths();
        let (m, eps) = (config.bn_momentum, config.bn_eps);
        let conv1 = match config.stem {
            Stem::Cifar => conv2d_no_bias(config.in_channels, widths[0], 3, 1, 1, vb.pp("conv1"))?,
            Stem::ImageNet => {
                conv2d_no_bias(config.in_channels, widths[0], 7, 2, 3, vb.pp("conv1"))?
            }
        };
        let bn1 = BatchNorm::new(widths[0], true, m, eps, vb.pp("bn1"))?;
        let mut in_c = widths[0];
        let mut layers: [Vec<BasicBlock>; 4] = Default::default();
        for (s, blocks) in layers.iter_mut().enumerate() {
            let vb_s = vb.pp(format!("layer{}", s + 1));
            let stride = if s == 0 { 1 } else { 2 };
            for b in 0..config.blocks_per_stage[s] {
                let block_stride = if b == 0 { stride } else { 1 };
                blocks.push(BasicBlock::new(
                    in_c,
                    widths[s],
                    block_stride,
                    m,
                    eps,
                    vb_s.pp(b.to_string()),
                )?);
                in_c = widths[s];
            }
        }
        let fc = match config.num_classes {
            Some(k) => Some(linear(widths[3], k, true, vb.pp("fc"))?),
            None => None,
        };
        Ok(Self {
            config: config.clone(),
            conv1,
            bn1,
            layers,
            fc,
        })
    }

    /// The config this network was built from.
    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }

    /// Dimension of the pooled feature (512·w).
    pub fn feature_dim(&self) -> usize {
        self.config.feature_dim()
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let d = x.dims();
        if d.len() != 4 || d[1] != self.config.in_channels || d[0] == 0 {
            return Err(Error::InputShape {
                module: "ResNet",
                got: d.to_vec(),
                expected: format!(
                    "N × {} × H × W with N ≥ 1 (in_channels = {})",
                    self.config.in_channels, self.config.in_channels
                ),
            });
        }
        Ok(())
    }

    fn stem(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let x = self.bn1.forward_conv(&self.conv1, x, train, true)?;
        match self.config.stem {
            Stem::Cifar => Ok(x),
            // torchvision: MaxPool2d(3, stride 2, padding 1).
            Stem::ImageNet => max_pool2d(&x, 3, 2, 1),
        }
    }

    /// Stem and stages up to `stage` as conad-engine's one-op `ResidualNetwork` (CIFAR stem,
    /// training inside a `DirectGradients` scope), or `None` for the layer-by-layer path.
    fn trunk_fused(&self, x: &Tensor, stage: Stage, train: bool) -> Result<Option<Tensor>> {
        if self.config.stem != Stem::Cifar {
            return Ok(None);
        }
        let blocks: Vec<Vec<_>> = self.layers[..=stage.index()]
            .iter()
            .map(|layer| layer.iter().map(BasicBlock::engine_block).collect())
            .collect();
        let stages: Vec<_> = blocks
            .iter()
            .map(|b| conad_engine::ResidualStage { blocks: b })
            .collect();
        let fused = conad_engine::ResidualNetwork {
            stem_conv: &self.conv1,
            stem_bn: self.bn1.engine(),
            stages: &stages,
        }
        .forward_fused(x, train);
        match fused {
            Ok(y) => Ok(y),
            // A shape that does not fit some layer: the layer-by-layer path reports it with
            // that layer's name.
            Err(conad_engine::Error::Shape { .. }) => Ok(None),
            Err(e) => Err(engine_error(e, "resnet")),
        }
    }

    fn run_stage(&self, stage: Stage, mut x: Tensor, train: bool) -> Result<Tensor> {
        let layers = &self.layers[stage.index()];
        // The first block sets the stage's map size; when it runs on the engine, so do the
        // others, and the stage runs as one (conad-engine's `ResidualStage`).
        if let Some(first) = layers.first()
            && first.runs_on_engine(&x, train)?
        {
            let blocks: Vec<_> = layers.iter().map(BasicBlock::engine_block).collect();
            return conad_engine::ResidualStage { blocks: &blocks }
                .forward(&x, train)
                .map_err(|e| engine_error(e, "basic_block"));
        }
        for block in layers {
            x = block.forward(&x, train)?;
        }
        Ok(x)
    }

    /// All four stage outputs.
    ///
    /// # Shapes
    /// `x`: `N × in_channels × H × W`; see [`ResNetStages`] for the outputs.
    ///
    /// # Errors
    /// [`Error::InputShape`] for a wrong rank or channel count;
    /// [`Error::BatchNormTooFewValues`] when training on a batch too small for some stage.
    pub fn forward_stages(&self, x: &Tensor, train: bool) -> Result<ResNetStages> {
        self.check_input(x)?;
        let res1 = self.run_stage(Stage::Res1, self.stem(x, train)?, train)?;
        let res2 = self.run_stage(Stage::Res2, res1.clone(), train)?;
        let res3 = self.run_stage(Stage::Res3, res2.clone(), train)?;
        let res4 = self.run_stage(Stage::Res4, res3.clone(), train)?;
        Ok(ResNetStages {
            res1,
            res2,
            res3,
            res4,
        })
    }

    /// The feature map after `stage`, computing nothing beyond it (UniCon-HA trains stage `i`
    /// on its own augmentation family, so stages below 4 need a truncated pass).
    ///
    /// # Shapes
    /// `N × in_channels × H × W` → `N × C_stage × H_stage × W_stage`.
    ///
    /// # Errors
    /// As [`ResNet::forward_stages`].
    pub fn forward_to(&self, x: &Tensor, stage: Stage, train: bool) -> Result<Tensor> {
        self.check_input(x)?;
        if let Some(y) = self.trunk_fused(x, stage, train)? {
            return Ok(y);
        }
        let mut h = self.stem(x, train)?;
        for s in Stage::ALL.into_iter().take(stage.index() + 1) {
            h = self.run_stage(s, h, train)?;
        }
        Ok(h)
    }

    /// The encoder feature: globally average-pooled `res4`.
    ///
    /// # Shapes
    /// `N × in_channels × H × W` → `N × 512w`.
    ///
    /// # Errors
    /// As [`ResNet::forward_stages`].
    pub fn features(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        global_avg_pool(&self.forward_to(x, Stage::Res4, train)?)
    }

    /// Class logits from the final linear layer `fc`.
    ///
    /// # Shapes
    /// `N × in_channels × H × W` → `N × num_classes`.
    ///
    /// # Errors
    /// [`Error::NoClassifier`] if the config has no `num_classes`; as [`ResNet::forward_stages`].
    pub fn logits(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let fc = self.fc.as_ref().ok_or(Error::NoClassifier)?;
        Ok(self.features(x, train)?.apply(fc)?)
    }
}

/// `forward_t` returns the pooled encoder feature (`N × 512w`), as [`ResNet::features`].
impl ModuleT for ResNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.features(x, train).map_err(Error::into_candle)
    }
}
