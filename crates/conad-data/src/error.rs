//! The crate's one error type.
//!
//! Every variant names the file (or in-memory origin) and the offending value, and its message
//! says how to fix the problem. Parsers never panic on bad bytes: they return one of these.

use std::path::PathBuf;

/// Everything that can go wrong while loading, parsing or splitting a data set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused to read or write a file.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A crash-safe write failed (names the file; the previous file is unchanged).
    #[error(transparent)]
    Write(#[from] conad_fs::FsError),

    /// A file or folder the loader needs does not exist.
    #[error("{what} not found: {} — {hint}", path.display())]
    MissingFile {
        /// What the file is (e.g. "Fashion-MNIST training images").
        what: String,
        /// The path that was tried (the first candidate when several names are accepted).
        path: PathBuf,
        /// How to fix it (lists the accepted file names).
        hint: String,
    },

    /// The file ends before the data its header announces.
    #[error(
        "{origin}: truncated {what}: expected {expected} bytes, found {found} — the file is incomplete \
         (re-download or re-extract it)"
    )]
    Truncated {
        /// The file (or in-memory origin).
        origin: String,
        /// Which part was being read.
        what: String,
        /// Bytes required.
        expected: u64,
        /// Bytes available.
        found: u64,
    },

    /// The bytes are not in the expected format (bad header, bad compression stream, trailing bytes…).
    #[error("{origin}: corrupt file: {problem}")]
    Corrupt {
        /// The file (or in-memory origin).
        origin: String,
        /// What is wrong, and how to fix it.
        problem: String,
    },

    /// An IDX file starts with the wrong magic number.
    #[error(
        "{origin}: wrong magic number {found} (0x{found:08x}), expected {expected} ({what}) — is this the \
         right file (images vs labels), and is it an IDX file at all?"
    )]
    BadMagic {
        /// The file.
        origin: String,
        /// What the file should be.
        what: &'static str,
        /// The magic number required.
        expected: u32,
        /// The magic number found.
        found: u32,
    },

    /// Image and label files disagree on the number of samples.
    #[error(
        "{images_origin} holds {images} images but {labels_origin} holds {labels} labels — the two files \
         must come from the same split"
    )]
    CountMismatch {
        /// The image file.
        images_origin: String,
        /// Number of images.
        images: usize,
        /// The label file.
        labels_origin: String,
        /// Number of labels.
        labels: usize,
    },

    /// A label is outside the class range of the data set.
    #[error(
        "{origin}: label {label} of sample {index} is out of range (the data set has {num_classes} \
         classes, labels 0..{num_classes}) — corrupt file or wrong data set kind"
    )]
    LabelOutOfRange {
        /// The file.
        origin: String,
        /// Sample index.
        index: usize,
        /// The label found.
        label: i64,
        /// Number of classes.
        num_classes: usize,
    },

    /// A CIFAR-100 record's coarse label disagrees with the official fine→coarse mapping.
    #[error(
        "{origin}: record {record} has fine label {fine} and coarse label {coarse}, but the official \
         CIFAR-100 mapping puts fine label {fine} in superclass {expected} — corrupt file or not CIFAR-100"
    )]
    CoarseLabelMismatch {
        /// The file.
        origin: String,
        /// Record index.
        record: usize,
        /// Fine label.
        fine: u8,
        /// Coarse label stored in the record.
        coarse: u8,
        /// Coarse label given by the official mapping (docs/reference.md §4.1).
        expected: u8,
    },

    /// An array has a shape, dtype or layout the loader cannot use.
    #[error("{origin}: unsupported array{}: {problem}", key_suffix(key))]
    UnsupportedArray {
        /// The file.
        origin: String,
        /// The array's key inside an `.npz`, if any.
        key: Option<String>,
        /// What is wrong, and what is accepted.
        problem: String,
    },

    /// An `.npz` archive lacks an array the loader needs.
    #[error("{origin}: no array '{key}' (found: {}) — {hint}", found.join(", "))]
    MissingKey {
        /// The archive.
        origin: String,
        /// The missing key.
        key: String,
        /// The keys present.
        found: Vec<String>,
        /// How to fix it.
        hint: String,
    },

    /// An image file could not be decoded.
    #[error("cannot decode image {}: {message} — is it a valid png/jpg/bmp file?", path.display())]
    ImageDecode {
        /// The image file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },

    /// Images of an image folder differ in size and no target size was given.
    #[error(
        "images differ in size: {} is {}×{} but {} is {}×{} (H×W) — give a target size, e.g. \
         folder:DIR,size=224x224",
        first.display(), first_hw.0, first_hw.1, other.display(), other_hw.0, other_hw.1
    )]
    InconsistentImageSizes {
        /// First image seen.
        first: PathBuf,
        /// Its height and width.
        first_hw: (usize, usize),
        /// An image of another size.
        other: PathBuf,
        /// Its height and width.
        other_hw: (usize, usize),
    },

    /// An image folder does not follow the documented layout.
    #[error(
        "bad image-folder layout in {}: expected {expected}; found {} — see the conad_data::folder docs \
         for the layout (DIR/train/good, DIR/test/good, DIR/test/<anomaly type>)",
        dir.display(), list_or_nothing(found)
    )]
    BadFolderLayout {
        /// The folder that was inspected.
        dir: PathBuf,
        /// What was expected there.
        expected: String,
        /// What was found there.
        found: Vec<String>,
    },

    /// Splits of one data set disagree on the image shape.
    #[error(
        "{origin}: the {split} split has images of {}×{}×{} but the training split has {}×{}×{} (H×W×C) \
         — all splits of a data set must share one image shape",
        got.0, got.1, got.2, train.0, train.1, train.2
    )]
    SplitShapeMismatch {
        /// The data set.
        origin: String,
        /// The split that differs.
        split: String,
        /// Its shape (H, W, C).
        got: (usize, usize, usize),
        /// The training split's shape.
        train: (usize, usize, usize),
    },

    /// A dataset's fields are inconsistent (buffer length, label count, label range).
    #[error("invalid dataset: {problem}")]
    InvalidDataset {
        /// What is inconsistent.
        problem: String,
    },

    /// A protocol asked for a normal class that has no training images.
    #[error(
        "normal class {class} ('{name}') has no images in the {split} split — choose another normal \
         class or check the data"
    )]
    EmptyNormalClass {
        /// Class label.
        class: u32,
        /// Class name.
        name: String,
        /// Split name.
        split: String,
    },

    /// A protocol names a class that the data set does not have.
    #[error("class {class} does not exist: the data set has {num_classes} classes ({names})")]
    UnknownClass {
        /// Requested class.
        class: u32,
        /// Number of classes.
        num_classes: usize,
        /// Class names, for the message.
        names: String,
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

    /// The test split has no normal or no anomalous samples, so AUROC is undefined.
    #[error(
        "the one-class test set has {normals} normal and {anomalies} anomalous images — both must be \
         non-zero to evaluate; check the normal classes and the test split"
    )]
    DegenerateTestSet {
        /// Number of normal test images.
        normals: usize,
        /// Number of anomalous test images.
        anomalies: usize,
    },

    /// Contamination asks for more anomalies than the other classes' training images hold.
    #[error(
        "contamination γ = {gamma} needs {requested} anomalous training images but only {available} \
         images of other classes exist — lower γ or subsample fewer normals"
    )]
    NotEnoughAnomalies {
        /// Contamination ratio.
        gamma: f64,
        /// Anomalies needed.
        requested: usize,
        /// Anomalies available.
        available: usize,
    },

    /// A data set spec string names an unknown kind.
    #[error("unknown data set kind '{kind}' in spec '{spec}'; valid kinds: {}", valid.join(", "))]
    UnknownSpecKind {
        /// The kind that was given.
        kind: String,
        /// The whole spec.
        spec: String,
        /// The valid kinds, with their syntax.
        valid: Vec<&'static str>,
    },

    /// A data set spec string is malformed.
    #[error("bad data set spec '{spec}': {problem}")]
    BadSpec {
        /// The spec.
        spec: String,
        /// What is wrong and the expected syntax.
        problem: String,
    },
}

fn key_suffix(key: &Option<String>) -> String {
    key.as_ref().map(|k| format!(" '{k}'")).unwrap_or_default()
}

fn list_or_nothing(found: &[String]) -> String {
    if found.is_empty() {
        "nothing".to_string()
    } else {
        found.join(", ")
    }
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

impl Error {
    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        // A write through conad-fs already names the file: keep its message as it is.
        if source
            .get_ref()
            .is_some_and(|inner| inner.is::<conad_fs::FsError>())
        {
            let inner = source.into_inner().expect("checked above");
            return match inner.downcast::<conad_fs::FsError>() {
                Ok(fs) => Self::Write(*fs),
                Err(_) => unreachable!("checked above"),
            };
        }
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Corrupt`] for `origin`.
    pub(crate) fn corrupt(origin: &str, problem: impl Into<String>) -> Self {
        Self::Corrupt {
            origin: origin.to_string(),
            problem: problem.into(),
        }
    }

    /// An [`Error::Truncated`] for `origin`.
    pub(crate) fn truncated(
        origin: &str,
        what: impl Into<String>,
        expected: u64,
        found: u64,
    ) -> Self {
        Self::Truncated {
            origin: origin.to_string(),
            what: what.into(),
            expected,
            found,
        }
    }
}
