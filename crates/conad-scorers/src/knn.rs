//! Exact k-nearest-neighbour cosine scorer (docs/reference.md §2.2; FIRM/MSC/CON2 S_NND; §6.9, §6.22).
//!
//! Normality (paper): `s_cosk(x) = (1/k) Σ_{m ∈ NN_k(x)} ẑ(x)·ẑ(x_m)` (k = 1: the max cosine);
//! FIRM's "_norm" variant multiplies by the raw test-feature norm: `s_cosk,norm(x) = s_cosk(x)·‖f(x)‖`.
//!
//! **Anomaly score returned here:**
//! - plain: `1 − s_cosk(x)` ∈ [0, 2] (CON2's `S_NND = −max cos` plus 1; same ranking);
//! - norm-weighted: `−‖f(x)‖·s_cosk(x)` (negated normality; same ranking as FIRM's score).
//!
//! Implementation: the bank is L2-normalised once at fit time and stored row-major; queries are
//! normalised block by block and multiplied against bank tiles with the `gemm` crate's AVX-512
//! kernels; the top-k of every tile is folded into a streaming per-row top-k (see
//! [`similarity`](crate::similarity)), so memory stays O(bank + block) for any number of queries.
//! Results are exact (same as FAISS `IndexFlatIP` / sklearn `NearestNeighbors(metric="cosine")`
//! up to `f32` rounding, ≈1e-6).
//!
//! Backends ([`KnnBackend`]): `Exact` (the default, above) or, with the cargo feature `hnsw`,
//! `Hnsw` — an approximate, deterministic HNSW graph (module `hnsw`) built at fit
//! time over the same normalised bank, for banks over ~10⁶ rows. Scores then use the
//! approximate top-k (recall ≥ 0.95 at the default `ef_search` on the test data); everything
//! else (score definitions, norm weighting, serde, errors) is the same.

use serde::{Deserialize, Serialize};

use crate::embeddings::{EmbeddingMatrix, Embeddings, NORM_EPS, normalize_rows_in_place};
use crate::error::{Error, Result};
#[cfg(feature = "hnsw")]
use crate::hnsw::{HnswIndex, HnswParams};
use crate::similarity::{PreparedBlock, TilePlan, blocked_reduce};
use crate::topk::TopK;
use crate::traits::{AnomalyScorer, Fit, impl_param_guard};

/// How the top-k neighbours are found.
///
/// Serde (externally tagged, snake case): `"exact"` or `{"hnsw": {"m": 16, …}}`; in TOML
/// `backend = "exact"` or a `[backend.hnsw]` table. Non-exhaustive because the `Hnsw` variant
/// exists only with the cargo feature `hnsw`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KnnBackend {
    /// Exact blocked-GEMM search (default; docs/reference.md §2.2).
    #[default]
    Exact,
    /// Approximate HNSW graph search ([`HnswParams`]); feature `hnsw`.
    #[cfg(feature = "hnsw")]
    Hnsw(HnswParams),
}

/// Validated kNN parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KnnValidParams {
    k: usize,
    norm_weighting: bool,
    tiles: TilePlan,
    backend: KnnBackend,
}

impl Default for KnnValidParams {
    fn default() -> Self {
        Self {
            k: 1,
            norm_weighting: false,
            tiles: TilePlan::default(),
            backend: KnnBackend::Exact,
        }
    }
}

impl KnnValidParams {
    /// Number of neighbours averaged (1 = max cosine).
    pub const fn k(&self) -> usize {
        self.k
    }
    /// Whether the score is multiplied by the raw query norm (FIRM "_norm").
    pub const fn norm_weighting(&self) -> bool {
        self.norm_weighting
    }
    /// Tiling of the blocked GEMM.
    pub const fn tiles(&self) -> TilePlan {
        self.tiles
    }
    /// Search backend.
    pub const fn backend(&self) -> &KnnBackend {
        &self.backend
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.k == 0 {
            return Err(Error::ZeroK);
        }
        self.tiles.validate()?;
        match &self.backend {
            KnnBackend::Exact => Ok(()),
            #[cfg(feature = "hnsw")]
            KnnBackend::Hnsw(p) => p.validate_for_k(self.k),
        }
    }

