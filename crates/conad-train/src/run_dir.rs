//! The run directory: file names, atomic writes, the training state stored in checkpoints, and
//! [`load_run`] / [`TrainedModel`] for embedding with a finished (or interrupted) run.
//!
//! ```text
//! RUN_DIR/config.toml              resolved TrainConfig (written before training starts)
//! RUN_DIR/checkpoint.safetensors   latest resumable checkpoint: weights, BN statistics,
//!                                  optimizer state, epoch, history (every `checkpoint_every`)
//! RUN_DIR/model.safetensors        final weights (no optimizer state)
//! RUN_DIR/history.json             per-epoch loss/lr/images-per-second/collapse + evaluations
//! RUN_DIR/learning_curve.json      online-evaluation AUROCs and their AULC
//! RUN_DIR/report.json              TrainReport of the last session
//! ```
//! There is no separate RNG state: every random draw is keyed by (seed, epoch, sample, view),
//! so the epoch number is the whole position of the random streams.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use conad_augment::{Augmenter, ImageBatchU8};
use conad_data::Dataset;
use conad_models::{Checkpoint, ResNet};
use conad_rng::SeedTree;
use conad_scorers::EmbeddingMatrix;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::embed::{embed, embed_raw_pixels};
use crate::error::{Error, Result};
use crate::method::{BuildContext, Method};
use crate::optim::OptimizerStateMeta;
use crate::report::History;
use crate::score::{Detector, ScoringModel};

/// `RUN_DIR/config.toml`.
pub const CONFIG_FILE: &str = "config.toml";
/// `RUN_DIR/checkpoint.safetensors`.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// `RUN_DIR/model.safetensors`.
pub const MODEL_FILE: &str = "model.safetensors";
/// `RUN_DIR/history.json`.
pub const HISTORY_FILE: &str = "history.json";
/// `RUN_DIR/learning_curve.json`.
pub const CURVE_FILE: &str = "learning_curve.json";
/// `RUN_DIR/report.json`.
pub const REPORT_FILE: &str = "report.json";

/// Child of the root seed that keys the test transform's (normally unused) random stream.
pub(crate) const TEST_TRANSFORM_SEED: &str = "test_transform";

/// Training state stored in a checkpoint's metadata (`CheckpointMeta::training`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct TrainingState {
    pub method: String,
    /// [`data_fingerprint`] of the training split.
    #[serde(default)]
    pub data: String,
    pub global_step: u64,
    pub history: History,
    pub optimizer: OptimizerStateMeta,
}

/// Size, shape and FNV-1a hash of a training split: a resumed run must see the same images.
pub(crate) fn data_fingerprint(d: &Dataset) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &d.images {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!(
        "{} images of {}x{}x{}, fnv1a {h:016x}",
        d.n, d.height, d.width, d.channels
    )
}

/// Writes `bytes` to `path` atomically (temporary file, then rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(Error::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io(path))
}

/// Serialises `value` as pretty JSON to `path` atomically.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Json {
        what: path.display().to_string(),
        message: e.to_string(),
    })?;
    write_atomic(path, text.as_bytes())
}

/// A trained (or raw-pixel) model loaded from a run directory — encoder, the method with its
/// heads — ready to embed and score images.
#[derive(Debug)]
pub struct TrainedModel {
    config: TrainConfig,
    encoder: Option<ResNet>,
    method: Box<dyn Method>,
    epochs: u64,
    device: Device,
    source: Option<PathBuf>,
}

impl TrainedModel {
    /// The run's resolved config.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The encoder; `None` for the raw-pixel method.
    pub fn encoder(&self) -> Option<&ResNet> {
        self.encoder.as_ref()
    }

    /// The method with its heads (as trained).
    pub fn method(&self) -> &dyn Method {
        self.method.as_ref()
    }

