//! The one error type of `conad-models`.

use std::path::PathBuf;

/// Everything that can go wrong when building, running, saving or loading a conad model.
///
/// Variants carry the offending value and, where there is one, the way to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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

    /// The input tensor does not have the shape the module needs.
    #[error("{module}: input has shape {got:?}, expected {expected}")]
    InputShape {
        /// Module that rejected the input.
        module: &'static str,
        /// Shape that was passed.
        got: Vec<usize>,
        /// Human-readable description of the accepted shapes.
        expected: String,
    },

    /// A batch-norm layer in training mode saw a single value per channel (PyTorch raises the same
    /// error): the batch variance is undefined and the running variance update divides by `n − 1 = 0`.
    #[error(
        "batch norm `{layer}` in training mode needs more than 1 value per channel, got {count} \
         (input shape {shape:?}); use a batch of at least 2 or evaluation mode"
    )]
    BatchNormTooFewValues {
        /// Parameter prefix of the layer (e.g. `layer4.1.bn2`).
        layer: String,
        /// Values per channel (batch × spatial positions).
        count: usize,
        /// Input shape.
        shape: Vec<usize>,
    },

    /// `ResNet::logits` was called on a model built without a classification layer.
    #[error(
        "the model has no classification layer `fc`; set `ResNetConfig::num_classes` to build one"
    )]
    NoClassifier,

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },

    /// A file is not valid safetensors (truncated, corrupt header, unsupported dtype, …).
    #[error("{path} is not a readable safetensors file: {message}")]
    Safetensors {
        /// File involved.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },

    /// A safetensors file lacks conad's metadata or carries metadata conad cannot read.
    #[error("{path} is not a conad checkpoint: {reason}")]
    NotACheckpoint {
        /// File involved.
        path: PathBuf,
        /// What is missing or malformed.
        reason: String,
    },

    /// A checkpoint whose bytes changed after it was written, or that holds NaN/infinite weights.
    #[error("{} is damaged: {reason}; retrain, or resume from another copy of the run", path.display())]
    CorruptCheckpoint {
        /// File involved.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A checkpoint to save holds NaN or ±∞ (training diverged): it is not written, the previous
    /// checkpoint stays.
    #[error(
        "refusing to write {}: tensor `{tensor}` holds {count} NaN or infinite value(s) (training \
         diverged; lower the learning rate); the previous file is kept",
        path.display()
    )]
    NonFiniteWeights {
        /// The checkpoint that was not written.
        path: PathBuf,
        /// The first tensor with non-finite values.
        tensor: String,
        /// How many values of it are non-finite.
        count: usize,
    },

    /// A crash-safe write failed (names the file; the previous file is unchanged).
    #[error(transparent)]
    Write(#[from] conad_fs::FsError),

    /// The checkpoint was written by another conad version.
    #[error(
        "checkpoint was written by conad {checkpoint}, this is conad {current}; re-train, or call \
         `Checkpoint::check_architecture` alone if you accept loading across versions"
    )]
    VersionMismatch {
        /// Version recorded in the checkpoint.
        checkpoint: String,
        /// Version of this build.
        current: String,
    },

    /// The checkpoint's architecture differs from the requested config.
    #[error("checkpoint architecture differs from the config: {}", differences.join("; "))]
    ArchitectureMismatch {
        /// One sentence per differing field, e.g. `checkpoint has width 0.25, config asks 1`.
        differences: Vec<String>,
    },

    /// Tensors that the model needs are absent from a weight file or checkpoint.
    #[error("{source_name} lacks {} tensor(s) the model needs: {}", names.len(), names.join(", "))]
    MissingTensors {
        /// File or checkpoint description.
        source_name: String,
        /// Missing parameter names.
        names: Vec<String>,
    },

    /// A tensor exists but with another shape than the model's parameter.
    #[error("tensor `{name}` has shape {found:?} in {source_name}, the model expects {expected:?}")]
    TensorShape {
        /// File or checkpoint description.
        source_name: String,
        /// Parameter name.
        name: String,
        /// Shape the model expects.
        expected: Vec<usize>,
        /// Shape found.
        found: Vec<usize>,
    },

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

impl Error {
    /// Wrap into a candle error, for trait impls (`ModuleT`) whose signature is fixed by candle.
    /// A wrapped candle error is unwrapped instead of nested.
    pub(crate) fn into_candle(self) -> candle_core::Error {
        match self {
            Error::Candle(e) => e,
            other => candle_core::Error::wrap(other),
        }
    }
}
