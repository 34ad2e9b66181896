//! The one error type of `conad-train`.

use std::path::PathBuf;

/// Everything that can go wrong while configuring, training, checkpointing or embedding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration field has a value outside its domain.
    #[error("invalid training config: `{field}` = {value}: {reason}")]
    InvalidConfig {
        /// Dotted path of the field (e.g. `optimizer.momentum`).
        field: String,
        /// The rejected value.
        value: String,
        /// What is accepted.
        reason: String,
    },

    /// The method name is not in the registry.
    #[error("unknown method `{name}`; valid methods: {}", valid.join(", "))]
    UnknownMethod {
        /// The name that was asked for.
        name: String,
        /// Every registered name.
        valid: Vec<&'static str>,
    },

    /// The score name is not one the method offers.
    #[error("method `{method}` has no score `{name}`; its scores: {}", valid.join(", "))]
    UnknownScore {
        /// The method.
        method: String,
        /// The name that was asked for.
        name: String,
        /// Every score of the method.
        valid: Vec<String>,
    },

    /// A TOML config does not parse or has unknown/mistyped fields.
    #[error("cannot read training config from {origin}: {message}")]
    ConfigParse {
        /// File path or `"string"`.
        origin: String,
        /// The parser's message (names the offending key).
        message: String,
    },

    /// The loss became NaN or ±∞ (divergence): training stops.
    #[error(
        "loss is {value} at epoch {epoch}, step {step} (global step {global_step}); training \
         diverged — lower the learning rate, check the schedule's peak, or use a smaller \
         temperature range"
    )]
    NonFiniteLoss {
        /// Zero-based epoch.
        epoch: u64,
        /// Zero-based step within the epoch.
        step: u64,
        /// Zero-based step counted from the start of training.
        global_step: u64,
        /// The loss value (NaN or ±∞).
        value: f64,
    },

    /// The training split is too small for one batch.
    #[error(
        "the training split has {images} images but batch_size is {batch_size} with drop_last; \
         lower batch_size or set drop_last = false"
    )]
    TooFewImages {
        /// Items in the training pool (images × the method's shifted copies).
        images: usize,
        /// Configured batch size (source images).
        batch_size: usize,
    },

    /// The data cannot be fed to the configured model or pipeline.
    #[error("data/model mismatch: {0}")]
    DataMismatch(String),

    /// A parameter is not f32 (the optimisers update f32 storage only).
    #[error("parameter `{name}` has dtype {dtype:?}; conad's optimisers train f32 parameters only")]
    UnsupportedDType {
        /// Variable name.
        name: String,
        /// Its dtype.
        dtype: candle_core::DType,
    },

    /// Optimiser state in a checkpoint does not fit the model or the optimiser.
    #[error("optimizer state for `{name}`: {reason}")]
    OptimizerState {
        /// Parameter (or state entry) name.
        name: String,
        /// What is wrong.
        reason: String,
    },

    /// The run directory holds a run with another configuration.
    #[error(
        "{} holds a run with a different config ({}); use another run directory, or start \
         afresh there (`conad train --overwrite`, `ResumePolicy::Overwrite`), which deletes \
         that run",
        path.display(),
        differences.join("; ")
    )]
    RunConfigMismatch {
        /// The run directory.
        path: PathBuf,
        /// One line per differing key.
        differences: Vec<String>,
    },

    /// The parts of a run directory disagree (a `config.toml` or `task.toml` edited or copied
    /// from another run after training): nothing is loaded.
    #[error(
        "{} is inconsistent: {} — its {what} says otherwise than the weights were trained with; \
         restore the original file or retrain",
        path.display(),
        differences.join("; ")
    )]
    InconsistentRun {
        /// The directory.
        path: PathBuf,
        /// Which file disagrees with the trained record (`config.toml`, `task.toml`).
        what: String,
        /// One line per differing field (recorded vs on disk).
        differences: Vec<String>,
    },

    /// Run files without `config.toml`: an interrupted `--overwrite` or a directory of other
    /// files; nothing is resumed from or deleted.
    #[error(
        "{} holds run files ({}) but no config.toml (an interrupted `--overwrite`?); rerun with \
         `--overwrite` (`ResumePolicy::Overwrite`) to delete them and start afresh, or choose \
         another directory",
        path.display(),
        files.join(", ")
    )]
    IncompleteRun {
        /// The directory.
        path: PathBuf,
        /// The run files found.
        files: Vec<String>,
    },

    /// The directory holds no loadable run.
    #[error("{} is not a conad run directory: {reason}", path.display())]
    NotARun {
        /// The directory.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },

    /// File-system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A crash-safe write or removal failed (names the file; the previous file is unchanged).
    #[error(transparent)]
    Write(#[from] conad_fs::FsError),

    /// JSON (de)serialisation of run metadata failed.
    #[error("{what}: {message}")]
    Json {
        /// Which document.
        what: String,
        /// serde_json's message.
        message: String,
    },

    /// Error from the data crate (spec, loader, protocol).
    #[error(transparent)]
    Data(#[from] conad_data::Error),

    /// Error from the model crate (architecture, checkpoint files, shapes).
    #[error(transparent)]
    Models(#[from] conad_models::Error),

    /// Error from a loss.
    #[error(transparent)]
    Losses(#[from] conad_losses::Error),

    /// Error from the augmentation pipeline.
    #[error(transparent)]
    Augment(#[from] conad_augment::Error),

    /// Error from evaluation metrics.
    #[error(transparent)]
    Eval(#[from] conad_eval::Error),

    /// Error from the kNN scorer.
    #[error(transparent)]
    Scorers(#[from] conad_scorers::Error),

    /// Error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

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

    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
