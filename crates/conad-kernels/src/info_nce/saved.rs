//! The hand-over from the forward to the backward pass: the per-anchor statistics a backend's
//! forward leaves (`lse_i`, `lse⁺_i`; see [`spec`](super::spec)), kept next to the op's [`Spec`]
//! in one slot shared by the forward op and the backward ops built from it.
//!
//! This and [`custom_op`](super::custom_op) are the only parts of the op description that name
//! a backend: the statistics stay in each backend's own representation (host vectors for the
//! CPU, device buffers for CUDA) so that no copy is made between the passes.

use std::sync::{Arc, Mutex, MutexGuard};

use super::spec::Spec;
use crate::cpu::RowStats;

/// Statistics saved by the forward pass for the backward pass.
#[derive(Debug)]
pub(crate) enum Saved {
    Cpu(RowStats),
    #[cfg(feature = "cuda")]
    Cuda(Box<crate::cuda::launch::DeviceStats>),
}

/// One op's description and the statistics its forward pass saved.
#[derive(Debug)]
pub(crate) struct OpState {
    pub spec: Spec,
    saved: Mutex<Option<Saved>>,
}

impl OpState {
    pub(crate) fn new(spec: Spec) -> Arc<Self> {
        Arc::new(Self {
            spec,
            saved: Mutex::new(None),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Option<Saved>> {
        self.saved.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps the statistics of a forward pass (replacing earlier ones).
    pub(crate) fn store(&self, saved: Saved) {
        *self.lock() = Some(saved);
    }

    /// The saved CPU statistics, recomputed by `recompute` (and kept) if the forward pass did
    /// not leave them.
    pub(crate) fn cpu_stats(
        &self,
        recompute: impl FnOnce() -> candle_core::Result<RowStats>,
    ) -> candle_core::Result<RowStats> {
        let mut saved = self.lock();
        if let Some(Saved::Cpu(stats)) = &*saved {
            return Ok(stats.clone());
        }
        let stats = recompute()?;
        *saved = Some(Saved::Cpu(stats.clone()));
        Ok(stats)
    }

    /// Runs `f` on the statistics the CUDA forward pass left on the device.
    #[cfg(feature = "cuda")]
    pub(crate) fn with_cuda_stats<R>(
        &self,
        f: impl FnOnce(&crate::cuda::launch::DeviceStats) -> candle_core::Result<R>,
    ) -> candle_core::Result<R> {
        let saved = self.lock();
        let Some(Saved::Cuda(stats)) = &*saved else {
            candle_core::bail!("fused InfoNCE: the CUDA forward statistics are missing");
        };
        f(stats)
    }
}
