//! Validated, class-partitioned, sorted scores: the common first step of every metric.
//!
//! # Conventions (the whole crate)
//! - **Label `true` = anomaly = the positive class; label `false` = normal.**
//! - **Higher score = more anomalous.** Normality scores (higher = more normal, the sign used in
//!   docs/reference.md §2) must be negated first. AUROC is unchanged by flipping both the sign and the
//!   positive class (docs/reference.md §4.6), but AUPR and FPR@95%TPR are not symmetric: here they are always
//!   computed with anomalies as positives on anomaly scores.
//! - Ties are scores that compare equal as `f64`; `-0.0` and `+0.0` are one tied value (as in numpy).
//!
//! # How the scores are ranked
//! One pass validates the input (lengths, no NaN/±∞), maps each score to an order-preserving `u64`
//! key (IEEE-754 total-order trick: flip all bits of negatives, set the sign bit of positives) and
//! writes anomaly keys to the front and normal keys to the back of one buffer. Each class is then
//! sorted on its own with `sort_unstable` on the `u64` keys (integer comparisons, in place, no
//! scratch buffer; measured faster than an 8-pass LSD radix sort with its second buffer on 10⁷
//! keys here). A merged descending walk over the two sorted arrays yields the *tie groups*: each
//! distinct score with its count of anomalies and normals — exactly the thresholds of sklearn's
//! `_binary_clf_curve`. Ties need no special handling in the sort: equal scores have equal keys.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The two classes of a one-class anomaly-detection test set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Label `false`: an in-distribution test sample.
    Normal,
    /// Label `true`: an anomaly (the positive class).
    Anomaly,
}

impl Class {
    /// The class of a boolean label (`true` = anomaly).
    pub const fn from_label(label: bool) -> Self {
        if label { Self::Anomaly } else { Self::Normal }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Normal => "normal (label false)",
            Self::Anomaly => "anomalous (label true)",
        })
    }
}

const SIGN: u64 = 1 << 63;

/// Order-preserving map of a finite `f64` to `u64`: `a < b ⇔ key(a) < key(b)`, `-0.0 ↦ key(+0.0)`.
#[inline]
pub(crate) fn score_key(x: f64) -> u64 {
    // `x + 0.0` turns -0.0 into +0.0 so both zeros form one tie group, as numpy's `!=` does.
    let bits = (x + 0.0).to_bits();
    // Negative: flip every bit; non-negative: set the sign bit.
    bits ^ (((bits as i64) >> 63) as u64 | SIGN)
}

/// Inverse of [`score_key`].
#[inline]
pub(crate) fn key_score(key: u64) -> f64 {
    f64::from_bits(if key & SIGN != 0 { key ^ SIGN } else { !key })
}

/// Checks lengths, emptiness and finiteness; returns the number of anomalies.
///
/// # Errors
/// [`Error::LengthMismatch`], [`Error::EmptyScores`], [`Error::NonFiniteScore`] (first offending
/// index), [`Error::SingleClass`], checked in that order.
pub(crate) fn validate(scores: &[f64], labels: &[bool]) -> Result<usize> {
    check_lengths(scores, labels)?;
    if let Some(index) = scores.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFiniteScore {
            index,
            value: scores[index],
        });
    }
    let n_pos = labels.iter().filter(|&&l| l).count();
    check_both_classes(n_pos, scores.len())?;
    Ok(n_pos)
}

pub(crate) fn check_lengths(scores: &[f64], labels: &[bool]) -> Result<()> {
    if scores.len() != labels.len() {
        return Err(Error::LengthMismatch {
            scores: scores.len(),
            labels: labels.len(),
        });
    }
    if scores.is_empty() {
        return Err(Error::EmptyScores);
    }
    Ok(())
}

pub(crate) fn check_both_classes(n_pos: usize, n: usize) -> Result<()> {
    if n_pos == 0 || n_pos == n {
        return Err(Error::SingleClass {
            present: Class::from_label(n_pos == n),
            count: n,
        });
    }
    Ok(())
}

