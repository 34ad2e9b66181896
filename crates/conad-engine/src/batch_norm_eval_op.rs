//! Evaluation-mode batch normalisation (+ optional ReLU) as a candle `CustomOp3` on `(x, γ, β)`:
//! `y = γ·(x − μ_run)·r + β` with the running statistics as constants, `r = 1/√(σ²_run + ε)`
//! (Ioffe & Szegedy 2015, Alg. 2). Embedding a test split runs every batch norm this way, as one
//! op instead of candle-nn's five broadcast tensor ops.
//!
//! Backward with `g = dy·[y > 0]` (ReLU) or `dy`: `dx = γ·r·g`, `dγ = r·Σ g·(x − μ_run)`,
//! `dβ = Σ g` — no batch-statistic terms, the running statistics do not depend on `x`. Per-channel
//! sums run in f64 in the fixed order of the training op, so results do not depend on the thread
//! count.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use crate::batch_norm_op::{
    BatchNormStats, channel_sums, forward_storages, inv_std, map_planes, nchw,
    scaled_upstream_plane,
};
use crate::cpu_data::{cpu_tensor, with_tensor_slice};
use crate::plane_sums::plane_grad_sums;

/// The op; `running` holds the running mean and (biased-or-not, as stored) running variance.
#[derive(Clone, Debug)]
pub struct BatchNormEvalOp {
    running: BatchNormStats,
    eps: f64,
    relu: bool,
}

impl BatchNormEvalOp {
    /// An op normalising with the running `mean` and `var` (one value per channel).
    pub fn new(mean: Vec<f32>, var: Vec<f32>, eps: f64, relu: bool) -> Self {
        Self {
            running: BatchNormStats {
                mean,
                var,
                count: 0,
            },
            eps,
            relu,
        }
    }
}

impl CustomOp3 for BatchNormEvalOp {
    fn name(&self) -> &'static str {
        "conad-batch-norm-eval"
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
            &self.running,
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
        let channels = self.running.mean.len();
        let (batch, pixels) = nchw(self.name(), x.dims(), channels)?;
        let name = self.name();
        let r = inv_std(&self.running, self.eps);
        let mean = &self.running.mean;
        let relu = self.relu;
        let (dx, dgamma, dbeta) = with_tensor_slice(name, x, |xs| {
            with_tensor_slice(name, y, |ys| {
                with_tensor_slice(name, dy, |dys| {
                    with_tensor_slice(name, gamma, |gs| {
                        let sums = channel_sums(batch, channels, pixels, |n, c| {
                            let p = (n * channels + c) * pixels..(n * channels + c + 1) * pixels;
                            plane_grad_sums(
                                &xs[p.clone()],
                                &ys[p.clone()],
                                &dys[p],
                                mean[c] as f64,
                                relu,
                            )
                        });
                        let scale: Vec<f32> = (0..channels)
                            .map(|c| (gs[c] as f64 * r[c]) as f32)
                            .collect();
                        // SAFETY: `scaled_upstream_plane` stores every element of its plane.
                        let dx = unsafe {
                            map_planes(xs.len(), pixels, channels, |plane, c, out| {
                                let p = plane * pixels..(plane + 1) * pixels;
                                scaled_upstream_plane(out, &ys[p.clone()], &dys[p], scale[c], relu);
                            })
                        };
                        let dgamma: Vec<f32> =
                            (0..channels).map(|c| (sums[c].1 * r[c]) as f32).collect();
                        let dbeta: Vec<f32> = sums.iter().map(|&(s, _)| s as f32).collect();
                        Ok((dx, dgamma, dbeta))
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
