//! The CPU backward pass (docs/reference.md §0 "The generic kernel"): recomputes the logit
//! tiles, forms `H = ∂L/∂S` tile by tile from the forward's [`RowStats`] ([`Coefs`]) and
//! accumulates `(1/τ) H C` per block of [`BLOCK_ROWS`] rows. One [`Pass`] gives `dq`, `dk`, or
//! — rows and columns both `z` — `dz` with both terms in a single sweep.

use rayon::prelude::*;

use super::forward::RowStats;
use super::gemm::{gemm_ab, gemm_abt};
use super::isa::multiversion;
use super::lanes::zero_capped;
use super::masks::fill_masks;
use super::real::Real;
use super::{BLOCK_COLS, BLOCK_ROWS, Rows};
use crate::info_nce::{MaskRules, PositiveReduction};

/// Per-anchor `(a_i, b_i, lse_i, lse_pos_i)` of the backward: `∂L/∂s_ij` for anchor `i` is
/// `a_i·[valid] e^{s_ij − lse_i} − b_i·[pos]·w_ij` with `w_ij = 1` (`L_out`) or
/// `e^{s_ij − lse_pos_i}` (`L_in`); zeros for rows that are not anchors or have no positive.
#[derive(Clone, Debug)]
pub(crate) struct Coefs<T> {
    pub a: Vec<T>,
    pub b: Vec<T>,
    pub lse: Vec<T>,
    pub lse_pos: Vec<T>,
}

impl<T: Real> Coefs<T> {
    /// Coefficients for `n_rows` rows of which the first `stats.loss.len()` are anchors;
    /// `grad[i]` is `∂L/∂ℓ_i`.
    pub(crate) fn new(
        stats: &RowStats,
        counts: &[u32],
        grad: &[f64],
        reduction: PositiveReduction,
        n_rows: usize,
    ) -> Self {
        let mut c = Self {
            a: vec![T::ZERO; n_rows],
            b: vec![T::ZERO; n_rows],
            lse: vec![T::ZERO; n_rows],
            lse_pos: vec![T::ZERO; n_rows],
        };
        for (i, &count) in counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            c.a[i] = T::from_f64(grad[i]);
            c.b[i] = T::from_f64(match reduction {
                PositiveReduction::MeanLogProb => grad[i] / f64::from(count),
                PositiveReduction::LogSumProb | PositiveReduction::LogMeanProb => grad[i],
            });
            c.lse[i] = T::from_f64(stats.lse[i]);
            c.lse_pos[i] = T::from_f64(stats.lse_pos[i]);
        }
        c
    }
}

/// One gradient pass: `grad_R = (1/τ) Σ_c H_rc C_c` with
/// `H_rc = G(r→c) [rows are anchors] + G(c→r) [cols are anchors]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pass<'a, T> {
    pub rows: Rows<'a, T>,
    pub cols: Rows<'a, T>,
    pub d: usize,
    pub shared: bool,
    pub rules: MaskRules,
    pub inv_tau: f64,
    pub reduction: PositiveReduction,
    /// Coefficients of the rows as anchors (term 1).
    pub row_coefs: Option<&'a Coefs<T>>,
    /// Coefficients of the columns as anchors (term 2).
    pub col_coefs: Option<&'a Coefs<T>>,
}

/// Adds one anchor's `G` row (anchor coefficients `(a, b, lse, lse_pos)`) into `h`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indexed loops over equal-length reslices vectorise
fn add_term_anchor_row<T: Real>(
    h: &mut [T],
    s: &[T],
    (valid, pos): (&[bool], &[bool]),
    (a, b, lse, lse_pos): (T, T, T, T),
    log_sum: bool,
) {
    let n = h.len();
    let (s, valid, pos) = (&s[..n], &valid[..n], &pos[..n]);
    if log_sum {
        for j in 0..n {
            let e = zero_capped(s[j] - lse).exp();
            let w = zero_capped(s[j] - lse_pos).exp();
            let g = if valid[j] { a * e } else { T::ZERO } - if pos[j] { b * w } else { T::ZERO };
            h[j] = h[j] + g;
        }
    } else {
        for j in 0..n {
            let e = zero_capped(s[j] - lse).exp();
            let g = if valid[j] { a * e } else { T::ZERO } - if pos[j] { b } else { T::ZERO };
            h[j] = h[j] + g;
        }
    }
}

