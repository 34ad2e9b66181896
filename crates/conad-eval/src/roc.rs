//! ROC curve points with sklearn's semantics, and FPR at a fixed TPR (docs/reference.md §4.6).
//!
//! Conventions as in [`crate::ranking`]: label `true` = anomaly = positive, higher score = more
//! anomalous.
//!
//! # ROC points ([`roc_curve`], like `sklearn.metrics.roc_curve`)
//! The thresholds are the **distinct** scores in decreasing order. At threshold `t` a sample is
//! predicted anomalous when `score ≥ t`; the point is `(FP(t)/n₋, TP(t)/n₊)`. A tie group holding
//! both classes therefore moves the curve diagonally in one step, and the trapezoidal area of that
//! step is the ½-credit of the mid-rank AUROC ([`RocCurve::auc`] equals [`auroc`](crate::auroc) up
//! to rounding). The curve starts at `(0, 0)` with threshold `+∞` (sklearn ≥ 1.3; sklearn 1.2
//! used `max score + 1` there) and ends at `(1, 1)` with the lowest score.
//!
//! Intermediate points can be dropped ([`DropIntermediate`]) without changing the area.
//!
//! # FPR at 95 % TPR ([`fpr_at_95_tpr`], [`fpr_at_tpr`])
//! The common OOD-detection convention: the **smallest FPR among the ROC points with
//! TPR ≥ 0.95**, on the full curve (every distinct threshold, nothing dropped) — numpy:
//! `fpr[tpr >= 0.95].min()` with `fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)`.
//! Because FPR and TPR only grow as the threshold falls, this is the FPR at the highest threshold
//! whose TPR reaches 95 %. No interpolation between points: with ties the TPR can jump past 0.95
//! and the reported FPR is that of the whole tie group. TPR is computed as `TP as f64 / n₊ as f64`
//! and compared with the level, exactly as numpy does.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ranking::{ClassKeys, SortedClasses, key_score};

/// Which intermediate ROC points to drop (none of the rules changes the area under the curve).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropIntermediate {
    /// Keep one point per distinct score (sklearn `drop_intermediate=False`).
    Keep,
    /// sklearn's rule (`drop_intermediate=True`, the sklearn default): drop a point when the
    /// steps in FP and in TP before it equal the steps after it (zero second differences of the
    /// counts), judged on the full curve before the `(0, 0)` point is prepended. Keeps some
    /// collinear points (e.g. FP steps 1 then 2 on a horizontal run).
    #[default]
    Sklearn,
    /// Drop every point that lies on the straight line through its kept neighbours (exact
    /// integer test), giving the fewest points that draw the same polyline; `(0, 0)` and
    /// `(1, 1)` are always kept.
    Collinear,
}

/// ROC curve: parallel arrays, one entry per kept threshold, from `(0, 0)` to `(1, 1)`.
///
/// # Shapes
/// `fpr.len() == tpr.len() == thresholds.len() ≥ 2`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RocCurve {
    /// False-positive rate `FP/n₋` (normals scored ≥ threshold), non-decreasing.
    pub fpr: Vec<f64>,
    /// True-positive rate `TP/n₊` (anomalies scored ≥ threshold), non-decreasing.
    pub tpr: Vec<f64>,
    /// Decreasing thresholds; `thresholds[0] = +∞` (serialised as `null` in JSON).
    pub thresholds: Vec<f64>,
    /// Number of anomalies `n₊`.
    pub n_anomalies: usize,
    /// Number of normals `n₋`.
    pub n_normals: usize,
}

impl RocCurve {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.fpr.len()
    }

    /// Always `false`: a curve has at least `(0, 0)` and `(1, 1)`.
    pub fn is_empty(&self) -> bool {
        self.fpr.is_empty()
    }

    /// Trapezoidal area under the points (sklearn `auc(fpr, tpr)`); equals the mid-rank AUROC up
    /// to floating-point rounding, whichever [`DropIntermediate`] rule built the curve.
    pub fn auc(&self) -> f64 {
        self.fpr
            .windows(2)
            .zip(self.tpr.windows(2))
            .map(|(f, t)| (f[1] - f[0]) * (t[1] + t[0]) * 0.5)
            .sum()
    }

    /// `(fpr, tpr)` pairs.
    pub fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.fpr.iter().copied().zip(self.tpr.iter().copied())
    }
}

/// ROC curve of anomaly scores (sklearn `roc_curve` semantics, see the module docs).
///
/// # Errors
/// [`Error::LengthMismatch`], [`Error::EmptyScores`], [`Error::NonFiniteScore`],
/// [`Error::SingleClass`].
///
/// ```
/// use conad_eval::{DropIntermediate, roc_curve};
/// let roc = roc_curve(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false], DropIntermediate::Keep)?;
/// assert_eq!(roc.fpr, [0.0, 0.0, 0.5, 1.0]);
/// assert_eq!(roc.tpr, [0.0, 0.5, 1.0, 1.0]);
/// assert_eq!(roc.thresholds[1..], [0.9, 0.5, 0.1]);
/// assert_eq!(roc.auc(), 0.875);
/// # Ok::<(), conad_eval::Error>(())
/// ```
pub fn roc_curve(scores: &[f64], labels: &[bool], drop: DropIntermediate) -> Result<RocCurve> {
    Ok(ClassKeys::new(scores, labels)?.with_sorted(|c| roc_curve_sorted(c, drop)))
}

