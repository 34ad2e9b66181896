//! torchvision's `BasicBlock` (He et al. 2016, "Deep Residual Learning", Fig. 2 left):
//! `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`, with a 1×1 strided conv + BN shortcut
//! (`downsample.0`, `downsample.1`) when the stride or the width changes.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use crate::error::Result;
use crate::layers::{BatchNorm, Conv2d, add_relu, conv2d_no_bias, engine_error};

/// One residual BasicBlock with torchvision parameter names.
#[derive(Clone, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    downsample: Option<(Conv2d, BatchNorm)>,
}

impl BasicBlock {
    /// Builds the block under `vb`'s prefix (e.g. `layer2.0`).
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        stride: usize,
        bn_momentum: f64,
        bn_eps: f64,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        let conv1 = conv2d_no_bias(in_channels, out_channels, 3, stride, 1, vb.pp("conv1"))?;
        let bn1 = BatchNorm::new(out_channels, true, bn_momentum, bn_eps, vb.pp("bn1"))?;
        let conv2 = conv2d_no_bias(out_channels, out_channels, 3, 1, 1, vb.pp("conv2"))?;
        let bn2 = BatchNorm::new(out_channels, true, bn_momentum, bn_eps, vb.pp("bn2"))?;
        let downsample = if stride != 1 || in_channels != out_channels {
            let vb = vb.pp("downsample");
            Some((
                conv2d_no_bias(in_channels, out_channels, 1, stride, 0, vb.pp("0"))?,
                BatchNorm::new(out_channels, true, bn_momentum, bn_eps, vb.pp("1"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            conv1,
            bn1,
            conv2,
            bn2,
            downsample,
        })
    }

    /// # Shapes
    /// `N × C_in × H × W` → `N × C_out × ⌈H/stride⌉ × ⌈W/stride⌉`.
    ///
    /// Training on CPU runs the whole block as one fused op (conad-engine's `ResidualBlock`, same
    /// arithmetic as the separate layers); degenerate batches take the separate layers, which
    /// report [`crate::Error::BatchNormTooFewValues`].
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if self.runs_on_engine(x, train)? {
            return self
                .engine_block()
                .forward(x, train)
                .map_err(|e| engine_error(e, "basic_block"));
        }
        let out = self.bn1.forward_conv(&self.conv1, x, train, true)?;
        let out = self.bn2.forward_conv(&self.conv2, &out, train, false)?;
        let shortcut = match &self.downsample {
            Some((conv, bn)) => bn.forward_conv(conv, x, train, false)?,
            None => x.clone(),
        };
        add_relu(&out, &shortcut)
    }

    /// Whether [`Self::forward`] runs conad-engine's `ResidualBlock` for `x` (everything but a
    /// training batch with a single value per channel after `conv1`).
    ///
    /// # Errors
    /// [`crate::Error::InputShape`] when `x` does not fit `conv1`.
    pub(crate) fn runs_on_engine(&self, x: &Tensor, train: bool) -> Result<bool> {
        let w = self.conv1.weight().dims();
        let g = conad_engine::ConvGeometry::new(x.dims(), w, self.conv1.stride(), 1)
            .map_err(|e| engine_error(e, "conv2d"))?;
        Ok(!train || g.batch * g.out_pixels() >= 2)
    }

    /// The block's layers as conad-engine's `ResidualBlock`.
    pub(crate) fn engine_block(&self) -> conad_engine::ResidualBlock<'_> {
        conad_engine::ResidualBlock {
            conv1: &self.conv1,
            bn1: self.bn1.engine(),
            conv2: &self.conv2,
            bn2: self.bn2.engine(),
            downsample: self.downsample.as_ref().map(|(c, b)| (c, b.engine())),
        }
    }
}
