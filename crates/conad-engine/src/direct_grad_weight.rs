//! Weight gradient of few-channel stride-1 "same" 3×3 layers on wide maps without an im2col
//! matrix:
//! `dW[o][c][ky][kx] = Σ_n Σ_{oy,ox} dY[n][o][oy][ox] · x_pad[n][c][oy + ky][ox + kx]`.
//!
//! The im2col + GEMM weight gradient copies each input nine times per step; on few-channel wide
//! layers that copy costs as much as the product. Here the batch is zero-padded once (the planes
//! of [`crate::direct_conv`]) and, per image and input channel, a register tile of 2 output
//! channels × 9 kernel offsets (18 vectors of 16 pixel-lane partial sums) runs over the plane:
//! per 16 output pixels, two output-gradient loads (masked on partial rows), nine shifted input
//! loads and 18 fused multiply-adds. The 16-lane partials live in memory between images and are
//! folded into `dW` at the end.
//!
//! Determinism: each partial is owned by one task (output-channel blocks are split between
//! tasks, never images) and accumulates the images in order; the final lane fold is a fixed
//! sequence — results do not depend on the thread count.

use rayon::prelude::*;

use crate::direct_conv::{LANES, Tiling, applies, pad_image};
use crate::geometry::ConvGeometry;
use crate::scratch::ScratchBuf;

/// Output channels per register tile.
const MO: usize = 2;
/// Kernel offsets per register tile (3×3 kernels).
const TAPS: usize = 9;
/// Output-channel blocks per parallel task.
const BLOCKS_PER_TASK: usize = 4;

/// Whether [`direct_grad_weight`] handles `g`: the direct kernel's shapes with a 3×3 kernel, an
/// even number of output channels, and few channels — at most 16 × 16, or an image stem of at
/// most 4 input channels. Measured per layer (`cargo xtask bench conv`): 16 → 16 channels on
/// 28×28 maps 4.0 → 2.6 ms, a 3 → 64 stem 8.0 → 4.4 ms; but 32 → 32 on 14×14 1.8 → 2.4 ms and
/// 128 → 128 on 16×16 26 → 39 ms, where the im2col GEMM amortises its copy and the 16-lane
/// partials (reloaded per image and channel) cost more than they save. Layers with at least 16
/// input and output channels take the Winograd weight gradient first
/// ([`crate::winograd::applies_grad_weight`]; faster still), so on AVX-512 machines this kernel
/// serves the stem and layers of fewer than 16 channels, and 16-channel layers only with
/// `CONAD_NO_WINOGRAD` set.
pub fn applies_grad_weight(g: &ConvGeometry) -> bool {
    applies(g)
        && g.kernel == 3
        && g.out_channels.is_multiple_of(MO)
        && (g.in_channels * g.out_channels <= 16 * 16 || g.in_channels <= 4)
}

