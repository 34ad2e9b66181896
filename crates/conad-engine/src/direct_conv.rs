//! Direct convolution for stride-1 "same" layers on wide maps: an AVX-512 register-blocked kernel
//! that reads a zero-padded copy of each input image instead of an im2col matrix.
//!
//! On few-channel, wide layers the im2col matrix is nine times the input and the GEMM does little
//! work per copied value (measurements: `docs/engine.md`). Here each task pads one image
//! (`C × (H + 2p) × (16·V + k − 1)`, a few hundred KiB at most, cache-resident) and computes
//! output tiles of `MR` output channels (8 or 12) × 2 vectors of 16 pixels (one row of up to 32
//! pixels, or two rows of up to 16) in `2·MR` accumulator registers: per input channel and kernel
//! offset, two unaligned loads, `MR` weight broadcasts and `2·MR` fused multiply-adds.
//!
//! The same kernel computes the input gradient of such a layer, which is the "same" convolution
//! of the output gradient with the flipped, transposed kernel ([`flip_transpose`]) — no col2im.
//!
//! Every output value is summed over `(c, ky, kx)` in that fixed order by one thread, so results
//! do not depend on the thread count. The kernel needs AVX-512F (checked at run time);
//! [`applies`] is false without it and the caller takes the im2col path.

use rayon::prelude::*;

use crate::cpu_data::par_overwrite_chunks;
use crate::geometry::ConvGeometry;
use crate::scratch::ScratchBuf;

/// Output channels per register tile: 8 when the layer's output channels are a multiple of 8
/// (every ResNet-18 layer: no wasted lanes), 12 otherwise (24 accumulators, fewer blocks).
fn tile_channels(out_channels: usize) -> usize {
    if out_channels.is_multiple_of(8) {
        8
    } else {
        12
    }
}
/// Pixels per vector register.
pub(crate) const LANES: usize = 16;

/// Whether the direct kernel handles `g`: stride 1, odd kernel > 1 with "same" padding, output rows
/// of 14–32 pixels (one or two vectors, at least 7/8 of the lanes used), an even height when a
/// tile spans two rows, and AVX-512F on this CPU.
pub fn applies(g: &ConvGeometry) -> bool {
    let (w, h, k) = (g.width, g.height, g.kernel);
    g.stride == 1
        && k > 1
        && !k.is_multiple_of(2)
        && 2 * g.padding + 1 == k
        && (14..=32).contains(&w)
        && (w > LANES || h.is_multiple_of(2))
        && crate::simd::avx512()
}

/// `W'[c][o][ky][kx] = W[o][c][k−1−ky][k−1−kx]`: the kernel whose "same" convolution with the
/// output gradient is the input gradient of a stride-1 "same" convolution with `W` (`O × C × k × k`).
pub fn flip_transpose(w: &[f32], out_channels: usize, in_channels: usize, k: usize) -> Vec<f32> {
    let kk = k * k;
    let mut f = vec![0.0f32; w.len()];
    // One task per input channel writes its contiguous `O × k²` block of W'; the reads stride
    // over W by `C·k²` (a 2.4 M-value layer-4 kernel is flipped on every backward pass).
    f.par_chunks_mut(out_channels * kk)
        .enumerate()
        .for_each(|(c, block)| {
            for (o, taps) in block.chunks_exact_mut(kk).enumerate() {
                let src = &w[(o * in_channels + c) * kk..][..kk];
                for (t, v) in taps.iter_mut().zip(src.iter().rev()) {
                    *t = *v;
                }
            }
        });
    f
}

/// Tile layout for a geometry: vectors per output row and rows per tile.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tiling {
    /// Vectors per output row (1 or 2).
    pub(crate) vectors: usize,
    /// Output rows per tile (2 when a row is one vector, else 1).
    pub(crate) rows: usize,
    /// Padded plane width: `16·vectors + k − 1`.
    pub(crate) pad_width: usize,
    /// Padded plane height: `H + 2p`.
    pub(crate) pad_height: usize,
}

impl Tiling {
    pub(crate) fn new(g: &ConvGeometry) -> Self {
        let vectors = g.width.div_ceil(LANES);
        Self {
            vectors,
            rows: if vectors == 1 { 2 } else { 1 },
            pad_width: vectors * LANES + g.kernel - 1,
            pad_height: g.height + 2 * g.padding,
        }
    }
}

