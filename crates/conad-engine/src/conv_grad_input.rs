//! Convolution input gradient of one chunk: `dcols = Wᵀ · dY_chunk` (one packed GEMM), then
//! col2im (in place of candle's `conv_transpose2d`, a direct loop). Only strided layers come here:
//! stride-1 "same" layers (1×1 included) take the flipped-kernel convolution in
//! [`crate::conv_backward`].

use crate::geometry::ConvGeometry;
use crate::im2col::col2im_add;
use crate::matmul::{MatRef, gemm_into};
use crate::scratch::ScratchBuf;

/// Adds the input gradient of a chunk of `n` images to `dx_chunk` (`n × C × H × W`, zeroed by the
/// caller). `dy` is the chunk's output gradient as an `O × n·HoWo` matrix view; `w` the weight.
pub fn chunk_grad_input(
    g: &ConvGeometry,
    n: usize,
    w: &[f32],
    dy: MatRef<'_>,
    dx_chunk: &mut [f32],
) {
    let (cout, kk) = (g.out_channels, g.patch_len());
    let ncols = n * g.out_pixels();
    let wt = MatRef::transposed(w, kk);
    let mut dcols = ScratchBuf::take(kk * ncols);
    gemm_into(kk, ncols, cout, &mut dcols, ncols, 1, false, wt, dy);
    col2im_add(g, &dcols, n, dx_chunk);
}
