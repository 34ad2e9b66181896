//! bf16 convolution on AMX tiles for stride-1 "same" layers with channel counts that are
//! multiples of 16: the kernels behind [`crate::Precision::Bf16`].
//!
//! Operands are rounded to bf16 (round to nearest even), products are exact and accumulate in
//! f32, and every output is an f32 — PyTorch's CPU bf16 autocast keeps the same split
//! (bf16 convolution operands, f32 master weights). Implicit GEMM, no im2col:
//!
//! * **Flat padded grid.** Each image is stored zero-padded to `(H + 2p) × (W + 2p)` and read as
//!   one flat row of `Wp = W + 2p` wide lines. Output `q = y·Wp + x` (`x < Wp`; the columns
//!   `x ≥ W` are computed and discarded) needs input `q + ky·Wp + kx` for tap `(ky, kx)`, so every
//!   tap is a shifted window of consecutive positions and 16 outputs are one tile row.
//! * **Forward** (also the input gradient, on `dy` with the flipped, transposed kernel):
//!   `Y[o, q] += Σ_taps Σ_c W[o, c, tap] · X[c, q + off(tap)]` as tiles
//!   `C (16 o × 16 q) += A (16 o × K c) · B (K c × 16 q)` with `K` = 32 (16 for 16-channel
//!   inputs). The input is stored with channel pairs interleaved (`C/2 × L × 2`), which is exactly
//!   the pair layout `B` needs for any shift; the weights are packed once per call.
//! * **Weight gradient**: `dW[o, c, tap] = Σ_q dY[o, q] · X[c, q + off(tap)]` as
//!   `C (16 c × 16 o) += A (16 c × 32 q) · B (32 q × 16 o)`: the input per channel as a plain
//!   flat row (`A` rows are shifted windows), the output gradient with pixel pairs interleaved
//!   (`B`), zero in the discarded columns; a group's images are packed side by side and each
//!   accumulator tile sums over all of them before it is stored once.
//!
//! Packing writes every stored position once (borders as zeros), with no separate zero-fill.
//!
//! Partitions (an image per forward task, the geometry's fixed groups of images for the weight
//! gradient, partials summed in group order) depend on the shape only, and each tile sums its
//! products in a fixed order, so results are bit-identical for any thread count.

use rayon::prelude::*;

use crate::amx::{Tiles, to_bf16};
use crate::cpu_data::{par_overwrite_chunks, par_zeros};
use crate::geometry::ConvGeometry;
use crate::scratch::ScratchBuf;

/// Whether the bf16 kernels handle `g` (and its input gradient): stride 1, odd kernel with
/// "same" padding, input and output channels multiples of 16, AMX-BF16 on this CPU.
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    g.is_same_stride1()
        && g.in_channels.is_multiple_of(16)
        && g.out_channels.is_multiple_of(16)
        && crate::amx::available()
}

/// Most weights (`O·C·k²`) for which the forward and the input gradient take the bf16 kernels.
/// Above it the f32 Winograd kernels are faster: ResNet-18's 512 → 512 layer on 4×4 maps
/// (2.4 M weights) ran its forward in 11.2 ms on AMX against 7.5 ms in f32 Winograd, while the
/// 256 → 256 layer on 8×8 maps (0.6 M weights) ran 5.5 against 7.8 ms (`bench_conv --precision`,
/// width 1 32×32×3, batch 64; docs/engine.md).
const MAX_WEIGHTS: usize = 1 << 20;

/// Whether the forward (and, on the transposed geometry, the input gradient) of `g` runs on the
/// bf16 kernels now: the current thread's precision is bf16, [`applies`] holds and the layer
/// has at most [`MAX_WEIGHTS`] weights.
pub(crate) fn selected(g: &ConvGeometry) -> bool {
    crate::precision() == crate::Precision::Bf16
        && applies(g)
        && g.out_channels * g.in_channels * g.kernel * g.kernel <= MAX_WEIGHTS
}

/// Fewest input and output channels for which the weight gradient takes the bf16 kernels.
/// Against the f32 Winograd F(4×4, 3×3) weight gradient (`bench_conv --precision`, batch 64,
/// two alternations): 32 → 32 on 14×14 0.65–0.66 bf16 against 0.60 ms f32, 64 → 64 on 7×7
/// 0.70–0.71 against 0.53–0.55 ms and on 28×28 5.46–5.51 against 5.54–6.10 ms (even), 128 → 128
/// on 14×14 4.85–4.99 against 7.10–7.15 ms and on 16×16 6.58–6.59 against 7.17–7.26 ms
/// (docs/engine.md).
const MIN_GRAD_WEIGHT_CHANNELS: usize = 128;

