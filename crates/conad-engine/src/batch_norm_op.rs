//! Fused training-mode batch normalisation (+ optional ReLU) over NCHW tensors as a candle
//! `CustomOp3` on `(x, γ, β)`, with one fused backward (in place of candle-nn's transpose copy plus
//! separate tensor ops, each with its own backward).
//!
//! Forward (Ioffe & Szegedy 2015, Alg. 1, per channel over N·H·W values): `μ`, biased `σ²`,
//! `y = max(0, γ·(x − μ)/√(σ² + ε) + β)` (ReLU optional). Backward with `g = dy·[y > 0]`,
//! `x̂ = (x − μ)·r`, `r = 1/√(σ² + ε)`, `M = N·H·W`:
//! `dβ = Σg`, `dγ = Σ g·x̂`, `dx = γ·r·(g − dβ/M − x̂·dγ/M)`.
//! Per-channel sums run in f64 in a fixed order over fixed groups of whole images
//! ([`channel_sums`]), and the element-wise passes are independent per plane, so the op is
//! bit-identical for any thread count.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu_data::{cpu_tensor, par_overwrite_chunks, storage_slice, with_tensor_slice};
use crate::plane_sums::{plane_grad_sums, plane_sq_dev, plane_sum, upstream};
use crate::simd::avx512_fn;

/// Per-channel batch statistics of an `N × C × H × W` tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormStats {
    /// Mean per channel.
    pub mean: Vec<f32>,
    /// Biased variance per channel.
    pub var: Vec<f32>,
    /// Values per channel (`N·H·W`).
    pub count: usize,
}

impl BatchNormStats {
    /// Two-pass mean and biased variance per channel (f64 accumulation) of contiguous NCHW data.
    pub fn compute(x: &[f32], batch: usize, channels: usize, pixels: usize) -> Self {
        let plane = |n: usize, c: usize| &x[(n * channels + c) * pixels..][..pixels];
        let count = (batch * pixels) as f64;
        let sums = channel_sums(batch, channels, pixels, |n, c| {
            (plane_sum(plane(n, c)), 0.0)
        });
        let means: Vec<f64> = sums.iter().map(|&(s, _)| s / count).collect();
        let ss = channel_sums(batch, channels, pixels, |n, c| {
            (plane_sq_dev(plane(n, c), means[c]), 0.0)
        });
        Self {
            mean: means.iter().map(|&m| m as f32).collect(),
            var: ss.iter().map(|&(s, _)| (s / count) as f32).collect(),
            count: batch * pixels,
        }
    }
}

/// Values per group of whole images in [`channel_sums`]: at least 64 Ki, so small maps do not
/// make thousands of tiny tasks.
const GROUP_VALUES: usize = 1 << 16;

/// Per-channel pairs of sums `Σ_n plane(n, c)` over an `N × C × H × W` tensor, walking memory in
/// order: tasks take fixed groups of whole images (a function of the shape only), each adds its
/// images' plane sums per channel in image order, and the groups are added in group order — so
/// the result does not depend on the thread count. (A task per channel instead strides through
/// the tensor one plane at a time; on DRAM-resident activations that ran 2–3× slower than a
/// contiguous pass over the same data, `bench_train_step`.)
pub(crate) fn channel_sums(
    batch: usize,
    channels: usize,
    pixels: usize,
    plane: impl Fn(usize, usize) -> (f64, f64) + Sync,
) -> Vec<(f64, f64)> {
    let per_group = (GROUP_VALUES / (channels * pixels).max(1)).clamp(1, batch.max(1));
    let groups: Vec<Vec<(f64, f64)>> = (0..batch.div_ceil(per_group))
        .into_par_iter()
        .map(|gi| {
            let mut acc = vec![(0.0f64, 0.0f64); channels];
            for n in gi * per_group..((gi + 1) * per_group).min(batch) {
                for (c, a) in acc.iter_mut().enumerate() {
                    let (u, v) = plane(n, c);
                    a.0 += u;
                    a.1 += v;
                }
            }
            acc
        })
        .collect();
    let mut total = vec![(0.0f64, 0.0f64); channels];
    for g in &groups {
        for (t, a) in total.iter_mut().zip(g) {
            t.0 += a.0;
            t.1 += a.1;
        }
    }
    total
}

