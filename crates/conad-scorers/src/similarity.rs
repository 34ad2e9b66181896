//! Blocked inner products between a query set and a bank, with a per-tile reduction fused right
//! after each GEMM tile (docs/reference.md §2.2 "tile the train matrix, GEMM, keep the top-k per row").
//!
//! Work is cut into (query block × bank tile) pairs. For each pair one GEMM computes the tile
//! `T = bank[c0..c1] · Q_blockᵀ` (`tile rows × block rows`, row-major: row j is bank item
//! `c0 + j`, column i is query i of the block) into a per-thread scratch buffer, and a reducer
//! folds the tile into a per-(block, tile) state (running top-k, log-sum-exp, argmax, …). States of
//! one block are then merged **in bank-tile order**, so results do not depend on the number of
//! threads (the partition is fixed by [`TilePlan`], never by the thread count).
//!
//! Memory: the bank (borrowed), at most four prepared query blocks, and one
//! `bank_tile × query_block` scratch tile per worker thread — O(bank + block) whatever the
//! number of queries.
//!
//! Kernel choice: the bank-major layout with the `gemm` crate's `x86-v4` kernels and 128 × 2048
//! tiles (a 1 MiB tile that stays in L2); the measurements behind it are in docs/engine.md
//! ("kNN similarity kernel").

use std::cell::RefCell;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::embeddings::Embeddings;
use crate::error::{Error, Result};

/// How the (queries × bank) product is cut into tiles.
///
/// The defaults (128 queries × 2048 bank rows = a 1 MiB `f32` tile per thread) were the fastest
/// on a 2-core AVX-512 machine for a 50 000 × 512 bank; results do not depend on them except in
/// the last bits of floating-point rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TilePlan {
    /// Query rows per block (≥ 1).
    pub query_block: usize,
    /// Bank rows per tile (≥ 1).
    pub bank_tile: usize,
}

impl Default for TilePlan {
    fn default() -> Self {
        Self {
            query_block: 128,
            bank_tile: 2048,
        }
    }
}

impl TilePlan {
    /// Checks both sizes are ≥ 1.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`].
    pub fn validate(&self) -> Result<()> {
        if self.query_block == 0 {
            return Err(Error::invalid(
                "query_block",
                "0",
                "tiles need at least one query row (default 128)",
            ));
        }
        if self.bank_tile == 0 {
            return Err(Error::invalid(
                "bank_tile",
                "0",
                "tiles need at least one bank row (default 2048)",
            ));
        }
        Ok(())
    }
}

/// Query blocks in flight at once (see [`blocked_reduce`]).
const WAVE_BLOCKS: usize = 4;

