//! The fused masked multi-positive InfoNCE as an op description shared by the backends
//! (docs/reference.md §0 "The generic kernel", §1.1 NT-Xent, §1.2 SupCon; Khosla et al. 2020
//! eqs. 2–3).
//!
//! With logits `s_ij = q_i·k_j / τ`, a denominator set `A(i)` and positives `P(i) ⊆ A(i)` made
//! from row ids by [`MaskRules`]:
//!
//! * `lse_i = log Σ_{a∈A(i)} e^{s_ia}` is accumulated tile by tile with a streaming
//!   (online) log-sum-exp, so the `M × M'` logit matrix is never stored: memory is
//!   O((M + M')·d).
//! * [`PositiveReduction::MeanLogProb`] (`L_out`): `ℓ_i = lse_i − (1/|P(i)|) Σ_{p∈P(i)} s_ip`;
//!   [`PositiveReduction::LogSumProb`] (`L_in`): `ℓ_i = lse_i − log Σ_{p∈P(i)} e^{s_ip}`;
//!   [`PositiveReduction::LogMeanProb`]: `L_in + log |P(i)|`.
//! * Anchors with `P(i) = ∅` give `ℓ_i = 0` and count in the mean ([`EmptyAnchors::CountAsZero`],
//!   HobbitLong) or are left out of it ([`EmptyAnchors::Drop`]).
//!
//! The forward pass saves only `lse_i` (and the positives' log-sum-exp for `L_in`) per anchor.
//! The backward pass recomputes the logit tiles and forms
//! `∂ℓ_i/∂s_ij = [j∈A(i)] e^{s_ij − lse_i} − [j∈P(i)]·w_ij` (`w_ij = 1/|P(i)|` for `L_out`,
//! `e^{s_ij − lse⁺_i}` for `L_in`), then `dQ = (1/τ) G K` and `dK = (1/τ) Gᵀ Q`. When anchors and
//! keys are one tensor `z` ([`fused_info_nce`]) both terms are accumulated in a single pass over
//! row blocks of `z` (every rule is symmetric, so tile `(r, c)` serves `G_rc` and `G_cr`).
//!
//! Layout: this module describes the op — [`config`] (what the caller sets), [`rules`] (masks
//! from ids), [`reduction`] (how positives and anchors are combined), [`inputs`] (accepted
//! tensors), [`spec`] (the forward/backward contract), [`saved`] (forward → backward
//! statistics), [`custom_op`] (the candle ops, which dispatch to a backend) and [`api`] (the
//! public functions). The backends are siblings below it: [`crate::cpu`] (`gemm` tiles, rayon
//! over row blocks, fixed reduction order — the same input gives the same bits for any number of
//! threads) and `crate::cuda` (features `cuda-nvrtc` / `cuda`: NVRTC-compiled kernels of
//! `src/cuda/*.cu`). Each depends on this description only, never on the other backend.

pub(crate) mod api;
pub(crate) mod config;
pub(crate) mod custom_op;
pub(crate) mod inputs;
pub(crate) mod reduction;
pub(crate) mod rules;
pub(crate) mod saved;
pub(crate) mod spec;

pub use api::{fused_info_nce, fused_info_nce_per_anchor, fused_info_nce_qk};
pub use config::{AnchorRows, FusedInfoNceConfig};
pub use reduction::{EmptyAnchors, PositiveReduction};
pub use rules::{Denominator, MaskRules, PositiveRule, RowIds};
#[cfg(any(feature = "cuda-nvrtc", feature = "cuda"))]
pub(crate) use spec::build_shared_spec;
pub(crate) use spec::{Output, Spec, Target};
