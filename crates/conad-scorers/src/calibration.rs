//! Decision thresholds for anomaly scores: split-conformal p-values calibrated on normal images
//! only, a manual threshold, or the F1-optimal threshold on labelled data.
//!
//! **Split-conformal p-values** (Vovk, Gammerman & Shafer 2005; Bates, Candès, Lei, Romano &
//! Sesia 2023, "Testing for outliers with conformal p-values", eq. 2): with anomaly scores
//! `s_1 … s_n` of `n` normal calibration images that the model never saw in training,
//!
//! ```text
//! p(s) = (1 + #{i : s_i ≥ s}) / (n + 1)
//! ```
//!
//! If a new normal image is exchangeable with the calibration images, `P(p(s) ≤ α) ≤ α` for
//! every `α` (ties included). [`ThresholdRule::Conformal`] flags an image when `p(s) < α`, so its
//! false-positive rate on normal images is at most `α` — **on average over the draw of the
//! calibration set**: for one fitted detector the rate is `Beta(l, n + 1 − l)`-distributed with
//! mean `l / (n + 1) ≤ α`, where `l = ⌈α (n + 1)⌉ − 1` is the number of calibration ranks that
//! can be flagged (Bates et al., §3). With `α (n + 1) ≤ 1` nothing can ever be flagged, which
//! [`ConformalCalibrator::threshold`] reports as [`Error::CalibrationTooSmall`].
//!
//! Every rule decides `score > threshold`; the conformal threshold is the `l`-th largest
//! calibration score, which gives exactly `p(s) < α`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The sorted calibration scores of normal images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConformalCalibrator {
    /// Calibration scores, ascending.
    sorted: Vec<f64>,
}

fn check_finite(what: &str, scores: &[f64]) -> Result<()> {
    if let Some((i, v)) = scores.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::InvalidConfig {
            field: format!("{what}[{i}]"),
            value: v.to_string(),
            reason: "a finite anomaly score (was the model's output NaN?)".into(),
        });
    }
    Ok(())
}

fn check_alpha(alpha: f64) -> Result<()> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::InvalidConfig {
            field: "alpha".into(),
            value: alpha.to_string(),
            reason: "a false-positive rate strictly between 0 and 1 (e.g. 0.01 for 1 %)".into(),
        });
    }
    Ok(())
}

impl ConformalCalibrator {
    /// Calibrates on the anomaly scores of held-out normal images.
    ///
    /// # Errors
    /// [`Error::EmptyBank`] for no scores; [`Error::InvalidConfig`] naming the first
    /// non-finite score.
    pub fn fit(calibration_scores: &[f64]) -> Result<Self> {
        if calibration_scores.is_empty() {
            return Err(Error::EmptyBank {
                what: "calibration set".into(),
                rows: 0,
                min: 1,
            });
        }
        check_finite("calibration_scores", calibration_scores)?;
        let mut sorted = calibration_scores.to_vec();
        sorted.sort_by(f64::total_cmp);
        Ok(Self { sorted })
    }

    /// Number of calibration scores `n`.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Always false (a calibrator holds at least one score).
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The calibration scores, ascending.
    pub fn scores(&self) -> &[f64] {
        &self.sorted
    }

    /// `p(s) = (1 + #{i : s_i ≥ s}) / (n + 1)`; NaN for a NaN score.
    pub fn p_value(&self, score: f64) -> f64 {
        if score.is_nan() {
            return f64::NAN;
        }
        let below = self.sorted.partition_point(|&c| c < score);
        let at_or_above = self.sorted.len() - below;
        (1 + at_or_above) as f64 / (self.sorted.len() + 1) as f64
    }