    /// The model as the scores see it, `batch` images per forward pass.
    pub fn scoring_model(&self, batch: usize) -> ScoringModel<'_> {
        ScoringModel {
            encoder: self.encoder.as_ref(),
            method: self.method.as_ref(),
            config: &self.config,
            device: &self.device,
            batch_size: batch,
        }
    }

    /// Fits the method's score `score` (`None`: its paper score) on the normal training images.
    ///
    /// # Errors
    /// [`Error::UnknownScore`], embedding and fit errors.
    pub fn fit_detector(
        &self,
        score: Option<&str>,
        train: &Dataset,
        batch: usize,
    ) -> Result<Detector> {
        let def = match score {
            Some(name) => self.config.method.score(name)?,
            None => self.config.method.paper_score(),
        };
        Detector::fit(&self.scoring_model(batch), &def, &dataset_view(train)?)
    }

    /// Anomaly scores of `images` under a fitted detector.
    ///
    /// # Errors
    /// Embedding and scoring errors.
    pub fn score(&self, detector: &Detector, images: &Dataset, batch: usize) -> Result<Vec<f64>> {
        detector.score(&self.scoring_model(batch), &dataset_view(images)?)
    }

    /// Epochs the loaded weights were trained for.
    pub fn epochs(&self) -> u64 {
        self.epochs
    }

    /// The weight file that was loaded (`model.safetensors`, or the checkpoint of an unfinished
    /// run); `None` for raw pixels.
    pub fn weights_file(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The test transform for images of `height × width`.
    ///
    /// # Errors
    /// Augmentation config errors.
    pub fn test_transform(&self, height: usize, width: usize) -> Result<Augmenter> {
        let cfg = self
            .config
            .augment
            .test
            .to_augment_config(height.min(width))?;
        Ok(Augmenter::with_seed_node(
            &cfg,
            SeedTree::new(self.config.seed).child(TEST_TRANSFORM_SEED),
        )?)
    }

    /// Embeddings of `images` (encoder features in eval mode, or raw pixels), after the run's
    /// test transform, `batch` images per forward pass.
    ///
    /// # Shapes
    /// N images → `N × d`.
    ///
    /// # Errors
    /// [`Error::DataMismatch`] for an empty set; transform and model errors (e.g. a channel
    /// count the encoder was not trained on).
    pub fn embed_images(&self, images: &ImageBatchU8<'_>, batch: usize) -> Result<EmbeddingMatrix> {
        let [_, h, w] = images.image_shape();
        let transform = self.test_transform(h, w)?;
        match &self.encoder {
            Some(encoder) => embed(encoder, images, &transform, batch, &self.device),
            None => embed_raw_pixels(images, &transform, batch),
        }
    }

    /// [`TrainedModel::embed_images`] on a data set split.
    ///
    /// # Errors
    /// As [`TrainedModel::embed_images`].
    pub fn embed(&self, images: &Dataset, batch: usize) -> Result<EmbeddingMatrix> {
        self.embed_images(&dataset_view(images)?, batch)
    }
}

/// A data set split as an image batch view.
fn dataset_view(d: &Dataset) -> Result<ImageBatchU8<'_>> {
    Ok(ImageBatchU8::new(
        &d.images, d.n, d.height, d.width, d.channels,
    )?)
}

/// Loads the model of a run directory on the CPU: `model.safetensors` when the run finished,
/// otherwise the latest checkpoint (logged as a warning). Raw-pixel runs need only the config.
///
/// # Errors
/// [`Error::NotARun`] without `config.toml` or weights; config and checkpoint errors
/// (version or architecture mismatch).
pub fn load_run(run_dir: impl AsRef<Path>) -> Result<TrainedModel> {
    load_run_on(run_dir, &Device::Cpu)
}

/// [`load_run`] onto `device`.
///
/// # Errors
/// As [`load_run`].
pub fn load_run_on(run_dir: impl AsRef<Path>, device: &Device) -> Result<TrainedModel> {
    let dir = run_dir.as_ref();
    let config_path = dir.join(CONFIG_FILE);
    if !config_path.is_file() {
        return Err(Error::NotARun {
            path: dir.to_path_buf(),
            reason: format!("no {CONFIG_FILE}"),
        });
    }
    let config = TrainConfig::from_toml_file(&config_path)?;
    let method_seed = crate::method::method_seed(&SeedTree::new(config.seed));
    if !config.method.trains() {
        let varmap = VarMap::new();
        let resnet = config.model.resnet(config.model.in_channels.unwrap_or(3));
        let method = config.method.build(BuildContext {
            encoder: &resnet,
            heads: VarBuilder::from_varmap(&varmap, DType::F32, device).pp("heads"),
            augment: &config.augment,
            seed: method_seed,
        })?;
        return Ok(TrainedModel {
            config,
            encoder: None,
            method,
            epochs: 0,
            device: device.clone(),
            source: None,
        });
    }
    let model = dir.join(MODEL_FILE);
    let checkpoint = dir.join(CHECKPOINT_FILE);
    let source = if model.is_file() {
        model
    } else if checkpoint.is_file() {
        tracing::warn!(
            run = %dir.display(),
            "the run has no {MODEL_FILE} (unfinished); loading its last checkpoint"
        );
        checkpoint
    } else {
        return Err(Error::NotARun {
            path: dir.to_path_buf(),
            reason: format!("neither {MODEL_FILE} nor {CHECKPOINT_FILE}"),
        });
    };
    let ckpt = Checkpoint::load(&source, device)?;
    let in_channels = config
        .model
        .in_channels
        .unwrap_or(ckpt.meta.encoder.in_channels);
    let resnet = config.model.resnet(in_channels);
    ckpt.check_compatible(&resnet)?;
    let vb = ckpt.var_builder(DType::F32, device);
    let encoder = ResNet::new(&resnet, vb.pp("encoder"))?;
    let method = config.method.build(BuildContext {
        encoder: &resnet,
        heads: vb.pp("heads"),
        augment: &config.augment,
        seed: method_seed,
    })?;
    Ok(TrainedModel {
        config,
        encoder: Some(encoder),
        method,
        epochs: ckpt.meta.epoch,
        device: device.clone(),
        source: Some(source),
    })
}