/// The fused op; holds the batch statistics the forward pass normalises with (computed by
/// [`BatchNormStats::compute`] on the same input) and whether a ReLU follows.
#[derive(Clone, Debug)]
pub struct BatchNormOp {
    stats: Arc<BatchNormStats>,
    eps: f64,
    relu: bool,
}

impl BatchNormOp {
    /// An op normalising with `stats` (which must be the statistics of the op's input).
    pub fn new(stats: Arc<BatchNormStats>, eps: f64, relu: bool) -> Self {
        Self { stats, eps, relu }
    }
}

/// Whole `H × W` planes per parallel task: at least 16 Ki elements, so 4×4 maps do not spawn
/// thousands of tiny tasks.
pub(crate) fn planes_per_task(pixels: usize) -> usize {
    (16 * 1024 / pixels.max(1)).max(1)
}

/// A fresh `N × C × H × W` buffer written plane by plane in parallel: `f(plane, channel, out)`
/// fills plane `plane` (channel `plane mod C`) — the shape of every element-wise batch-norm pass.
///
/// # Safety
/// `f` must store every element of `out` before reading any ([`par_overwrite_chunks`]: the
/// buffer is not zeroed first).
pub(crate) unsafe fn map_planes(
    len: usize,
    pixels: usize,
    channels: usize,
    f: impl Fn(usize, usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let per_task = planes_per_task(pixels);
    // SAFETY: the planes tile each piece and `f` stores every element of its plane (contract).
    unsafe {
        par_overwrite_chunks(len, (pixels * per_task).max(1), |task, outs| {
            for (j, plane_out) in outs.chunks_mut(pixels.max(1)).enumerate() {
                let plane = task * per_task + j;
                f(plane, plane % channels, plane_out);
            }
        })
    }
}

/// `1/√(σ² + ε)` per channel.
pub(crate) fn inv_std(stats: &BatchNormStats, eps: f64) -> Vec<f64> {
    stats
        .var
        .iter()
        .map(|&v| 1.0 / (v as f64 + eps).sqrt())
        .collect()
}

/// Batch-norm forward on contiguous NCHW data `x` with the given batch statistics:
/// `y = γ·(x − μ)·r + β`, then `max(0, y)` when `relu`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward(
    x: &[f32],
    batch: usize,
    pixels: usize,
    stats: &BatchNormStats,
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
    relu: bool,
) -> Vec<f32> {
    let channels = stats.mean.len();
    let (scale, shift) = scale_shift(stats, gamma, beta, eps);
    // SAFETY: `normalize_plane` stores every element of its output plane.
    unsafe {
        map_planes(
            batch * channels * pixels,
            pixels,
            channels,
            |plane, c, yp| {
                let xp = &x[plane * pixels..(plane + 1) * pixels];
                normalize_plane(xp, yp, scale[c], shift[c], relu);
            },
        )
    }
}

/// Per channel `(a, b)` with `γ·(x − μ)·r + β = x·a + b`, computed in f64 and rounded once.
fn scale_shift(
    stats: &BatchNormStats,
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
) -> (Vec<f32>, Vec<f32>) {
    let r = inv_std(stats, eps);
    let channels = stats.mean.len();
    let scale = (0..channels)
        .map(|c| (gamma[c] as f64 * r[c]) as f32)
        .collect();
    let shift = (0..channels)
        .map(|c| (beta[c] as f64 - stats.mean[c] as f64 * gamma[c] as f64 * r[c]) as f32)
        .collect();
    (scale, shift)
}

/// A residual block's shortcut as its join reads it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Shortcut<'a> {
    /// The block input itself.
    Identity(&'a [f32]),
    /// A projection's convolution output, batch-normalised with these statistics, `γ`, `β`
    /// and `ε` inside the join.
    Normalized(&'a [f32], &'a BatchNormStats, &'a [f32], &'a [f32], f64),
}

