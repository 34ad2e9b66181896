//! CPU kernels of the fused InfoNCE: tiles of `Q_blk K_blkᵀ` by `gemm`, masks from ids, a
//! streaming log-sum-exp per row, rayon over anchor blocks.
//!
//! Memory is O((M + M')·d) plus one `BLOCK_ROWS × BLOCK_COLS` tile per worker: the M×M' logit
//! matrix never exists. Tiling does not depend on the thread count and every row is reduced in
//! a fixed order ([`lanes`]), so the same input gives the same bits for any rayon pool.

pub(crate) mod lanes;
pub(crate) mod real;

use rayon::prelude::*;

use crate::reduction::PositiveReduction;
use crate::rules::{Denominator, MaskRules, PositiveRule};
use lanes::{masked_exp_sum, masked_max, masked_sum, zero_capped};
use real::Real;

/// Anchor rows per rayon task.
pub(crate) const BLOCK_ROWS: usize = 128;
/// Keys per tile.
pub(crate) const BLOCK_COLS: usize = 256;

/// Rows of one matrix and their ids.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rows<'a, T> {
    /// Row-major `n × d`.
    pub data: &'a [T],
    pub n: usize,
    pub inst: &'a [i64],
    pub lab: &'a [i64],
}

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

/// `dst[0..m, 0..n] (row stride dst_rs) = beta · a[0..m] · b[0..n]ᵀ` (+ `dst` if `accumulate`),
/// where `a` is `m × k` and `b` is `n × k`, both row-major with row stride `k`.
#[inline(always)]
fn gemm_abt<T: Real>(
    dst: &mut [T],
    dst_rs: usize,
    a: &[T],
    b: &[T],
    (m, n, k): (usize, usize, usize),
    beta: T,
    accumulate: bool,
) {
    assert!(dst.len() >= (m.max(1) - 1) * dst_rs + n && a.len() >= m * k && b.len() >= n * k);
    // SAFETY: the assertion bounds every index gemm touches: dst (i, j) at i·dst_rs + j with
    // i < m, j < n; a (i, p) at i·k + p; bᵀ (p, j) = b (j, p) at j·k + p.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            k as isize,
            1,
            T::ONE,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `dst (m × k, row stride k) (+)= beta · h (m × n, row stride h_rs) · c (n × k)`.
#[inline(always)]
fn gemm_ab<T: Real>(
    dst: &mut [T],
    h: &[T],
    h_rs: usize,
    c: &[T],
    (m, n, k): (usize, usize, usize),
    beta: T,
    accumulate: bool,
) {
    assert!(dst.len() >= m * k && h.len() >= (m.max(1) - 1) * h_rs + n && c.len() >= n * k);
    // SAFETY: bounds as asserted: dst (i, p) at i·k + p; h (i, j) at i·h_rs + j; c (j, p) at
    // j·k + p.
    unsafe {
        gemm::gemm(
            m,
            k,
            n,
            dst.as_mut_ptr(),
            1,
            k as isize,
            accumulate,
            h.as_ptr(),
            1,
            h_rs as isize,
            c.as_ptr(),
            1,
            k as isize,
            T::ONE,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Mask bits of one anchor against a key tile. Written as one simple loop per rule (LLVM
/// vectorises the id comparisons); the anchor's own column is cleared afterwards.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indexed loops over equal-length reslices vectorise
fn fill_masks(
    rules: &MaskRules,
    (ai, al): (i64, i64),
    self_col: Option<usize>,
    (ki, kl): (&[i64], &[i64]),
    valid: &mut [bool],
    pos: &mut [bool],
) {
    let n = valid.len();
    let (ki, kl, pos) = (&ki[..n], &kl[..n], &mut pos[..n]);
    match rules.positives {
        PositiveRule::SameInstance => {
            for j in 0..n {
                pos[j] = ki[j] == ai;
            }
        }
        PositiveRule::SameLabel => {
            for j in 0..n {
                pos[j] = kl[j] == al;
            }
        }
        PositiveRule::SameInstanceOrInlierLabel => {
            let inlier = al >= 0;
            for j in 0..n {
                pos[j] = (ki[j] == ai) | ((kl[j] == al) & inlier);
            }
        }
    }
    match rules.denominator {
        Denominator::AllOthers => valid.fill(true),
        Denominator::NoSameLabelNegatives => {
            for j in 0..n {
                valid[j] = pos[j] | (kl[j] != al);
            }
        }
    }
    if let Some(c) = self_col {
        valid[c] = false;
        pos[c] = false;
    }
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

/// Runtime-selected instruction set for the elementwise loops (the `gemm` crate dispatches on
/// its own). All levels give identical bits (no FMA contraction, fixed reduction order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    V3,
    #[cfg(target_arch = "x86_64")]
    V4,
}

fn level() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Level::V4;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Level::V3;
            }
        }
        Level::Baseline
    })
}

/// Defines `$name` (runtime dispatch) over `$imp` compiled for x86-64-v4, -v3 and baseline.
macro_rules! multiversion {
    ($name:ident, $imp:ident, ($($arg:ident: $ty:ty),*)) => {
        fn $name<T: Real>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
                fn v4<T: Real>($($arg: $ty),*) {
                    $imp($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn v3<T: Real>($($arg: $ty),*) {
                    $imp($($arg),*)
                }
                match level() {
                    // SAFETY: `level()` detected these features on this CPU.
                    Level::V4 => return unsafe { v4::<T>($($arg),*) },
                    // SAFETY: as above.
                    Level::V3 => return unsafe { v3::<T>($($arg),*) },
                    Level::Baseline => {}
                }
            }
            $imp($($arg),*)
        }
    };
}

multiversion!(
    forward_block,
    forward_block_impl,
    (p: &Problem<'_, T>, counts: &[u32], a0: usize, out: (&mut [f64], &mut [f64], &mut [f64]))
);
multiversion!(
    backward_block,
    backward_block_impl,
    (pass: &Pass<'_, T>, r0: usize, out: &mut [T])
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
