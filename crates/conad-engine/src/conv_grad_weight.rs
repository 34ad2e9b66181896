//! Convolution weight gradient of one chunk: one packed GEMM that reduces over the chunk's
//! output pixels (in place of candle's `conv2d` on transposed tensors, which takes a dilated,
//! narrowed detour for strided convolutions).
//!
//! The product is `dW (O × C·k²) (+)= dY (O × P) · colsᵀ (P × C·k²)` with both operands read in
//! place (the im2col matrix through a transposed view), written into an accumulator that holds
//! `dW` column-major — that is `dWᵀ`, `C·k² × O` row-major. The `gemm` crate runs this
//! orientation faster on ResNet-18's shapes than a row-major `dW`, and without the cost of first
//! transposing both operands (figures: `docs/engine.md`). [`crate::conv_backward`] transposes the
//! summed accumulator, `O·C·k²` values, once per call.

use crate::geometry::ConvGeometry;
use crate::im2col::columns;
use crate::matmul::{MatRef, gemm_into};

/// Adds (or, with `accumulate = false`, writes) the weight gradient of a chunk of `n` images
/// `x_chunk` (`n × C × H × W`) into `acc_t`, which holds `dWᵀ` (`C·k² × O`, row-major); `dy` is
/// the chunk's output gradient as an `O × n·HoWo` view.
pub fn chunk_grad_weight(
    g: &ConvGeometry,
    n: usize,
    x_chunk: &[f32],
    dy: MatRef<'_>,
    acc_t: &mut [f32],
    accumulate: bool,
) {
    let (cout, kk) = (g.out_channels, g.patch_len());
    let ncols = n * g.out_pixels();
    let mut cols_buf = None;
    let cols = columns(g, x_chunk, n, &mut cols_buf);
    gemm_into(
        cout,
        kk,
        ncols,
        acc_t,
        1,
        cout,
        accumulate,
        dy,
        MatRef::transposed(cols, ncols),
    );
}