/// The residual join `max(0, bn(z) + s)` in one pass, `bn` normalising `z` with `stats`, `γ`,
/// `β` (as [`batch_norm_forward`]) and `s` the shortcut (normalised on the fly when projected):
/// bit for bit the separate passes (the same f32 operations in the same order), without
/// writing and re-reading the normalised branches.
#[allow(clippy::too_many_arguments)]
pub(crate) fn batch_norm_join(
    z: &[f32],
    batch: usize,
    pixels: usize,
    stats: &BatchNormStats,
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
    shortcut: Shortcut<'_>,
) -> Vec<f32> {
    let channels = stats.mean.len();
    let (scale, shift) = scale_shift(stats, gamma, beta, eps);
    let short = match shortcut {
        Shortcut::Identity(x) => (x, None),
        Shortcut::Normalized(zd, st, g, b, e) => (zd, Some(scale_shift(st, g, b, e))),
    };
    // SAFETY: `join_plane` stores every element of its output plane.
    unsafe {
        map_planes(
            batch * channels * pixels,
            pixels,
            channels,
            |plane, c, yp| {
                let range = plane * pixels..(plane + 1) * pixels;
                let (zp, sp) = (&z[range.clone()], &short.0[range]);
                match &short.1 {
                    None => join_plane(zp, sp, yp, scale[c], shift[c], 1.0, 0.0, false),
                    Some((sa, sb)) => {
                        join_plane(zp, sp, yp, scale[c], shift[c], sa[c], sb[c], true)
                    }
                }
            },
        )
    }
}

avx512_fn! {
    /// `yp = max(0, (z·a + b) + s')` with `s' = s·sa + sb` when `project`, else `s' = s`.
    fn join_plane(
        zp: &[f32],
        sp: &[f32],
        yp: &mut [f32],
        a: f32,
        b: f32,
        sa: f32,
        sb: f32,
        project: bool,
    ) {
        if project {
            for ((o, &v), &s) in yp.iter_mut().zip(zp).zip(sp) {
                *o = ((v * a + b) + (s * sa + sb)).max(0.0);
            }
        } else {
            for ((o, &v), &s) in yp.iter_mut().zip(zp).zip(sp) {
                *o = ((v * a + b) + s).max(0.0);
            }
        }
    }
}

avx512_fn! {
    /// `yp = x·a + b`, then `max(0, ·)` when `relu`.
    fn normalize_plane(xp: &[f32], yp: &mut [f32], a: f32, b: f32, relu: bool) {
        if relu {
            for (o, &v) in yp.iter_mut().zip(xp) {
                *o = (v * a + b).max(0.0);
            }
        } else {
            for (o, &v) in yp.iter_mut().zip(xp) {
                *o = v * a + b;
            }
        }
    }
}

/// Batch-norm backward (see the module docs) on contiguous NCHW data: returns `(dx, dγ, dβ)`.
/// `y` is the forward output (for the ReLU mask), `dy` its gradient.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    xs: &[f32],
    ys: &[f32],
    dys: &[f32],
    batch: usize,
    pixels: usize,
    stats: &BatchNormStats,
    gs: &[f32],
    eps: f64,
    relu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let channels = stats.mean.len();
    let r = inv_std(stats, eps);
    let mean = &stats.mean;
    // Per-channel Σg and Σg·x̂ in f64 (planes in batch order within fixed image groups).
    let sums: Vec<(f64, f64)> = channel_sums(batch, channels, pixels, |n, c| {
        let p = (n * channels + c) * pixels..(n * channels + c + 1) * pixels;
        plane_grad_sums(
            &xs[p.clone()],
            &ys[p.clone()],
            &dys[p],
            mean[c] as f64,
            relu,
        )
    })
    .into_iter()
    .enumerate()
    .map(|(c, (s, sx))| (s, sx * r[c]))
    .collect();
    let m = (batch * pixels) as f64;
    let coef: Vec<(f32, f32, f32)> = (0..channels)
        .map(|c| {
            let (s, sx) = sums[c];
            let k = gs[c] as f64 * r[c];
            // dx = k·g − k·s/M − k·r·sx/M·(x − μ)
            (
                k as f32,
                (k * s / m - k * r[c] * sx / m * mean[c] as f64) as f32,
                (k * r[c] * sx / m) as f32,
            )
        })
        .collect();
    // SAFETY: `dx_plane` stores every element of its output plane.
    let dx = unsafe {
        map_planes(xs.len(), pixels, channels, |plane, c, out| {
            let (k, off, slope) = coef[c];
            let p = plane * pixels..(plane + 1) * pixels;
            dx_plane(
                out,
                &xs[p.clone()],
                &ys[p.clone()],
                &dys[p],
                (k, off, slope),
                relu,
            );
        })
    };
    let dgamma: Vec<f32> = sums.iter().map(|&(_, sx)| sx as f32).collect();
    let dbeta: Vec<f32> = sums.iter().map(|&(s, _)| s as f32).collect();
    (dx, dgamma, dbeta)
}

