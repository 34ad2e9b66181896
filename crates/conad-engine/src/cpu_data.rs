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

/// Runs `f` on the contiguous f32 data of several CPU tensors at once (each made contiguous
/// first if needed; the tensors must not share storage).
pub fn with_tensor_slices<R>(
    op: &'static str,
    ts: &[Tensor],
    f: impl FnOnce(&[&[f32]]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let ts = ts
        .iter()
        .map(Tensor::contiguous)
        .collect::<candle_core::Result<Vec<_>>>()?;
    let guards: Vec<_> = ts.iter().map(Tensor::storage_and_layout).collect();
    let mut slices = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        match &**storage {
            Storage::Cpu(cpu) => slices.push(storage_slice(op, cpu, layout)?),
            _ => candle_core::bail!("{op}: the engine's CPU kernels need CPU tensors"),
        }
    }
    f(&slices)
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

/// A fresh buffer of `len` values cut into `chunk`-value pieces (the last may be shorter); each
/// piece is zeroed and then handed to `f(index, piece)` **in the same parallel task**, so the
/// zero-fill writes cache lines the kernel is about to write instead of making a separate pass
/// over memory ([`par_zeros`] then `par_chunks_mut`), for kernels that accumulate into their
/// piece (col2im); kernels that store every value take [`par_overwrite_chunks`]. The result is
/// what that pair gives, bit for bit, for any `f` that writes only its own piece, with `f`'s
/// value per piece in piece order.
pub fn par_fill_chunks_with<R: Send>(
    len: usize,
    chunk: usize,
    f: impl Fn(usize, &mut [f32]) -> R + Sync,
) -> (Vec<f32>, Vec<R>) {
    let mut v: Vec<f32> = Vec::with_capacity(len);
    let results = v.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .map(|(i, piece)| {
            for x in piece.iter_mut() {
                x.write(0.0);
            }
            // SAFETY: every element of `piece` was initialised just above, and
            // `MaybeUninit<f32>` has the layout of `f32`.
            let piece = unsafe { &mut *(std::ptr::from_mut(piece) as *mut [f32]) };
            f(i, piece)
        })
        .collect();
    // SAFETY: the pieces cover all `len` elements and each was initialised before `f` ran (a
    // panic in `f` propagates out of `collect` before this line, dropping `v` with length 0).
    unsafe { v.set_len(len) };
    (v, results)
}

/// A fresh buffer of `len` values cut into `chunk`-value pieces, each handed to `f(index, piece)`
/// in parallel **without** being zeroed first: for kernels that store every value of their piece
/// (element-wise maps, convolution outputs), where the zero-fill of [`par_fill_chunks_with`]
/// would be a second pass over every activation (measurements: docs/engine.md, "Memory").
///
/// # Safety
/// `f` must write every element of `piece` before reading it (and never read it otherwise): the
/// piece starts as uninitialised memory. Builds with debug assertions fill each piece with a
/// signalling-NaN sentinel first and panic if a value still holds it after `f`, so a kernel that
/// misses an element fails its tests instead of returning stale memory.
pub unsafe fn par_overwrite_chunks(
    len: usize,
    chunk: usize,
    f: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let mut v: Vec<f32> = Vec::with_capacity(len);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, piece)| {
            if cfg!(debug_assertions) {
                for x in piece.iter_mut() {
                    x.write(f32::from_bits(UNWRITTEN));
                }
            }
            // SAFETY: `MaybeUninit<f32>` has the layout of `f32` and the piece is aligned and
            // dereferenceable. The reference points to uninitialised floats in release builds:
            // a deliberate choice resting on Rust's operational semantics as Miri checks them
            // (a reference must be aligned and dereferenceable; reading an uninitialised value
            // is what is undefined), which `std`'s `MaybeUninit` docs state more conservatively.
            // The caller's contract excludes every read before a write.
            let piece = unsafe { &mut *(std::ptr::from_mut(piece) as *mut [f32]) };
            f(i, piece);
            if cfg!(debug_assertions)
                && let Some(j) = piece.iter().position(|x| x.to_bits() == UNWRITTEN)
            {
                panic!("par_overwrite_chunks: piece {i} left element {j} unwritten (kernel bug)");
            }
        });
    // SAFETY: the pieces cover all `len` elements and `f` wrote each of them (the contract); a
    // panic in `f` propagates out of `for_each` before this line, dropping `v` with length 0.
    unsafe { v.set_len(len) };
    v
}

/// The debug sentinel of [`par_overwrite_chunks`]: a signalling NaN, which no arithmetic
/// produces (operations on NaNs return quiet ones).
const UNWRITTEN: u32 = 0x7fa5_a5a5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_fill_chunks_with_zeroes_every_piece_before_the_kernel_runs() {
        // A kernel that accumulates (reads before writing) sees zeros, and every piece, the
        // short last one included, is visited once with its own index.
        let (v, firsts) = par_fill_chunks_with(10, 4, |i, piece| {
            for (j, x) in piece.iter_mut().enumerate() {
                *x += (i * 100 + j) as f32;
            }
            piece[0]
        });
        assert_eq!(v, vec![0., 1., 2., 3., 100., 101., 102., 103., 200., 201.]);
        assert_eq!(firsts, vec![0., 100., 200.]);
        assert!(
            par_fill_chunks_with(0, 4, |_, _| unreachable!())
                .0
                .is_empty()
        );
        // Equal to par_zeros + par_chunks_mut on a larger buffer.
        let mut reference = par_zeros(100_003);
        reference
            .par_chunks_mut(777)
            .enumerate()
            .for_each(|(i, p)| {
                p.iter_mut()
                    .enumerate()
                    .for_each(|(j, x)| *x += (i ^ j) as f32)
            });
        let (ours, _) = par_fill_chunks_with(100_003, 777, |i, p| {
            p.iter_mut()
                .enumerate()
                .for_each(|(j, x)| *x += (i ^ j) as f32)
        });
        assert_eq!(ours, reference);
    }

    #[test]
    fn par_overwrite_chunks_hands_every_piece_to_the_kernel_once() {
        // Every piece, the short last one included, is visited once with its own index, and
        // what the kernel stores is what comes back.
        // SAFETY: the kernel writes every element of its piece.
        let v = unsafe {
            par_overwrite_chunks(10, 4, |i, piece| {
                for (j, x) in piece.iter_mut().enumerate() {
                    *x = (i * 100 + j) as f32;
                }
            })
        };
        assert_eq!(v, vec![0., 1., 2., 3., 100., 101., 102., 103., 200., 201.]);
        // SAFETY: no piece to write.
        assert!(unsafe { par_overwrite_chunks(0, 4, |_, _| unreachable!()) }.is_empty());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "left element 2 unwritten")]
    fn par_overwrite_chunks_catches_a_kernel_that_skips_an_element_in_debug_builds() {
        // SAFETY: deliberately broken kernel; the debug check panics before the buffer escapes.
        let _ = unsafe {
            par_overwrite_chunks(3, 3, |_, piece| {
                piece[0] = 1.0;
                piece[1] = 2.0;
            })
        };
    }
}
