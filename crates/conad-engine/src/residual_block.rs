//! A whole residual BasicBlock (He et al. 2016, Fig. 2 left) as one candle op:
//! `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`, `shortcut` = `bn_d(conv_d(x))` or the
//! identity. Two forms share the arithmetic ([`BlockCore`]): a `CustomOp2` on `(x, θ)`, `θ` = all
//! weights and `γ`, `β` vectors concatenated, whose backward returns `dθ` through candle's graph;
//! and, inside a [`crate::DirectGradients`] scope, a `CustomOp1` on `x` that reads the weights in
//! place and hands their gradients to the scope.
//!
//! Why one op: candle's autograd stores every gradient as `zeros_like + add` (two extra passes
//! over memory per graph node) and runs those element-wise ops on a spinning barrier pool that
//! competes with the GEMM threads. As one op the block has one large node instead of eight; its
//! backward chains the engine's batch-norm and convolution kernels directly.
//! The arithmetic is the separate ops' arithmetic (same kernels, same order) except the final sum
//! of the two input-gradient paths.

use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

use crate::batch_norm::BatchNorm2d;
use crate::batch_norm_op::{
    BatchNormStats, Shortcut, batch_norm_backward, batch_norm_forward, batch_norm_join,
};
use crate::conv_backward::conv_backward;
use crate::conv_forward::conv_forward;
use crate::conv2d::Conv2d;
use crate::cpu_data::{cpu_tensor, par_overwrite_chunks, storage_slice, with_tensor_slices};
use crate::direct_gradients::{Deposits, deposit};
use crate::error::{Error, Result};
use crate::geometry::ConvGeometry;
use crate::simd::avx512_fn;

/// The layers of one BasicBlock, borrowed from the model.
#[derive(Clone, Copy, Debug)]
pub struct ResidualBlock<'a> {
    /// First 3×3 convolution (carries the block's stride).
    pub conv1: &'a Conv2d,
    /// Batch norm after `conv1` (followed by a ReLU).
    pub bn1: &'a BatchNorm2d,
    /// Second 3×3 convolution.
    pub conv2: &'a Conv2d,
    /// Batch norm after `conv2`.
    pub bn2: &'a BatchNorm2d,
    /// Projection shortcut (1×1 strided conv + batch norm), or `None` for the identity.
    pub downsample: Option<(&'a Conv2d, &'a BatchNorm2d)>,
}

/// Per-branch saved state of the forward pass.
#[derive(Debug, Default)]
pub(crate) struct Saved {
    z1: Vec<f32>,
    a: Vec<f32>,
    z2: Vec<f32>,
    zd: Vec<f32>,
    stats: Vec<Arc<BatchNormStats>>,
}

/// The block's arithmetic, shared by the graph-input op ([`BlockOp`], parameters as one
/// concatenated tensor θ) and the direct-gradient op ([`DirectBlockOp`]).
#[derive(Clone, Debug)]
pub(crate) struct BlockCore {
    g1: ConvGeometry,
    pub(crate) g2: ConvGeometry,
    gd: Option<ConvGeometry>,
    eps: [f64; 3],
    pub(crate) saved: Arc<Mutex<Option<Saved>>>,
}

/// The block as a candle op on `(x, θ)`, θ = all parameters concatenated.
#[derive(Clone, Debug)]
struct BlockOp(BlockCore);

/// The block as a candle op on `x` alone: it reads its parameters in place and hands their
/// gradients to a [`crate::DirectGradients`] scope.
#[derive(Clone, Debug)]
pub(crate) struct DirectBlockOp {
    pub(crate) core: BlockCore,
    pub(crate) params: Vec<Tensor>,
    pub(crate) deposits: Deposits,
}

