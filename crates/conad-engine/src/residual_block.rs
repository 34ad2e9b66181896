//! A whole residual BasicBlock (He et al. 2016, Fig. 2 left) as one candle `CustomOp2` on
//! `(x, θ)`: `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`, `shortcut` = `bn_d(conv_d(x))`
//! or the identity, `θ` = all weights and `[γ; β]` vectors concatenated.
//!
//! Why one op: candle's autograd stores every gradient as `zeros_like + add` (two extra passes
//! over memory per graph node) and runs those element-wise ops on a spinning barrier pool that
//! competes with the GEMM threads. As one op the block has one large node instead of eight; its
//! backward chains the engine's batch-norm and convolution kernels directly.
//! The arithmetic is the separate ops' arithmetic (same kernels, same order) except the final sum
//! of the two input-gradient paths.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::batch_norm::BatchNorm2d;
use crate::batch_norm_op::{BatchNormStats, batch_norm_backward, batch_norm_forward};
use crate::conv_backward::conv_backward;
use crate::conv_forward::conv_forward;
use crate::conv2d::Conv2d;
use crate::cpu_data::{cpu_tensor, par_fill_chunks, par_zeros, storage_slice, with_tensor_slice};
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
struct Saved {
    z1: Vec<f32>,
    a: Vec<f32>,
    z2: Vec<f32>,
    zd: Vec<f32>,
    stats: Vec<Arc<BatchNormStats>>,
}

#[derive(Clone, Debug)]
struct BlockOp {
    g1: ConvGeometry,
    g2: ConvGeometry,
    gd: Option<ConvGeometry>,
    eps: [f64; 3],
    saved: Arc<Mutex<Option<Saved>>>,
}

/// Offsets of the pieces of θ: `w1, γβ1, w2, γβ2[, wd, γβd]`.
fn offsets(g1: &ConvGeometry, g2: &ConvGeometry, gd: Option<&ConvGeometry>) -> Vec<usize> {
    let mut sizes = vec![
        g1.out_channels * g1.patch_len(),
        2 * g1.out_channels,
        g2.out_channels * g2.patch_len(),
        2 * g2.out_channels,
    ];
    if let Some(gd) = gd {
        sizes.push(gd.out_channels * gd.patch_len());
        sizes.push(2 * gd.out_channels);
    }
    let mut off = vec![0];
    for s in sizes {
        off.push(off.last().copied().unwrap_or(0) + s);
    }
    off
}

fn poisoned() -> candle_core::Error {
    candle_core::Error::Msg("residual block state poisoned".into())
}

/// `out[i] = a[i] + b[i]` in parallel blocks.
fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    zip_map(a, b, |u, v| u + v)
}

/// `out[i] = max(0, a[i] + b[i])`: the block's residual join in one pass.
fn add_relu(a: &[f32], b: &[f32]) -> Vec<f32> {
    zip_map(a, b, |u, v| (u + v).max(0.0))
}

fn zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    const SPAN: usize = 1 << 14;
    par_fill_chunks(a.len(), SPAN, |k, o| {
        let (a, b) = (&a[k * SPAN..][..o.len()], &b[k * SPAN..][..o.len()]);
        for ((o, &u), &v) in o.iter_mut().zip(a).zip(b) {
            *o = f(u, v);
        }
    })
}

/// `out[i] = a[i] + (y[i] > 0 ? dy[i] : 0)`: the identity shortcut's input gradient plus the
/// main branch's, through the final ReLU.
fn add_masked(a: &[f32], y: &[f32], dy: &[f32]) -> Vec<f32> {
    const SPAN: usize = 1 << 14;
    par_fill_chunks(a.len(), SPAN, |k, o| {
        let r = k * SPAN..k * SPAN + o.len();
        add_masked_span(o, &a[r.clone()], &y[r.clone()], &dy[r]);
    })
}

