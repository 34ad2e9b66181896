//! Seeded stratified subsampling (for CPU budgets) and uniform sampling without replacement.
//!
//! Every draw comes from a [`SeedTree`] node: class `c` of a subsample draws from
//! `tree.index(c)`, so the selection of one class does not depend on the other classes, on the
//! order of the data, or on the thread count. Selected indices are returned in ascending order
//! (the data set's original order is kept).

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use conad_rng::SeedTree;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// How many images of each class to keep.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subsample {
    /// At most this many images per class (all of a smaller class).
    PerClass(usize),
    /// This fraction of each class, `round(f · n_class)`, `0 < f ≤ 1`.
    Fraction(f64),
}

impl Subsample {
    /// Checks the parameter.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a zero count or a fraction outside (0, 1].
    pub fn validate(&self) -> Result<()> {
        match *self {
            Subsample::PerClass(0) => Err(Error::invalid(
                "subsample per class",
                "0",
                "at least 1 image per class",
            )),
            Subsample::Fraction(f) if !(f > 0.0 && f <= 1.0) => Err(Error::invalid(
                "subsample fraction",
                f,
                "a fraction in (0, 1]",
            )),
            _ => Ok(()),
        }
    }

    /// Number of images kept from a class of `available` images.
    pub fn count(&self, available: usize) -> usize {
        match *self {
            Subsample::PerClass(k) => k.min(available),
            Subsample::Fraction(f) => ((f * available as f64).round() as usize).min(available),
        }
    }
}

impl FromStr for Subsample {
    type Err = Error;

    /// `"500"` or `"500/class"` → 500 per class; `"0.1"` or `"10%"` → a fraction.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let bad = || {
            Error::invalid(
                "subsample",
                s,
                "N or N/class (images per class), or a fraction like 0.1 or 10%",
            )
        };
        let sub = if let Some(p) = s.strip_suffix('%') {
            Subsample::Fraction(p.trim().parse::<f64>().map_err(|_| bad())? / 100.0)
        } else if let Ok(k) = s
            .strip_suffix("/class")
            .unwrap_or(s)
            .trim()
            .parse::<usize>()
        {
            Subsample::PerClass(k)
        } else {
            Subsample::Fraction(s.parse::<f64>().map_err(|_| bad())?)
        };
        sub.validate()?;
        Ok(sub)
    }
}

/// `k` distinct indices drawn uniformly from `0..n` (partial Fisher–Yates), in draw order.
///
/// # Panics
/// If `k > n` (callers check availability first and report a typed error).
pub fn sample_without_replacement(n: usize, k: usize, tree: SeedTree) -> Vec<usize> {
    assert!(k <= n, "cannot draw {k} of {n} without replacement");
    let mut rng = tree.rng();
    let mut pool: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = rng.random_range(i as u64..n as u64) as usize;
        pool.swap(i, j);
    }
    pool.truncate(k);
    pool
}

/// Stratified subsample of `candidates` (indices into `labels`): per class, `sub.count(n_class)`
/// indices drawn uniformly without replacement from `tree.index(class)`. Returns ascending indices.
pub fn stratified_indices(
    labels: &[u32],
    candidates: &[usize],
    sub: Subsample,
    tree: SeedTree,
) -> Vec<usize> {
    let num_classes = candidates
        .iter()
        .map(|&i| labels[i] as usize + 1)
        .max()
        .unwrap_or(0);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); num_classes];
    for &i in candidates {
        by_class[labels[i] as usize].push(i);
    }
    let mut out = Vec::new();
    for (c, members) in by_class.iter().enumerate() {
        let k = sub.count(members.len());
        out.extend(
            sample_without_replacement(members.len(), k, tree.index(c as u64))
                .into_iter()
                .map(|j| members[j]),
        );
    }
    out.sort_unstable();
    out
}

/// A stratified subsample of a whole split: `(subset, indices into the original split)`.
///
/// # Errors
/// [`Error::InvalidParameter`] for an invalid `sub`.
pub fn stratified_subsample(
    d: &Dataset,
    sub: Subsample,
    tree: SeedTree,
) -> Result<(Dataset, Vec<usize>)> {
    sub.validate()?;
    let all: Vec<usize> = (0..d.len()).collect();
    let idx = stratified_indices(&d.labels, &all, sub, tree);
    Ok((d.select(&idx), idx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_replacement_is_distinct_and_seeded() {
        let t = SeedTree::new(5).child("x");
        let a = sample_without_replacement(100, 30, t);
        let mut s = a.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 30);
        assert!(s.iter().all(|&i| i < 100));
        assert_eq!(a, sample_without_replacement(100, 30, t));
        assert_ne!(
            a,
            sample_without_replacement(100, 30, SeedTree::new(6).child("x"))
        );
        let mut full = sample_without_replacement(10, 10, t);
        full.sort_unstable();
        assert_eq!(full, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn draws_are_uniform() {
        // Each of 10 items is picked with probability 3/10; over 4000 seeds the counts have
        // mean 1200 and sd ≈ 29: a biased sampler (e.g. always the first k) fails by far.
        let mut counts = [0usize; 10];
        for s in 0..4000 {
            for i in sample_without_replacement(10, 3, SeedTree::new(s)) {
                counts[i] += 1;
            }
        }
        for c in counts {
            assert!((1080..=1320).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn stratified_counts() {
        let labels: Vec<u32> = (0..30).map(|i| if i < 20 { 0 } else { 1 }).collect();
        let all: Vec<usize> = (0..30).collect();
        let t = SeedTree::new(1);
        let idx = stratified_indices(&labels, &all, Subsample::PerClass(4), t);
        assert_eq!(idx.iter().filter(|&&i| labels[i] == 0).count(), 4);
        assert_eq!(idx.iter().filter(|&&i| labels[i] == 1).count(), 4);
        assert!(idx.windows(2).all(|w| w[0] < w[1]));
        let idx = stratified_indices(&labels, &all, Subsample::Fraction(0.25), t);
        assert_eq!(idx.iter().filter(|&&i| labels[i] == 0).count(), 5);
        assert_eq!(idx.iter().filter(|&&i| labels[i] == 1).count(), 3); // round(2.5) = 3
        // Class 1's draw does not depend on class 0's size.
        let fewer: Vec<usize> = (10..30).collect();
        let a: Vec<usize> = stratified_indices(&labels, &all, Subsample::PerClass(4), t)
            .into_iter()
            .filter(|&i| i >= 20)
            .collect();
        let b: Vec<usize> = stratified_indices(&labels, &fewer, Subsample::PerClass(4), t)
            .into_iter()
            .filter(|&i| i >= 20)
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn parse_subsample() {
        assert_eq!(
            "500".parse::<Subsample>().unwrap(),
            Subsample::PerClass(500)
        );
        assert_eq!(
            "20/class".parse::<Subsample>().unwrap(),
            Subsample::PerClass(20)
        );
        assert_eq!(
            "0.1".parse::<Subsample>().unwrap(),
            Subsample::Fraction(0.1)
        );
        assert_eq!(
            "25%".parse::<Subsample>().unwrap(),
            Subsample::Fraction(0.25)
        );
        for bad in ["0", "1.5", "-0.1", "abc", "0%"] {
            assert!(bad.parse::<Subsample>().is_err(), "{bad}");
        }
    }
}
