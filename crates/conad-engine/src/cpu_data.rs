//! Access to the contiguous f32 data of CPU tensors and storages.

use candle_core::{CpuStorage, Device, Layout, Shape, Storage, Tensor};
use rayon::prelude::*;

/// The contiguous f32 slice described by `layout` in `storage`, or a candle error naming `op`.
/// The first call in a process applies [`crate::keep_activation_buffers`].
pub fn storage_slice<'a>(
    op: &'static str,
    storage: &'a CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a [f32]> {
    // Every engine kernel reads its inputs through here: tune the allocator on first use.
    crate::keep_activation_buffers();
    let data = match storage {
        CpuStorage::F32(v) => v.as_slice(),
        _ => candle_core::bail!("{op}: only f32 tensors are supported; convert with to_dtype(F32)"),
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: the input must be contiguous"),
    }
}

/// Runs `f` on the contiguous f32 data of a CPU tensor (made contiguous first if needed).
pub fn with_tensor_slice<R>(
    op: &'static str,
    t: &Tensor,
    f: impl FnOnce(&[f32]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => f(storage_slice(op, cpu, layout)?),
        _ => candle_core::bail!("{op}: the engine's CPU kernels need CPU tensors"),
    }
}

/// A CPU f32 tensor from a vector.
pub fn cpu_tensor(data: Vec<f32>, shape: impl Into<Shape>) -> candle_core::Result<Tensor> {
    Tensor::from_vec(data, shape, &Device::Cpu)
}

/// `len` zeros written by the rayon pool, for every engine output buffer.
///
/// Each output is then overwritten or accumulated into by a parallel kernel; zeroing it first on
/// the calling thread was a serial `memset` while the workers idled — 40 % of the main thread's
/// time in a width-1/4 step (`perf`). Writing (rather than asking the allocator for zeroed memory)
/// also keeps fresh pages off the shared zero page, whose copy-on-write faults each cost a
/// cross-CPU TLB shootdown when col2im first reads-then-adds.
pub fn par_zeros(len: usize) -> Vec<f32> {
    const SPAN: usize = 1 << 16;
    let mut v: Vec<f32> = Vec::with_capacity(len);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(SPAN)
        .for_each(|chunk| {
            for x in chunk {
                x.write(0.0);
            }
        });
    // SAFETY: the loop above initialised all `len` elements of the spare capacity.
    unsafe { v.set_len(len) };
    v
}
