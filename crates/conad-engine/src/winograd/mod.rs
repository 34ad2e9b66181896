//! Winograd convolution for 3×3, stride-1, padding-1 layers: F(2×2, 3×3) ([`f2x3`]) and
//! F(4×4, 3×3) ([`f4x3`]) behind one driver.
//!
//! Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016), §4, eq. (8):
//! each `m×m` output tile is `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` for the tile's `(m+2)×(m+2)`
//! input patch `d` and the 3×3 kernel `g`. Summed over input channels, the element-wise products
//! become `(m+2)²` independent GEMMs, one per position `ξ` of the transformed tile:
//! `M_ξ (O × T) = U_ξ (O × C) · V_ξ (C × T)` over the `T` tiles of a chunk of images — on
//! operands shaped for a packed GEMM however small the feature map is, which suits ResNet-18's
//! 256- and 512-channel layers on 8×8, 7×7 and 4×4 maps (why this matters, with measurements:
//! `docs/engine.md`). A [`Tiling`] supplies one algorithm's transforms; the chunking, packing,
//! GEMMs and scatter here are shared.
//!
//! Layouts: `U` is `[o][ξ][c]`; the input transform runs on 16 channels at a time (one AVX-512
//! vector) from a zero-bordered, channel-minor copy of the image (all channels of a pixel
//! contiguous, so each tile's stores per `ξ` fill whole cache lines), and writes `V_ξ` tile-major
//! (`[ξ][t][c]`, read by the GEMM as a column-major `C × T` matrix); the output transform runs on
//! 16 tiles at a time from `M` (`[ξ][o][t]`) and scatters the `m×m` results into NCHW.
//! Consecutive `ξ` blocks of `V`, `dM` and `M` sit one cache line further apart than their
//! length ([`xi_stride`]), so that the store streams of a transform never share L1 sets.
//!
//! The input gradient of such a layer is the same convolution of the output gradient with the
//! flipped, transposed kernel ([`Tiling::flipped_kernel_transform`]). The weight gradient
//! ([`winograd_grad_weight`]) transforms output-gradient tiles (`A dY Aᵀ`) and input tiles
//! (`Bᵀ d B`), reduces over tiles with one GEMM per `ξ` (a 16 × 16 register-block kernel for
//! layers of at most 16 input and output channels) and maps back with `dW = Gᵀ dU G`. The weight
//! gradient takes over from [`MIN_GRAD_WEIGHT_CHANNELS`] channels, the forward and input gradient
//! from [`MIN_CHANNELS`]; [`tiling_for`] picks the algorithm per layer.
//!
//! Determinism: chunks are whole images (a function of the shape only), and every output value is
//! produced by one task from one GEMM or register block with a fixed summation order.

mod f2x3;
mod f4x3;

use rayon::prelude::*;

pub(crate) use f2x3::F2x3;
pub(crate) use f4x3::F4x3;

use crate::cpu_data::{par_overwrite_chunks, par_zeros};
use crate::direct_conv::flip_transpose;
use crate::geometry::{ConvGeometry, MAX_GROUPS};
use crate::matmul::{MatRef, gemm_into};
use crate::scratch::ScratchBuf;

/// Channels (input transform) or tiles (output transform) per vector.
const LANES: usize = 16;
/// The most positions a transformed tile has ([`F4x3`]: 6 × 6).
const MAX_XI: usize = 36;
/// Values all weight-gradient partials may hold together (8 MiB) before layers get fewer groups
/// (never fewer than two).
const PARTIAL_VALUES: usize = 1 << 21;
/// Fewest input and output channels for which [`applies`] picks Winograd: 32-channel layers
/// through [`Products::Blocked`] beat the direct kernel (width-1/4 ResNet-18 layer2, 14×14 and
/// 16×16 maps: 0.64 → 0.57 and 0.74 → 0.57 ms per forward), 16-channel layers do not (28×28 even,
/// 32×32 0.79 → 0.95 ms: the transforms outweigh the products; docs/engine.md).
const MIN_CHANNELS: usize = 32;
/// Fewest input and output channels for which the weight gradient is Winograd's (measured
/// against the direct and im2col kernels, width-1/4 ResNet-18 at 28×28: 16 → 16 channels 1.51 →
/// 1.10 ms, 32 → 32 on 14×14 0.87 → 0.62 ms; docs/engine.md). The forward and input gradient of
/// 16-channel layers stay on the direct kernel, which beats Winograd there.
const MIN_GRAD_WEIGHT_CHANNELS: usize = 16;

/// Most input and output channels (each rounded up to 16) for which the forward and input
/// gradient compute the per-`ξ` products as register blocks ([`Products::Blocked`]) instead of
/// `gemm` crate calls, whose per-call packing and edge handling outweigh 16- to 32-channel
/// products.
const MAX_BLOCKED_CHANNELS: usize = 32;

/// How a chunk's per-`ξ` products `M_ξ = U_ξ · V_ξ` are computed, with the kernel transform in
/// the layout each reads.
#[derive(Clone, Copy, Debug)]
enum Products<'a> {
    /// `gemm` crate GEMMs on `U[o][ξ][c]` ([`kernel_transform`]), writing `M[ξ][o][t]`.
    Gemm(&'a [f32]),
    /// Register blocks of 16 output channels × 8 tiles on `U[ξ][c16][o16]`
    /// ([`kernel_transform_blocked`]), writing `M[ξ][t][o16]`.
    Blocked(&'a [f32]),
}

/// Whether the products of a layer with `g`'s channels are [`Products::Blocked`].
fn blocked(g: &ConvGeometry) -> bool {
    g.in_channels.next_multiple_of(LANES) <= MAX_BLOCKED_CHANNELS
        && g.out_channels.next_multiple_of(LANES) <= MAX_BLOCKED_CHANNELS
}

/// One Winograd algorithm F(m×m, 3×3): its sizes and its transforms of 16 lanes at a time.
pub(crate) trait Tiling: Sync {
    /// Outputs per tile side, `m`.
    const M: usize;
    /// Positions of a transformed `(m + 2) × (m + 2)` tile: one GEMM each.
    const XI: usize;
    /// Tiles per chunk the chunking aims for (the GEMMs' `n`).
    const TARGET_TILES: usize;

    /// `G g Gᵀ` of 16 kernels at once: `g[tap][lane]` (taps row-major) → `u[ξ][lane]` (the first
    /// [`Self::XI`] rows of `u`, which has at least that many).
    fn kernel_lanes(g: &[[f32; LANES]; 9], u: &mut [[f32; LANES]]);

    /// `Gᵀ z G` of 16 transformed-kernel gradients: `z[ξ][lane]` (the first [`Self::XI`] rows)
    /// → `dw[tap][lane]`.
    fn kernel_adjoint_lanes(z: &[[f32; LANES]]) -> [[f32; LANES]; 9];

    /// `U'[c][ξ][o]`: the transform of the flipped, transposed kernel — the input gradient's
    /// kernel — in [`kernel_transform`]'s layout for a layer of `in_channels` outputs and
    /// `out_channels` inputs.
    fn flipped_kernel_transform(w: &[f32], out_channels: usize, in_channels: usize) -> ScratchBuf;

    /// `V = Bᵀ d B` of one tile and 16 channels: `d[a][b]` at `src + a·row + b·cell`, `V_ξ` stored
    /// at `dst + ξ·stride`.
    ///
    /// # Safety
    /// AVX-512F must be available; every load and store must be in bounds.
    #[cfg(target_arch = "x86_64")]
    unsafe fn input_tile(src: *const f32, row: usize, cell: usize, dst: *mut f32, stride: usize);

    /// `dM = A dY Aᵀ` of one `m×m` output-gradient tile and 16 channels: `dY[a][b]` at
    /// `src + a·row + b·cell`, `dM_ξ` stored at `dst + ξ·stride`.
    ///
    /// # Safety
    /// As [`Self::input_tile`].
    #[cfg(target_arch = "x86_64")]
    unsafe fn output_adjoint_tile(
        src: *const f32,
        row: usize,
        cell: usize,
        dst: *mut f32,
        stride: usize,
    );

    /// `Y = Aᵀ M A` of 16 tiles (the lanes under `k`): `M_ξ` at `src + ξ·stride`; returns the
    /// `m²` outputs row-major (`out[a·m + b]`, one vector of 16 tiles each; the rest zero).
    ///
    /// # Safety
    /// As [`Self::input_tile`].
    #[cfg(target_arch = "x86_64")]
    unsafe fn output_tile(
        src: *const f32,
        stride: usize,
        k: std::arch::x86_64::__mmask16,
    ) -> [std::arch::x86_64::__m512; 16];
}

/// The Winograd algorithms, for dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algorithm {
    /// [`F2x3`].
    F2x3,
    /// [`F4x3`].
    F4x3,
}

