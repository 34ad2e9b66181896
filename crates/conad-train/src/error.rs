//! The one error type of `conad-train`.

use std::path::PathBuf;

/// Everything that can go wrong while configuring, training, checkpointing or embedding.
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

    /// A set of images that must not be empty is.
    #[error("{what} has no images; give it at least one")]
    EmptyImages {
        /// Which set (`"the training split"`, `"the images to embed"`).
        what: &'static str,
    },

    /// Two counts that must be equal differ.
    #[error("{what}: {expected} expected, {found} given")]
    CountMismatch {
        /// What is counted (`"anomaly labels of the test images"`).
        what: &'static str,
        /// The count the other side implies.
        expected: usize,
        /// The count given.
        found: usize,
    },

    /// Training and test images have different shapes.
    #[error(
        "training images are {train:?} (H, W, C) but test images {test:?}; both splits must \
         come from one data set"
    )]
    ImageShapeMismatch {
        /// (height, width, channels) of the training images.
        train: (usize, usize, usize),
        /// (height, width, channels) of the test images.
        test: (usize, usize, usize),
    },

    /// Channel counts that must agree (training vs test views, views vs the model) differ.
    #[error("{what}: {expected} vs {found} channels; {fix}")]
    ChannelMismatch {
        /// The two sides (`"training views vs test views"`).
        what: &'static str,
        /// Channels of the first side.
        expected: usize,
        /// Channels of the second side.
        found: usize,
        /// How to fix it.
        fix: &'static str,
    },

    /// The online evaluation (or a raw-pixel run) needs normal and anomalous test images.
    #[error(
        "online evaluation needs normal and anomalous test images, the test split has \
         {anomalies} anomalies among {total} images; set eval_every = 0 to train without it"
    )]
    OneSidedTestSplit {
        /// Anomalies in the test split.
        anomalies: usize,
        /// Test images.
        total: usize,
    },

    /// A score asked a method for a head it does not have.
    #[error("method `{method}` has no head `{head}`")]
    UnknownHead {
        /// The method.
        method: String,
        /// The head asked for.
        head: String,
    },

    /// A method's batch lacks the input its loss reads (a method implementation error).
    #[error("the {method} batch has no input tensor {index}")]
    MissingInput {
        /// The method.
        method: String,
        /// The input index asked for.
        index: usize,
    },

    /// A training-pool item index beyond the pool (images × shifted copies).
    #[error("pool item {item} is outside the pool of {pool} items")]
    PoolIndex {
        /// The index.
        item: usize,
        /// The pool size.
        pool: usize,
    },

    /// A head gives fewer logits than the shifts a score asks of it.
    #[error("{head} gives {columns} logits, shift {needed} needs at least {} columns", needed + 1)]
    HeadWidth {
        /// The head (or logit matrix) described.
        head: String,
        /// Logits it gives.
        columns: usize,
        /// The shift index asked for.
        needed: usize,
    },

    /// A fitted score was asked to score with fitted state of another score recipe.
    #[error("fitted score `{score}` holds state of another recipe; fit it again")]
    FittedScoreRecipeMismatch {
        /// The score.
        score: String,
    },

    /// A variable a method stores in the run is missing.
    #[error("the run has no variable `{name}`; was it built by this method's `build`?")]
    MissingVariable {
        /// Its name.
        name: String,
    },

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
        "{} is inconsistent: {} — its {what} disagrees with the record of what the run was \
         trained with (kept in its weights, or a raw-pixel run's report); restore the original \
         file or retrain",
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

    /// The training images rebuilt for evaluation are not those the weights were trained on.
    #[error(
        "the training split differs from the one the run was trained on (trained: {trained}; \
         now: {now}); the data files changed since training — point --data at the original files \
         or retrain"
    )]
    TrainingDataChanged {
        /// Fingerprint recorded in the checkpoint.
        trained: String,
        /// Fingerprint of the images given now.
        now: String,
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

    /// A detector needs normal images held out of training to calibrate its threshold.
    #[error(
        "{what} has no calibration images: every normal training image was used for training, \
         so none is left to calibrate the threshold on; fit through `conad fit` (which holds out \
         --calibration-fraction of the normal images, 0.2 by default) or set \
         `OneClassProtocol::calibration_fraction`"
    )]
    NoCalibrationImages {
        /// The task or run.
        what: String,
    },

    /// A file that is not a conad detector.
    #[error("{} is not a conad detector: {reason}", path.display())]
    NotADetector {
        /// The file.
        path: PathBuf,
        /// Why (and what it is instead, when known).
        reason: String,
    },

    /// A detector written in another file format version.
    #[error(
        "{} is a detector in format `{found}`, this build reads `{expected}`; refit it with this \
         conad (`conad fit … --run RUN_DIR` reuses its training run) or use the conad version \
         that wrote it",
        path.display()
    )]
    DetectorFormat {
        /// The file.
        path: PathBuf,
        /// Format found.
        found: String,
        /// Format this build reads.
        expected: String,
    },

    /// Images given to a detector whose size or channels differ from its preprocessing.
    #[error(
        "the detector takes {expected:?} (H, W, C) images, got {found:?}; prepare them with \
         `Detector::preprocessing().prepare` (or `.load` for files) or use `score_image`"
    )]
    DetectorInputShape {
        /// (height, width, channels) the detector takes.
        expected: (usize, usize, usize),
        /// What was given.
        found: (usize, usize, usize),
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
