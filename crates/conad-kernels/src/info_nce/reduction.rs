//! How positives are combined per anchor and how anchors are averaged (docs/reference.md §0
//! "Two reductions of multi-positive losses", Khosla et al. 2020 eqs. 2–3). The single
//! definition of these enums: `conad-losses` depends on this crate and re-exports them
//! (`conad_losses::{PositiveReduction, EmptyAnchors}` are these types), so the composed and the
//! fused compute paths share one config vocabulary without a cycle.

use serde::{Deserialize, Serialize};

/// How an anchor's positives are combined (weights are 0/1 here, `|P(i)|` positives).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositiveReduction {
    /// `L_out`: `ℓ_i = −(1/|P(i)|) Σ_{p∈P(i)} log p_ip` (SupCon, FIRM, UniCon-HA, CON2, NT-Xent).
    #[default]
    MeanLogProb,
    /// `L_in`: `ℓ_i = −log Σ_{p∈P(i)} p_ip` (KE, MIL InfoNCE).
    LogSumProb,
    /// `L_in` with `1/|P(i)|` inside the log: `ℓ_i = −log((1/|P(i)|) Σ_p p_ip)`.
    LogMeanProb,
}

impl PositiveReduction {
    /// Integer code passed to the CUDA kernels (`RED_*` in `cuda/common.cuh`).
    pub fn code(self) -> i32 {
        match self {
            Self::MeanLogProb => 0,
            Self::LogSumProb => 1,
            Self::LogMeanProb => 2,
        }
    }
}

/// What happens to anchors without any positive (their `ℓ_i` is 0 either way).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmptyAnchors {
    /// Count in the mean over all anchors (HobbitLong/SupContrast's `max(|P(i)|, 1)` clamp).
    #[default]
    CountAsZero,
    /// Left out of the mean, which runs over anchors with ≥ 1 positive.
    Drop,
}