    /// The conformal rule at false-positive rate `alpha`: the threshold `t` with
    /// `score > t ⟺ p(score) < alpha`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for `alpha` outside (0, 1); [`Error::CalibrationTooSmall`] when
    /// `alpha (n + 1) ≤ 1`, i.e. no p-value can fall below `alpha`.
    pub fn threshold(&self, alpha: f64) -> Result<ThresholdRule> {
        let n = self.sorted.len();
        let l = flaggable_ranks(n, alpha)?;
        // Flagged ⟺ m = #{c ≥ s} ≤ l − 1 ⟺ s > the l-th largest calibration score; with
        // l > n every score is flagged (a finite threshold below the smallest one).
        let threshold = if l > n {
            self.sorted[0].next_down()
        } else {
            self.sorted[n - l]
        };
        Ok(ThresholdRule::Conformal {
            alpha,
            threshold,
            calibration: n,
            expected_fpr: l as f64 / (n + 1) as f64,
        })
    }
}

/// `l = ⌈α (n + 1)⌉ − 1`: how many of the ranks `m ∈ 0..=n` of `n` calibration scores
/// `p < α` can flag — counted with `(1 + m) / (n + 1) < α` evaluated exactly as
/// [`ConformalCalibrator::p_value`] evaluates it (`0.07 · 100` is `7.000000000000001` in
/// floating point, while `7 / 100 < 0.07` is false). Usable before any score exists, e.g. to
/// refuse a calibration set too small for `alpha` before training.
///
/// # Errors
/// [`Error::InvalidConfig`] for `alpha` outside (0, 1); [`Error::CalibrationTooSmall`] when
/// `l = 0` (`alpha (n + 1) ≤ 1`: no p-value can fall below `alpha`).
pub fn flaggable_ranks(n: usize, alpha: f64) -> Result<usize> {
    check_alpha(alpha)?;
    let n1 = (n + 1) as f64;
    let flags = |m: usize| ((1 + m) as f64 / n1) < alpha;
    // p = (1 + m) / (n + 1) < α  ⟺  m < α (n + 1) − 1  ⟺  m ≤ ⌈α (n + 1)⌉ − 2; the estimate
    // is then corrected to the p-values' own arithmetic.
    let mut l = ((alpha * n1).ceil() as usize).saturating_sub(1).min(n + 1);
    while l > 0 && !flags(l - 1) {
        l -= 1;
    }
    while l <= n && flags(l) {
        l += 1;
    }
    if l == 0 {
        return Err(Error::CalibrationTooSmall {
            calibration: n,
            alpha,
            needed: (1.0 / alpha).floor() as usize,
        });
    }
    Ok(l)
}

/// How an anomaly score becomes a decision: `is_anomaly = score > threshold`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ThresholdRule {
    /// Split-conformal: `p < alpha` (module docs): FPR ≤ `alpha` on exchangeable normal images.
    Conformal {
        /// The target false-positive rate α.
        alpha: f64,
        /// The `l`-th largest calibration score.
        threshold: f64,
        /// Number of calibration images `n`.
        calibration: usize,
        /// `l / (n + 1)`: the FPR averaged over calibration draws (≤ α).
        expected_fpr: f64,
    },
    /// A threshold the user chose; no guarantee.
    Manual {
        /// The threshold.
        threshold: f64,
    },
    /// The threshold maximising F1 on labelled images ([`f1_optimal_threshold`]); optimistic
    /// on those images, no guarantee on new ones.
    F1Optimal {
        /// The threshold.
        threshold: f64,
        /// F1 on the labelled images.
        f1: f64,
        /// Precision there.
        precision: f64,
        /// Recall there.
        recall: f64,
        /// Labelled normal images used.
        normals: usize,
        /// Labelled anomalies used.
        anomalies: usize,
    },
}

impl ThresholdRule {
    /// A manual threshold.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a NaN or infinite threshold.
    pub fn manual(threshold: f64) -> Result<Self> {
        if !threshold.is_finite() {
            return Err(Error::InvalidConfig {
                field: "threshold".into(),
                value: threshold.to_string(),
                reason: "a finite number: images scoring above it are anomalies".into(),
            });
        }
        Ok(Self::Manual { threshold })
    }

