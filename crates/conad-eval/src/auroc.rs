//! AUROC as a rank statistic with mid-ranks for ties (docs/reference.md §4.6).
//!
//! With `n₊` anomalies (positives) and `n₋` normals, and mid-ranks (tied scores share the average
//! of the ranks they occupy) in ascending score order,
//!
//! ```text
//! AUROC = (R₊ − n₊(n₊+1)/2) / (n₊ n₋),      R₊ = Σ mid-rank of the anomalies
//!       = P(score(anomaly) > score(normal)) + ½ P(score(anomaly) = score(normal))
//! ```
//!
//! The numerator is the Mann–Whitney `U`. It is computed from the sorted classes without forming
//! ranks: walking the distinct scores downwards, a tie group with `c₊` anomalies and `c₋` normals
//! and `b₋` normals strictly below contributes `c₊·(b₋ + c₋/2)` — the same sum as the mid-rank
//! formula, group by group. `2U` is accumulated **exactly** as an integer (`u128`) and divided by
//! `2 n₊ n₋` once in `f64`, so nothing is rounded before the final division (stronger than an
//! `f64` accumulator) and the value is bit-identical whatever the summation order or thread count.
//! It equals sklearn's `roc_auc_score` (trapezoidal area of the ROC curve whose tied groups move
//! diagonally) up to sklearn's own floating-point rounding.
//!
//! Degenerate cases: all scores tied → exactly 0.5; perfect separation → 1.0; reversed → 0.0;
//! NaN/±∞ or a single class → a typed [`Error`](crate::Error), never a number.
//!
//! # Complexity
//! One pass that validates, maps scores to order-preserving `u64` keys and splits them by class;
//! `sort_unstable` of the keys (O(n log n) integer comparisons, in place); one O(n) walk. Memory:
//! one `u64` per score. On a rayon pool with `T > 1` threads and n ≥ 262 144, the input is cut
//! into `T` contiguous chunks; each chunk partitions and sorts its own anomaly and normal keys in
//! parallel. Since `U` is a sum over (anomaly, normal) pairs, `U = Σᵢⱼ U(anomalies of chunk i,
//! normals of chunk j)`, summed over the `T²` chunk pairs in parallel, exactly.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::ranking::{
    PARALLEL_MIN, SortedClasses, check_both_classes, check_lengths, partition_keys,
};

/// Area under the ROC curve of anomaly scores (label `true` = anomaly, higher score = more
/// anomalous), with ties counted ½.
///
/// Runs on the current rayon thread pool (call it inside `ThreadPool::install` to choose the
/// thread count); the result does not depend on the number of threads.
///
/// # Shapes
/// `scores.len() == labels.len() = n ≥ 2`.
///
/// # Errors
/// [`Error::LengthMismatch`], [`Error::EmptyScores`], [`Error::NonFiniteScore`] (index of the
/// first NaN/±∞), [`Error::SingleClass`] — checked in that order.
///
/// ```
/// // One anomaly above both normals, one tied with a normal: (1 + 1 + 1 + ½) / 4.
/// let auroc = conad_eval::auroc(&[0.9, 0.3, 0.3, 0.1], &[true, true, false, false])?;
/// assert_eq!(auroc, 0.875);
/// # Ok::<(), conad_eval::Error>(())
/// ```
pub fn auroc(scores: &[f64], labels: &[bool]) -> Result<f64> {
    let chunks = if scores.len() >= PARALLEL_MIN {
        rayon::current_num_threads()
    } else {
        1
    };
    auroc_in_chunks(scores, labels, chunks)
}