/// Lengths of the parameter pieces, in order `w1, γ1, β1, w2, γ2, β2[, wd, γd, βd]`.
fn piece_sizes(g1: &ConvGeometry, g2: &ConvGeometry, gd: Option<&ConvGeometry>) -> Vec<usize> {
    let mut sizes = Vec::with_capacity(9);
    for g in [Some(g1), Some(g2), gd].into_iter().flatten() {
        sizes.extend([
            g.out_channels * g.patch_len(),
            g.out_channels,
            g.out_channels,
        ]);
    }
    sizes
}

pub(crate) fn poisoned() -> candle_core::Error {
    candle_core::Error::Msg("residual block state poisoned".into())
}

/// `a[i] += b[i]` in parallel spans (in place: no fresh buffer for the sum).
fn add_into(a: &mut [f32], b: &[f32]) {
    const SPAN: usize = 1 << 14;
    a.par_chunks_mut(SPAN)
        .zip(b.par_chunks(SPAN))
        .for_each(|(a, b)| add_span(a, b));
}

avx512_fn! {
    /// `a += b` over one span.
    fn add_span(a: &mut [f32], b: &[f32]) {
        for (u, &v) in a.iter_mut().zip(b) {
            *u += v;
        }
    }
}

/// `out[i] = a[i] + (y[i] > 0 ? dy[i] : 0)`: the identity shortcut's input gradient plus the
/// main branch's, through the final ReLU.
fn add_masked(a: &[f32], y: &[f32], dy: &[f32]) -> Vec<f32> {
    const SPAN: usize = 1 << 14;
    // SAFETY: `add_masked_span` stores every element of `o`.
    unsafe {
        par_overwrite_chunks(a.len(), SPAN, |k, o| {
            let r = k * SPAN..k * SPAN + o.len();
            add_masked_span(o, &a[r.clone()], &y[r.clone()], &dy[r]);
        })
    }
}

avx512_fn! {
    /// `o = a + (y > 0 ? dy : 0)` over one span.
    fn add_masked_span(o: &mut [f32], a: &[f32], y: &[f32], dy: &[f32]) {
        for (((o, &u), &yv), &dv) in o.iter_mut().zip(a).zip(y).zip(dy) {
            *o = u + if yv > 0.0 { dv } else { 0.0 };
        }
    }
}

pub(crate) const NAME: &str = "conad-residual-block";

/// The input gradient (if asked for) and one gradient per parameter piece.
type BlockGrads = (Option<Vec<f32>>, Vec<Vec<f32>>);

impl BlockCore {
    pub(crate) fn out_shape(&self) -> Shape {
        let g2 = &self.g2;
        Shape::from((g2.batch, g2.out_channels, g2.out_height(), g2.out_width()))
    }

    fn check(&self, x: &[f32], p: &[&[f32]]) -> candle_core::Result<()> {
        let sizes = piece_sizes(&self.g1, &self.g2, self.gd.as_ref());
        let g1 = &self.g1;
        if p.len() != sizes.len()
            || p.iter().zip(&sizes).any(|(p, &n)| p.len() != n)
            || x.len() != g1.batch * g1.in_channels * g1.in_pixels()
        {
            candle_core::bail!("{NAME}: parameter or input size mismatch");
        }
        Ok(())
    }