avx512_fn! {
    /// `o = a + (y > 0 ? dy : 0)` over one span.
    fn add_masked_span(o: &mut [f32], a: &[f32], y: &[f32], dy: &[f32]) {
        for (((o, &u), &yv), &dv) in o.iter_mut().zip(a).zip(y).zip(dy) {
            *o = u + if yv > 0.0 { dv } else { 0.0 };
        }
    }
}

impl CustomOp2 for BlockOp {
    fn name(&self) -> &'static str {
        "conad-residual-block"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = storage_slice(self.name(), s1, l1)?;
        let th = storage_slice(self.name(), s2, l2)?;
        let (g1, g2) = (&self.g1, &self.g2);
        let off = offsets(g1, g2, self.gd.as_ref());
        if th.len() != *off.last().unwrap_or(&0)
            || x.len() != g1.batch * g1.in_channels * g1.in_pixels()
        {
            candle_core::bail!("{}: parameter or input size mismatch", self.name());
        }
        let piece = |i: usize| &th[off[i]..off[i + 1]];
        let bn = |z: &[f32], g: &ConvGeometry, gb: &[f32], eps: f64, relu: bool| {
            let c = g.out_channels;
            let st = BatchNormStats::compute(z, g.batch, c, g.out_pixels());
            let y = batch_norm_forward(
                z,
                g.batch,
                g.out_pixels(),
                &st,
                &gb[..c],
                &gb[c..],
                eps,
                relu,
            );
            (y, Arc::new(st))
        };
        let z1 = conv_forward(g1, x, piece(0));
        let (a, st1) = bn(&z1, g1, piece(1), self.eps[0], true);
        let z2 = conv_forward(g2, &a, piece(2));
        let (b, st2) = bn(&z2, g2, piece(3), self.eps[1], false);
        let mut stats = vec![st1, st2];
        let (short, zd) = match &self.gd {
            Some(gd) => {
                let zd = conv_forward(gd, x, piece(4));
                let (s, std) = bn(&zd, gd, piece(5), self.eps[2], false);
                stats.push(std);
                (Some(s), zd)
            }
            None => (None, Vec::new()),
        };
        let y = add_relu(&b, short.as_deref().unwrap_or(x));
        *self.saved.lock().map_err(|_| poisoned())? = Some(Saved {
            z1,
            a,
            z2,
            zd,
            stats,
        });
        let shape = Shape::from((g2.batch, g2.out_channels, g2.out_height(), g2.out_width()));
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        theta: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let name = self.name();
        let guard = self.saved.lock().map_err(|_| poisoned())?;
        let Some(sv) = guard.as_ref() else {
            candle_core::bail!("{name}: backward before forward");
        };
        let (g1, g2) = (&self.g1, &self.g2);
        let off = offsets(g1, g2, self.gd.as_ref());
        let need_dx = x.track_op();
        let (dx, dth) = with_tensor_slice(name, x, |xs| {
            with_tensor_slice(name, theta, |th| {
                with_tensor_slice(name, y, |ys| {
                    with_tensor_slice(name, dy, |dys| {
                        let piece = |i: usize| &th[off[i]..off[i + 1]];
                        // The final ReLU's mask is applied on the fly: `g = dy·[y > 0]` is what
                        // reaches both branches, and the batch norms' `relu` flag computes exactly
                        // that from (y, dy).
                        let mut dth = par_zeros(th.len());
                        let mut put =
                            |i: usize, v: &[f32]| dth[off[i]..off[i + 1]].copy_from_slice(v);
                        // Main branch: bn2 → conv2 → bn1 + ReLU → conv1.
                        let c2 = g2.out_channels;
                        let (dz2, dg2, db2) = batch_norm_backward(
                            &sv.z2,
                            ys,
                            dys,
                            g2.batch,
                            g2.out_pixels(),
                            &sv.stats[1],
                            &piece(3)[..c2],
                            self.eps[1],
                            true,
                        );
                        let (da, dw2) = conv_backward(g2, &sv.a, piece(2), &dz2, true, true);
                        let c1 = g1.out_channels;
                        let (dz1, dg1, db1) = batch_norm_backward(
                            &sv.z1,
                            &sv.a,
                            &da.unwrap_or_default(),
                            g1.batch,
                            g1.out_pixels(),
                            &sv.stats[0],
                            &piece(1)[..c1],
                            self.eps[0],
                            true,
                        );
                        let (dx1, dw1) = conv_backward(g1, xs, piece(0), &dz1, need_dx, true);
                        put(0, &dw1.unwrap_or_default());
                        put(1, &[dg1, db1].concat());
                        put(2, &dw2.unwrap_or_default());
                        put(3, &[dg2, db2].concat());
                        // Shortcut branch.
                        let dx = match &self.gd {
                            Some(gd) => {
                                let cd = gd.out_channels;
                                let (dzd, dgd, dbd) = batch_norm_backward(
                                    &sv.zd,
                                    ys,
                                    dys,
                                    gd.batch,
                                    gd.out_pixels(),
                                    &sv.stats[2],
                                    &piece(5)[..cd],
                                    self.eps[2],
                                    true,
                                );
                                let (dxd, dwd) =
                                    conv_backward(gd, xs, piece(4), &dzd, need_dx, true);
                                put(4, &dwd.unwrap_or_default());
                                put(5, &[dgd, dbd].concat());
                                match (dx1, dxd) {
                                    (Some(a), Some(b)) => Some(add(&a, &b)),
                                    _ => None,
                                }
                            }
                            None => dx1.map(|a| add_masked(&a, ys, dys)),
                        };
                        Ok((dx, dth))
                    })
                })
            })
        })?;
        let dx = dx.map(|v| cpu_tensor(v, x.dims())).transpose()?;
        Ok((dx, Some(cpu_tensor(dth, theta.dims())?)))
    }
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
        let g1 = ConvGeometry::new(
            x.dims(),
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
                x.dims(),
                c.weight().dims(),
                c.stride(),
                c.padding(),
            )?),
            None => None,
        };
        let out_dims = [g2.batch, g2.out_channels, g2.out_height(), g2.out_width()];
        let shortcut_dims = match &gd {
            Some(gd) => [gd.batch, gd.out_channels, gd.out_height(), gd.out_width()],
            None => [x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]],
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
            let a = self.bn1.forward_conv(self.conv1, x, train, true)?;
            let b = self.bn2.forward_conv(self.conv2, &a, train, false)?;
            let s = match self.downsample {
                Some((c, bn)) => bn.forward_conv(c, x, train, false)?,
                None => x.clone(),
            };
            return crate::add_relu(&b, &s);
        }
        let dev = x.device();
        let mut pieces = vec![
            self.conv1.weight().flatten_all()?,
            self.bn1.gamma_beta(g1.out_channels, dev)?,
            self.conv2.weight().flatten_all()?,
            self.bn2.gamma_beta(g2.out_channels, dev)?,
        ];
        let mut eps = [self.bn1.inner().eps(), self.bn2.inner().eps(), 0.0];
        if let (Some((c, bn)), Some(gd)) = (self.downsample, &gd) {
            pieces.push(c.weight().flatten_all()?);
            pieces.push(bn.gamma_beta(gd.out_channels, dev)?);
            eps[2] = bn.inner().eps();
        }
        let theta = Tensor::cat(&pieces, 0)?;
        let saved = Arc::new(Mutex::new(None));
        let op = BlockOp {
            g1,
            g2,
            gd,
            eps,
            saved: saved.clone(),
        };
        let y = x.contiguous()?.apply_op2(&theta, op)?;
        let guard = saved.lock().map_err(|_| Error::Candle(poisoned()))?;
        if let Some(sv) = guard.as_ref() {
            self.bn1.update_running(&sv.stats[0])?;
            self.bn2.update_running(&sv.stats[1])?;
            if let (Some((_, bn)), Some(st)) = (self.downsample, sv.stats.get(2)) {
                bn.update_running(st)?;
            }
        }
        Ok(y)
    }
}
