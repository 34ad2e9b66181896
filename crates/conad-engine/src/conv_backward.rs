//! Convolution backward pass. Stride-1 "same" layers take the input gradient as a forward-shaped
//! convolution of the output gradient with the flipped kernel (Winograd for wide 3×3 layers,
//! [`crate::winograd::winograd_grad_input`]); the weight gradient of 3×3 layers with at least 16
//! channels is [`crate::winograd::winograd_grad_weight`], and the remaining few-channel 3×3 layers
//! on wide maps (the stem) take the direct weight gradient of [`crate::direct_grad_weight`].
//! Everything else runs input and weight
//! gradients in one sweep over chunks of images, so a chunk's output gradient is gathered once
//! for both GEMMs.
//!
//! Chunks are grouped into at most [`crate::geometry::MAX_GROUPS`] groups (shape-determined);
//! groups run in parallel, each accumulating its own weight-gradient partial over its chunks in
//! order, and the partials are summed in group order — a fixed reduction tree, so the result is
//! bit-identical for any thread count.

use rayon::prelude::*;

use crate::bf16_conv;
use crate::conv_forward::conv_forward;
use crate::conv_grad_input::chunk_grad_input;
use crate::conv_grad_weight::chunk_grad_weight;
use crate::cpu_data::{par_fill_chunks_with, par_zeros};
use crate::direct_conv;
use crate::direct_grad_weight;
use crate::geometry::ConvGeometry;
use crate::matmul::MatRef;
use crate::scratch::ScratchBuf;
use crate::transpose::transpose;
use crate::winograd;

/// Gradients of `y = conv2d(x, w)` given `dy` (`N × O × Ho × Wo`, contiguous): returns
/// `(dx, dw)`, each `None` unless requested.
pub fn conv_backward(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    need_dx: bool,
    need_dw: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    crate::keep_activation_buffers();
    // Stride-1 "same" layers: the input gradient is the "same" convolution of dy with the
    // flipped, transposed kernel — the direct kernel on wide maps, an im2col GEMM of the forward
    // shape (k = O·k², no col2im) on small ones. The weight gradient of 3×3 layers with ≥ 16
    // channels is Winograd's, of the remaining few-channel 3×3 layers on wide maps the direct
    // kernel's; whatever is left runs through the im2col chunk loop.
    let mut dx = None;
    let mut dw = None;
    let mut need = (need_dx, need_dw);
    let bf16 = bf16_conv::selected(g);
    // In bf16 mode the flipped convolution below (`conv_forward`) takes the bf16 kernel.
    if need_dx && !bf16 && winograd::applies(g) {
        dx = Some(winograd::winograd_grad_input(g, dy, w));
        need.0 = false;
    } else if need_dx && g.is_same_stride1() {
        let gt = ConvGeometry {
            in_channels: g.out_channels,
            out_channels: g.in_channels,
            ..*g
        };
        let wt = direct_conv::flip_transpose(w, g.out_channels, g.in_channels, g.kernel);
        dx = Some(conv_forward(&gt, dy, &wt));
        need.0 = false;
    }
    if need_dw && bf16_conv::selected_grad_weight(g) {
        dw = Some(bf16_conv::bf16_grad_weight(g, x, dy));
        need.1 = false;
    } else if need_dw && winograd::applies_grad_weight(g) {
        dw = Some(winograd::winograd_grad_weight(g, x, dy));
        need.1 = false;
    } else if need_dw && direct_grad_weight::applies_grad_weight(g) {
        dw = Some(direct_grad_weight::direct_grad_weight(g, x, dy));
        need.1 = false;
    }
    if need.0 || need.1 {
        let (a, b) = im2col_backward(g, x, w, dy, need.0, need.1);
        dx = dx.or(a);
        dw = dw.or(b);
    }
    (dx, dw)
}

/// The weight gradient by im2col + GEMM (the reference for the direct kernel's tests).
#[cfg(test)]
pub(crate) fn im2col_grad_weight(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    im2col_backward(g, x, &[], dy, false, true)
        .1
        .unwrap_or_default()
}

/// The chunked im2col path: per chunk of images, grad-input GEMM + col2im and grad-weight GEMM.
fn im2col_backward(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    need_dx: bool,
    need_dw: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let (cout, kk, howo) = (g.out_channels, g.patch_len(), g.out_pixels());
    let in_img = g.in_channels * g.in_pixels();
    let out_img = cout * howo;
    let ipc = g.images_per_chunk();
    let group_imgs = ipc * g.chunks_per_group();
    let groups = g.batch.div_ceil(group_imgs);
    // One group of images: its input gradient into `dx_group` (when needed), its weight-gradient
    // partial returned.
    let group = |gi: usize, dx_group: &mut [f32]| -> Vec<f32> {
        let mut dw_acc = par_zeros(if need_dw { kk * cout } else { 0 });
        let first_img = gi * group_imgs;
        let group_n = group_imgs.min(g.batch - first_img);
        let mut done = 0;
        while done < group_n {
            let n = ipc.min(group_n - done);
            let img0 = first_img + done;
            let ncols = n * howo;
            let dy_chunk = &dy[img0 * out_img..][..n * out_img];
            let mut dy_buf = None;
            let dy_mat = if n == 1 {
                MatRef::row_major(dy_chunk, howo)
            } else {
                let buf = dy_buf.insert(ScratchBuf::take(cout * ncols));
                for img in 0..n {
                    for co in 0..cout {
                        buf[co * ncols + img * howo..][..howo]
                            .copy_from_slice(&dy_chunk[(img * cout + co) * howo..][..howo]);
                    }
                }
                MatRef::row_major(buf, ncols)
            };
            if need_dx {
                let dx_chunk = &mut dx_group[done * in_img..][..n * in_img];
                chunk_grad_input(g, n, w, dy_mat, dx_chunk);
            }
            if need_dw {
                let x_chunk = &x[img0 * in_img..][..n * in_img];
                chunk_grad_weight(g, n, x_chunk, dy_mat, &mut dw_acc, done > 0);
            }
            done += n;
        }
        dw_acc
    };
    // The input gradient's groups are zeroed inside their own tasks (`par_fill_chunks_with`).
    let (dx, partials) = if need_dx {
        par_fill_chunks_with(g.batch * in_img, group_imgs * in_img, group)
    } else {
        let partials = (0..groups)
            .into_par_iter()
            .map(|gi| group(gi, &mut []))
            .collect();
        (Vec::new(), partials)
    };
    let dw = need_dw.then(|| {
        let mut sum = par_zeros(kk * cout);
        sum.par_chunks_mut(4096).enumerate().for_each(|(b, out)| {
            for p in &partials {
                for (o, v) in out.iter_mut().zip(&p[b * 4096..]) {
                    *o += *v;
                }
            }
        });
        // The accumulators hold dWᵀ (C·k² × O); the weight is O × C·k².
        let mut dw = par_zeros(cout * kk);
        transpose(&sum, kk, cout, &mut dw);
        dw
    });
    (need_dx.then_some(dx), dw)
}