    /// The block's output from input `x` and parameter pieces `p`; keeps what the backward needs.
    pub(crate) fn forward(&self, x: &[f32], p: &[&[f32]]) -> candle_core::Result<Vec<f32>> {
        self.check(x, p)?;
        let (g1, g2) = (&self.g1, &self.g2);
        let stats_of = |z: &[f32], g: &ConvGeometry| {
            Arc::new(BatchNormStats::compute(
                z,
                g.batch,
                g.out_channels,
                g.out_pixels(),
            ))
        };
        let z1 = conv_forward(g1, x, p[0]);
        let st1 = stats_of(&z1, g1);
        let a = batch_norm_forward(
            &z1,
            g1.batch,
            g1.out_pixels(),
            &st1,
            p[1],
            p[2],
            self.eps[0],
            true,
        );
        let z2 = conv_forward(g2, &a, p[3]);
        let st2 = stats_of(&z2, g2);
        // bn2, the shortcut's batch norm and the join `relu(b + s)` in one pass.
        let (zd, std) = match &self.gd {
            Some(gd) => {
                let zd = conv_forward(gd, x, p[6]);
                let std = stats_of(&zd, gd);
                (zd, Some(std))
            }
            None => (Vec::new(), None),
        };
        let shortcut = match &std {
            Some(std) => Shortcut::Normalized(&zd, std, p[7], p[8], self.eps[2]),
            None => Shortcut::Identity(x),
        };
        let y = batch_norm_join(
            &z2,
            g2.batch,
            g2.out_pixels(),
            &st2,
            p[4],
            p[5],
            self.eps[1],
            shortcut,
        );
        let mut stats = vec![st1, st2];
        stats.extend(std);
        *self.saved.lock().map_err(|_| poisoned())? = Some(Saved {
            z1,
            a,
            z2,
            zd,
            stats,
        });
        Ok(y)
    }

    /// The input gradient (when `need_dx`) and the gradient of every parameter piece, from the
    /// block's input `xs`, output `ys` and output gradient `dys`.
    pub(crate) fn backward(
        &self,
        xs: &[f32],
        ys: &[f32],
        dys: &[f32],
        p: &[&[f32]],
        need_dx: bool,
    ) -> candle_core::Result<BlockGrads> {
        self.check(xs, p)?;
        let guard = self.saved.lock().map_err(|_| poisoned())?;
        let Some(sv) = guard.as_ref() else {
            candle_core::bail!("{NAME}: backward before forward");
        };
        let (g1, g2) = (&self.g1, &self.g2);
        // The final ReLU's mask is applied on the fly: `g = dy·[y > 0]` is what reaches both
        // branches, and the batch norms' `relu` flag computes exactly that from (y, dy).
        // Main branch: bn2 → conv2 → bn1 + ReLU → conv1.
        let (dz2, dg2, db2) = batch_norm_backward(
            &sv.z2,
            ys,
            dys,
            g2.batch,
            g2.out_pixels(),
            &sv.stats[1],
            p[4],
            self.eps[1],
            true,
        );
        let (da, dw2) = conv_backward(g2, &sv.a, p[3], &dz2, true, true);
        let (dz1, dg1, db1) = batch_norm_backward(
            &sv.z1,
            &sv.a,
            &da.unwrap_or_default(),
            g1.batch,
            g1.out_pixels(),
            &sv.stats[0],
            p[1],
            self.eps[0],
            true,
        );
        let (dx1, dw1) = conv_backward(g1, xs, p[0], &dz1, need_dx, true);
        let mut grads = vec![
            dw1.unwrap_or_default(),
            dg1,
            db1,
            dw2.unwrap_or_default(),
            dg2,
            db2,
        ];
        // Shortcut branch.
        let dx = match &self.gd {
            Some(gd) => {
                let (dzd, dgd, dbd) = batch_norm_backward(
                    &sv.zd,
                    ys,
                    dys,
                    gd.batch,
                    gd.out_pixels(),
                    &sv.stats[2],
                    p[7],
                    self.eps[2],
                    true,
                );
                let (dxd, dwd) = conv_backward(gd, xs, p[6], &dzd, need_dx, true);
                grads.extend([dwd.unwrap_or_default(), dgd, dbd]);
                match (dx1, dxd) {
                    (Some(mut a), Some(b)) => {
                        add_into(&mut a, &b);
                        Some(a)
                    }
                    _ => None,
                }
            }
            None => dx1.map(|a| add_masked(&a, ys, dys)),
        };
        Ok((dx, grads))
    }
}