/// Score keys split by class: `keys[..n_pos]` anomalies, `keys[n_pos..]` normals, unsorted.
#[derive(Debug)]
pub(crate) struct ClassKeys {
    keys: Vec<u64>,
    n_pos: usize,
}

impl ClassKeys {
    /// Validates the input and partitions the keys in one pass over the scores.
    ///
    /// # Errors
    /// As [`validate`], in the same order.
    pub(crate) fn new(scores: &[f64], labels: &[bool]) -> Result<Self> {
        check_lengths(scores, labels)?;
        let n = scores.len();
        let n_pos = labels.iter().filter(|&&l| l).count();
        let mut keys = vec![0u64; n];
        let (pos, neg) = keys.split_at_mut(n_pos);
        partition_keys(scores, labels, 0, pos, neg)?;
        check_both_classes(n_pos, n)?;
        Ok(Self { keys, n_pos })
    }

    /// Sorts both classes (in parallel on the current rayon pool when large) and hands the sorted
    /// slices to `f`.
    pub(crate) fn with_sorted<R>(mut self, f: impl FnOnce(SortedClasses<'_>) -> R) -> R {
        let n = self.keys.len();
        let (pos, neg) = self.keys.split_at_mut(self.n_pos);
        if n >= PARALLEL_MIN && rayon::current_num_threads() > 1 {
            rayon::join(|| pos.sort_unstable(), || neg.sort_unstable());
        } else {
            pos.sort_unstable();
            neg.sort_unstable();
        }
        f(SortedClasses { pos, neg })
    }
}

/// Writes the keys of anomalies to `pos` and of normals to `neg`, in input order.
///
/// `first_index` is the position of `scores[0]` in the caller's full input (for the error).
///
/// # Errors
/// [`Error::NonFiniteScore`] with the index of the first NaN/±∞ of this slice.
///
/// # Panics
/// If `pos`/`neg` do not have exactly the number of anomalies/normals of `labels` (a crate
/// invariant).
pub(crate) fn partition_keys(
    scores: &[f64],
    labels: &[bool],
    first_index: usize,
    pos: &mut [u64],
    neg: &mut [u64],
) -> Result<()> {
    let (mut p, mut q) = (0usize, 0usize);
    for (i, (&x, &l)) in scores.iter().zip(labels).enumerate() {
        if !x.is_finite() {
            return Err(Error::NonFiniteScore {
                index: first_index + i,
                value: x,
            });
        }
        let k = score_key(x);
        if l {
            pos[p] = k;
            p += 1;
        } else {
            neg[q] = k;
            q += 1;
        }
    }
    assert_eq!(
        (p, q),
        (pos.len(), neg.len()),
        "class counts changed during partition"
    );
    Ok(())
}

/// Below this many scores, sorting never forks rayon tasks.
pub(crate) const PARALLEL_MIN: usize = 1 << 18;

/// Ascending sorted keys of each class.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SortedClasses<'a> {
    /// Anomaly keys, ascending.
    pub pos: &'a [u64],
    /// Normal keys, ascending.
    pub neg: &'a [u64],
}

impl<'a> SortedClasses<'a> {
    /// Tie groups in descending score order.
    pub(crate) fn descending_groups(self) -> DescendingGroups<'a> {
        DescendingGroups {
            pos: self.pos,
            neg: self.neg,
        }
    }
}

/// All samples sharing one distinct score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TieGroup {
    /// Order-preserving key of the score ([`key_score`] recovers it).
    pub key: u64,
    /// Anomalies with this score.
    pub positives: u64,
    /// Normals with this score.
    pub negatives: u64,
    /// Normals with a strictly lower score.
    pub negatives_below: u64,
}

/// Iterator over tie groups from the highest score down (sklearn's threshold order).
#[derive(Clone, Debug)]
pub(crate) struct DescendingGroups<'a> {
    pos: &'a [u64],
    neg: &'a [u64],
}