/// Whether the weight gradient of `g` runs on the bf16 kernels now: as [`applies`] in bf16
/// precision, with at least [`MIN_GRAD_WEIGHT_CHANNELS`] input and output channels and at least
/// `C·O/4` output positions over the batch to reduce over. The f32 Winograd weight gradient is
/// faster for fewer channels (above) and for few positions per weight (128 → 128 on 4×4: 0.9–1.1
/// against 0.7–0.8 ms; 256 → 256 on 8×8: 11.0 against 7.9 ms, measured against F(2×2, 3×3)).
pub(crate) fn selected_grad_weight(g: &ConvGeometry) -> bool {
    crate::precision() == crate::Precision::Bf16
        && applies(g)
        && g.in_channels.min(g.out_channels) >= MIN_GRAD_WEIGHT_CHANNELS
        && 4 * g.batch * g.out_pixels() >= g.in_channels * g.out_channels
}

/// The flat padded grid of one image.
#[derive(Clone, Copy, Debug)]
struct Grid {
    /// Padded line width `W + 2p`.
    wp: usize,
    /// Output positions computed per image (`H·Wp` rounded up to 32).
    q: usize,
    /// Stored positions per channel: `q` plus the largest tap shift, rounded up to 16.
    len: usize,
    /// Offset of input pixel (0, 0): `p·Wp + p`.
    origin: usize,
}

impl Grid {
    fn new(g: &ConvGeometry) -> Self {
        let p = g.padding;
        let wp = g.width + 2 * p;
        let q = (g.height * wp).next_multiple_of(32);
        let len = (q + (g.kernel - 1) * (wp + 1)).next_multiple_of(16);
        Self {
            wp,
            q,
            len,
            origin: p * wp + p,
        }
    }
}

/// Integer element types a scratch buffer can be viewed as: at most 4 bytes, alignment at most
/// f32's, every bit pattern valid.
trait ScratchElement: Copy {}
impl ScratchElement for u16 {}
impl ScratchElement for u32 {}

/// Scratch of `len` values of `T` (bf16 as `u16`, bf16 pairs as `u32`) from the thread's f32 pool.
struct PackedScratch<T: ScratchElement> {
    buf: ScratchBuf,
    len: usize,
    _element: std::marker::PhantomData<T>,
}

impl<T: ScratchElement> PackedScratch<T> {
    fn take(len: usize) -> Self {
        let floats = (len * size_of::<T>()).div_ceil(size_of::<f32>());
        Self {
            buf: ScratchBuf::take(floats),
            len,
            _element: std::marker::PhantomData,
        }
    }

    fn as_mut(&mut self) -> &mut [T] {
        // SAFETY: the f32 buffer holds at least `len · size_of::<T>()` bytes (`take`); `T`
        // (u16 or u32) is no more aligned than f32 and every bit pattern is a valid `T`.
        unsafe { std::slice::from_raw_parts_mut(self.buf.as_mut_ptr().cast::<T>(), self.len) }
    }
}

/// Zeroes the positions of a flat padded plane that an image does not cover: everything before
/// pixel (0, 0), the `Wp − W` padding positions after each line and everything after the last
/// pixel.
#[inline(always)]
fn zero_border<T: Copy + Default>(
    plane: &mut [T],
    origin: usize,
    wp: usize,
    height: usize,
    width: usize,
) {
    plane[..origin].fill(T::default());
    for y in 0..height {
        let end = (origin + y * wp + width).min(plane.len());
        let next = (origin + (y + 1) * wp).min(plane.len());
        if y + 1 < height {
            plane[end..next].fill(T::default());
        } else {
            plane[end..].fill(T::default());
        }
    }
}