impl CustomOp2 for BlockOp {
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
        let th = storage_slice(NAME, s2, l2)?;
        let core = &self.0;
        let p = split_pieces(th, &piece_sizes(&core.g1, &core.g2, core.gd.as_ref()))?;
        Ok((CpuStorage::F32(core.forward(x, &p)?), core.out_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        theta: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let core = &self.0;
        let (dx, dth) = with_tensor_slices(NAME, &[x, theta, y, dy].map(Tensor::clone), |s| {
            let p = split_pieces(s[1], &piece_sizes(&core.g1, &core.g2, core.gd.as_ref()))?;
            let (dx, grads) = core.backward(s[0], s[2], s[3], &p, x.track_op())?;
            Ok((dx, grads.concat()))
        })?;
        let dx = dx.map(|v| cpu_tensor(v, x.dims())).transpose()?;
        Ok((dx, Some(cpu_tensor(dth, theta.dims())?)))
    }
}

/// θ cut into pieces of the given lengths.
fn split_pieces<'a>(th: &'a [f32], sizes: &[usize]) -> candle_core::Result<Vec<&'a [f32]>> {
    if th.len() != sizes.iter().sum::<usize>() {
        candle_core::bail!("{NAME}: parameter size mismatch");
    }
    let mut rest = th;
    Ok(sizes
        .iter()
        .map(|&n| {
            let (piece, tail) = rest.split_at(n);
            rest = tail;
            piece
        })
        .collect())
}

impl CustomOp1 for DirectBlockOp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = storage_slice(NAME, s1, l1)?;
        let y = with_tensor_slices(NAME, &self.params, |p| self.core.forward(x, p))?;
        Ok((CpuStorage::F32(y), self.core.out_shape()))
    }

    fn bwd(&self, x: &Tensor, y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let mut all = vec![x.clone(), y.clone(), dy.clone()];
        all.extend(self.params.iter().cloned());
        let (dx, grads) = with_tensor_slices(NAME, &all, |s| {
            self.core.backward(s[0], s[1], s[2], &s[3..], x.track_op())
        })?;
        self.deposit(grads)?;
        dx.map(|v| cpu_tensor(v, x.dims())).transpose()
    }
}

impl DirectBlockOp {
    /// Hands the gradients of the block's variables to the scope.
    pub(crate) fn deposit(&self, grads: Vec<Vec<f32>>) -> candle_core::Result<()> {
        for (param, grad) in self.params.iter().zip(grads) {
            if param.is_variable() {
                deposit(&self.deposits, param, cpu_tensor(grad, param.dims())?)?;
            }
        }
        Ok(())
    }
}

/// The deposit list of the active [`crate::DirectGradients`] scope when a fused op on `x` with
/// these parameters may use it: candle calls the op's backward only when `x` tracks gradients,
/// and parameters computed from other tensors (not variables, yet tracked) need the graph.
pub(crate) fn direct_deposits(x: &Tensor, params: &[Tensor]) -> Option<Deposits> {
    crate::direct_gradients::current()
        .filter(|_| x.track_op() && params.iter().all(|t| t.is_variable() || !t.track_op()))
}

/// A block prepared for a fused op: its arithmetic and its parameter tensors in piece order.
pub(crate) struct Fused {
    pub(crate) core: BlockCore,
    pub(crate) params: Vec<Tensor>,
}

