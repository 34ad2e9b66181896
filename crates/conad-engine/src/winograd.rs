//! Winograd F(2×2, 3×3) convolution for 3×3, stride-1, padding-1 layers.
//!
//! Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016), §4, eq. (8):
//! each 2×2 output tile is `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` for the tile's 4×4 input patch `d`
//! and the 3×3 kernel `g`, with
//!
//! ```text
//!      ⎡1  0 −1  0⎤        ⎡ 1    0    0 ⎤
//! Bᵀ = ⎢0  1  1  0⎥    G = ⎢1/2  1/2  1/2⎥    Aᵀ = ⎡1 1  1  0⎤
//!      ⎢0 −1  1  0⎥        ⎢1/2 −1/2  1/2⎥         ⎣0 1 −1 −1⎦
//!      ⎣0  1  0 −1⎦        ⎣ 0    0    1 ⎦
//! ```
//!
//! Summed over input channels, the element-wise products become 16 independent GEMMs, one per
//! position `ξ` of the 4×4 transformed tile: `M_ξ (O × T) = U_ξ (O × C) · V_ξ (C × T)` over the
//! `T` tiles of a chunk of images. That is 16 multiply-adds per tile and channel pair where the
//! direct convolution needs 36 (2.25× fewer), on operands shaped for a packed GEMM however small
//! the feature map is — which suits ResNet-18's 256- and 512-channel layers on 8×8, 7×7 and 4×4
//! maps (why this matters, with measurements: `docs/engine.md`).
//!
//! Layouts: `U` is `[o][ξ][c]`; the input transform runs on 16 channels at a time (one AVX-512
//! vector) from a zero-bordered, channel-minor copy of the image (all channels of a pixel
//! contiguous, so each tile's 16 stores per `ξ` fill whole cache lines), and writes `V_ξ` tile-major
//! (`[ξ][t][c]`, read by the GEMM as a column-major `C × T` matrix); the output transform runs on
//! 16 tiles at a time from `M` (`[ξ][o][t]`) and scatters the 2×2 results into NCHW. Consecutive
//! `ξ` blocks of `V`, `dM` and `M` sit one cache line further apart than their length
//! ([`xi_stride`]), so that the 16 streams of a transform never share L1 sets.
//!
//! The input gradient of such a layer is the same convolution of the output gradient with the
//! flipped, transposed kernel; flipping a 3×3 kernel swaps rows and columns 0 and 3 of its
//! transform (`G J = Q G` with `J` the 3×3 and `Q` the 0↔3 reversal), so [`winograd_grad_input`]
//! transforms the layer's own kernel straight into the transposed, index-permuted layout its
//! GEMMs read like the forward's (`U'[c][ξ][o] = U[o][Qξ][c]`, no flipped copy of the weight).
//! Both kernel transforms load 16 kernels' taps with gathers. The weight gradient
//! ([`winograd_grad_weight`]) transforms output-gradient tiles (`A dY Aᵀ`) and input tiles
//! (`Bᵀ d B`), reduces over tiles with 16 GEMMs (a 16 × 16 register-block kernel for layers of
//! at most 16 input and output channels) and maps back with `dW = Gᵀ dU G`. The weight gradient
//! takes over from [`MIN_GRAD_WEIGHT_CHANNELS`] channels, the forward and input gradient from
//! [`MIN_CHANNELS`].
//!
//! Accuracy: the transforms only add, subtract and halve, so results equal direct convolution up
//! to float rounding (tested against the im2col path and PyTorch).
//!
//! Determinism: chunks are whole images (a function of the shape only), and every output value is
//! produced by one task from one GEMM with a fixed summation order.

use rayon::prelude::*;

use crate::cpu_data::{par_overwrite_chunks, par_zeros};
use crate::geometry::{ConvGeometry, MAX_GROUPS};
use crate::matmul::{MatRef, gemm_into};
use crate::scratch::ScratchBuf;
use crate::simd::avx512_fn;

/// Positions in a transformed 4×4 tile: one GEMM each.
const XI: usize = 16;
/// Channels (input transform) or tiles (output transform) per vector.
const LANES: usize = 16;
/// Tiles per chunk the chunking aims for (the GEMMs' `n`).
const TARGET_TILES: usize = 128;
/// Values all weight-gradient partials may hold together (8 MiB) before layers get fewer groups
/// (never fewer than two).
const PARTIAL_VALUES: usize = 1 << 21;
/// Fewest input and output channels for which [`applies`] picks Winograd.
const MIN_CHANNELS: usize = 64;
/// Fewest input and output channels for which the weight gradient is Winograd's (measured
/// against the direct and im2col kernels, width-1/4 ResNet-18 at 28×28: 16 → 16 channels 1.51 →
/// 1.10 ms, 32 → 32 on 14×14 0.87 → 0.62 ms; docs/engine.md). The forward and input gradient of
/// 16- and 32-channel layers stay on the direct kernel, which beats Winograd there.
const MIN_GRAD_WEIGHT_CHANNELS: usize = 16;
/// Transformed-tile index of the flipped kernel: `Q = [3, 1, 2, 0]` on rows and columns.
const FLIP: [usize; 4] = [3, 1, 2, 0];

/// Distance between consecutive `ξ` blocks of `len` values in the transformed buffers: one
/// cache line more than `len`. With `T·16` a multiple of 1024 (128 tiles per chunk, or 256 on
/// 32×32 maps) the 16 blocks would start a multiple of 4 KiB apart, so the transforms' 16 store
/// streams (one per `ξ`) and the GEMMs' operand reads would all fall into the same L1 sets.
fn xi_stride(len: usize) -> usize {
    len + LANES
}

/// Whether `g` is a 3×3, stride-1, padding-1 convolution.
pub fn is_3x3_same(g: &ConvGeometry) -> bool {
    g.kernel == 3 && g.stride == 1 && g.padding == 1
}