/// One ROC point in counts.
#[derive(Clone, Copy, Debug)]
struct CountPoint {
    fp: u64,
    tp: u64,
    threshold: f64,
}

fn roc_curve_sorted(classes: SortedClasses<'_>, drop: DropIntermediate) -> RocCurve {
    let (n_pos, n_neg) = (classes.pos.len(), classes.neg.len());
    let mut points = vec![CountPoint {
        fp: 0,
        tp: 0,
        threshold: f64::INFINITY,
    }];
    let (mut tp, mut fp) = (0u64, 0u64);
    for g in classes.descending_groups() {
        tp += g.positives;
        fp += g.negatives;
        points.push(CountPoint {
            fp,
            tp,
            threshold: key_score(g.key),
        });
    }
    let points = match drop {
        DropIntermediate::Keep => points,
        DropIntermediate::Sklearn => drop_sklearn(points),
        DropIntermediate::Collinear => drop_collinear(points),
    };
    RocCurve {
        fpr: points.iter().map(|p| p.fp as f64 / n_neg as f64).collect(),
        tpr: points.iter().map(|p| p.tp as f64 / n_pos as f64).collect(),
        thresholds: points.iter().map(|p| p.threshold).collect(),
        n_anomalies: n_pos,
        n_normals: n_neg,
    }
}

/// sklearn's rule on `points[1..]` (the origin is prepended after dropping in sklearn).
fn drop_sklearn(points: Vec<CountPoint>) -> Vec<CountPoint> {
    let body = &points[1..];
    if body.len() <= 2 {
        return points;
    }
    let mut kept = Vec::with_capacity(points.len());
    kept.push(points[0]);
    kept.push(body[0]);
    for w in body.windows(3) {
        let (a, b, c) = (w[0], w[1], w[2]);
        if a.fp + c.fp != 2 * b.fp || a.tp + c.tp != 2 * b.tp {
            kept.push(b);
        }
    }
    kept.push(body[body.len() - 1]);
    kept
}

/// Removes every point collinear with its kept neighbours (monotone curve ⇒ it lies between them).
fn drop_collinear(points: Vec<CountPoint>) -> Vec<CountPoint> {
    let mut kept: Vec<CountPoint> = Vec::with_capacity(points.len());
    for c in points {
        while let [.., a, b] = kept[..] {
            let cross = (i128::from(b.fp) - i128::from(a.fp))
                * (i128::from(c.tp) - i128::from(a.tp))
                - (i128::from(b.tp) - i128::from(a.tp)) * (i128::from(c.fp) - i128::from(a.fp));
            if cross != 0 {
                break;
            }
            kept.pop();
        }
        kept.push(c);
    }
    kept
}

/// FPR at 95 % TPR: the smallest FPR among full-curve ROC points with TPR ≥ 0.95 (see the module
/// docs for the exact convention).
///
/// # Errors
/// As [`roc_curve`].
///
/// ```
/// // 20 anomalies; the 19th-highest (TPR 0.95) is tied with 1 of 4 normals.
/// let mut scores: Vec<f64> = (0..20).map(|i| 100.0 - i as f64).collect();
/// let mut labels = vec![true; 20];
/// scores.extend([82.0, 50.0, 40.0, 30.0]);
/// labels.extend([false; 4]);
/// assert_eq!(conad_eval::fpr_at_95_tpr(&scores, &labels)?, 0.25);
/// # Ok::<(), conad_eval::Error>(())
/// ```
pub fn fpr_at_95_tpr(scores: &[f64], labels: &[bool]) -> Result<f64> {
    fpr_at_tpr(scores, labels, 0.95)
}

/// FPR at the given TPR level: the smallest FPR among full-curve ROC points with
/// `TP/n₊ ≥ level`.
///
/// # Errors
/// [`Error::InvalidTprLevel`] unless `0 < level ≤ 1`; otherwise as [`roc_curve`].
pub fn fpr_at_tpr(scores: &[f64], labels: &[bool], level: f64) -> Result<f64> {
    let mut acc = FprAtTpr::new(level)?;
    let classes = ClassKeys::new(scores, labels)?;
    Ok(classes.with_sorted(|c| {
        let (n_pos, n_neg) = (c.pos.len(), c.neg.len());
        let (mut tp, mut fp) = (0u64, 0u64);
        for g in c.descending_groups() {
            tp += g.positives;
            fp += g.negatives;
            if acc.push(tp, fp, n_pos, n_neg) {
                break;
            }
        }
        acc.value()
    }))
}

/// Streaming FPR-at-TPR over cumulative counts in descending threshold order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FprAtTpr {
    level: f64,
    fpr: Option<f64>,
}

impl FprAtTpr {
    pub(crate) fn new(level: f64) -> Result<Self> {
        if !(level > 0.0 && level <= 1.0) {
            return Err(Error::InvalidTprLevel(level));
        }
        Ok(Self { level, fpr: None })
    }

    /// Feeds the cumulative counts at the next threshold; returns `true` once the value is known.
    #[inline]
    pub(crate) fn push(&mut self, tp: u64, fp: u64, n_pos: usize, n_neg: usize) -> bool {
        if self.fpr.is_none() && tp as f64 / n_pos as f64 >= self.level {
            self.fpr = Some(fp as f64 / n_neg as f64);
        }
        self.fpr.is_some()
    }

    /// The FPR (1.0 if the walk ended early, which a complete walk never does: TPR reaches 1).
    pub(crate) fn value(&self) -> f64 {
        self.fpr.unwrap_or(1.0)
    }
}
