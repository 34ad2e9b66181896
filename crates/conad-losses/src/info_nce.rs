//! Generic masked multi-positive InfoNCE (docs/reference.md §0 "Generic kernel"; Khosla et al. 2020,
//! "Supervised Contrastive Learning", eqs. 2–3, <https://arxiv.org/abs/2004.11362>).
//!
//! Inputs: anchors `Q ∈ R^{M×d}`, keys `K ∈ R^{M'×d}`, a denominator mask `valid[M×M']`, positive
//! weights `w[M×M'] ≥ 0` and a temperature τ. With `s_ij = q_i·k_j / τ` and
//! `log p_ij = s_ij − log Σ_{a: valid_ia} e^{s_ia}`:
//!
//! * [`PositiveReduction::MeanLogProb`] (`L_out`): `ℓ_i = −Σ_j w_ij log p_ij / Σ_j w_ij`
//!   (SupCon, FIRM, UniCon-HA, CON2, NT-Xent);
//! * [`PositiveReduction::LogSumProb`] (`L_in`): `ℓ_i = −log Σ_j w_ij p_ij` (KE, MIL InfoNCE);
//! * [`PositiveReduction::LogMeanProb`] (`L_in` with `1/|P(i)|` inside the log, Khosla's eq. 3):
//!   `ℓ_i = −log Σ_j (w_ij / Σ_k w_ik) p_ij`.
//!
//! Anchors with `Σ_j w_ij = 0` contribute 0 and still count in the mean
//! ([`EmptyAnchors::CountAsZero`], HobbitLong/SupContrast's `max(|P(i)|, 1)` clamp), or are left
//! out of the mean ([`EmptyAnchors::Drop`]).
//!
//! Numerics: the row maximum over valid keys is subtracted (detached, a constant per row) before
//! exponentiation, so no `exp` overflows and the largest valid term is exactly `e⁰ = 1`; masked
//! entries are multiplied by 0 rather than set to −∞, so no `0·∞ = NaN` can appear. No ε is added
//! to the denominator (CSI adds 1e-8; the difference is below f32 resolution for τ ≤ 1).

use candle_core::{D, DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, check_temperature};
use crate::masks::ContrastMasks;

/// How an anchor's positives are combined and what happens to anchors without positives
/// (docs/reference.md §0). One definition shared with the fused kernel crate (`conad-kernels`), re-exported
/// here, so a config means the same thing on both compute paths.
pub use conad_kernels::{EmptyAnchors, PositiveReduction};

/// Configuration of the generic kernel.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InfoNceConfig {
    /// Temperature τ > 0.
    pub temperature: f64,
    /// Combination of positives.
    pub reduction: PositiveReduction,
    /// Treatment of anchors without positives.
    pub empty_anchors: EmptyAnchors,
}

impl Default for InfoNceConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            reduction: PositiveReduction::MeanLogProb,
            empty_anchors: EmptyAnchors::CountAsZero,
        }
    }
}

