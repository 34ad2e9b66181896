//! UniCon-HA stage heads (docs/reference.md §1.5, **\[PROPOSAL\]**): the paper "down-samples and projects the
//! feature maps to the same shape as the last stage". For stage `res_k` the head applies
//! `4 − k` blocks `conv3×3/2 (no bias) – BN – ReLU`, each doubling the width (res2: 128→256→512,
//! res3: 256→512, res4: none), then global average pooling and an MLP head
//! (512 → 512 → ReLU → 128 by default). The output is the raw projection; losses L2-normalise it.
//!
//! Parameter names under the head's prefix: `down.{j}.conv.weight`, `down.{j}.bn.*`, `mlp.*`.

use candle_core::{ModuleT, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::config::{ResNetConfig, Stage};
use crate::error::{Error, Result};
use crate::layers::{BatchNorm, Conv2d, conv2d_no_bias, global_avg_pool};
use crate::projection_head::{MlpHead, MlpHeadConfig};

/// Configuration of a [`StageHead`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StageHeadConfig {
    /// Stage whose feature map the head reads.
    pub stage: Stage,
    /// Widths of the encoder's stages (from [`ResNetConfig::stage_widths`]).
    pub stage_widths: [usize; 4],
    /// Projection MLP after pooling; `in_dim` must equal `stage_widths[3]`.
    pub projection: MlpHeadConfig,
    /// BN momentum of the down-sampling blocks.
    pub bn_momentum: f64,
    /// BN epsilon of the down-sampling blocks.
    pub bn_eps: f64,
}

impl Default for StageHeadConfig {
    /// The res4 head of a full-width ResNet-18.
    fn default() -> Self {
        Self::unicon_ha(&ResNetConfig::default(), Stage::Res4)
    }
}

impl StageHeadConfig {
    /// The docs/reference.md §1.5 proposal for `stage` of `encoder`, with a SimCLR projection MLP.
    pub fn unicon_ha(encoder: &ResNetConfig, stage: Stage) -> Self {
        let widths = encoder.stage_widths();
        Self {
            stage,
            stage_widths: widths,
            projection: MlpHeadConfig {
                bn_momentum: encoder.bn_momentum,
                bn_eps: encoder.bn_eps,
                ..MlpHeadConfig::simclr(widths[3])
            },
            bn_momentum: encoder.bn_momentum,
            bn_eps: encoder.bn_eps,
        }
    }

    /// Number of down-sampling blocks (`3 − stage index`).
    pub fn num_down_blocks(&self) -> usize {
        3 - self.stage.index()
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero widths, a projection whose `in_dim` is not the last
    /// stage width, or BN parameters out of range.
    pub fn validate(&self) -> Result<()> {
        if self.stage_widths.contains(&0) {
            return Err(Error::invalid(
                "stage_widths",
                format!("{:?}", self.stage_widths),
                "every width must be ≥ 1",
            ));
        }
        if self.projection.in_dim != self.stage_widths[3] {
            return Err(Error::invalid(
                "projection.in_dim",
                self.projection.in_dim,
                format!(
                    "must equal the last stage width {} (the head down-samples to it)",
                    self.stage_widths[3]
                ),
            ));
        }
        let bn_ok =
            (0.0..=1.0).contains(&self.bn_momentum) && self.bn_eps.is_finite() && self.bn_eps > 0.0;
        if !bn_ok {
            return Err(Error::invalid(
                "bn_momentum/bn_eps",
                format!("{}/{}", self.bn_momentum, self.bn_eps),
                "momentum must lie in [0, 1] and eps be positive",
            ));
        }
        self.projection.validate()
    }
}

/// Down-sampling blocks + pooled MLP on top of one ResNet stage.
#[derive(Clone, Debug)]
pub struct StageHead {
    config: StageHeadConfig,
    down: Vec<(Conv2d, BatchNorm)>,
    mlp: MlpHead,
}

impl StageHead {
    /// Builds the head under `vb`'s prefix.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`StageHeadConfig::validate`]; candle errors for stored
    /// tensors of the wrong shape.
    pub fn new(config: &StageHeadConfig, vb: VarBuilder<'_>) -> Result<Self> {
        config.validate()?;
        let w = config.stage_widths;
        let first = config.stage.index();
        let mut down = Vec::new();
        for (j, s) in (first..3).enumerate() {
            let vb_j = vb.pp("down").pp(j.to_string());
            down.push((
                conv2d_no_bias(w[s], w[s + 1], 3, 2, 1, vb_j.pp("conv"))?,
                BatchNorm::new(
                    w[s + 1],
                    true,
                    config.bn_momentum,
                    config.bn_eps,
                    vb_j.pp("bn"),
                )?,
            ));
        }
        let mlp = MlpHead::new(&config.projection, vb.pp("mlp"))?;
        Ok(Self {
            config: config.clone(),
            down,
            mlp,
        })
    }

    /// The head's config.
    pub fn config(&self) -> &StageHeadConfig {
        &self.config
    }

    /// # Shapes
    /// `N × stage_widths[stage] × H × W` → `N × projection.out_dim`.
    ///
    /// # Errors
    /// [`Error::InputShape`] if the channel count is not the stage's width;
    /// [`Error::BatchNormTooFewValues`] for degenerate training batches.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let c = self.config.stage_widths[self.config.stage.index()];
        if x.rank() != 4 || x.dim(1)? != c {
            return Err(Error::InputShape {
                module: "StageHead",
                got: x.dims().to_vec(),
                expected: format!("N × {c} × H × W ({:?} feature map)", self.config.stage),
            });
        }
        let mut h = x.clone();
        for (conv, bn) in &self.down {
            h = bn.forward_conv(conv, &h, train, true)?;
        }
        self.mlp.forward(&global_avg_pool(&h)?, train)
    }
}

impl ModuleT for StageHead {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.forward(x, train).map_err(Error::into_candle)
    }
}