/// Distance between consecutive `ξ` blocks of `len` values in the transformed buffers: one
/// cache line more than `len`. With `T·16` a multiple of 1024 (e.g. F(2×2)'s 128 tiles per chunk
/// or 256 on 32×32 maps, F(4×4)'s 64 on 32×32 maps) the blocks would start a multiple of 4 KiB apart, so the transforms' store
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

/// The algorithm for every pass of layer `g`: F(4×4, 3×3) on maps larger than one of its
/// tiles, F(2×2, 3×3) on maps of at most 4×4 — where F(4×4)'s forward and input gradient only
/// break even and its weight gradient is slower (its `dU` partials are 2.25× larger; measured
/// per layer, docs/engine.md). `CONAD_WINOGRAD` = `f2x3` or `f4x3` (read once) forces
/// one for every pass, for side-by-side measurements or to reproduce earlier bits.
pub(crate) fn tiling_for(g: &ConvGeometry) -> Algorithm {
    static FORCED: std::sync::OnceLock<Option<Algorithm>> = std::sync::OnceLock::new();
    let forced = *FORCED.get_or_init(|| match std::env::var("CONAD_WINOGRAD").as_deref() {
        Ok("f2x3") => Some(Algorithm::F2x3),
        Ok("f4x3") => Some(Algorithm::F4x3),
        _ => None,
    });
    if let Some(a) = forced {
        return a;
    }
    if g.height <= F4x3::M && g.width <= F4x3::M {
        Algorithm::F2x3
    } else {
        Algorithm::F4x3
    }
}

/// Tiles per image along each axis: `(⌈H/m⌉, ⌈W/m⌉)`.
fn tile_grid<T: Tiling>(g: &ConvGeometry) -> (usize, usize) {
    (g.height.div_ceil(T::M), g.width.div_ceil(T::M))
}

/// Images per chunk: about [`Tiling::TARGET_TILES`] tiles, and at least two chunks when the batch
/// allows (a function of the shape only).
fn images_per_chunk<T: Tiling>(g: &ConvGeometry) -> usize {
    let (th, tw) = tile_grid::<T>(g);
    T::TARGET_TILES
        .div_ceil(th * tw)
        .min(g.batch.div_ceil(2))
        .max(1)
}

/// `U[o][ξ][c] = (G g Gᵀ)_ξ` for every kernel `g = W[o][c]` (`W` is `O × C × 3 × 3`).
///
/// # Panics
/// If the CPU lacks AVX-512F or `w` is not `O × C × 9` values.
pub(crate) fn kernel_transform<T: Tiling>(
    w: &[f32],
    out_channels: usize,
    in_channels: usize,
) -> ScratchBuf {
    assert!(crate::simd::avx512());
    assert_eq!(w.len(), out_channels * in_channels * 9);
    // Every value is overwritten below: a pooled buffer, neither allocated nor zeroed per call
    // (a width-1 step transforms ~67 MB of kernels).
    let mut u = ScratchBuf::take(out_channels * T::XI * in_channels);
    u.par_chunks_mut(T::XI * in_channels)
        .zip(w.par_chunks(in_channels * 9))
        .for_each(|(uo, wo)| {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512F was asserted above; `wo` is one output channel's `C × 9` kernels
            // and `uo` its `XI × C` row.
            unsafe {
                avx512::kernel_row::<T>(wo, uo)
            }
        });
    u
}

/// `U[ξ][c][o] = (G g Gᵀ)_ξ` for every kernel `g = W[o][c]`, with `c` and `o` padded to
/// multiples of 16 by zero kernels: the layout of [`Products::Blocked`] (16 output channels of
/// one input channel contiguous).
///
/// # Panics
/// As [`kernel_transform`].
fn kernel_transform_blocked<T: Tiling>(
    w: &[f32],
    out_channels: usize,
    in_channels: usize,
) -> ScratchBuf {
    assert!(crate::simd::avx512());
    assert_eq!(w.len(), out_channels * in_channels * 9);
    let (c16, o16) = (
        in_channels.next_multiple_of(LANES),
        out_channels.next_multiple_of(LANES),
    );
    let mut u = ScratchBuf::take(T::XI * c16 * o16);
    // Padded input channels are zero rows; at most 32 × 32 kernels, so one thread.
    u.fill(0.0);
    let mut lanes = [[0.0f32; LANES]; MAX_XI];
    #[cfg(target_arch = "x86_64")]
    for c in 0..in_channels {
        for o0 in (0..out_channels).step_by(LANES) {
            // SAFETY: AVX-512F was asserted above; output channels `o0..` of input channel `c`
            // lie in `w`.
            let g = unsafe {
                avx512::gather_taps(
                    &w[(o0 * in_channels + c) * 9..],
                    in_channels * 9,
                    (out_channels - o0).min(LANES),
                )
            };
            T::kernel_lanes(&g, &mut lanes);
            for (xi, lanes) in lanes.iter().take(T::XI).enumerate() {
                u[(xi * c16 + c) * o16 + o0..][..LANES].copy_from_slice(lanes);
            }
        }
    }
    u
}

/// `y = conv2d(x, w)` for a 3×3, stride-1, padding-1 layer, contiguous NCHW `x` and
/// `O × C × 3 × 3` `w`; returns `N × O × H × W`. The algorithm is [`tiling_for`]'s.
///
/// # Panics
/// If `g` is not a 3×3 "same" stride-1 layer or the CPU lacks AVX-512F (see [`applies`]).
pub fn winograd_conv(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    match tiling_for(g) {
        Algorithm::F2x3 => conv::<F2x3>(g, x, w),
        Algorithm::F4x3 => conv::<F4x3>(g, x, w),
    }
}

/// The input gradient `dx` (`N × C × H × W`) of `y = conv2d(x, w)` for a 3×3, stride-1,
/// padding-1 layer `g` from `dy` (`N × O × H × W`): the "same" convolution of `dy` with the
/// flipped, transposed kernel. The algorithm is [`tiling_for`]'s.
///
/// # Panics
/// As [`winograd_conv`].
pub fn winograd_grad_input(g: &ConvGeometry, dy: &[f32], w: &[f32]) -> Vec<f32> {
    match tiling_for(g) {
        Algorithm::F2x3 => grad_input::<F2x3>(g, dy, w),
        Algorithm::F4x3 => grad_input::<F4x3>(g, dy, w),
    }
}