/// Packs `W` (`O × C × k × k`) as `[block][c][ky][kx][i]` with `mr` output channels per block,
/// zero-padded to whole blocks.
fn pack_weights(g: &ConvGeometry, w: &[f32], mr: usize) -> Vec<f32> {
    let (o, c, kk) = (g.out_channels, g.in_channels, g.kernel * g.kernel);
    let blocks = o.div_ceil(mr);
    let mut p = vec![0.0f32; blocks * c * kk * mr];
    for co in 0..o {
        let (b, i) = (co / mr, co % mr);
        for ci in 0..c {
            for t in 0..kk {
                p[((b * c + ci) * kk + t) * mr + i] = w[(co * c + ci) * kk + t];
            }
        }
    }
    p
}

/// Copies one image (`C × H × W`) into the zero-padded planes of `pad`.
pub(crate) fn pad_image(g: &ConvGeometry, t: &Tiling, image: &[f32], pad: &mut [f32]) {
    let (h, w, p) = (g.height, g.width, g.padding);
    let plane = t.pad_height * t.pad_width;
    for (c, dst) in pad.chunks_exact_mut(plane).enumerate() {
        dst.fill(0.0);
        let src = &image[c * h * w..(c + 1) * h * w];
        for y in 0..h {
            let row = (y + p) * t.pad_width + p;
            dst[row..row + w].copy_from_slice(&src[y * w..(y + 1) * w]);
        }
    }
}

