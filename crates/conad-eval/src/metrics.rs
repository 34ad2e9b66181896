//! The three headline metrics of one (scores, labels) evaluation, computed in one sort.
//!
//! [`Metrics::compute`] validates, sorts and walks the tie groups once, feeding the AUROC
//! ([`crate::auroc`]), average-precision ([`crate::pr`]) and FPR@95%TPR ([`crate::roc`])
//! accumulators together; each value is identical (bit for bit) to the one of the standalone
//! function. This is what `conad metrics` prints.

use serde::{Deserialize, Serialize};

use crate::auroc::auroc_from_twice_u;
use crate::error::Result;
use crate::pr::AveragePrecision;
use crate::ranking::ClassKeys;
use crate::roc::FprAtTpr;

/// AUROC, AUPR (average precision) and FPR at 95 % TPR of anomaly scores.
///
/// Conventions: label `true` = anomaly = positive class, higher score = more anomalous. JSON keys
/// are exactly `auroc`, `aupr`, `fpr_at_95_tpr`; values are fractions in `[0, 1]` (not percent).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Area under the ROC curve, ties counted ½ ([`auroc`](crate::auroc)).
    pub auroc: f64,
    /// Average precision with anomalies as positives ([`average_precision`](crate::average_precision)).
    pub aupr: f64,
    /// Smallest FPR among ROC points with TPR ≥ 0.95 ([`fpr_at_95_tpr`](crate::fpr_at_95_tpr)).
    pub fpr_at_95_tpr: f64,
}

impl Metrics {
    /// Computes all three metrics with one validation, one sort and one walk.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`](crate::Error::LengthMismatch),
    /// [`Error::EmptyScores`](crate::Error::EmptyScores),
    /// [`Error::NonFiniteScore`](crate::Error::NonFiniteScore),
    /// [`Error::SingleClass`](crate::Error::SingleClass).
    ///
    /// ```
    /// let m = conad_eval::Metrics::compute(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false])?;
    /// assert_eq!(m.auroc, 0.875);
    /// assert_eq!(m.fpr_at_95_tpr, 0.5);
    /// assert_eq!(
    ///     serde_json::to_string(&m).unwrap(),
    ///     r#"{"auroc":0.875,"aupr":0.8333333333333333,"fpr_at_95_tpr":0.5}"#
    /// );
    /// # Ok::<(), conad_eval::Error>(())
    /// ```
    pub fn compute(scores: &[f64], labels: &[bool]) -> Result<Self> {
        let mut fpr95 = FprAtTpr::new(0.95)?;
        Ok(ClassKeys::new(scores, labels)?.with_sorted(|c| {
            let (n_pos, n_neg) = (c.pos.len(), c.neg.len());
            let mut ap = AveragePrecision::new(n_pos);
            let (mut tp, mut fp, mut twice_u) = (0u64, 0u64, 0u128);
            for g in c.descending_groups() {
                twice_u +=
                    u128::from(g.positives) * u128::from(2 * g.negatives_below + g.negatives);
                tp += g.positives;
                fp += g.negatives;
                ap.push(g.positives, tp, fp);
                fpr95.push(tp, fp, n_pos, n_neg);
            }
            Self {
                auroc: auroc_from_twice_u(twice_u, n_pos, n_neg),
                aupr: ap.value(),
                fpr_at_95_tpr: fpr95.value(),
            }
        }))
    }

    /// The value of one metric.
    pub const fn get(&self, kind: MetricKind) -> f64 {
        match kind {
            MetricKind::Auroc => self.auroc,
            MetricKind::Aupr => self.aupr,
            MetricKind::FprAt95Tpr => self.fpr_at_95_tpr,
        }
    }
}

/// Names one of the fields of [`Metrics`] (for tables and reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// [`Metrics::auroc`]; higher is better.
    Auroc,
    /// [`Metrics::aupr`]; higher is better.
    Aupr,
    /// [`Metrics::fpr_at_95_tpr`]; lower is better.
    #[serde(rename = "fpr_at_95_tpr")]
    FprAt95Tpr,
}

impl MetricKind {
    /// All three, in the order of the [`Metrics`] fields.
    pub const ALL: [Self; 3] = [Self::Auroc, Self::Aupr, Self::FprAt95Tpr];

    /// The JSON/CSV key (`auroc`, `aupr`, `fpr_at_95_tpr`).
    pub const fn key(self) -> &'static str {
        match self {
            Self::Auroc => "auroc",
            Self::Aupr => "aupr",
            Self::FprAt95Tpr => "fpr_at_95_tpr",
        }
    }

    /// Column heading for human-readable tables (values in percent).
    pub const fn heading(self) -> &'static str {
        match self {
            Self::Auroc => "AUROC %",
            Self::Aupr => "AUPR %",
            Self::FprAt95Tpr => "FPR@95TPR %",
        }
    }
}
