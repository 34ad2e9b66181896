//! Convolution forward pass: per chunk of images, im2col then one packed GEMM
//! `Y_chunk (O × n·HoWo) = W (O × C·k²) · cols (C·k² × n·HoWo)`; a packed GEMM over wide chunks
//! runs close to the GEMM's own rate.
//! A 1×1, stride-1 convolution of a single-image chunk skips im2col; wide 3×3 "same" layers take
//! Winograd ([`crate::winograd`]) and other stride-1 "same" layers on wide maps the direct kernel
//! of [`crate::direct_conv`] instead.

use crate::cpu_data::par_overwrite_chunks;

use crate::bf16_conv;
use crate::direct_conv;
use crate::geometry::ConvGeometry;
use crate::im2col::columns;
use crate::matmul::{MatRef, gemm_into};
use crate::scratch::ScratchBuf;
use crate::winograd;

/// `y = conv2d(x, w)` for contiguous NCHW `x` and `O × C × k × k` `w`; returns `N × O × Ho × Wo`.
pub fn conv_forward(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    crate::keep_activation_buffers();
    if bf16_conv::selected(g) {
        return bf16_conv::bf16_conv(g, x, w);
    }
    if winograd::applies(g) {
        return winograd::winograd_conv(g, x, w);
    }
    if direct_conv::applies(g) {
        return direct_conv::direct_conv(g, x, w);
    }
    im2col_conv(g, x, w)
}

/// The im2col + GEMM forward pass (every geometry; the reference for the other kernels' tests).
pub(crate) fn im2col_conv(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    let (cout, kk, howo) = (g.out_channels, g.patch_len(), g.out_pixels());
    let in_img = g.in_channels * g.in_pixels();
    let out_img = cout * howo;
    let ipc = g.images_per_chunk();
    let kernel = |chunk: usize, y_chunk: &mut [f32]| {
        let n = y_chunk.len() / out_img;
        let x_chunk = &x[chunk * ipc * in_img..][..n * in_img];
        let ncols = n * howo;
        let mut cols_buf = None;
        let cols = columns(g, x_chunk, n, &mut cols_buf);
        let lhs = MatRef::row_major(w, kk);
        let rhs = MatRef::row_major(cols, ncols);
        if n == 1 {
            gemm_into(cout, ncols, kk, y_chunk, ncols, 1, false, lhs, rhs);
        } else {
            let mut out_buf = ScratchBuf::take(cout * ncols);
            gemm_into(cout, ncols, kk, &mut out_buf, ncols, 1, false, lhs, rhs);
            for img in 0..n {
                for co in 0..cout {
                    y_chunk[(img * cout + co) * howo..][..howo]
                        .copy_from_slice(&out_buf[co * ncols + img * howo..][..howo]);
                }
            }
        }
    };
    // SAFETY: the GEMM overwrites its `cout × ncols` destination (`accumulate = false`) and the
    // copies cover every image and channel of the chunk; nothing reads `y_chunk` first.
    unsafe { par_overwrite_chunks(g.batch * out_img, ipc * out_img, kernel) }
}
