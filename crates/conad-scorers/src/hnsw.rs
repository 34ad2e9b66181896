//! Deterministic HNSW graph (Malkov & Yashunin, "Efficient and robust approximate nearest
//! neighbor search using Hierarchical Navigable Small World graphs", TPAMI 2018) — the approximate
//! backend of the kNN cosine scorer (docs/reference.md §2.2) for banks too large for exact search
//! (≳ 10⁶ rows). Cargo feature `hnsw` (off by default).
//!
//! Paper ↔ code:
//! - level of node `i`: `l = ⌊−ln(U)·m_L⌋` (§4.1, Alg. 1 line 4) with `m_L = 1/ln M` (the
//!   paper's recommended normalisation) and `U ∈ (0, 1]` drawn from
//!   `SeedTree::new(seed).child("hnsw-level").index(i)` — the level depends only on the seed and
//!   the node index;
//! - insertion: Alg. 1 (greedy descent with `ef = 1` above the node's level, then
//!   SEARCH-LAYER (Alg. 2) with `ef_construction` on each of its layers, the found set being the
//!   entry points of the next layer down);
//! - neighbour choice: SELECT-NEIGHBORS-HEURISTIC (Alg. 4) — a candidate is kept only if it is
//!   closer to the base element than to every neighbour kept so far; with
//!   `keep_pruned_connections` the discarded candidates fill the remaining slots, closest first;
//!   with `extend_candidates` the candidate set of a new element is first extended by its
//!   candidates' neighbours. `M` links per node on layers ≥ 1, `M_max0 = 2M` on layer 0; an
//!   overflowing neighbour list is shrunk with the same heuristic (Alg. 1 lines 13–16);
//! - K-NN-SEARCH: Alg. 5 (greedy descent, then SEARCH-LAYER on layer 0 with `max(ef_search, k)`).
//!
//! Measured on 5 000 × 32 clustered unit vectors, 300 queries (unit test `recall_against_brute_force`),
//! recall@10 at `ef_search` = 32 / 64 / 128 with M = 16: 0.90 / 0.96 / 0.996 (`ef_construction`
//! = 200); FAISS `IndexHNSWFlat` 1.15.1 on the same data: 0.91 / 0.97 / 0.995.
//!
//! **Reproducibility.** Nodes are inserted sequentially in index order, every tie is broken by
//! the lower node index, and inner products use a fixed accumulation order (64 lane accumulators
//! combined pairwise; no FMA contraction), so the same seed and bank give a bit-identical graph on
//! any machine whatever the SIMD width or thread count. Queries only read the graph and run in
//! parallel (rayon) with results in query order.
//!
//! Similarity is the inner product of L2-normalised vectors (cosine); the vectors are not stored
//! here but are the kNN scorer's normalised bank, so the graph costs `(2M + 1)·4` bytes per node
//! on layer 0 plus about `4·(M + 1)/(M − 1)` bytes per node above (≈ 132 MB for 10⁶ nodes with
//! M = 16, next to 2 GB for a 10⁶ × 512 bank). Insertion is sequential, so building is the
//! expensive part (roughly `n·ef_construction·M` inner products).

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use conad_rng::SeedTree;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::embeddings::{Embeddings, NORM_EPS, normalize_in_place};
use crate::error::{Error, Result};

/// Largest accepted `M` (links per node on layers ≥ 1).
pub const MAX_M: usize = 4096;

/// Cap on a node's level (the largest possible draw is `⌊−ln(2⁻⁵³)/ln 2⌋ = 53`, for M = 2).
const MAX_LEVEL: usize = 63;

/// HNSW construction and search parameters (serde; `Default`; [`HnswParams::validate`]).
///
/// ```
/// use conad_scorers::HnswParams;
/// let p = HnswParams { m: 24, ef_search: 128, ..HnswParams::default() };
/// assert_eq!(p.m_max0(), 48);
/// assert!(p.validate().is_ok());
/// assert!(HnswParams { m: 1, ..p }.validate().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HnswParams {
    /// Links per node on layers ≥ 1 (`M`; layer 0 keeps `M_max0 = 2M`). Default 16.
    pub m: usize,
    /// Candidate-list size while inserting (`efConstruction`, ≥ M). Default 200.
    pub ef_construction: usize,
    /// Candidate-list size while querying (`ef`, ≥ k); larger = higher recall, slower.
    /// Default 64.
    pub ef_search: usize,
    /// Alg. 4 `extendCandidates`: add the candidates' neighbours before selecting (helps on
    /// extremely clustered data; slower). Default off.
    pub extend_candidates: bool,
    /// Alg. 4 `keepPrunedConnections`: fill free link slots with pruned candidates (every list
    /// then stays full). Default off: on the 5 000 × 32 test data it lowered recall@10 at
    /// `ef_search` = 64 from 0.96 to 0.91 and made building 1.5× slower (lists full of
    /// near-duplicate directions reject links to new nodes), as hnswlib and FAISS also omit it;
    /// turn it on if isolated nodes matter more than recall.
    pub keep_pruned_connections: bool,
    /// Root seed of the level draws. Default 0.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            extend_candidates: false,
            keep_pruned_connections: false,
            seed: 0,
        }
    }
}

impl HnswParams {
    /// Links per node on layer 0 (`M_max0 = 2M`).
    pub const fn m_max0(&self) -> usize {
        2 * self.m
    }