avx512_fn! {
    /// `out = k·g − off − slope·x` with `g` the gradient reaching the batch norm ([`upstream`]).
    fn dx_plane(
        out: &mut [f32],
        xs: &[f32],
        ys: &[f32],
        dys: &[f32],
        coef: (f32, f32, f32),
        relu: bool,
    ) {
        let (k, off, slope) = coef;
        for (((o, &xv), &yv), &dv) in out.iter_mut().zip(xs).zip(ys).zip(dys) {
            *o = k * upstream(relu, yv, dv) - off - slope * xv;
        }
    }
}

avx512_fn! {
    /// `out = scale·g` with `g` the gradient reaching the batch norm ([`upstream`]).
    pub(crate) fn scaled_upstream_plane(
        out: &mut [f32],
        ys: &[f32],
        dys: &[f32],
        scale: f32,
        relu: bool,
    ) {
        for ((o, &yv), &dv) in out.iter_mut().zip(ys).zip(dys) {
            *o = scale * upstream(relu, yv, dv);
        }
    }
}

pub(crate) fn nchw(
    op: &'static str,
    dims: &[usize],
    channels: usize,
) -> candle_core::Result<(usize, usize)> {
    if dims.len() != 4 || dims[1] != channels {
        candle_core::bail!("{op}: expected N × {channels} × H × W, got {dims:?}");
    }
    Ok((dims[0], dims[2] * dims[3]))
}

/// The `cpu_fwd` of both batch-norm ops: checks `(x, γ, β)` against `stats`' channel count and
/// normalises `x` with `stats` ([`batch_norm_forward`]).
pub(crate) fn forward_storages(
    op: &'static str,
    stats: &BatchNormStats,
    eps: f64,
    relu: bool,
    [(s1, l1), (s2, l2), (s3, l3)]: [(&CpuStorage, &Layout); 3],
) -> candle_core::Result<(CpuStorage, Shape)> {
    let channels = stats.mean.len();
    let (batch, pixels) = nchw(op, l1.dims(), channels)?;
    let x = storage_slice(op, s1, l1)?;
    let gamma = storage_slice(op, s2, l2)?;
    let beta = storage_slice(op, s3, l3)?;
    if gamma.len() != channels || beta.len() != channels {
        candle_core::bail!("{op}: γ and β need {channels} values");
    }
    let y = batch_norm_forward(x, batch, pixels, stats, gamma, beta, eps, relu);
    Ok((CpuStorage::F32(y), Shape::from(l1.dims())))
}

impl CustomOp3 for BatchNormOp {
    fn name(&self) -> &'static str {
        "conad-batch-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        forward_storages(
            self.name(),
            &self.stats,
            self.eps,
            self.relu,
            [(s1, l1), (s2, l2), (s3, l3)],
        )
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let channels = self.stats.mean.len();
        let (batch, pixels) = nchw(self.name(), x.dims(), channels)?;
        let name = self.name();
        let (dx, dgamma, dbeta) = with_tensor_slice(name, x, |xs| {
            with_tensor_slice(name, y, |ys| {
                with_tensor_slice(name, dy, |dys| {
                    with_tensor_slice(name, gamma, |gs| {
                        Ok(batch_norm_backward(
                            xs,
                            ys,
                            dys,
                            batch,
                            pixels,
                            &self.stats,
                            gs,
                            self.eps,
                            self.relu,
                        ))
                    })
                })
            })
        })?;
        Ok((
            Some(cpu_tensor(dx, x.dims())?),
            Some(cpu_tensor(dgamma, channels)?),
            Some(cpu_tensor(dbeta, channels)?),
        ))
    }
}
