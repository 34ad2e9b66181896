//! Compute path of the objectives that reduce to the plain masked InfoNCE of one contrast set
//! whose mask follows from row ids (docs/reference.md §0 "Generic kernel"): NT-Xent over CSI's 8N shifted
//! views (§1.3), CON2's context and content losses (§1.4), UniCLR without soft aggregation and
//! FIRM (§1.5, §1.6), MSC's contrastive term (§1.8).
//!
//! * [`InfoNceBackend::Composed`]: the dense masks of [`ContrastMasks::from_rules`] and the
//!   generic kernel [`crate::info_nce`] composed from candle ops (O(N²) memory; any dtype).
//! * [`InfoNceBackend::Fused`]: `conad_kernels::fused_info_nce` (tiled streaming log-sum-exp,
//!   O(N·d) memory, own backward; F32/F64). Both build their masks from the same
//!   [`conad_kernels::MaskRules`], and the tests check that values and gradients agree.

use candle_core::Tensor;
use conad_kernels::{
    AnchorRows, Denominator, EmptyAnchors, FusedInfoNceConfig, MaskRules, PositiveReduction,
    PositiveRule, RowIds, fused_info_nce, fused_info_nce_qk,
};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::info_nce::{InfoNceConfig, info_nce};
use crate::masks::ContrastMasks;

/// Which implementation evaluates an id-rule InfoNCE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InfoNceBackend {
    /// Dense masks + candle ops (reference path, any float dtype, O(N²) memory).
    #[default]
    Composed,
    /// The fused `conad-kernels` op (O(N·d) memory, F32/F64, CPU or CUDA).
    Fused,
}

fn rules(positives: PositiveRule) -> MaskRules {
    MaskRules {
        positives,
        denominator: Denominator::AllOthers,
    }
}

/// `L_out` InfoNCE over one contrast set `z` (every row an anchor, itself excluded), positives by
/// `positives` on `ids`, mean over all rows.
pub(crate) fn contrast_set_loss(
    z: &Tensor,
    ids: &RowIds,
    positives: PositiveRule,
    temperature: f64,
    backend: InfoNceBackend,
) -> Result<Tensor> {
    let rules = rules(positives);
    match backend {
        InfoNceBackend::Composed => {
            let masks = ContrastMasks::from_rules(ids, &rules)?;
            info_nce(z, z, &masks, &l_out(temperature))
        }
        InfoNceBackend::Fused => Ok(fused_info_nce(
            z,
            ids,
            &FusedInfoNceConfig {
                temperature,
                rules,
                reduction: PositiveReduction::MeanLogProb,
                empty_anchors: EmptyAnchors::CountAsZero,
                anchors: AnchorRows::All,
            },
        )?),
    }
}

/// `L_out` InfoNCE with separate anchors `q` and keys `k` (nothing excluded), mean over anchors.
pub(crate) fn anchor_key_loss(
    q: &Tensor,
    k: &Tensor,
    anchor_ids: &RowIds,
    key_ids: &RowIds,
    positives: PositiveRule,
    temperature: f64,
    backend: InfoNceBackend,
) -> Result<Tensor> {
    let rules = rules(positives);
    match backend {
        InfoNceBackend::Composed => {
            let masks = ContrastMasks::from_rules_qk(anchor_ids, key_ids, &rules)?;
            info_nce(q, k, &masks, &l_out(temperature))
        }
        InfoNceBackend::Fused => Ok(fused_info_nce_qk(
            q,
            k,
            anchor_ids,
            key_ids,
            &FusedInfoNceConfig {
                temperature,
                rules,
                ..FusedInfoNceConfig::default()
            },
        )?),
    }
}

fn l_out(temperature: f64) -> InfoNceConfig {
    InfoNceConfig {
        temperature,
        reduction: PositiveReduction::MeanLogProb,
        empty_anchors: EmptyAnchors::CountAsZero,
    }
}
