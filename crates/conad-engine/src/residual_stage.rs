//! A stage of residual blocks (ResNet's `layerN`) as one candle op inside a
//! [`crate::DirectGradients`] scope: each block's input gradient passes to the previous block's
//! backward directly, where candle would store it as a graph node's gradient (`zeros_like + add`
//! of an activation-sized tensor). Same arithmetic as the blocks run one by one.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::cpu_data::{cpu_tensor, storage_slice, with_tensor_slices};
use crate::error::Result;
use crate::residual_block::{DirectBlockOp, NAME, ResidualBlock, direct_deposits, poisoned};

/// A whole stage of blocks as one candle op on `x` (direct parameter gradients only): the
/// blocks' input gradients pass from one block's backward to the previous one's without a
/// graph node in between (candle would store each as `zeros_like + add`).
#[derive(Clone, Debug)]
struct StageOp {
    blocks: Vec<DirectBlockOp>,
    /// The outputs of all blocks but the last (the next block's input), kept by the forward.
    inner: Arc<Mutex<Vec<Vec<f32>>>>,
}

impl CustomOp1 for StageOp {
    fn name(&self) -> &'static str {
        "conad-residual-stage"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = storage_slice(self.name(), s1, l1)?;
        let mut outs: Vec<Vec<f32>> = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let input = outs.last().map_or(x, Vec::as_slice);
            let out = with_tensor_slices(NAME, &b.params, |p| b.core.forward(input, p))?;
            outs.push(out);
        }
        let (Some(y), Some(last)) = (outs.pop(), self.blocks.last()) else {
            candle_core::bail!("{}: no blocks", self.name());
        };
        let shape = last.core.out_shape();
        *self.inner.lock().map_err(|_| poisoned())? = outs;
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(&self, x: &Tensor, y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let inner = self.inner.lock().map_err(|_| poisoned())?;
        if inner.len() + 1 != self.blocks.len() {
            candle_core::bail!("{}: backward before forward", self.name());
        }
        let last = self.blocks.len() - 1;
        let dx = with_tensor_slices(NAME, &[x.clone(), y.clone(), dy.clone()], |s| {
            let mut grad: Option<Vec<f32>> = None;
            for (k, b) in self.blocks.iter().enumerate().rev() {
                let input = if k == 0 { s[0] } else { &inner[k - 1] };
                let output = if k == last { s[1] } else { &inner[k] };
                let dout = grad.as_deref().unwrap_or(s[2]);
                let need_dx = k > 0 || x.track_op();
                let (dx, grads) = with_tensor_slices(NAME, &b.params, |p| {
                    b.core.backward(input, output, dout, p, need_dx)
                })?;
                b.deposit(grads)?;
                grad = dx;
            }
            Ok(grad)
        })?;
        dx.map(|v| cpu_tensor(v, x.dims())).transpose()
    }
}

/// A stage of residual blocks, run in sequence (ResNet's `layerN`).
#[derive(Clone, Copy, Debug)]
pub struct ResidualStage<'a> {
    /// The stage's blocks, in order.
    pub blocks: &'a [ResidualBlock<'a>],
}

impl ResidualStage<'_> {
    /// Runs the blocks in order: as one op when training on CPU f32 tensors inside a
    /// [`crate::DirectGradients`] scope, block by block ([`ResidualBlock::forward`]) otherwise —
    /// the same function and gradients either way.
    ///
    /// # Errors
    /// As [`ResidualBlock::forward`].
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if let Some(y) = self.forward_fused(x, train)? {
            return Ok(y);
        }
        let mut h = x.clone();
        for block in self.blocks {
            h = block.forward(&h, train)?;
        }
        Ok(h)
    }

    /// The stage as one [`StageOp`], or `None` when some block must run on its own.
    fn forward_fused(&self, x: &Tensor, train: bool) -> Result<Option<Tensor>> {
        if self.blocks.len() < 2 || crate::direct_gradients::current().is_none() {
            return Ok(None);
        }
        let mut dims = x.dims().to_vec();
        let mut fused = Vec::with_capacity(self.blocks.len());
        for block in self.blocks {
            let Some(f) = block.fused(&dims, x, train)? else {
                return Ok(None);
            };
            let g2 = &f.core.g2;
            dims = vec![g2.batch, g2.out_channels, g2.out_height(), g2.out_width()];
            fused.push(f);
        }
        let x = x.contiguous()?;
        let all: Vec<Tensor> = fused
            .iter()
            .flat_map(|f| f.params.iter().cloned())
            .collect();
        let Some(deposits) = direct_deposits(&x, &all) else {
            return Ok(None);
        };
        let saved: Vec<_> = fused.iter().map(|f| f.core.saved.clone()).collect();
        let op = StageOp {
            blocks: fused
                .into_iter()
                .map(|f| DirectBlockOp {
                    core: f.core,
                    params: f.params,
                    deposits: deposits.clone(),
                })
                .collect(),
            inner: Arc::default(),
        };
        let y = x.apply_op1(op)?;
        for (block, saved) in self.blocks.iter().zip(&saved) {
            block.update_running(saved)?;
        }
        Ok(Some(y))
    }
}