    /// The level multiplier `m_L = 1/ln M`.
    pub fn level_multiplier(&self) -> f64 {
        1.0 / (self.m as f64).ln()
    }

    /// Checks `2 ≤ M ≤ 4096`, `ef_construction ≥ M` and `ef_search ≥ 1` (the kNN scorer also
    /// requires `ef_search ≥ k`).
    ///
    /// # Errors
    /// [`Error::InvalidHnswM`] or [`Error::HnswEfTooSmall`].
    pub fn validate(&self) -> Result<()> {
        if !(2..=MAX_M).contains(&self.m) {
            return Err(Error::InvalidHnswM(self.m));
        }
        if self.ef_construction < self.m {
            return Err(Error::HnswEfTooSmall {
                name: "ef_construction",
                value: self.ef_construction,
                min: self.m,
                reason: "each new node picks its M links among ef_construction candidates",
            });
        }
        if self.ef_search == 0 {
            return Err(Error::HnswEfTooSmall {
                name: "ef_search",
                value: 0,
                min: 1,
                reason: "the search keeps ef_search candidates",
            });
        }
        Ok(())
    }

    /// Checks the parameters for a `k`-neighbour search: [`HnswParams::validate`] and
    /// `ef_search ≥ k`.
    ///
    /// # Errors
    /// As [`HnswParams::validate`].
    pub fn validate_for_k(&self, k: usize) -> Result<()> {
        self.validate()?;
        if self.ef_search < k {
            return Err(Error::HnswEfTooSmall {
                name: "ef_search",
                value: self.ef_search,
                min: k,
                reason: "the search keeps ef_search candidates and returns the best k",
            });
        }
        Ok(())
    }
}

/// A scored node: similarity to the current base element and node id. The order is "closer":
/// higher similarity first, then the lower id (a total order, so ties are deterministic).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Scored {
    pub sim: f32,
    pub id: u32,
}

impl Eq for Scored {}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sim
            .total_cmp(&other.sim)
            .then_with(|| other.id.cmp(&self.id))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Sorts closest first.
fn sort_closest_first(v: &mut [Scored]) {
    v.sort_unstable_by(|a, b| b.cmp(a));
}

type DotFn = fn(&[f32], &[f32]) -> f32;

/// Lane accumulators of the inner product (see [`dot_portable`]).
const LANES: usize = 64;

/// Combines the lane accumulators pairwise (`acc[l] += acc[l + w]` for w = 32, 16, …, 1).
#[inline(always)]
fn reduce_lanes(acc: &mut [f32; LANES]) -> f32 {
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] += acc[l + w];
        }
    }
    acc[0]
}

/// The reference inner product: element `i` is accumulated into lane `i mod 64`
/// (`acc[l] += a[i]·b[i]`, a rounded product then a rounded sum, in increasing `i`), then the
/// lanes are combined by [`reduce_lanes`]. The SIMD kernels perform exactly these IEEE
/// operations (Rust never contracts to FMA), so every kernel gives bit-identical results.
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [0.0f32; LANES];
    for (i, (x, y)) in a[..n].iter().zip(&b[..n]).enumerate() {
        acc[i % LANES] += x * y;
    }
    reduce_lanes(&mut acc)
}

/// [`dot_portable`] with four 16-lane AVX-512 accumulators (lanes 0–15, 16–31, …) and masked
/// tail blocks that touch only their own lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::{
        __m512, _mm512_add_ps, _mm512_mask_add_ps, _mm512_maskz_loadu_ps, _mm512_mul_ps,
        _mm512_setzero_ps, _mm512_storeu_ps,
    };
    let n = a.len().min(b.len());
    let full = n / LANES * LANES;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut v: [__m512; 4] = [_mm512_setzero_ps(); 4];
    let mut c = 0;
    while c < n {
        for (j, vj) in v.iter_mut().enumerate() {
            let lo = c + 16 * j;
            if lo >= n {
                break;
            }
            let mask: u16 = if c < full || n - lo >= 16 {
                u16::MAX
            } else {
                (1u16 << (n - lo)) - 1
            };
            // SAFETY: the mask enables only elements lo .. min(lo + 16, n), all inside both
            // slices (n ≤ len); masked-off elements are not read.
            let (x, y) = unsafe {
                (
                    _mm512_maskz_loadu_ps(mask, pa.add(lo)),
                    _mm512_maskz_loadu_ps(mask, pb.add(lo)),
                )
            };
            let p = _mm512_mul_ps(x, y);
            *vj = if mask == u16::MAX {
                _mm512_add_ps(*vj, p)
            } else {
                _mm512_mask_add_ps(*vj, mask, *vj, p)
            };
        }
        c += LANES;
    }
    let mut acc = [0.0f32; LANES];
    for (j, vj) in v.iter().enumerate() {
        // SAFETY: acc has 64 lanes; block j writes lanes 16j .. 16j + 16.
        unsafe { _mm512_storeu_ps(acc.as_mut_ptr().add(16 * j), *vj) };
    }
    reduce_lanes(&mut acc)
}

