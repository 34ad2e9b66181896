//! The run directory: file names, the training state stored in checkpoints, how a run directory
//! is prepared without ever losing or mixing runs, and [`load_run`] / [`TrainedModel`] for
//! embedding with a finished (or interrupted) run.
//!
//! ```text
//! RUN_DIR/config.toml              resolved TrainConfig (written when training starts, last)
//! RUN_DIR/task.toml                data spec and one-class protocol (TaskRecord), if given
//! RUN_DIR/checkpoint.safetensors   latest resumable checkpoint: weights, BN statistics,
//!                                  optimizer state, epoch, history, the RunRecord
//! RUN_DIR/model.safetensors        final weights (no optimizer state), the RunRecord
//! RUN_DIR/history.json             per-epoch loss/lr/images-per-second/collapse + evaluations
//! RUN_DIR/learning_curve.json      online-evaluation AUROCs and their AULC
//! RUN_DIR/report.json              TrainReport of the last session (with the RunRecord)
//! RUN_DIR/eval/                    `conad eval`'s outputs
//! ```
//! There is no separate RNG state: every random draw is keyed by (seed, epoch, sample, view),
//! so the epoch number is the whole position of the random streams.
//!
//! Consistency: every file is written atomically (`conad-fs`). A new run is validated in memory
//! (config against the data, the method built, a checkpoint to resume read and checked) before
//! anything in the directory changes; starting afresh then removes `config.toml` first and
//! writes it last, so a directory without it is never a run. Checkpoints and reports carry a
//! [`RunRecord`] (the config and the task they were trained with); [`load_run`] compares it with
//! `config.toml` and `task.toml` and refuses a directory whose parts disagree.

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
use crate::report::TrainReport;
use crate::score::{FittedScore, ScoreDef, ScoringModel};
use crate::task_record::{TASK_FILE, TaskRecord};

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
/// `RUN_DIR/eval/`: `conad eval`'s outputs.
pub const EVAL_DIR: &str = "eval";

/// The files a run writes besides `config.toml` (all removed when a run starts afresh).
const RUN_FILES: [&str; 6] = [
    TASK_FILE,
    CHECKPOINT_FILE,
    MODEL_FILE,
    HISTORY_FILE,
    CURVE_FILE,
    REPORT_FILE,
];

/// What a run was trained with, stored in its checkpoints and report: the resolved config (as
/// TOML) and the task. [`load_run`] checks `config.toml` and `task.toml` against it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The resolved [`TrainConfig`] as TOML.
    pub config: String,
    /// The data spec and protocol, when the caller gave one ([`crate::TrainOptions::task`]).
    pub task: Option<TaskRecord>,
}

impl RunRecord {
    /// The record of `config` and `task`.
    ///
    /// # Errors
    /// Config serialisation errors.
    pub fn new(config: &TrainConfig, task: Option<&TaskRecord>) -> Result<Self> {
        Ok(Self {
            config: config.to_toml_string()?,
            task: task.cloned(),
        })
    }

    /// Differences between the recorded config and `config`, one line per key (recorded vs
    /// given; `threads` not compared).
    pub(crate) fn config_differences(&self, config: &TrainConfig) -> Result<Vec<String>> {
        let trained = TrainConfig::from_toml_str(&self.config, "the run's trained record")?;
        Ok(trained.differences(config))
    }

    /// Differences between the recorded task and `task`, one line each (recorded vs given;
    /// `other` names where `task` comes from).
    pub(crate) fn task_differences(&self, task: Option<&TaskRecord>, other: &str) -> Vec<String> {
        match (&self.task, task) {
            (Some(trained), Some(given)) => trained
                .differences(given)
                .into_iter()
                .map(|d| format!("{d} (trained vs {other})"))
                .collect(),
            (Some(trained), None) => vec![format!(
                "{other} has no task; the run was trained on `{}`",
                trained.data
            )],
            (None, Some(given)) => vec![format!(
                "{other} names `{}` but the run was trained without a task record",
                given.data
            )],
            (None, None) => Vec::new(),
        }
    }

