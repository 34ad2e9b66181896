//! Layer constructors with torchvision/PyTorch initialisation hints, and a batch-norm wrapper
//! that refuses degenerate training batches.
//!
//! Convolutions and 4-d batch norms run on conad-engine's kernels on CPU (convolutions and fused
//! batch norm with their own backward passes, docs/engine.md) and on candle's
//! ops elsewhere (cuDNN with the `cuda` feature); the choice is made per call from the tensor's
//! device, so model code only sees these layer types.
//!
//! The hints are read by [`crate::SeededInit`] (seeded draws); with any other `VarBuilder`
//! backend (safetensors, npz, a plain `VarMap` that already holds the values) they are ignored and
//! the stored tensors are used.

use candle_core::{ModuleT, Tensor};
use candle_nn::init::{FanInOut, NonLinearity, NormalOrUniform};
use candle_nn::{BatchNormConfig, Init, Linear, VarBuilder};
pub use conad_engine::Conv2d;

use crate::error::{Error, Result};

/// torchvision's conv init: `kaiming_normal_(mode="fan_out", nonlinearity="relu")`.
pub const CONV_INIT: Init = Init::Kaiming {
    dist: NormalOrUniform::Normal,
    fan: FanInOut::FanOut,
    non_linearity: NonLinearity::ReLU,
};

/// Maps an engine error onto this crate's error type.
pub(crate) fn engine_error(e: conad_engine::Error, module: &'static str) -> Error {
    match e {
        conad_engine::Error::Shape { got, expected, .. } => Error::InputShape {
            module,
            got,
            expected,
        },
        other => Error::Candle(other.into_candle()),
    }
}

/// Applies `conv` to `x` (engine kernels on CPU f32, candle's conv elsewhere).
///
/// # Errors
/// [`Error::InputShape`] when `x` does not fit the convolution.
pub fn apply_conv(conv: &Conv2d, x: &Tensor) -> Result<Tensor> {
    conv.forward(x).map_err(|e| engine_error(e, "conv2d"))
}

/// `relu(a + b)`, the residual join: one fused op (forward and backward) on CPU f32 tensors.
///
/// # Errors
/// [`Error::InputShape`] when the shapes differ.
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    conad_engine::add_relu(a, b).map_err(|e| engine_error(e, "add_relu"))
}

/// A bias-free square 2-d convolution (`<prefix>.weight`, shape `out × in × k × k`) with
/// [`CONV_INIT`]; a [`conad_engine::Conv2d`] (a `candle_core::Module`).
pub fn conv2d_no_bias(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    vb: VarBuilder<'_>,
) -> Result<Conv2d> {
    let weight = vb.get_with_hints(
        (out_channels, in_channels, kernel, kernel),
        "weight",
        CONV_INIT,
    )?;
    Conv2d::new(weight, stride, padding).map_err(|e| engine_error(e, "conv2d_no_bias"))
}

/// A linear layer (`<prefix>.weight` of shape `out × in`, optional `<prefix>.bias`) with PyTorch's
/// default init: weight `kaiming_uniform_(a=√5)` = U(−1/√in, 1/√in), bias U(−1/√in, 1/√in).
pub fn linear(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder<'_>) -> Result<Linear> {
    let bound = 1.0 / (in_dim.max(1) as f64).sqrt();
    let init = Init::Uniform {
        lo: -bound,
        up: bound,
    };
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", init)?;
    let bias = if bias {
        Some(vb.get_with_hints(out_dim, "bias", init)?)
    } else {
        None
    };
    Ok(Linear::new(weight, bias))
}

/// Batch normalisation over dimension 1 (`N × C` or `N × C × H × W`) with running statistics.
///
/// Training mode normalises with the biased batch variance and updates `running_mean` /
/// `running_var` (unbiased) with PyTorch's momentum semantics; evaluation mode uses the running
/// statistics. Parameters: `weight`, `bias` (if affine), `running_mean`, `running_var` —
/// torchvision names (`num_batches_tracked` is not used).
#[derive(Clone, Debug)]
pub struct BatchNorm {
    inner: conad_engine::BatchNorm2d,
    name: String,
}