/// [`dot_portable`] with eight 8-lane AVX accumulators for full 64-element blocks, the tail in
/// scalar code on the same lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::{
        __m256, _mm256_add_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_setzero_ps, _mm256_storeu_ps,
    };
    let n = a.len().min(b.len());
    let full = n / LANES * LANES;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut v: [__m256; 8] = [_mm256_setzero_ps(); 8];
    for c in (0..full).step_by(LANES) {
        for (j, vj) in v.iter_mut().enumerate() {
            // SAFETY: c + 8j + 8 ≤ full ≤ n ≤ len of both slices.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_ps(pa.add(c + 8 * j)),
                    _mm256_loadu_ps(pb.add(c + 8 * j)),
                )
            };
            *vj = _mm256_add_ps(*vj, _mm256_mul_ps(x, y));
        }
    }
    let mut acc = [0.0f32; LANES];
    for (j, vj) in v.iter().enumerate() {
        // SAFETY: acc has 64 lanes; block j writes lanes 8j .. 8j + 8.
        unsafe { _mm256_storeu_ps(acc.as_mut_ptr().add(8 * j), *vj) };
    }
    for (l, i) in (full..n).enumerate() {
        acc[l] += a[i] * b[i];
    }
    reduce_lanes(&mut acc)
}

/// The fastest inner-product kernel this CPU supports (all give identical results).
fn select_dot() -> DotFn {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return |a, b| unsafe { dot_avx512(a, b) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return |a, b| unsafe { dot_avx2(a, b) };
        }
    }
    dot_portable
}

/// The normalised bank seen as a metric space.
#[derive(Clone, Copy)]
struct Space<'a> {
    data: &'a [f32],
    dim: usize,
    dot: DotFn,
}

impl<'a> Space<'a> {
    fn new(bank: Embeddings<'a>) -> Self {
        Self {
            data: bank.as_slice(),
            dim: bank.cols(),
            dot: select_dot(),
        }
    }

    fn row(&self, id: u32) -> &'a [f32] {
        let i = id as usize;
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    fn sim(&self, q: &[f32], id: u32) -> f32 {
        (self.dot)(q, self.row(id))
    }

    fn scored(&self, q: &[f32], id: u32) -> Scored {
        Scored {
            sim: self.sim(q, id),
            id,
        }
    }
}

/// Per-search working memory: an epoch-stamped visited set and the two heaps of Alg. 2.
/// Its contents never influence results (each search starts a new epoch).
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    stamp: Vec<u32>,
    epoch: u32,
    candidates: BinaryHeap<Scored>,
    found: BinaryHeap<Reverse<Scored>>,
}

impl Scratch {
    fn begin(&mut self, n: usize) {
        if self.stamp.len() < n {
            self.stamp.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.stamp.fill(0);
            self.epoch = 1;
        }
    }

    /// Moves the result set of the last search into `out`, closest first.
    fn drain_sorted(&mut self, out: &mut Vec<Scored>) {
        out.clear();
        out.extend(self.found.drain().map(|r| r.0));
        sort_closest_first(out);
    }

    /// Marks `id` visited; `true` if it was not yet.
    fn visit(&mut self, id: u32) -> bool {
        let s = &mut self.stamp[id as usize];
        if *s == self.epoch {
            false
        } else {
            *s = self.epoch;
            true
        }
    }
}

