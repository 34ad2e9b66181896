//! SimCLR (Chen et al. 2020, <https://arxiv.org/abs/2002.05709>; METHODS §1.1): two augmented
//! views per source image in the view-major layout `[view 1 of 0..N; view 2 of 0..N]`, encoder
//! → MLP projection head `d → d → 128` (d = 512·width, ReLU, biases) → L2 normalisation →
//! symmetric NT-Xent over the 2N projections (τ = 0.5 by default; CSI hard-codes 0.5).

use candle_core::Tensor;
use candle_nn::VarBuilder;
use conad_losses::{L2_EPS, NtXent, NtXentConfig, NtXentVariant, l2_normalize};
use conad_models::{MlpHead, MlpHeadConfig, ResNet, ResNetConfig};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::method::{BatchContext, Method, MethodBatch, StepOutput};

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
}

impl Default for SimClrConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            projection_dim: 128,
            hidden_dim: None,
            variant: NtXentVariant::Symmetric,
        }
    }
}

impl SimClrConfig {
    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
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
    fn name(&self) -> &'static str {
        "simclr"
    }

    fn batch(&self, ctx: &BatchContext<'_>) -> Result<MethodBatch> {
        let n = ctx.indices.len();
        let [c, h, w] = ctx
            .augmenter
            .view_shape(ctx.images, &[Default::default()])?;
        let mut buf = vec![0f32; Self::VIEWS * n * c * h * w];
        ctx.augmenter.augment_batch_into(
            ctx.images,
            ctx.indices,
            ctx.epoch,
            Self::VIEWS,
            &mut buf,
        )?;
        let x = Tensor::from_vec(buf, (Self::VIEWS * n, c, h, w), ctx.device)?;
        Ok(MethodBatch {
            inputs: vec![x],
            source_images: n,
            encoder_images: Self::VIEWS * n,
        })
    }

    fn forward_loss(&self, encoder: &ResNet, batch: &MethodBatch) -> Result<StepOutput> {
        let x = batch
            .inputs
            .first()
            .ok_or_else(|| Error::DataMismatch("SimCLR batch has no input tensor".into()))?;
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
}