/// The weight gradient `dW` (`O × C × 3 × 3`) of `y = conv2d(x, w)` for a 3×3, stride-1,
/// padding-1 layer `g` from `x` (`N × C × H × W`) and `dy` (`N × O × H × W`). The algorithm is
/// [`tiling_for`]'s.
///
/// # Panics
/// As [`winograd_conv`].
pub fn winograd_grad_weight(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    match tiling_for(g) {
        Algorithm::F2x3 => grad_weight::<F2x3>(g, x, dy),
        Algorithm::F4x3 => grad_weight::<F4x3>(g, x, dy),
    }
}

/// [`winograd_conv`] with algorithm `T`.
fn conv<T: Tiling>(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    assert!(is_3x3_same(g) && crate::simd::avx512());
    if blocked(g) {
        let u = kernel_transform_blocked::<T>(w, g.out_channels, g.in_channels);
        run::<T>(g, x, Products::Blocked(&u))
    } else {
        let u = kernel_transform::<T>(w, g.out_channels, g.in_channels);
        run::<T>(g, x, Products::Gemm(&u))
    }
}

/// [`winograd_grad_input`] with algorithm `T`.
fn grad_input<T: Tiling>(g: &ConvGeometry, dy: &[f32], w: &[f32]) -> Vec<f32> {
    assert!(is_3x3_same(g) && crate::simd::avx512());
    let gt = ConvGeometry {
        in_channels: g.out_channels,
        out_channels: g.in_channels,
        ..*g
    };
    if blocked(&gt) {
        let flipped = flip_transpose(w, g.out_channels, g.in_channels, 3);
        let u = kernel_transform_blocked::<T>(&flipped, g.in_channels, g.out_channels);
        run::<T>(&gt, dy, Products::Blocked(&u))
    } else {
        let u = T::flipped_kernel_transform(w, g.out_channels, g.in_channels);
        run::<T>(&gt, dy, Products::Gemm(&u))
    }
}

/// [`winograd_grad_weight`] with algorithm `T`.
///
/// The gradient of the Winograd forward pass, which equals the convolution for every `w`:
/// `dU_ξ (O × C) = Σ_t dM_ξ[·, t] V_ξ[·, t]ᵀ` with `dM = A dY Aᵀ` per output tile (zero past the
/// map's edge) and `V = Bᵀ d B` as in the forward pass, then `dW = Gᵀ dU G`: one GEMM (or
/// 16 × 16 block reduction) per `ξ` over tiles instead of one over `9 ×` as many im2col rows.
/// Chunks are grouped into at most [`MAX_GROUPS`] groups, fewer for wide layers
/// ([`PARTIAL_VALUES`]; shape-determined); each group accumulates its chunks in order and the
/// partials are summed in group order, so the result does not depend on the thread count.
fn grad_weight<T: Tiling>(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    assert!(is_3x3_same(g) && crate::simd::avx512());
    let (cin, cout) = (g.in_channels, g.out_channels);
    let ipc = images_per_chunk::<T>(g);
    let chunks = g.batch.div_ceil(ipc);
    // Fewer partials for wide layers: a 512-channel layer's dU is 16–36 MiB, and summing eight
    // of them cost more than the parallelism beyond two groups gained. A power of two, so that
    // the groups divide evenly among 2, 4 or 8 threads (three groups of a 128-channel F(4×4)
    // layer kept one of two threads idle for a third of the pass).
    let max_groups = prev_power_of_two(PARTIAL_VALUES / (T::XI * cout * cin)).clamp(2, MAX_GROUPS);
    let per_group = chunks.div_ceil(max_groups);
    let groups = chunks.div_ceil(per_group);
    // One partial per group, lent by this thread's pool (each is overwritten by its group's
    // first chunk, so none is zeroed).
    let mut partials: Vec<ScratchBuf> = (0..groups)
        .map(|_| ScratchBuf::take(T::XI * cout * cin))
        .collect();
    partials.par_iter_mut().enumerate().for_each(|(group, du)| {
        let first = group * per_group;
        for chunk in first..((group + 1) * per_group).min(chunks) {
            let img0 = chunk * ipc;
            let n = ipc.min(g.batch - img0);
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512F was asserted above; the ranges are whole images of `g`.
            unsafe {
                avx512::grad_weight_chunk::<T>(g, img0, n, x, dy, du, chunk > first)
            };
        }
    });
    let mut dw = par_zeros(cout * cin * 9);
    dw.par_chunks_mut(cin * 9).enumerate().for_each(|(o, dwo)| {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F was asserted above.
        unsafe {
            avx512::kernel_adjoint_row::<T>(&partials, o, cin, dwo)
        }
    });
    dw
}

