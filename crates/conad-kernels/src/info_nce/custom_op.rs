//! The candle glue: the forward and backward passes as `CustomOp`s whose `cpu_fwd` /
//! `cuda_fwd` dispatch to the [`crate::cpu`] or `crate::cuda` backend, the way candle's storage
//! dispatches to `cpu_backend` / `cuda_backend`. Autograd sees one op per call ([`SharedOp`] on
//! one `z`, [`PairOp`] on `q` and `k`); its `bwd` applies the matching backward op, which reads
//! the statistics the forward saved ([`OpState`]).
//!
//! The contract each backend implements is in [`spec`](super::spec); the backends never call
//! each other.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use super::saved::{OpState, Saved};
use super::spec::Target;
use crate::cpu;

/// The forward op on one shared `z` (anchors are its leading rows).
#[derive(Debug, Clone)]
pub(crate) struct SharedOp(pub Arc<OpState>);

/// The forward op on separate anchors `q` and keys `k`.
#[derive(Debug, Clone)]
pub(crate) struct PairOp(pub Arc<OpState>);

/// Backward of [`SharedOp`]: `(z, ∂L/∂out) → dz`.
#[derive(Debug, Clone)]
struct SharedBackward(Arc<OpState>);

/// Backward of [`PairOp`]: `(q, k, ∂L/∂out) → dq` or `dk`.
#[derive(Debug, Clone)]
struct PairBackward(Arc<OpState>, Target);

impl CustomOp1 for SharedOp {
    fn name(&self) -> &'static str {
        "conad-fused-info-nce"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (out, shape, stats) = cpu::shared_forward(&self.0.spec, s, l)?;
        self.0.store(Saved::Cpu(stats));
        Ok((out, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (out, shape, stats) = crate::cuda::candle_ops::forward(&self.0.spec, (s, l), None)?;
        self.0.store(Saved::Cuda(Box::new(stats)));
        Ok((out, shape))
    }

    fn bwd(&self, z: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        Ok(Some(z.apply_op2_no_bwd(
            &grad,
            &SharedBackward(self.0.clone()),
        )?))
    }
}

impl CustomOp2 for SharedBackward {
    fn name(&self) -> &'static str {
        "conad-fused-info-nce-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let spec = &self.0.spec;
        let stats = self
            .0
            .cpu_stats(|| cpu::shared_forward(spec, s1, l1).map(|(_, _, stats)| stats))?;
        cpu::shared_backward(spec, &stats, (s1, l1), (s2, l2))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        self.0.with_cuda_stats(|stats| {
            crate::cuda::candle_ops::backward(
                &self.0.spec,
                stats,
                Target::Shared,
                (s1, l1),
                None,
                (s2, l2),
            )
        })
    }
}

impl CustomOp2 for PairOp {
    fn name(&self) -> &'static str {
        "conad-fused-info-nce-qk"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (out, shape, stats) = cpu::pair_forward(&self.0.spec, (s1, l1), (s2, l2))?;
        self.0.store(Saved::Cpu(stats));
        Ok((out, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (out, shape, stats) =
            crate::cuda::candle_ops::forward(&self.0.spec, (s1, l1), Some((s2, l2)))?;
        self.0.store(Saved::Cuda(Box::new(stats)));
        Ok((out, shape))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dq = q.apply_op3_no_bwd(k, &grad, &PairBackward(self.0.clone(), Target::Anchors))?;
        let dk = q.apply_op3_no_bwd(k, &grad, &PairBackward(self.0.clone(), Target::Keys))?;
        Ok((Some(dq), Some(dk)))
    }
}

impl CustomOp3 for PairBackward {
    fn name(&self) -> &'static str {
        "conad-fused-info-nce-qk-backward"
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
        let spec = &self.0.spec;
        let stats = self
            .0
            .cpu_stats(|| cpu::pair_forward(spec, (s1, l1), (s2, l2)).map(|(_, _, stats)| stats))?;
        cpu::pair_backward(spec, &stats, self.1, (s1, l1), (s2, l2), (s3, l3))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        self.0.with_cuda_stats(|stats| {
            crate::cuda::candle_ops::backward(
                &self.0.spec,
                stats,
                self.1,
                (s1, l1),
                Some((s2, l2)),
                (s3, l3),
            )
        })
    }
}