impl InfoNceConfig {
    /// Checks the temperature.
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`] for τ ≤ 0, NaN or ∞.
    pub fn validate(&self) -> Result<()> {
        check_temperature("temperature", self.temperature)
    }
}

/// Per-anchor losses and which anchors had positives.
#[derive(Clone, Debug)]
pub struct PerAnchorLoss {
    /// `ℓ_i` for every anchor (0 for anchors without positives), shape `M`.
    pub losses: Tensor,
    /// Whether anchor `i` had at least one positive.
    pub has_positive: Vec<bool>,
}

/// Host values (computed in f64) → device tensor of `like`'s dtype and device.
fn upload(values: Vec<f64>, shape: (usize, usize), like: &Tensor) -> Result<Tensor> {
    Ok(Tensor::from_vec(values, shape, like.device())?.to_dtype(like.dtype())?)
}

fn indicator(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn check_inputs(q: &Tensor, k: &Tensor, masks: &ContrastMasks) -> Result<()> {
    if q.rank() != 2 {
        return Err(Error::Shape {
            what: "anchors",
            got: q.dims().to_vec(),
            expected: "M × d".into(),
        });
    }
    if k.rank() != 2 || k.dim(1)? != q.dim(1)? {
        return Err(Error::Shape {
            what: "keys",
            got: k.dims().to_vec(),
            expected: format!("M' × {} (same d as the anchors)", q.dim(1)?),
        });
    }
    if q.dim(0)? == 0 || k.dim(0)? == 0 {
        return Err(Error::Shape {
            what: if q.dim(0)? == 0 { "anchors" } else { "keys" },
            got: if q.dim(0)? == 0 {
                q.dims().to_vec()
            } else {
                k.dims().to_vec()
            },
            expected: "at least one row".into(),
        });
    }
    if masks.rows() != q.dim(0)? || masks.cols() != k.dim(0)? {
        return Err(Error::MaskShape {
            rows: masks.rows(),
            cols: masks.cols(),
            what: format!("there are {} anchors and {} keys", q.dim(0)?, k.dim(0)?),
        });
    }
    if !matches!(
        q.dtype(),
        DType::F16 | DType::BF16 | DType::F32 | DType::F64
    ) || q.dtype() != k.dtype()
    {
        return Err(Error::DType {
            anchors: q.dtype(),
            keys: k.dtype(),
        });
    }
    Ok(())
}

/// Row-wise log-softmax of `Q Kᵀ / τ` restricted to the valid keys.
///
/// Entries of invalid keys hold finite values that carry no meaning; weight them by 0. Rows with
/// no valid key are all zeros.
///
/// # Shapes
/// `q`: `M × d`, `k`: `M' × d` → `M × M'`.
///
/// # Errors
/// [`Error::Shape`], [`Error::MaskShape`] on disagreeing shapes; [`Error::InvalidTemperature`].
pub fn masked_log_softmax(
    q: &Tensor,
    k: &Tensor,
    masks: &ContrastMasks,
    temperature: f64,
) -> Result<Tensor> {
    check_temperature("temperature", temperature)?;
    check_inputs(q, k, masks)?;
    let (m, mp) = (masks.rows(), masks.cols());
    let row_empty: Vec<f64> = masks
        .valid()
        .chunks(mp)
        .map(|r| indicator(!r.iter().any(|&v| v)))
        .collect();
    let valid = upload(
        masks.valid().iter().map(|&v| indicator(v)).collect(),
        (m, mp),
        q,
    )?;
    let valid_u8 = valid.to_dtype(DType::U8)?;
    let logits = (q.matmul(&k.t()?)? / temperature)?;
    // Row maximum over valid keys (a detached constant per row); invalid entries are replaced by
    // the row minimum so that they never win the max.
    let row_min = logits
        .detach()
        .min_keepdim(D::Minus1)?
        .broadcast_as((m, mp))?;
    let row_max = valid_u8
        .where_cond(&logits.detach(), &row_min)?
        .max_keepdim(D::Minus1)?;
    let shifted = logits.broadcast_sub(&row_max)?;
    // Valid entries are ≤ 0 after the shift; invalid ones may be huge, so they are replaced by 0
    // *before* exponentiating (e^0·0 = 0; multiplying an overflowed e^x by 0 would give NaN) and
    // receive no gradient through the denominator.
    let zeros = shifted.zeros_like()?;
    let exp_valid = (valid_u8.where_cond(&shifted, &zeros)?.exp()? * &valid)?;
    // Rows without valid keys get denominator 1 (log 0 avoided); such rows carry no positives.
    let empty = upload(row_empty, (m, 1), q)?;
    let denom = exp_valid.sum_keepdim(D::Minus1)?.add(&empty)?;
    let log_prob = shifted.broadcast_sub(&denom.log()?)?;
    // Rows without any valid key: force 0 so no value leaks.
    Ok(log_prob.broadcast_mul(&(1.0 - empty)?)?)
}

/// Per-anchor losses `ℓ_i` (see the module docs).
///
/// # Shapes
/// `q`: `M × d`, `k`: `M' × d`, masks `M × M'` → `losses`: `M`.
///
/// # Errors
/// [`Error::Shape`], [`Error::MaskShape`], [`Error::InvalidTemperature`].
pub fn info_nce_per_anchor(
    q: &Tensor,
    k: &Tensor,
    masks: &ContrastMasks,
    config: &InfoNceConfig,
) -> Result<PerAnchorLoss> {
    config.validate()?;
    let log_prob = masked_log_softmax(q, k, masks, config.temperature)?;
    let (m, mp) = (masks.rows(), masks.cols());
    // Host-side weight arithmetic in f64 (mask weights are stored as f32).
    let weights: Vec<f64> = masks.pos_weight().iter().map(|&w| f64::from(w)).collect();
    let sums: Vec<f64> = weights.chunks(mp).map(|r| r.iter().sum()).collect();
    let has_positive: Vec<bool> = sums.iter().map(|&s| s > 0.0).collect();
    let has_pos_t = upload(
        has_positive.iter().map(|&h| indicator(h)).collect(),
        (m, 1),
        q,
    )?
    .squeeze(1)?;
    let losses = match config.reduction {
        PositiveReduction::MeanLogProb => {
            let inv: Vec<f64> = sums
                .iter()
                .map(|&s| if s > 0.0 { 1.0 / s } else { 0.0 })
                .collect();
            let w = upload(weights, (m, mp), q)?;
            let inv = upload(inv, (m, 1), q)?.squeeze(1)?;
            ((log_prob * w)?.sum(D::Minus1)? * inv)?.neg()?
        }
        PositiveReduction::LogSumProb | PositiveReduction::LogMeanProb => {
            let normalise = config.reduction == PositiveReduction::LogMeanProb;
            // −log Σ_j w_ij p_ij = −logsumexp_j (log p_ij + log w_ij) over positives, stabilised
            // by the (detached) maximum over positives.
            let log_w: Vec<f64> = weights
                .iter()
                .enumerate()
                .map(|(idx, &w)| match (w > 0.0, normalise) {
                    (false, _) => 0.0,
                    (true, false) => w.ln(),
                    (true, true) => (w / sums[idx / mp]).ln(),
                })
                .collect();
            let pos = upload(
                weights.iter().map(|&w| indicator(w > 0.0)).collect(),
                (m, mp),
                q,
            )?;
            let pos_u8 = pos.to_dtype(DType::U8)?;
            let t = (log_prob + upload(log_w, (m, mp), q)?)?;
            let t_min = t.detach().min_keepdim(D::Minus1)?.broadcast_as((m, mp))?;
            let t_pos = pos_u8.where_cond(&t, &t_min)?;
            let t_max = t_pos.detach().max_keepdim(D::Minus1)?;
            let s = (t_pos.broadcast_sub(&t_max)?.exp()? * pos)?.sum(D::Minus1)?;
            // Anchors without positives: sum 0 → add 1 so the log is 0, then mask.
            let s = (s + (1.0 - &has_pos_t)?)?;
            ((s.log()? + t_max.squeeze(D::Minus1)?)? * &has_pos_t)?.neg()?
        }
    };
    Ok(PerAnchorLoss {
        losses,
        has_positive,
    })
}

/// The scalar loss: per-anchor losses averaged as `config.empty_anchors` says.
///
/// # Shapes
/// `q`: `M × d`, `k`: `M' × d`, masks `M × M'` → scalar.
///
/// # Errors
/// As [`info_nce_per_anchor`]; [`Error::NoPositives`] under [`EmptyAnchors::Drop`] when no anchor
/// has a positive; [`Error::NonFiniteLoss`] if the value is NaN or infinite.
pub fn info_nce(
    q: &Tensor,
    k: &Tensor,
    masks: &ContrastMasks,
    config: &InfoNceConfig,
) -> Result<Tensor> {
    let per = info_nce_per_anchor(q, k, masks, config)?;
    let count = match config.empty_anchors {
        EmptyAnchors::CountAsZero => per.has_positive.len(),
        EmptyAnchors::Drop => per.has_positive.iter().filter(|&&h| h).count(),
    };
    if count == 0 {
        return Err(Error::NoPositives);
    }
    let loss = (per.losses.sum_all()? / count as f64)?;
    ensure_finite("InfoNCE", loss)
}

/// Returns `loss` unchanged if finite.
pub(crate) fn ensure_finite(name: &'static str, loss: Tensor) -> Result<Tensor> {
    let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    if value.is_finite() {
        Ok(loss)
    } else {
        Err(Error::NonFiniteLoss { loss: name, value })
    }
}