crate::simd::avx512_fn! {
    /// One image `C × H × W` (f32) into the pair-interleaved flat padded layout `C/2 × len`
    /// of (even channel, odd channel) bf16 pairs, as `u32` (little-endian: even channel low).
    fn pack_pairs(x: &[f32], channels: usize, height: usize, width: usize, wp: usize, len: usize, origin: usize, out: &mut [u32]) {
        let hw = height * width;
        for pair in 0..channels / 2 {
            let (c0, c1) = (&x[2 * pair * hw..][..hw], &x[(2 * pair + 1) * hw..][..hw]);
            let plane = &mut out[pair * len..][..len];
            zero_border(plane, origin, wp, height, width);
            for y in 0..height {
                let dst = &mut plane[origin + y * wp..][..width];
                let (r0, r1) = (&c0[y * width..][..width], &c1[y * width..][..width]);
                for (d, (a, b)) in dst.iter_mut().zip(r0.iter().zip(r1)) {
                    *d = u32::from(to_bf16(*a)) | (u32::from(to_bf16(*b)) << 16);
                }
            }
        }
    }
}

crate::simd::avx512_fn! {
    /// One image `C × H × W` (f32) into the plain flat padded layout `C × len` (bf16).
    fn pack_plain(x: &[f32], channels: usize, height: usize, width: usize, wp: usize, len: usize, origin: usize, out: &mut [u16]) {
        let hw = height * width;
        for c in 0..channels {
            let plane = &mut out[c * len..][..len];
            zero_border(plane, origin, wp, height, width);
            for y in 0..height {
                let dst = &mut plane[origin + y * wp..][..width];
                for (d, s) in dst.iter_mut().zip(&x[c * hw + y * width..][..width]) {
                    *d = to_bf16(*s);
                }
            }
        }
    }
}

crate::simd::avx512_fn! {
    /// One image's output gradient `O × H × W` (f32) into blocks of 16 channels with output
    /// positions paired, `O/16 × q/2 × 16 × 2` (bf16), positions `q = y·Wp + x`; the discarded
    /// columns and the positions after the last line are written as zeros.
    fn pack_dy(dy: &[f32], channels: usize, height: usize, width: usize, wp: usize, q: usize, out: &mut [u16]) {
        let hw = height * width;
        for c in 0..channels {
            let (block, lane) = (c / 16, c % 16);
            let dst = &mut out[block * q * 16..][..q * 16];
            let src = &dy[c * hw..][..hw];
            let mut pos = 0;
            for y in 0..height {
                for x in 0..wp {
                    let v = if x < width { to_bf16(src[y * width + x]) } else { 0 };
                    dst[(pos >> 1) * 32 + lane * 2 + (pos & 1)] = v;
                    pos += 1;
                }
            }
            while pos < q {
                dst[(pos >> 1) * 32 + lane * 2 + (pos & 1)] = 0;
                pos += 1;
            }
        }
    }
}

/// The forward kernel's weights: per tap, input-channel block and output-channel block one
/// 16 × `kb` bf16 tile (`A`), in that order.
fn pack_weights(g: &ConvGeometry, w: &[f32], kb: usize) -> Vec<u16> {
    let (o, c, kk) = (g.out_channels, g.in_channels, g.kernel * g.kernel);
    let (cb, ob) = (c / kb, o / 16);
    let mut out = vec![0u16; kk * c * o];
    out.par_chunks_mut(cb * ob * 16 * kb)
        .enumerate()
        .for_each(|(tap, taps)| {
            for (t, tile) in taps.chunks_exact_mut(16 * kb).enumerate() {
                let (cbi, obi) = (t / ob, t % ob);
                for r in 0..16 {
                    for j in 0..kb {
                        let (oo, cc) = (obi * 16 + r, cbi * kb + j);
                        tile[r * kb + j] = to_bf16(w[(oo * c + cc) * kk + tap]);
                    }
                }
            }
        });
    out
}

/// Reduction block of the forward kernel: 32 input channels, or 16 for 16-channel multiples.
fn channel_block(channels: usize) -> usize {
    if channels.is_multiple_of(32) { 32 } else { 16 }
}