/// The largest power of two not above `n` (1 for `n` ≤ 1).
fn prev_power_of_two(n: usize) -> usize {
    if n <= 1 {
        1
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

/// The convolution of `x` under geometry `g` with the kernel whose transform `products` holds.
fn run<T: Tiling>(g: &ConvGeometry, x: &[f32], products: Products<'_>) -> Vec<f32> {
    let ipc = images_per_chunk::<T>(g);
    let in_img = g.in_channels * g.in_pixels();
    let out_img = g.out_channels * g.out_pixels();
    let parallel = g.batch.div_ceil(ipc) < rayon::current_num_threads();
    let kernel = |k: usize, y_chunk: &mut [f32]| {
        let images = y_chunk.len() / out_img;
        let x_chunk = &x[k * ipc * in_img..][..images * in_img];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the callers asserted AVX-512F; the chunks are whole images of `g`.
        unsafe {
            avx512::chunk::<T>(g, products, x_chunk, y_chunk, parallel)
        };
    };
    // SAFETY: the output transform stores every position of every output channel of the chunk
    // (each tile's in-bounds values) and reads none.
    unsafe { par_overwrite_chunks(g.batch * out_img, ipc * out_img, kernel) }
}

/// The `XI` GEMMs of one chunk: `m[ξ]` (`O × T`, row-major) `= U_ξ · V_ξ`, with `V_ξ` stored
/// tile-major (`T × c16`) in `v`.
#[allow(clippy::too_many_arguments)]
fn chunk_gemms<T: Tiling>(
    g: &ConvGeometry,
    u: &[f32],
    tiles: usize,
    c16: usize,
    v: &[f32],
    m: &mut [f32],
    parallel: bool,
) {
    let (cin, cout) = (g.in_channels, g.out_channels);
    // The GEMMs are independent: with fewer chunks than threads (a single image being scored)
    // they run in parallel; each is still computed whole by one thread, so the results do not
    // change.
    let one = |xi: usize, dst: &mut [f32]| {
        // U_ξ[o][c] = u[o·XI·C + ξ·C + c].
        let lhs = MatRef {
            data: &u[xi * cin..],
            row_stride: T::XI * cin,
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
    let m = &mut m[..T::XI * sm];
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

    use super::{LANES, MAX_XI, Products, Tiling, chunk_gemms, tile_grid, xi_stride};
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
    pub(super) unsafe fn gather_taps(
        src: &[f32],
        stride: usize,
        lanes: usize,
    ) -> [[f32; LANES]; 9] {
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

    /// One output channel's kernels `wo` (`C × 9`) → `uo` (`XI × C`), 16 input channels at a
    /// time.
    ///
    /// # Safety
    /// AVX-512F must be available.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn kernel_row<T: Tiling>(wo: &[f32], uo: &mut [f32]) {
        let cin = wo.len() / 9;
        let mut u = [[0.0f32; LANES]; MAX_XI];
        for c0 in (0..cin).step_by(LANES) {
            let cn = (cin - c0).min(LANES);
            // SAFETY: AVX-512F (caller); channels `c0..c0 + cn` lie in `wo`.
            let g = unsafe { gather_taps(&wo[c0 * 9..], 9, cn) };
            T::kernel_lanes(&g, &mut u);
            for (xi, v) in u.iter().take(T::XI).enumerate() {
                uo[xi * cin + c0..][..cn].copy_from_slice(&v[..cn]);
            }
        }
    }

    /// `dW[o][c] = Gᵀ dU[o][c] G` for one output channel, `dU` being the sum of the group partials
    /// (`[o][ξ][c]` each) in group order; 16 input channels at a time.
    ///
    /// # Safety
    /// AVX-512F must be available.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn kernel_adjoint_row<T: Tiling>(
        partials: &[ScratchBuf],
        o: usize,
        cin: usize,
        dwo: &mut [f32],
    ) {
        let mut z = [[0.0f32; LANES]; MAX_XI];
        let z = &mut z[..T::XI];
        for c0 in (0..cin).step_by(LANES) {
            let cn = (cin - c0).min(LANES);
            z.fill([0.0; LANES]);
            for p in partials {
                for (xi, zx) in z.iter_mut().enumerate() {
                    let src = &p[(o * T::XI + xi) * cin + c0..][..cn];
                    for (a, b) in zx.iter_mut().zip(src) {
                        *a += *b;
                    }
                }
            }
            for (tap, vals) in T::kernel_adjoint_lanes(z).iter().enumerate() {
                for ci in 0..cn {
                    dwo[(c0 + ci) * 9 + tap] = vals[ci];
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
        /// Outputs per tile side.
        pub(super) m: usize,
        /// Grid row length in cells: `m·tw + 2`.
        pub(super) pw: usize,
        /// Tiles in the chunk.
        pub(super) tiles: usize,
    }

    impl ChunkShape {
        pub(super) fn new<T: Tiling>(g: &ConvGeometry, images: usize) -> Self {
            let (th, tw) = tile_grid::<T>(g);
            Self {
                h: g.height,
                w: g.width,
                th,
                tw,
                m: T::M,
                pw: T::M * tw + 2,
                tiles: images * th * tw,
            }
        }

        /// Values in the grid: `(m·th + 2)·(m·tw + 2)` cells of `c16` channels.
        pub(super) fn grid_len(&self, c16: usize) -> usize {
            (self.m * self.th + 2) * self.pw * c16
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
    /// channels `c0 ..`, `base` being the grid offset of its input patch's corner.
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
                        tile(grid, (s.m * (ti * s.pw + j)) * c16 + c0, t, c0);
                    }
                }
            }
        }
    }

    /// Which per-tile transform [`transform_tiles`] applies.
    #[derive(Clone, Copy, Debug)]
    pub(super) enum TileTransform {
        /// `V = Bᵀ d B` of the input patches ([`Tiling::input_tile`]).
        Input,
        /// `dM = A dY Aᵀ` of the output-gradient tiles, the adjoint of the output transform
        /// ([`Tiling::output_adjoint_tile`]).
        OutputAdjoint,
    }

    /// `transform` of every tile and 16-channel group of `images` (`n × channels × H × W`):
    /// `dst[ξ][t][c]` (`c16` channels per row).
    ///
    /// # Safety
    /// AVX-512F must be available; `dst` holds `XI·xi_stride(T·c16)` values.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn transform_tiles<T: Tiling>(
        transform: TileTransform,
        s: &ChunkShape,
        images: &[f32],
        (channels, c16): (usize, usize),
        grid: &mut [f32],
        dst: &mut [f32],
    ) {
        let stride = xi_stride(s.tiles * c16);
        assert_eq!(dst.len(), T::XI * stride);
        let (row, dp) = (s.pw * c16, dst.as_mut_ptr());
        // An output tile's values sit one cell right and below its input patch's corner.
        let corner = match transform {
            TileTransform::Input => 0,
            TileTransform::OutputAdjoint => row + c16,
        };
        for_each_group_tile(s, images, (channels, c16), grid, |grid, base, t, c0| {
            // SAFETY: an input patch's rows m·ti + a ≤ m·th + 1 and columns m·j + b ≤ m·tw + 1,
            // and an output tile's rows and columns one further (a, b < m), lie in the grid;
            // c0 + 16 ≤ c16, so every store `ξ·stride + t·c16 + c0 + 16 ≤ dst.len()`.
            unsafe {
                let (src, out) = (grid.as_ptr().add(base + corner), dp.add(t * c16 + c0));
                match transform {
                    TileTransform::Input => T::input_tile(src, row, c16, out, stride),
                    TileTransform::OutputAdjoint => {
                        T::output_adjoint_tile(src, row, c16, out, stride)
                    }
                }
            };
        });
    }

    /// Where each tile of a chunk puts its top-left output (for output channel 0, in the chunk's
    /// NCHW images of `cout` channels), and how many of its rows and columns lie inside the map.
    fn tile_offsets(s: &ChunkShape, cout: usize) -> Vec<(usize, usize, usize)> {
        let (h, w, mt) = (s.h, s.w, s.m);
        let mut offsets = Vec::with_capacity(s.tiles);
        for img in 0..s.tiles / (s.th * s.tw) {
            for ti in 0..s.th {
                for j in 0..s.tw {
                    let at = img * cout * h * w + mt * (ti * w + j);
                    offsets.push((at, (h - mt * ti).min(mt), (w - mt * j).min(mt)));
                }
            }
        }
        offsets
    }

    /// Stores one tile's outputs `vals` (row-major in lanes `a·m + b`) at `y + at + a·w + b` for
    /// the tile's `rows × cols` in-map outputs: one masked store per row.
    ///
    /// # Safety
    /// AVX-512F must be available; those positions must lie in the allocation `y` points into.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store_tile(
        y: *mut f32,
        (at, rows, cols): (usize, usize, usize),
        (w, mt): (usize, usize),
        vals: __m512,
    ) {
        for a in 0..rows {
            // Row `a`'s lanes `a·m .. a·m + cols` land at `at + a·w ..`: a store through a base
            // `a·m` values lower, masked to those lanes. The base may point before the output
            // (wrapping arithmetic, never dereferenced).
            let k = (u32::from(mask(cols)) << (a * mt)) as __mmask16;
            let base = y.wrapping_add(at + a * w).wrapping_sub(a * mt);
            // SAFETY: only the stored positions are accessed (caller's contract).
            unsafe { _mm512_mask_storeu_ps(base, k, vals) };
        }
    }

    /// `Y = Aᵀ M A` of every tile from `m[ξ][o][t]` (16 tiles at a time), stored into the
    /// chunk's NCHW output.
    ///
    /// # Safety
    /// AVX-512F must be available; `m` holds `XI·xi_stride(O·T)` values and `y_chunk` the chunk's
    /// images.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn output_transform<T: Tiling>(
        s: &ChunkShape,
        m: &[f32],
        cout: usize,
        y_chunk: &mut [f32],
    ) {
        let (h, w, tiles) = (s.h, s.w, s.tiles);
        let sm = xi_stride(cout * tiles);
        assert_eq!(m.len(), T::XI * sm);
        assert_eq!(y_chunk.len() * s.th * s.tw, tiles * cout * h * w);
        let offsets = tile_offsets(s, cout);
        let (mp, yp) = (m.as_ptr(), y_chunk.as_mut_ptr());
        for o in 0..cout {
            for t0 in (0..tiles).step_by(LANES) {
                let lanes = (tiles - t0).min(LANES);
                // SAFETY: the masked loads read `lanes` values of row `o` of each M_ξ.
                let out = unsafe { T::output_tile(mp.add(o * tiles + t0), sm, mask(lanes)) };
                // One vector per tile, its outputs row-major.
                let per_tile = transpose16(out);
                for (l, vals) in per_tile.iter().enumerate().take(lanes) {
                    let (at, rows, cols) = offsets[t0 + l];
                    // SAFETY: the tile's in-map outputs of channel `o` lie in `y_chunk`
                    // (asserted sizes).
                    unsafe { store_tile(yp, (at + o * h * w, rows, cols), (w, s.m), *vals) };
                }
            }
        }
    }

    /// `Y = Aᵀ M A` of every tile from `m[ξ][t][o16]` (16 output channels at a time), stored
    /// into the chunk's NCHW output.
    ///
    /// # Safety
    /// AVX-512F must be available; `m` holds `XI·xi_stride(T·o16)` values and `y_chunk` the
    /// chunk's images.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn output_transform_blocked<T: Tiling>(
        s: &ChunkShape,
        m: &[f32],
        (cout, o16): (usize, usize),
        y_chunk: &mut [f32],
    ) {
        let (h, w, tiles) = (s.h, s.w, s.tiles);
        let sm = xi_stride(tiles * o16);
        assert_eq!(m.len(), T::XI * sm);
        assert_eq!(y_chunk.len() * s.th * s.tw, tiles * cout * h * w);
        let (mp, yp) = (m.as_ptr(), y_chunk.as_mut_ptr());
        if s.m == 4 {
            // SAFETY: as this function's (same sizes, asserted above).
            unsafe { output_rows_of_four::<T>(s, mp, (cout, o16), yp) };
            return;
        }
        let offsets = tile_offsets(s, cout);
        for (t, &(at, rows, cols)) in offsets.iter().enumerate() {
            for o0 in (0..cout).step_by(LANES) {
                // SAFETY: the loads read 16 channels of tile `t` of each M_ξ.
                let out = unsafe { T::output_tile(mp.add(t * o16 + o0), sm, 0xffff) };
                // One vector per output channel, the tile's outputs row-major.
                let per_channel = transpose16(out);
                for (l, vals) in per_channel.iter().enumerate().take(cout - o0) {
                    // SAFETY: the tile's in-map outputs of channel `o0 + l` lie in `y_chunk`
                    // (asserted sizes).
                    unsafe { store_tile(yp, (at + (o0 + l) * h * w, rows, cols), (w, s.m), *vals) };
                }
            }
        }
    }

    /// [`output_transform_blocked`] for 4×4 output tiles: four neighbouring tiles of a tile row
    /// give each output row 16 contiguous values, so each channel's rows are stored as whole
    /// vectors (a 4 × 4 transpose of 128-bit lanes) instead of four values per store.
    ///
    /// # Safety
    /// AVX-512F must be available; `m` and `y` as in [`output_transform_blocked`], `s.m == 4`.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f")]
    unsafe fn output_rows_of_four<T: Tiling>(
        s: &ChunkShape,
        m: *const f32,
        (cout, o16): (usize, usize),
        y: *mut f32,
    ) {
        assert_eq!(s.m, 4);
        let (h, w) = (s.h, s.w);
        let sm = xi_stride(s.tiles * o16);
        for img in 0..s.tiles / (s.th * s.tw) {
            for ti in 0..s.th {
                let rows = (h - 4 * ti).min(4);
                for j0 in (0..s.tw).step_by(4) {
                    let group = (s.tw - j0).min(4);
                    let t0 = (img * s.th + ti) * s.tw + j0;
                    let cols = mask((w - 4 * j0).min(LANES));
                    let at = img * cout * h * w + 4 * (ti * w + j0);
                    for o0 in (0..cout).step_by(LANES) {
                        let mut per = [[_mm512_setzero_ps(); LANES]; 4];
                        for (g, per) in per.iter_mut().enumerate().take(group) {
                            // SAFETY: the loads read 16 channels of tile t0 + g of each M_ξ.
                            *per = transpose16(unsafe {
                                T::output_tile(m.add((t0 + g) * o16 + o0), sm, 0xffff)
                            });
                        }
                        for l in 0..(cout - o0).min(LANES) {
                            let (p0, p1, p2, p3) = (per[0][l], per[1][l], per[2][l], per[3][l]);
                            let x0 = _mm512_shuffle_f32x4::<0x44>(p0, p1);
                            let x1 = _mm512_shuffle_f32x4::<0xee>(p0, p1);
                            let y0 = _mm512_shuffle_f32x4::<0x44>(p2, p3);
                            let y1 = _mm512_shuffle_f32x4::<0xee>(p2, p3);
                            let out_rows = [
                                _mm512_shuffle_f32x4::<0x88>(x0, y0),
                                _mm512_shuffle_f32x4::<0xdd>(x0, y0),
                                _mm512_shuffle_f32x4::<0x88>(x1, y1),
                                _mm512_shuffle_f32x4::<0xdd>(x1, y1),
                            ];
                            for (a, row) in out_rows.iter().enumerate().take(rows) {
                                // SAFETY: row 4·ti + a < H, columns 4·j0 .. 4·j0 + cols < W of
                                // channel o0 + l of image `img`: inside the chunk's output.
                                unsafe {
                                    _mm512_mask_storeu_ps(
                                        y.add(at + (o0 + l) * h * w + a * w),
                                        cols,
                                        *row,
                                    )
                                };
                            }
                        }
                    }
                }
            }
        }
    }

    /// `N` tiles × 16 output channels of one `M_ξ` (`m[t][o16]`, from channel `o0` and tile
    /// `t0`): `M[t][o] = Σ_c V[t][c]·U[c][o]`, the 16 × 16 blocks of `U` (`u[c][o16]`) held in
    /// registers, each `V` value broadcast, input channels summed in order.
    ///
    /// # Safety
    /// AVX-512F must be available; `u` holds `c16` rows of `o16`, `v` and `m` tiles `t0 .. t0 + N`
    /// of `c16` and `o16` values.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn product_block<const N: usize>(
        (u, v, m): (*const f32, *const f32, *mut f32),
        (c16, o16): (usize, usize),
        (o0, t0): (usize, usize),
    ) {
        let mut acc = [_mm512_setzero_ps(); N];
        for c0 in (0..c16).step_by(LANES) {
            // SAFETY: rows c0 .. c0 + 16 of `u` hold channels o0 .. o0 + 16 (caller's contract).
            let uc: [__m512; LANES] =
                std::array::from_fn(|c| unsafe { _mm512_loadu_ps(u.add((c0 + c) * o16 + o0)) });
            for (c, uc) in uc.iter().enumerate() {
                for (t, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: tile t0 + t, channel c0 + c lies in `v` (caller's contract).
                    let vt = unsafe { *v.add((t0 + t) * c16 + c0 + c) };
                    *acc = _mm512_fmadd_ps(_mm512_set1_ps(vt), *uc, *acc);
                }
            }
        }
        for (t, acc) in acc.iter().enumerate() {
            // SAFETY: tile t0 + t, channels o0 .. o0 + 16 lie in `m` (caller's contract).
            unsafe { _mm512_storeu_ps(m.add((t0 + t) * o16 + o0), *acc) };
        }
    }

    /// The per-`ξ` products of one chunk as [`Products::Blocked`]: `m[ξ][t][o16]` from `u`
    /// (`[ξ][c16][o16]`) and `v` (`[ξ][t][c16]`), 8 tiles per register block.
    ///
    /// # Safety
    /// AVX-512F must be available.
    #[target_feature(enable = "avx512f")]
    unsafe fn blocked_products<T: Tiling>(
        u: &[f32],
        v: &[f32],
        m: &mut [f32],
        (tiles, c16, o16): (usize, usize, usize),
    ) {
        const BLOCK: usize = 8;
        let (sv, sm) = (xi_stride(tiles * c16), xi_stride(tiles * o16));
        assert!(u.len() >= T::XI * c16 * o16 && v.len() >= T::XI * sv && m.len() >= T::XI * sm);
        for xi in 0..T::XI {
            let ptrs = (
                u[xi * c16 * o16..].as_ptr(),
                v[xi * sv..].as_ptr(),
                m[xi * sm..].as_mut_ptr(),
            );
            for o0 in (0..o16).step_by(LANES) {
                let full = tiles - tiles % BLOCK;
                for t0 in (0..full).step_by(BLOCK) {
                    // SAFETY: the asserted sizes cover tiles t0 .. t0 + 8 < tiles.
                    unsafe { product_block::<BLOCK>(ptrs, (c16, o16), (o0, t0)) };
                }
                for t0 in full..tiles {
                    // SAFETY: as above, one tile.
                    unsafe { product_block::<1>(ptrs, (c16, o16), (o0, t0)) };
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
    pub(super) unsafe fn grad_weight_chunk<T: Tiling>(
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
        let s = ChunkShape::new::<T>(g, n);
        let (c16, o16) = (cin.next_multiple_of(LANES), cout.next_multiple_of(LANES));
        let tiles = s.tiles;
        let mut v = ScratchBuf::take(T::XI * xi_stride(tiles * c16));
        let mut dm = ScratchBuf::take(T::XI * xi_stride(tiles * o16));
        let mut grid = ScratchBuf::take(s.grid_len(c16.max(o16)));
        // SAFETY: AVX-512F is available (caller); the sizes are asserted inside.
        unsafe {
            transform_tiles::<T>(
                TileTransform::Input,
                &s,
                &x[img0 * in_img..][..n * in_img],
                (cin, c16),
                &mut grid,
                &mut v,
            );
            transform_tiles::<T>(
                TileTransform::OutputAdjoint,
                &s,
                &dy[img0 * out_img..][..n * out_img],
                (cout, o16),
                &mut grid,
                &mut dm,
            );
        }
        for xi in 0..T::XI {
            let dm = &dm[xi * xi_stride(tiles * o16)..][..tiles * o16];
            let v = &v[xi * xi_stride(tiles * c16)..][..tiles * c16];
            if o16 == LANES && c16 == LANES {
                // SAFETY: AVX-512F (caller); the sizes are asserted inside.
                unsafe { tile_sum_block((cin, cout), (xi, T::XI), tiles, (dm, v), du, accumulate) };
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
                T::XI * cin,
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
    /// `C` zero), `du` is `O × XI × C` with `O, C ≤ 16`.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile_sum_block(
        (cin, cout): (usize, usize),
        (xi, xis): (usize, usize),
        tiles: usize,
        (dm, v): (&[f32], &[f32]),
        du: &mut [f32],
        accumulate: bool,
    ) {
        assert!(cout <= LANES && cin <= LANES);
        assert!(dm.len() >= tiles * LANES && v.len() >= tiles * LANES);
        // Row `o` of dU_ξ: the `cin` values from `o·XI·C + ξ·C` (`XI = xis`).
        let row = |o: usize| o * xis * cin + xi * cin..o * xis * cin + (xi + 1) * cin;
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

    /// One forward (or input-gradient) chunk: input transform, products, output transform,
    /// with `V`, `M` and the grid lent by this thread's scratch pool.
    ///
    /// # Safety
    /// AVX-512F must be available. `x_chunk` holds `n` whole input images and `y_chunk` `n`
    /// whole output images of `g`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn chunk<T: Tiling>(
        g: &ConvGeometry,
        products: Products<'_>,
        x_chunk: &[f32],
        y_chunk: &mut [f32],
        parallel: bool,
    ) {
        let (cin, cout) = (g.in_channels, g.out_channels);
        let s = ChunkShape::new::<T>(g, x_chunk.len() / (cin * g.in_pixels()));
        let (c16, o16) = (cin.next_multiple_of(LANES), cout.next_multiple_of(LANES));
        let mut v = ScratchBuf::take(T::XI * xi_stride(s.tiles * c16));
        let mut grid = ScratchBuf::take(s.grid_len(c16));
        // SAFETY: AVX-512F is available (caller); the sizes are asserted inside.
        unsafe {
            transform_tiles::<T>(
                TileTransform::Input,
                &s,
                x_chunk,
                (cin, c16),
                &mut grid,
                &mut v,
            );
            match products {
                Products::Gemm(u) => {
                    let mut m = ScratchBuf::take(T::XI * xi_stride(cout * s.tiles));
                    chunk_gemms::<T>(g, u, s.tiles, c16, &v, &mut m, parallel);
                    output_transform::<T>(&s, &m, cout, y_chunk);
                }
                Products::Blocked(u) => {
                    let mut m = ScratchBuf::take(T::XI * xi_stride(s.tiles * o16));
                    blocked_products::<T>(u, &v, &mut m, (s.tiles, c16, o16));
                    output_transform_blocked::<T>(&s, &m, (cout, o16), y_chunk);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::f2x3::FLIP;
    use super::*;
    use crate::conv_backward::conv_backward;
    use crate::conv_forward::im2col_conv;
    use crate::direct_conv::flip_transpose;

    fn pattern(len: usize, mul: usize, modulus: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * mul) % modulus) as f32 / (modulus / 2) as f32 - 1.0)
            .collect()
    }

    /// `|got − want| ≤ tol · (1 + |want|) · √terms` at every position: rounding error grows with
    /// the square root of the number of terms summed (values of `pattern` are in [−1, 1]).
    fn assert_close(got: &[f32], want: &[f32], terms: usize, tol: f32, what: &str) {
        assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= tol * (1.0 + b.abs()) * (terms as f32).sqrt(),
                "{what} at {i}: {a} vs {b}"
            );
        }
    }

    /// Rounding tolerance per algorithm: F(4×4, 3×3)'s transforms scale by up to 8 and 1/24,
    /// F(2×2, 3×3)'s only add and halve.
    fn tolerance<T: Tiling>() -> f32 {
        if T::M == 2 { 1e-5 } else { 1e-4 }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The same bits on a one-thread and a four-thread pool, both algorithms: forward, input
    /// gradient and weight gradient of a single image (its GEMMs run in parallel) and of a batch
    /// (several chunks and weight-gradient groups), through the `gemm` products (32 → 48
    /// channels) and the blocked ones (32 → 32).
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        if !crate::simd::avx512() {
            eprintln!("no AVX-512F: Winograd convolution not tested");
            return;
        }
        fn check<T: Tiling>(n: usize, c: usize, o: usize) {
            let (h, w) = (14, 14);
            let g = ConvGeometry::new(&[n, c, h, w], &[o, c, 3, 3], 1, 1).unwrap();
            let x = pattern(n * c * h * w, 37, 101);
            let wt = pattern(o * c * 9, 53, 97);
            let dy = pattern(n * o * h * w, 29, 89);
            let on = |threads: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| {
                        [
                            conv::<T>(&g, &x, &wt),
                            grad_input::<T>(&g, &dy, &wt),
                            grad_weight::<T>(&g, &x, &dy),
                        ]
                    })
            };
            let (serial, parallel) = (on(1), on(4));
            for (pass, (a, b)) in serial.iter().zip(&parallel).enumerate() {
                assert_eq!(bits(a), bits(b), "m = {}, {g:?}, pass {pass}", T::M);
            }
        }
        for (n, c, o) in [(1, 32, 48), (1, 32, 32), (12, 32, 48), (12, 32, 32)] {
            check::<F2x3>(n, c, o);
            check::<F4x3>(n, c, o);
        }
    }

    /// The weight gradient's group count is a power of two: 3 groups' worth of partial budget
    /// gives 2.
    #[test]
    fn previous_power_of_two() {
        for (n, want) in [
            (0, 1),
            (1, 1),
            (2, 2),
            (3, 2),
            (7, 4),
            (8, 8),
            (9, 8),
            (14, 8),
        ] {
            assert_eq!(prev_power_of_two(n), want, "n = {n}");
        }
    }

    /// Dispatch boundaries: F(4×4, 3×3) exactly on maps larger than 4×4 in either direction,
    /// blocked products exactly when both channel counts round up to at most 32, Winograd's
    /// forward from 32 and its weight gradient from 16 channels.
    #[test]
    fn dispatch_boundaries() {
        let geometry = |c: usize, o: usize, h: usize, w: usize| {
            ConvGeometry::new(&[2, c, h, w], &[o, c, 3, 3], 1, 1).unwrap()
        };
        assert_eq!(tiling_for(&geometry(64, 64, 4, 4)), Algorithm::F2x3);
        assert_eq!(tiling_for(&geometry(64, 64, 5, 4)), Algorithm::F4x3);
        assert_eq!(tiling_for(&geometry(64, 64, 4, 8)), Algorithm::F4x3);
        assert!(blocked(&geometry(32, 32, 8, 8)));
        assert!(blocked(&geometry(20, 17, 8, 8)));
        assert!(!blocked(&geometry(33, 32, 8, 8)));
        assert!(!blocked(&geometry(32, 48, 8, 8)));
        if crate::simd::avx512() && std::env::var_os("CONAD_NO_WINOGRAD").is_none() {
            assert!(applies(&geometry(32, 32, 14, 14)));
            assert!(!applies(&geometry(16, 32, 14, 14)));
            assert!(applies_grad_weight(&geometry(16, 16, 14, 14)));
            assert!(!applies_grad_weight(&geometry(8, 16, 14, 14)));
        }
    }

    /// Both algorithms equal the im2col + GEMM convolution, forward and input gradient, through
    /// both kinds of products (≤ 32 and > 32 channels), on odd and even, square and non-square
    /// maps (partial tiles on the right and bottom edges, maps smaller than one tile, maps
    /// narrower than a tile over several tile rows, tile rows of more than four tiles), a 1×1 map,
    /// batch 1, ragged chunks and channel counts that are not multiples of 16; `conv_backward`
    /// takes the dispatched algorithm.
    #[test]
    fn winograd_matches_im2col_convolution_and_its_input_gradient() {
        if !crate::simd::avx512() {
            eprintln!("no AVX-512F: Winograd convolution not tested");
            return;
        }
        fn check<T: Tiling>() {
            for &(n, c, o, h, w) in &[
                (2, 16, 16, 8, 8),
                (3, 20, 17, 7, 7),
                (1, 16, 32, 5, 9),
                (5, 33, 16, 4, 4),
                (2, 16, 18, 1, 1),
                (1, 16, 16, 14, 14),
                (9, 24, 16, 3, 6),
                (3, 64, 72, 7, 6),
                (4, 16, 16, 10, 13),
                (2, 32, 16, 9, 23),
                (2, 32, 32, 12, 12),
                (2, 16, 16, 3, 1),
                (2, 40, 40, 8, 3),
            ] {
                let g = ConvGeometry::new(&[n, c, h, w], &[o, c, 3, 3], 1, 1).unwrap();
                let x = pattern(n * c * h * w, 37, 101);
                let wt = pattern(o * c * 9, 53, 97);
                let what = format!("m = {}, {g:?}", T::M);
                let got = conv::<T>(&g, &x, &wt);
                let want = im2col_conv(&g, &x, &wt);
                assert_close(&got, &want, c, tolerance::<T>(), &format!("{what} forward"));
                let dy = pattern(n * o * h * w, 29, 89);
                let gt = ConvGeometry::new(&[n, o, h, w], &[c, o, 3, 3], 1, 1).unwrap();
                let want = im2col_conv(&gt, &dy, &flip_transpose(&wt, o, c, 3));
                let got = grad_input::<T>(&g, &dy, &wt);
                assert_close(
                    &got,
                    &want,
                    o,
                    tolerance::<T>(),
                    &format!("{what} grad-input"),
                );
            }
        }
        check::<F2x3>();
        check::<F4x3>();
        let g = ConvGeometry::new(&[3, 64, 7, 6], &[72, 64, 3, 3], 1, 1).unwrap();
        let (x, wt) = (pattern(3 * 64 * 42, 37, 101), pattern(72 * 64 * 9, 53, 97));
        let dy = pattern(3 * 72 * 42, 29, 89);
        if applies(&g) {
            let (dx, _) = conv_backward(&g, &x, &wt, &dy, true, false);
            assert_eq!(
                bits(&dx.unwrap()),
                bits(&winograd_grad_input(&g, &dy, &wt)),
                "conv_backward takes the Winograd input gradient"
            );
        }
    }

    /// `dW` of a 3×3 "same" layer in f64, and per weight `Σ|x·dy|`, the scale of a float
    /// implementation's rounding error.
    fn grad_weight_f64(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let (n, c, o, h, w) = (g.batch, g.in_channels, g.out_channels, g.height, g.width);
        let (mut dw, mut scale) = (vec![0.0f64; o * c * 9], vec![0.0f64; o * c * 9]);
        for b in 0..n {
            for oi in 0..o {
                for ci in 0..c {
                    for tap in 0..9 {
                        let (ky, kx) = (tap / 3, tap % 3);
                        let (mut sum, mut abs) = (0.0f64, 0.0f64);
                        for yy in (1usize.saturating_sub(ky))..h.min(h + 1 - ky) {
                            for xx in (1usize.saturating_sub(kx))..w.min(w + 1 - kx) {
                                let (iy, ix) = (yy + ky - 1, xx + kx - 1);
                                let p = f64::from(x[((b * c + ci) * h + iy) * w + ix])
                                    * f64::from(dy[((b * o + oi) * h + yy) * w + xx]);
                                sum += p;
                                abs += p.abs();
                            }
                        }
                        dw[(oi * c + ci) * 9 + tap] += sum;
                        scale[(oi * c + ci) * 9 + tap] += abs;
                    }
                }
            }
        }
        (dw, scale)
    }

    /// Both algorithms' weight gradient equals an f64 reference to within `tol · Σ|x·dy|` per
    /// weight — tight enough that one missed tile of one image (16 of the 100–8,700 products
    /// summed per weight here) fails — through the 16 × 16 block kernel (16 and fewer channels,
    /// ragged `O` and `C`) and the GEMM path, each with groups of one chunk (first chunk
    /// overwrites) and of several chunks (later chunks accumulate: for F(2×2) 20 or 10 one-image
    /// chunks in at most 8 groups, for F(4×4) the 10 one-image chunks of 29×30 and 32×32 maps),
    /// odd maps with partial tiles, 32×32 maps (F(2×2): 256 tiles a chunk, F(4×4): 64 — the
    /// `ξ` blocks' padded stride), and a 128-channel layer of ResNet-18 (F(4×4)'s group count
    /// rounded down to a power of two).
    #[test]
    fn winograd_grad_weight_matches_an_f64_reference() {
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
            (10, 32, 24, 29, 30),
            (10, 16, 16, 32, 32),
            (4, 128, 128, 16, 16),
        ] {
            let g = ConvGeometry::new(&[n, c, h, w], &[o, c, 3, 3], 1, 1).unwrap();
            let x = pattern(n * c * h * w, 37, 101);
            let dy = pattern(n * o * h * w, 29, 89);
            let (want, scale) = grad_weight_f64(&g, &x, &dy);
            for (m, got) in [
                (2, grad_weight::<F2x3>(&g, &x, &dy)),
                (4, grad_weight::<F4x3>(&g, &x, &dy)),
            ] {
                let tol = if m == 2 { 2e-6 } else { 2e-5 };
                for (i, ((got, want), scale)) in got.iter().zip(&want).zip(&scale).enumerate() {
                    let err = (f64::from(*got) - want).abs();
                    assert!(
                        err <= tol * scale,
                        "m = {m}, {g:?} grad-weight at {i}: {got} vs {want} (Σ|terms| {scale})"
                    );
                }
            }
        }
        let g = ConvGeometry::new(&[4, 32, 14, 14], &[24, 32, 3, 3], 1, 1).unwrap();
        let (x, dy) = (
            pattern(4 * 32 * 196, 37, 101),
            pattern(4 * 24 * 196, 29, 89),
        );
        if applies_grad_weight(&g) {
            let (_, dw) = conv_backward(&g, &x, &pattern(24 * 32 * 9, 53, 97), &dy, false, true);
            assert_eq!(
                bits(&dw.unwrap()),
                bits(&winograd_grad_weight(&g, &x, &dy)),
                "conv_backward takes the Winograd weight gradient"
            );
        }
    }

    /// The kernel transforms of a hand-computed kernel: `G g Gᵀ` for g = [[1,2,3],[4,5,6],[7,8,9]],
    /// placed at `U[o][ξ][c]` for a 2 × 17 weight (a ragged 16-channel block). F(2×2, 3×3): numpy
    /// `G @ g @ G.T` with G = [[1,0,0],[.5,.5,.5],[.5,-.5,.5],[0,0,1]]; F(4×4, 3×3): the same
    /// product in exact fractions (Python: `from fractions import Fraction`, G as in `f4x3`'s
    /// docs), rounded to f32.
    #[test]
    fn kernel_transform_matches_hand_computation() {
        if !crate::simd::avx512() {
            eprintln!("no AVX-512F: Winograd kernel transform not tested");
            return;
        }
        fn check<T: Tiling>(want: &[f64]) {
            let (o, c) = (2, 17);
            let mut w = vec![0.0f32; o * c * 9];
            for (i, v) in w[(c + 16) * 9..][..9].iter_mut().enumerate() {
                *v = (i + 1) as f32;
            }
            let u = kernel_transform::<T>(&w, o, c);
            for (xi, want) in want.iter().enumerate() {
                let got = u[(T::XI + xi) * c + 16];
                assert!(
                    (f64::from(got) - want).abs() <= 1e-6 * want.abs(),
                    "m = {}, ξ = {xi}: {got} vs {want}",
                    T::M
                );
            }
            assert_eq!(u.iter().filter(|v| **v != 0.0).count(), T::XI);
        }
        #[rustfmt::skip]
        check::<F2x3>(&[
            1.0, 3.0, 1.0, 3.0,
            6.0, 11.25, 3.75, 9.0,
            2.0, 3.75, 1.25, 3.0,
            7.0, 12.0, 4.0, 9.0,
        ]);
        #[rustfmt::skip]
        check::<F4x3>(&[
            1.0 / 16.0, -1.0 / 4.0, -1.0 / 12.0, 17.0 / 96.0, 3.0 / 32.0, 3.0 / 4.0,
            -1.0 / 2.0, 5.0 / 4.0, 5.0 / 12.0, -19.0 / 24.0, -3.0 / 8.0, -3.0,
            -1.0 / 6.0, 5.0 / 12.0, 5.0 / 36.0, -19.0 / 72.0, -1.0 / 8.0, -1.0,
            37.0 / 96.0, -11.0 / 12.0, -11.0 / 36.0, 329.0 / 576.0, 17.0 / 64.0, 17.0 / 8.0,
            7.0 / 32.0, -1.0 / 2.0, -1.0 / 6.0, 59.0 / 192.0, 9.0 / 64.0, 9.0 / 8.0,
            7.0 / 4.0, -4.0, -4.0 / 3.0, 59.0 / 24.0, 9.0 / 8.0, 9.0,
        ]);
    }

    /// `Gᵀ z G` is the adjoint of `G g Gᵀ`: `⟨G g Gᵀ, z⟩ = ⟨g, Gᵀ z G⟩` for 16 kernels and 16
    /// transformed gradients at once (a wrong coefficient or index in either breaks it).
    #[test]
    fn kernel_adjoint_is_the_transpose_of_the_kernel_transform() {
        fn check<T: Tiling>() {
            let mut g = [[0.0f32; LANES]; 9];
            let mut z = [[0.0f32; LANES]; MAX_XI];
            for (i, v) in g.iter_mut().flatten().enumerate() {
                *v = ((i * 37) % 101) as f32 / 50.0 - 1.0;
            }
            for (i, v) in z.iter_mut().take(T::XI).flatten().enumerate() {
                *v = ((i * 53) % 97) as f32 / 48.0 - 1.0;
            }
            let mut u = [[0.0f32; LANES]; MAX_XI];
            T::kernel_lanes(&g, &mut u);
            let dw = T::kernel_adjoint_lanes(&z);
            for l in 0..LANES {
                let lhs: f64 = (0..T::XI)
                    .map(|xi| f64::from(u[xi][l]) * f64::from(z[xi][l]))
                    .sum();
                let rhs: f64 = (0..9)
                    .map(|t| f64::from(g[t][l]) * f64::from(dw[t][l]))
                    .sum();
                assert!(
                    (lhs - rhs).abs() < 1e-5 * (1.0 + lhs.abs()),
                    "m = {}, lane {l}: {lhs} vs {rhs}",
                    T::M
                );
            }
        }
        check::<F2x3>();
        check::<F4x3>();
    }

    /// F(2×2, 3×3)'s input-gradient kernel transform is the forward's, transposed and permuted by
    /// `Q`, bit for bit — with ragged 16-channel blocks on both sides.
    #[test]
    fn flipped_kernel_transform_is_the_permuted_forward_transform() {
        if !crate::simd::avx512() {
            eprintln!("no AVX-512F: Winograd kernel transform not tested");
            return;
        }
        const XI: usize = F2x3::XI;
        for (o, c) in [(20, 35), (16, 16), (3, 50), (64, 1)] {
            let w = pattern(o * c * 9, 61, 103);
            let u = kernel_transform::<F2x3>(&w, o, c);
            let ut = F2x3::flipped_kernel_transform(&w, o, c);
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
