//! Layout helpers: im2col (unfold image patches into GEMM columns) and its adjoint col2im
//! (fold columns back, summing overlaps), for a chunk of NCHW images.
//!
//! The column matrix of a chunk of `n` images is `C·k² × n·Ho·Wo`, row-major, row index
//! `(c, ky, kx)` and column index `(image, oy, ox)` — the right-hand side of the forward GEMM
//! `Y = W · cols`. Both loops run in a fixed order, so col2im's sums are deterministic.

use crate::geometry::ConvGeometry;
use crate::scratch::ScratchBuf;

/// The valid output range `lo..hi` along one axis for kernel offset `k_off`: the outputs whose
/// input coordinate `o·s + k_off − p` lies in `0..len`.
fn valid_range(len: usize, out: usize, k_off: usize, g: &ConvGeometry) -> (usize, usize) {
    let (s, p) = (g.stride, g.padding);
    let lo = if p > k_off {
        (p - k_off).div_ceil(s)
    } else {
        0
    };
    let hi = if len + p > k_off {
        ((len - 1 + p - k_off) / s + 1).min(out)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// The constant-shift view of a stride-1 convolution whose output plane has the input plane's
/// size (`2p = k − 1`, every 3×3 stride-1 layer of ResNet-18): kernel offset `(ky, kx)` reads the
/// flattened input plane at `j + shift` for output position `j`. Returns `None` for other shapes.
struct PlaneShift {
    /// `(ky − p)·W + (kx − p)`.
    shift: isize,
    /// Valid output rows `lo..hi` (the input row exists).
    rows: (usize, usize),
    /// Output columns at the left (`kx < p`) or right (`kx > p`) edge whose input column is
    /// padding: `(left, right)` counts.
    edge: (usize, usize),
    /// Output positions `j` whose `j + shift` lies inside the plane, clipped to the valid rows
    /// (`(0, 0)` when no row is valid).
    span: (usize, usize),
}

impl PlaneShift {
    fn new(g: &ConvGeometry, ky: usize, kx: usize) -> Option<Self> {
        let (h, w, p) = (g.height, g.width, g.padding);
        if g.stride != 1 || g.out_height() != h || g.out_width() != w {
            return None;
        }
        let shift = (ky as isize - p as isize) * w as isize + (kx as isize - p as isize);
        let rows = valid_range(h, h, ky, g);
        let edge = (p.saturating_sub(kx), kx.saturating_sub(p));
        let hw = (h * w) as isize;
        let lo = ((rows.0 * w) as isize).max(-shift);
        let hi = ((rows.1 * w) as isize).min(hw - shift);
        let span = if lo < hi {
            (lo as usize, hi as usize)
        } else {
            (0, 0)
        };
        Some(Self {
            shift,
            rows,
            edge,
            span,
        })
    }

    /// Zeroes the entries of `plane` (an output plane of this offset) outside the valid rows and in
    /// the padding columns.
    fn zero_invalid(&self, plane: &mut [f32], w: usize) {
        let (lo, hi) = self.rows;
        plane[..lo * w].fill(0.0);
        plane[hi * w..].fill(0.0);
        // Column-outer loops: the per-row runs are 1–2 values, and a row-outer loop compiles
        // to one `memset` call per run (6 % of a width-1/4 step in `perf`).
        let rows = &mut plane[lo * w..hi * w];
        for col in (0..self.edge.0).chain(w - self.edge.1..w) {
            for v in rows.iter_mut().skip(col).step_by(w) {
                *v = 0.0;
            }
        }
    }

    /// The input index read by output position `j` (inside [`Self::span`]).
    fn source(&self, j: usize) -> usize {
        (j as isize + self.shift) as usize
    }
}

/// The column matrix (`C·k² × n·Ho·Wo`) of `n` images for a GEMM: the images themselves for a
/// single image under a 1×1 stride-1 layer (already that matrix), otherwise [`im2col`] into a
/// pooled buffer kept in `buf`.
pub(crate) fn columns<'a>(
    g: &ConvGeometry,
    images: &'a [f32],
    n: usize,
    buf: &'a mut Option<ScratchBuf>,
) -> &'a [f32] {
    if g.is_pointwise() && n == 1 {
        return images;
    }
    let cols = buf.insert(ScratchBuf::take(g.patch_len() * n * g.out_pixels()));
    im2col(g, images, n, cols);
    cols
}