    /// The score threshold.
    pub fn threshold(&self) -> f64 {
        match self {
            Self::Conformal { threshold, .. }
            | Self::Manual { threshold }
            | Self::F1Optimal { threshold, .. } => *threshold,
        }
    }

    /// `score > threshold` (false for NaN).
    pub fn is_anomaly(&self, score: f64) -> bool {
        score > self.threshold()
    }

    /// Short name of the mode (`conformal`, `manual`, `f1_optimal`).
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Conformal { .. } => "conformal",
            Self::Manual { .. } => "manual",
            Self::F1Optimal { .. } => "f1_optimal",
        }
    }

    /// One sentence: what the rule guarantees.
    pub fn guarantee(&self) -> String {
        match self {
            Self::Conformal {
                alpha,
                calibration,
                expected_fpr,
                ..
            } => format!(
                "split-conformal at α = {alpha}: on normal images exchangeable with the \
                 {calibration} calibration images the false-positive rate is at most α on \
                 average over calibration draws (exactly {expected_fpr:.4} here); one detector's \
                 rate varies around it"
            ),
            Self::Manual { .. } => "manual threshold: no guarantee".into(),
            Self::F1Optimal {
                f1,
                normals,
                anomalies,
                ..
            } => format!(
                "F1-optimal on {normals} labelled normal and {anomalies} anomalous images (F1 \
                 {f1:.3} there, an optimistic estimate): no guarantee on new images"
            ),
        }
    }
}

