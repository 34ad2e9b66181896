//! Winograd F(4×4, 3×3): Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks"
//! (CVPR 2016), §4, eq. (8), with the F(4×4, 3×3) matrices of interpolation points 0, ±1, ±2, ∞
//! (checked in the tests: exact fractions for `G`, the im2col path for `Bᵀ` and `Aᵀ`):
//!
//! ```text
//!      ⎡4  0 −5  0  1  0⎤        ⎡ 1/4    0     0 ⎤
//!      ⎢0 −4 −4  1  1  0⎥        ⎢−1/6  −1/6  −1/6⎥         ⎡1 1  1 1  1 0⎤
//! Bᵀ = ⎢0  4 −4 −1  1  0⎥    G = ⎢−1/6   1/6  −1/6⎥    Aᵀ = ⎢0 1 −1 2 −2 0⎥
//!      ⎢0 −2 −1  2  1  0⎥        ⎢1/24  1/12   1/6⎥         ⎢0 1  1 4  4 0⎥
//!      ⎢0  2 −1 −2  1  0⎥        ⎢1/24 −1/12   1/6⎥         ⎣0 1 −1 8 −8 1⎦
//!      ⎣0  4  0 −5  0  1⎦        ⎣  0     0     1 ⎦
//! ```
//!
//! 36 multiply-adds per 4×4 output tile and channel pair: 2.25 per output where F(2×2, 3×3)
//! needs 4 and the direct convolution 9. The transforms multiply by 2, 4, 5, 8 and divide by 4,
//! 6 and 24, so results differ from the direct convolution by more rounding than F(2×2, 3×3)'s
//! (Lavin & Gray §5.2 and oneDNN, which uses the same algorithm for its CPU Winograd
//! convolutions; tested against the im2col path to a bound scaled by the terms' magnitudes).
//! Flipping the kernel maps the points 2 and −2 to ½ and −½, outside the set, so the input
//! gradient transforms an explicitly flipped, transposed copy of the weight.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
use self::avx512::{a, at, bt};
use super::{LANES, Tiling, kernel_transform};
use crate::direct_conv::flip_transpose;
use crate::scratch::ScratchBuf;

/// F(4×4, 3×3): 4×4 output tiles from 6×6 input patches.
#[derive(Clone, Copy, Debug)]
pub(crate) struct F4x3;

/// `G` applied to one 3-vector per lane.
#[inline(always)]
fn g6(a: f32, b: f32, c: f32) -> [f32; 6] {
    let (ac, half_b) = (0.25 * a + c, 0.5 * b);
    [
        0.25 * a,
        -(a + b + c) / 6.0,
        -(a - b + c) / 6.0,
        (ac + half_b) / 6.0,
        (ac - half_b) / 6.0,
        c,
    ]
}

/// `Gᵀ` applied to one 6-vector per lane.
#[inline(always)]
fn gt6(z: [f32; 6]) -> [f32; 3] {
    let (s12, s34) = (z[1] + z[2], z[3] + z[4]);
    [
        0.25 * z[0] + (0.25 * s34 - s12) / 6.0,
        ((z[2] - z[1]) + 0.5 * (z[3] - z[4])) / 6.0,
        (s34 - s12) / 6.0 + z[5],
    ]
}

// Loops over transform rows and columns index several arrays by the same position.
#[allow(clippy::needless_range_loop)]
impl Tiling for F4x3 {
    const M: usize = 4;
    const XI: usize = 36;
    const TARGET_TILES: usize = 64;

    #[inline(always)]
    fn kernel_lanes(g: &[[f32; LANES]; 9], u: &mut [[f32; LANES]]) {
        // t = G g (6 × 3 per lane), then U = t Gᵀ (6 × 6 per lane).
        let mut t = [[[0.0f32; LANES]; 3]; 6];
        for col in 0..3 {
            for l in 0..LANES {
                let v = g6(g[col][l], g[3 + col][l], g[6 + col][l]);
                for (row, val) in v.into_iter().enumerate() {
                    t[row][col][l] = val;
                }
            }
        }
        let u = &mut u[..Self::XI];
        for (row, [a, b, c]) in t.iter().enumerate() {
            for l in 0..LANES {
                for (q, val) in g6(a[l], b[l], c[l]).into_iter().enumerate() {
                    u[row * 6 + q][l] = val;
                }
            }
        }
    }

    #[inline(always)]
    fn kernel_adjoint_lanes(z: &[[f32; LANES]]) -> [[f32; LANES]; 9] {
        // Gᵀ down each of the six columns (6 → 3), then Gᵀ along each of the three rows.
        let mut cols = [[[0.0f32; LANES]; 3]; 6];
        for (col, out) in cols.iter_mut().enumerate() {
            for l in 0..LANES {
                let v = gt6([0, 1, 2, 3, 4, 5].map(|p| z[p * 6 + col][l]));
                for (ky, val) in v.into_iter().enumerate() {
                    out[ky][l] = val;
                }
            }
        }
        let mut dw = [[0.0f32; LANES]; 9];
        for ky in 0..3 {
            for l in 0..LANES {
                let v = gt6([0, 1, 2, 3, 4, 5].map(|col| cols[col][ky][l]));
                for (kx, val) in v.into_iter().enumerate() {
                    dw[ky * 3 + kx][l] = val;
                }
            }
        }
        dw
    }

