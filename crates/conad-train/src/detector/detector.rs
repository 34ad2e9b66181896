//! [`Detector`]: fit on a one-class task with a calibration hold-out, score prepared images.

use std::collections::BTreeMap;

use candle_core::Tensor;
use conad_augment::{ImageBatchU8, Shift};
use conad_data::{Dataset, ImagePreprocessing, OneClassTask, ResizePolicy, folder};
use conad_models::{CONAD_VERSION, Checkpoint, CheckpointMeta};
use conad_scorers::{ConformalCalibrator, EmbeddingMatrix, ThresholdRule, f1_optimal_threshold};
use rayon::prelude::*;

use super::record::{DETECTOR_FORMAT, DetectorRecord};
use crate::error::{Error, Result};
use crate::run_dir::{TrainedModel, dataset_view};
use crate::score::{FittedScore, Output, ScoringModel, ViewSpec, embed_view};

/// Longest side of the training-image thumbnails a detector keeps for explanations.
pub(super) const THUMBNAIL_SIDE: usize = 64;

/// How [`Detector::fit`] chooses the threshold.
#[derive(Clone, Debug)]
pub enum ThresholdChoice {
    /// Split-conformal at false-positive rate `alpha` (`conad_scorers::calibration`).
    Conformal {
        /// Target false-positive rate α.
        alpha: f64,
    },
    /// A fixed score threshold.
    Manual {
        /// The threshold.
        threshold: f64,
    },
    /// The F1-optimal threshold on labelled images (normal and anomalous).
    F1Optimal {
        /// The labelled images (the detector's preprocessing shape).
        images: Dataset,
        /// Which of them are anomalies.
        is_anomaly: Vec<bool>,
    },
}

/// Options of [`Detector::fit`].
#[derive(Clone, Debug)]
pub struct DetectorFit {
    /// Score of the method (`None`: its paper score).
    pub score: Option<String>,
    /// Threshold rule.
    pub threshold: ThresholdChoice,
    /// How image files of other sizes are brought to the training size.
    pub resize: ResizePolicy,
    /// Images per forward pass.
    pub batch_size: usize,
    /// Names of the training images (task order); `None`: `train[i]` with the index in the
    /// training split.
    pub training_names: Option<Vec<String>>,
}

impl Default for DetectorFit {
    fn default() -> Self {
        Self {
            score: None,
            threshold: ThresholdChoice::Conformal { alpha: 0.01 },
            resize: ResizePolicy::Stretch,
            batch_size: 256,
            training_names: None,
        }
    }
}

/// One image's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// Anomaly score (higher = more anomalous).
    pub score: f64,
    /// Conformal p-value against the calibration images.
    pub p_value: f64,
    /// `score > threshold`.
    pub is_anomaly: bool,
    /// Index of the most similar normal training image (cosine of encoder features).
    pub nearest_normal: usize,
    /// That cosine similarity.
    pub similarity: f32,
}

/// Training images at most [`THUMBNAIL_SIDE`] pixels a side, `n × h × w × c`.
#[derive(Clone, Debug)]
pub(super) struct Thumbnails {
    pub pixels: Vec<u8>,
    pub n: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl Thumbnails {
    fn of(d: &Dataset) -> Self {
        let scale = (THUMBNAIL_SIDE as f64 / d.height.max(d.width) as f64).min(1.0);
        let height = ((d.height as f64 * scale).round() as usize).max(1);
        let width = ((d.width as f64 * scale).round() as usize).max(1);
        let pixels = (0..d.n)
            .into_par_iter()
            .flat_map_iter(|i| {
                folder::resize_bilinear(
                    d.image(i),
                    (d.height, d.width),
                    d.channels,
                    (height, width),
                )
            })
            .collect();
        Self {
            pixels,
            n: d.n,
            height,
            width,
            channels: d.channels,
        }
    }
}

/// A fitted detector (module docs): model, fitted score, threshold, explanations.
#[derive(Debug)]
pub struct Detector {
    pub(super) model: TrainedModel,
    /// Model tensors (`encoder.*`, `heads.*`) and their metadata, written back by `save`.
    pub(super) weights: BTreeMap<String, Tensor>,
    pub(super) weights_meta: CheckpointMeta,
    pub(super) fitted: FittedScore,
    /// L2-normalised encoder features of the training images.
    pub(super) neighbours: EmbeddingMatrix,
    pub(super) thumbnails: Thumbnails,
    pub(super) record: DetectorRecord,
    pub(super) batch_size: usize,
}

/// conad's version and those of the crates behind its numbers (from `Cargo.lock` at build
/// time, `build.rs`).
fn versions() -> BTreeMap<String, String> {
    let mut v = BTreeMap::from([("conad".to_string(), CONAD_VERSION.to_string())]);
    for entry in env!("CONAD_LOCKED_VERSIONS").split(';') {
        if let Some((name, version)) = entry.split_once(' ') {
            v.insert(name.to_string(), version.to_string());
        }
    }
    v
}

/// Encoder features (raw pixels for the raw-pixel method) of the test view.
fn test_features(model: &ScoringModel<'_>, images: &ImageBatchU8<'_>) -> Result<EmbeddingMatrix> {
    Ok(embed_view(
        model,
        images,
        &ViewSpec::test(Shift::Identity),
        &[&Output::Encoder],
    )?
    .remove(0))
}

/// Rows scaled to unit L2 norm (zero rows stay zero).
pub(super) fn normalise_rows(m: EmbeddingMatrix) -> Result<EmbeddingMatrix> {
    let (rows, cols) = (m.rows(), m.cols());
    let mut data = m.as_slice().to_vec();
    for r in data.chunks_exact_mut(cols) {
        let norm = r.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            r.iter_mut().for_each(|v| *v /= norm);
        }
    }
    Ok(EmbeddingMatrix::new(data, rows, cols)?)
}