/// Unfolds `images` (`n × C × H × W`, contiguous) into `cols` (`C·k² × n·Ho·Wo`).
///
/// Same-size stride-1 layers copy each plane at a constant shift (`PlaneShift`). Rows that fit
/// the AVX-512 permutes (stride ≤ 2, `W` ≤ 32, `Wo` ≤ 16: every stride-2 layer of a 28- or
/// 32-px ResNet-18) take `row_permutes::im2col_rows`. Other geometries with output rows of at
/// least `LONG_ROW` pixels first copy each plane into a zero-bordered buffer and then gather
/// every kernel offset's rows from it without bounds checks (`gather_rows`; stride 2 by
/// AVX-512 permutes): the per-row edge handling (two tiny `memset` calls per output row) made
/// im2col 41 % of a width-1/4 stride-2 layer's time (`perf`, `bench_conv`). Shorter rows take
/// the per-row loops (`im2col_rows`).
pub fn im2col(g: &ConvGeometry, images: &[f32], n: usize, cols: &mut [f32]) {
    let (h, w, k, s, p) = (g.height, g.width, g.kernel, g.stride, g.padding);
    let (ho, wo) = (g.out_height(), g.out_width());
    let hw = h * w;
    let ncols = n * ho * wo;
    debug_assert_eq!(images.len(), n * g.in_channels * hw);
    debug_assert_eq!(cols.len(), g.patch_len() * ncols);
    if PlaneShift::new(g, 0, 0).is_some() {
        for c in 0..g.in_channels {
            for ky in 0..k {
                for kx in 0..k {
                    let sh = PlaneShift::new(g, ky, kx).expect("same-size stride-1 geometry");
                    let row = (c * k + ky) * k + kx;
                    let dst_row = &mut cols[row * ncols..(row + 1) * ncols];
                    // One contiguous copy per plane, then the padding entries zeroed.
                    let (a, b) = sh.span;
                    for img in 0..n {
                        let src = &images[(img * g.in_channels + c) * hw..][..hw];
                        let dst = &mut dst_row[img * hw..(img + 1) * hw];
                        if a < b {
                            dst[a..b].copy_from_slice(&src[sh.source(a)..][..b - a]);
                        }
                        dst[..a].fill(0.0);
                        dst[b..].fill(0.0);
                        sh.zero_invalid(dst, w);
                    }
                }
            }
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if row_permutes::apply(g) {
        // SAFETY: `apply` checked AVX-512F; the sizes are asserted inside.
        unsafe { row_permutes::im2col_rows(g, images, n, cols) };
        return;
    }
    if wo < LONG_ROW {
        im2col_rows(g, images, n, cols);
        return;
    }
    // Channel by channel: the zero-bordered planes of all `n` images, then each kernel offset's
    // cols row written front to back (image after image).
    let (ph, pw) = (h + 2 * p, w + 2 * p);
    let mut padded = ScratchBuf::take(n * ph * pw);
    // The borders stay zero: only the interiors are rewritten per channel.
    padded.fill(0.0);
    for c in 0..g.in_channels {
        for img in 0..n {
            let src = &images[(img * g.in_channels + c) * hw..][..hw];
            let plane = &mut padded[img * ph * pw..][..ph * pw];
            for (y, srow) in src.chunks_exact(w).enumerate() {
                plane[(y + p) * pw + p..][..w].copy_from_slice(srow);
            }
        }
        for ky in 0..k {
            for kx in 0..k {
                let row = (c * k + ky) * k + kx;
                let dst_row = &mut cols[row * ncols..(row + 1) * ncols];
                for (img, dst) in dst_row.chunks_exact_mut(ho * wo).enumerate() {
                    gather_rows(&padded[img * ph * pw + ky * pw + kx..], pw, s, wo, dst);
                }
            }
        }
    }
}

/// Output rows shorter than this take the per-row loops ([`im2col_rows`], [`col2im_rows`]);
/// longer ones the zero-bordered plane copies (on AVX-512F, rows the permutes handle take
/// [`row_permutes`] first, whatever their length). Measured with `bench_conv` (width-1/4 and width-1
/// stride-2 layers): on 16- and 14-wide rows the plane copy's permute gathers ran the layer
/// 1.2–1.6× faster; on 8-, 7- and 4-wide rows its per-plane setup and per-row calls made
/// 1×1 downsamples and 256-channel layers up to 1.5× slower.
const LONG_ROW: usize = 14;

/// The per-row im2col of short output rows: bounds per kernel offset and row, edge zeros written
/// in place (the portable path; [`row_permutes::im2col_rows`] on AVX-512F).
fn im2col_rows(g: &ConvGeometry, images: &[f32], n: usize, cols: &mut [f32]) {
    let (h, w, k, s, p) = (g.height, g.width, g.kernel, g.stride, g.padding);
    let (ho, wo) = (g.out_height(), g.out_width());
    let hw = h * w;
    let ncols = n * ho * wo;
    for c in 0..g.in_channels {
        for ky in 0..k {
            let (oy_lo, oy_hi) = valid_range(h, ho, ky, g);
            for kx in 0..k {
                let (ox_lo, ox_hi) = valid_range(w, wo, kx, g);
                let row = (c * k + ky) * k + kx;
                let dst_row = &mut cols[row * ncols..(row + 1) * ncols];
                for img in 0..n {
                    let src = &images[(img * g.in_channels + c) * hw..][..hw];
                    let dst = &mut dst_row[img * ho * wo..(img + 1) * ho * wo];
                    for oy in 0..ho {
                        let d = &mut dst[oy * wo..(oy + 1) * wo];
                        if oy < oy_lo || oy >= oy_hi || ox_lo >= ox_hi {
                            d.fill(0.0);
                            continue;
                        }
                        let iy = oy * s + ky - p;
                        let srow = &src[iy * w..(iy + 1) * w];
                        d[..ox_lo].fill(0.0);
                        d[ox_hi..].fill(0.0);
                        let ix0 = ox_lo * s + kx - p;
                        for (j, v) in d[ox_lo..ox_hi].iter_mut().enumerate() {
                            *v = srow[ix0 + j * s];
                        }
                    }
                }
            }
        }
    }
}

/// `dst[oy·wo + ox] = src[oy·s·pw + ox·s]` for every output row of `dst` (`ho × wo`): one kernel
/// offset's im2col rows read from a zero-bordered plane (row length `pw`).
fn gather_rows(src: &[f32], pw: usize, s: usize, wo: usize, dst: &mut [f32]) {
    for (oy, d) in dst.chunks_exact_mut(wo).enumerate() {
        let srow = &src[oy * s * pw..];
        match s {
            1 => d.copy_from_slice(&srow[..wo]),
            2 => even_elements(&srow[..2 * wo - 1], d),
            _ => {
                for (ox, v) in d.iter_mut().enumerate() {
                    *v = srow[ox * s];
                }
            }
        }
    }
}

/// `dst[i] = src[2i]` (`src` holds at least `2·dst.len() − 1` values): on AVX-512F, two loads
/// and one two-source permute per 16 outputs.
fn even_elements(src: &[f32], dst: &mut [f32]) {
    assert!(dst.is_empty() || src.len() > 2 * (dst.len() - 1));
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx512() {
        // SAFETY: AVX-512F was detected at run time; the length was checked above.
        unsafe { even_elements_avx512(src, dst) };
        return;
    }
    even_elements_scalar(src, dst);
}

/// The portable [`even_elements`].
fn even_elements_scalar(src: &[f32], dst: &mut [f32]) {
    for (i, v) in dst.iter_mut().enumerate() {
        *v = src[2 * i];
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn even_elements_avx512(src: &[f32], dst: &mut [f32]) {
    use crate::simd::mask;
    use std::arch::x86_64::*;
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (block, out) in dst.chunks_mut(16).enumerate() {
        let start = 32 * block;
        // Source values this block may read: up to 32, fewer at the end of `src`.
        let avail = (src.len() - start).min(32);
        let (lo, hi) = (avail.min(16), avail.saturating_sub(16));
        // SAFETY: the masked loads read `lo` and `hi` values from `start`, inside `src`; the
        // masked store writes `out.len()` values of `dst`.
        unsafe {
            let a = _mm512_maskz_loadu_ps(mask(lo), src.as_ptr().add(start));
            let b = _mm512_maskz_loadu_ps(mask(hi), src.as_ptr().add(start + 16));
            let v = _mm512_permutex2var_ps(a, evens, b);
            _mm512_mask_storeu_ps(out.as_mut_ptr(), mask(out.len()), v);
        }
    }
}

/// Folds `cols` (`C·k² × n·Ho·Wo`) back into `images` (`n × C × H × W`), *adding* every column
/// entry to the input pixel it was copied from; pixels no window touches keep their value.
///
/// Kernels larger than 1×1 whose rows fit the AVX-512 permutes (`col2im_permutes`) add each
/// kernel offset's rows into a full-vector copy of the plane (`row_permutes::col2im_rows`).
/// Otherwise, with output rows of at least `LONG_ROW` pixels, each plane's contributions are
/// summed in a zero-bordered buffer in kernel-offset order (rows added without bounds checks,
/// stride 2 by AVX-512 permutes, `scatter_add_rows`) and the buffer's interior is then added to
/// the image; shorter rows are added straight into the image (`col2im_rows`). All paths give the
/// same bits on a zero destination (the engine's use).
pub fn col2im_add(g: &ConvGeometry, cols: &[f32], n: usize, images: &mut [f32]) {
    let (h, w, k, s, p) = (g.height, g.width, g.kernel, g.stride, g.padding);
    let (ho, wo) = (g.out_height(), g.out_width());
    let hw = h * w;
    let ncols = n * ho * wo;
    debug_assert_eq!(images.len(), n * g.in_channels * hw);
    debug_assert_eq!(cols.len(), g.patch_len() * ncols);
    #[cfg(target_arch = "x86_64")]
    if col2im_permutes(g) {
        // SAFETY: `apply` (inside `col2im_permutes`) checked AVX-512F; the sizes are asserted
        // inside.
        unsafe { row_permutes::col2im_rows(g, cols, n, images) };
        return;
    }
    if wo < LONG_ROW {
        col2im_rows(g, cols, n, images);
        return;
    }
    let (ph, pw) = (h + 2 * p, w + 2 * p);
    let mut padded = ScratchBuf::take(ph * pw);
    for img in 0..n {
        for c in 0..g.in_channels {
            padded.fill(0.0);
            for ky in 0..k {
                for kx in 0..k {
                    let row = (c * k + ky) * k + kx;
                    let src = &cols[row * ncols + img * ho * wo..][..ho * wo];
                    scatter_add_rows(&mut padded[ky * pw + kx..], pw, s, wo, src);
                }
            }
            let dst = &mut images[(img * g.in_channels + c) * hw..][..hw];
            for (y, drow) in dst.chunks_exact_mut(w).enumerate() {
                for (d, v) in drow.iter_mut().zip(&padded[(y + p) * pw + p..][..w]) {
                    *d += *v;
                }
            }
        }
    }
}

/// The per-row col2im of short output rows: each kernel offset's valid rows added straight into
/// the image (the portable path; [`row_permutes::col2im_rows`] on AVX-512F).
fn col2im_rows(g: &ConvGeometry, cols: &[f32], n: usize, images: &mut [f32]) {
    let (h, w, k, s, p) = (g.height, g.width, g.kernel, g.stride, g.padding);
    let (ho, wo) = (g.out_height(), g.out_width());
    let hw = h * w;
    let ncols = n * ho * wo;
    for img in 0..n {
        for c in 0..g.in_channels {
            let dst = &mut images[(img * g.in_channels + c) * hw..][..hw];
            for ky in 0..k {
                let (oy_lo, oy_hi) = valid_range(h, ho, ky, g);
                for kx in 0..k {
                    let (ox_lo, ox_hi) = valid_range(w, wo, kx, g);
                    if ox_lo >= ox_hi {
                        continue;
                    }
                    let row = (c * k + ky) * k + kx;
                    let src = &cols[row * ncols + img * ho * wo..][..ho * wo];
                    for oy in oy_lo..oy_hi {
                        let iy = oy * s + ky - p;
                        let drow = &mut dst[iy * w..(iy + 1) * w];
                        let srow = &src[oy * wo + ox_lo..oy * wo + ox_hi];
                        let ix0 = ox_lo * s + kx - p;
                        for (j, v) in srow.iter().enumerate() {
                            drow[ix0 + j * s] += *v;
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`gather_rows`]: `dst[oy·s·pw + ox·s] += src[oy·wo + ox]`.
fn scatter_add_rows(dst: &mut [f32], pw: usize, s: usize, wo: usize, src: &[f32]) {
    for (oy, srow) in src.chunks_exact(wo).enumerate() {
        let drow = &mut dst[oy * s * pw..];
        match s {
            1 => {
                for (d, v) in drow[..wo].iter_mut().zip(srow) {
                    *d += *v;
                }
            }
            2 => add_to_even_elements(&mut drow[..2 * wo - 1], srow),
            _ => {
                for (ox, v) in srow.iter().enumerate() {
                    drow[ox * s] += *v;
                }
            }
        }
    }
}

/// `dst[2i] += src[i]` (`dst` holds at least `2·src.len() − 1` values; odd positions unchanged):
/// on AVX-512F, one permute against zeros and two masked load-add-stores per 16 inputs.
fn add_to_even_elements(dst: &mut [f32], src: &[f32]) {
    assert!(src.is_empty() || dst.len() > 2 * (src.len() - 1));
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx512() {
        // SAFETY: AVX-512F was detected at run time; the length was checked above.
        unsafe { add_to_even_elements_avx512(dst, src) };
        return;
    }
    add_to_even_elements_scalar(dst, src);
}

/// The portable [`add_to_even_elements`].
fn add_to_even_elements_scalar(dst: &mut [f32], src: &[f32]) {
    for (i, v) in src.iter().enumerate() {
        dst[2 * i] += *v;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn add_to_even_elements_avx512(dst: &mut [f32], src: &[f32]) {
    use crate::simd::mask;
    use std::arch::x86_64::*;
    // Lane 2i of the 32-lane pair takes src[i], odd lanes take zero (index 16 of the second
    // operand, a zero vector).
    let lo_idx = _mm512_setr_epi32(0, 16, 1, 16, 2, 16, 3, 16, 4, 16, 5, 16, 6, 16, 7, 16);
    let hi_idx = _mm512_setr_epi32(8, 16, 9, 16, 10, 16, 11, 16, 12, 16, 13, 16, 14, 16, 15, 16);
    let zero = _mm512_setzero_ps();
    for (block, chunk) in src.chunks(16).enumerate() {
        let start = 32 * block;
        // Destination values this block touches: up to 32 (the last one even), fewer at the end.
        let span = (2 * chunk.len() - 1).min(dst.len() - start);
        let (lo, hi) = (span.min(16), span.saturating_sub(16));
        // SAFETY: the masked load reads `chunk.len()` values of `src`; the masked loads and
        // stores touch `lo` and `hi` values of `dst` from `start`, inside `dst`.
        unsafe {
            let v = _mm512_maskz_loadu_ps(mask(chunk.len()), chunk.as_ptr());
            let a = _mm512_permutex2var_ps(v, lo_idx, zero);
            let b = _mm512_permutex2var_ps(v, hi_idx, zero);
            let pa = dst.as_mut_ptr().add(start);
            let pb = dst.as_mut_ptr().add(start + 16);
            let da = _mm512_maskz_loadu_ps(mask(lo), pa);
            _mm512_mask_storeu_ps(pa, mask(lo), _mm512_add_ps(da, a));
            let db = _mm512_maskz_loadu_ps(mask(hi), pb);
            _mm512_mask_storeu_ps(pb, mask(hi), _mm512_add_ps(db, b));
        }
    }
}

/// Whether [`col2im_add`] takes [`row_permutes::col2im_rows`]: rows the permutes handle, kernels
/// larger than 1×1. A 1×1 kernel adds one value per touched pixel, where the scalar rows beat
/// whole-plane permutes (width-1 downsample input gradient 1.2 → 1.3–1.4 ms, `bench_conv`).
fn col2im_permutes(g: &ConvGeometry) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        g.kernel > 1 && row_permutes::apply(g)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = g;
        false
    }
}

/// Output rows of at most 16 values from input rows of at most 32, stride ≤ 2, by AVX-512
/// permutes: one output row of one kernel offset is one two-source permute of the input row (two
/// vectors), the padding lanes zeroed by the permute's mask; col2im is the inverse permute, added
/// under a mask into a full-vector copy of the plane. The scalar row loops were 30 % (im2col) and
/// 13 % (col2im) of a width-1/4 stride-2 layer's time (`perf`, `bench_conv`), the zero-bordered
/// plane path's per-row permute calls most of a 14-wide stride-2 layer's im2col. Same values and, for col2im, the same additions in the same
/// order as [`im2col_rows`] / [`col2im_rows`] (each input pixel receives one value per kernel
/// offset, in offset order; lanes that receive nothing are left untouched), so the same bits.
#[cfg(target_arch = "x86_64")]
mod row_permutes {
    use std::arch::x86_64::*;

    use super::valid_range;
    use crate::geometry::ConvGeometry;
    use crate::simd::mask;

    /// Whether the permutes handle `g`: stride 1 or 2, input rows of at most 32 and output rows of
    /// at most 16 values, AVX-512F on this CPU.
    pub(super) fn apply(g: &ConvGeometry) -> bool {
        g.stride <= 2 && g.width <= 32 && g.out_width() <= 16 && crate::simd::avx512()
    }

    /// The input column that output column `ox` reads at kernel column `kx`, if inside the row.
    fn source_column(g: &ConvGeometry, ox: usize, kx: usize) -> Option<usize> {
        (ox * g.stride + kx)
            .checked_sub(g.padding)
            .filter(|&col| col < g.width)
    }

    /// Per kernel column: lane `ox` of an output row takes input column `idx[ox]` (of the row's
    /// two vectors) where `valid` has bit `ox`.
    fn gather_tables(g: &ConvGeometry) -> Vec<([i32; 16], __mmask16)> {
        (0..g.kernel)
            .map(|kx| {
                let (mut idx, mut valid) = ([0i32; 16], 0u16);
                for (ox, lane) in idx.iter_mut().enumerate().take(g.out_width()) {
                    if let Some(col) = source_column(g, ox, kx) {
                        *lane = col as i32;
                        valid |= 1 << ox;
                    }
                }
                (idx, valid)
            })
            .collect()
    }

    /// Per kernel column, for each of the input row's two vectors: lane `col` receives output
    /// column `idx[col]` where `receives` has bit `col`.
    #[allow(clippy::type_complexity)]
    fn scatter_tables(g: &ConvGeometry) -> Vec<[([i32; 16], __mmask16); 2]> {
        (0..g.kernel)
            .map(|kx| {
                let mut t = [([0i32; 16], 0u16); 2];
                for ox in 0..g.out_width() {
                    if let Some(col) = source_column(g, ox, kx) {
                        t[col / 16].0[col % 16] = ox as i32;
                        t[col / 16].1 |= 1 << (col % 16);
                    }
                }
                t
            })
            .collect()
    }

    /// `(H, W, k, stride, padding, Ho, Wo, H·W, n·Ho·Wo)`.
    type Sizes = (
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
        usize,
    );

    /// `g`'s sizes for `n` images, after asserting that the permutes handle `g` and that the
    /// image (`n × C × H × W`) and column (`C·k² × n·Ho·Wo`) buffers have their lengths — the
    /// bounds every masked access below relies on.
    fn checked(g: &ConvGeometry, n: usize, images: usize, cols: usize) -> Sizes {
        let (h, w, ho, wo) = (g.height, g.width, g.out_height(), g.out_width());
        let (hw, ncols) = (h * w, n * ho * wo);
        assert!(apply(g));
        assert_eq!(images, n * g.in_channels * hw);
        assert_eq!(cols, g.patch_len() * ncols);
        (h, w, g.kernel, g.stride, g.padding, ho, wo, hw, ncols)
    }

    /// [`super::im2col_rows`] by permutes.
    ///
    /// # Safety
    /// AVX-512F must be available and [`apply`]`(g)` hold; `images` is `n × C × H × W`, `cols`
    /// `C·k² × n·Ho·Wo`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn im2col_rows(g: &ConvGeometry, images: &[f32], n: usize, cols: &mut [f32]) {
        let (h, w, k, s, p, ho, wo, hw, ncols) = checked(g, n, images.len(), cols.len());
        let tables = gather_tables(g);
        let (lo, hi, out) = (mask(w), mask(w.saturating_sub(16)), mask(wo));
        for c in 0..g.in_channels {
            for ky in 0..k {
                let (oy_lo, oy_hi) = valid_range(h, ho, ky, g);
                for (kx, (idx, valid)) in tables.iter().enumerate() {
                    // SAFETY: `idx` holds 16 i32.
                    let idx = unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) };
                    let row = (c * k + ky) * k + kx;
                    let dst_row = &mut cols[row * ncols..(row + 1) * ncols];
                    for img in 0..n {
                        let src = &images[(img * g.in_channels + c) * hw..][..hw];
                        let dst = &mut dst_row[img * ho * wo..(img + 1) * ho * wo];
                        for oy in 0..ho {
                            let v = if (oy_lo..oy_hi).contains(&oy) {
                                let r = src[(oy * s + ky - p) * w..][..w].as_ptr();
                                // SAFETY: the masked loads read the `W` values of input row
                                // `oy·s + ky − p` (the second vector only when `W` > 16).
                                unsafe {
                                    let a = _mm512_maskz_loadu_ps(lo, r);
                                    let b = _mm512_maskz_loadu_ps(hi, r.wrapping_add(16));
                                    _mm512_maskz_permutex2var_ps(*valid, a, idx, b)
                                }
                            } else {
                                _mm512_setzero_ps()
                            };
                            let drow = &mut dst[oy * wo..][..wo];
                            // SAFETY: the masked store writes the `Wo` values of `drow`.
                            unsafe { _mm512_mask_storeu_ps(drow.as_mut_ptr(), out, v) };
                        }
                    }
                }
            }
        }
    }

    /// [`super::col2im_rows`] by permutes.
    ///
    /// # Safety
    /// AVX-512F must be available and [`apply`]`(g)` hold; `cols` is `C·k² × n·Ho·Wo`, `images`
    /// `n × C × H × W`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn col2im_rows(g: &ConvGeometry, cols: &[f32], n: usize, images: &mut [f32]) {
        let (h, w, k, s, p, ho, wo, hw, ncols) = checked(g, n, images.len(), cols.len());
        // SAFETY (loads): each table entry holds 16 i32.
        let tables: Vec<[(__m512i, __mmask16); 2]> = scatter_tables(g)
            .iter()
            .map(|t| t.map(|(idx, m)| (unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) }, m)))
            .collect();
        let row_masks = [mask(w), mask(w.saturating_sub(16))];
        let (halves, out) = (w.div_ceil(16), mask(wo));
        // The plane being summed, one or two full vectors per row: full-width loads and stores
        // forward from the store buffer, where a masked store followed by a masked load of the
        // same row (the next kernel offset's) would wait for the store to retire.
        let mut plane = vec![_mm512_setzero_ps(); h * halves];
        for img in 0..n {
            for c in 0..g.in_channels {
                let dst = &mut images[(img * g.in_channels + c) * hw..][..hw];
                for (iy, rows) in plane.chunks_exact_mut(halves).enumerate() {
                    let drow = &dst[iy * w..][..w];
                    for (half, v) in rows.iter_mut().enumerate() {
                        // SAFETY: the masked load reads the `W − 16·half` (at most 16) values of
                        // `drow[16·half..]`.
                        *v = unsafe {
                            _mm512_maskz_loadu_ps(row_masks[half], drow[16 * half..].as_ptr())
                        };
                    }
                }
                for ky in 0..k {
                    let (oy_lo, oy_hi) = valid_range(h, ho, ky, g);
                    for (kx, parts) in tables.iter().enumerate() {
                        let row = (c * k + ky) * k + kx;
                        let src = &cols[row * ncols + img * ho * wo..][..ho * wo];
                        for oy in oy_lo..oy_hi {
                            let iy = oy * s + ky - p;
                            let srow = &src[oy * wo..][..wo];
                            // SAFETY: the masked load reads the `Wo` values of `srow`.
                            let v = unsafe { _mm512_maskz_loadu_ps(out, srow.as_ptr()) };
                            for (half, &(idx, receives)) in parts.iter().take(halves).enumerate() {
                                if receives == 0 {
                                    continue;
                                }
                                let d = &mut plane[iy * halves + half];
                                *d = _mm512_mask_add_ps(
                                    *d,
                                    receives,
                                    *d,
                                    _mm512_permutexvar_ps(idx, v),
                                );
                            }
                        }
                    }
                }
                for (iy, rows) in plane.chunks_exact(halves).enumerate() {
                    let drow = &mut dst[iy * w..][..w];
                    for (half, v) in rows.iter().enumerate() {
                        // SAFETY: the masked store writes the `W − 16·half` (at most 16) values
                        // of `drow[16·half..]`.
                        unsafe {
                            _mm512_mask_storeu_ps(
                                drow[16 * half..].as_mut_ptr(),
                                row_masks[half],
                                *v,
                            )
                        };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `add_to_even_elements` (dispatched and portable) adds to every second value and leaves the
    /// odd ones, for lengths around the 16-lane blocks, with the destination ending right after
    /// the last value written.
    #[test]
    fn add_to_even_elements_touches_only_even_positions() {
        for n in [0usize, 1, 7, 15, 16, 17, 31, 32, 33, 50] {
            let len = (2 * n).saturating_sub(1);
            let mut dst: Vec<f32> = (0..len).map(|i| 100.0 + i as f32).collect();
            let src: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
            add_to_even_elements(&mut dst, &src);
            for (i, d) in dst.iter().enumerate() {
                let want = 100.0
                    + i as f32
                    + if i % 2 == 0 {
                        (i / 2) as f32 * 0.5
                    } else {
                        0.0
                    };
                assert_eq!(*d, want, "n = {n}, position {i}");
            }
        }
    }

    /// `even_elements` (dispatched and portable) picks every second value for lengths around the
    /// 16-lane blocks, with the source ending right after the last value read.
    #[test]
    fn even_elements_picks_every_second_value() {
        for n in [0usize, 1, 7, 15, 16, 17, 31, 32, 33, 50] {
            let src: Vec<f32> = (0..(2 * n).saturating_sub(1)).map(|i| i as f32).collect();
            let want: Vec<f32> = (0..n).map(|i| (2 * i) as f32).collect();
            type Pick = fn(&[f32], &mut [f32]);
            let helpers: [Pick; 2] = [even_elements, even_elements_scalar];
            for pick in helpers {
                let mut dst = vec![-1.0f32; n];
                pick(&src, &mut dst);
                assert_eq!(dst, want, "n = {n}");
            }
        }
    }

    fn geom(c: usize, h: usize, w: usize, k: usize, s: usize, p: usize) -> ConvGeometry {
        ConvGeometry::new(&[2, c, h, w], &[1, c, k, k], s, p).unwrap()
    }

    /// col2im is the adjoint of im2col: ⟨im2col(x), y⟩ = ⟨x, col2im(y)⟩ (a wrong index in either
    /// breaks the identity), and im2col picks exactly the padded-input pixel by definition — on
    /// every path: per-row loops, row permutes, zero-bordered planes.
    #[test]
    fn im2col_matches_definition_and_col2im_is_its_adjoint() {
        for &(c, h, w, k, s, p) in &[
            (1, 5, 7, 3, 1, 1),
            (2, 6, 5, 3, 2, 1),
            (3, 4, 4, 1, 2, 0),
            (2, 7, 6, 3, 2, 0),
            (1, 3, 3, 3, 1, 2),
            // The short-row layers of ResNet-18 at width 1/4 (3×3 and 1×1 stride 2 from 14- and
            // 7-wide maps) and a 20-wide input row (two vectors).
            (3, 14, 14, 3, 2, 1),
            (2, 7, 7, 3, 2, 1),
            (2, 7, 7, 1, 2, 0),
            (2, 5, 20, 3, 2, 1),
            // Output rows of LONG_ROW or more that fit the row permutes on AVX-512F: a ragged
            // 15-wide stride-2 row, the W = 32 / Wo = 16 edges (3×3 and 7×7 stride 2), stride 1
            // without "same" padding (Wo = 16 from two input vectors); elsewhere the zero-bordered
            // plane path.
            (2, 30, 29, 3, 2, 1),
            (1, 6, 32, 3, 2, 1),
            (1, 8, 32, 7, 2, 3),
            (1, 4, 18, 3, 1, 0),
            (1, 18, 20, 3, 1, 0),
            // The zero-bordered plane path everywhere: stride 2 from 40-wide rows (permutes per
            // row), stride 3, a 1×1 stride 2 from 33-wide rows.
            (2, 9, 40, 3, 2, 1),
            (2, 9, 47, 3, 3, 1),
            (3, 6, 33, 1, 2, 0),
        ] {
            let g = geom(c, h, w, k, s, p);
            let n = 2;
            let x: Vec<f32> = (0..n * c * h * w).map(|i| (i % 13) as f32 - 6.0).collect();
            let ncols = n * g.out_pixels();
            let mut cols = vec![f32::NAN; g.patch_len() * ncols];
            im2col(&g, &x, n, &mut cols);
            let (ho, wo) = (g.out_height(), g.out_width());
            for ci in 0..c {
                for ky in 0..k {
                    for kx in 0..k {
                        for img in 0..n {
                            for oy in 0..ho {
                                for ox in 0..wo {
                                    let iy = (oy * s + ky) as isize - p as isize;
                                    let ix = (ox * s + kx) as isize - p as isize;
                                    let want =
                                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize
                                        {
                                            0.0
                                        } else {
                                            x[((img * c + ci) * h + iy as usize) * w + ix as usize]
                                        };
                                    let row = (ci * k + ky) * k + kx;
                                    let col = img * ho * wo + oy * wo + ox;
                                    assert_eq!(cols[row * ncols + col], want);
                                }
                            }
                        }
                    }
                }
            }
            let y: Vec<f32> = (0..cols.len()).map(|i| (i % 7) as f32 - 3.0).collect();
            let mut back = vec![0.0f32; x.len()];
            col2im_add(&g, &y, n, &mut back);
            {
                // Every dispatched im2col path (permutes on AVX-512F, zero-bordered planes) equals
                // the scalar row loops bit for bit. So does col2im on a zero destination (the
                // engine's use); the row loops and the permutes add straight into the image, so
                // they also agree on a −0 / non-zero destination (the zero-bordered planes add a
                // plane's sum instead).
                let mut scalar = vec![f32::NAN; cols.len()];
                im2col_rows(&g, &x, n, &mut scalar);
                assert_eq!(
                    cols.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    scalar.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "im2col rows, geometry {g:?}"
                );
                let y: Vec<f32> = (0..cols.len())
                    .map(|i| ((i * 37) % 101) as f32 * 0.013 - 0.6)
                    .collect();
                let adds_in_place = g.out_width() < LONG_ROW || col2im_permutes(&g);
                let zero = vec![0.0f32; x.len()];
                let signed: Vec<f32> = (0..x.len())
                    .map(|i| if i % 3 == 0 { -0.0 } else { 0.1 * i as f32 })
                    .collect();
                let starts = if adds_in_place {
                    vec![zero, signed]
                } else {
                    vec![zero]
                };
                for start in starts {
                    let (mut ours, mut reference) = (start.clone(), start);
                    col2im_add(&g, &y, n, &mut ours);
                    col2im_rows(&g, &y, n, &mut reference);
                    assert_eq!(
                        ours.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        reference.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        "col2im rows, geometry {g:?}"
                    );
                }
            }
            let lhs: f64 = cols.iter().zip(&y).map(|(a, b)| (*a * *b) as f64).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| (*a * *b) as f64).sum();
            assert_eq!(lhs, rhs, "geometry {g:?}");
        }
    }
}