/// Whether the engine takes this path for `g`: a 3×3 "same" layer with enough channels for the
/// GEMMs to pay for the transforms, on a CPU with AVX-512F, unless the environment variable
/// `CONAD_NO_WINOGRAD` is set (read once; for side-by-side measurements, or to reproduce results
/// of the direct and im2col kernels bit for bit).
pub fn applies(g: &ConvGeometry) -> bool {
    enabled_for(g, MIN_CHANNELS)
}

/// Whether [`winograd_grad_weight`] takes the weight gradient of `g`: as [`applies`] from
/// [`MIN_GRAD_WEIGHT_CHANNELS`] channels on.
pub fn applies_grad_weight(g: &ConvGeometry) -> bool {
    enabled_for(g, MIN_GRAD_WEIGHT_CHANNELS)
}

/// A 3×3 "same" stride-1 layer with at least `min_channels` input and output channels, AVX-512F,
/// and `CONAD_NO_WINOGRAD` unset.
fn enabled_for(g: &ConvGeometry, min_channels: usize) -> bool {
    static DISABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    is_3x3_same(g)
        && g.in_channels.min(g.out_channels) >= min_channels
        && crate::simd::avx512()
        && !*DISABLED.get_or_init(|| std::env::var_os("CONAD_NO_WINOGRAD").is_some())
}

/// Tiles per image along each axis: `(⌈H/2⌉, ⌈W/2⌉)`.
fn tile_grid(g: &ConvGeometry) -> (usize, usize) {
    (g.height.div_ceil(2), g.width.div_ceil(2))
}

/// Images per chunk: about [`TARGET_TILES`] tiles, and at least two chunks when the batch allows
/// (a function of the shape only).
fn images_per_chunk(g: &ConvGeometry) -> usize {
    let (th, tw) = tile_grid(g);
    TARGET_TILES
        .div_ceil(th * tw)
        .min(g.batch.div_ceil(2))
        .max(1)
}

/// `U[o][ξ][c] = (G g Gᵀ)_ξ` for every kernel `g = W[o][c]` (`W` is `O × C × 3 × 3`).
///
/// # Panics
/// If the CPU lacks AVX-512F or `w` is not `O × C × 9` values.
pub fn kernel_transform(w: &[f32], out_channels: usize, in_channels: usize) -> ScratchBuf {
    assert!(crate::simd::avx512());
    assert_eq!(w.len(), out_channels * in_channels * 9);
    // Every value is overwritten below: a pooled buffer, neither allocated nor zeroed per call
    // (a width-1 step transforms ~67 MB of kernels).
    let mut u = ScratchBuf::take(out_channels * XI * in_channels);
    u.par_chunks_mut(XI * in_channels)
        .zip(w.par_chunks(in_channels * 9))
        .for_each(|(uo, wo)| {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512F was asserted above; `wo` is one output channel's `C × 9` kernels
            // and `uo` its `16 × C` row.
            unsafe {
                avx512::kernel_row(wo, uo)
            }
        });
    u
}

