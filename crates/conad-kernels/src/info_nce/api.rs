//! The public entry points: check the inputs ([`inputs`](super::inputs)), build the op's
//! [`Spec`](super::spec::Spec) and apply the candle op ([`custom_op`](super::custom_op)), which
//! runs on the device of the input (docs/reference.md §0 "The generic kernel"; §1.1 NT-Xent,
//! §1.2 SupCon, §1.6 FIRM concat and pairwise).

use candle_core::Tensor;

use super::config::{AnchorRows, FusedInfoNceConfig};
use super::custom_op::{PairOp, SharedOp};
use super::inputs::{check_finite, check_matrix};
use super::rules::RowIds;
use super::saved::OpState;
use super::spec::{build_pair_spec, build_shared_spec};
use crate::error::{Error, Result};

/// The shared-`z` op for `z` (checks `z` as well as config, ids and anchors).
fn shared_op(
    z: &Tensor,
    ids: &RowIds,
    config: &FusedInfoNceConfig,
    per_anchor: bool,
) -> Result<SharedOp> {
    config.validate()?;
    let (n, _) = check_matrix(z, "z")?;
    let spec = build_shared_spec(n, ids, config, per_anchor)?;
    check_finite(z, "z")?;
    Ok(SharedOp(OpState::new(spec)))
}

/// The fused loss on one contrast set `z` whose rows are both keys and (the leading
/// `config.anchors`) anchors: NT-Xent on `[z¹; z²]`, SupCon, FIRM concat, CON2, CSI's 8N layout.
/// Each anchor's own row is excluded from its positives and denominator.
///
/// Returns the scalar mean of `ℓ_i` (see [`EmptyAnchors`](crate::EmptyAnchors)); differentiable
/// through candle's autograd (`loss.backward()` gives `dz`).
///
/// # Shapes
/// `z`: `n × d` (L2-normalised projections, F32 or F64), `ids`: `n` rows → scalar.
///
/// # Errors
/// [`Error::Shape`], [`Error::DType`], [`Error::IdCount`], [`Error::MissingLabels`],
/// [`Error::InvalidTemperature`], [`Error::AnchorCount`], [`Error::NonFinite`],
/// [`Error::NoPositives`] (with [`EmptyAnchors::Drop`](crate::EmptyAnchors::Drop)).
pub fn fused_info_nce(z: &Tensor, ids: &RowIds, config: &FusedInfoNceConfig) -> Result<Tensor> {
    let op = shared_op(z, ids, config, false)?;
    Ok(z.contiguous()?.apply_op1(op)?)
}

/// The per-anchor losses `ℓ_i` of [`fused_info_nce`] (0 for anchors without positives);
/// differentiable.
///
/// # Shapes
/// `z`: `n × d`, `ids`: `n` rows → `M` (the anchor count).
///
/// # Errors
/// As [`fused_info_nce`] except [`Error::NoPositives`].
pub fn fused_info_nce_per_anchor(
    z: &Tensor,
    ids: &RowIds,
    config: &FusedInfoNceConfig,
) -> Result<Tensor> {
    let op = shared_op(z, ids, config, true)?;
    Ok(z.contiguous()?.apply_op1(op)?)
}

/// The fused loss with separate anchors `q` and keys `k` (no self-pair exists, nothing is
/// excluded): FIRM's pairwise `z¹ z²ᵀ` NT-Xent / FIRM loss. Differentiable in `q` and `k`.
///
/// # Shapes
/// `q`: `M × d`, `k`: `M' × d`, `anchor_ids`: `M` rows, `key_ids`: `M'` rows → scalar.
///
/// # Errors
/// As [`fused_info_nce`]; [`Error::Mismatch`] if `q` and `k` differ in `d`, dtype or device, or
/// `config.anchors` is not [`AnchorRows::All`].
pub fn fused_info_nce_qk(
    q: &Tensor,
    k: &Tensor,
    anchor_ids: &RowIds,
    key_ids: &RowIds,
    config: &FusedInfoNceConfig,
) -> Result<Tensor> {
    config.validate()?;
    let (m, d) = check_matrix(q, "anchors")?;
    let (n, dk) = check_matrix(k, "keys")?;
    if d != dk || q.dtype() != k.dtype() || !q.device().same_device(k.device()) {
        return Err(Error::Mismatch {
            what: "anchors and keys",
            detail: format!(
                "{m}×{d} {:?} on {:?} vs {n}×{dk} {:?} on {:?}; need one d, dtype and device",
                q.dtype(),
                q.device().location(),
                k.dtype(),
                k.device().location()
            ),
        });
    }
    if config.anchors != AnchorRows::All {
        return Err(Error::Mismatch {
            what: "config.anchors",
            detail: "the q/k form uses every row of q as an anchor; set AnchorRows::All".into(),
        });
    }
    anchor_ids.check("anchor ids", m, &config.rules)?;
    key_ids.check("key ids", n, &config.rules)?;
    check_finite(q, "anchors")?;
    check_finite(k, "keys")?;
    let spec = build_pair_spec(anchor_ids, key_ids, m, config)?;
    Ok(q.contiguous()?
        .apply_op2(&k.contiguous()?, PairOp(OpState::new(spec)))?)
}