/// `y = conv2d(x, w)` in bf16 for a geometry [`applies`] accepts; returns `N × O × H × W` f32.
pub(crate) fn bf16_conv(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    let grid = Grid::new(g);
    let (c, o, k) = (g.in_channels, g.out_channels, g.kernel);
    let (h, wd) = (g.height, g.width);
    let kb = channel_block(c);
    let wa = pack_weights(g, w, kb);
    let (in_img, out_img) = (c * h * wd, o * h * wd);
    let kernel = |n: usize, y: &mut [f32]| {
        let x = &x[n * in_img..][..in_img];
        let mut xs = PackedScratch::<u32>::take(c / 2 * grid.len);
        let xq = xs.as_mut();
        pack_pairs(x, c, h, wd, grid.wp, grid.len, grid.origin, xq);
        let xq = &*xq;
        let mut flat = ScratchBuf::take(o * grid.q);
        let (cbs, obs) = (c / kb, o / 16);
        // SAFETY: AMX is available (`applies`); every tile row read lies inside `xq` (`len`
        // covers the largest shift of the last position) or `wa`, every row written inside
        // `flat` (`o` rows of `q` values).
        unsafe {
            let mut t = Tiles::configure(kb);
            for ob in (0..obs).step_by(2) {
                let mb = (obs - ob).min(2);
                for q0 in (0..grid.q).step_by(32) {
                    t.zero(mb, 2);
                    for tap in 0..k * k {
                        let shift = (tap / k) * grid.wp + tap % k;
                        for cb in 0..cbs {
                            let a = |i: usize| {
                                wa[((tap * cbs + cb) * obs + ob + i) * 16 * kb..].as_ptr()
                            };
                            let b = |j: usize| {
                                xq[cb * kb / 2 * grid.len + q0 + 16 * j + shift..]
                                    .as_ptr()
                                    .cast::<u16>()
                            };
                            t.multiply(
                                mb,
                                2,
                                [a(0), a(mb - 1)],
                                2 * kb,
                                [b(0), b(1)],
                                4 * grid.len,
                            );
                        }
                    }
                    for i in 0..mb {
                        for j in 0..2 {
                            let dst = flat[(ob + i) * 16 * grid.q + q0 + 16 * j..].as_mut_ptr();
                            t.store_c(i, j, dst, 4 * grid.q);
                        }
                    }
                }
            }
        }
        for oo in 0..o {
            for yy in 0..h {
                y[(oo * h + yy) * wd..][..wd]
                    .copy_from_slice(&flat[oo * grid.q + yy * grid.wp..][..wd]);
            }
        }
    };
    // SAFETY: the final copies store every row of every output channel of the image; nothing
    // reads `y` before.
    unsafe { par_overwrite_chunks(g.batch * out_img, out_img, kernel) }
}