impl Detector {
    /// Fits a detector: the method's score on `task.train` (the images `model` was trained
    /// on), calibration scores on `task.calibration`, the threshold by `options.threshold`,
    /// and the nearest-neighbour bank for explanations.
    ///
    /// # Errors
    /// [`Error::NoCalibrationImages`] when the task holds none out;
    /// [`Error::TrainingDataChanged`] when `task.train` is not what the model was trained on;
    /// [`Error::UnknownScore`]; fit, scoring and calibration errors
    /// (`conad_scorers::Error::CalibrationTooSmall` for an α the calibration set cannot reach).
    pub fn fit(model: TrainedModel, task: &OneClassTask, options: DetectorFit) -> Result<Self> {
        let calibration = task
            .calibration
            .as_ref()
            .ok_or_else(|| Error::NoCalibrationImages {
                what: format!("the task `{}`", task.description),
            })?;
        model.check_training_data(&task.train)?;
        let batch = options.batch_size.max(1);
        let def = match &options.score {
            Some(name) => model.config().method.score(name)?,
            None => model.config().method.paper_score(),
        };
        let fitted = model.fit_score(&def, &task.train, batch)?;
        let calibrator = ConformalCalibrator::fit(&model.score(&fitted, calibration, batch)?)?;
        let threshold = match options.threshold {
            ThresholdChoice::Conformal { alpha } => calibrator.threshold(alpha)?,
            ThresholdChoice::Manual { threshold } => ThresholdRule::manual(threshold)?,
            ThresholdChoice::F1Optimal { images, is_anomaly } => {
                // Chosen on images prepared like the ones it will decide on.
                let (t, l) = (&task.train, &images);
                if (l.height, l.width, l.channels) != (t.height, t.width, t.channels) {
                    return Err(Error::DetectorInputShape {
                        expected: (t.height, t.width, t.channels),
                        found: (l.height, l.width, l.channels),
                    });
                }
                f1_optimal_threshold(&model.score(&fitted, &images, batch)?, &is_anomaly)?
            }
        };
        let neighbours = normalise_rows(test_features(
            &model.scoring_model(batch),
            &dataset_view(&task.train)?,
        )?)?;
        let training_names = match options.training_names {
            Some(names) if names.len() == task.train.n => names,
            Some(names) => {
                return Err(Error::CountMismatch {
                    what: "training image names",
                    expected: task.train.n,
                    found: names.len(),
                });
            }
            None => task
                .train_source_indices
                .iter()
                .map(|i| format!("train[{i}]"))
                .collect(),
        };
        let preprocessing = ImagePreprocessing::of(&task.train, options.resize);
        let (weights, weights_meta) = match model.weights_file() {
            Some(path) => {
                let ckpt = Checkpoint::load(path, &candle_core::Device::Cpu)?;
                (ckpt.model_tensors(), ckpt.meta)
            }
            None => (
                BTreeMap::new(),
                CheckpointMeta::new(
                    model.config().model.resnet(task.train.channels),
                    model.config().seed,
                    0,
                ),
            ),
        };
        let record = DetectorRecord {
            format: DETECTOR_FORMAT.to_string(),
            versions: versions(),
            method: model.config().method.name().to_string(),
            score: fitted.score.clone(),
            config: model.config().to_toml_string()?,
            task: model.task().cloned(),
            seed: model.config().seed,
            epochs: model.epochs(),
            preprocessing,
            threshold,
            calibration: calibrator,
            training_names,
            trained_on: Some(crate::run_dir::data_fingerprint(&task.train)),
        };
        Ok(Self {
            thumbnails: Thumbnails::of(&task.train),
            model,
            weights,
            weights_meta,
            fitted,
            neighbours,
            record,
            batch_size: batch,
        })
    }

