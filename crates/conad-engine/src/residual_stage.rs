//! A stage of residual blocks (ResNet's `layerN`) as one candle op inside a
//! [`crate::DirectGradients`] scope: each block's input gradient passes to the previous block's
//! backward directly, where candle would store it as a graph node's gradient (`zeros_like + add`
//! of an activation-sized tensor). Same arithmetic as the blocks run one by one.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::cpu_data::{cpu_tensor, storage_slice, with_tensor_slices};
use crate::direct_gradients::Deposits;
use crate::error::Result;
use crate::residual_block::{
    DirectBlockOp, Fused, NAME, ResidualBlock, Saved, direct_deposits, poisoned,
};

/// Fused blocks run in sequence on slices — the body of [`StageOp`] and of
/// [`crate::ResidualNetwork`]'s op: each block's input gradient passes to the previous block's
/// backward without a graph node in between (candle would store each as `zeros_like + add`).
#[derive(Clone, Debug)]
pub(crate) struct BlockChain {
    blocks: Vec<DirectBlockOp>,
    /// The outputs of all blocks but the last (the next block's input), kept by the forward.
    inner: Arc<Mutex<Vec<Vec<f32>>>>,
    /// Each block's saved forward state, for the running statistics.
    saved: Vec<Arc<Mutex<Option<Saved>>>>,
}

impl BlockChain {
    /// The fused forms of `blocks` in sequence from an input of `dims` (with `x`'s device and
    /// dtype); `None` when one must run on its own.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] when a block does not fit its input.
    pub(crate) fn fuse<'a>(
        blocks: impl IntoIterator<Item = &'a ResidualBlock<'a>>,
        mut dims: Vec<usize>,
        x: &Tensor,
        train: bool,
    ) -> Result<Option<Vec<Fused>>> {
        let mut fused = Vec::new();
        for block in blocks {
            let Some(f) = block.fused(&dims, x, train)? else {
                return Ok(None);
            };
            let g2 = &f.core.g2;
            dims = vec![g2.batch, g2.out_channels, g2.out_height(), g2.out_width()];
            fused.push(f);
        }
        Ok(Some(fused))
    }

    /// The chain of `fused` blocks (at least one), their gradients delivered to `deposits`.
    pub(crate) fn new(fused: Vec<Fused>, deposits: &Deposits) -> Self {
        let saved = fused.iter().map(|f| f.core.saved.clone()).collect();
        let blocks = fused
            .into_iter()
            .map(|f| DirectBlockOp {
                core: f.core,
                params: f.params,
                deposits: deposits.clone(),
            })
            .collect();
        Self {
            blocks,
            inner: Arc::default(),
            saved,
        }
    }

    /// The last block's output shape.
    pub(crate) fn out_shape(&self) -> candle_core::Result<Shape> {
        match self.blocks.last() {
            Some(last) => Ok(last.core.out_shape()),
            None => candle_core::bail!("{NAME}: no blocks"),
        }
    }

    /// The last block's output from input `x`; keeps the others for the backward.
    pub(crate) fn forward(&self, x: &[f32]) -> candle_core::Result<Vec<f32>> {
        let mut outs: Vec<Vec<f32>> = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let input = outs.last().map_or(x, Vec::as_slice);
            let out = with_tensor_slices(NAME, &b.params, |p| b.core.forward(input, p))?;
            outs.push(out);
        }
        let Some(y) = outs.pop() else {
            candle_core::bail!("{NAME}: no blocks");
        };
        *self.inner.lock().map_err(|_| poisoned())? = outs;
        Ok(y)
    }

    /// The gradient of the chain's input `x` (when `need_dx`) from its output `y` and output
    /// gradient `dy`; every block's parameter gradients go to the deposits.
    pub(crate) fn backward(
        &self,
        x: &[f32],
        y: &[f32],
        dy: &[f32],
        need_dx: bool,
    ) -> candle_core::Result<Option<Vec<f32>>> {
        let inner = self.inner.lock().map_err(|_| poisoned())?;
        if inner.len() + 1 != self.blocks.len() {
            candle_core::bail!("{NAME}: backward before forward");
        }
        let last = self.blocks.len() - 1;
        let mut grad: Option<Vec<f32>> = None;
        for (k, b) in self.blocks.iter().enumerate().rev() {
            let input = if k == 0 { x } else { &inner[k - 1] };
            let output = if k == last { y } else { &inner[k] };
            let dout = grad.as_deref().unwrap_or(dy);
            let (dx, grads) = with_tensor_slices(NAME, &b.params, |p| {
                b.core.backward(input, output, dout, p, k > 0 || need_dx)
            })?;
            b.deposit(grads)?;
            grad = dx;
        }
        Ok(grad)
    }

    /// Updates the running statistics of `blocks` (the chain's, in order) after a forward.
    pub(crate) fn update_running<'a>(
        &self,
        blocks: impl IntoIterator<Item = &'a ResidualBlock<'a>>,
    ) -> Result<()> {
        for (block, saved) in blocks.into_iter().zip(&self.saved) {
            block.update_running(saved)?;
        }
        Ok(())
    }
}

/// A whole stage of blocks as one candle op on `x` (direct parameter gradients only).
#[derive(Clone, Debug)]
struct StageOp(BlockChain);

impl CustomOp1 for StageOp {
    fn name(&self) -> &'static str {
        "conad-residual-stage"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = storage_slice(self.name(), s1, l1)?;
        let y = self.0.forward(x)?;
        Ok((CpuStorage::F32(y), self.0.out_shape()?))
    }

    fn bwd(&self, x: &Tensor, y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let dx = with_tensor_slices(NAME, &[x.clone(), y.clone(), dy.clone()], |s| {
            self.0.backward(s[0], s[1], s[2], x.track_op())
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
        let Some(fused) = BlockChain::fuse(self.blocks, x.dims().to_vec(), x, train)? else {
            return Ok(None);
        };
        let x = x.contiguous()?;
        let all: Vec<Tensor> = fused
            .iter()
            .flat_map(|f| f.params.iter().cloned())
            .collect();
        let Some(deposits) = direct_deposits(&x, &all) else {
            return Ok(None);
        };
        let chain = BlockChain::new(fused, &deposits);
        let y = x.apply_op1(StageOp(chain.clone()))?;
        chain.update_running(self.blocks)?;
        Ok(Some(y))
    }
}
