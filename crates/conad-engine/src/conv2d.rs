//! The engine's 2-d convolution layer: a drop-in for `candle_nn::Conv2d` (no bias, no groups,
//! no dilation) that runs the engine's custom op on CPU f32 tensors and candle's own `conv2d`
//! (cuDNN with the `cuda` feature) everywhere else — the call site never chooses.

use candle_core::{DType, Module, Tensor};

use crate::conv_op::Conv2dOp;
use crate::error::{Error, Result};
use crate::geometry::ConvGeometry;

/// A bias-free 2-d convolution with a square `out × in × k × k` kernel.
#[derive(Clone, Debug)]
pub struct Conv2d {
    weight: Tensor,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    /// Wraps `weight` (`out × in × k × k`).
    ///
    /// # Errors
    /// [`Error::Shape`] for a weight that is not `out × in × k × k`; [`Error::Param`] for
    /// stride 0.
    pub fn new(weight: Tensor, stride: usize, padding: usize) -> Result<Self> {
        let w = weight.dims();
        if w.len() != 4 || w[2] != w[3] || w[2] == 0 {
            return Err(Error::Shape {
                op: "Conv2d::new",
                got: w.to_vec(),
                expected: "a weight out × in × k × k with k ≥ 1".into(),
            });
        }
        if stride == 0 {
            return Err(Error::Param {
                op: "Conv2d::new",
                name: "stride",
                value: 0.0,
                hint: "the stride must be at least 1",
            });
        }
        Ok(Self {
            weight,
            stride,
            padding,
        })
    }

    /// The weight, `out × in × k × k`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// Stride.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Zero padding.
    pub fn padding(&self) -> usize {
        self.padding
    }

    /// Whether [`Self::forward`] runs the engine's kernels for `x` (CPU, f32) rather than
    /// candle's `conv2d`.
    pub fn uses_engine(&self, x: &Tensor) -> bool {
        x.device().is_cpu() && x.dtype() == DType::F32 && self.weight.dtype() == DType::F32
    }

    /// # Shapes
    /// `N × in × H × W` → `N × out × ⌊(H + 2p − k)/s⌋ + 1 × ⌊(W + 2p − k)/s⌋ + 1`.
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` does not fit the weight (rank, channels, too small).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ConvGeometry::new(x.dims(), self.weight.dims(), self.stride, self.padding)?;
        if self.uses_engine(x) {
            let op = Conv2dOp {
                stride: self.stride,
                padding: self.padding,
            };
            Ok(x.contiguous()?.apply_op2(&self.weight.contiguous()?, op)?)
        } else {
            Ok(x.conv2d(&self.weight, self.padding, self.stride, 1, 1)?)
        }
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Conv2d::forward(self, x).map_err(Error::into_candle)
    }
}