/// `U'[c][ξ][o] = U[o][Qξ][c]`: the transform of the flipped, transposed kernel — the input
/// gradient's kernel — in [`kernel_transform`]'s layout for a layer of `in_channels` outputs and
/// `out_channels` inputs (flipping a 3×3 kernel permutes its transform by `Q`, see the module
/// docs). The values are [`kernel_transform`]'s, bit for bit.
///
/// # Panics
/// As [`kernel_transform`].
fn flipped_kernel_transform(w: &[f32], out_channels: usize, in_channels: usize) -> ScratchBuf {
    assert!(crate::simd::avx512());
    assert_eq!(w.len(), out_channels * in_channels * 9);
    let mut u = ScratchBuf::take(in_channels * XI * out_channels);
    u.par_chunks_mut(LANES * XI * out_channels)
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

/// `G g Gᵀ` of 16 kernels at once: `g[tap][lane]` (taps row-major) → `u[ξ][lane]`.
#[inline(always)]
fn transform_lanes(g: &[[f32; LANES]; 9]) -> [[f32; LANES]; XI] {
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
    let mut u = [[0.0f32; LANES]; XI];
    for (row, [a, b, d]) in t.iter().enumerate() {
        for l in 0..LANES {
            u[row * 4][l] = a[l];
            u[row * 4 + 1][l] = 0.5 * (a[l] + b[l] + d[l]);
            u[row * 4 + 2][l] = 0.5 * (a[l] - b[l] + d[l]);
            u[row * 4 + 3][l] = d[l];
        }
    }
    u
}

/// `y = conv2d(x, w)` for a 3×3, stride-1, padding-1 layer, contiguous NCHW `x` and
/// `O × C × 3 × 3` `w`; returns `N × O × H × W`.
///
/// # Panics
/// If `g` is not a 3×3 "same" stride-1 layer or the CPU lacks AVX-512F (see [`applies`]).
pub fn winograd_conv(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    assert!(is_3x3_same(g) && crate::simd::avx512());
    let u = kernel_transform(w, g.out_channels, g.in_channels);
    run(g, x, &u)
}

/// The input gradient `dx` (`N × C × H × W`) of `y = conv2d(x, w)` for a 3×3, stride-1,
/// padding-1 layer `g` from `dy` (`N × O × H × W`): the "same" convolution of `dy` with the
/// flipped, transposed kernel.
///
/// # Panics
/// As [`winograd_conv`].
pub fn winograd_grad_input(g: &ConvGeometry, dy: &[f32], w: &[f32]) -> Vec<f32> {
    assert!(is_3x3_same(g) && crate::simd::avx512());
    let u = flipped_kernel_transform(w, g.out_channels, g.in_channels);
    let gt = ConvGeometry {
        in_channels: g.out_channels,
        out_channels: g.in_channels,
        ..*g
    };
    run(&gt, dy, &u)
}

/// The weight gradient `dW` (`O × C × 3 × 3`) of `y = conv2d(x, w)` for a 3×3, stride-1,
/// padding-1 layer `g` from `x` (`N × C × H × W`) and `dy` (`N × O × H × W`).
///
/// The gradient of the Winograd forward pass, which equals the convolution for every `w`:
/// `dU_ξ (O × C) = Σ_t dM_ξ[·, t] V_ξ[·, t]ᵀ` with `dM = A dY Aᵀ` per 2×2 output tile (zero past
/// the map's edge) and `V = Bᵀ d B` as in the forward pass, then `dW = Gᵀ dU G`: 16 GEMMs (or
/// 16 × 16 block reductions) over tiles instead of one over `9 ×` as many im2col rows. Chunks
/// are grouped into at most [`MAX_GROUPS`] groups, fewer for wide layers ([`PARTIAL_VALUES`];
/// shape-determined); each group accumulates its chunks in order and the partials are summed in
/// group order, so the result does not depend on the thread count.
///
/// # Panics
/// As [`winograd_conv`].
pub fn winograd_grad_weight(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    assert!(is_3x3_same(g) && crate::simd::avx512());
    let (cin, cout) = (g.in_channels, g.out_channels);
    let ipc = images_per_chunk(g);
    let chunks = g.batch.div_ceil(ipc);
    // Fewer partials for wide layers: a 512-channel layer's dU is 16 MiB, and summing eight of
    // them cost more than the parallelism beyond two groups gained.
    let max_groups = (PARTIAL_VALUES / (XI * cout * cin)).clamp(2, MAX_GROUPS);
    let per_group = chunks.div_ceil(max_groups);
    let groups = chunks.div_ceil(per_group);
    // One partial per group, lent by this thread's pool (each is overwritten by its group's
    // first chunk, so none is zeroed).
    let mut partials: Vec<ScratchBuf> = (0..groups)
        .map(|_| ScratchBuf::take(XI * cout * cin))
        .collect();
    partials.par_iter_mut().enumerate().for_each(|(group, du)| {
        let first = group * per_group;
        for chunk in first..((group + 1) * per_group).min(chunks) {
            let img0 = chunk * ipc;
            let n = ipc.min(g.batch - img0);
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512F was asserted above; the ranges are whole images of `g`.
            unsafe {
                avx512::grad_weight_chunk(g, img0, n, x, dy, du, chunk > first)
            };
        }
    });
    let mut dw = par_zeros(cout * cin * 9);
    dw.par_chunks_mut(cin * 9)
        .enumerate()
        .for_each(|(o, dwo)| kernel_adjoint_row(&partials, o, cin, dwo));
    dw
}

avx512_fn! {
    /// `dW[o][c] = Gᵀ dU[o][c] G` for one output channel, `dU` being the sum of the group partials
    /// (`[o][ξ][c]` each) in group order; 16 input channels at a time.
    fn kernel_adjoint_row(partials: &[ScratchBuf], o: usize, cin: usize, dwo: &mut [f32]) {
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
        for c0 in (0..cin).step_by(LANES) {
            let cn = (cin - c0).min(LANES);
            let mut z = [[0.0f32; LANES]; XI];
            for p in partials {
                for (xi, zx) in z.iter_mut().enumerate() {
                    let src = &p[(o * XI + xi) * cin + c0..][..cn];
                    for (a, b) in zx.iter_mut().zip(src) {
                        *a += *b;
                    }
                }
            }
            // Gᵀ down each of the four columns, then Gᵀ along each of the three resulting rows.
            let mut cols = [[[0.0f32; LANES]; 3]; 4];
            for (col, out) in cols.iter_mut().enumerate() {
                *out = gt([z[col], z[4 + col], z[8 + col], z[12 + col]]);
            }
            for ky in 0..3 {
                let row = gt([cols[0][ky], cols[1][ky], cols[2][ky], cols[3][ky]]);
                for (kx, vals) in row.iter().enumerate() {
                    for ci in 0..cn {
                        dwo[(c0 + ci) * 9 + ky * 3 + kx] = vals[ci];
                    }
                }
            }
        }
    }
}

/// The convolution of `x` under geometry `g` with the kernel whose transform `u` describes.
fn run(g: &ConvGeometry, x: &[f32], u: &[f32]) -> Vec<f32> {
    let ipc = images_per_chunk(g);
    let in_img = g.in_channels * g.in_pixels();
    let out_img = g.out_channels * g.out_pixels();
    let parallel = g.batch.div_ceil(ipc) < rayon::current_num_threads();
    let kernel = |k: usize, y_chunk: &mut [f32]| {
        let images = y_chunk.len() / out_img;
        let x_chunk = &x[k * ipc * in_img..][..images * in_img];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the callers asserted AVX-512F; the chunks are whole images of `g`.
        unsafe {
            avx512::chunk(g, u, x_chunk, y_chunk, parallel)
        };
    };
    // SAFETY: the output transform stores every position of every output channel of the chunk
    // (each 2×2 tile's in-bounds values) and reads none.
    unsafe { par_overwrite_chunks(g.batch * out_img, ipc * out_img, kernel) }
}

/// The 16 GEMMs of one chunk: `m[ξ]` (`O × T`, row-major) `= U_ξ · V_ξ`, with `V_ξ` stored
/// tile-major (`T × c16`) in `v`.
#[allow(clippy::too_many_arguments)]
fn chunk_gemms(
    g: &ConvGeometry,
    u: &[f32],
    tiles: usize,
    c16: usize,
    v: &[f32],
    m: &mut [f32],
    parallel: bool,
) {
    let (cin, cout) = (g.in_channels, g.out_channels);
    // The 16 GEMMs are independent: with fewer chunks than threads (a single image being
    // scored) they run in parallel; each is still computed whole by one thread, so the results
    // do not change.
    let one = |xi: usize, dst: &mut [f32]| {
        // U_ξ[o][c] = u[o·16C + ξ·C + c].
        let lhs = MatRef {
            data: &u[xi * cin..],
            row_stride: XI * cin,
            col_stride: 1,
        };
        let rhs = MatRef {
            data: &v[xi * xi_stride(tiles * c16)..][..tiles * c16],
            row_stride: 1,
            col_stride: c16,
        };
        gemm_into(
            cout,
            tiles,
            cin,
            &mut dst[..cout * tiles],
            tiles,
            1,
            false,
            lhs,
            rhs,
        );
    };
    let sm = xi_stride(cout * tiles);
    let m = &mut m[..XI * sm];
    if parallel {
        m.par_chunks_mut(sm)
            .enumerate()
            .for_each(|(xi, dst)| one(xi, dst));
    } else {
        for (xi, dst) in m.chunks_mut(sm).enumerate() {
            one(xi, dst);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{FLIP, LANES, XI, chunk_gemms, tile_grid, transform_lanes, xi_stride};
    use crate::geometry::ConvGeometry;
    use crate::matmul::{MatRef, gemm_into};
    use crate::scratch::ScratchBuf;
    use crate::simd::mask;

    /// `g[tap][l] = src[l·stride + tap]` for the first `lanes` lanes, zero in the others: 16
    /// kernels' taps by nine gathers.
    ///
    /// # Safety
    /// AVX-512F must be available.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn gather_taps(src: &[f32], stride: usize, lanes: usize) -> [[f32; LANES]; 9] {
        assert!((1..=LANES).contains(&lanes) && src.len() >= (lanes - 1) * stride + 9);
        let stride = i32::try_from(stride).expect("kernel stride fits in i32");
        assert!(stride.checked_mul(LANES as i32).is_some());
        let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let idx = _mm512_mullo_epi32(lane, _mm512_set1_epi32(stride));
        let mut g = [[0.0f32; LANES]; 9];
        for (tap, gt) in g.iter_mut().enumerate() {
            // SAFETY: lane `l < lanes` reads `src[l·stride + tap]`, in bounds by the assert;
            // masked-off lanes read nothing.
            unsafe {
                let v = _mm512_mask_i32gather_ps::<4>(
                    _mm512_setzero_ps(),
                    mask(lanes),
                    idx,
                    src.as_ptr().add(tap),
                );
                _mm512_storeu_ps(gt.as_mut_ptr(), v);
            }
        }
        g
    }

    /// One output channel's kernels `wo` (`C × 9`) → `uo` (`16 × C`), 16 input channels at a
    /// time.
    ///
    /// # Safety
    /// AVX-512F must be available.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn kernel_row(wo: &[f32], uo: &mut [f32]) {
        let cin = wo.len() / 9;
        for c0 in (0..cin).step_by(LANES) {
            let cn = (cin - c0).min(LANES);
            // SAFETY: AVX-512F (caller); channels `c0..c0 + cn` lie in `wo`.
            let g = unsafe { gather_taps(&wo[c0 * 9..], 9, cn) };
            for (xi, v) in transform_lanes(&g).iter().enumerate() {
                uo[xi * cin + c0..][..cn].copy_from_slice(&v[..cn]);
            }
        }
    }

    /// The rows `U'[c]` of input channels `c0..` (`rows` holds whole rows of `16 × O` values),
    /// 16 output channels at a time; `w` is the layer's `O × C × 3 × 3` weight.
    ///
    /// # Safety
    /// AVX-512F must be available.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn flipped_kernel_rows(w: &[f32], cin: usize, c0: usize, rows: &mut [f32]) {
        let cout = w.len() / (cin * 9);
        let cn = rows.len() / (XI * cout);
        for o0 in (0..cout).step_by(LANES) {
            let on = (cout - o0).min(LANES);
            for ci in 0..cn {
                // SAFETY: AVX-512F (caller); output channels `o0..o0 + on` of input channel
                // `c0 + ci` lie in `w`.
                let g = unsafe { gather_taps(&w[(o0 * cin + c0 + ci) * 9..], cin * 9, on) };
                for (xi, v) in transform_lanes(&g).iter().enumerate() {
                    let q = FLIP[xi / 4] * 4 + FLIP[xi % 4];
                    rows[(ci * XI + q) * cout + o0..][..on].copy_from_slice(&v[..on]);
                }
            }
        }
    }

    /// Sizes of one chunk's tiles and its zero-bordered, channel-minor image grid.
    #[derive(Clone, Copy, Debug)]
    pub(super) struct ChunkShape {
        pub(super) h: usize,
        pub(super) w: usize,
        pub(super) th: usize,
        pub(super) tw: usize,
        /// Grid row length in cells: `2·tw + 2`.
        pub(super) pw: usize,
        /// Tiles in the chunk.
        pub(super) tiles: usize,
    }

    impl ChunkShape {
        pub(super) fn new(g: &ConvGeometry, images: usize) -> Self {
            let (th, tw) = tile_grid(g);
            Self {
                h: g.height,
                w: g.width,
                th,
                tw,
                pw: 2 * tw + 2,
                tiles: images * th * tw,
            }
        }

        /// Values in the grid: `(2·th + 2)·(2·tw + 2)` cells of `c16` channels.
        pub(super) fn grid_len(&self, c16: usize) -> usize {
            (2 * self.th + 2) * self.pw * c16
        }
    }

    /// Copies channels `c0 .. c0 + cn` (at most 16) of one image (`channels × H × W`) into the
    /// grid: `grid[(r + 1)·pw + s + 1][ci] = image[c0 + ci][r][s]`. Cells outside `H × W` must
    /// already be zero and stay so; lanes past `cn` are written as zeros.
    ///
    /// The plane is walked in blocks of 16 pixels (across row ends): 16 channel vectors, a 16 × 16
    /// in-register transpose, then one 16-channel cell store per pixel (the scalar copy was 4 % of
    /// a width-1 step).
    #[target_feature(enable = "avx512f")]
    fn pack_group(
        s: &ChunkShape,
        image: &[f32],
        (c0, cn, c16): (usize, usize, usize),
        grid: &mut [f32],
    ) {
        let plane = s.h * s.w;
        assert!(image.len() >= (c0 + cn) * plane && cn <= LANES && c0 + LANES <= c16);
        assert_eq!(grid.len(), s.grid_len(c16));
        for p0 in (0..plane).step_by(LANES) {
            let lanes = (plane - p0).min(LANES);
            let k = mask(lanes);
            let mut rows = [_mm512_setzero_ps(); LANES];
            for (ci, row) in rows.iter_mut().enumerate().take(cn) {
                // SAFETY: `lanes` values from pixel p0 of channel c0 + ci lie in `image`.
                *row =
                    unsafe { _mm512_maskz_loadu_ps(k, image.as_ptr().add((c0 + ci) * plane + p0)) };
            }
            let cols = transpose16(rows);
            for (i, col) in cols.iter().enumerate().take(lanes) {
                let p = p0 + i;
                let cell = ((p / s.w + 1) * s.pw + p % s.w + 1) * c16 + c0;
                // SAFETY: the cell of pixel (r, s) with r < H, s < W lies inside the grid
                // (asserted size).
                unsafe { _mm512_storeu_ps(grid.as_mut_ptr().add(cell), *col) };
            }
        }
    }

    /// The transpose of a 16 × 16 matrix held as 16 row vectors (four shuffle stages).
    #[target_feature(enable = "avx512f")]
    fn transpose16(r: [__m512; LANES]) -> [__m512; LANES] {
        // Stage 1: interleave row pairs; stage 2: interleave pairs of pairs (as f64), so that
        // u[4k + j] holds, in 128-bit lane L, rows 4k .. 4k + 3 of column 4L + j.
        let mut t = [_mm512_setzero_ps(); LANES];
        for k in 0..8 {
            t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
            t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
        }
        let mut u = [_mm512_setzero_ps(); LANES];
        for k in 0..4 {
            let (a, b, c, d) = (
                _mm512_castps_pd(t[4 * k]),
                _mm512_castps_pd(t[4 * k + 1]),
                _mm512_castps_pd(t[4 * k + 2]),
                _mm512_castps_pd(t[4 * k + 3]),
            );
            u[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
            u[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
            u[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
            u[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
        }
        // Stages 3 and 4: gather 128-bit lane L of u[j], u[4 + j], u[8 + j], u[12 + j] into
        // column 4L + j.
        let mut out = [_mm512_setzero_ps(); LANES];
        for j in 0..4 {
            let x0 = _mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]);
            let x1 = _mm512_shuffle_f32x4::<0xdd>(u[j], u[4 + j]);
            let y0 = _mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]);
            let y1 = _mm512_shuffle_f32x4::<0xdd>(u[8 + j], u[12 + j]);
            out[j] = _mm512_shuffle_f32x4::<0x88>(x0, y0);
            out[8 + j] = _mm512_shuffle_f32x4::<0xdd>(x0, y0);
            out[4 + j] = _mm512_shuffle_f32x4::<0x88>(x1, y1);
            out[12 + j] = _mm512_shuffle_f32x4::<0xdd>(x1, y1);
        }
        out
    }

    /// Runs `tile` on every tile and 16-channel group of every image in `images`
    /// (`n × channels × H × W`) after packing the image into the first
    /// [`ChunkShape::grid_len`]`(c16)` values of `grid` (cells of `c16` channels, so a tile's
    /// stores cover whole cache lines); `tile(grid, base, t, c0)` handles chunk tile `t` for
    /// channels `c0 ..`, `base` being the grid offset of its 4×4 patch's corner.
    #[inline(always)]
    fn for_each_group_tile(
        s: &ChunkShape,
        images: &[f32],
        (channels, c16): (usize, usize),
        grid: &mut [f32],
        mut tile: impl FnMut(&[f32], usize, usize, usize),
    ) {
        let grid = &mut grid[..s.grid_len(c16)];
        let img_len = channels * s.h * s.w;
        // The border (row and column 0, and past H × W the right and bottom slack) stays zero:
        // the interior is rewritten per image, every lane included.
        let row = s.pw * c16;
        grid[..row].fill(0.0);
        grid[(s.h + 1) * row..].fill(0.0);
        for r in 1..=s.h {
            grid[r * row..][..c16].fill(0.0);
            grid[r * row + (s.w + 1) * c16..][..row - (s.w + 1) * c16].fill(0.0);
        }
        for (img, image) in images.chunks_exact(img_len).enumerate() {
            for c0 in (0..channels).step_by(LANES) {
                let cn = (channels - c0).min(LANES);
                // SAFETY: only called from the AVX-512F transforms below.
                unsafe { pack_group(s, image, (c0, cn, c16), grid) };
            }
            for ti in 0..s.th {
                for j in 0..s.tw {
                    let t = (img * s.th + ti) * s.tw + j;
                    for c0 in (0..channels).step_by(LANES) {
                        tile(grid, (2 * ti * s.pw + 2 * j) * c16 + c0, t, c0);
                    }
                }
            }
        }
    }

    /// `V = Bᵀ d B` of every tile and 16-channel group: `v[ξ][t][c]` (`c16` channels per row).
    ///
    /// # Safety
    /// AVX-512F must be available; `v` holds `16·xi_stride(T·c16)` values.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn input_transform(
        s: &ChunkShape,
        images: &[f32],
        channels: usize,
        c16: usize,
        grid: &mut [f32],
        v: &mut [f32],
    ) {
        let sv = xi_stride(s.tiles * c16);
        assert_eq!(v.len(), XI * sv);
        let pw = s.pw;
        let vp = v.as_mut_ptr();
        for_each_group_tile(s, images, (channels, c16), grid, |grid, base, t, c0| {
            let gp = grid.as_ptr();
            let mut e = [[_mm512_setzero_ps(); 4]; 4];
            for (a, ea) in e.iter_mut().enumerate() {
                // SAFETY: rows 2ti + a ≤ 2th + 1 and columns 2j + b ≤ 2tw + 1 lie in the grid.
                let d = |b: usize| unsafe { _mm512_loadu_ps(gp.add(base + (a * pw + b) * c16)) };
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
                    let at = (p * 4 + col) * sv + t * c16 + c0;
                    // SAFETY: c0 + 16 ≤ c16, so `at + 16 ≤ v.len()`.
                    unsafe { _mm512_storeu_ps(vp.add(at), val) };
                }
            }
        });
    }

    /// `dM = A dY Aᵀ` (the adjoint of the output transform) of every 2×2 tile of `dy` and
    /// 16-channel group: `dm[ξ][t][o]` (`o16` channels per row).
    ///
    /// # Safety
    /// AVX-512F must be available; `dm` holds `16·xi_stride(T·o16)` values.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn output_adjoint(
        s: &ChunkShape,
        dy: &[f32],
        channels: usize,
        o16: usize,
        grid: &mut [f32],
        dm: &mut [f32],
    ) {
        let sd = xi_stride(s.tiles * o16);
        assert_eq!(dm.len(), XI * sd);
        let pw = s.pw;
        let dp = dm.as_mut_ptr();
        for_each_group_tile(s, dy, (channels, o16), grid, |grid, base, t, c0| {
            let gp = grid.as_ptr();
            // The tile's outputs sit one cell right and below its input patch's corner.
            // SAFETY: rows 2ti + 1 + a and columns 2j + 1 + b (a, b ≤ 1) lie in the grid.
            let d = |a: usize, b: usize| unsafe {
                _mm512_loadu_ps(gp.add(base + ((a + 1) * pw + b + 1) * o16))
            };
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
                    let at = (p * 4 + col) * sd + t * o16 + c0;
                    // SAFETY: c0 + 16 ≤ o16, so `at + 16 ≤ dm.len()`.
                    unsafe { _mm512_storeu_ps(dp.add(at), val) };
                }
            }
        });
    }

    /// `Y = Aᵀ M A` of every tile from `m[ξ][o][t]`, scattered into the chunk's NCHW output.
    ///
    /// # Safety
    /// AVX-512F must be available; `m` holds `16·xi_stride(O·T)` values and `y_chunk` the chunk's
    /// images.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn output_transform(
        s: &ChunkShape,
        m: &[f32],
        cout: usize,
        y_chunk: &mut [f32],
    ) {
        let (h, w, tiles) = (s.h, s.w, s.tiles);
        let sm = xi_stride(cout * tiles);
        assert_eq!(m.len(), XI * sm);
        assert_eq!(y_chunk.len() * s.th * s.tw, tiles * cout * h * w);
        // Where tile t's top-left output lands (for o = 0), and which of its four outputs exist.
        let mut offsets = Vec::with_capacity(tiles);
        for img in 0..tiles / (s.th * s.tw) {
            for ti in 0..s.th {
                for j in 0..s.tw {
                    let at = img * cout * h * w + 2 * ti * w + 2 * j;
                    offsets.push((at, 2 * j + 1 < w, 2 * ti + 1 < h));
                }
            }
        }
        let mp = m.as_ptr();
        for o in 0..cout {
            for t0 in (0..tiles).step_by(LANES) {
                let lanes = (tiles - t0).min(LANES);
                let k = mask(lanes);
                // SAFETY: the masked loads read `lanes` values of row `o` of each M_ξ.
                let mq = |xi: usize| unsafe {
                    _mm512_maskz_loadu_ps(k, mp.add(xi * sm + o * tiles + t0))
                };
                let mut r = [[_mm512_setzero_ps(); 4]; 2];
                for col in 0..4 {
                    let (m0, m1, m2, m3) = (mq(col), mq(4 + col), mq(8 + col), mq(12 + col));
                    r[0][col] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                    r[1][col] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
                }
                let mut out = [[0.0f32; LANES]; 4];
                for (a, ra) in r.iter().enumerate() {
                    let left = _mm512_add_ps(_mm512_add_ps(ra[0], ra[1]), ra[2]);
                    let right = _mm512_sub_ps(_mm512_sub_ps(ra[1], ra[2]), ra[3]);
                    // SAFETY: each destination is a 16-float array.
                    unsafe {
                        _mm512_storeu_ps(out[2 * a].as_mut_ptr(), left);
                        _mm512_storeu_ps(out[2 * a + 1].as_mut_ptr(), right);
                    }
                }
                for l in 0..lanes {
                    let (at, right, below) = offsets[t0 + l];
                    let at = at + o * h * w;
                    y_chunk[at] = out[0][l];
                    if right {
                        y_chunk[at + 1] = out[1][l];
                    }
                    if below {
                        y_chunk[at + w] = out[2][l];
                        if right {
                            y_chunk[at + w + 1] = out[3][l];
                        }
                    }
                }
            }
        }
    }

    /// Adds (or with `accumulate = false` writes) the `dU` of images `img0 .. img0 + n` into
    /// `du` (`[o][ξ][c]`): `dU_ξ (O × C) (+)= dM_ξ (O × T) · V_ξᵀ (T × C)`.
    ///
    /// # Safety
    /// AVX-512F must be available; `x` and `dy` hold the whole batch of `g`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn grad_weight_chunk(
        g: &ConvGeometry,
        img0: usize,
        n: usize,
        x: &[f32],
        dy: &[f32],
        du: &mut [f32],
        accumulate: bool,
    ) {
        let (cin, cout) = (g.in_channels, g.out_channels);
        let (in_img, out_img) = (cin * g.in_pixels(), cout * g.out_pixels());
        let s = ChunkShape::new(g, n);
        let (c16, o16) = (cin.next_multiple_of(LANES), cout.next_multiple_of(LANES));
        let tiles = s.tiles;
        let mut v = ScratchBuf::take(XI * xi_stride(tiles * c16));
        let mut dm = ScratchBuf::take(XI * xi_stride(tiles * o16));
        let mut grid = ScratchBuf::take(s.grid_len(c16.max(o16)));
        // SAFETY: AVX-512F is available (caller); the sizes are asserted inside.
        unsafe {
            input_transform(
                &s,
                &x[img0 * in_img..][..n * in_img],
                cin,
                c16,
                &mut grid,
                &mut v,
            );
            output_adjoint(
                &s,
                &dy[img0 * out_img..][..n * out_img],
                cout,
                o16,
                &mut grid,
                &mut dm,
            );
        }
        for xi in 0..XI {
            let dm = &dm[xi * xi_stride(tiles * o16)..][..tiles * o16];
            let v = &v[xi * xi_stride(tiles * c16)..][..tiles * c16];
            if o16 == LANES && c16 == LANES {
                // SAFETY: AVX-512F (caller); the sizes are asserted inside.
                unsafe { tile_sum_block((cin, cout), xi, tiles, (dm, v), du, accumulate) };
                continue;
            }
            let lhs = MatRef {
                data: dm,
                row_stride: 1,
                col_stride: o16,
            };
            let rhs = MatRef {
                data: v,
                row_stride: c16,
                col_stride: 1,
            };
            gemm_into(
                cout,
                cin,
                tiles,
                &mut du[xi * cin..],
                XI * cin,
                1,
                accumulate,
                lhs,
                rhs,
            );
        }
    }

    /// `dU_ξ[o][c] (+)= Σ_t dM_ξ[t][o] · V_ξ[t][c]` for layers of at most 16 input and 16 output
    /// channels: sixteen accumulators (one per output channel, the input channels in lanes), per
    /// tile one load of `V`, sixteen broadcasts of `dM` and sixteen fused multiply-adds, tiles
    /// summed in order. On these shapes the `gemm` crate's operand packing and edge kernels cost
    /// more than the products (layer1 of a width-1/4 ResNet-18, 28×28: 1.30 → 1.10 ms).
    ///
    /// # Safety
    /// AVX-512F must be available; `dm` and `v` are `T × 16` (`T = tiles`, channels beyond `O` and
    /// `C` zero), `du` is `O × 16 × C` with `O, C ≤ 16`.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile_sum_block(
        (cin, cout): (usize, usize),
        xi: usize,
        tiles: usize,
        (dm, v): (&[f32], &[f32]),
        du: &mut [f32],
        accumulate: bool,
    ) {
        assert!(cout <= LANES && cin <= LANES);
        assert!(dm.len() >= tiles * LANES && v.len() >= tiles * LANES);
        // Row `o` of dU_ξ: the `cin` values from `o·16·C + ξ·C`.
        let row = |o: usize| o * XI * cin + xi * cin..o * XI * cin + (xi + 1) * cin;
        assert!(du.len() >= row(cout - 1).end);
        let lanes = mask(cin);
        let mut acc = [_mm512_setzero_ps(); LANES];
        if accumulate {
            for (o, a) in acc.iter_mut().enumerate().take(cout) {
                // SAFETY: the masked load reads the `cin` values of row `o`.
                *a = unsafe { _mm512_maskz_loadu_ps(lanes, du[row(o)].as_ptr()) };
            }
        }
        for (vt, dt) in v
            .chunks_exact(LANES)
            .zip(dm.chunks_exact(LANES))
            .take(tiles)
        {
            // SAFETY: `vt` holds 16 values.
            let vv = unsafe { _mm512_loadu_ps(vt.as_ptr()) };
            for (a, &d) in acc.iter_mut().zip(dt) {
                *a = _mm512_fmadd_ps(_mm512_set1_ps(d), vv, *a);
            }
        }
        for (o, a) in acc.iter().enumerate().take(cout) {
            // SAFETY: the masked store writes the `cin` values of row `o`.
            unsafe { _mm512_mask_storeu_ps(du[row(o)].as_mut_ptr(), lanes, *a) };
        }
    }

    /// One forward (or input-gradient) chunk: input transform, GEMMs, output transform, with
    /// `V`, `M` and the grid lent by this thread's scratch pool.
    ///
    /// # Safety
    /// AVX-512F must be available. `x_chunk` holds `n` whole input images and `y_chunk` `n`
    /// whole output images of `g`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn chunk(
        g: &ConvGeometry,
        u: &[f32],
        x_chunk: &[f32],
        y_chunk: &mut [f32],
        parallel: bool,
    ) {
        let (cin, cout) = (g.in_channels, g.out_channels);
        let s = ChunkShape::new(g, x_chunk.len() / (cin * g.in_pixels()));
        let c16 = cin.next_multiple_of(LANES);
        let mut v = ScratchBuf::take(XI * xi_stride(s.tiles * c16));
        let mut m = ScratchBuf::take(XI * xi_stride(cout * s.tiles));
        let mut grid = ScratchBuf::take(s.grid_len(c16));
        // SAFETY: AVX-512F is available (caller); the sizes are asserted inside.
        unsafe {
            input_transform(&s, x_chunk, cin, c16, &mut grid, &mut v);
            chunk_gemms(g, u, s.tiles, c16, &v, &mut m, parallel);
            output_transform(&s, &m, cout, y_chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv_backward::conv_backward;
    use crate::conv_forward::im2col_conv;
    use crate::direct_conv::flip_transpose;

    fn pattern(len: usize, mul: usize, modulus: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * mul) % modulus) as f32 / (modulus / 2) as f32 - 1.0)
            .collect()
    }

    fn assert_close(got: &[f32], want: &[f32], c: usize, what: &str) {
        assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()) * (c as f32).sqrt(),
                "{what} at {i}: {a} vs {b}"
            );
        }
    }

    /// A single image's 16 GEMMs run in parallel on a multi-thread pool and in order on a
    /// one-thread pool: the same bits either way (forward and input gradient).
    #[test]
    fn single_image_parallel_gemms_give_the_serial_bits() {
        if !crate::simd::avx512() {
            eprintln!("no AVX-512F: Winograd convolution not tested");
            return;
        }
        let (c, o, h, w) = (32, 48, 14, 14);
        let g = ConvGeometry::new(&[1, c, h, w], &[o, c, 3, 3], 1, 1).unwrap();
        let x = pattern(c * h * w, 37, 101);
        let wt = pattern(o * c * 9, 53, 97);
        let dy = pattern(o * h * w, 29, 89);
        let serial = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| {
                (
                    winograd_conv(&g, &x, &wt),
                    winograd_grad_input(&g, &dy, &wt),
                )
            });
        let parallel = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap()
            .install(|| {
                (
                    winograd_conv(&g, &x, &wt),
                    winograd_grad_input(&g, &dy, &wt),
                )
            });
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&serial.0), bits(&parallel.0));
        assert_eq!(bits(&serial.1), bits(&parallel.1));
    }

    /// Winograd equals the im2col + GEMM convolution, forward and both gradients, on odd and even,
    /// square and non-square maps (partial tiles on the right and bottom edges), a 1×1 map,
    /// batch 1, ragged chunks and channel counts that are not multiples of 16.
    #[test]
    fn winograd_matches_im2col_convolution_and_its_input_gradient() {
        for &(n, c, o, h, w) in &[
            (2, 16, 16, 8, 8),
            (3, 20, 17, 7, 7),
            (1, 16, 32, 5, 9),
            (5, 33, 16, 4, 4),
            (2, 16, 18, 1, 1),
            (1, 16, 16, 14, 14),
            (9, 24, 16, 3, 6),
            (3, 64, 72, 7, 6),
        ] {
            let g = ConvGeometry::new(&[n, c, h, w], &[o, c, 3, 3], 1, 1).unwrap();
            if !crate::simd::avx512() {
                eprintln!("no AVX-512F: Winograd convolution not tested");
                return;
            }
            let x = pattern(n * c * h * w, 37, 101);
            let wt = pattern(o * c * 9, 53, 97);
            let got = winograd_conv(&g, &x, &wt);
            assert_close(
                &got,
                &im2col_conv(&g, &x, &wt),
                c,
                &format!("{g:?} forward"),
            );
            let dy = pattern(n * o * h * w, 29, 89);
            let gt = ConvGeometry::new(&[n, o, h, w], &[c, o, 3, 3], 1, 1).unwrap();
            let want = im2col_conv(&gt, &dy, &flip_transpose(&wt, o, c, 3));
            let got = winograd_grad_input(&g, &dy, &wt);
            assert_close(&got, &want, o, &format!("{g:?} grad-input"));
            if applies(&g) {
                let (dx, _) = conv_backward(&g, &x, &wt, &dy, true, false);
                assert_eq!(
                    dx.unwrap(),
                    got,
                    "conv_backward takes the Winograd input gradient"
                );
            }
        }
    }

    /// The Winograd weight gradient equals the im2col one (up to rounding): the 16 × 16 block
    /// kernel (16 and fewer channels, ragged `O` and `C`) and the GEMM path, each with groups of
    /// one chunk (first chunk overwrites) and of several chunks (later chunks accumulate: 20 or 10
    /// one-image chunks in at most 8 groups), odd maps with partial tiles, and a 32×32 map (256
    /// tiles a chunk: the `ξ` blocks' padded stride).
    #[test]
    fn winograd_grad_weight_matches_im2col() {
        if !crate::simd::avx512() {
            eprintln!("no AVX-512F: Winograd weight gradient not tested");
            return;
        }
        for &(n, c, o, h, w) in &[
            (2, 16, 16, 14, 14),
            (9, 12, 16, 7, 9),
            (3, 16, 5, 6, 6),
            (2, 16, 16, 32, 32),
            (4, 32, 24, 14, 14),
            (2, 40, 64, 5, 3),
            (20, 16, 16, 24, 24),
            (20, 12, 5, 23, 23),
            (10, 32, 24, 23, 23),
        ] {
            let g = ConvGeometry::new(&[n, c, h, w], &[o, c, 3, 3], 1, 1).unwrap();
            let x = pattern(n * c * h * w, 37, 101);
            let dy = pattern(n * o * h * w, 29, 89);
            let got = winograd_grad_weight(&g, &x, &dy);
            let want = crate::conv_backward::im2col_grad_weight(&g, &x, &dy);
            assert_close(&got, &want, n * h * w, &format!("{g:?} grad-weight"));
            if applies_grad_weight(&g) {
                let (_, dw) = conv_backward(&g, &x, &pattern(o * c * 9, 53, 97), &dy, false, true);
                assert_eq!(
                    dw.unwrap(),
                    got,
                    "conv_backward takes the Winograd weight gradient"
                );
            }
        }
    }

    /// The kernel transform of a hand-computed kernel: `G g Gᵀ` for g = [[1,2,3],[4,5,6],[7,8,9]]
    /// (numpy: `G @ g @ G.T` with G = [[1,0,0],[.5,.5,.5],[.5,-.5,.5],[0,0,1]]), placed at
    /// `U[o][ξ][c]` for a 2 × 17 weight (a ragged 16-channel block).
    #[test]
    fn kernel_transform_matches_hand_computation() {
        if !crate::simd::avx512() {
            eprintln!("no AVX-512F: Winograd kernel transform not tested");
            return;
        }
        let want = [
            1.0, 3.0, 1.0, 3.0, //
            6.0, 11.25, 3.75, 9.0, //
            2.0, 3.75, 1.25, 3.0, //
            7.0, 12.0, 4.0, 9.0,
        ];
        let (o, c) = (2, 17);
        let mut w = vec![0.0f32; o * c * 9];
        for (i, v) in w[(c + 16) * 9..][..9].iter_mut().enumerate() {
            *v = (i + 1) as f32;
        }
        let u = kernel_transform(&w, o, c);
        for xi in 0..16 {
            assert_eq!(u[(16 + xi) * c + 16], want[xi], "ξ = {xi}");
        }
        assert_eq!(u.iter().filter(|v| **v != 0.0).count(), 16);
    }

    /// The input gradient's kernel transform is the forward's, transposed and permuted by `Q`,
    /// bit for bit — with ragged 16-channel blocks on both sides.
    #[test]
    fn flipped_kernel_transform_is_the_permuted_forward_transform() {
        if !crate::simd::avx512() {
            eprintln!("no AVX-512F: Winograd kernel transform not tested");
            return;
        }
        for (o, c) in [(20, 35), (16, 16), (3, 50), (64, 1)] {
            let w = pattern(o * c * 9, 61, 103);
            let u = kernel_transform(&w, o, c);
            let ut = flipped_kernel_transform(&w, o, c);
            assert_eq!(ut.len(), u.len());
            for oi in 0..o {
                for ci in 0..c {
                    for xi in 0..XI {
                        let q = FLIP[xi / 4] * 4 + FLIP[xi % 4];
                        assert_eq!(
                            ut[(ci * XI + xi) * o + oi].to_bits(),
                            u[(oi * XI + q) * c + ci].to_bits(),
                            "O {o}, C {c}: o {oi}, c {ci}, ξ {xi}"
                        );
                    }
                }
            }
        }
    }
}
