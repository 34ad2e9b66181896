//! Contrastive losses for conad, all on one generic masked multi-positive InfoNCE kernel
//! (docs/reference.md §0 "Generic kernel").
//!
//! Kernel and building blocks:
//!
//! * [`info_nce`] / [`info_nce_per_anchor`] / [`masked_log_softmax`]: the kernel — anchors `Q`,
//!   keys `K`, a denominator mask, non-negative positive weights, τ, `L_out` or `L_in` reduction
//!   ([`PositiveReduction`]), anchors without positives counted as 0 or dropped
//!   ([`EmptyAnchors`]). Both enums are `conad_kernels`' own, re-exported.
//! * [`ContrastMasks`]: masks and view-major builders (instance discrimination, labels, explicit
//!   image pairs, FIRM's pairwise diagonal, and [`ContrastMasks::from_rules`] from the fused
//!   kernel's id rules [`MaskRules`] on [`RowIds`]).
//! * [`InfoNceBackend`]: objectives whose mask follows from row ids run either composed from
//!   candle ops or on the fused O(N·d) op `conad_kernels::fused_info_nce`.
//!
//! Objectives (one file each; typed serde configs with `Default` + `validate()`; `forward`
//! returns a differentiable scalar, `forward_parts` adds diagnostics):
//!
//! | type | objective | source |
//! |---|---|---|
//! | [`NtXent`] | SimCLR 2N×2N NT-Xent; FIRM's one-directional N×N variant | docs/reference.md §1.1; Chen et al. 2020 eq. 1 |
//! | [`SupCon`] | HobbitLong/SupContrast conventions, `contrast_mode`, τ/τ_base | §1.2; Khosla et al. 2020 eq. 2 |
//! | [`Csi`] | L_con-SI over the 2·K·N shifted views + λ·L_cls-SI | §1.3; Tack et al. 2020 §2.1 |
//! | [`Con2`] | L_Context + α·L_Content, α annealed per step | §1.4, §6.1–6.2; CON2 eqs. 1, 5, 7, 8 |
//! | [`UniClr`], [`UniConHa`] | UniCLR, soft aggregation (detached, global normalisation), sum over stages | §1.5, §6.6–6.7; UniCon-HA eqs. 1, 4–9 |
//! | [`Firm`] | FIRM pairwise (`FIRMLoss`) and concat (`FIRMLossv2`) | §1.6, §6.9–6.10; FIRM eq. 2 |
//! | [`KeLoss`] | Knowledge Exposure, own-negatives and in-batch readings | §1.7, §6.13; KE eq. 1 |
//! | [`MilConv`] | pseudo-normality scores, soft sampling, Dirichlet convex combinations, L_Conv | §1.8, §6.16–6.18; MIL-Conv eqs. 2, 4–6, 10 |
//! | [`Msc`] | mean-shifted NT-Xent + angular centre term (MIL-Conv's L_Mean) | §1.8; Reiss & Hoshen 2023 |
//! | [`RotationCe`] | rotation-prediction cross-entropy (CSI's L_cls-SI, MIL-Conv's L_Rot) | §1.9 |
//!
//! All losses take L2-normalised projections ([`l2_normalize`]) and return a differentiable
//! scalar tensor. Bad input (shapes, τ ≤ 0, NaN, empty batch, label counts) is an [`Error`]
//! variant carrying the offending value.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use conad_losses::{NtXent, NtXentConfig};
//! // Two orthogonal images whose two views are identical (docs/reference.md §7).
//! let z = Tensor::new(&[[1f64, 0.], [0., 1.]], &Device::Cpu)?;
//! let loss = NtXent::new(NtXentConfig { temperature: 0.5, ..Default::default() })?
//!     .forward(&z, &z)?
//!     .to_scalar::<f64>()?;
//! let e = (1.0f64 / 0.5).exp();
//! assert!((loss - -(e / (e + 2.0)).ln()).abs() < 1e-12);
//! # Ok::<(), conad_losses::Error>(())
//! ```

mod backend;
mod checks;
mod con2;
mod csi;
mod error;
mod firm;
mod info_nce;
mod ke;
mod masks;
mod mil_conv;
mod msc;
mod normalize;
mod nt_xent;
mod rotation;
mod supcon;
mod uniclr;

pub use backend::InfoNceBackend;
pub use con2::{Con2, Con2Config, Con2Parts};
pub use conad_kernels::{Denominator, MaskRules, PositiveRule, RowIds};
pub use csi::{Csi, CsiConfig, CsiParts};
pub use error::{Error, Result};
pub use firm::{Firm, FirmConfig, FirmVariant};
pub use info_nce::{
    EmptyAnchors, InfoNceConfig, PerAnchorLoss, PositiveReduction, info_nce, info_nce_per_anchor,
    masked_log_softmax,
};
pub use ke::{KeConfig, KeLoss, KeNegatives};
pub use masks::{AnchorViews, ContrastMasks};
pub use mil_conv::{
    ConvexCombinations, MilConv, MilConvConfig, MilConvParts, SamplingRule, SoftSampling,
    conv_loss, dirichlet_uniform, draw_combinations, pseudo_normality_scores, soft_sampling,
};
pub use msc::{CenterTerm, Msc, MscConfig, MscParts, msc_center};
pub use normalize::{L2_EPS, l2_normalize};
pub use nt_xent::{NtXent, NtXentConfig, NtXentVariant};
pub use rotation::{RotationCe, RotationCeConfig, shift_labels};
pub use supcon::{SupCon, SupConConfig};
pub use uniclr::{
    SoftAggregationConfig, SoftNormalisation, StageAverage, UniClr, UniClrConfig, UniClrParts,
    UniConHa, UniConHaConfig, UniConHaParts, soft_aggregation_weights,
};