    /// Errors unless `config.toml` and `task.toml` of `dir` say what this record says.
    fn check_directory(&self, dir: &Path, on_disk: &TrainConfig) -> Result<()> {
        let differences = self.config_differences(on_disk)?;
        if !differences.is_empty() {
            return Err(Error::InconsistentRun {
                path: dir.to_path_buf(),
                what: CONFIG_FILE.into(),
                differences: differences
                    .into_iter()
                    .map(|d| format!("{d} (trained vs {CONFIG_FILE})"))
                    .collect(),
            });
        }
        let differences = self.task_differences(TaskRecord::read(dir)?.as_ref(), TASK_FILE);
        if differences.is_empty() {
            Ok(())
        } else {
            Err(Error::InconsistentRun {
                path: dir.to_path_buf(),
                what: TASK_FILE.into(),
                differences,
            })
        }
    }
}

/// What [`inspect_run_dir`] found: where to resume from, or that the directory must be cleared.
#[derive(Debug)]
pub(crate) struct RunDirPlan {
    /// The file to resume from (final model or latest checkpoint).
    pub resume_from: Option<PathBuf>,
    /// Remove the previous run's files before writing.
    pub start_afresh: bool,
}

/// Files of a run present in `dir` (not counting `config.toml`).
fn present_run_files(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = RUN_FILES
        .iter()
        .filter(|f| dir.join(f).exists())
        .map(|f| f.to_string())
        .collect();
    if dir.join(EVAL_DIR).is_dir() {
        found.push(format!("{EVAL_DIR}/"));
    }
    found
}