    /// Fits on an owned bank, normalising it in place (no second copy of the bank: peak memory
    /// is the bank itself).
    ///
    /// # Errors
    /// As [`Fit::fit`].
    pub fn fit_owned(&self, bank: EmbeddingMatrix) -> Result<KnnScorer> {
        self.validate()?;
        check_bank(bank.view(), self.k)?;
        self.fit_checked(bank)
    }

    /// Normalises a bank that already passed [`check_bank`].
    fn fit_checked(&self, bank: EmbeddingMatrix) -> Result<KnnScorer> {
        let (rows, cols) = (bank.rows(), bank.cols());
        let mut data = bank.into_vec();
        normalize_rows_in_place(&mut data, cols, NORM_EPS);
        let bank = EmbeddingMatrix::new(data, rows, cols)?;
        #[cfg(feature = "hnsw")]
        let hnsw = match &self.backend {
            KnnBackend::Exact => None,
            KnnBackend::Hnsw(p) => Some(HnswIndex::build(bank.view(), p)?),
        };
        Ok(KnnScorer {
            params: self.clone(),
            bank,
            #[cfg(feature = "hnsw")]
            hnsw,
        })
    }
}

fn check_bank(train: Embeddings<'_>, k: usize) -> Result<()> {
    train.check_min_rows(1, "training bank")?;
    train.check_finite("training bank")?;
    if k > train.rows() {
        return Err(Error::KExceedsBank {
            k,
            bank: train.rows(),
        });
    }
    Ok(())
}

impl Fit for KnnValidParams {
    type Fitted = KnnScorer;

    fn fit(&self, train: Embeddings<'_>) -> Result<KnnScorer> {
        self.validate()?;
        check_bank(train, self.k)?;
        self.fit_checked(train.to_matrix())
    }
}

/// kNN cosine parameters (unchecked; builder setters; serde).
///
/// ```
/// use conad_scorers::{AnomalyScorer, Embeddings, Fit, KnnParams};
/// let bank = [1.0_f32, 0.0, 0.0, 1.0];
/// let knn = KnnParams::default().k(1).fit(Embeddings::new(&bank, 2, 2)?)?;
/// // A bank member has cosine 1 to itself: anomaly 1 − 1 = 0.
/// assert!(knn.score(&[2.0, 0.0])?.abs() < 1e-6);
/// // Orthogonal-ish query at 45°: anomaly 1 − cos 45°.
/// assert!((knn.score(&[1.0, 1.0])? - (1.0 - 0.5f32.sqrt())).abs() < 1e-6);
/// # Ok::<(), conad_scorers::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KnnParams(KnnValidParams);
impl_param_guard!(KnnParams, KnnValidParams);

impl KnnParams {
    /// Number of nearest neighbours averaged (default 1; FIRM's primary is 5, docs/reference.md §6.9).
    pub fn k(mut self, k: usize) -> Self {
        self.0.k = k;
        self
    }
    /// Multiply the mean cosine by the raw query norm (FIRM "_norm", CSI-style; default off).
    pub fn norm_weighting(mut self, on: bool) -> Self {
        self.0.norm_weighting = on;
        self
    }
    /// GEMM tiling (performance only; exact backend).
    pub fn tiles(mut self, tiles: TilePlan) -> Self {
        self.0.tiles = tiles;
        self
    }
    /// Search backend (default [`KnnBackend::Exact`]; `KnnBackend::Hnsw(HnswParams)` with the
    /// cargo feature `hnsw`).
    pub fn backend(mut self, backend: KnnBackend) -> Self {
        self.0.backend = backend;
        self
    }
    /// Fits on an owned bank without copying it (see [`KnnValidParams::fit_owned`]).
    ///
    /// # Errors
    /// As [`Fit::fit`].
    pub fn fit_owned(&self, bank: EmbeddingMatrix) -> Result<KnnScorer> {
        self.0.fit_owned(bank)
    }
}

