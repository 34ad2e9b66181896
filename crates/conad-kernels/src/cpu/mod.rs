//! The CPU backend of the fused InfoNCE: tiles of `Q_blk K_blkᵀ` by `gemm`, masks from ids, a
//! streaming log-sum-exp per row, rayon over anchor blocks. It implements the contract of
//! [`crate::info_nce`] (the op description it shares with the CUDA backend, which it never
//! imports) on host memory.
//!
//! Memory is O((M + M')·d) plus one `BLOCK_ROWS × BLOCK_COLS` tile per worker: the M×M' logit
//! matrix never exists. Tiling does not depend on the thread count and every row is reduced in
//! a fixed order ([`lanes`]), so the same input gives the same bits for any rayon pool.
//!
//! [`storage`] is the entry from the candle op (`CpuStorage` in and out); [`forward`] and
//! [`backward`] are the two passes, built on [`gemm`], [`masks`], [`lanes`] and [`real`], with
//! [`isa`] choosing the instruction set.

mod backward;
mod forward;
mod gemm;
mod isa;
pub(crate) mod lanes;
mod masks;
pub(crate) mod real;
mod storage;

pub(crate) use forward::RowStats;
pub(crate) use storage::{pair_backward, pair_forward, shared_backward, shared_forward};

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
