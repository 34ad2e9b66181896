//! Convolution weight gradient of one chunk: one packed GEMM that reduces over the chunk's
//! output pixels. Replaces candle's `conv2d` on transposed tensors (8–29 GF/s, with a dilated,
//! narrowed detour for strided convs; issue #4).
//!
//! Two operand layouts, chosen per shape by [`ConvGeometry::grad_weight_by_patches`] from
//! measurements on this machine (`cargo xtask bench conv`):
//! * [`GradWeightLayout::Columns`]: `dW (O × C·k²) (+)= dY (O × P) · colsᵀ` on a transposed view of
//!   the im2col matrix — best for the deeper layers (few pixels, long patches);
//! * [`GradWeightLayout::Patches`]: `dWᵀ (C·k² × O) (+)= patches (P × C·k²)ᵀ · dYᵀ (P × O)` with
//!   both operands transposed first — about 2× faster on the wide 32×32 maps of the first stage,
//!   where the `gemm` crate handles the transposed view poorly.

use crate::geometry::ConvGeometry;
use crate::im2col::im2col;
use crate::matmul::{MatRef, gemm_into};
use crate::transpose::transpose;

/// Which operand layout the weight-gradient GEMM uses (and so the layout of the accumulator).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradWeightLayout {
    /// Accumulate `dW` (`O × C·k²`) from `dY` and a transposed view of the im2col matrix.
    Columns,
    /// Accumulate `dWᵀ` (`C·k² × O`) from the transposed im2col matrix and `dYᵀ`.
    Patches,
}

/// Scratch buffers of [`chunk_grad_weight`], reused across chunks.
#[derive(Debug, Default)]
pub struct GradWeightScratch {
    cols: Vec<f32>,
    patches: Vec<f32>,
}

/// The chunk's output gradient in the layout the weight-gradient GEMM reads.
#[derive(Clone, Copy, Debug)]
pub enum OutputGrad<'a> {
    /// `dY` as an `O × n·HoWo` view ([`GradWeightLayout::Columns`]).
    ChannelMajor(MatRef<'a>),
    /// `dYᵀ`, row-major `n·HoWo × O` ([`GradWeightLayout::Patches`]).
    PixelMajor(&'a [f32]),
}

/// Adds (or, with `accumulate = false`, writes) the weight gradient of a chunk of `n` images
/// `x_chunk` (`n × C × H × W`) into `acc` — `dW` (`O × C·k²`) for a channel-major `dy`, `dWᵀ`
/// (`C·k² × O`) for a pixel-major one.
pub fn chunk_grad_weight(
    g: &ConvGeometry,
    n: usize,
    x_chunk: &[f32],
    dy: OutputGrad<'_>,
    acc: &mut [f32],
    accumulate: bool,
    scratch: &mut GradWeightScratch,
) {
    let (cout, kk) = (g.out_channels, g.patch_len());
    let ncols = n * g.out_pixels();
    let cols: &[f32] = if g.is_pointwise() && n == 1 {
        x_chunk
    } else {
        scratch.cols.resize(kk * ncols, 0.0);
        im2col(g, x_chunk, n, &mut scratch.cols);
        &scratch.cols
    };
    match dy {
        OutputGrad::ChannelMajor(dy) => gemm_into(
            cout,
            kk,
            ncols,
            acc,
            kk,
            1,
            accumulate,
            dy,
            MatRef::transposed(cols, ncols),
        ),
        OutputGrad::PixelMajor(dy_t) => {
            scratch.patches.resize(kk * ncols, 0.0);
            transpose(cols, kk, ncols, &mut scratch.patches);
            gemm_into(
                kk,
                cout,
                ncols,
                acc,
                cout,
                1,
                accumulate,
                MatRef::transposed(&scratch.patches, kk),
                MatRef::row_major(dy_t, cout),
            );
        }
    }
}