impl BatchNorm {
    /// Builds the layer under `vb`'s prefix.
    pub fn new(
        channels: usize,
        affine: bool,
        momentum: f64,
        eps: f64,
        vb: VarBuilder<'_>,
    ) -> Result<Self> {
        let name = vb.prefix();
        let cfg = BatchNormConfig {
            eps,
            remove_mean: true,
            affine,
            momentum,
        };
        Ok(Self {
            inner: conad_engine::BatchNorm2d::from_candle(candle_nn::batch_norm(
                channels, cfg, vb,
            )?),
            name,
        })
    }

    /// The wrapped candle-nn layer (running statistics, weight and bias).
    /// The engine layer (shares the parameters with [`Self::inner`]).
    pub fn engine(&self) -> &conad_engine::BatchNorm2d {
        &self.inner
    }

    pub fn inner(&self) -> &candle_nn::BatchNorm {
        self.inner.inner()
    }

    /// Normalises `x`; `train = true` uses and updates batch statistics.
    ///
    /// # Errors
    /// [`Error::BatchNormTooFewValues`] in training mode when a channel has a single value
    /// (batch 1 on a 1×1 map or a vector), like PyTorch.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_impl(x, train, false)
    }

    /// `relu(bn(x))`, fused into one op (forward and backward) for CPU training on 4-d inputs.
    ///
    /// # Errors
    /// As [`Self::forward`].
    pub fn forward_relu(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_impl(x, train, true)
    }

    /// `bn(conv(x))` (then a ReLU when `relu`): one fused op, forward and backward, when training
    /// on CPU f32 tensors (conad-engine's `ConvBnOp`); the separate layers otherwise.
    ///
    /// # Errors
    /// [`Error::InputShape`] when `x` does not fit `conv`; [`Error::BatchNormTooFewValues`] as
    /// in [`Self::forward`].
    pub fn forward_conv(
        &self,
        conv: &Conv2d,
        x: &Tensor,
        train: bool,
        relu: bool,
    ) -> Result<Tensor> {
        let w = conv.weight().dims();
        let g = conad_engine::ConvGeometry::new(x.dims(), w, conv.stride(), conv.padding())
            .map_err(|e| engine_error(e, "conv2d"))?;
        let count = g.batch * g.out_pixels();
        if train && count < 2 {
            return Err(Error::BatchNormTooFewValues {
                layer: self.name.clone(),
                count,
                shape: vec![g.batch, g.out_channels, g.out_height(), g.out_width()],
            });
        }
        self.inner
            .forward_conv(conv, x, train, relu)
            .map_err(|e| engine_error(e, "conv2d + batch_norm"))
    }

    fn forward_impl(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        if train {
            let dims = x.dims();
            let channels = dims.get(1).copied().unwrap_or(0).max(1);
            let count = x.elem_count() / channels;
            if count < 2 {
                return Err(Error::BatchNormTooFewValues {
                    layer: self.name.clone(),
                    count,
                    shape: dims.to_vec(),
                });
            }
        }
        self.inner
            .forward(x, train, relu)
            .map_err(|e| engine_error(e, "batch_norm"))
    }
}

impl ModuleT for BatchNorm {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.forward(x, train).map_err(Error::into_candle)
    }
}

/// Global average pooling: `N × C × H × W` → `N × C`.
///
/// # Errors
/// [`Error::InputShape`] unless `x` has rank 4.
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    if x.rank() != 4 {
        return Err(Error::InputShape {
            module: "global_avg_pool",
            got: x.dims().to_vec(),
            expected: "N × C × H × W".into(),
        });
    }
    Ok(x.mean((2, 3))?)
}

