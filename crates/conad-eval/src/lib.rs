//! Evaluation for conad: tie-correct AUROC and the other one-class anomaly-detection metrics,
//! aggregation over classes and seeds, report writers and figures.
//!
//! Specification: docs/reference.md §4.6 (AUROC and ties), §4.7 (AULC), §4.1 and §6.23 (averaging over
//! classes and seeds).
//!
//! # Conventions
//! - **Label `true` = anomaly = positive class; label `false` = normal.**
//! - **Higher score = more anomalous.** Negate normality scores (higher = more normal) first.
//!   AUROC is the same number for (anomaly scores, anomaly positive) and (normality scores, normal
//!   positive) — docs/reference.md §4.6 — but AUPR and FPR@95%TPR are defined here with anomalies as
//!   positives on anomaly scores only.
//! - Metric values are fractions in `[0, 1]`; Markdown tables print percent with one decimal.
//! - Bad input (length mismatch, empty input, NaN/±∞ score, only one class) is a typed
//!   [`Error`], never a panic or a silent number. NaNs are rejected, never sorted.
//!
//! # Contents
//! | concept | items | file |
//! |---|---|---|
//! | AUROC (mid-ranks, exact `U`, O(n log n), parallel) | [`auroc`] | `auroc.rs` |
//! | ROC points (sklearn semantics), FPR at a TPR level | [`roc_curve`], [`RocCurve`], [`DropIntermediate`], [`fpr_at_95_tpr`], [`fpr_at_tpr`] | `roc.rs` |
//! | AUPR = average precision (sklearn semantics) | [`average_precision`] | `pr.rs` |
//! | all three in one sort | [`Metrics`], [`MetricKind`] | `metrics.rs` |
//! | AULC (FIRM) | [`aulc`] | `aulc.rs` |
//! | classes × seeds aggregation | [`ResultsTable`], [`Record`], [`ClassSummary`], [`MethodSummary`], [`MethodStats`], [`MeanStd`] | `aggregate.rs` |
//! | JSON / CSV / Markdown | [`ResultsReport`], [`write_records_csv`], [`markdown_method_summaries`], … | `report.rs` |
//! | PNG / SVG figures | [`plot_roc`], [`plot_score_histogram`] | `plot.rs` |
//! | validation, sorting, tie groups | (internal) | `ranking.rs` |
//!
//! ```
//! use conad_eval::{Metrics, auroc};
//! let scores = [0.9, 0.8, 0.8, 0.3, 0.1];
//! let labels = [true, true, false, false, false];
//! // Anomaly 0.8 ties with normal 0.8: ½ credit. AUROC = (3 + 2.5) / 6.
//! assert!((auroc(&scores, &labels)? - 5.5 / 6.0).abs() < 1e-15);
//! let m = Metrics::compute(&scores, &labels)?;
//! println!("{}", serde_json::to_string(&m).unwrap()); // {"auroc":…,"aupr":…,"fpr_at_95_tpr":…}
//! # Ok::<(), conad_eval::Error>(())
//! ```

pub mod aggregate;
mod aulc;
mod auroc;
pub mod bars;
mod error;
mod metrics;
pub mod plot;
mod pr;
mod ranking;
pub mod report;
mod roc;

pub use aggregate::{ClassSummary, MeanStd, MethodStats, MethodSummary, Record, ResultsTable};
pub use aulc::aulc;
pub use auroc::auroc;
pub use bars::{Bar, plot_bars};
pub use error::{Error, Result};
pub use metrics::{MetricKind, Metrics};
pub use plot::{
    HistogramOptions, ImageFormat, PlotOptions, RocSeries, plot_roc, plot_score_histogram, roc_svg,
    score_histogram_svg,
};
pub use pr::{average_precision, pr_curve};
pub use ranking::Class;
pub use report::{
    ResultsReport, markdown_method_summaries, markdown_per_class, write_class_summaries_csv,
    write_method_summaries_csv, write_records_csv, write_roc_csv,
};
pub use roc::{DropIntermediate, RocCurve, fpr_at_95_tpr, fpr_at_tpr, roc_curve};
