//! Detectors for the user's own images: a trained model, one of its method's test-time scores
//! fitted on the normal training images, a decision threshold chosen on normal images only, and
//! the training images' features for "nearest normal image" explanations — saved as **one
//! self-contained safetensors file** that scores new image files without the training data.
//!
//! | concept | items | file |
//! |---|---|---|
//! | what a detector file records (config, preprocessing, threshold, versions) | [`DetectorRecord`], [`DETECTOR_FORMAT`] | `record.rs` |
//! | fitting on a one-class task with a calibration hold-out; scoring | [`Detector`], [`ThresholdChoice`], [`Verdict`] | `detector.rs` |
//! | the file: save / load, every check on load | [`Detector::save`], [`Detector::load`] | `file.rs` |
//!
//! Thresholds come from `conad_scorers::calibration`: split-conformal p-values on normal
//! images held out of training ([`conad_data::OneClassProtocol::calibration_fraction`]), a
//! manual threshold, or the F1-optimal threshold on labelled images. Every decision is
//! `score > threshold`; every score is an anomaly score (higher = more anomalous).
//!
//! ```no_run
//! use conad_train::detector::Detector;
//! let detector = Detector::load("det.conad")?;
//! let pixels = detector.preprocessing().load(std::path::Path::new("scan.png"))?;
//! let verdict = detector.score_prepared(&pixels, 1)?.remove(0);
//! println!("score {} p {} anomaly {}", verdict.score, verdict.p_value, verdict.is_anomaly);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[allow(clippy::module_inception)]
mod detector;
mod file;
mod record;

pub use detector::{Detector, DetectorFit, ThresholdChoice, Verdict};
pub use record::{DETECTOR_FORMAT, DetectorRecord};