/// Adds the column anchors' `G(c→r)` entries for one row into `h` (per-column coefficients).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indexed loops over equal-length reslices vectorise
fn add_term_anchor_cols<T: Real>(
    h: &mut [T],
    s: &[T],
    (valid, pos): (&[bool], &[bool]),
    (ca, cb, cl, clp): (&[T], &[T], &[T], &[T]),
    log_sum: bool,
) {
    let n = h.len();
    let (s, valid, pos) = (&s[..n], &valid[..n], &pos[..n]);
    let (ca, cb, cl, clp) = (&ca[..n], &cb[..n], &cl[..n], &clp[..n]);
    if log_sum {
        for j in 0..n {
            let e = zero_capped(s[j] - cl[j]).exp();
            let w = zero_capped(s[j] - clp[j]).exp();
            let g = if valid[j] { ca[j] * e } else { T::ZERO }
                - if pos[j] { cb[j] * w } else { T::ZERO };
            h[j] = h[j] + g;
        }
    } else {
        for j in 0..n {
            let e = zero_capped(s[j] - cl[j]).exp();
            let g =
                if valid[j] { ca[j] * e } else { T::ZERO } - if pos[j] { cb[j] } else { T::ZERO };
            h[j] = h[j] + g;
        }
    }
}

/// Gradient of rows `r0 .. r0 + bm` into `out` (`bm × d`).
#[inline(always)]
fn backward_block_impl<T: Real>(pass: &Pass<'_, T>, r0: usize, out: &mut [T]) {
    let d = pass.d;
    let bm = out.len() / d.max(1);
    let beta = T::from_f64(pass.inv_tau);
    let log_sum = pass.reduction != PositiveReduction::MeanLogProb;
    // Logits tile and the H tile built from it.
    let mut s_tile = vec![T::ZERO; bm * BLOCK_COLS];
    let mut h_tile = vec![T::ZERO; bm * BLOCK_COLS];
    let mut valid = vec![false; BLOCK_COLS];
    let mut pos = vec![false; BLOCK_COLS];
    let rows = &pass.rows.data[r0 * d..(r0 + bm) * d];
    let mut first = true;
    for c0 in (0..pass.cols.n).step_by(BLOCK_COLS) {
        let nb = BLOCK_COLS.min(pass.cols.n - c0);
        let cols = &pass.cols.data[c0 * d..(c0 + nb) * d];
        gemm_abt(
            &mut s_tile,
            BLOCK_COLS,
            rows,
            cols,
            (bm, nb, d),
            beta,
            false,
        );
        let col_ids = (&pass.cols.inst[c0..c0 + nb], &pass.cols.lab[c0..c0 + nb]);
        let col_coefs = pass.col_coefs.map(|c| {
            let span = c0..c0 + nb;
            (
                &c.a[span.clone()],
                &c.b[span.clone()],
                &c.lse[span.clone()],
                &c.lse_pos[span],
            )
        });
        for r in 0..bm {
            let rg = r0 + r;
            let row_coefs = pass
                .row_coefs
                .map(|c| (c.a[rg], c.b[rg], c.lse[rg], c.lse_pos[rg]))
                .filter(|&(a, b, _, _)| a != T::ZERO || b != T::ZERO);
            let h = &mut h_tile[r * BLOCK_COLS..r * BLOCK_COLS + nb];
            h.fill(T::ZERO);
            if row_coefs.is_none() && col_coefs.is_none() {
                continue;
            }
            let self_col = (pass.shared && rg >= c0 && rg < c0 + nb).then(|| rg - c0);
            let (valid, pos) = (&mut valid[..nb], &mut pos[..nb]);
            fill_masks(
                &pass.rules,
                (pass.rows.inst[rg], pass.rows.lab[rg]),
                self_col,
                col_ids,
                valid,
                pos,
            );
            let s = &s_tile[r * BLOCK_COLS..r * BLOCK_COLS + nb];
            if let Some(coefs) = row_coefs {
                add_term_anchor_row(h, s, (valid, pos), coefs, log_sum);
            }
            if let Some(coefs) = col_coefs {
                add_term_anchor_cols(h, s, (valid, pos), coefs, log_sum);
            }
        }
        gemm_ab(out, &h_tile, BLOCK_COLS, cols, (bm, nb, d), beta, !first);
        first = false;
    }
    if first {
        out.fill(T::ZERO);
    }
}

multiversion!(
    backward_block,
    backward_block_impl,
    (pass: &Pass<'_, T>, r0: usize, out: &mut [T])
);

/// One gradient pass over all rows of `pass.rows` (see [`Pass`]); returns `rows.n × d`.
pub(crate) fn backward_pass<T: Real>(pass: &Pass<'_, T>) -> Vec<T> {
    let d = pass.d;
    let mut out = vec![T::ZERO; pass.rows.n * d];
    if d == 0 {
        return out;
    }
    out.par_chunks_mut(BLOCK_ROWS * d)
        .enumerate()
        .for_each(|(b, chunk)| backward_block(pass, b * BLOCK_ROWS, chunk));
    out
}
