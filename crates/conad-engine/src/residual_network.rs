//! A ResNet trunk — the stem's conv + batch norm + ReLU, then stages of residual blocks — as one
//! candle op inside a [`crate::DirectGradients`] scope. Between separate ops candle stores the
//! gradient reaching every stage output (and the stem's) as `zeros_like + add` of an
//! activation-sized tensor on its single-threaded element-wise pool; inside the op each input
//! gradient passes straight to the previous layer's backward. Same arithmetic as the layers run
//! one by one.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::batch_norm::BatchNorm2d;
use crate::conv_bn::{ConvBnCore, ConvBnSaved};
use crate::conv2d::Conv2d;
use crate::cpu_data::{cpu_tensor, storage_slice, with_tensor_slices};
use crate::direct_gradients::{Deposits, deposit};
use crate::error::Result;
use crate::geometry::ConvGeometry;
use crate::residual_block::direct_deposits;
use crate::residual_stage::{BlockChain, ResidualStage};

const NAME: &str = "conad-residual-network";

fn poisoned() -> candle_core::Error {
    candle_core::Error::Msg(format!("{NAME}: state poisoned"))
}

/// The trunk on `(x, w_stem)`: the stem weight is the op's second input so that candle runs
/// the backward even when `x` (images) tracks nothing; every other parameter is read in place
/// and its gradient handed to the scope.
#[derive(Clone, Debug)]
struct NetworkOp {
    stem: ConvBnCore,
    /// The stem batch norm's `γ` and `β`.
    stem_affine: [Tensor; 2],
    blocks: BlockChain,
    deposits: Deposits,
    /// The stem's output (the blocks' input), kept by the forward.
    stem_out: Arc<Mutex<Option<Vec<f32>>>>,
}

impl CustomOp2 for NetworkOp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = storage_slice(NAME, s1, l1)?;
        let w = storage_slice(NAME, s2, l2)?;
        let stem = with_tensor_slices(NAME, &self.stem_affine, |gb| {
            self.stem.forward(NAME, x, w, gb[0], gb[1])
        })?;
        let y = self.blocks.forward(&stem)?;
        *self.stem_out.lock().map_err(|_| poisoned())? = Some(stem);
        Ok((CpuStorage::F32(y), self.blocks.out_shape()?))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let stem_out = self.stem_out.lock().map_err(|_| poisoned())?;
        let Some(stem_out) = stem_out.as_deref() else {
            candle_core::bail!("{NAME}: backward before forward");
        };
        let mut all = vec![x.clone(), w.clone(), y.clone(), dy.clone()];
        all.extend(self.stem_affine.iter().cloned());
        let (dx, dw, dgamma, dbeta) = with_tensor_slices(NAME, &all, |s| {
            let (xs, ws, ys, dys, gamma) = (s[0], s[1], s[2], s[3], s[4]);
            let Some(dstem) = self.blocks.backward(stem_out, ys, dys, true)? else {
                candle_core::bail!("{NAME}: the first block gave no input gradient");
            };
            self.stem.backward(
                NAME,
                xs,
                ws,
                gamma,
                stem_out,
                &dstem,
                x.track_op(),
                w.track_op(),
            )
        })?;
        for (param, grad) in self.stem_affine.iter().zip([dgamma, dbeta]) {
            if param.is_variable() {
                deposit(&self.deposits, param, cpu_tensor(grad, param.dims())?)?;
            }
        }
        let dx = dx.map(|v| cpu_tensor(v, x.dims())).transpose()?;
        let dw = dw.map(|v| cpu_tensor(v, w.dims())).transpose()?;
        Ok((dx, dw))
    }
}

/// A ResNet trunk: the stem (conv, then batch norm and ReLU) and stages of residual blocks.
#[derive(Clone, Copy, Debug)]
pub struct ResidualNetwork<'a> {
    /// The stem's convolution.
    pub stem_conv: &'a Conv2d,
    /// The batch norm after the stem's convolution (followed by a ReLU).
    pub stem_bn: &'a BatchNorm2d,
    /// The stages, in order.
    pub stages: &'a [ResidualStage<'a>],
}

impl ResidualNetwork<'_> {
    /// Runs the trunk: as one op when training on CPU f32 tensors inside a
    /// [`crate::DirectGradients`] scope with a variable stem weight, layer by layer otherwise
    /// (the stem's fused conv + batch norm, then [`ResidualStage::forward`]) — the same function
    /// and gradients either way.
    ///
    /// # Errors
    /// As [`BatchNorm2d::forward_conv`] and [`ResidualStage::forward`].
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if let Some(y) = self.forward_fused(x, train)? {
            return Ok(y);
        }
        let mut h = self.stem_bn.forward_conv(self.stem_conv, x, train, true)?;
        for stage in self.stages {
            h = stage.forward(&h, train)?;
        }
        Ok(h)
    }

    /// The trunk as one op, or `None` when some layer must run on its own (evaluation, no
    /// scope, a frozen stem weight, non-CPU or non-f32 tensors, a batch norm with fewer than two
    /// values per channel — the layer-by-layer path reports that error).
    ///
    /// # Errors
    /// [`crate::Error::Shape`] when `x` does not fit a convolution or a shortcut.
    pub fn forward_fused(&self, x: &Tensor, train: bool) -> Result<Option<Tensor>> {
        let w = self.stem_conv.weight();
        if !train
            || crate::direct_gradients::current().is_none()
            || !self.stem_conv.uses_engine(x)
            || !w.is_variable()
        {
            return Ok(None);
        }
        let g = ConvGeometry::new(
            x.dims(),
            w.dims(),
            self.stem_conv.stride(),
            self.stem_conv.padding(),
        )?;
        let channels = self.stem_bn.inner().running_mean().dim(0)?;
        if g.out_channels != channels || g.batch * g.out_pixels() < 2 {
            return Ok(None);
        }
        let dims = vec![g.batch, g.out_channels, g.out_height(), g.out_width()];
        let blocks = || self.stages.iter().flat_map(|s| s.blocks);
        let Some(fused) = BlockChain::fuse(blocks(), dims, x, train)? else {
            return Ok(None);
        };
        if fused.is_empty() {
            return Ok(None);
        }
        let (gamma, beta) = self.stem_bn.affine(channels, x.device())?;
        let mut all: Vec<Tensor> = vec![gamma.clone(), beta.clone()];
        all.extend(fused.iter().flat_map(|f| f.params.iter().cloned()));
        let Some(deposits) = direct_deposits(w, &all) else {
            return Ok(None);
        };
        let stem_saved = Arc::new(Mutex::new(ConvBnSaved::default()));
        let chain = BlockChain::new(fused, &deposits);
        let op = NetworkOp {
            stem: ConvBnCore {
                g,
                eps: self.stem_bn.inner().eps(),
                relu: true,
                saved: stem_saved.clone(),
            },
            stem_affine: [gamma, beta],
            blocks: chain.clone(),
            deposits,
            stem_out: Arc::default(),
        };
        let y = x.contiguous()?.apply_op2(&w.contiguous()?, op)?;
        let stats = stem_saved.lock().map_err(|_| poisoned())?.stats();
        if let Some(stats) = stats {
            self.stem_bn.update_running(&stats)?;
        }
        chain.update_running(blocks())?;
        Ok(Some(y))
    }
}
