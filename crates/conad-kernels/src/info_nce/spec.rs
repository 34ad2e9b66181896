//! The forward/backward contract of the op, the one description both backends read
//! (docs/reference.md §0 "The generic kernel", "Self-exclusion"; Khosla et al. 2020 eqs. 2–3).
//!
//! A [`Spec`] fixes everything but the tensors: rules, reduction, τ, the row ids, the anchor
//! count `M`, `|P(i)|` per anchor and the output. Given anchors `q` (`M × d`) and keys `k`
//! (`M' × d`; `q` is the leading rows of `k` when [`Spec::shared`]) every backend must
//!
//! * **forward**: return the scalar `Σ_i ℓ_i / denominator` ([`Output::Mean`]) or the vector `ℓ`
//!   ([`Output::PerAnchor`]), and keep per-anchor statistics (`lse_i`, and `lse⁺_i` for `L_in`)
//!   for the backward;
//! * **backward** ([`Target`]): from those statistics and `∂L/∂out`, return `dz` (`n × d`, shared),
//!   `dq` (`M × d`) or `dk` (`M' × d`), with `∂ℓ_i/∂s_ij` as in the module docs of
//!   [`info_nce`](super).

use super::config::{AnchorRows, FusedInfoNceConfig};
use super::reduction::{EmptyAnchors, PositiveReduction};
use super::rules::{MaskRules, RowIds, positive_counts};
use crate::error::{Error, Result};

/// What the forward op returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// The scalar `Σ_i ℓ_i / denominator`.
    Mean { denominator: usize },
    /// The vector `ℓ`.
    PerAnchor,
}

/// Which gradient a backward op computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `dz` of the shared op (both terms).
    Shared,
    /// `dq` of the pair op.
    Anchors,
    /// `dk` of the pair op.
    Keys,
}

/// Everything the forward and backward passes of every backend share.
#[derive(Debug)]
pub(crate) struct Spec {
    pub rules: MaskRules,
    pub reduction: PositiveReduction,
    pub temperature: f64,
    /// Ids of the anchor rows (`z`'s ids when shared).
    pub anchor_ids: RowIds,
    /// Ids of the key rows (`None` when shared).
    pub key_ids: Option<RowIds>,
    /// Anchors `M`.
    pub m: usize,
    /// `|P(i)|` per anchor.
    pub counts: Vec<u32>,
    pub output: Output,
}

impl Spec {
    pub(crate) fn key_ids(&self) -> &RowIds {
        self.key_ids.as_ref().unwrap_or(&self.anchor_ids)
    }

    pub(crate) fn shared(&self) -> bool {
        self.key_ids.is_none()
    }

    /// `∂L/∂ℓ_i` from the gradient of the op's output.
    pub(crate) fn anchor_grads(&self, grad_out: &[f64]) -> Vec<f64> {
        match self.output {
            Output::Mean { denominator } => vec![grad_out[0] / denominator as f64; self.m],
            Output::PerAnchor => grad_out.to_vec(),
        }
    }
}

/// The mean's denominator: every anchor, or those with a positive.
fn denominator(counts: &[u32], empty: EmptyAnchors) -> Result<usize> {
    let n = match empty {
        EmptyAnchors::CountAsZero => counts.len(),
        EmptyAnchors::Drop => counts.iter().filter(|&&c| c > 0).count(),
    };
    if n == 0 {
        Err(Error::NoPositives)
    } else {
        Ok(n)
    }
}

/// The [`Spec`] of the shared-`z` op for `n` rows (validates config, ids and anchors).
pub(crate) fn build_shared_spec(
    n: usize,
    ids: &RowIds,
    config: &FusedInfoNceConfig,
    per_anchor: bool,
) -> Result<Spec> {
    config.validate()?;
    ids.check("ids", n, &config.rules)?;
    let m = match config.anchors {
        AnchorRows::All => n,
        AnchorRows::Leading(m) if (1..=n).contains(&m) => m,
        AnchorRows::Leading(m) => {
            return Err(Error::AnchorCount {
                anchors: m,
                rows: n,
            });
        }
    };
    let counts = positive_counts(ids, m, ids, &config.rules, true);
    let output = if per_anchor {
        Output::PerAnchor
    } else {
        Output::Mean {
            denominator: denominator(&counts, config.empty_anchors)?,
        }
    };
    Ok(Spec {
        rules: config.rules,
        reduction: config.reduction,
        temperature: config.temperature,
        anchor_ids: ids.clone(),
        key_ids: None,
        m,
        counts,
        output,
    })
}

/// The [`Spec`] of the pair op for `m` anchors (ids, config and inputs already checked).
pub(crate) fn build_pair_spec(
    anchor_ids: &RowIds,
    key_ids: &RowIds,
    m: usize,
    config: &FusedInfoNceConfig,
) -> Result<Spec> {
    let counts = positive_counts(anchor_ids, m, key_ids, &config.rules, false);
    Ok(Spec {
        rules: config.rules,
        reduction: config.reduction,
        temperature: config.temperature,
        anchor_ids: anchor_ids.clone(),
        key_ids: Some(key_ids.clone()),
        m,
        output: Output::Mean {
            denominator: denominator(&counts, config.empty_anchors)?,
        },
        counts,
    })
}
