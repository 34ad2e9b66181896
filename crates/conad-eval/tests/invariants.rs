//! Property tests: AUROC is a rank statistic, and the curve-based metrics agree with it.

use conad_eval::{
    DropIntermediate, Metrics, auroc, average_precision, fpr_at_95_tpr, fpr_at_tpr, roc_curve,
};
use proptest::prelude::*;

/// Scores on a grid of quarters in [-10, 10] (many ties; exact under the transforms below) with
/// both classes present.
fn scored() -> impl Strategy<Value = (Vec<f64>, Vec<bool>)> {
    (2usize..120)
        .prop_flat_map(|n| {
            (
                proptest::collection::vec((-40i32..=40).prop_map(|k| f64::from(k) / 4.0), n),
                proptest::collection::vec(any::<bool>(), n),
                0..n,
                0..n,
            )
        })
        .prop_filter_map("needs both classes", |(s, mut y, i, j)| {
            if i == j {
                return None;
            }
            y[i] = true;
            y[j] = false;
            Some((s, y))
        })
}

/// O(n²) definition: P(anomaly > normal) + ½ P(tie), as the exact count 2U.
fn pairwise(s: &[f64], y: &[bool]) -> f64 {
    let (mut twice_u, mut pairs) = (0u64, 0u64);
    for (i, &yi) in y.iter().enumerate() {
        for (j, &yj) in y.iter().enumerate() {
            if yi && !yj {
                pairs += 1;
                twice_u += if s[i] > s[j] {
                    2
                } else if s[i] == s[j] {
                    1
                } else {
                    0
                };
            }
        }
    }
    twice_u as f64 / (2 * pairs) as f64
}

