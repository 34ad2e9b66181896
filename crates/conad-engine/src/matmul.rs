//! A checked, single-threaded wrapper over the `gemm` crate's packed f32 GEMM (AVX-512 through
//! its `x86-v4` feature).
//!
//! The engine never lets `gemm` split work across threads: parallelism comes from the engine's own
//! shape-determined chunks (see [`crate::geometry`]), so no reduction is ever split in a way that
//! depends on the thread count.

/// A strided read-only matrix view: element `(i, j)` is `data[i·row_stride + j·col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    /// Backing storage.
    pub data: &'a [f32],
    /// Distance between consecutive rows.
    pub row_stride: usize,
    /// Distance between consecutive columns.
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// Row-major view with `cols` columns.
    pub fn row_major(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns (a column-major view).
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }

    fn check(&self, rows: usize, cols: usize) {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * self.row_stride + (cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// `dst (m × n; element (i, j) at i·dst_rs + j·dst_cs) (+)= lhs (m × k) · rhs (k × n)`;
/// `accumulate` adds to `dst` instead of overwriting it.
///
/// # Panics
/// If a view does not fit its storage (an engine bug, never user input).
#[allow(clippy::too_many_arguments)]
pub fn gemm_into(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    dst_cs: usize,
    accumulate: bool,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        (m - 1) * dst_rs + (n - 1) * dst_cs < dst.len(),
        "dst out of bounds"
    );
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[i * dst_rs + j * dst_cs] = 0.0;
                }
            }
        }
        return;
    }
    lhs.check(m, k);
    rhs.check(k, n);
    // SAFETY: all three views were bounds-checked above for the m × k, k × n and m × n index
    // ranges `gemm` touches; `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_into_matches_naive_product_with_transposed_views() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 2.0).collect(); // m × k
        let bt: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 - 1.0).collect(); // n × k
        let mut c = vec![1.0f32; m * n];
        gemm_into(
            m,
            n,
            k,
            &mut c,
            n,
            1,
            true,
            MatRef::row_major(&a, k),
            MatRef::transposed(&bt, k),
        );
        for i in 0..m {
            for j in 0..n {
                let want: f32 = 1.0 + (0..k).map(|l| a[i * k + l] * bt[j * k + l]).sum::<f32>();
                assert_eq!(c[i * n + j], want);
            }
        }
    }
}