    /// What the file records: method, score, config, task, threshold, calibration, versions.
    pub fn record(&self) -> &DetectorRecord {
        &self.record
    }

    /// How image files become inputs of [`Detector::score_prepared`].
    pub fn preprocessing(&self) -> &ImagePreprocessing {
        &self.record.preprocessing
    }

    /// The decision rule.
    pub fn threshold(&self) -> &ThresholdRule {
        &self.record.threshold
    }

    /// Replaces the decision rule (e.g. a manual threshold after inspecting a report).
    pub fn set_threshold(&mut self, rule: ThresholdRule) {
        self.record.threshold = rule;
    }

    /// The calibration scores (p-values).
    pub fn calibrator(&self) -> &ConformalCalibrator {
        &self.record.calibration
    }

    /// Images per forward pass while scoring.
    pub fn set_batch_size(&mut self, batch: usize) {
        self.batch_size = batch.max(1);
    }

    /// Number of normal training images in the nearest-neighbour bank.
    pub fn training_images(&self) -> usize {
        self.neighbours.rows()
    }

    /// Name of training image `i` (file name for image folders).
    pub fn training_name(&self, i: usize) -> Option<&str> {
        self.record.training_names.get(i).map(String::as_str)
    }

    /// Thumbnail of training image `i`: `(pixels HWC, height, width, channels)`.
    pub fn training_thumbnail(&self, i: usize) -> Option<(&[u8], usize, usize, usize)> {
        let t = &self.thumbnails;
        let len = t.height * t.width * t.channels;
        (i < t.n).then(|| {
            (
                &t.pixels[i * len..(i + 1) * len],
                t.height,
                t.width,
                t.channels,
            )
        })
    }

    /// Scores `n` images already prepared to [`Detector::preprocessing`] (`n·h·w·c` bytes,
    /// HWC each).
    ///
    /// # Errors
    /// [`Error::Augment`] for a buffer of the wrong length; embedding and scoring errors.
    pub fn score_prepared(&self, pixels: &[u8], n: usize) -> Result<Vec<Verdict>> {
        let p = &self.record.preprocessing;
        self.score_batch(&ImageBatchU8::new(
            pixels, n, p.height, p.width, p.channels,
        )?)
    }

    /// Scores one image of any size and 1 or 3 channels (HWC bytes): resized and converted
    /// like the training images first.
    ///
    /// # Errors
    /// As [`Detector::score_prepared`], plus a buffer that does not match `shape`.
    pub fn score_image(&self, pixels: &[u8], shape: (usize, usize, usize)) -> Result<Verdict> {
        let prepared = self.record.preprocessing.prepare(pixels.to_vec(), shape)?;
        Ok(self.score_prepared(&prepared, 1)?.remove(0))
    }

    /// Scores a batch of images of the detector's shape.
    ///
    /// # Errors
    /// [`Error::DetectorInputShape`] for another shape; embedding and scoring errors.
    pub fn score_batch(&self, images: &ImageBatchU8<'_>) -> Result<Vec<Verdict>> {
        let p = &self.record.preprocessing;
        let [c, h, w] = images.image_shape();
        if (h, w, c) != (p.height, p.width, p.channels) {
            return Err(Error::DetectorInputShape {
                expected: (p.height, p.width, p.channels),
                found: (h, w, c),
            });
        }
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let model = self.model.scoring_model(self.batch_size);
        let features = test_features(&model, images)?;
        // One forward pass when the score reads the same features (kNN and the other
        // encoder-feature scores); the score's own views otherwise.
        let scores = if self.fitted.reads_encoder_test_features() {
            self.fitted.score_encoder_features(&features)?
        } else {
            self.fitted.score(&model, images)?
        };
        let features = normalise_rows(features)?;
        let nearest: Vec<(usize, f32)> = (0..features.rows())
            .into_par_iter()
            .map(|q| self.nearest(features.row(q)))
            .collect();
        Ok(scores
            .into_iter()
            .zip(nearest)
            .map(|(score, (nearest_normal, similarity))| Verdict {
                score,
                p_value: self.record.calibration.p_value(score),
                is_anomaly: self.record.threshold.is_anomaly(score),
                nearest_normal,
                similarity,
            })
            .collect())
    }

    /// Most similar bank row to the unit vector `q` (first on ties).
    fn nearest(&self, q: &[f32]) -> (usize, f32) {
        let mut best = (0, f32::NEG_INFINITY);
        for i in 0..self.neighbours.rows() {
            let s: f32 = self
                .neighbours
                .row(i)
                .iter()
                .zip(q)
                .map(|(a, b)| a * b)
                .sum();
            if s > best.1 {
                best = (i, s);
            }
        }
        best
    }
}
