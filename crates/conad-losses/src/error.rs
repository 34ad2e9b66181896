//! The one error type of `conad-losses`.

/// Everything that can go wrong when building masks or evaluating a contrastive loss.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor does not have the shape the loss needs.
    #[error("{what}: shape {got:?}, expected {expected}")]
    Shape {
        /// Which argument (e.g. `anchors`, `features`).
        what: &'static str,
        /// Shape that was passed.
        got: Vec<usize>,
        /// Human-readable description of the accepted shapes.
        expected: String,
    },

    /// Anchors and keys are not of one floating-point dtype.
    #[error(
        "anchors are {anchors:?} and keys {keys:?}; both must be the same float dtype (F32 or F64)"
    )]
    DType {
        /// Anchor dtype.
        anchors: candle_core::DType,
        /// Key dtype.
        keys: candle_core::DType,
    },

    /// A temperature is not strictly positive and finite.
    #[error("{name} must be positive and finite, got {value} (SimCLR uses 0.5, SupCon 0.07–0.1)")]
    InvalidTemperature {
        /// `temperature` or `base_temperature`.
        name: &'static str,
        /// The rejected value.
        value: f64,
    },

    /// Mask dimensions disagree with each other or with the anchors/keys.
    #[error("mask is {rows}×{cols} but {what}")]
    MaskShape {
        /// Mask rows.
        rows: usize,
        /// Mask columns.
        cols: usize,
        /// What it was compared with.
        what: String,
    },

    /// A positive weight is negative or not finite.
    #[error("positive weight at ({row}, {col}) is {value}; weights must be finite and ≥ 0")]
    InvalidWeight {
        /// Anchor row.
        row: usize,
        /// Key column.
        col: usize,
        /// The rejected weight.
        value: f32,
    },

    /// A positive key is excluded from the anchor's denominator (its log-probability would be −∞).
    #[error(
        "key {col} is a positive of anchor {row} but not a valid denominator entry; a positive must \
         also be a candidate (did the mask exclude the anchor itself as its own positive?)"
    )]
    PositiveNotInDenominator {
        /// Anchor row.
        row: usize,
        /// Key column.
        col: usize,
    },

    /// `EmptyAnchors::Drop` was asked for but no anchor has a positive.
    #[error(
        "no anchor has a positive, so the mean over anchors with positives is undefined; use \
         `EmptyAnchors::CountAsZero` or check the labels/mask"
    )]
    NoPositives,

    /// Labels or an explicit positive mask do not match the batch.
    #[error("{what} has {got} entries, the batch needs {expected}")]
    LabelCount {
        /// `labels` or `mask`.
        what: &'static str,
        /// Entries given.
        got: usize,
        /// Entries needed.
        expected: usize,
    },

    /// The loss evaluated to NaN or ±∞ (non-finite features, or weights that overflow).
    #[error("{loss} loss is not finite ({value}); check the inputs for NaN/inf")]
    NonFiniteLoss {
        /// Which loss.
        loss: &'static str,
        /// The value.
        value: f64,
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

    /// An input holds NaN or ±∞ where the loss reads values on the host (scores, weights).
    #[error("{what} holds a non-finite value at index {index}: {value}; check the features")]
    NonFiniteInput {
        /// Which argument.
        what: &'static str,
        /// Flat index of the first offending entry.
        index: usize,
        /// The value.
        value: f64,
    },

    /// A class / shift label is outside `0..classes`.
    #[error("label {value} at index {index} is outside 0..{classes}")]
    LabelRange {
        /// Position of the label.
        index: usize,
        /// The label.
        value: i64,
        /// Number of classes.
        classes: usize,
    },

    /// The batch is too small for the objective's sampling (MIL-Conv needs K + 1 rows, ≥ 1
    /// normal and ≥ 1 abnormal candidate).
    #[error("batch of {rows} rows is too small: {reason}")]
    BatchTooSmall {
        /// Rows given.
        rows: usize,
        /// What the objective needs.
        reason: String,
    },

    /// An error from the fused kernel (`InfoNceBackend::Fused`).
    #[error(transparent)]
    Kernel(#[from] conad_kernels::Error),

    /// An error from candle (device, dtype or an op).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
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

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn check_temperature(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidTemperature { name, value })
    }
}
