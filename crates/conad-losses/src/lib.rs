//! Contrastive losses for conad, all on one generic masked multi-positive InfoNCE kernel
//! (METHODS §0 "Generic kernel").
//!
//! * [`info_nce`] / [`info_nce_per_anchor`] / [`masked_log_softmax`]: the kernel — anchors `Q`,
//!   keys `K`, a denominator mask, non-negative positive weights, τ, `L_out` or `L_in` reduction,
//!   anchors without positives counted as 0 or dropped.
//! * [`ContrastMasks`]: masks and view-major builders (instance discrimination, labels, explicit
//!   image pairs, FIRM's pairwise diagonal).
//! * [`NtXent`]: SimCLR's symmetric 2N×2N NT-Xent and FIRM's one-directional N×N variant
//!   (METHODS §1.1).
//! * [`SupCon`]: HobbitLong/SupContrast conventions incl. `contrast_mode` and τ/τ_base
//!   (METHODS §1.2).
//!
//! All losses take L2-normalised projections ([`l2_normalize`]) and return a differentiable
//! scalar tensor.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use conad_losses::{NtXent, NtXentConfig};
//! // Two orthogonal images whose two views are identical (METHODS §7).
//! let z = Tensor::new(&[[1f64, 0.], [0., 1.]], &Device::Cpu)?;
//! let loss = NtXent::new(NtXentConfig { temperature: 0.5, ..Default::default() })?
//!     .forward(&z, &z)?
//!     .to_scalar::<f64>()?;
//! let e = (1.0f64 / 0.5).exp();
//! assert!((loss - -(e / (e + 2.0)).ln()).abs() < 1e-12);
//! # Ok::<(), conad_losses::Error>(())
//! ```

mod error;
mod info_nce;
mod masks;
mod normalize;
mod nt_xent;
mod supcon;

pub use error::{Error, Result};
pub use info_nce::{
    EmptyAnchors, InfoNceConfig, PerAnchorLoss, PositiveReduction, info_nce, info_nce_per_anchor,
    masked_log_softmax,
};
pub use masks::{AnchorViews, ContrastMasks};
pub use normalize::{L2_EPS, l2_normalize};
pub use nt_xent::{NtXent, NtXentConfig, NtXentVariant};
pub use supcon::{SupCon, SupConConfig};
