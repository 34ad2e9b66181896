//! Fast CPU training engine for conad: convolution and batch normalisation as candle custom ops
//! with their own forward and backward passes. Design rationale, history and measurements are in
//! `docs/engine.md`.
//!
//! * [`Conv2d`]: 3×3 stride-1 "same" layers with at least 32 input and output channels run
//!   Winograd (`winograd`) — F(4×4, 3×3) on maps larger than 4×4 (4× fewer multiply-adds than
//!   direct convolution), F(2×2, 3×3) on smaller ones (2.25×), as per-position products over
//!   transformed tiles — for the forward pass and the input gradient, and from 16 channels on for
//!   the weight gradient; other stride-1 "same" layers on 14–32-pixel-wide maps run a direct AVX-512
//!   kernel on a zero-padded copy of each image (`direct_conv`), and their input gradient is the
//!   same kernel on `dy` with the flipped, transposed weights; the stem and other layers of fewer
//!   than 16 channels take a direct weight gradient (`direct_grad_weight`). Everything else is im2col + packed GEMM (`gemm` crate, AVX-512):
//!   forward, grad-input (a forward-shaped GEMM on the flipped kernel for stride-1 layers, GEMM +
//!   col2im otherwise) and grad-weight as a GEMM reducing over output pixels, all chunked over
//!   whole images ([`conv_forward`], [`conv_backward`]).
//! * [`BatchNorm2d`]: fused training-mode batch norm (batch statistics, optional ReLU) with one
//!   fused backward, PyTorch running-statistic updates (momentum, unbiased variance);
//!   [`BatchNorm2d::forward_conv`] fuses the preceding convolution too ([`ConvBnOp`]).
//! * [`add_relu`]: the residual join `relu(a + b)` as one op.
//! * [`BatchNormEvalOp`]: evaluation-mode batch norm with the running statistics as constants.
//! * [`ResidualBlock`]: a whole BasicBlock as one op — candle's autograd spends two extra passes
//!   over memory on every stored gradient (`zeros_like` + `add`), so fewer, larger graph nodes
//!   matter as much as fast kernels.
//!
//! * [`DirectGradients`]: a per-thread scope inside which fused blocks hand their parameter
//!   gradients straight to the caller (merged into `backward()`'s `GradStore`) instead of through
//!   a concatenated parameter tensor; [`ResidualStage`] runs a whole stage as one op inside it.
//! * [`HugePageAlloc`]: an opt-in global allocator that backs large blocks with transparent huge
//!   pages.
//!
//! * [`Precision`]: opt-in bf16 convolutions on AMX tiles (f32 accumulation and weights) for
//!   stride-1 "same" layers with 16-multiple channel counts, scoped per thread.
//!
//! Layers dispatch on the tensor: CPU f32 tensors take the engine's kernels, anything else (CUDA
//! with cuDNN, other dtypes) candle's own ops, so model code keeps ordinary layer types. Without
//! AVX-512F (checked at run time) every convolution takes im2col + GEMM.
//!
//! Element-wise passes (batch-norm statistics, normalisation and gradients, the residual join's
//! gradient) are compiled a second time with AVX-512F and picked at run time (`simd`), with the
//! same operations in the same order.
//!
//! Memory: buffers come from a per-thread scratch pool and are zeroed by the rayon pool, and the
//! first engine op raises glibc's mmap/trim thresholds ([`keep_activation_buffers`]) so a training
//! step reuses its activation memory instead of page-faulting it in again every step.
//!
//! Determinism: every parallel partition is a function of the shape only, every reduction runs in
//! a fixed order inside one task (and `gemm` never splits one across threads), so results are
//! bit-identical for any rayon pool size.

mod add_relu;
mod allocator;
mod amx;
mod batch_norm;
mod batch_norm_eval_op;
mod batch_norm_op;
mod bf16_conv;
mod conv2d;
mod conv_backward;
mod conv_bn;
mod conv_forward;
mod conv_grad_input;
mod conv_grad_weight;
mod conv_op;
mod cpu_data;
mod direct_conv;
mod direct_grad_weight;
mod direct_gradients;
mod error;
mod geometry;
mod huge_pages;
mod im2col;
mod matmul;
mod plane_sums;
mod precision;
mod residual_block;
mod residual_network;
mod residual_stage;
mod scratch;
mod simd;
mod transpose;
mod winograd;

pub use add_relu::{AddReluOp, add_relu};
pub use allocator::keep_activation_buffers;
pub use batch_norm::BatchNorm2d;
pub use batch_norm_eval_op::BatchNormEvalOp;
pub use batch_norm_op::{BatchNormOp, BatchNormStats, batch_norm_backward, batch_norm_forward};
pub use conv_backward::conv_backward;
pub use conv_bn::{ConvBnOp, ConvBnSaved};
pub use conv_forward::conv_forward;
pub use conv_op::Conv2dOp;
pub use conv2d::Conv2d;
pub use direct_gradients::DirectGradients;
pub use error::{Error, Result};
pub use geometry::{ConvGeometry, MAX_GROUPS, TARGET_COLUMNS};
pub use huge_pages::HugePageAlloc;
pub use im2col::{col2im_add, im2col};
pub use precision::{Precision, PrecisionScope, precision};
pub use residual_block::ResidualBlock;
pub use residual_network::ResidualNetwork;
pub use residual_stage::ResidualStage;