/// A temporary file left by an interrupted atomic write (`.NAME.tmp-PID-N[.EXT]`).
fn is_temp_leftover(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Entries of `dir` that no run writes (the user's own files): a run directory must not hold
/// any, so that starting afresh never deletes or mixes with them.
fn foreign_entries(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let name = e.map_err(Error::io(dir))?.file_name();
        let name = name.to_string_lossy();
        let ours = name == CONFIG_FILE
            || name == EVAL_DIR
            || RUN_FILES.contains(&name.as_ref())
            || is_temp_leftover(&name);
        if !ours {
            out.push(name.into_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Reads the run directory and decides, without changing anything, whether to resume, start
/// afresh, or refuse.
pub(crate) fn inspect_run_dir(
    dir: &Path,
    config: &TrainConfig,
    policy: crate::ResumePolicy,
) -> Result<RunDirPlan> {
    let config_path = dir.join(CONFIG_FILE);
    let afresh = RunDirPlan {
        resume_from: None,
        start_afresh: true,
    };
    if !dir.exists() {
        return Ok(afresh);
    }
    if !dir.is_dir() {
        return Err(Error::NotARun {
            path: dir.to_path_buf(),
            reason: "it is a file, not a directory".into(),
        });
    }
    let foreign = foreign_entries(dir)?;
    if !foreign.is_empty() {
        return Err(Error::NotARun {
            path: dir.to_path_buf(),
            reason: format!(
                "it holds files no run writes ({}); train into a new or empty directory",
                foreign.join(", ")
            ),
        });
    }
    if policy == crate::ResumePolicy::Overwrite {
        return Ok(afresh);
    }
    let weights = [MODEL_FILE, CHECKPOINT_FILE]
        .into_iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file());
    if !config_path.is_file() {
        let files = present_run_files(dir);
        // Nothing, or only the task record of a start killed before its config was written
        // (`commit_run_dir` writes `task.toml` then `config.toml`): no training to lose.
        if files.is_empty() || files == [TASK_FILE] {
            return Ok(afresh);
        }
        return Err(Error::IncompleteRun {
            path: dir.to_path_buf(),
            files,
        });
    }
    let stored = TrainConfig::from_toml_file(&config_path)?;
    let differences = stored.differences(config);
    // What a rerun with another config would lose: weights, or a raw-pixel run's report.
    let results = weights.is_some() || (!stored.method.trains() && dir.join(REPORT_FILE).is_file());
    if results && !differences.is_empty() {
        return Err(Error::RunConfigMismatch {
            path: dir.to_path_buf(),
            differences,
        });
    }
    match weights {
        Some(path) if config.method.trains() => Ok(RunDirPlan {
            resume_from: Some(path),
            start_afresh: false,
        }),
        // Nothing trained yet (a run stopped before its first checkpoint), or a raw-pixel run of
        // the same config (recomputed): nothing to lose.
        _ => Ok(afresh),
    }
}

/// Makes the directory this run's: after a fresh start removes `config.toml` first (so the
/// directory stops being a run), then the previous run's files and `eval/`; writes `task.toml`
/// (or removes a stale one) and `config.toml` last.
pub(crate) fn commit_run_dir(
    dir: &Path,
    plan: &RunDirPlan,
    config: &TrainConfig,
    task: Option<&TaskRecord>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let config_path = dir.join(CONFIG_FILE);
    if plan.start_afresh {
        conad_fs::remove_file_if_exists(&config_path)?;
        for f in RUN_FILES {
            conad_fs::remove_file_if_exists(dir.join(f))?;
        }
        let eval = dir.join(EVAL_DIR);
        if eval.is_dir() {
            conad_fs::fault::before_mutation();
            std::fs::remove_dir_all(&eval).map_err(Error::io(&eval))?;
        }
        // Temporary files of killed writes (a checkpoint's can be as large as the checkpoint).
        for e in std::fs::read_dir(dir).map_err(Error::io(dir))?.flatten() {
            if is_temp_leftover(&e.file_name().to_string_lossy()) {
                conad_fs::remove_file_if_exists(e.path())?;
            }
        }
    }
    match task {
        Some(t) => write_atomic(&dir.join(TASK_FILE), t.to_toml_string()?.as_bytes())?,
        None => {
            conad_fs::remove_file_if_exists(dir.join(TASK_FILE))?;
        }
    }
    write_atomic(&config_path, config.to_toml_string()?.as_bytes())
}

/// Child of the root seed that keys the test transform's (normally unused) random stream.
pub(crate) const TEST_TRANSFORM_SEED: &str = "test_transform";

/// Training state stored in a checkpoint's metadata (`CheckpointMeta::training`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct TrainingState {
    pub method: String,
    /// [`data_fingerprint`] of the training split.
    #[serde(default)]
    pub data: String,
    pub global_step: u64,
    pub history: History,
    pub optimizer: OptimizerStateMeta,
    /// What the run was trained with.
    pub run: RunRecord,
}

impl TrainingState {
    /// The training state stored in `ckpt` (read from `path`).
    pub(crate) fn of(ckpt: &Checkpoint, path: &Path) -> Result<Self> {
        serde_json::from_value(ckpt.meta.training.clone()).map_err(|e| Error::Json {
            what: format!("training state in {}", path.display()),
            message: e.to_string(),
        })
    }
}

/// Size, shape and FNV-1a hash of a training split: a resumed run must see the same images.
pub(crate) fn data_fingerprint(d: &Dataset) -> String {
    let h = conad_rng::fnv1a64(&d.images);
    format!(
        "{} images of {}x{}x{}, fnv1a {h:016x}",
        d.n, d.height, d.width, d.channels
    )
}

/// Writes `bytes` to `path` atomically (`conad-fs`).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(conad_fs::write_atomic(path, bytes)?)
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
    task: Option<TaskRecord>,
    /// [`data_fingerprint`] of the training split the weights were trained on.
    trained_on: Option<String>,
}

impl TrainedModel {
    /// The data and protocol the run was trained on (`task.toml`, checked against the
    /// weights' record); `None` for runs trained through the library without one.
    pub fn task(&self) -> Option<&TaskRecord> {
        self.task.as_ref()
    }

    /// Errors unless `train` holds exactly the images the weights were trained on (size, shape
    /// and hash): a data file changed since training, or a task rebuilt differently, would
    /// otherwise be scored silently. Raw-pixel runs train nothing and accept any images.
    ///
    /// # Errors
    /// [`Error::TrainingDataChanged`].
    pub fn check_training_data(&self, train: &Dataset) -> Result<()> {
        match &self.trained_on {
            Some(trained) if *trained != data_fingerprint(train) => {
                Err(Error::TrainingDataChanged {
                    trained: trained.clone(),
                    now: data_fingerprint(train),
                })
            }
            _ => Ok(()),
        }
    }

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
    pub fn fit_named_score(
        &self,
        score: Option<&str>,
        train: &Dataset,
        batch: usize,
    ) -> Result<FittedScore> {
        let def = match score {
            Some(name) => self.config.method.score(name)?,
            None => self.config.method.paper_score(),
        };
        self.fit_score(&def, train, batch)
    }

    /// Fits any score definition — one of the method's or a recipe of the caller's — on the
    /// normal training images.
    ///
    /// # Errors
    /// Embedding and fit errors (a head the method lacks included).
    pub fn fit_score(&self, def: &ScoreDef, train: &Dataset, batch: usize) -> Result<FittedScore> {
        FittedScore::fit(&self.scoring_model(batch), def, &dataset_view(train)?)
    }

    /// Anomaly scores of `images` under a fitted detector.
    ///
    /// # Errors
    /// Embedding and scoring errors.
    pub fn score(
        &self,
        detector: &FittedScore,
        images: &Dataset,
        batch: usize,
    ) -> Result<Vec<f64>> {
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
    /// [`Error::EmptyImages`] for an empty set; transform and model errors (e.g. a channel
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
pub(crate) fn dataset_view(d: &Dataset) -> Result<ImageBatchU8<'_>> {
    Ok(ImageBatchU8::new(
        &d.images, d.n, d.height, d.width, d.channels,
    )?)
}

/// Loads the model of a run directory on the CPU: `model.safetensors` when the run finished,
/// otherwise the latest checkpoint (logged as a warning); raw-pixel runs need their report.
/// The weights' (or report's) [`RunRecord`] must agree with `config.toml` and `task.toml`.
///
/// # Errors
/// [`Error::NotARun`] without `config.toml` or weights; [`Error::InconsistentRun`] when the
/// files disagree; config and checkpoint errors (damaged file, version or architecture
/// mismatch).
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
    if !config.method.trains() {
        let report_path = dir.join(REPORT_FILE);
        if !report_path.is_file() {
            return Err(Error::NotARun {
                path: dir.to_path_buf(),
                reason: format!("no {REPORT_FILE} (the raw-pixel run did not finish; rerun it)"),
            });
        }
        let text = std::fs::read_to_string(&report_path).map_err(Error::io(&report_path))?;
        let report: TrainReport = serde_json::from_str(&text).map_err(|e| Error::NotARun {
            path: dir.to_path_buf(),
            reason: format!(
                "its {REPORT_FILE} cannot be read ({e}; written by an older conad?); rerun the \
                 raw-pixel run with `--overwrite`"
            ),
        })?;
        report.run.check_directory(dir, &config)?;
        let task = report.run.task;
        return TrainedModel::from_weights(config, None, device, None, task, None);
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
    let state = TrainingState::of(&ckpt, &source)?;
    state.run.check_directory(dir, &config)?;
    let task = state.run.task;
    TrainedModel::from_weights(
        config,
        Some(&ckpt),
        device,
        Some(source),
        task,
        Some(state.data),
    )
}

impl TrainedModel {
    /// Builds the model of `config` from `weights` (`None` for the raw-pixel method, which has
    /// none): the encoder under `encoder.`, the method's heads under `heads.`.
    ///
    /// # Errors
    /// Checkpoint version or architecture mismatch, missing tensors, method build errors.
    pub(crate) fn from_weights(
        config: TrainConfig,
        weights: Option<&Checkpoint>,
        device: &Device,
        source: Option<PathBuf>,
        task: Option<TaskRecord>,
        trained_on: Option<String>,
    ) -> Result<Self> {
        let method_seed = crate::method::method_seed(&SeedTree::new(config.seed));
        let Some(ckpt) = weights else {
            let varmap = VarMap::new();
            let resnet = config.model.resnet(config.model.in_channels.unwrap_or(3));
            let method = config.method.build(BuildContext {
                encoder: &resnet,
                heads: VarBuilder::from_varmap(&varmap, DType::F32, device).pp("heads"),
                augment: &config.augment,
                seed: method_seed,
            })?;
            return Ok(Self {
                config,
                encoder: None,
                method,
                epochs: 0,
                device: device.clone(),
                source,
                task,
                trained_on,
            });
        };
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
        Ok(Self {
            config,
            encoder: Some(encoder),
            method,
            epochs: ckpt.meta.epoch,
            device: device.clone(),
            source,
            task,
            trained_on,
        })
    }
}