/// `dW` (`O × C × 3 × 3`) of `y = conv2d(x, w)` from `x` (`N × C × H × W`) and `dy`
/// (`N × O × H × W`); requires [`applies_grad_weight`]`(g)`.
pub fn direct_grad_weight(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    debug_assert!(applies_grad_weight(g));
    let t = Tiling::new(g);
    let (cin, cout) = (g.in_channels, g.out_channels);
    let plane = t.pad_height * t.pad_width;
    let in_img = cin * g.in_pixels();
    // The whole batch, padded once.
    let mut pad = ScratchBuf::take(g.batch * cin * plane);
    pad.par_chunks_mut(cin * plane)
        .zip(x.par_chunks(in_img))
        .for_each(|(p, img)| pad_image(g, &t, img, p));
    // 16-lane partials `[o][c][tap][lane]`, one task per group of output-channel blocks.
    let per_block = MO * cin * TAPS * LANES;
    let mut partials = vec![0.0f32; cout * cin * TAPS * LANES];
    partials
        .par_chunks_mut(BLOCKS_PER_TASK * per_block)
        .enumerate()
        .for_each(|(task, part)| {
            let first_block = task * BLOCKS_PER_TASK;
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `applies` checked AVX-512F; loads stay inside `pad` (slack columns) and
            // `dy` (masked on partial rows), stores inside `part`.
            unsafe {
                avx512::task(g, &t, &pad, dy, first_block, part)
            };
        });
    // Fold the lanes: dW[o][c][tap] = Σ_lane partials (fixed order).
    let mut dw = vec![0.0f32; cout * cin * TAPS];
    for (d, lanes) in dw.iter_mut().zip(partials.chunks_exact(LANES)) {
        let mut acc = [0.0f32; 4];
        for q in lanes.chunks_exact(4) {
            for (a, v) in acc.iter_mut().zip(q) {
                *a += *v;
            }
        }
        *d = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    }
    // `partials` is [o][c][tap] ordered, so `dw` already has the weight's O × C × 3 × 3 layout.
    dw
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{LANES, MO, TAPS, Tiling};
    use crate::geometry::ConvGeometry;
    use crate::simd::mask;

    /// Accumulates the partials of output-channel blocks `first_block..` (as many as `part`
    /// holds) over every image and input channel.
    ///
    /// # Safety
    /// AVX-512F must be available; `pad` holds the padded batch, `dy` the `N × O × H × W` output
    /// gradient, `part` whole blocks of `MO × C × 9 × 16` partials.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn task(
        g: &ConvGeometry,
        t: &Tiling,
        pad: &[f32],
        dy: &[f32],
        first_block: usize,
        part: &mut [f32],
    ) {
        let (h, w) = (g.height, g.width);
        let (cin, cout) = (g.in_channels, g.out_channels);
        let plane = t.pad_height * t.pad_width;
        let per_block = MO * cin * TAPS * LANES;
        let blocks = part.len() / per_block;
        assert_eq!(pad.len(), g.batch * cin * plane);
        assert_eq!(dy.len(), g.batch * cout * h * w);
        assert!((first_block + blocks) * MO <= cout);
        let masks: Vec<__mmask16> = (0..t.vectors)
            .map(|v| mask((w - v * LANES).min(LANES)))
            .collect();
        for n in 0..g.batch {
            for c in 0..cin {
                let xp = &pad[(n * cin + c) * plane..(n * cin + c + 1) * plane];
                for b in 0..blocks {
                    let o0 = (first_block + b) * MO;
                    let dy0 = &dy[(n * cout + o0) * h * w..(n * cout + o0 + 1) * h * w];
                    let dy1 = &dy[(n * cout + o0 + 1) * h * w..(n * cout + o0 + 2) * h * w];
                    // Partials of (o0, c, ·) and (o0 + 1, c, ·): 9 taps × 16 lanes each.
                    let p0 = (b * MO * cin + c) * TAPS * LANES;
                    let p1 = (b * MO * cin + cin + c) * TAPS * LANES;
                    let mut acc0 = [_mm512_setzero_ps(); TAPS];
                    let mut acc1 = [_mm512_setzero_ps(); TAPS];
                    for tap in 0..TAPS {
                        // SAFETY: `p0`/`p1` + 16·tap + 15 are inside block `b` of `part`.
                        unsafe {
                            acc0[tap] = _mm512_loadu_ps(part.as_ptr().add(p0 + tap * LANES));
                            acc1[tap] = _mm512_loadu_ps(part.as_ptr().add(p1 + tap * LANES));
                        }
                    }
                    for oy in 0..h {
                        for (v, &m) in masks.iter().enumerate() {
                            let d = oy * w + v * LANES;
                            // SAFETY: masked-off lanes are not read; the active ones are output
                            // row `oy` of planes `o0`, `o0 + 1`.
                            let (g0, g1) = unsafe {
                                (
                                    _mm512_maskz_loadu_ps(m, dy0.as_ptr().add(d)),
                                    _mm512_maskz_loadu_ps(m, dy1.as_ptr().add(d)),
                                )
                            };
                            for ky in 0..3 {
                                let row = (oy + ky) * t.pad_width + v * LANES;
                                debug_assert!(row + 2 + LANES <= xp.len());
                                for kx in 0..3 {
                                    // SAFETY: row `oy + ky` < pad_height, column
                                    // `16·v + kx + 15` < pad_width (slack columns).
                                    let xv = unsafe { _mm512_loadu_ps(xp.as_ptr().add(row + kx)) };
                                    let tap = ky * 3 + kx;
                                    acc0[tap] = _mm512_fmadd_ps(g0, xv, acc0[tap]);
                                    acc1[tap] = _mm512_fmadd_ps(g1, xv, acc1[tap]);
                                }
                            }
                        }
                    }
                    for tap in 0..TAPS {
                        // SAFETY: as for the loads above.
                        unsafe {
                            _mm512_storeu_ps(part.as_mut_ptr().add(p0 + tap * LANES), acc0[tap]);
                            _mm512_storeu_ps(part.as_mut_ptr().add(p1 + tap * LANES), acc1[tap]);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct weight gradient equals the im2col + GEMM one (up to summation order) on
    /// 32-wide, 28-wide (partial vector) and 14-wide maps, with ragged task groups.
    #[test]
    fn direct_grad_weight_matches_im2col() {
        for &(n, c, o, h, w) in &[
            (2, 3, 4, 32, 32),
            (3, 2, 10, 28, 28),
            (2, 5, 6, 14, 14),
            (2, 16, 16, 16, 16),
        ] {
            let g = ConvGeometry::new(&[n, c, h, w], &[o, c, 3, 3], 1, 1).unwrap();
            if !applies_grad_weight(&g) {
                eprintln!("no AVX-512F: direct weight gradient not tested");
                return;
            }
            let x: Vec<f32> = (0..n * c * h * w)
                .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
                .collect();
            let dy: Vec<f32> = (0..n * o * h * w)
                .map(|i| ((i * 29) % 89) as f32 / 44.0 - 1.0)
                .collect();
            let got = direct_grad_weight(&g, &x, &dy);
            let want = crate::conv_backward::im2col_grad_weight(&g, &x, &dy);
            assert_eq!(got.len(), want.len());
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-3 * (1.0 + b.abs()), "{g:?}: {a} vs {b}");
            }
        }
    }
}