/// [`auroc`] with the input cut into `chunks` contiguous pieces (the result does not depend on it).
fn auroc_in_chunks(scores: &[f64], labels: &[bool], chunks: usize) -> Result<f64> {
    check_lengths(scores, labels)?;
    let n = scores.len();
    let chunk = n.div_ceil(chunks.max(1));
    let chunk_pos: Vec<usize> = labels
        .par_chunks(chunk)
        .map(|l| l.iter().filter(|&&x| x).count())
        .collect();
    let n_pos: usize = chunk_pos.iter().sum();

    // keys = [anomalies of chunk 0, …, of chunk T−1 | normals of chunk 0, …, of chunk T−1]
    let mut keys = vec![0u64; n];
    let (mut pos_rest, mut neg_rest) = keys.split_at_mut(n_pos);
    let mut jobs = Vec::with_capacity(chunk_pos.len());
    for (c, &np) in chunk_pos.iter().enumerate() {
        let start = c * chunk;
        let end = (start + chunk).min(n);
        let (p, pr) = std::mem::take(&mut pos_rest).split_at_mut(np);
        let (q, qr) = std::mem::take(&mut neg_rest).split_at_mut(end - start - np);
        pos_rest = pr;
        neg_rest = qr;
        jobs.push((start, end, p, q));
    }
    let sorted: Vec<Result<(&[u64], &[u64])>> = jobs
        .into_par_iter()
        .map(|(start, end, p, q)| {
            partition_keys(&scores[start..end], &labels[start..end], start, p, q)?;
            p.sort_unstable();
            q.sort_unstable();
            Ok((&*p, &*q))
        })
        .collect();
    // Chunks are in input order, so the first error is the first non-finite score overall.
    let sorted: Vec<(&[u64], &[u64])> = sorted.into_iter().collect::<Result<_, Error>>()?;
    check_both_classes(n_pos, n)?;

    let pairs: Vec<SortedClasses<'_>> = sorted
        .iter()
        .flat_map(|&(pos, _)| {
            sorted
                .iter()
                .map(move |&(_, neg)| SortedClasses { pos, neg })
        })
        .filter(|c| !c.pos.is_empty() && !c.neg.is_empty())
        .collect();
    let twice_u: u128 = pairs.into_par_iter().map(twice_u_sorted).sum();
    Ok(auroc_from_twice_u(twice_u, n_pos, n - n_pos))
}

/// `AUROC = 2U / (2 n₊ n₋)`, one rounding (the integers convert to `f64` exactly below 2⁵³).
pub(crate) fn auroc_from_twice_u(twice_u: u128, n_pos: usize, n_neg: usize) -> f64 {
    twice_u as f64 / (2.0 * n_pos as f64 * n_neg as f64)
}

/// `2U` of the anomaly and normal keys, each sorted ascending.
pub(crate) fn twice_u_sorted(classes: SortedClasses<'_>) -> u128 {
    classes
        .descending_groups()
        .filter(|g| g.positives > 0)
        .map(|g| u128::from(g.positives) * u128::from(2 * g.negatives_below + g.negatives))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::ClassKeys;

    /// ~30 % anomalies with heavy ties; a few labels flipped so ties span both classes.
    fn tied_data(n: u64) -> (Vec<f64>, Vec<bool>) {
        let mut x = 7u64;
        let mut scores = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let anomaly = (x >> 33) % 10 < 3;
            scores.push(((x >> 40) % 500) as f64 / 100.0 + if anomaly { 0.7 } else { 0.0 });
            labels.push(anomaly ^ (i % 97 == 0));
        }
        (scores, labels)
    }

    fn sequential(scores: &[f64], labels: &[bool]) -> f64 {
        let twice_u = ClassKeys::new(scores, labels)
            .unwrap()
            .with_sorted(twice_u_sorted);
        let n_pos = labels.iter().filter(|&&l| l).count();
        auroc_from_twice_u(twice_u, n_pos, labels.len() - n_pos)
    }

    #[test]
    fn chunked_equals_sequential_bit_for_bit() {
        let (scores, labels) = tied_data(70_000);
        let expected = sequential(&scores, &labels);
        for chunks in [1, 2, 3, 8, 1000] {
            let got = auroc_in_chunks(&scores, &labels, chunks).unwrap();
            assert_eq!(got.to_bits(), expected.to_bits(), "chunks = {chunks}");
        }
        // A chunk holding only one class is fine as long as the whole input has both.
        let mut y = vec![false; 1000];
        y[999] = true;
        let s: Vec<f64> = (0..1000).map(f64::from).collect();
        assert_eq!(auroc_in_chunks(&s, &y, 4).unwrap(), 1.0);
    }

    #[test]
    fn thread_count_does_not_change_the_value() {
        let (scores, labels) = tied_data(PARALLEL_MIN as u64 + 12_345);
        let expected = sequential(&scores, &labels);
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let got = pool.install(|| auroc(&scores, &labels)).unwrap();
            assert_eq!(got.to_bits(), expected.to_bits(), "threads = {threads}");
        }
    }

    #[test]
    fn first_non_finite_index_is_reported_across_chunks() {
        let n = 100_000;
        let mut scores: Vec<f64> = (0..n).map(|i| (i % 1000) as f64).collect();
        let labels: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
        scores[70_001] = f64::NAN;
        scores[99_999] = f64::INFINITY;
        let err = auroc_in_chunks(&scores, &labels, 2).unwrap_err();
        assert!(
            matches!(err, Error::NonFiniteScore { index: 70_001, .. }),
            "{err:?}"
        );
        scores[3] = f64::NEG_INFINITY;
        let err = auroc_in_chunks(&scores, &labels, 2).unwrap_err();
        assert!(
            matches!(err, Error::NonFiniteScore { index: 3, .. }),
            "{err:?}"
        );
    }
}