/// Differentiable 2-d max pooling with overlapping windows and padding (PyTorch
/// `MaxPool2d(kernel, stride, padding)` semantics: padding never wins).
///
/// candle's `max_pool2d_with_stride` has no backward pass when `kernel != stride` (the ImageNet
/// stem's 3×3/2 pool), so the pool is composed from strided selections and element-wise
/// `maximum`, separably over rows then columns. Padding is done by shifting the input so that its
/// minimum is 0 and padding with zeros, which equals padding with the input's minimum — a value no
/// window can exceed with padding alone, since every window holds at least one real element.
/// Gradients go to the arg-max; exact ties share it (candle's `maximum` rule).
///
/// # Shapes
/// `N × C × H × W` → `N × C × ⌊(H + 2p − k)/s⌋ + 1 × ⌊(W + 2p − k)/s⌋ + 1`.
///
/// # Errors
/// [`Error::InputShape`] unless `x` has rank 4 and both spatial sizes satisfy `H + 2p ≥ k`, or if
/// `kernel`/`stride` is 0 or `padding > kernel / 2` (PyTorch's limit).
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    let dims = x.dims();
    let bad = || Error::InputShape {
        module: "max_pool2d",
        got: dims.to_vec(),
        expected: format!(
            "N × C × H × W with H, W ≥ {} (kernel {kernel}, stride {stride}, padding {padding}; \
             kernel, stride ≥ 1 and padding ≤ kernel/2)",
            kernel.saturating_sub(2 * padding).max(1)
        ),
    };
    if dims.len() != 4
        || kernel == 0
        || stride == 0
        || 2 * padding > kernel
        || dims[2] + 2 * padding < kernel
        || dims[3] + 2 * padding < kernel
    {
        return Err(bad());
    }
    let shift = if padding > 0 {
        Some(x.detach().min_all()?)
    } else {
        None
    };
    let mut h = match &shift {
        Some(m) => x.broadcast_sub(m)?,
        None => x.clone(),
    };
    for dim in [2, 3] {
        let len = h.dim(dim)?;
        let out = (len + 2 * padding - kernel) / stride + 1;
        // Room for the last window *and* for reshaping `out·stride` elements at every offset.
        let need = (kernel - 1) + stride * out;
        let right = need.saturating_sub(len + padding);
        let padded = h.pad_with_zeros(dim, padding, right)?;
        let mut acc: Option<Tensor> = None;
        for offset in 0..kernel {
            let sel = select_strided(&padded, dim, offset, stride, out)?;
            acc = Some(match acc {
                None => sel,
                Some(a) => a.maximum(&sel)?,
            });
        }
        h = acc.expect("kernel ≥ 1");
    }
    Ok(match &shift {
        Some(m) => h.broadcast_add(m)?,
        None => h,
    })
}

/// Elements `offset, offset + stride, …` (`count` of them) along `dim`.
fn select_strided(
    x: &Tensor,
    dim: usize,
    offset: usize,
    stride: usize,
    count: usize,
) -> Result<Tensor> {
    let t = x.narrow(dim, offset, stride * count)?;
    if stride == 1 {
        return Ok(t);
    }
    let mut shape = t.dims().to_vec();
    shape[dim] = count;
    shape.insert(dim + 1, stride);
    Ok(t.reshape(shape)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn max_pool_padding_never_wins_and_gradient_goes_to_argmax() {
        // All-negative input: zero padding would wrongly return 0s.
        let x = Var::new(
            &[[[[-9f32, -8., -7.], [-6., -5., -4.], [-3., -2., -1.]]]],
            &Device::Cpu,
        )
        .unwrap();
        let y = max_pool2d(x.as_tensor(), 3, 2, 1).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [-5., -4., -2., -1.]
        );
        let g = y.sum_all().unwrap().backward().unwrap();
        let g = g.get(x.as_tensor()).unwrap().flatten_all().unwrap();
        assert_eq!(
            g.to_vec1::<f32>().unwrap(),
            [0., 0., 0., 0., 1., 1., 0., 1., 1.]
        );
    }

    #[test]
    fn max_pool_matches_candle_without_padding() {
        let v: Vec<f32> = (0..2 * 3 * 9 * 7)
            .map(|i| ((i * 7919) % 101) as f32 - 50.0)
            .collect();
        let x = Tensor::from_vec(v, (2, 3, 9, 7), &Device::Cpu).unwrap();
        for (k, s) in [(3, 2), (2, 2), (3, 1), (3, 3)] {
            let ours = max_pool2d(&x, k, s, 0).unwrap();
            let theirs = x.max_pool2d_with_stride(k, s).unwrap();
            assert_eq!(ours.dims(), theirs.dims(), "k {k} s {s}");
            let d = (ours - theirs).unwrap().abs().unwrap().max_all().unwrap();
            assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0, "k {k} s {s}");
        }
    }

    #[test]
    fn max_pool_rejects_bad_arguments() {
        let x = Tensor::zeros((1, 1, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(max_pool2d(&x, 5, 1, 1).is_err());
        assert!(max_pool2d(&x, 3, 0, 1).is_err());
        assert!(max_pool2d(&x, 2, 2, 2).is_err());
        assert_eq!(max_pool2d(&x, 3, 2, 1).unwrap().dims(), &[1, 1, 1, 1]);
    }
}