/// Length of the run of `key` at the end of an ascending slice.
#[inline]
fn trailing_run(v: &[u64], key: u64) -> usize {
    v.iter().rev().take_while(|&&k| k == key).count()
}

impl Iterator for DescendingGroups<'_> {
    type Item = TieGroup;

    #[inline]
    fn next(&mut self) -> Option<TieGroup> {
        let key = match (self.pos.last(), self.neg.last()) {
            (None, None) => return None,
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (Some(&p), Some(&q)) => p.max(q),
        };
        let cp = trailing_run(self.pos, key);
        let cn = trailing_run(self.neg, key);
        self.pos = &self.pos[..self.pos.len() - cp];
        self.neg = &self.neg[..self.neg.len() - cn];
        Some(TieGroup {
            key,
            positives: cp as u64,
            negatives: cn as u64,
            negatives_below: self.neg.len() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_preserve_order_and_merge_signed_zeros() {
        let xs = [
            f64::MIN,
            -1e300,
            -1.0,
            -f64::MIN_POSITIVE,
            -5e-324,
            0.0,
            5e-324,
            1.0,
            f64::MAX,
        ];
        for w in xs.windows(2) {
            assert!(score_key(w[0]) < score_key(w[1]), "{} vs {}", w[0], w[1]);
        }
        assert_eq!(score_key(-0.0), score_key(0.0));
        for &x in &xs {
            assert_eq!(key_score(score_key(x)).to_bits(), x.to_bits());
        }
    }

    proptest! {
        #[test]
        fn key_order_matches_f64_order(a in -1e6f64..1e6, b in -1e6f64..1e6) {
            prop_assert_eq!(a.partial_cmp(&b).unwrap(), score_key(a).cmp(&score_key(b)));
        }
    }

    #[test]
    fn validation_order_and_payloads() {
        assert!(matches!(
            ClassKeys::new(&[0.1, 0.2], &[true]),
            Err(Error::LengthMismatch {
                scores: 2,
                labels: 1
            })
        ));
        assert!(matches!(ClassKeys::new(&[], &[]), Err(Error::EmptyScores)));
        // NaN is reported (with its index) before the single-class problem.
        match ClassKeys::new(&[0.1, f64::NAN, f64::INFINITY], &[true, true, true]) {
            Err(Error::NonFiniteScore { index: 1, value }) => assert!(value.is_nan()),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            validate(&[0.1, 0.2, f64::NEG_INFINITY], &[true, false, true]),
            Err(Error::NonFiniteScore { index: 2, .. })
        ));
        assert!(matches!(
            ClassKeys::new(&[0.1, 0.2], &[false, false]),
            Err(Error::SingleClass {
                present: Class::Normal,
                count: 2
            })
        ));
        assert!(matches!(
            validate(&[0.1, 0.2, 0.3], &[true, true, true]),
            Err(Error::SingleClass {
                present: Class::Anomaly,
                count: 3
            })
        ));
    }

    #[test]
    fn groups_follow_sklearn_thresholds() {
        // scores 0.9(+) 0.8(-) 0.8(+) 0.8(-) 0.1(-) -0.0(+) 0.0(-)
        let s = [0.9, 0.8, 0.8, 0.8, 0.1, -0.0, 0.0];
        let y = [true, false, true, false, false, true, false];
        let groups: Vec<(f64, u64, u64, u64)> = ClassKeys::new(&s, &y).unwrap().with_sorted(|c| {
            c.descending_groups()
                .map(|g| {
                    (
                        key_score(g.key),
                        g.positives,
                        g.negatives,
                        g.negatives_below,
                    )
                })
                .collect()
        });
        assert_eq!(
            groups,
            vec![
                (0.9, 1, 0, 4),
                (0.8, 1, 2, 2),
                (0.1, 0, 1, 1),
                (0.0, 1, 1, 0)
            ]
        );
    }
}
