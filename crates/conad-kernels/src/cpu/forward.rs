//! The CPU forward pass (docs/reference.md §0 "The generic kernel"): per block of
//! [`BLOCK_ROWS`] anchors, logit tiles against [`BLOCK_COLS`] keys at a time, masks from ids and
//! a streaming log-sum-exp per row; returns `ℓ_i` and the statistics the backward pass needs
//! ([`RowStats`]), as the op's [`Spec`](crate::info_nce::Spec) requires.

use rayon::prelude::*;

use super::gemm::gemm_abt;
use super::isa::multiversion;
use super::lanes::{masked_exp_sum, masked_max, masked_sum};
use super::masks::fill_masks;
use super::real::Real;
use super::{BLOCK_COLS, BLOCK_ROWS, Rows};
use crate::info_nce::{MaskRules, PositiveReduction};

/// One evaluation of the kernel: anchors, keys and the rules.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Problem<'a, T> {
    pub anchors: Rows<'a, T>,
    pub keys: Rows<'a, T>,
    pub d: usize,
    /// Key row `i` is anchor `i` itself (one shared `z`), excluded from numerator and
    /// denominator.
    pub shared: bool,
    pub rules: MaskRules,
    pub inv_tau: f64,
    pub reduction: PositiveReduction,
}

/// Per-anchor results of the forward pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RowStats {
    /// `ℓ_i` (0 for anchors without positives).
    pub loss: Vec<f64>,
    /// `log Σ_{valid} e^{s_ij}` (0 for anchors without positives, unused).
    pub lse: Vec<f64>,
    /// `log Σ_{pos} e^{s_ij}` (`L_in` only; 0 otherwise).
    pub lse_pos: Vec<f64>,
}

/// Running per-row state of the streaming log-sum-exps.
#[derive(Clone, Copy, Debug)]
struct RowState {
    max: f64,
    sum: f64,
    pos_max: f64,
    pos_sum: f64,
    pos_logit_sum: f64,
}

impl RowState {
    const EMPTY: Self = Self {
        max: f64::NEG_INFINITY,
        sum: 0.0,
        pos_max: f64::NEG_INFINITY,
        pos_sum: 0.0,
        pos_logit_sum: 0.0,
    };
}

/// Folds one tile row into `(max, sum)`: `sum·e^{max−max'} + Σ e^{s−max'}`.
#[inline(always)]
fn stream_lse<T: Real>(s: &[T], mask: &[bool], max: &mut f64, sum: &mut f64) {
    let tile_max = masked_max(s, mask);
    if tile_max == T::NEG_INFINITY {
        return;
    }
    let new_max = max.max(tile_max.to_f64());
    let tile_sum = masked_exp_sum(s, mask, T::from_f64(new_max)).to_f64();
    *sum = *sum * (*max - new_max).exp() + tile_sum;
    *max = new_max;
}

/// Forward over anchor rows `a0 .. a0 + bm`; writes their [`RowStats`] entries.
#[inline(always)]
fn forward_block_impl<T: Real>(
    p: &Problem<'_, T>,
    counts: &[u32],
    a0: usize,
    out: (&mut [f64], &mut [f64], &mut [f64]),
) {
    let (loss, lse, lse_pos) = out;
    let bm = loss.len();
    let d = p.d;
    let beta = T::from_f64(p.inv_tau);
    let want_pos_lse = p.reduction != PositiveReduction::MeanLogProb;
    let mut tile = vec![T::ZERO; bm * BLOCK_COLS];
    let mut valid = vec![false; BLOCK_COLS];
    let mut pos = vec![false; BLOCK_COLS];
    let mut state = vec![RowState::EMPTY; bm];
    let q = &p.anchors.data[a0 * d..(a0 + bm) * d];
    for k0 in (0..p.keys.n).step_by(BLOCK_COLS) {
        let nb = BLOCK_COLS.min(p.keys.n - k0);
        let k = &p.keys.data[k0 * d..(k0 + nb) * d];
        gemm_abt(&mut tile, BLOCK_COLS, q, k, (bm, nb, d), beta, false);
        let key_ids = (&p.keys.inst[k0..k0 + nb], &p.keys.lab[k0..k0 + nb]);
        for (r, st) in state.iter_mut().enumerate() {
            let a = a0 + r;
            if counts[a] == 0 {
                continue;
            }
            let self_col = (p.shared && a >= k0 && a < k0 + nb).then(|| a - k0);
            let (valid, pos) = (&mut valid[..nb], &mut pos[..nb]);
            fill_masks(
                &p.rules,
                (p.anchors.inst[a], p.anchors.lab[a]),
                self_col,
                key_ids,
                valid,
                pos,
            );
            let s = &tile[r * BLOCK_COLS..r * BLOCK_COLS + nb];
            stream_lse(s, valid, &mut st.max, &mut st.sum);
            if want_pos_lse {
                stream_lse(s, pos, &mut st.pos_max, &mut st.pos_sum);
            } else {
                st.pos_logit_sum += masked_sum(s, pos).to_f64();
            }
        }
    }
    for (r, st) in state.iter().enumerate() {
        let count = counts[a0 + r];
        if count == 0 {
            (loss[r], lse[r], lse_pos[r]) = (0.0, 0.0, 0.0);
            continue;
        }
        let l = st.max + st.sum.ln();
        let (value, lp) = match p.reduction {
            PositiveReduction::MeanLogProb => (l - st.pos_logit_sum / f64::from(count), 0.0),
            PositiveReduction::LogSumProb => {
                let lp = st.pos_max + st.pos_sum.ln();
                (l - lp, lp)
            }
            PositiveReduction::LogMeanProb => {
                let lp = st.pos_max + st.pos_sum.ln();
                (l - lp + f64::from(count).ln(), lp)
            }
        };
        (loss[r], lse[r], lse_pos[r]) = (value, l, lp);
    }
}

multiversion!(
    forward_block,
    forward_block_impl,
    (p: &Problem<'_, T>, counts: &[u32], a0: usize, out: (&mut [f64], &mut [f64], &mut [f64]))
);

/// The forward pass: per-anchor losses and the statistics the backward needs.
pub(crate) fn forward<T: Real>(p: &Problem<'_, T>, counts: &[u32]) -> RowStats {
    let m = p.anchors.n;
    let mut stats = RowStats {
        loss: vec![0.0; m],
        lse: vec![0.0; m],
        lse_pos: vec![0.0; m],
    };
    stats
        .loss
        .par_chunks_mut(BLOCK_ROWS)
        .zip(stats.lse.par_chunks_mut(BLOCK_ROWS))
        .zip(stats.lse_pos.par_chunks_mut(BLOCK_ROWS))
        .enumerate()
        .for_each(|(b, ((loss, lse), lse_pos))| {
            forward_block(p, counts, b * BLOCK_ROWS, (loss, lse, lse_pos));
        });
    stats
}
