//! The crate's single error type.
//!
//! Every variant carries the offending value and its message says how to fix the input, in the
//! linfa style (`InvalidNu(f32)` rather than a bare "invalid parameter").

/// Everything that can go wrong while validating parameters, fitting or scoring.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `data.len()` does not equal `rows × cols` in an [`Embeddings`](crate::Embeddings) view.
    #[error(
        "embedding buffer has {len} values but rows × cols = {rows} × {cols} = {expected}; \
         pass a row-major buffer of exactly rows·cols f32 values"
    )]
    ShapeMismatch {
        /// Length of the buffer.
        len: usize,
        /// Declared number of rows.
        rows: usize,
        /// Declared number of columns.
        cols: usize,
        /// `rows × cols` (saturating).
        expected: usize,
    },

    /// An embedding matrix with zero columns.
    #[error("embeddings have 0 columns (feature dimension); every row needs at least one feature")]
    ZeroDimension,

    /// A training bank with no rows (or fewer rows than the scorer needs).
    #[error(
        "the {what} has {rows} rows but needs at least {min}; \
         fit on a non-empty set of normal training embeddings"
    )]
    EmptyBank {
        /// Which bank ("training bank", "group 3 training bank", …).
        what: String,
        /// Number of rows given.
        rows: usize,
        /// Minimum number of rows required.
        min: usize,
    },

    /// A query (or a second bank) whose feature dimension differs from the fitted bank's.
    #[error(
        "dimension mismatch in {what}: the scorer was fitted on {expected}-dimensional \
         embeddings but got {got}; score embeddings from the same model/layer as the bank"
    )]
    DimensionMismatch {
        /// Which input was wrong.
        what: String,
        /// Dimension the scorer was fitted on.
        expected: usize,
        /// Dimension received.
        got: usize,
    },

    /// A NaN or infinite value in an input matrix.
    #[error(
        "{what} row {row}, column {col} is {value} (not finite); \
         remove or repair that embedding (was the encoder's output NaN?)"
    )]
    NonFinite {
        /// Which input ("training bank", "queries", …).
        what: String,
        /// Row index of the first non-finite value.
        row: usize,
        /// Column index of the first non-finite value.
        col: usize,
        /// The value itself (NaN or ±inf).
        value: f32,
    },

    /// `k = 0` for a nearest-neighbour scorer.
    #[error("k = 0 neighbours is invalid; use k ≥ 1 (k = 1 is the max-cosine score)")]
    ZeroK,

    /// `k` exceeds the number of training embeddings.
    #[error(
        "k = {k} neighbours requested but the training bank has only {bank} rows; \
         use k ≤ {bank} or a larger bank"
    )]
    KExceedsBank {
        /// Requested k.
        k: usize,
        /// Bank size.
        bank: usize,
    },

    /// ν outside (0, 1] for the one-class SVM.
    #[error(
        "nu = {0} is outside (0, 1]; ν bounds the fraction of training outliers \
         (sklearn's default is 0.5)"
    )]
    InvalidNu(f64),

    /// A non-positive or non-finite kernel bandwidth γ.
    #[error("gamma = {0} is invalid; the RBF bandwidth must be finite and > 0")]
    InvalidGamma(f32),

    /// The training features have zero variance, so a data-derived bandwidth is undefined.
    #[error(
        "the training features have zero variance (all entries equal), so the data-derived \
         bandwidth γ = c/(Var·d) is undefined; pass an explicit gamma"
    )]
    ZeroVariance,

    /// An HNSW degree `M` outside `[2, 4096]` (approximate kNN backend, feature `hnsw`).
    #[error(
        "HNSW M = {0} is invalid; use 2 ≤ M ≤ 4096 links per node (typical 12–48, default 16; \
         layer 0 keeps up to 2·M)"
    )]
    InvalidHnswM(usize),

    /// An HNSW candidate-list size (`ef_construction`, `ef_search`) too small for what it must
    /// hold (approximate kNN backend, feature `hnsw`).
    #[error(
        "HNSW {name} = {value} is too small: use {name} ≥ {min} ({reason}); \
         defaults are ef_construction = 200, ef_search = 64"
    )]
    HnswEfTooSmall {
        /// `"ef_construction"` or `"ef_search"`.
        name: &'static str,
        /// The value given.
        value: usize,
        /// The smallest valid value.
        min: usize,
        /// Why the bound exists.
        reason: &'static str,
    },

    /// A conformal false-positive rate that the calibration set is too small to reach.
    #[error(
        "{calibration} calibration images cannot reach a false-positive rate of {alpha}: the \
         smallest conformal p-value is 1/(n + 1) = 1/{n1}, so nothing would ever be flagged; \
         hold out at least {needed} normal images for calibration (a larger calibration \
         fraction or more normal images) or accept a larger rate"
    , n1 = calibration + 1)]
    CalibrationTooSmall {
        /// Number of calibration images.
        calibration: usize,
        /// The rate asked for.
        alpha: f64,
        /// The fewest calibration images that reach it.
        needed: usize,
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

    /// A covariance matrix that is not positive definite after regularisation.
    #[error(
        "the covariance of the {what} is not positive definite (pivot {pivot} failed); \
         estimate it with Ledoit–Wolf shrinkage (the gaussian scorer's default) or add a larger \
         ridge (`--ridge EPS` on the command line, `GaussianCovariance::Ridge {{ epsilon }}`), \
         or reduce the feature dimension"
    )]
    NotPositiveDefinite {
        /// Which covariance.
        what: String,
        /// Index of the failing pivot.
        pivot: usize,
    },

    /// A linear-algebra routine (eigendecomposition) failed to converge.
    #[error("{what} failed to converge; check the input for extreme values")]
    NoConvergence {
        /// Which routine.
        what: &'static str,
    },

    /// k-means produced a cluster too small to estimate a covariance.
    #[error(
        "k-means cluster {cluster} has {size} members but a covariance needs at least 2; \
         use fewer clusters (n_clusters) for a bank of this size"
    )]
    ClusterTooSmall {
        /// Cluster index.
        cluster: usize,
        /// Number of members.
        size: usize,
    },

    /// More clusters than training rows.
    #[error("n_clusters = {clusters} exceeds the {rows} training rows; use n_clusters ≤ rows")]
    TooManyClusters {
        /// Requested clusters.
        clusters: usize,
        /// Bank size.
        rows: usize,
    },

    /// Group-structured inputs (TTA ensembles, CSI shifts) with inconsistent shapes.
    #[error("group structure mismatch: {0}")]
    GroupMismatch(String),

    /// A fitted scorer whose stored arrays are inconsistent (a corrupted or hand-edited file).
    #[error(
        "the fitted {scorer} scorer is inconsistent: {detail}; re-fit it or reload an intact file"
    )]
    CorruptModel {
        /// Scorer name.
        scorer: &'static str,
        /// What is wrong.
        detail: String,
    },

    /// A scorer name the config does not know.
    #[error("unknown scorer `{name}`; expected one of {}", valid.join(", "))]
    UnknownScorer {
        /// The name asked for.
        name: String,
        /// Every registered name ([`crate::SCORERS`]).
        valid: Vec<&'static str>,
    },

    /// A command-line style option given to a scorer that does not take it.
    #[error("option `{option}` does not apply to the `{scorer}` scorer; {hint}")]
    OptionNotApplicable {
        /// Option name (e.g. "--nu").
        option: &'static str,
        /// Scorer name.
        scorer: &'static str,
        /// Which options the scorer does take.
        hint: &'static str,
    },
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
pub type Result<T> = std::result::Result<T, Error>;
