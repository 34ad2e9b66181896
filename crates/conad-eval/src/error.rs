//! The crate's one error type.
//!
//! Every variant carries the offending value and its message says how to fix the input. Metric
//! functions never panic on bad input and never sort NaNs (docs/reference.md §4.6: "NaNs must be rejected,
//! not sorted").

use std::path::PathBuf;

use crate::ranking::Class;

/// Everything that can go wrong in `conad-eval`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No scores were given.
    #[error("no scores given: a metric needs at least one normal and one anomalous sample")]
    EmptyScores,

    /// `scores` and `labels` have different lengths.
    #[error(
        "length mismatch: {scores} scores but {labels} labels; pass exactly one label \
         (true = anomaly) per score"
    )]
    LengthMismatch {
        /// Number of scores.
        scores: usize,
        /// Number of labels.
        labels: usize,
    },

    /// Only one class is present, so the metric is undefined.
    #[error(
        "only one class present: all {count} samples are {present}; AUROC/AUPR/FPR need both \
         normal (label false) and anomalous (label true) samples — check the label mapping \
         (which class is normal) and that the test split is not filtered to one class"
    )]
    SingleClass {
        /// The class that is present.
        present: Class,
        /// How many samples there are (all of that class).
        count: usize,
    },

    /// A score is NaN or ±∞.
    #[error(
        "score at index {index} is {value}, not a finite number; fix the scorer (NaN often \
         comes from normalising a zero vector or a degenerate covariance) or drop that sample"
    )]
    NonFiniteScore {
        /// Position of the first non-finite score.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// The learning curve passed to [`aulc`](crate::aulc) is empty.
    #[error("empty learning curve: AULC needs at least one AUROC value")]
    EmptyLearningCurve,

    /// A learning-curve value is NaN or ±∞.
    #[error("learning-curve value at index {index} is {value}, not a finite number")]
    NonFiniteCurveValue {
        /// Position of the first non-finite value.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// The TPR level asked of [`fpr_at_tpr`](crate::fpr_at_tpr) is outside `(0, 1]`.
    #[error("TPR level {0} is not in (0, 1]; use e.g. 0.95 for FPR@95%TPR")]
    InvalidTprLevel(f64),

    /// A metric value given to a [`ResultsTable`](crate::ResultsTable) is NaN or outside `[0, 1]`.
    #[error("metric `{metric}` = {value} is not a finite number in [0, 1] (record {record})")]
    InvalidMetricValue {
        /// Metric name (`auroc`, `aupr` or `fpr_at_95_tpr`).
        metric: &'static str,
        /// The offending value.
        value: f64,
        /// `dataset/method/class/seed` of the record.
        record: String,
    },

    /// Two records of a [`ResultsTable`](crate::ResultsTable) share dataset, method, class and seed.
    #[error(
        "duplicate record {record}: each (dataset, method, class, seed) may appear once; give \
         the runs distinct seeds or method names"
    )]
    DuplicateRecord {
        /// `dataset/method/class/seed` of the record.
        record: String,
    },

    /// A config field (or parameter) outside its domain. The same shape in every conad crate:
    /// `invalid config: \`field\` = value: what is accepted`.
    #[error("invalid config: `{field}` = {value}: {reason}")]
    InvalidConfig {
        /// The field, as a dotted path where it is nested (e.g. `optimizer.momentum`).
        field: String,
        /// The rejected value, formatted.
        value: String,
        /// What the field accepts.
        reason: String,
    },

    /// Nothing to plot.
    #[error("nothing to plot: pass at least one ROC curve")]
    NothingToPlot,

    /// The output path has no `.png` or `.svg` extension.
    #[error("cannot infer the image format of {path:?}: use a `.png` or `.svg` extension")]
    UnsupportedImageFormat {
        /// The offending path.
        path: PathBuf,
    },

    /// The embedded font could not be registered with plotters.
    #[error("the embedded DejaVu Sans font could not be registered with plotters")]
    FontRegistration,

    /// Drawing failed inside plotters.
    #[error("plotting to {path:?} failed: {message}")]
    Plot {
        /// Output path (empty for in-memory rendering).
        path: PathBuf,
        /// plotters' error, formatted.
        message: String,
    },

    /// Writing a report failed.
    #[error("I/O error while writing a report: {0}")]
    Io(#[from] std::io::Error),

    /// JSON (de)serialisation failed.
    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// An [`Error::InvalidConfig`].
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        Self::InvalidConfig {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
