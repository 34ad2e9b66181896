//! The engine's batch-norm layer for NCHW feature maps: fused training forward/backward
//! ([`crate::BatchNormOp`]) with an optional fused ReLU, PyTorch running-statistic updates
//! (`running ← (1 − m)·running + m·batch`, unbiased variance for `running_var`), the running
//! statistics as constants in evaluation mode ([`crate::BatchNormEvalOp`]), and candle-nn's own
//! implementation for non-CPU or non-f32 tensors.

use std::sync::{Arc, Mutex};

use candle_core::{DType, Tensor, Var};

use crate::batch_norm_eval_op::BatchNormEvalOp;
use crate::batch_norm_op::{BatchNormOp, BatchNormStats};
use crate::conv_bn::{ConvBnOp, ConvBnSaved};
use crate::conv2d::Conv2d;
use crate::cpu_data::{cpu_tensor, with_tensor_slice};
use crate::error::{Error, Result};
use crate::geometry::ConvGeometry;

/// Batch normalisation over dimension 1 of `N × C × H × W` tensors, parameters shared with a
/// `candle_nn::BatchNorm` (same `Var`s, so checkpoints and optimisers see one set).
#[derive(Clone, Debug)]
pub struct BatchNorm2d {
    inner: candle_nn::BatchNorm,
}

impl BatchNorm2d {
    /// Wraps a candle-nn batch norm (its running statistics must be `Var`s, as
    /// `candle_nn::batch_norm` makes them, for the training updates to persist).
    pub fn from_candle(inner: candle_nn::BatchNorm) -> Self {
        Self { inner }
    }

    /// The wrapped candle-nn layer.
    pub fn inner(&self) -> &candle_nn::BatchNorm {
        &self.inner
    }

    /// Whether calls on `x` run the engine's ops (fused batch statistics in training mode, the
    /// running statistics in evaluation mode).
    pub fn uses_engine(&self, x: &Tensor) -> bool {
        x.device().is_cpu() && x.dtype() == DType::F32 && x.rank() == 4
    }

    /// `bn(x)`, followed by a ReLU when `relu`; `train` uses and updates batch statistics.
    ///
    /// # Shapes
    /// `N × C × H × W` → same (the candle fallback also accepts `N × C`).
    ///
    /// # Errors
    /// [`Error::Shape`] when dimension 1 is not `C`, or in training mode when a channel holds
    /// fewer than two values (the unbiased running variance would divide by zero).
    pub fn forward(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        let channels = self.inner.running_mean().dim(0)?;
        if x.rank() < 2 || x.dim(1)? != channels {
            return Err(Error::Shape {
                op: "BatchNorm2d",
                got: x.dims().to_vec(),
                expected: format!("N × {channels} × …"),
            });
        }
        if train && x.elem_count() / channels < 2 {
            return Err(Error::Shape {
                op: "BatchNorm2d",
                got: x.dims().to_vec(),
                expected: "more than one value per channel in training mode".into(),
            });
        }
        if !self.uses_engine(x) {
            let y = candle_core::ModuleT::forward_t(&self.inner, x, train)?;
            return Ok(if relu { y.relu()? } else { y });
        }
        if !train {
            return self.forward_eval(&x.contiguous()?, channels, relu);
        }
        let x = x.contiguous()?;
        let dims = x.dims();
        let (batch, pixels) = (dims[0], dims[2] * dims[3]);
        let stats = with_tensor_slice("BatchNorm2d", &x, |xs| {
            Ok(BatchNormStats::compute(xs, batch, channels, pixels))
        })?;
        self.update_running(&stats)?;
        let (gamma, beta) = self.affine(channels, x.device())?;
        let op = BatchNormOp::new(Arc::new(stats), self.inner.eps(), relu);
        Ok(x.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?)
    }

