//! Per-thread scratch buffers that outlive a single kernel call.
//!
//! The convolution kernels need an im2col matrix, a column gradient and a gathered output
//! gradient per chunk of images. Allocating them per call (or per rayon split) and sizing them
//! with `resize` would re-zero up to a few MiB per chunk. Each rayon worker instead keeps its
//! buffers in a thread-local pool: [`ScratchBuf::take`] lends one out and dropping it gives it
//! back, so after the first step no buffer is allocated or cleared again. A lent buffer holds stale
//! values; every user overwrites the whole slice before reading it.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

thread_local! {
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A scratch slice of a requested length, lent from the current thread's pool.
#[derive(Debug)]
pub struct ScratchBuf {
    buf: Vec<f32>,
    len: usize,
}

impl ScratchBuf {
    /// Lends a buffer of `len` values (contents unspecified: overwrite before reading).
    pub fn take(len: usize) -> Self {
        let mut buf = POOL
            .with(|p| {
                let mut p = p.borrow_mut();
                // The largest pooled buffer, so a big request does not grow a small one.
                let best = (0..p.len()).max_by_key(|&i| p[i].len())?;
                Some(p.swap_remove(best))
            })
            .unwrap_or_default();
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        Self { buf, len }
    }
}

impl Deref for ScratchBuf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.buf[..self.len]
    }
}

impl DerefMut for ScratchBuf {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buf[..self.len]
    }
}

impl Drop for ScratchBuf {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        // A thread being torn down has no pool left; the buffer is simply freed then.
        let _ = POOL.try_with(|p| p.borrow_mut().push(buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A returned buffer is lent out again (same allocation, no new zeroing), sized to the
    /// request, and two live buffers never share storage.
    #[test]
    fn buffers_are_reused_and_never_shared() {
        let ptr = {
            let mut a = ScratchBuf::take(1000);
            a.fill(3.0);
            a.as_ptr()
        };
        let b = ScratchBuf::take(10);
        assert_eq!(b.len(), 10);
        assert_eq!(b.as_ptr(), ptr, "the pooled buffer is reused");
        assert_eq!(b[0], 3.0, "no re-zeroing");
        let c = ScratchBuf::take(10);
        assert_ne!(c.as_ptr(), b.as_ptr());
    }
}