thread_local! {
    static QUERY_SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A fitted HNSW graph over an L2-normalised bank (the kNN scorer's bank; the vectors are not
/// duplicated here). Built by [`KnnParams`](crate::KnnParams) with
/// [`KnnBackend::Hnsw`](crate::KnnBackend::Hnsw); serde (checked on load).
///
/// Layout: node `i`'s layer-0 links are the block `links0[i·(1+2M) ..][..1+2M]` =
/// `[count, ids…]`; a node of level `L ≥ 1` owns `L` blocks of `1+M` values in `upper_links`
/// (layers 1…L, in order), located by the prefix sum of the levels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawHnswIndex")]
pub struct HnswIndex {
    params: HnswParams,
    levels: Vec<u8>,
    entry: u32,
    links0: Vec<u32>,
    upper_links: Vec<u32>,
    /// Start of node `i`'s first upper block in `upper_links` (derived from `levels`).
    #[serde(skip)]
    upper_start: Vec<usize>,
}

/// Unchecked serde form of [`HnswIndex`].
#[derive(Deserialize)]
struct RawHnswIndex {
    params: HnswParams,
    levels: Vec<u8>,
    entry: u32,
    links0: Vec<u32>,
    upper_links: Vec<u32>,
}

fn corrupt(detail: String) -> Error {
    Error::CorruptModel {
        scorer: "knn (HNSW index)",
        detail,
    }
}

/// Prefix sum of `levels[i]·(1+M)`: start of each node's upper blocks, and the total length.
fn upper_layout(levels: &[u8], m: usize) -> (Vec<usize>, usize) {
    let mut starts = Vec::with_capacity(levels.len());
    let mut total = 0usize;
    for &l in levels {
        starts.push(total);
        total += usize::from(l) * (1 + m);
    }
    (starts, total)
}

impl TryFrom<RawHnswIndex> for HnswIndex {
    type Error = Error;

    fn try_from(r: RawHnswIndex) -> Result<Self> {
        r.params
            .validate()
            .map_err(|e| corrupt(format!("stored parameters are invalid ({e})")))?;
        let n = r.levels.len();
        if n == 0 || n >= u32::MAX as usize {
            return Err(corrupt(format!("{n} nodes")));
        }
        let (m, m0) = (r.params.m, r.params.m_max0());
        if r.levels.iter().any(|&l| usize::from(l) > MAX_LEVEL) {
            return Err(corrupt(format!("a node level exceeds {MAX_LEVEL}")));
        }
        let top = r.levels.iter().copied().max().unwrap_or(0);
        if r.entry as usize >= n || r.levels[r.entry as usize] != top {
            return Err(corrupt(format!(
                "entry point {} is not a node of the top level {top}",
                r.entry
            )));
        }
        if r.links0.len() != n * (1 + m0) {
            return Err(corrupt(format!(
                "layer 0 has {} values, expected {n} × {}",
                r.links0.len(),
                1 + m0
            )));
        }
        let (upper_start, total) = upper_layout(&r.levels, m);
        if r.upper_links.len() != total {
            return Err(corrupt(format!(
                "upper layers have {} values, expected {total}",
                r.upper_links.len()
            )));
        }
        let index = Self {
            params: r.params,
            levels: r.levels,
            entry: r.entry,
            links0: r.links0,
            upper_links: r.upper_links,
            upper_start,
        };
        for node in 0..n {
            for layer in 0..=index.level(node) {
                let cap = if layer == 0 { m0 } else { m };
                let blk = index.block(node, layer);
                let count = blk[0] as usize;
                if count > cap {
                    return Err(corrupt(format!(
                        "node {node} has {count} links on layer {layer} (at most {cap})"
                    )));
                }
                for &nb in &blk[1..=count] {
                    let nb = nb as usize;
                    if nb >= n || nb == node || index.level(nb) < layer {
                        return Err(corrupt(format!(
                            "node {node} links to {nb} on layer {layer}, which is not a node \
                             of that layer"
                        )));
                    }
                }
            }
        }
        Ok(index)
    }
}

/// Draws the level of one node: `⌊−ln(U)·m_L⌋` with `U ∈ (0, 1]` from the node's own stream.
fn draw_level(node: SeedTree, ml: f64) -> u8 {
    let u = 1.0 - node.rng().random::<f64>(); // (0, 1]
    let l = (-u.ln() * ml).floor();
    l.min(MAX_LEVEL as f64) as u8
}

/// Reusable buffers of the sequential build.
#[derive(Default)]
struct BuildBuffers {
    scratch: Scratch,
    entry_points: Vec<Scored>,
    found: Vec<Scored>,
    candidates: Vec<Scored>,
    selected: Vec<Scored>,
    pruned: Vec<Scored>,
    shrink: Vec<Scored>,
}

impl HnswIndex {
    /// Builds the graph over `bank`, whose rows must be L2-normalised (or zero).
    ///
    /// # Errors
    /// Invalid parameters, an empty bank, or a bank of `≥ 2³² − 1` rows (32-bit node ids).
    pub(crate) fn build(bank: Embeddings<'_>, params: &HnswParams) -> Result<Self> {
        params.validate()?;
        let n = bank.rows();
        bank.check_min_rows(1, "HNSW bank")?;
        if n >= u32::MAX as usize {
            return Err(Error::invalid(
                "bank rows",
                n,
                "the HNSW index uses 32-bit node ids; use fewer than 2^32 − 1 rows",
            ));
        }
        let ml = params.level_multiplier();
        let tree = SeedTree::new(params.seed).child("hnsw-level");
        let levels: Vec<u8> = (0..n as u64)
            .into_par_iter()
            .map(|i| draw_level(tree.index(i), ml))
            .collect();
        let (upper_start, total) = upper_layout(&levels, params.m);
        let mut index = Self {
            params: *params,
            levels,
            entry: 0,
            links0: vec![0; n * (1 + params.m_max0())],
            upper_links: vec![0; total],
            upper_start,
        };
        let space = Space::new(bank);
        let mut bufs = BuildBuffers::default();
        for q in 1..n as u32 {
            index.insert(&space, q, &mut bufs);
        }
        Ok(index)
    }

    /// Number of nodes (bank rows).
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Always `false` for a built index (a bank has at least one row).
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// The parameters it was built with (`ef_search` is the value at build time; the scorer's
    /// parameters decide the search).
    pub const fn params(&self) -> &HnswParams {
        &self.params
    }

    /// The entry point (a node of the top level).
    pub const fn entry_point(&self) -> usize {
        self.entry as usize
    }

    /// The top level (level of the entry point).
    pub fn max_level(&self) -> usize {
        self.level(self.entry as usize)
    }

    /// Level of `node` (it is present on layers `0..=level`).
    ///
    /// # Panics
    /// If `node >= len()`.
    pub fn level(&self, node: usize) -> usize {
        usize::from(self.levels[node])
    }

    /// The links of `node` on `layer`, in the order they were selected.
    ///
    /// # Panics
    /// If `node >= len()` or `layer > level(node)`.
    pub fn neighbours(&self, node: usize, layer: usize) -> &[u32] {
        let blk = self.block(node, layer);
        &blk[1..=blk[0] as usize]
    }

    fn block(&self, node: usize, layer: usize) -> &[u32] {
        if layer == 0 {
            let w = 1 + self.params.m_max0();
            &self.links0[node * w..(node + 1) * w]
        } else {
            assert!(
                layer <= self.level(node),
                "node {node} has no layer {layer}"
            );
            let w = 1 + self.params.m;
            let s = self.upper_start[node] + (layer - 1) * w;
            &self.upper_links[s..s + w]
        }
    }

    fn block_mut(&mut self, node: usize, layer: usize) -> &mut [u32] {
        if layer == 0 {
            let w = 1 + self.params.m_max0();
            &mut self.links0[node * w..(node + 1) * w]
        } else {
            let w = 1 + self.params.m;
            let s = self.upper_start[node] + (layer - 1) * w;
            &mut self.upper_links[s..s + w]
        }
    }

    fn set_links(&mut self, node: u32, layer: usize, links: &[Scored]) {
        let blk = self.block_mut(node as usize, layer);
        debug_assert!(links.len() < blk.len());
        blk[0] = links.len() as u32;
        for (slot, s) in blk[1..].iter_mut().zip(links) {
            *slot = s.id;
        }
    }

    /// Greedy descent on one layer (SEARCH-LAYER with ef = 1).
    fn greedy(&self, space: &Space<'_>, q: &[f32], mut cur: Scored, layer: usize) -> Scored {
        loop {
            let mut moved = false;
            for &nb in self.neighbours(cur.id as usize, layer) {
                let s = space.scored(q, nb);
                if s > cur {
                    cur = s;
                    moved = true;
                }
            }
            if !moved {
                return cur;
            }
        }
    }

    /// SEARCH-LAYER (Alg. 2): the `ef` closest nodes to `q` reachable on `layer` from `entries`,
    /// left in `s.found` (take them with [`Scratch::drain_sorted`]).
    fn search_layer(
        &self,
        space: &Space<'_>,
        q: &[f32],
        entries: &[Scored],
        ef: usize,
        layer: usize,
        s: &mut Scratch,
    ) {
        s.begin(self.len());
        s.candidates.clear();
        s.found.clear();
        for &e in entries {
            if s.visit(e.id) {
                s.candidates.push(e);
                s.found.push(Reverse(e));
                if s.found.len() > ef {
                    s.found.pop();
                }
            }
        }
        while let Some(c) = s.candidates.pop() {
            let furthest = s.found.peek().map_or(c, |r| r.0);
            if c < furthest {
                break; // every remaining candidate is further than the whole result set
            }
            for &nb in self.neighbours(c.id as usize, layer) {
                if !s.visit(nb) {
                    continue;
                }
                let e = space.scored(q, nb);
                if s.found.len() < ef || s.found.peek().is_some_and(|r| e > r.0) {
                    s.candidates.push(e);
                    s.found.push(Reverse(e));
                    if s.found.len() > ef {
                        s.found.pop();
                    }
                }
            }
        }
    }

    /// SELECT-NEIGHBORS-HEURISTIC (Alg. 4) on candidates sorted closest first (their `sim` is to
    /// the base element): keeps `e` only if no already-kept `r` is strictly closer to `e` than
    /// the base is; with `keep_pruned` the discarded ones fill the free slots, closest first.
    fn select_heuristic(
        space: &Space<'_>,
        candidates: &[Scored],
        m: usize,
        keep_pruned: bool,
        out: &mut Vec<Scored>,
        pruned: &mut Vec<Scored>,
    ) {
        out.clear();
        pruned.clear();
        for &e in candidates {
            if out.len() >= m {
                break;
            }
            let ev = space.row(e.id);
            if out.iter().all(|r| space.sim(ev, r.id) <= e.sim) {
                out.push(e);
            } else if keep_pruned {
                pruned.push(e);
            }
        }
        if keep_pruned {
            let free = m.saturating_sub(out.len());
            out.extend(pruned.iter().take(free));
        }
    }

    /// INSERT (Alg. 1) of node `q` (all nodes `< q` are already in the graph).
    fn insert(&mut self, space: &Space<'_>, q: u32, b: &mut BuildBuffers) {
        let p = self.params;
        let qv = space.row(q);
        let lq = self.level(q as usize);
        let top = self.max_level();
        let mut cur = space.scored(qv, self.entry);
        for layer in (lq + 1..=top).rev() {
            cur = self.greedy(space, qv, cur, layer);
        }
        b.entry_points.clear();
        b.entry_points.push(cur);
        for layer in (0..=lq.min(top)).rev() {
            self.search_layer(
                space,
                qv,
                &b.entry_points,
                p.ef_construction,
                layer,
                &mut b.scratch,
            );
            b.scratch.drain_sorted(&mut b.found);
            b.candidates.clear();
            b.candidates.extend_from_slice(&b.found);
            if p.extend_candidates {
                b.scratch.begin(self.len());
                b.scratch.visit(q);
                for c in &b.found {
                    b.scratch.visit(c.id);
                }
                for c in &b.found {
                    for &nb in self.neighbours(c.id as usize, layer) {
                        if b.scratch.visit(nb) {
                            b.candidates.push(space.scored(qv, nb));
                        }
                    }
                }
                sort_closest_first(&mut b.candidates);
            }
            Self::select_heuristic(
                space,
                &b.candidates,
                p.m,
                p.keep_pruned_connections,
                &mut b.selected,
                &mut b.pruned,
            );
            self.set_links(q, layer, &b.selected);
            let cap = if layer == 0 { p.m_max0() } else { p.m };
            let selected = std::mem::take(&mut b.selected);
            for e in &selected {
                self.add_link(space, e.id, q, layer, cap, b);
            }
            b.selected = selected;
            std::mem::swap(&mut b.entry_points, &mut b.found);
        }
        if lq > top {
            self.entry = q;
        }
    }

    /// Adds the link `e → q` on `layer`, shrinking `e`'s list with the heuristic if it would
    /// exceed `cap` (Alg. 1 lines 13–16).
    fn add_link(
        &mut self,
        space: &Space<'_>,
        e: u32,
        q: u32,
        layer: usize,
        cap: usize,
        b: &mut BuildBuffers,
    ) {
        let blk = self.block_mut(e as usize, layer);
        let count = blk[0] as usize;
        if count < cap {
            blk[1 + count] = q;
            blk[0] += 1;
            return;
        }
        let ev = space.row(e);
        b.shrink.clear();
        b.shrink
            .extend(blk[1..=count].iter().map(|&c| space.scored(ev, c)));
        b.shrink.push(space.scored(ev, q));
        sort_closest_first(&mut b.shrink);
        Self::select_heuristic(
            space,
            &b.shrink,
            cap,
            self.params.keep_pruned_connections,
            &mut b.candidates,
            &mut b.pruned,
        );
        let kept = std::mem::take(&mut b.candidates);
        self.set_links(e, layer, &kept);
        b.candidates = kept;
    }

    /// K-NN-SEARCH (Alg. 5): the `k` nearest nodes to the normalised query `q`, closest first.
    /// Falls back to a linear scan in the (pathological) case where the graph reaches fewer than
    /// `k` nodes, so `k ≤ len()` results are always returned.
    fn search(
        &self,
        space: &Space<'_>,
        q: &[f32],
        k: usize,
        ef: usize,
        s: &mut Scratch,
        out: &mut Vec<Scored>,
    ) {
        let mut cur = space.scored(q, self.entry);
        for layer in (1..=self.max_level()).rev() {
            cur = self.greedy(space, q, cur, layer);
        }
        self.search_layer(space, q, &[cur], ef.max(k), 0, s);
        s.drain_sorted(out);
        if out.len() < k {
            out.clear();
            out.extend((0..self.len() as u32).map(|i| space.scored(q, i)));
            sort_closest_first(out);
        }
        out.truncate(k);
    }

    /// Searches every query row of `queries` (raw; normalised here) and calls
    /// `emit(top_k_similarities_decreasing, raw_query_norm, out)` once per query, in order.
    /// Queries run in parallel in fixed chunks; results do not depend on the thread count.
    pub(crate) fn search_batch<O: Send>(
        &self,
        bank: Embeddings<'_>,
        queries: Embeddings<'_>,
        k: usize,
        ef: usize,
        emit: impl Fn(&[f32], f32, &mut Vec<O>) + Sync,
    ) -> Vec<O> {
        const CHUNK: usize = 32;
        let space = Space::new(bank);
        let m = queries.rows();
        let parts: Vec<Vec<O>> = (0..m.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let rows = c * CHUNK..((c + 1) * CHUNK).min(m);
                let mut out = Vec::with_capacity(rows.len());
                let mut q = vec![0.0f32; queries.cols()];
                let mut found = Vec::with_capacity(ef.max(k));
                let mut sims = Vec::with_capacity(k);
                QUERY_SCRATCH.with_borrow_mut(|s| {
                    for i in rows {
                        q.copy_from_slice(queries.row(i));
                        let norm = normalize_in_place(&mut q, NORM_EPS);
                        self.search(&space, &q, k, ef, s, &mut found);
                        sims.clear();
                        sims.extend(found.iter().map(|f| f.sim));
                        emit(&sims, norm, &mut out);
                    }
                });
                out
            })
            .collect();
        parts.into_iter().flatten().collect()
    }

    /// Ids and similarities of the `k` approximate nearest bank rows of every query
    /// (`m × k`, closest first), for recall measurements.
    #[cfg(test)]
    fn neighbours_batch(
        &self,
        bank: Embeddings<'_>,
        queries: Embeddings<'_>,
        k: usize,
        ef: usize,
    ) -> Vec<(u32, f32)> {
        let space = Space::new(bank);
        let mut s = Scratch::default();
        let mut found = Vec::new();
        let mut q = vec![0.0f32; queries.cols()];
        let mut out = Vec::with_capacity(queries.rows() * k);
        for row in queries.iter_rows() {
            q.copy_from_slice(row);
            normalize_in_place(&mut q, NORM_EPS);
            self.search(&space, &q, k, ef, &mut s, &mut found);
            out.extend(found.iter().map(|f| (f.id, f.sim)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embeddings::normalize_rows_in_place;

    /// `rows × d` points around `clusters` Gaussian centres (Box–Muller on seed-tree streams),
    /// L2-normalised.
    fn clustered(seed: u64, rows: usize, d: usize, clusters: usize, spread: f32) -> Vec<f32> {
        let tree = SeedTree::new(seed).child("hnsw-test-data");
        let mut rng = tree.rng();
        let mut gauss = move || {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        };
        let centres: Vec<f32> = (0..clusters * d).map(|_| gauss()).collect();
        let mut x = Vec::with_capacity(rows * d);
        for r in 0..rows {
            let c = (r * 7919) % clusters;
            for j in 0..d {
                x.push(centres[c * d + j] + spread * gauss());
            }
        }
        normalize_rows_in_place(&mut x, d, NORM_EPS);
        x
    }

    fn emb(v: &[f32], d: usize) -> Embeddings<'_> {
        Embeddings::new(v, v.len() / d, d).unwrap()
    }

    #[test]
    fn dot_kernels_agree_bitwise_and_with_f64() {
        for len in [1usize, 7, 16, 31, 32, 63, 64, 65, 100, 127, 128, 200, 512] {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let exact: f64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| f64::from(x) * f64::from(y))
                .sum();
            let p = dot_portable(&a, &b);
            assert!((f64::from(p) - exact).abs() < 1e-5, "{len}: {p} vs {exact}");
            assert_eq!(select_dot()(&a, &b).to_bits(), p.to_bits(), "len {len}");
            #[cfg(target_arch = "x86_64")]
            for (detected, kernel) in [
                (
                    std::arch::is_x86_feature_detected!("avx512f"),
                    dot_avx512 as unsafe fn(&[f32], &[f32]) -> f32,
                ),
                (std::arch::is_x86_feature_detected!("avx2"), dot_avx2),
            ] {
                if detected {
                    // SAFETY: the feature was detected just above.
                    let v = unsafe { kernel(&a, &b) };
                    assert_eq!(v.to_bits(), p.to_bits(), "len {len}");
                }
            }
        }
    }

    #[test]
    fn scored_order_is_similarity_then_lower_id() {
        let a = Scored { sim: 0.5, id: 3 };
        let b = Scored { sim: 0.5, id: 7 };
        let c = Scored { sim: 0.9, id: 9 };
        assert!(c > a && a > b);
        let mut v = vec![b, a, c];
        sort_closest_first(&mut v);
        assert_eq!(v, vec![c, a, b]);
    }

    #[test]
    fn heuristic_matches_hand_computed_example() {
        // Base q = (1, 0); candidates at 10°, 20°, −60° (unit vectors). Similarities to q:
        // cos 10° = 0.985, cos 20° = 0.940, cos 60° = 0.5.
        // e1 (10°) is kept; e2 (20°): cos(e2, e1) = cos 10° = 0.985 > 0.940 → pruned;
        // e3 (−60°): cos(e3, e1) = cos 70° = 0.342 ≤ 0.5 → kept.
        let deg = |a: f32| (a.to_radians().cos(), a.to_radians().sin());
        let pts: Vec<f32> = [10.0f32, 20.0, -60.0]
            .iter()
            .flat_map(|&a| {
                let (x, y) = deg(a);
                [x, y]
            })
            .collect();
        let space = Space::new(emb(&pts, 2));
        let q = [1.0f32, 0.0];
        let mut cands: Vec<Scored> = (0..3).map(|i| space.scored(&q, i)).collect();
        sort_closest_first(&mut cands);
        assert_eq!(cands.iter().map(|c| c.id).collect::<Vec<_>>(), [0, 1, 2]);
        let (mut out, mut pruned) = (Vec::new(), Vec::new());
        let ids = |v: &[Scored]| v.iter().map(|s| s.id).collect::<Vec<_>>();
        HnswIndex::select_heuristic(&space, &cands, 2, false, &mut out, &mut pruned);
        assert_eq!(ids(&out), [0, 2]); // plain top-2 would be [0, 1]
        HnswIndex::select_heuristic(&space, &cands, 3, false, &mut out, &mut pruned);
        assert_eq!(ids(&out), [0, 2]); // without keepPrunedConnections: only 2 links
        HnswIndex::select_heuristic(&space, &cands, 3, true, &mut out, &mut pruned);
        assert_eq!(ids(&out), [0, 2, 1]); // the pruned one fills the free slot
        HnswIndex::select_heuristic(&space, &cands, 1, true, &mut out, &mut pruned);
        assert_eq!(ids(&out), [0]);
    }

    #[test]
    fn level_distribution_follows_one_over_m() {
        // P(level ≥ l) = P(U ≤ e^{−l/m_L}) = M^{−l}. With n = 20 000 and M = 16: E[#level ≥ 1] =
        // 1250 (sd 34), E[#level ≥ 2] = 78.1 (sd 8.8).
        let p = HnswParams::default();
        let tree = SeedTree::new(5).child("hnsw-level");
        let levels: Vec<u8> = (0..20_000u64)
            .map(|i| draw_level(tree.index(i), p.level_multiplier()))
            .collect();
        let at_least = |l: u8| levels.iter().filter(|&&v| v >= l).count() as f64;
        assert!((at_least(1) - 1250.0).abs() < 4.0 * 34.0, "{}", at_least(1));
        assert!((at_least(2) - 78.1).abs() < 4.0 * 8.8, "{}", at_least(2));
    }

    #[test]
    fn graph_invariants_hold() {
        let (n, d) = (1500, 16);
        let x = clustered(1, n, d, 20, 0.4);
        for (extend, keep) in [(false, false), (true, false), (false, true)] {
            let p = HnswParams {
                m: 6,
                ef_construction: 40,
                extend_candidates: extend,
                keep_pruned_connections: keep,
                ..HnswParams::default()
            };
            check_invariants(&x, d, &p);
        }
    }

    fn check_invariants(x: &[f32], d: usize, p: &HnswParams) {
        let n = x.len() / d;
        let g = HnswIndex::build(emb(x, d), p).unwrap();
        assert_eq!(g.len(), n);
        assert_eq!(g.level(g.entry_point()), g.max_level());
        assert!((0..n).all(|i| g.level(i) <= g.max_level()));
        for node in 0..n {
            for layer in 0..=g.level(node) {
                let nb = g.neighbours(node, layer);
                let cap = if layer == 0 { p.m_max0() } else { p.m };
                assert!(nb.len() <= cap, "node {node} layer {layer}: {}", nb.len());
                let mut sorted = nb.to_vec();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), nb.len(), "duplicate link at node {node}");
                for &o in nb {
                    assert!(o as usize != node && g.level(o as usize) >= layer);
                }
            }
            assert!(!g.neighbours(node, 0).is_empty(), "node {node} isolated");
        }
        // Every node is reachable from the entry point on layer 0.
        let mut seen = vec![false; n];
        let mut stack = vec![g.entry_point()];
        seen[g.entry_point()] = true;
        while let Some(v) = stack.pop() {
            for &o in g.neighbours(v, 0) {
                if !std::mem::replace(&mut seen[o as usize], true) {
                    stack.push(o as usize);
                }
            }
        }
        let unreachable = seen.iter().filter(|&&s| !s).count();
        if p.keep_pruned_connections {
            assert_eq!(unreachable, 0, "{p:?}");
        } else {
            // Without keepPrunedConnections, pruning reverse links can orphan a rare node (a
            // known HNSW property); it must stay rare.
            assert!(unreachable * 200 <= n, "{unreachable} unreachable, {p:?}");
        }
    }

    #[test]
    fn tiny_banks_and_exhaustive_search_are_exact() {
        // With ef ≥ n the layer-0 search visits every reachable node: results are exact.
        let (n, d) = (40, 5);
        let x = clustered(3, n, d, 3, 1.0);
        let q = clustered(4, 9, d, 3, 1.0);
        let g = HnswIndex::build(
            emb(&x, d),
            &HnswParams {
                m: 4,
                ef_construction: 8,
                ..HnswParams::default()
            },
        )
        .unwrap();
        let got = g.neighbours_batch(emb(&x, d), emb(&q, d), 3, n);
        for (qi, qr) in q.chunks(d).enumerate() {
            let mut all: Vec<(f64, usize)> = x
                .chunks(d)
                .enumerate()
                .map(|(j, r)| (crate::embeddings::dot64(qr, r), j))
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0));
            for t in 0..3 {
                assert_eq!(got[qi * 3 + t].0 as usize, all[t].1, "query {qi} rank {t}");
            }
        }
        // A single-row bank.
        let one = HnswIndex::build(emb(&x[..d], d), &HnswParams::default()).unwrap();
        assert_eq!((one.len(), one.max_level()), (1, one.level(0)));
        assert_eq!(
            one.neighbours_batch(emb(&x[..d], d), emb(&q, d), 1, 1)[0].0,
            0
        );
    }

    #[test]
    fn recall_against_brute_force() {
        // 5 000 × 32 clustered bank, 300 queries from the same distribution; recall@10 and
        // recall@1 of the ids against a brute-force f64 scan.
        let (n, d, m, k) = (5000, 32, 300, 10);
        let x = clustered(10, n, d, 50, 0.35);
        let q = clustered(11, m, d, 50, 0.35);
        let p = HnswParams::default(); // M = 16, ef_construction = 200, ef_search = 64
        let g = HnswIndex::build(emb(&x, d), &p).unwrap();
        let got = g.neighbours_batch(emb(&x, d), emb(&q, d), k, p.ef_search);
        let (mut hit10, mut hit1) = (0usize, 0usize);
        for (qi, qr) in q.chunks(d).enumerate() {
            let mut all: Vec<(f64, u32)> = x
                .chunks(d)
                .enumerate()
                .map(|(j, r)| (crate::embeddings::dot64(qr, r), j as u32))
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0));
            let truth: Vec<u32> = all[..k].iter().map(|t| t.1).collect();
            let mine = &got[qi * k..(qi + 1) * k];
            hit10 += mine.iter().filter(|(id, _)| truth.contains(id)).count();
            hit1 += usize::from(mine[0].0 == truth[0]);
            // Returned similarities are the true ones, decreasing.
            for w in mine.windows(2) {
                assert!(w[0].1 >= w[1].1);
            }
            for &(id, s) in mine {
                let e = crate::embeddings::dot64(qr, &x[id as usize * d..][..d]);
                assert!((f64::from(s) - e).abs() < 1e-5);
            }
        }
        let (r10, r1) = (hit10 as f64 / (m * k) as f64, hit1 as f64 / m as f64);
        eprintln!("HNSW 5000x32 M=16 efC=200 ef=64: recall@10 = {r10:.4}, recall@1 = {r1:.4}");
        assert!(r10 >= 0.95, "recall@10 = {r10}");
        assert!(r1 >= 0.95, "recall@1 = {r1}");
    }

    #[test]
    fn corrupt_files_are_rejected() {
        let (n, d) = (200, 8);
        let x = clustered(2, n, d, 4, 0.5);
        let g = HnswIndex::build(emb(&x, d), &HnswParams::default()).unwrap();
        let ok: HnswIndex = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(ok, g);
        let mut bad = g.clone();
        bad.links0[1] = n as u32; // a link to a node that does not exist
        let e = serde_json::from_str::<HnswIndex>(&serde_json::to_string(&bad).unwrap());
        assert!(e.unwrap_err().to_string().contains("links to"));
        let mut bad = g.clone();
        bad.links0[0] = 1000; // count above 2M
        assert!(serde_json::from_str::<HnswIndex>(&serde_json::to_string(&bad).unwrap()).is_err());
        let mut bad = g.clone();
        assert!(g.max_level() > 0);
        bad.entry = (0..n).find(|&i| g.level(i) < g.max_level()).unwrap() as u32;
        let e = serde_json::from_str::<HnswIndex>(&serde_json::to_string(&bad).unwrap());
        assert!(e.unwrap_err().to_string().contains("entry point"));
        let mut bad = g;
        bad.upper_links.pop();
        assert!(serde_json::from_str::<HnswIndex>(&serde_json::to_string(&bad).unwrap()).is_err());
    }
}