/// A fitted kNN cosine scorer. Anomaly = `1 − s_cosk` (or `−‖f‖·s_cosk` with norm
/// weighting).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnnScorer {
    params: KnnValidParams,
    /// L2-normalised training bank, row-major.
    bank: EmbeddingMatrix,
    /// HNSW graph over `bank` (backend `Hnsw` only).
    #[cfg(feature = "hnsw")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hnsw: Option<HnswIndex>,
}

impl KnnScorer {
    /// The parameters it was fitted with.
    pub const fn params(&self) -> &KnnValidParams {
        &self.params
    }

    /// The L2-normalised bank.
    pub const fn bank(&self) -> &EmbeddingMatrix {
        &self.bank
    }

    /// The HNSW graph (backend `Hnsw`), `None` for the exact backend.
    #[cfg(feature = "hnsw")]
    pub const fn hnsw_index(&self) -> Option<&HnswIndex> {
        self.hnsw.as_ref()
    }

    /// Changes the HNSW query candidate-list size `ef_search` without rebuilding the graph
    /// (higher = better recall, slower).
    ///
    /// # Errors
    /// [`Error::OptionNotApplicable`] for the exact backend; [`Error::HnswEfTooSmall`] if
    /// `ef < k`.
    #[cfg(feature = "hnsw")]
    pub fn set_ef_search(&mut self, ef: usize) -> Result<()> {
        let k = self.params.k;
        match &mut self.params.backend {
            KnnBackend::Hnsw(p) => {
                let new = HnswParams {
                    ef_search: ef,
                    ..*p
                };
                new.validate_for_k(k)?;
                *p = new;
                Ok(())
            }
            KnnBackend::Exact => Err(Error::OptionNotApplicable {
                option: "ef_search",
                scorer: "knn",
                hint: "ef_search applies to the HNSW backend only; this scorer is exact",
            }),
        }
    }

    /// The k largest cosine similarities of every query to the bank, `m × k` row-major, each
    /// row decreasing.
    ///
    /// # Errors
    /// As [`AnomalyScorer::score_batch`].
    pub fn top_k_similarities(&self, queries: Embeddings<'_>) -> Result<Vec<f32>> {
        self.check_queries(queries)?;
        Ok(self.run(queries, |top, _norm, out: &mut Vec<f32>| {
            out.extend_from_slice(top);
        }))
    }

    /// Paper normality scores `s_cosk` (or `s_cosk·‖f‖` with norm weighting), one per query.
    ///
    /// # Errors
    /// As [`AnomalyScorer::score_batch`].
    pub fn normality_batch(&self, queries: Embeddings<'_>) -> Result<Vec<f32>> {
        self.check_queries(queries)?;
        let weighted = self.params.norm_weighting;
        Ok(self.run(queries, move |top, norm, out: &mut Vec<f32>| {
            let mean = top.iter().map(|&v| f64::from(v)).sum::<f64>() / top.len() as f64;
            let s = if weighted {
                mean * f64::from(norm)
            } else {
                mean
            };
            out.push(s as f32);
        }))
    }

    fn check_queries(&self, queries: Embeddings<'_>) -> Result<()> {
        if self.params.validate().is_err() || self.params.k > self.bank.rows() {
            return Err(Error::CorruptModel {
                scorer: "knn",
                detail: format!(
                    "k = {} with a bank of {} rows",
                    self.params.k,
                    self.bank.rows()
                ),
            });
        }
        #[cfg(feature = "hnsw")]
        match (&self.params.backend, &self.hnsw) {
            (KnnBackend::Exact, None) => {}
            (KnnBackend::Hnsw(_), Some(g)) if g.len() == self.bank.rows() => {}
            (backend, g) => {
                return Err(Error::CorruptModel {
                    scorer: "knn",
                    detail: format!(
                        "backend {backend:?} with {} over a bank of {} rows",
                        g.as_ref().map_or("no HNSW index".to_string(), |g| format!(
                            "an HNSW index of {} nodes",
                            g.len()
                        )),
                        self.bank.rows()
                    ),
                });
            }
        }
        queries.check_dim(self.bank.cols(), "kNN queries")?;
        queries.check_finite("queries")
    }

