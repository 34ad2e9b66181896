//! The one error type of `conad-kernels`.

/// Everything that can go wrong when calling a fused kernel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor does not have the shape the kernel needs.
    #[error("{what}: shape {got:?}, expected {expected}")]
    Shape {
        /// Which argument (e.g. `z`, `anchors`, `keys`).
        what: &'static str,
        /// Shape that was passed.
        got: Vec<usize>,
        /// Human-readable description of the accepted shapes.
        expected: String,
    },

    /// The kernels run on F32 and F64 only.
    #[error("{what} is {got:?}; the fused kernels take F32 or F64 (convert with `to_dtype`)")]
    DType {
        /// Which argument.
        what: &'static str,
        /// The rejected dtype.
        got: candle_core::DType,
    },

    /// Two tensors that must share a dtype or device do not.
    #[error("{what}: {detail}")]
    Mismatch {
        /// Which arguments.
        what: &'static str,
        /// What differs.
        detail: String,
    },

    /// An id vector (instance ids or labels) does not have one entry per row.
    #[error("{what} has {got} entries but there are {expected} rows")]
    IdCount {
        /// `instance ids` or `labels`.
        what: &'static str,
        /// Entries passed.
        got: usize,
        /// Rows of the tensor.
        expected: usize,
    },

    /// A rule needs class labels but none were given.
    #[error("positive rule {rule} needs class labels; build the ids with `RowIds::with_labels`")]
    MissingLabels {
        /// The rule's name.
        rule: &'static str,
    },

    /// The temperature is not strictly positive and finite.
    #[error(
        "temperature must be positive and finite, got {value} (SimCLR uses 0.5, SupCon 0.07–0.1)"
    )]
    InvalidTemperature {
        /// The rejected value.
        value: f64,
    },

    /// More anchors than rows were requested.
    #[error("{anchors} leading anchor rows requested but z has only {rows} rows")]
    AnchorCount {
        /// Requested anchors.
        anchors: usize,
        /// Rows of `z`.
        rows: usize,
    },

    /// `EmptyAnchors::Drop` with no anchor that has a positive: the mean is 0/0.
    #[error(
        "no anchor has a positive, so the mean over anchors with positives is undefined; \
         check the instance ids / labels or use EmptyAnchors::CountAsZero"
    )]
    NoPositives,

    /// An input holds NaN or ±∞.
    #[error("{what} holds a non-finite value at row {row}, column {col}: {value}")]
    NonFinite {
        /// Which argument.
        what: &'static str,
        /// Row of the first non-finite entry.
        row: usize,
        /// Column of the first non-finite entry.
        col: usize,
        /// The value.
        value: f64,
    },

    /// `k` of a top-k query is 0 or larger than supported.
    #[error("k = {k} is not supported: need 1 ≤ k ≤ min({max}, bank rows = {bank})")]
    InvalidK {
        /// Requested k.
        k: usize,
        /// Kernel limit.
        max: usize,
        /// Bank rows.
        bank: usize,
    },

    /// No usable CUDA: library missing, no device, or a kernel failed to compile or launch.
    #[error("CUDA unavailable or failed: {reason}")]
    Cuda {
        /// What happened, including the NVRTC log for compile errors.
        reason: String,
    },

    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks a temperature.
pub(crate) fn check_temperature(value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidTemperature { value })
    }
}