impl ResidualBlock<'_> {
    /// Runs the block. Training on CPU f32 tensors takes the fused op; anything else the
    /// separate layers (`forward_conv` + [`crate::add_relu`]), which compute the same function.
    ///
    /// # Shapes
    /// `N × C_in × H × W` → `N × C_out × Ho × Wo`.
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` does not fit the convolutions or a batch norm has a single value
    /// per channel in training mode.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let Some(Fused { core, params }) = self.fused(x.dims(), x, train)? else {
            let a = self.bn1.forward_conv(self.conv1, x, train, true)?;
            let b = self.bn2.forward_conv(self.conv2, &a, train, false)?;
            let s = match self.downsample {
                Some((c, bn)) => bn.forward_conv(c, x, train, false)?,
                None => x.clone(),
            };
            return crate::add_relu(&b, &s);
        };
        let saved = core.saved.clone();
        let x = x.contiguous()?;
        let y = match direct_deposits(&x, &params) {
            Some(deposits) => x.apply_op1(DirectBlockOp {
                core,
                params,
                deposits,
            })?,
            None => {
                let flat = params
                    .iter()
                    .map(Tensor::flatten_all)
                    .collect::<candle_core::Result<Vec<_>>>()?;
                x.apply_op2(&Tensor::cat(&flat, 0)?, BlockOp(core))?
            }
        };
        self.update_running(&saved)?;
        Ok(y)
    }

    /// The block's fused form for an input of `dims` (with `x`'s device and dtype), or `None`
    /// when the separate layers run (evaluation, non-CPU or non-f32 tensors, a batch norm with
    /// fewer than two values per channel — the layers report that error).
    ///
    /// # Errors
    /// [`Error::Shape`] when `dims` do not fit the convolutions or the shortcut.
    pub(crate) fn fused(&self, dims: &[usize], x: &Tensor, train: bool) -> Result<Option<Fused>> {
        let g1 = ConvGeometry::new(
            dims,
            self.conv1.weight().dims(),
            self.conv1.stride(),
            self.conv1.padding(),
        )?;
        let a_dims = [g1.batch, g1.out_channels, g1.out_height(), g1.out_width()];
        let g2 = ConvGeometry::new(
            &a_dims,
            self.conv2.weight().dims(),
            self.conv2.stride(),
            self.conv2.padding(),
        )?;
        let gd = match self.downsample {
            Some((c, _)) => Some(ConvGeometry::new(
                dims,
                c.weight().dims(),
                c.stride(),
                c.padding(),
            )?),
            None => None,
        };
        let out_dims = [g2.batch, g2.out_channels, g2.out_height(), g2.out_width()];
        let shortcut_dims = match &gd {
            Some(gd) => [gd.batch, gd.out_channels, gd.out_height(), gd.out_width()],
            None => [dims[0], dims[1], dims[2], dims[3]],
        };
        if out_dims != shortcut_dims {
            return Err(Error::Shape {
                op: "ResidualBlock",
                got: shortcut_dims.to_vec(),
                expected: format!("a shortcut of the main branch's shape {out_dims:?}"),
            });
        }
        let engine = train && self.conv1.uses_engine(x);
        if !engine || g1.batch * g1.out_pixels() < 2 || g2.batch * g2.out_pixels() < 2 {
            return Ok(None);
        }
        let dev = x.device();
        let (gamma1, beta1) = self.bn1.affine(g1.out_channels, dev)?;
        let (gamma2, beta2) = self.bn2.affine(g2.out_channels, dev)?;
        let mut params = vec![
            self.conv1.weight().clone(),
            gamma1,
            beta1,
            self.conv2.weight().clone(),
            gamma2,
            beta2,
        ];
        let mut eps = [self.bn1.inner().eps(), self.bn2.inner().eps(), 0.0];
        if let (Some((c, bn)), Some(gd)) = (self.downsample, &gd) {
            let (gamma, beta) = bn.affine(gd.out_channels, dev)?;
            params.extend([c.weight().clone(), gamma, beta]);
            eps[2] = bn.inner().eps();
        }
        let core = BlockCore {
            g1,
            g2,
            gd,
            eps,
            saved: Arc::default(),
        };
        Ok(Some(Fused { core, params }))
    }

    /// Updates the running statistics from the batch statistics a fused forward saved.
    pub(crate) fn update_running(&self, saved: &Mutex<Option<Saved>>) -> Result<()> {
        let guard = saved.lock().map_err(|_| Error::Candle(poisoned()))?;
        if let Some(sv) = guard.as_ref() {
            self.bn1.update_running(&sv.stats[0])?;
            self.bn2.update_running(&sv.stats[1])?;
            if let (Some((_, bn)), Some(st)) = (self.downsample, sv.stats.get(2)) {
                bn.update_running(st)?;
            }
        }
        Ok(())
    }
}