thread_local! {
    static TILE_SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `dst (nn × m, row-major) = bank (nn × d, row-major) · qᵀ` where `q` is `m × d` row-major.
pub(crate) fn bank_times_queries_t(
    bank: &[f32],
    nn: usize,
    q: &[f32],
    m: usize,
    d: usize,
    dst: &mut [f32],
) {
    assert!(bank.len() >= nn * d && q.len() >= m * d && dst.len() >= nn * m);
    if nn == 0 || m == 0 {
        return;
    }
    // SAFETY: the assertion above guarantees every pointer offset gemm touches is in bounds:
    // dst is nn × m with row stride m, lhs (bank) nn × d with row stride d, rhs = qᵀ is d × m
    // with column stride d. The buffers do not alias (dst is a distinct &mut).
    unsafe {
        gemm::gemm(
            nn,
            m,
            d,
            dst.as_mut_ptr(),
            1,
            m as isize,
            false,
            bank.as_ptr(),
            1,
            d as isize,
            q.as_ptr(),
            d as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `dst (d × d, row-major) += xᵀ · x` for a row-major `rows × d` chunk `x`, in `f64` (scatter
/// matrices for covariances).
pub(crate) fn accumulate_gram_f64(x: &[f64], rows: usize, d: usize, dst: &mut [f64]) {
    assert!(x.len() >= rows * d && dst.len() >= d * d);
    if rows == 0 {
        return;
    }
    // SAFETY: lhs = xᵀ is d × rows (column stride d, row stride 1), rhs = x is rows × d (row
    // stride d, column stride 1), dst is d × d row-major; all within the asserted lengths.
    unsafe {
        gemm::gemm(
            d,
            d,
            rows,
            dst.as_mut_ptr(),
            1,
            d as isize,
            true,
            x.as_ptr(),
            d as isize,
            1,
            x.as_ptr(),
            1,
            d as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `dst (m × p, row-major) = a (m × d, row-major) · bᵀ` with `b` `p × d` row-major, in `f64`.
pub(crate) fn matmul_nt_f64(a: &[f64], m: usize, b: &[f64], p: usize, d: usize, dst: &mut [f64]) {
    assert!(a.len() >= m * d && b.len() >= p * d && dst.len() >= m * p);
    if m == 0 || p == 0 {
        return;
    }
    // SAFETY: lhs a is m × d (row stride d), rhs bᵀ is d × p (column stride d, row stride 1),
    // dst m × p row-major; all within the asserted lengths.
    unsafe {
        gemm::gemm(
            m,
            p,
            d,
            dst.as_mut_ptr(),
            1,
            p as isize,
            false,
            a.as_ptr(),
            1,
            d as isize,
            b.as_ptr(),
            d as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// A prepared query block: the left GEMM operand (`rows × d`, row-major) plus any per-row data
/// the reducer needs (norms, squared norms, …).
#[derive(Debug)]
pub(crate) struct PreparedBlock<A> {
    pub operand: Vec<f32>,
    pub rows: usize,
    pub aux: A,
}

/// Runs the blocked product of `queries` against `bank` (`n × d`) and reduces every tile.
///
/// - `prepare(block)` builds the left operand of a query block (e.g. L2-normalised rows);
/// - `init(&prepared)` makes an empty per-(block, tile) state;
/// - `reduce(&mut state, &prepared, tile, bank_start)` folds one tile (`tile_rows × rows`,
///   row-major, bank-major) into the state (it may overwrite the tile: it is scratch);
/// - `merge(&mut acc, state)` merges a later tile's state into the accumulator (called in
///   bank-tile order);
/// - `finish(state, &prepared, &mut out)` appends one output per query row.
///
/// Outputs are returned in query order. An empty bank gives `init` states that are finished
/// directly.
#[allow(clippy::too_many_arguments)]
pub(crate) fn blocked_reduce<A, S, O, P, I, R, M, F>(
    queries: Embeddings<'_>,
    bank: &[f32],
    n: usize,
    plan: TilePlan,
    prepare: P,
    init: I,
    reduce: R,
    merge: M,
    finish: F,
) -> Vec<O>
where
    A: Send + Sync,
    S: Send,
    O: Send,
    P: Fn(Embeddings<'_>) -> PreparedBlock<A> + Sync,
    I: Fn(&PreparedBlock<A>) -> S + Sync,
    R: Fn(&mut S, &PreparedBlock<A>, &mut [f32], usize) + Sync,
    M: Fn(&mut S, S) + Sync,
    F: Fn(S, &PreparedBlock<A>, &mut Vec<O>) + Sync,
{
    let d = queries.cols();
    debug_assert_eq!(bank.len(), n * d);
    let m = queries.rows();
    let qb = plan.query_block.max(1);
    let bt = plan.bank_tile.max(1);
    let n_blocks = m.div_ceil(qb);
    let n_tiles = n.div_ceil(bt);

    let mut out = Vec::with_capacity(m);
    // Blocks are processed in waves of WAVE_BLOCKS; inside a wave every (block, tile) pair is
    // one task, so small banks (one tile) still use every thread and at most WAVE_BLOCKS
    // prepared blocks are alive at a time (bounded memory, no nested parallelism).
    for wave_start in (0..n_blocks).step_by(WAVE_BLOCKS) {
        let wave_end = (wave_start + WAVE_BLOCKS).min(n_blocks);
        let prepared: Vec<PreparedBlock<A>> = (wave_start..wave_end)
            .into_par_iter()
            .map(|b| {
                let r0 = b * qb;
                prepare(queries.slice_rows(r0, (r0 + qb).min(m)))
            })
            .collect();
        let states: Vec<S> = (0..prepared.len() * n_tiles)
            .into_par_iter()
            .map(|task| {
                let p = &prepared[task / n_tiles];
                let t = task % n_tiles;
                let c0 = t * bt;
                let c1 = (c0 + bt).min(n);
                let nn = c1 - c0;
                let rows = p.rows;
                let mut state = init(p);
                TILE_SCRATCH.with_borrow_mut(|buf| {
                    if buf.len() < nn * rows {
                        buf.resize(nn * rows, 0.0);
                    }
                    let tile = &mut buf[..nn * rows];
                    bank_times_queries_t(&bank[c0 * d..c1 * d], nn, &p.operand, rows, d, tile);
                    reduce(&mut state, p, tile, c0);
                });
                state
            })
            .collect();
        let mut states = states.into_iter();
        for p in &prepared {
            let mut acc = init(p);
            let mut first = true;
            for s in states.by_ref().take(n_tiles) {
                if first {
                    acc = s;
                    first = false;
                } else {
                    merge(&mut acc, s);
                }
            }
            finish(acc, p, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_wrappers_match_naive_loops() {
        let (nn, m, d) = (7, 5, 3);
        let bank: Vec<f32> = (0..nn * d).map(|i| (i as f32 * 0.37).sin()).collect();
        let q: Vec<f32> = (0..m * d).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut dst = vec![0.0; nn * m];
        bank_times_queries_t(&bank, nn, &q, m, d, &mut dst);
        for j in 0..nn {
            for i in 0..m {
                let e: f32 = (0..d).map(|c| bank[j * d + c] * q[i * d + c]).sum();
                assert!((dst[j * m + i] - e).abs() < 1e-5);
            }
        }
        let x: Vec<f64> = bank.iter().map(|&v| f64::from(v)).collect();
        let mut g = vec![1.0; d * d];
        accumulate_gram_f64(&x, nn, d, &mut g);
        for a in 0..d {
            for b in 0..d {
                let e: f64 = 1.0 + (0..nn).map(|r| x[r * d + a] * x[r * d + b]).sum::<f64>();
                assert!((g[a * d + b] - e).abs() < 1e-12);
            }
        }
        let y: Vec<f64> = q.iter().map(|&v| f64::from(v)).collect();
        let mut p = vec![0.0; nn * m];
        matmul_nt_f64(&x, nn, &y, m, d, &mut p);
        for j in 0..nn {
            for i in 0..m {
                let e: f64 = (0..d).map(|c| x[j * d + c] * y[i * d + c]).sum();
                assert!((p[j * m + i] - e).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn blocked_reduce_sums_every_product_once_in_order() {
        // Sum of all q·b over the bank, per query, with tiny tiles so every edge case appears.
        let (n, m, d) = (11, 9, 4);
        let bank: Vec<f32> = (0..n * d).map(|i| (i % 5) as f32).collect();
        let q: Vec<f32> = (0..m * d).map(|i| (i % 3) as f32).collect();
        let qs = Embeddings::new(&q, m, d).unwrap();
        let plan = TilePlan {
            query_block: 4,
            bank_tile: 3,
        };
        let out: Vec<f64> = blocked_reduce(
            qs,
            &bank,
            n,
            plan,
            |blk| PreparedBlock {
                operand: blk.as_slice().to_vec(),
                rows: blk.rows(),
                aux: (),
            },
            |p| (vec![0.0f64; p.rows], usize::MAX),
            |st, p, tile, c0| {
                st.1 = c0;
                for row in tile.chunks_exact(p.rows) {
                    for (a, &v) in st.0.iter_mut().zip(row) {
                        *a += f64::from(v);
                    }
                }
            },
            |acc, later| {
                // Merge order is by bank tile.
                assert!(later.1 > acc.1 || acc.1 == usize::MAX);
                acc.1 = later.1;
                for (a, b) in acc.0.iter_mut().zip(later.0) {
                    *a += b;
                }
            },
            |st, _, out| out.extend(st.0),
        );
        for i in 0..m {
            let e: f64 = (0..n)
                .map(|j| {
                    (0..d)
                        .map(|c| f64::from(q[i * d + c] * bank[j * d + c]))
                        .sum::<f64>()
                })
                .sum();
            assert_eq!(out[i], e);
        }
    }
}