/// `dW` of `y = conv2d(x, w)` in bf16 for a geometry [`applies`] accepts: `O × C × k × k` f32.
pub(crate) fn bf16_grad_weight(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let grid = Grid::new(g);
    let (c, o, k) = (g.in_channels, g.out_channels, g.kernel);
    let (h, wd, kk) = (g.height, g.width, k * k);
    let (in_img, out_img) = (c * h * wd, o * h * wd);
    let group_imgs = g.images_per_chunk() * g.chunks_per_group();
    let groups = g.batch.div_ceil(group_imgs);
    let (cbs, obs) = (c / 16, o / 16);
    // Each group's partial, `k² × C × O` (tap-major, then dWᵀ rows of output channels).
    let partials: Vec<Vec<f32>> = (0..groups)
        .into_par_iter()
        .map(|gi| {
            let mut acc = par_zeros(kk * c * o);
            let first = gi * group_imgs;
            let imgs = group_imgs.min(g.batch - first);
            // The group's images side by side: `imgs × C × len` and `imgs × O/16 × q/2 × 16 × 2`.
            let (xlen, dlen) = (c * grid.len, o * grid.q);
            let mut xs = PackedScratch::<u16>::take(imgs * xlen);
            let mut ds = PackedScratch::<u16>::take(imgs * dlen);
            let (xg, dg) = (xs.as_mut(), ds.as_mut());
            for i in 0..imgs {
                let n = first + i;
                let xf = &mut xg[i * xlen..][..xlen];
                pack_plain(
                    &x[n * in_img..][..in_img],
                    c,
                    h,
                    wd,
                    grid.wp,
                    grid.len,
                    grid.origin,
                    xf,
                );
                let dv = &mut dg[i * dlen..][..dlen];
                pack_dy(&dy[n * out_img..][..out_img], o, h, wd, grid.wp, grid.q, dv);
            }
            let (xg, dg) = (&*xg, &*dg);
            // SAFETY: AMX is available (`applies`); `A` rows are windows of one image's channel
            // inside its `len` positions, `B` rows lie inside that image's block of `dg`,
            // accumulator rows inside `acc` (`C` rows of `O` values per tap).
            unsafe {
                let mut t = Tiles::configure(32);
                for tap in 0..kk {
                    let shift = (tap / k) * grid.wp + tap % k;
                    for cb in (0..cbs).step_by(2) {
                        let mb = (cbs - cb).min(2);
                        for ob in (0..obs).step_by(2) {
                            let nb = (obs - ob).min(2);
                            // Every tile of the partial is written once per group, summed over
                            // the group's images and positions in order.
                            t.zero(mb, nb);
                            for img in 0..imgs {
                                let (xi, di) = (img * xlen, img * dlen);
                                for q0 in (0..grid.q).step_by(32) {
                                    let a = |i: usize| {
                                        xg[xi + (cb + i) * 16 * grid.len + q0 + shift..].as_ptr()
                                    };
                                    let b = |j: usize| {
                                        dg[di + (ob + j) * 16 * grid.q + q0 * 16..].as_ptr()
                                    };
                                    t.multiply(
                                        mb,
                                        nb,
                                        [a(0), a(mb - 1)],
                                        2 * grid.len,
                                        [b(0), b(nb - 1)],
                                        64,
                                    );
                                }
                            }
                            for i in 0..mb {
                                for j in 0..nb {
                                    let dst = (tap * c + (cb + i) * 16) * o + (ob + j) * 16;
                                    t.store_c(i, j, acc[dst..].as_mut_ptr(), 4 * o);
                                }
                            }
                        }
                    }
                }
            }
            acc
        })
        .collect();
    // Sum the partials in group order and transpose `k² × C × O` into `O × C × k²`.
    let mut dw = par_zeros(o * c * kk);
    dw.par_chunks_mut(c * kk).enumerate().for_each(|(oo, row)| {
        for (cc, taps) in row.chunks_exact_mut(kk).enumerate() {
            for (tap, v) in taps.iter_mut().enumerate() {
                let idx = (tap * c + cc) * o + oo;
                let mut s = 0.0f32;
                for p in &partials {
                    s += p[idx];
                }
                *v = s;
            }
        }
    });
    dw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amx::from_bf16;
    use rand_distr::{Distribution, Uniform};

    fn rounded(v: &[f32]) -> Vec<f64> {
        v.iter()
            .map(|&x| f64::from(from_bf16(to_bf16(x))))
            .collect()
    }

    /// Calls `f(o, c, tap, output index, input index)` for every term of a "same"
    /// convolution (taps that fall into the padding are skipped).
    fn for_each_term(g: &ConvGeometry, mut f: impl FnMut(usize, usize, usize, usize, usize)) {
        let (c, o, k, h, w, p) = (
            g.in_channels,
            g.out_channels,
            g.kernel,
            g.height,
            g.width,
            g.padding,
        );
        for n in 0..g.batch {
            for oo in 0..o {
                for cc in 0..c {
                    for tap in 0..k * k {
                        for yy in 0..h {
                            for xx in 0..w {
                                let (iy, ix) = (
                                    (yy + tap / k).wrapping_sub(p),
                                    (xx + tap % k).wrapping_sub(p),
                                );
                                if iy < h && ix < w {
                                    let out = ((n * o + oo) * h + yy) * w + xx;
                                    f(oo, cc, tap, out, ((n * c + cc) * h + iy) * w + ix);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// f64 convolution of bf16-rounded operands: `(y, Σ|terms|)` per output.
    fn reference_forward(g: &ConvGeometry, x: &[f32], w: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let (x, w) = (rounded(x), rounded(w));
        let (c, kk) = (g.in_channels, g.kernel * g.kernel);
        let mut y = vec![0.0; g.batch * g.out_channels * g.height * g.width];
        let mut mag = y.clone();
        for_each_term(g, |oo, cc, tap, out, inp| {
            let t = w[(oo * c + cc) * kk + tap] * x[inp];
            y[out] += t;
            mag[out] += t.abs();
        });
        (y, mag)
    }

    /// f64 weight gradient of bf16-rounded operands: `(dW, Σ|terms|)` per weight.
    fn reference_grad_weight(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let (x, dy) = (rounded(x), rounded(dy));
        let (c, kk) = (g.in_channels, g.kernel * g.kernel);
        let mut dw = vec![0.0; g.out_channels * c * kk];
        let mut mag = dw.clone();
        for_each_term(g, |oo, cc, tap, out, inp| {
            let t = dy[out] * x[inp];
            dw[(oo * c + cc) * kk + tap] += t;
            mag[(oo * c + cc) * kk + tap] += t.abs();
        });
        (dw, mag)
    }

    /// `got` within f32 accumulation error of the f64 `want`: 1e-5 of Σ|terms| — a wrong tap
    /// shift, channel pairing or discarded column is off by whole terms.
    fn assert_within(got: &[f32], (want, mag): (Vec<f64>, Vec<f64>), what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (a, (b, m))) in got.iter().zip(want.iter().zip(&mag)).enumerate() {
            let err = (f64::from(*a) - b).abs();
            assert!(
                err <= 1e-5 * m + 1e-30,
                "{what} value {i}: {a} vs {b} (Σ|t| {m})"
            );
        }
    }

    /// Uniform values in [−1, 1) from the seed tree.
    fn random(len: usize, seed: &str) -> Vec<f32> {
        let mut rng = conad_rng::SeedTree::new(16).child(seed).rng();
        let uniform = Uniform::new(-1.0f32, 1.0).expect("a non-empty range");
        (0..len).map(|_| uniform.sample(&mut rng)).collect()
    }

    fn geometry(n: usize, c: usize, o: usize, h: usize, w: usize, k: usize) -> ConvGeometry {
        ConvGeometry::new(&[n, c, h, w], &[o, c, k, k], 1, k / 2).unwrap()
    }

    /// Shapes: 16-channel blocks (K = 16) and 32-channel blocks, an odd number of 16-blocks on
    /// either side (one-row tiles), maps from 4×4 to 28×28, non-square, a 5×5 kernel.
    const SHAPES: [(usize, usize, usize, usize, usize, usize); 7] = [
        (3, 16, 16, 28, 28, 3),
        (2, 32, 64, 14, 14, 3),
        (4, 48, 16, 7, 7, 3),
        (5, 64, 48, 4, 4, 3),
        (2, 16, 32, 5, 9, 3),
        (2, 32, 16, 8, 6, 5),
        (9, 128, 128, 4, 4, 3),
    ];

    /// The AMX forward equals the f64 convolution of the bf16-rounded operands.
    #[test]
    fn forward_matches_reference_on_rounded_operands() {
        if !crate::amx::available() {
            eprintln!("skipped: this CPU/OS has no AMX-BF16");
            return;
        }
        for (si, &(n, c, o, h, w, k)) in SHAPES.iter().enumerate() {
            let g = geometry(n, c, o, h, w, k);
            assert!(applies(&g));
            let x = random(n * c * h * w, &format!("x{si}"));
            let wt = random(o * c * k * k, &format!("w{si}"));
            let got = bf16_conv(&g, &x, &wt);
            assert_within(
                &got,
                reference_forward(&g, &x, &wt),
                &format!("shape {si} forward"),
            );
        }
    }

    /// The AMX weight gradient equals the f64 one of the bf16-rounded operands.
    #[test]
    fn grad_weight_matches_reference_on_rounded_operands() {
        if !crate::amx::available() {
            eprintln!("skipped: this CPU/OS has no AMX-BF16");
            return;
        }
        for (si, &(n, c, o, h, w, k)) in SHAPES.iter().enumerate() {
            let g = geometry(n, c, o, h, w, k);
            let x = random(n * c * h * w, &format!("x{si}"));
            let dy = random(n * o * h * w, &format!("dy{si}"));
            let got = bf16_grad_weight(&g, &x, &dy);
            assert_within(
                &got,
                reference_grad_weight(&g, &x, &dy),
                &format!("shape {si} dW"),
            );
        }
    }

    /// Same bits with one thread and with three.
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        if !crate::amx::available() {
            eprintln!("skipped: this CPU/OS has no AMX-BF16");
            return;
        }
        let g = geometry(19, 32, 16, 14, 14, 3);
        let x = random(19 * 32 * 196, "x");
        let w = random(16 * 32 * 9, "w");
        let dy = random(19 * 16 * 196, "dy");
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| (bf16_conv(&g, &x, &w), bf16_grad_weight(&g, &x, &dy)))
        };
        let (a, b) = (run(1), run(3));
        assert!(
            a.0.iter()
                .zip(&b.0)
                .all(|(p, q)| p.to_bits() == q.to_bits())
        );
        assert!(
            a.1.iter()
                .zip(&b.1)
                .all(|(p, q)| p.to_bits() == q.to_bits())
        );
    }
}
