//! Fused kernels for conad.
//!
//! * [`fused_info_nce`], [`fused_info_nce_per_anchor`], [`fused_info_nce_qk`]: the masked
//!   multi-positive InfoNCE of docs/reference.md §0 "The generic kernel" (NT-Xent §1.1, SupCon
//!   §1.2, FIRM concat/pairwise §1.6) as a candle custom op with its own forward and backward.
//!   Logits are produced tile by tile with a streaming log-sum-exp and masks generated from row
//!   ids ([`RowIds`], [`MaskRules`]), so memory is O(N·d) instead of O(N²); gradients are
//!   recomputed tile by tile. Values and gradients equal `conad_losses::info_nce` (composed from
//!   candle ops) to 1e-5 in f32 (checked in `crates/conad-losses/tests/fused_vs_composed.rs`).
//! * The op is described once (`src/info_nce/`: config, mask rules, reductions, accepted inputs,
//!   the forward/backward contract, the candle `CustomOp`s that dispatch to a backend); the two
//!   backends below are siblings that depend on it and never on each other.
//! * CPU (`src/cpu/`): `gemm` tiles, rayon over row blocks, 16-lane reductions in a fixed order:
//!   the same input gives the same bits for any thread count.
//! * CUDA (`src/cuda/`, features `cuda-nvrtc` / `cuda`): hand-written kernels in `src/cuda/*.cu`
//!   compiled at run time by NVRTC — the InfoNCE forward (online log-sum-exp), its backward, and a
//!   kNN top-k max-cosine kernel for the scorers (`cuda::CudaKernels`).
//!
//! Features: `cuda-nvrtc` builds the NVRTC/cudarc host code with dynamic loading (no CUDA needed
//! at build time; everything checks for the libraries at run time); `cuda` adds candle's CUDA
//! backend (`CustomOp::cuda_fwd`), which needs nvcc at build time. The two are exclusive
//! (cudarc cannot both link and load the CUDA libraries).
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use conad_kernels::{FusedInfoNceConfig, RowIds, fused_info_nce};
//! // Two orthogonal images whose two views are identical (docs/reference.md §7, "the §7
//! // example"): every anchor's loss is −log(e^{1/τ} / (e^{1/τ} + 2)).
//! let z = Var::new(&[[1f64, 0.], [0., 1.], [1., 0.], [0., 1.]], &Device::Cpu)?;
//! let loss = fused_info_nce(&z, &RowIds::view_major(2, 2), &FusedInfoNceConfig::nt_xent(0.5))?;
//! let e = 2f64.exp();
//! assert!((loss.to_scalar::<f64>()? + (e / (e + 2.0)).ln()).abs() < 1e-12);
//! let dz = loss.backward()?.get(&z).unwrap().clone();
//! assert_eq!(dz.dims(), &[4, 2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(all(feature = "cuda-nvrtc", feature = "cuda"))]
compile_error!(
    "features `cuda-nvrtc` and `cuda` of conad-kernels are exclusive: `cuda-nvrtc` makes cudarc \
     load the CUDA libraries at run time, `cuda` (candle's backend) links them; enable one"
);

mod cpu;
mod error;
mod info_nce;

#[cfg(any(feature = "cuda-nvrtc", feature = "cuda"))]
pub mod cuda;

pub use error::{Error, Result};
pub use info_nce::{
    AnchorRows, Denominator, EmptyAnchors, FusedInfoNceConfig, MaskRules, PositiveReduction,
    PositiveRule, RowIds, fused_info_nce, fused_info_nce_per_anchor, fused_info_nce_qk,
};

/// Exposes the CPU kernel's block sizes (for documentation and benchmarks).
pub const CPU_BLOCK_ROWS: usize = cpu::BLOCK_ROWS;
/// Keys per CPU tile.
pub const CPU_BLOCK_COLS: usize = cpu::BLOCK_COLS;
