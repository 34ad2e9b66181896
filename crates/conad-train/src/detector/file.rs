//! The detector file: one safetensors file written through [`conad_models::Checkpoint`] (atomic
//! write, content hash over every tensor, non-finite weights refused), holding
//!
//! ```text
//! encoder.*, heads.*           the model's weights (none for raw pixels)
//! detector.fitted_score        u8: the fitted score's state (JSON: banks, scorer parameters)
//! detector.neighbours          f32 n × d: L2-normalised encoder features of the training images
//! detector.thumbnails          u8 n × h × w × c: the training images, ≤ 64 pixels a side
//! __metadata__ "conad"         CheckpointMeta whose `training` is {"detector": DetectorRecord}
//! ```
//!
//! Loading checks, in order: a readable safetensors file, conad metadata, the content hash (a
//! flipped byte anywhere is an error), a detector record, its format, the conad version, the
//! encoder architecture, then every tensor's shape against the record.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use conad_models::Checkpoint;
use conad_scorers::EmbeddingMatrix;

use super::detector::{Detector, Thumbnails};
use super::record::{DETECTOR_FORMAT, DetectorRecord};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::run_dir::TrainedModel;
use crate::score::FittedScore;

const FITTED: &str = "detector.fitted_score";
const NEIGHBOURS: &str = "detector.neighbours";
const THUMBNAILS: &str = "detector.thumbnails";
const RECORD_KEY: &str = "detector";

fn u8_tensor(bytes: Vec<u8>) -> Result<Tensor> {
    let n = bytes.len();
    Ok(Tensor::from_vec(bytes, n, &Device::Cpu)?)
}

impl Detector {
    /// Writes the detector to `path` atomically (a temporary file, synced, renamed): `path`
    /// holds the previous file or the complete new one at every instant.
    ///
    /// # Errors
    /// Serialisation and write errors (naming `path`).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json_err = |what: &str, e: serde_json::Error| Error::Json {
            what: format!("{what} of {}", path.display()),
            message: e.to_string(),
        };
        let mut meta = self.weights_meta.clone();
        meta.training = serde_json::json!({
            RECORD_KEY: serde_json::to_value(&self.record).map_err(|e| json_err("detector record", e))?
        });
        meta.epoch = self.record.epochs;
        let mut ckpt = Checkpoint::new(meta);
        ckpt.tensors = self.weights.clone();
        let fitted = serde_json::to_vec(&self.fitted).map_err(|e| json_err("fitted score", e))?;
        ckpt.tensors.insert(FITTED.into(), u8_tensor(fitted)?);
        let (n, d) = (self.neighbours.rows(), self.neighbours.cols());
        ckpt.tensors.insert(
            NEIGHBOURS.into(),
            Tensor::from_slice(self.neighbours.as_slice(), (n, d), &Device::Cpu)?,
        );
        let t = &self.thumbnails;
        ckpt.tensors.insert(
            THUMBNAILS.into(),
            Tensor::from_slice(
                &t.pixels,
                (t.n, t.height, t.width, t.channels),
                &Device::Cpu,
            )?,
        );
        Ok(ckpt.save(path)?)
    }

    /// Loads a detector file; needs no training data.
    ///
    /// # Errors
    /// [`Error::NotADetector`] for another kind of file (a run's checkpoint, a plain
    /// safetensors file) or missing parts; [`Error::DetectorFormat`] for another format
    /// version; `conad_models` errors for an unreadable or corrupted file (content hash),
    /// another conad version or a mismatching architecture.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let not = |reason: String| Error::NotADetector {
            path: path.to_path_buf(),
            reason,
        };
        let ckpt = Checkpoint::load(path, &Device::Cpu).map_err(|e| match e {
            conad_models::Error::NotACheckpoint { reason, .. } => {
                not(format!("not a conad file ({reason})"))
            }
            other => Error::Models(other),
        })?;
        let record_value = ckpt.meta.training.get(RECORD_KEY).ok_or_else(|| {
            not(
                "a conad checkpoint of a training run, not a detector; build one with \
                 `conad fit --run RUN_DIR --out FILE`"
                    .into(),
            )
        })?;
        if let Some(found) = record_value.get("format").and_then(|f| f.as_str())
            && found != DETECTOR_FORMAT
        {
            return Err(Error::DetectorFormat {
                path: path.to_path_buf(),
                found: found.to_string(),
                expected: DETECTOR_FORMAT.to_string(),
            });
        }
        ckpt.check_version()?;
        let record: DetectorRecord = serde_json::from_value(record_value.clone())
            .map_err(|e| not(format!("its detector record does not parse: {e}")))?;
        record.preprocessing.validate()?;
        let config = TrainConfig::from_toml_str(&record.config, "the detector's config")?;
        let tensor = |name: &str| {
            ckpt.tensors
                .get(name)
                .ok_or_else(|| not(format!("the tensor `{name}` is missing")))
        };
        let fitted_bytes = tensor(FITTED)?.to_dtype(DType::U8)?.to_vec1::<u8>()?;
        let fitted: FittedScore = serde_json::from_slice(&fitted_bytes)
            .map_err(|e| not(format!("its fitted score does not parse: {e}")))?;
        let neighbours = tensor(NEIGHBOURS)?;
        let (n, d) = neighbours.dims2()?;
        if n != record.training_names.len() || n == 0 {
            return Err(not(format!(
                "{n} neighbour features for {} training images",
                record.training_names.len()
            )));
        }
        let neighbours = EmbeddingMatrix::new(neighbours.flatten_all()?.to_vec1::<f32>()?, n, d)?;
        let thumbs = tensor(THUMBNAILS)?;
        let (tn, th, tw, tc) = thumbs.dims4()?;
        if tn != n || tc != record.preprocessing.channels {
            return Err(not(format!(
                "thumbnails {tn}×{th}×{tw}×{tc} for {n} training images of {} channels",
                record.preprocessing.channels
            )));
        }
        let thumbnails = Thumbnails {
            pixels: thumbs.flatten_all()?.to_vec1::<u8>()?,
            n: tn,
            height: th,
            width: tw,
            channels: tc,
        };
        let mut weights = ckpt.model_tensors();
        for name in [FITTED, NEIGHBOURS, THUMBNAILS] {
            weights.remove(name);
        }
        let mut weights_ckpt = Checkpoint::new(ckpt.meta.clone());
        weights_ckpt.tensors = weights.clone();
        let model = TrainedModel::from_weights(
            config.clone(),
            config.method.trains().then_some(&weights_ckpt),
            &Device::Cpu,
            Some(path.to_path_buf()),
            record.task.clone(),
            record.trained_on.clone(),
        )?;
        Ok(Self {
            model,
            weights,
            weights_meta: ckpt.meta,
            fitted,
            neighbours,
            thumbnails,
            record,
            batch_size: 256,
        })
    }
}