/// The threshold `t` maximising F1 of the rule `score > t` on labelled scores (`labels[i]` =
/// anomaly); ties broken towards the higher threshold (fewer alarms). Candidates are "every
/// score flagged" and each distinct score value.
///
/// # Errors
/// [`Error::InvalidConfig`] for mismatched lengths, non-finite scores, or labels without both
/// classes.
pub fn f1_optimal_threshold(scores: &[f64], labels: &[bool]) -> Result<ThresholdRule> {
    if scores.len() != labels.len() {
        return Err(Error::InvalidConfig {
            field: "labels".into(),
            value: format!("{} labels for {} scores", labels.len(), scores.len()),
            reason: "one label per score".into(),
        });
    }
    check_finite("scores", scores)?;
    let anomalies = labels.iter().filter(|&&l| l).count();
    let normals = labels.len() - anomalies;
    if anomalies == 0 || normals == 0 {
        return Err(Error::InvalidConfig {
            field: "labels".into(),
            value: format!("{normals} normal, {anomalies} anomalous"),
            reason: "labelled images of both kinds (normal and anomalous)".into(),
        });
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    // Walk thresholds from high to low: after the group of score v, everything > next value
    // is flagged. Start: threshold = max score, nothing flagged (F1 = 0).
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut best = (0.0f64, scores[order[0]], 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let v = scores[order[i]];
        while i < order.len() && scores[order[i]] == v {
            if labels[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        // Flagged = every score ≥ v = every score > the next lower value (or, when every
        // score is flagged, a finite threshold just below the lowest).
        let t = if i < order.len() {
            scores[order[i]]
        } else {
            v.next_down()
        };
        let precision = tp as f64 / (tp + fp) as f64;
        let recall = tp as f64 / anomalies as f64;
        let f1 = 2.0 * tp as f64 / (2 * tp + fp + (anomalies - tp)) as f64;
        if f1 > best.0 {
            best = (f1, t, precision, recall);
        }
    }
    Ok(ThresholdRule::F1Optimal {
        threshold: best.1,
        f1: best.0,
        precision: best.2,
        recall: best.3,
        normals,
        anomalies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use conad_rng::SeedTree;
    use rand::Rng;

    #[test]
    fn p_values_by_hand() {
        // Calibration {1, 2, 2, 3}: n + 1 = 5.
        let c = ConformalCalibrator::fit(&[3.0, 2.0, 1.0, 2.0]).unwrap();
        assert_eq!(c.p_value(0.5), 1.0); // all four ≥ 0.5: (1 + 4) / 5
        assert_eq!(c.p_value(2.0), 0.8); // ties count: (1 + 3) / 5
        assert_eq!(c.p_value(2.5), 0.4);
        assert_eq!(c.p_value(3.0), 0.4);
        assert_eq!(c.p_value(9.0), 0.2); // (1 + 0) / 5
        assert!(c.p_value(f64::NAN).is_nan());
    }

    #[test]
    fn threshold_agrees_with_p_values() {
        let cal: Vec<f64> = (0..99).map(|i| f64::from(i) * 0.5).collect();
        let c = ConformalCalibrator::fit(&cal).unwrap();
        // 0.07 and 0.14: α (n + 1) lands a hair above an integer in floating point.
        for alpha in [0.011, 0.02, 0.05, 0.07, 0.1, 0.14, 0.333, 0.9] {
            let rule = c.threshold(alpha).unwrap();
            for k in -10..120 {
                let s = f64::from(k) * 0.25 - 1.0;
                assert_eq!(
                    rule.is_anomaly(s),
                    c.p_value(s) < alpha,
                    "alpha {alpha}, score {s}, threshold {}",
                    rule.threshold()
                );
            }
        }
        // α = 0.05, n = 99: l = ⌈5⌉ − 1 = 4 ranks; threshold = 4th largest = 47.5.
        match c.threshold(0.05).unwrap() {
            ThresholdRule::Conformal {
                threshold,
                expected_fpr,
                ..
            } => {
                assert_eq!(threshold, 47.5);
                assert!((expected_fpr - 0.04).abs() < 1e-12);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_rank_count_follows_the_p_values_own_arithmetic() {
        // n = 99, α = 0.07: 0.07 · 100 = 7.000000000000001, but p = 7/100 is not < 0.07, so
        // only m ≤ 5 (p ≤ 0.06) may be flagged: l = 6, threshold = the 6th largest score.
        let cal: Vec<f64> = (0..99).map(f64::from).collect();
        let c = ConformalCalibrator::fit(&cal).unwrap();
        let rule = c.threshold(0.07).unwrap();
        assert_eq!(rule.threshold(), 93.0);
        assert!(!rule.is_anomaly(93.0) && c.p_value(93.0) == 0.07);
        assert!(rule.is_anomaly(93.5) && c.p_value(93.5) < 0.07);
        // The same count without scores (checked before training).
        assert_eq!(flaggable_ranks(99, 0.07), Ok(6));
        assert_eq!(flaggable_ranks(99, 0.05), Ok(4));
        assert!(matches!(
            flaggable_ranks(80, 0.01),
            Err(Error::CalibrationTooSmall { needed: 100, .. })
        ));
    }

    #[test]
    fn too_few_calibration_images_is_an_error() {
        // n = 80, α = 0.01: the smallest p-value is 1/81 > 0.01.
        let c = ConformalCalibrator::fit(&vec![1.0; 80]).unwrap();
        assert_eq!(
            c.threshold(0.01),
            Err(Error::CalibrationTooSmall {
                calibration: 80,
                alpha: 0.01,
                needed: 100
            })
        );
        // n = 100: 1/101 < 0.01, the largest calibration score is the threshold.
        let c = ConformalCalibrator::fit(&(0..100).map(f64::from).collect::<Vec<_>>()).unwrap();
        assert_eq!(c.threshold(0.01).unwrap().threshold(), 99.0);
    }

    #[test]
    fn invalid_inputs() {
        assert!(matches!(
            ConformalCalibrator::fit(&[]),
            Err(Error::EmptyBank { .. })
        ));
        assert!(matches!(
            ConformalCalibrator::fit(&[1.0, f64::NAN]),
            Err(Error::InvalidConfig { field, .. }) if field == "calibration_scores[1]"
        ));
        let c = ConformalCalibrator::fit(&[1.0]).unwrap();
        for alpha in [0.0, 1.0, -0.1, f64::NAN] {
            assert!(matches!(
                c.threshold(alpha),
                Err(Error::InvalidConfig { .. })
            ));
        }
        for t in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(ThresholdRule::manual(t).is_err());
        }
    }

    /// The guarantee, measured: normal scores drawn i.i.d. (a heavy-tailed distribution), a
    /// fresh calibration set per trial. The flagged fraction must not exceed α beyond the
    /// binomial noise, and must match l/(n+1) (a rule that never flags would fail).
    #[test]
    fn false_positive_rate_is_at_most_alpha_on_exchangeable_normals() {
        let root = SeedTree::new(7);
        let (n, per_trial, trials, alpha) = (99usize, 20usize, 1000u64, 0.05);
        let mut flagged = 0usize;
        for t in 0..trials {
            let mut rng = root.index(t).rng();
            let mut draw = || {
                let u: f64 = rng.random_range(1e-9..1.0);
                (1.0 / u).ln().powi(2) // heavy right tail
            };
            let cal: Vec<f64> = (0..n).map(|_| draw()).collect();
            let rule = ConformalCalibrator::fit(&cal)
                .unwrap()
                .threshold(alpha)
                .unwrap();
            flagged += (0..per_trial).filter(|_| rule.is_anomaly(draw())).count();
        }
        let total = (trials as usize * per_trial) as f64;
        let rate = flagged as f64 / total;
        // Exactly l/(n+1) = 4/100 in expectation; 20,000 draws (correlated within a trial:
        // the per-trial rate is Beta(4, 96), sd 0.0195, so the mean over 1000 trials has sd
        // ≈ 0.0007). Bounds at ±5 sd.
        assert!((rate - 0.04).abs() < 0.0035, "measured FPR {rate}");
        assert!(rate <= alpha, "measured FPR {rate} > α {alpha}");
    }

    #[test]
    fn f1_optimal_by_hand() {
        // Scores with labels: 0.9 A, 0.8 N, 0.7 A, 0.6 A, 0.2 N, 0.1 N.
        // Flag > 0.8 (only 0.9): P 1, R 1/3, F1 0.5. Flag > 0.7: tp1 fp1 F1 = 2/(2+1+2) = 0.4.
        // Flag > 0.2 (top four): tp 3, fp 1, F1 = 6/7 ≈ 0.857 (best). Flag > 0.1: 6/8.
        let scores = [0.9, 0.8, 0.7, 0.6, 0.2, 0.1];
        let labels = [true, false, true, true, false, false];
        let rule = f1_optimal_threshold(&scores, &labels).unwrap();
        match rule {
            ThresholdRule::F1Optimal {
                threshold,
                f1,
                precision,
                recall,
                normals,
                anomalies,
            } => {
                assert_eq!(threshold, 0.2);
                assert!((f1 - 6.0 / 7.0).abs() < 1e-12);
                assert!((precision - 0.75).abs() < 1e-12);
                assert_eq!(recall, 1.0);
                assert_eq!((normals, anomalies), (3, 3));
            }
            other => panic!("{other:?}"),
        }
        assert!(rule.is_anomaly(0.6) && !rule.is_anomaly(0.2));
        // Ties move together: both 0.5s are flagged or neither.
        let rule = f1_optimal_threshold(&[0.5, 0.5, 0.1], &[true, false, false]).unwrap();
        assert_eq!(rule.threshold(), 0.1);
        // Flagging everything wins: the threshold stays finite, just below the lowest score.
        let rule = f1_optimal_threshold(&[0.1, 0.2, 0.3], &[true, false, true]).unwrap();
        assert_eq!(rule.threshold(), 0.1f64.next_down());
        assert!(rule.is_anomaly(0.1) && rule.threshold().is_finite());
        assert!(f1_optimal_threshold(&[0.5], &[true]).is_err());
        assert!(f1_optimal_threshold(&[0.5, 0.2], &[true]).is_err());
    }
}
