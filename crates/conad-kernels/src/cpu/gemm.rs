//! The two matrix products of the CPU kernels, as calls to the `gemm` crate on tiles: the logit
//! tile `(1/τ) Q_blk K_blkᵀ` of the forward and backward passes, and the gradient update
//! `(1/τ) H C` of the backward pass (docs/reference.md §0 "The generic kernel"). Single-threaded
//! (`gemm::Parallelism::None`): the parallelism is rayon over row blocks, one tile per worker.

use super::real::Real;

/// `dst[0..m, 0..n] (row stride dst_rs) = beta · a[0..m] · b[0..n]ᵀ` (+ `dst` if `accumulate`),
/// where `a` is `m × k` and `b` is `n × k`, both row-major with row stride `k`.
#[inline(always)]
pub(super) fn gemm_abt<T: Real>(
    dst: &mut [T],
    dst_rs: usize,
    a: &[T],
    b: &[T],
    (m, n, k): (usize, usize, usize),
    beta: T,
    accumulate: bool,
) {
    assert!(dst.len() >= (m.max(1) - 1) * dst_rs + n && a.len() >= m * k && b.len() >= n * k);
    // SAFETY: the assertion bounds every index gemm touches: dst (i, j) at i·dst_rs + j with
    // i < m, j < n; a (i, p) at i·k + p; bᵀ (p, j) = b (j, p) at j·k + p.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            k as isize,
            1,
            T::ONE,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `dst (m × k, row stride k) (+)= beta · h (m × n, row stride h_rs) · c (n × k)`.
#[inline(always)]
pub(super) fn gemm_ab<T: Real>(
    dst: &mut [T],
    h: &[T],
    h_rs: usize,
    c: &[T],
    (m, n, k): (usize, usize, usize),
    beta: T,
    accumulate: bool,
) {
    assert!(dst.len() >= m * k && h.len() >= (m.max(1) - 1) * h_rs + n && c.len() >= n * k);
    // SAFETY: bounds as asserted: dst (i, p) at i·k + p; h (i, j) at i·h_rs + j; c (j, p) at
    // j·k + p.
    unsafe {
        gemm::gemm(
            m,
            k,
            n,
            dst.as_mut_ptr(),
            1,
            k as isize,
            accumulate,
            h.as_ptr(),
            1,
            h_rs as isize,
            c.as_ptr(),
            1,
            k as isize,
            T::ONE,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
