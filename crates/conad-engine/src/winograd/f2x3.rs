//! Winograd F(2×2, 3×3): Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks"
//! (CVPR 2016), §4, eq. (8), with
//!
//! ```text
//!      ⎡1  0 −1  0⎤        ⎡ 1    0    0 ⎤
//! Bᵀ = ⎢0  1  1  0⎥    G = ⎢1/2  1/2  1/2⎥    Aᵀ = ⎡1 1  1  0⎤
//!      ⎢0 −1  1  0⎥        ⎢1/2 −1/2  1/2⎥         ⎣0 1 −1 −1⎦
//!      ⎣0  1  0 −1⎦        ⎣ 0    0    1 ⎦
//! ```
//!
//! 16 multiply-adds per tile and channel pair where the direct convolution needs 36 (2.25×
//! fewer). The transforms only add, subtract and halve. Flipping a 3×3 kernel swaps rows and
//! columns 0 and 3 of its transform (`G J = Q G` with `J` the 3×3 and `Q` the 0↔3 reversal), so
//! the input gradient's kernel transform is the forward's, transposed and index-permuted
//! (`U'[c][ξ][o] = U[o][Qξ][c]`), built straight from the layer's weight.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use rayon::prelude::*;

use super::{LANES, MAX_XI, Tiling};
use crate::scratch::ScratchBuf;

/// F(2×2, 3×3): 2×2 output tiles from 4×4 input patches.
#[derive(Clone, Copy, Debug)]
pub(crate) struct F2x3;

/// Transformed-tile index of the flipped kernel: `Q = [3, 1, 2, 0]` on rows and columns.
pub(super) const FLIP: [usize; 4] = [3, 1, 2, 0];

// Loops over transform rows and columns index several arrays by the same position.
#[allow(clippy::needless_range_loop)]
impl Tiling for F2x3 {
    const M: usize = 2;
    const XI: usize = 16;
    const TARGET_TILES: usize = 128;

    #[inline(always)]
    fn kernel_lanes(g: &[[f32; LANES]; 9], u: &mut [[f32; LANES]]) {
        // t = G g (4 × 3 per lane), then U = t Gᵀ (4 × 4 per lane).
        let mut t = [[[0.0f32; LANES]; 3]; 4];
        for col in 0..3 {
            for l in 0..LANES {
                let (a, b, d) = (g[col][l], g[3 + col][l], g[6 + col][l]);
                t[0][col][l] = a;
                t[1][col][l] = 0.5 * (a + b + d);
                t[2][col][l] = 0.5 * (a - b + d);
                t[3][col][l] = d;
            }
        }
        let u = &mut u[..Self::XI];
        for (row, [a, b, d]) in t.iter().enumerate() {
            for l in 0..LANES {
                u[row * 4][l] = a[l];
                u[row * 4 + 1][l] = 0.5 * (a[l] + b[l] + d[l]);
                u[row * 4 + 2][l] = 0.5 * (a[l] - b[l] + d[l]);
                u[row * 4 + 3][l] = d[l];
            }
        }
    }

    #[inline(always)]
    fn kernel_adjoint_lanes(z: &[[f32; LANES]]) -> [[f32; LANES]; 9] {
        // Gᵀ applied to a 4-vector per lane: (z0 + (z1 + z2)/2, (z1 − z2)/2, (z1 + z2)/2 + z3).
        #[inline(always)]
        fn gt(z: [[f32; LANES]; 4]) -> [[f32; LANES]; 3] {
            let mut r = [[0.0f32; LANES]; 3];
            for l in 0..LANES {
                let (sum, diff) = (0.5 * (z[1][l] + z[2][l]), 0.5 * (z[1][l] - z[2][l]));
                r[0][l] = z[0][l] + sum;
                r[1][l] = diff;
                r[2][l] = sum + z[3][l];
            }
            r
        }
        // Gᵀ down each of the four columns, then Gᵀ along each of the three resulting rows.
        let mut cols = [[[0.0f32; LANES]; 3]; 4];
        for (col, out) in cols.iter_mut().enumerate() {
            *out = gt([z[col], z[4 + col], z[8 + col], z[12 + col]]);
        }
        let mut dw = [[0.0f32; LANES]; 9];
        for ky in 0..3 {
            let row = gt([cols[0][ky], cols[1][ky], cols[2][ky], cols[3][ky]]);
            dw[ky * 3..][..3].copy_from_slice(&row);
        }
        dw
    }

    fn flipped_kernel_transform(w: &[f32], out_channels: usize, in_channels: usize) -> ScratchBuf {
        assert!(crate::simd::avx512());
        assert_eq!(w.len(), out_channels * in_channels * 9);
        let mut u = ScratchBuf::take(in_channels * Self::XI * out_channels);
        u.par_chunks_mut(LANES * Self::XI * out_channels)
            .enumerate()
            .for_each(|(block, rows)| {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: AVX-512F was asserted above; `rows` holds whole rows `U'[c]` from input
                // channel `16·block` on.
                unsafe {
                    avx512::flipped_kernel_rows(w, in_channels, block * LANES, rows)
                }
            });
        u
    }

