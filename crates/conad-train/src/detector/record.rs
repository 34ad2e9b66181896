//! What a detector file records besides tensors (stored as JSON in the safetensors header).

use conad_data::ImagePreprocessing;
use conad_scorers::{ConformalCalibrator, ThresholdRule};
use serde::{Deserialize, Serialize};

use crate::task_record::TaskRecord;

/// Value of [`DetectorRecord::format`]; a file with another value is refused on load.
pub const DETECTOR_FORMAT: &str = "conad-detector-v1";

/// Everything a detector needs besides tensors, and where it comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorRecord {
    /// [`DETECTOR_FORMAT`].
    pub format: String,
    /// Versions of the crates that wrote the file (`conad` = the workspace version, which every
    /// conad crate shares).
    pub versions: std::collections::BTreeMap<String, String>,
    /// Method name.
    pub method: String,
    /// Name of the fitted score (one of the method's `conad methods --scores`).
    pub score: String,
    /// The resolved training config (TOML).
    pub config: String,
    /// Data spec and protocol the model was trained on (with its calibration hold-out).
    pub task: Option<TaskRecord>,
    /// Root seed of the run.
    pub seed: u64,
    /// Epochs the weights were trained for.
    pub epochs: u64,
    /// How an image file becomes a model input.
    pub preprocessing: ImagePreprocessing,
    /// The decision rule (`score > threshold`) and how it was chosen.
    pub threshold: ThresholdRule,
    /// Calibration scores of the held-out normal images (p-values).
    pub calibration: ConformalCalibrator,
    /// Names of the normal training images (file names for image folders, `train[i]`
    /// otherwise), in the order of the nearest-neighbour bank.
    pub training_names: Vec<String>,
    /// Size, shape and hash of the training images.
    pub trained_on: Option<String>,
}