    fn flipped_kernel_transform(w: &[f32], out_channels: usize, in_channels: usize) -> ScratchBuf {
        let flipped = flip_transpose(w, out_channels, in_channels, 3);
        kernel_transform::<Self>(&flipped, in_channels, out_channels)
    }

    /// # Safety
    /// As [`Tiling::input_tile`]: AVX-512F, every load and store in bounds.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn input_tile(src: *const f32, row: usize, cell: usize, dst: *mut f32, stride: usize) {
        // Rows of d B (each patch row through Bᵀ), then Bᵀ down each column.
        let mut e = [[_mm512_setzero_ps(); 6]; 6];
        for (r, er) in e.iter_mut().enumerate() {
            // SAFETY: in bounds by the caller's contract.
            *er =
                bt([0, 1, 2, 3, 4, 5]
                    .map(|b| unsafe { _mm512_loadu_ps(src.add(r * row + b * cell)) }));
        }
        for col in 0..6 {
            let v = bt([
                e[0][col], e[1][col], e[2][col], e[3][col], e[4][col], e[5][col],
            ]);
            for (p, val) in v.into_iter().enumerate() {
                // SAFETY: in bounds by the caller's contract.
                unsafe { _mm512_storeu_ps(dst.add((p * 6 + col) * stride), val) };
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
        // Each dY row through A (4 → 6 columns), then A down each of the six columns.
        let mut e = [[_mm512_setzero_ps(); 6]; 4];
        for (r, er) in e.iter_mut().enumerate() {
            // SAFETY: in bounds by the caller's contract.
            *er = a([0, 1, 2, 3].map(|b| unsafe { _mm512_loadu_ps(src.add(r * row + b * cell)) }));
        }
        for col in 0..6 {
            let v = a([e[0][col], e[1][col], e[2][col], e[3][col]]);
            for (p, val) in v.into_iter().enumerate() {
                // SAFETY: in bounds by the caller's contract.
                unsafe { _mm512_storeu_ps(dst.add((p * 6 + col) * stride), val) };
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
        // Aᵀ down each of the six columns (6 → 4 rows), then Aᵀ along each row.
        let mut r = [[_mm512_setzero_ps(); 6]; 4];
        for col in 0..6 {
            let v = at([0, 1, 2, 3, 4, 5].map(|p| mq(p * 6 + col)));
            for (row, val) in v.into_iter().enumerate() {
                r[row][col] = val;
            }
        }
        let mut out = [_mm512_setzero_ps(); 16];
        for (row, rr) in r.iter().enumerate() {
            out[row * 4..][..4].copy_from_slice(&at(*rr));
        }
        out
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// `Bᵀ d` of one 6-vector (16 lanes).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn bt(d: [__m512; 6]) -> [__m512; 6] {
        let (two, four, five) = (
            _mm512_set1_ps(2.0),
            _mm512_set1_ps(4.0),
            _mm512_set1_ps(5.0),
        );
        let (s12, s34) = (_mm512_add_ps(d[1], d[2]), _mm512_add_ps(d[3], d[4]));
        let (d12, d43) = (_mm512_sub_ps(d[1], d[2]), _mm512_sub_ps(d[4], d[3]));
        let (d42, d31) = (_mm512_sub_ps(d[4], d[2]), _mm512_sub_ps(d[3], d[1]));
        [
            _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4])),
            _mm512_fnmadd_ps(four, s12, s34),
            _mm512_fmadd_ps(four, d12, d43),
            _mm512_fmadd_ps(two, d31, d42),
            _mm512_fnmadd_ps(two, d31, d42),
            _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5])),
        ]
    }

    /// `Aᵀ m` of one 6-vector (16 lanes).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn at(m: [__m512; 6]) -> [__m512; 4] {
        let (s12, d12) = (_mm512_add_ps(m[1], m[2]), _mm512_sub_ps(m[1], m[2]));
        let (s34, d34) = (_mm512_add_ps(m[3], m[4]), _mm512_sub_ps(m[3], m[4]));
        [
            _mm512_add_ps(_mm512_add_ps(m[0], s12), s34),
            _mm512_fmadd_ps(_mm512_set1_ps(2.0), d34, d12),
            _mm512_fmadd_ps(_mm512_set1_ps(4.0), s34, s12),
            _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0), d34, d12), m[5]),
        ]
    }

    /// `A y` of one 4-vector (16 lanes): the adjoint of [`at`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn a(y: [__m512; 4]) -> [__m512; 6] {
        let (e, f) = (_mm512_add_ps(y[0], y[2]), _mm512_add_ps(y[1], y[3]));
        let g = _mm512_fmadd_ps(_mm512_set1_ps(4.0), y[2], y[0]);
        let h = _mm512_mul_ps(
            _mm512_set1_ps(2.0),
            _mm512_fmadd_ps(_mm512_set1_ps(4.0), y[3], y[1]),
        );
        [
            y[0],
            _mm512_add_ps(e, f),
            _mm512_sub_ps(e, f),
            _mm512_add_ps(g, h),
            _mm512_sub_ps(g, h),
            y[3],
        ]
    }
}