/// The textbook mid-rank formula (docs/reference.md §4.6), ranks from an explicit sort.
fn mid_rank(s: &[f64], y: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..s.len()).collect();
    idx.sort_by(|&a, &b| s[a].total_cmp(&s[b]));
    let mut rank = vec![0.0; s.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && s[idx[j + 1]] == s[idx[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            rank[k] = mid;
        }
        i = j + 1;
    }
    let n_pos = y.iter().filter(|&&l| l).count() as f64;
    let n_neg = y.len() as f64 - n_pos;
    let r_pos: f64 = rank
        .iter()
        .zip(y)
        .filter(|(_, l)| **l)
        .map(|(r, _)| r)
        .sum();
    (r_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

proptest! {
    #[test]
    fn equals_the_pairwise_count_and_the_mid_rank_formula((s, y) in scored()) {
        let a = auroc(&s, &y).unwrap();
        prop_assert_eq!(a, pairwise(&s, &y));
        prop_assert!((a - mid_rank(&s, &y)).abs() < 1e-12);
    }

    #[test]
    fn negating_scores_gives_one_minus((s, y) in scored()) {
        let neg: Vec<f64> = s.iter().map(|x| -x).collect();
        let sum = auroc(&s, &y).unwrap() + auroc(&neg, &y).unwrap();
        prop_assert!((sum - 1.0).abs() < 1e-15, "sum = {}", sum);
        // Flipping the labels instead is the same reflection.
        let flipped: Vec<bool> = y.iter().map(|l| !l).collect();
        prop_assert!((auroc(&s, &flipped).unwrap() - auroc(&neg, &y).unwrap()).abs() < 1e-15);
    }

    #[test]
    fn invariant_under_strictly_increasing_transforms((s, y) in scored()) {
        let a = auroc(&s, &y).unwrap();
        let transforms: [fn(f64) -> f64; 4] =
            [|x| 3.0 * x + 1.0, |x| x * x * x, f64::exp, |x| f64::atan(x) - 7.0];
        for f in transforms {
            let t: Vec<f64> = s.iter().map(|&x| f(x)).collect();
            prop_assert_eq!(auroc(&t, &y).unwrap(), a);
            prop_assert_eq!(Metrics::compute(&t, &y).unwrap(), Metrics::compute(&s, &y).unwrap());
        }
    }

    #[test]
    fn invariant_under_permutation(
        (s, y, perm) in scored().prop_flat_map(|(s, y)| {
            let n = s.len();
            (Just(s), Just(y), Just((0..n).collect::<Vec<usize>>()).prop_shuffle())
        })
    ) {
        let ps: Vec<f64> = perm.iter().map(|&i| s[i]).collect();
        let py: Vec<bool> = perm.iter().map(|&i| y[i]).collect();
        prop_assert_eq!(auroc(&ps, &py).unwrap(), auroc(&s, &y).unwrap());
        prop_assert_eq!(Metrics::compute(&ps, &py).unwrap(), Metrics::compute(&s, &y).unwrap());
    }

    #[test]
    fn roc_area_equals_auroc_for_every_drop_rule((s, y) in scored()) {
        let a = auroc(&s, &y).unwrap();
        let keep = roc_curve(&s, &y, DropIntermediate::Keep).unwrap();
        let skl = roc_curve(&s, &y, DropIntermediate::Sklearn).unwrap();
        let col = roc_curve(&s, &y, DropIntermediate::Collinear).unwrap();
        for c in [&keep, &skl, &col] {
            prop_assert!((c.auc() - a).abs() < 1e-12);
            prop_assert_eq!(c.points().next(), Some((0.0, 0.0)));
            prop_assert_eq!(c.points().last(), Some((1.0, 1.0)));
            prop_assert!(c.fpr.windows(2).all(|w| w[0] <= w[1]));
            prop_assert!(c.tpr.windows(2).all(|w| w[0] <= w[1]));
            prop_assert!(c.thresholds.windows(2).all(|w| w[0] > w[1]));
        }
        // Each rule keeps a subset of the full curve; the collinear rule keeps the fewest points
        // and never three collinear ones in a row.
        prop_assert!(col.len() <= skl.len() && skl.len() <= keep.len());
        for c in [&skl, &col] {
            prop_assert!(c.thresholds.iter().all(|t| keep.thresholds.contains(t)));
        }
        let pts: Vec<(f64, f64)> = col.points().collect();
        for w in pts.windows(3) {
            let cross = (w[1].0 - w[0].0) * (w[2].1 - w[0].1) - (w[1].1 - w[0].1) * (w[2].0 - w[0].0);
            prop_assert!(cross.abs() > 1e-12, "collinear points kept: {:?}", w);
        }
    }

    #[test]
    fn fpr_at_tpr_is_the_smallest_fpr_reaching_the_level((s, y) in scored(), level in 0.01f64..=1.0) {
        let keep = roc_curve(&s, &y, DropIntermediate::Keep).unwrap();
        let want = keep
            .points()
            .filter(|&(_, t)| t >= level)
            .map(|(f, _)| f)
            .fold(f64::INFINITY, f64::min);
        prop_assert_eq!(fpr_at_tpr(&s, &y, level).unwrap(), want);
        let want95 = keep.points().filter(|&(_, t)| t >= 0.95).map(|(f, _)| f).fold(1.0, f64::min);
        prop_assert_eq!(fpr_at_95_tpr(&s, &y).unwrap(), want95);
    }

    #[test]
    fn average_precision_is_the_step_sum_over_thresholds((s, y) in scored()) {
        // Recompute from the full ROC curve: precision = TP/(TP+FP) at each threshold.
        let keep = roc_curve(&s, &y, DropIntermediate::Keep).unwrap();
        let (p, n) = (keep.n_anomalies as f64, keep.n_normals as f64);
        let mut want = 0.0;
        for w in keep.points().collect::<Vec<_>>().windows(2) {
            let (tp, fp) = (w[1].1 * p, w[1].0 * n);
            if w[1].1 > w[0].1 {
                want += (w[1].1 - w[0].1) * tp / (tp + fp);
            }
        }
        let ap = average_precision(&s, &y).unwrap();
        prop_assert!((ap - want).abs() < 1e-12, "{} vs {}", ap, want);
        prop_assert!((0.0..=1.0).contains(&ap));
    }
}
