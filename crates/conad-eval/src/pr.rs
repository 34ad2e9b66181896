//! AUPR as average precision with sklearn's `average_precision_score` semantics, and the
//! precision–recall curve it sums over ([`pr_curve`]).
//!
//! Anomalies (label `true`) are the positive class and higher scores are more anomalous, so this is
//! the "AUPR-Out"-style number of OOD papers computed on anomaly scores. Unlike AUROC it is **not**
//! symmetric in the classes: it depends on the anomaly fraction (a random scorer gets about
//! `n₊/n`).
//!
//! With the distinct scores `t₁ > t₂ > …` as thresholds (`score ≥ t_k` ⇒ predicted anomalous),
//! recall `R_k = TP_k/n₊` and precision `P_k = TP_k/(TP_k + FP_k)`,
//!
//! ```text
//! AP = Σ_k (R_k − R_{k−1}) · P_k,        R₀ = 0
//! ```
//!
//! a step-wise sum, not the trapezoidal area (which is optimistic). A tie group counts as one
//! threshold: all its anomalies enter recall with the precision of the whole group.

use crate::error::Result;
use crate::ranking::ClassKeys;

/// Average precision of anomaly scores (sklearn `average_precision_score(labels, scores)`).
///
/// # Errors
/// [`Error::LengthMismatch`](crate::Error::LengthMismatch),
/// [`Error::EmptyScores`](crate::Error::EmptyScores),
/// [`Error::NonFiniteScore`](crate::Error::NonFiniteScore),
/// [`Error::SingleClass`](crate::Error::SingleClass).
///
/// ```
/// // Thresholds 0.9 (TP 1, FP 0), 0.5 (TP 2, FP 1), 0.1 (TP 2, FP 2):
/// // AP = ½·1 + ½·⅔.
/// let ap = conad_eval::average_precision(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false])?;
/// assert!((ap - (0.5 + 1.0 / 3.0)).abs() < 1e-15);
/// # Ok::<(), conad_eval::Error>(())
/// ```
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Result<f64> {
    Ok(ClassKeys::new(scores, labels)?.with_sorted(|c| {
        let mut ap = AveragePrecision::new(c.pos.len());
        let (mut tp, mut fp) = (0u64, 0u64);
        for g in c.descending_groups() {
            tp += g.positives;
            fp += g.negatives;
            ap.push(g.positives, tp, fp);
        }
        ap.value()
    }))
}

/// The precision–recall curve: one `(recall, precision)` point per distinct score, from the
/// highest threshold down (a tie group is one threshold, as in [`average_precision`]).
///
/// # Errors
/// As [`average_precision`].
///
/// ```
/// // Thresholds 0.9 (TP 1, FP 0), 0.5 (TP 2, FP 1), 0.1 (TP 2, FP 2).
/// let pr = conad_eval::pr_curve(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false])?;
/// assert_eq!(pr, vec![(0.5, 1.0), (1.0, 2.0 / 3.0), (1.0, 0.5)]);
/// # Ok::<(), conad_eval::Error>(())
/// ```
pub fn pr_curve(scores: &[f64], labels: &[bool]) -> Result<Vec<(f64, f64)>> {
    Ok(ClassKeys::new(scores, labels)?.with_sorted(|c| {
        let n_pos = c.pos.len() as f64;
        let (mut tp, mut fp) = (0u64, 0u64);
        c.descending_groups()
            .map(|g| {
                tp += g.positives;
                fp += g.negatives;
                (tp as f64 / n_pos, tp as f64 / (tp + fp) as f64)
            })
            .collect()
    }))
}

/// Streaming average precision over tie groups in descending score order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AveragePrecision {
    n_pos: f64,
    prev_recall: f64,
    sum: f64,
}

impl AveragePrecision {
    pub(crate) fn new(n_pos: usize) -> Self {
        Self {
            n_pos: n_pos as f64,
            prev_recall: 0.0,
            sum: 0.0,
        }
    }

    /// Feeds one tie group with `positives` anomalies and the cumulative counts after it.
    #[inline]
    pub(crate) fn push(&mut self, positives: u64, tp: u64, fp: u64) {
        if positives > 0 {
            // Recall differences as sklearn forms them (R_k − R_{k−1} of rounded recalls).
            let recall = tp as f64 / self.n_pos;
            self.sum += (recall - self.prev_recall) * (tp as f64 / (tp + fp) as f64);
            self.prev_recall = recall;
        }
    }

    pub(crate) fn value(&self) -> f64 {
        self.sum
    }
}