    /// Core loop: `emit(top_k_row, raw_query_norm, out)` once per query, in order.
    fn run<O: Send>(
        &self,
        queries: Embeddings<'_>,
        emit: impl Fn(&[f32], f32, &mut Vec<O>) + Sync,
    ) -> Vec<O> {
        let k = self.params.k;
        #[cfg(feature = "hnsw")]
        if let (KnnBackend::Hnsw(p), Some(g)) = (&self.params.backend, &self.hnsw) {
            return g.search_batch(self.bank.view(), queries, k, p.ef_search, emit);
        }
        blocked_reduce(
            queries,
            self.bank.as_slice(),
            self.bank.rows(),
            self.params.tiles,
            |blk| {
                let mut operand = blk.as_slice().to_vec();
                let norms = normalize_rows_in_place(&mut operand, blk.cols(), NORM_EPS);
                PreparedBlock {
                    operand,
                    rows: blk.rows(),
                    aux: norms,
                }
            },
            |p| TopK::new(p.rows, k),
            |st, _p, tile, _c0| st.update_bank_major(tile),
            |acc, later| acc.merge(&later),
            |st, p, out| {
                for i in 0..p.rows {
                    emit(st.row(i), p.aux[i], out);
                }
            },
        )
    }
}

impl AnomalyScorer for KnnScorer {
    fn name(&self) -> &'static str {
        "knn"
    }

    fn dim(&self) -> usize {
        self.bank.cols()
    }

    fn score_batch(&self, queries: Embeddings<'_>) -> Result<Vec<f32>> {
        let s = self.normality_batch(queries)?;
        let weighted = self.params.norm_weighting;
        Ok(s.into_iter()
            .map(|v| if weighted { -v } else { 1.0 - v })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn emb(data: &[f32], d: usize) -> Embeddings<'_> {
        Embeddings::new(data, data.len() / d, d).unwrap()
    }

    #[test]
    fn typed_errors() {
        let bank = [1.0f32, 0.0, 0.0, 1.0];
        assert_eq!(
            KnnParams::default().k(0).fit(emb(&bank, 2)).unwrap_err(),
            Error::ZeroK
        );
        assert_eq!(
            KnnParams::default().k(3).fit(emb(&bank, 2)).unwrap_err(),
            Error::KExceedsBank { k: 3, bank: 2 }
        );
        assert!(matches!(
            KnnParams::default().fit(emb(&[], 2)).unwrap_err(),
            Error::EmptyBank { rows: 0, .. }
        ));
        let bad = [1.0f32, 0.0, f32::INFINITY, 1.0];
        assert!(matches!(
            KnnParams::default().fit(emb(&bad, 2)).unwrap_err(),
            Error::NonFinite { row: 1, col: 0, .. }
        ));
        let knn = KnnParams::default().fit(emb(&bank, 2)).unwrap();
        assert!(matches!(
            knn.score(&[1.0, 2.0, 3.0]).unwrap_err(),
            Error::DimensionMismatch {
                expected: 2,
                got: 3,
                ..
            }
        ));
        assert!(matches!(
            knn.score_batch(emb(&[1.0, 0.0, f32::NAN, 0.0], 2))
                .unwrap_err(),
            Error::NonFinite { row: 1, col: 0, .. }
        ));
    }

    #[test]
    fn hand_computed_mean_of_top_k_and_norm_weighting() {
        // Bank: e1, e2, (e1+e2)/√2 (stored unnormalised ×3). Query q = (3, 4) (norm 5):
        // cosines 0.6, 0.8, 7/(5√2) = 0.98995; top-2 mean = (0.98995 + 0.8)/2.
        let bank = [1.0f32, 0.0, 0.0, 1.0, 3.0, 3.0];
        let q = [3.0f32, 4.0];
        let c3 = 7.0 / (5.0 * 2f64.sqrt());
        let k2 = KnnParams::default().k(2).fit(emb(&bank, 2)).unwrap();
        let expect = 1.0 - (c3 + 0.8) / 2.0;
        assert!((f64::from(k2.score(&q).unwrap()) - expect).abs() < 1e-6);
        let k2n = KnnParams::default()
            .k(2)
            .norm_weighting(true)
            .fit(emb(&bank, 2))
            .unwrap();
        let expect_n = -5.0 * (c3 + 0.8) / 2.0;
        assert!((f64::from(k2n.score(&q).unwrap()) - expect_n).abs() < 1e-5);
        let top = k2.top_k_similarities(emb(&q, 2)).unwrap();
        assert!((f64::from(top[0]) - c3).abs() < 1e-6 && (top[1] - 0.8).abs() < 1e-6);
    }

    #[test]
    fn tiling_does_not_change_results() {
        let d = 5;
        let bank: Vec<f32> = (0..37 * d)
            .map(|i| ((i * 7919) % 23) as f32 - 11.0)
            .collect();
        let q: Vec<f32> = (0..13 * d)
            .map(|i| ((i * 104_729) % 19) as f32 - 9.0)
            .collect();
        let a = KnnParams::default().k(3).fit(emb(&bank, d)).unwrap();
        let b = KnnParams::default()
            .k(3)
            .tiles(TilePlan {
                query_block: 3,
                bank_tile: 4,
            })
            .fit(emb(&bank, d))
            .unwrap();
        let (sa, sb) = (
            a.score_batch(emb(&q, d)).unwrap(),
            b.score_batch(emb(&q, d)).unwrap(),
        );
        for (x, y) in sa.iter().zip(&sb) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
    }

    fn matrix(rows: usize, d: usize) -> impl Strategy<Value = Vec<f32>> {
        proptest::collection::vec(-3.0f32..3.0, rows * d)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn bank_member_has_anomaly_zero_with_k1(bank in matrix(20, 6), idx in 0usize..20) {
            let b = emb(&bank, 6);
            prop_assume!(super::super::embeddings::norm(b.row(idx)) > 1e-3);
            let knn = KnnParams::default().fit(b).unwrap();
            prop_assert!(knn.score(b.row(idx)).unwrap().abs() < 1e-5);
        }

        #[test]
        fn permuting_the_bank_changes_nothing(bank in matrix(15, 4), q in matrix(6, 4), k in 1usize..5, rot in 0usize..15) {
            let d = 4;
            let mut perm = Vec::with_capacity(bank.len());
            for r in 0..15 {
                let src = (r * 7 + rot) % 15; // 7 is coprime with 15: a permutation
                perm.extend_from_slice(&bank[src * d..(src + 1) * d]);
            }
            let a = KnnParams::default().k(k).fit(emb(&bank, d)).unwrap();
            let b = KnnParams::default().k(k).fit(emb(&perm, d)).unwrap();
            let (sa, sb) = (a.score_batch(emb(&q, d)).unwrap(), b.score_batch(emb(&q, d)).unwrap());
            prop_assert_eq!(sa, sb);
        }

        #[test]
        fn positive_row_scaling_changes_nothing(bank in matrix(12, 5), q in matrix(4, 5),
                                               scales in proptest::collection::vec(0.01f32..100.0, 16)) {
            let d = 5;
            let scaled_bank: Vec<f32> = bank.chunks(d).zip(&scales).flat_map(|(r, &s)| r.iter().map(move |v| v * s)).collect();
            let scaled_q: Vec<f32> = q.chunks(d).zip(scales.iter().rev()).flat_map(|(r, &s)| r.iter().map(move |v| v * s)).collect();
            let a = KnnParams::default().k(2).fit(emb(&bank, d)).unwrap();
            let b = KnnParams::default().k(2).fit(emb(&scaled_bank, d)).unwrap();
            let (sa, sb) = (a.score_batch(emb(&q, d)).unwrap(), b.score_batch(emb(&scaled_q, d)).unwrap());
            for (x, y) in sa.iter().zip(&sb) {
                prop_assert!((x - y).abs() < 1e-5, "{} vs {}", x, y);
            }
        }
    }
}