    /// Evaluation mode on the engine: the running statistics as constants
    /// ([`BatchNormEvalOp`]).
    fn forward_eval(&self, x: &Tensor, channels: usize, relu: bool) -> Result<Tensor> {
        let read = |t: &Tensor| with_tensor_slice("BatchNorm2d", t, |v| Ok(v.to_vec()));
        let mean = read(self.inner.running_mean())?;
        let var = read(self.inner.running_var())?;
        let (gamma, beta) = self.affine(channels, x.device())?;
        let op = BatchNormEvalOp::new(mean, var, self.inner.eps(), relu);
        Ok(x.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?)
    }

    /// `(γ, β)`, ones and zeros without affine parameters.
    pub(crate) fn affine(
        &self,
        channels: usize,
        device: &candle_core::Device,
    ) -> Result<(Tensor, Tensor)> {
        Ok(match self.inner.weight_and_bias() {
            Some((w, b)) => (w.clone(), b.clone()),
            None => (
                Tensor::ones(channels, DType::F32, device)?,
                Tensor::zeros(channels, DType::F32, device)?,
            ),
        })
    }

    /// `[γ; β]` as one tensor (ones and zeros without affine parameters), for fused ops.
    pub(crate) fn gamma_beta(
        &self,
        channels: usize,
        device: &candle_core::Device,
    ) -> Result<Tensor> {
        Ok(match self.inner.weight_and_bias() {
            Some((w, b)) => Tensor::cat(&[w, b], 0)?,
            None => Tensor::cat(
                &[
                    Tensor::ones(channels, DType::F32, device)?,
                    Tensor::zeros(channels, DType::F32, device)?,
                ],
                0,
            )?,
        })
    }

    /// `conv` then this batch norm (then a ReLU when `relu`), fused into one op (forward and
    /// backward) for training on CPU f32 tensors; separate ops otherwise.
    ///
    /// # Errors
    /// As [`Conv2d::forward`] and [`Self::forward`].
    pub fn forward_conv(
        &self,
        conv: &Conv2d,
        x: &Tensor,
        train: bool,
        relu: bool,
    ) -> Result<Tensor> {
        let channels = self.inner.running_mean().dim(0)?;
        if !(train && conv.uses_engine(x) && conv.weight().dim(0)? == channels) {
            return self.forward(&conv.forward(x)?, train, relu);
        }
        let g = ConvGeometry::new(
            x.dims(),
            conv.weight().dims(),
            conv.stride(),
            conv.padding(),
        )?;
        if g.batch * g.out_pixels() < 2 {
            return Err(Error::Shape {
                op: "BatchNorm2d",
                got: vec![g.batch, channels, g.out_height(), g.out_width()],
                expected: "more than one value per channel in training mode".into(),
            });
        }
        let saved = Arc::new(Mutex::new(ConvBnSaved::default()));
        let op = ConvBnOp::new(
            conv.stride(),
            conv.padding(),
            self.inner.eps(),
            relu,
            saved.clone(),
        );
        let gb = self.gamma_beta(channels, x.device())?;
        let y = x
            .contiguous()?
            .apply_op3(&conv.weight().contiguous()?, &gb, op)?;
        let stats = saved
            .lock()
            .map_err(|_| Error::Candle(candle_core::Error::Msg("conv-bn state poisoned".into())))?
            .stats();
        if let Some(stats) = stats {
            self.update_running(&stats)?;
        }
        Ok(y)
    }

    pub(crate) fn update_running(&self, stats: &BatchNormStats) -> Result<()> {
        let m = self.inner.momentum();
        let n = stats.count as f64;
        let update = |running: &Tensor, batch: &[f32], factor: f64| -> Result<()> {
            let old = with_tensor_slice("BatchNorm2d", running, |r| Ok(r.to_vec()))?;
            let new: Vec<f32> = old
                .iter()
                .zip(batch)
                .map(|(&o, &b)| ((1.0 - m) * o as f64 + m * factor * b as f64) as f32)
                .collect();
            Var::from_tensor(running)?.set(&cpu_tensor(new, old.len())?)?;
            Ok(())
        };
        update(self.inner.running_mean(), &stats.mean, 1.0)?;
        update(self.inner.running_var(), &stats.var, n / (n - 1.0))
    }
}