/// `y = conv2d(x, w)` (stride 1, "same" padding) for contiguous NCHW `x`; requires
/// [`applies`]`(g)`. Returns `N × O × H × W`.
pub fn direct_conv(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    debug_assert!(applies(g));
    let t = Tiling::new(g);
    let mr = tile_channels(g.out_channels);
    let packed = pack_weights(g, w, mr);
    let in_img = g.in_channels * g.in_pixels();
    let out_img = g.out_channels * g.out_pixels();
    let kernel = |img: usize, y_img: &mut [f32]| {
        let x_img = &x[img * in_img..][..in_img];
        let mut pad = ScratchBuf::take(g.in_channels * t.pad_height * t.pad_width);
        pad_image(g, &t, x_img, &mut pad);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `applies` checked AVX-512F at run time; the kernel's loads stay inside
        // `pad` (padded planes with `k − 1` slack columns) and its stores inside `y_img`.
        unsafe {
            if mr == 8 {
                avx512::image::<8>(g, &t, &packed, &pad, y_img)
            } else {
                avx512::image::<12>(g, &t, &packed, &pad, y_img)
            }
        };
    };
    // SAFETY: the kernel's tiles cover every output channel, row and column of its image and
    // store each value once, without reading `y_img`.
    unsafe { par_overwrite_chunks(g.batch * out_img, out_img, kernel) }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    use super::{LANES, Tiling};
    use crate::geometry::ConvGeometry;
    use crate::simd::mask;

    /// All output tiles of one image, `MR` output channels per tile.
    ///
    /// # Safety
    /// AVX-512F must be available; `pad` holds `C` padded planes of `t`'s size, `packed` the
    /// weights packed by `pack_weights`, `y` one `O × H × W` output image.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn image<const MR: usize>(
        g: &ConvGeometry,
        t: &Tiling,
        packed: &[f32],
        pad: &[f32],
        y: &mut [f32],
    ) {
        let (h, w, k) = (g.height, g.width, g.kernel);
        let (cin, cout) = (g.in_channels, g.out_channels);
        let plane = t.pad_height * t.pad_width;
        assert_eq!(pad.len(), cin * plane);
        assert_eq!(y.len(), cout * h * w);
        assert_eq!(packed.len(), cout.div_ceil(MR) * cin * k * k * MR);
        // Lanes stored per vector: a full row of 16, or what is left of the row.
        let lanes = |v: usize| -> usize { (w - v * LANES).min(LANES) };
        // Input offsets (within a plane) of the tile's two vectors, for output row `oy`.
        let offsets = |oy: usize| -> [usize; 2] {
            if t.vectors == 2 {
                [oy * t.pad_width, oy * t.pad_width + LANES]
            } else {
                [oy * t.pad_width, (oy + 1) * t.pad_width]
            }
        };
        // Output offsets (within a plane) of the two vectors and their lane counts.
        let targets = |oy: usize| -> [(usize, usize); 2] {
            if t.vectors == 2 {
                [(oy * w, lanes(0)), (oy * w + LANES, lanes(1))]
            } else {
                [(oy * w, lanes(0)), ((oy + 1) * w, lanes(0))]
            }
        };
        for block in 0..cout.div_ceil(MR) {
            let wb = &packed[block * cin * k * k * MR..(block + 1) * cin * k * k * MR];
            let rows_in_block = (cout - block * MR).min(MR);
            for oy in (0..h).step_by(t.rows) {
                let [o0, o1] = offsets(oy);
                let mut acc0 = [_mm512_setzero_ps(); MR];
                let mut acc1 = [_mm512_setzero_ps(); MR];
                for c in 0..cin {
                    let base = c * plane;
                    for ky in 0..k {
                        for kx in 0..k {
                            let off = base + ky * t.pad_width + kx;
                            // SAFETY: `o1 + off + 15` is at most the last slack column of the
                            // last padded row of plane `c` (see `Tiling`).
                            let (b0, b1) = unsafe {
                                (
                                    _mm512_loadu_ps(pad.as_ptr().add(o0 + off)),
                                    _mm512_loadu_ps(pad.as_ptr().add(o1 + off)),
                                )
                            };
                            let wk = &wb[((c * k + ky) * k + kx) * MR..][..MR];
                            for i in 0..MR {
                                let wv = _mm512_set1_ps(wk[i]);
                                acc0[i] = _mm512_fmadd_ps(wv, b0, acc0[i]);
                                acc1[i] = _mm512_fmadd_ps(wv, b1, acc1[i]);
                            }
                        }
                    }
                }
                let [(d0, n0), (d1, n1)] = targets(oy);
                let (m0, m1) = (mask(n0), mask(n1));
                for i in 0..rows_in_block {
                    let out = (block * MR + i) * h * w;
                    debug_assert!(out + d1 + n1 <= y.len());
                    // SAFETY: the masked stores write `n0`/`n1` lanes inside output plane
                    // `block·MR + i` (row `oy` or rows `oy`, `oy + 1` with `h` even).
                    unsafe {
                        _mm512_mask_storeu_ps(y.as_mut_ptr().add(out + d0), m0, acc0[i]);
                        _mm512_mask_storeu_ps(y.as_mut_ptr().add(out + d1), m1, acc1[i]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv_forward::conv_forward;

    /// The direct kernel equals the im2col + GEMM path (up to summation order) on one- and
    /// two-vector rows, partial vectors, ragged output-channel blocks and 5×5 kernels; the flipped
    /// kernel's convolution equals the adjoint ⟨conv(x), y⟩ = ⟨x, conv'(y)⟩.
    #[test]
    fn direct_conv_matches_im2col_and_its_flip_is_the_adjoint() {
        for &(n, c, o, h, w, k) in &[
            (2, 3, 16, 32, 32, 3),
            (1, 5, 13, 28, 28, 3),
            (2, 4, 7, 14, 14, 3),
            (1, 2, 25, 16, 16, 5),
            (3, 1, 4, 6, 20, 3),
        ] {
            let g = ConvGeometry::new(&[n, c, h, w], &[o, c, k, k], 1, k / 2).unwrap();
            if !applies(&g) {
                eprintln!("no AVX-512F: direct convolution not tested");
                return;
            }
            let x: Vec<f32> = (0..n * c * h * w)
                .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
                .collect();
            let wt: Vec<f32> = (0..o * c * k * k)
                .map(|i| ((i * 53) % 97) as f32 / 48.0 - 1.0)
                .collect();
            let got = direct_conv(&g, &x, &wt);
            let want = conv_forward(&g, &x, &wt);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{g:?}: {a} vs {b}");
            }
            let gt = ConvGeometry::new(&[n, o, h, w], &[c, o, k, k], 1, k / 2).unwrap();
            let dy: Vec<f32> = (0..got.len())
                .map(|i| ((i * 29) % 89) as f32 / 44.0 - 1.0)
                .collect();
            let dx = direct_conv(&gt, &dy, &flip_transpose(&wt, o, c, k));
            let lhs: f64 = got
                .iter()
                .zip(&dy)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum();
            let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| *a as f64 * *b as f64).sum();
            assert!(
                (lhs - rhs).abs() <= 1e-4 * lhs.abs().max(1.0),
                "{lhs} vs {rhs}"
            );
        }
    }
}