    /// # Safety
    /// As [`Tiling::input_tile`]: AVX-512F, every load and store in bounds.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn input_tile(src: *const f32, row: usize, cell: usize, dst: *mut f32, stride: usize) {
        let mut e = [[_mm512_setzero_ps(); 4]; 4];
        for (a, ea) in e.iter_mut().enumerate() {
            // SAFETY: in bounds by the caller's contract.
            let d = |b: usize| unsafe { _mm512_loadu_ps(src.add(a * row + b * cell)) };
            let (d0, d1, d2, d3) = (d(0), d(1), d(2), d(3));
            ea[0] = _mm512_sub_ps(d0, d2);
            ea[1] = _mm512_add_ps(d1, d2);
            ea[2] = _mm512_sub_ps(d2, d1);
            ea[3] = _mm512_sub_ps(d1, d3);
        }
        for col in 0..4 {
            let rows = [
                _mm512_sub_ps(e[0][col], e[2][col]),
                _mm512_add_ps(e[1][col], e[2][col]),
                _mm512_sub_ps(e[2][col], e[1][col]),
                _mm512_sub_ps(e[1][col], e[3][col]),
            ];
            for (p, val) in rows.into_iter().enumerate() {
                // SAFETY: in bounds by the caller's contract.
                unsafe { _mm512_storeu_ps(dst.add((p * 4 + col) * stride), val) };
            }
        }
    }

    /// # Safety
    /// As [`Tiling::output_adjoint_tile`]: AVX-512F, every load and store in bounds.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn output_adjoint_tile(
        src: *const f32,
        row: usize,
        cell: usize,
        dst: *mut f32,
        stride: usize,
    ) {
        // SAFETY: in bounds by the caller's contract.
        let d = |a: usize, b: usize| unsafe { _mm512_loadu_ps(src.add(a * row + b * cell)) };
        let (d00, d01, d10, d11) = (d(0, 0), d(0, 1), d(1, 0), d(1, 1));
        // A = [[1, 0], [1, 1], [1, −1], [0, −1]]: rows of A·dY, then (A·dY)·Aᵀ.
        let zero = _mm512_setzero_ps();
        let rows = [
            [d00, d01],
            [_mm512_add_ps(d00, d10), _mm512_add_ps(d01, d11)],
            [_mm512_sub_ps(d00, d10), _mm512_sub_ps(d01, d11)],
            [_mm512_sub_ps(zero, d10), _mm512_sub_ps(zero, d11)],
        ];
        for (p, [r0, r1]) in rows.into_iter().enumerate() {
            let vals = [
                r0,
                _mm512_add_ps(r0, r1),
                _mm512_sub_ps(r0, r1),
                _mm512_sub_ps(zero, r1),
            ];
            for (col, val) in vals.into_iter().enumerate() {
                // SAFETY: in bounds by the caller's contract.
                unsafe { _mm512_storeu_ps(dst.add((p * 4 + col) * stride), val) };
            }
        }
    }

    /// # Safety
    /// As [`Tiling::output_tile`]: AVX-512F, every load and store in bounds.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn output_tile(src: *const f32, stride: usize, k: __mmask16) -> [__m512; 16] {
        // SAFETY: in bounds by the caller's contract.
        let mq = |xi: usize| unsafe { _mm512_maskz_loadu_ps(k, src.add(xi * stride)) };
        let mut r = [[_mm512_setzero_ps(); 4]; 2];
        for col in 0..4 {
            let (m0, m1, m2, m3) = (mq(col), mq(4 + col), mq(8 + col), mq(12 + col));
            r[0][col] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
            r[1][col] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
        }
        let mut out = [_mm512_setzero_ps(); 16];
        for (a, ra) in r.iter().enumerate() {
            out[2 * a] = _mm512_add_ps(_mm512_add_ps(ra[0], ra[1]), ra[2]);
            out[2 * a + 1] = _mm512_sub_ps(_mm512_sub_ps(ra[1], ra[2]), ra[3]);
        }
        out
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::super::avx512::gather_taps;
    use super::{F2x3, FLIP, LANES, MAX_XI, Tiling};

    /// The rows `U'[c]` of input channels `c0..` (`rows` holds whole rows of `16 × O` values),
    /// 16 output channels at a time; `w` is the layer's `O × C × 3 × 3` weight.
    ///
    /// # Safety
    /// AVX-512F must be available.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn flipped_kernel_rows(w: &[f32], cin: usize, c0: usize, rows: &mut [f32]) {
        const XI: usize = F2x3::XI;
        let cout = w.len() / (cin * 9);
        let cn = rows.len() / (XI * cout);
        let mut u = [[0.0f32; LANES]; MAX_XI];
        for o0 in (0..cout).step_by(LANES) {
            let on = (cout - o0).min(LANES);
            for ci in 0..cn {
                // SAFETY: AVX-512F (caller); output channels `o0..o0 + on` of input channel
                // `c0 + ci` lie in `w`.
                let g = unsafe { gather_taps(&w[(o0 * cin + c0 + ci) * 9..], cin * 9, on) };
                F2x3::kernel_lanes(&g, &mut u);
                for (xi, v) in u.iter().take(XI).enumerate() {
                    let q = FLIP[xi / 4] * 4 + FLIP[xi % 4];
                    rows[(ci * XI + q) * cout + o0..][..on].copy_from_slice(&v[..on]);
                }
            }
        }
    }
}
