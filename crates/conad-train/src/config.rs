//! The typed training configuration ([`TrainConfig`]): serde + TOML, `Default`, `validate()`,
//! and resolution against the data (image size, channel count) into the concrete config written
//! to `RUN_DIR/config.toml`.
//!
//! ```toml
//! epochs = 200
//! batch_size = 64
//! seed = 0
//! checkpoint_every = 10
//! eval_every = 10
//!
//! [method]
//! name = "simclr"
//! temperature = 0.5
//!
//! [model]
//! width_multiplier = 0.25
//!
//! [optimizer]
//! kind = "adam_w"
//! weight_decay = 1e-3
//!
//! [schedule]
//! kind = "cosine"
//! lr = 1e-3
//!
//! [augment.train]
//! preset = "simclr_cifar"
//! ```

use std::path::Path;

use conad_engine::Precision;
use conad_models::{ResNetConfig, Stem};
use serde::{Deserialize, Serialize};

use crate::augment_spec::AugmentSettings;
use crate::error::{Error, Result};
use crate::method::MethodConfig;
use crate::optim::OptimizerConfig;
use crate::schedule::LrSchedule;

/// The encoder part of the config; resolves to a [`ResNetConfig`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Input stem (CIFAR for ≤ 64 px, ImageNet for 224 px).
    pub stem: Stem,
    /// Stage-width multiplier (1 = ResNet-18; 0.5, 0.25, 0.125 for CPU budgets).
    pub width_multiplier: f64,
    /// Input channels; `None` = the channel count of the augmented training views.
    pub in_channels: Option<usize>,
    /// BasicBlocks per stage (`[2, 2, 2, 2]` = ResNet-18).
    pub blocks_per_stage: [usize; 4],
    /// Batch-norm momentum (PyTorch semantics; FIRM 0.9).
    pub bn_momentum: f64,
    /// Batch-norm ε.
    pub bn_eps: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        let r = ResNetConfig::default();
        Self {
            stem: r.stem,
            width_multiplier: r.width_multiplier,
            in_channels: None,
            blocks_per_stage: r.blocks_per_stage,
            bn_momentum: r.bn_momentum,
            bn_eps: r.bn_eps,
        }
    }
}

impl ModelConfig {
    /// The encoder for `in_channels` input channels (`self.in_channels` wins when set).
    pub fn resnet(&self, in_channels: usize) -> ResNetConfig {
        ResNetConfig {
            stem: self.stem,
            in_channels: self.in_channels.unwrap_or(in_channels),
            width_multiplier: self.width_multiplier,
            blocks_per_stage: self.blocks_per_stage,
            num_classes: None,
            bn_momentum: self.bn_momentum,
            bn_eps: self.bn_eps,
        }
    }

    /// Checks the fields (with 3 channels when `in_channels` is unset).
    ///
    /// # Errors
    /// [`Error::Models`] with the offending field.
    pub fn validate(&self) -> Result<()> {
        Ok(self.resnet(3).validate()?)
    }
}

/// Online evaluation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// The method's score used for the online evaluation (`conad methods --scores`); `None` =
    /// kNN cosine with `k` neighbours (cheap enough to run every `eval_every` epochs).
    pub score: Option<String>,
    /// Neighbours of the default kNN cosine score (1 = max cosine, docs/reference.md §2.2, §6.22).
    pub k: usize,
    /// Images per forward pass when embedding.
    pub batch_size: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            score: None,
            k: 1,
            batch_size: 256,
        }
    }
}

/// Everything that defines a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// The preset this config came from (`budget`, `paper`; `None` = hand-written), recorded
    /// with every number.
    pub profile: Option<String>,
    /// Method and its parameters.
    pub method: MethodConfig,
    /// Encoder.
    pub model: ModelConfig,
    /// Epochs (passes over the training pool).
    pub epochs: u64,
    /// Training compute in encoder views: when set, `epochs` is derived from the data as
    /// `max(1, round(view_budget / (views_per_image · training images)))`, so every method of a
    /// budget profile gets the same compute whatever its views per image.
    pub view_budget: Option<u64>,
    /// When set, `eval_every` and `checkpoint_every` are derived as `max(1, epochs / eval_points)`
    /// (a learning curve of about this many points whatever the epoch count).
    pub eval_points: Option<u64>,
    /// Source images per step (SimCLR sees `2 × batch_size` views).
    pub batch_size: usize,
    /// Drop the last incomplete batch of every epoch (SimCLR practice). When `false`, a last
    /// batch smaller than the method's minimum batch size is still dropped.
    pub drop_last: bool,
    /// Optimiser.
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule (evaluated per step).
    pub schedule: LrSchedule,
    /// Training and test augmentation.
    pub augment: AugmentSettings,
    /// Root seed: weights, shuffling and augmentation all derive from it.
    pub seed: u64,
    /// Write a resumable checkpoint every this many epochs (and always at the end); 0 = only
    /// the final model.
    pub checkpoint_every: u64,
    /// Evaluate the online score (`eval.score`, kNN by default) on the test split every this
    /// many epochs (and at the end); 0 = never.
    pub eval_every: u64,
    /// Online evaluation settings.
    pub eval: EvalConfig,
    /// Worker threads for augmentation and candle's CPU kernels (a rayon pool for the run);
    /// `None` = the global pool. Results do not depend on it.
    pub threads: Option<usize>,
    /// Arithmetic of the encoder's convolutions during training steps: `"f32"` (default) or
    /// `"bf16"` (bf16 operands, f32 accumulation and master weights, on CPUs with AMX-BF16;
    /// `conad_engine::Precision`). Embeddings for evaluation and scoring are always f32.
    pub precision: Precision,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            profile: None,
            view_budget: None,
            eval_points: None,
            method: MethodConfig::default(),
            model: ModelConfig::default(),
            epochs: 100,
            batch_size: 64,
            drop_last: true,
            optimizer: OptimizerConfig::default(),
            schedule: LrSchedule::default(),
            augment: AugmentSettings::default(),
            seed: 0,
            checkpoint_every: 10,
            eval_every: 10,
            eval: EvalConfig::default(),
            threads: None,
            precision: Precision::F32,
        }
    }
}

/// `threads` may be at most this many times the machine's cores.
pub const MAX_THREADS_PER_CORE: usize = 4;

impl TrainConfig {
    /// Checks every section; returns the first violation.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (or the model crate's error) naming the field.
    pub fn validate(&self) -> Result<()> {
        self.method.validate()?;
        self.model.validate()?;
        if self.method.trains() {
            if self.epochs == 0 {
                return Err(Error::invalid("epochs", 0, "must be ≥ 1"));
            }
            self.optimizer.validate()?;
            self.schedule.validate()?;
        }
        let min_batch = self.method.min_batch_size().max(1);
        if self.batch_size < min_batch {
            return Err(Error::invalid(
                "batch_size",
                self.batch_size,
                format!(
                    "must be ≥ {min_batch} for `{}`: with fewer images per step its loss has no \
                     negatives and is exactly 0",
                    self.method.name()
                ),
            ));
        }
        if i64::try_from(self.seed).is_err() {
            return Err(Error::invalid(
                "seed",
                self.seed,
                "must be ≤ 2^63 − 1 (TOML integers are signed 64-bit)",
            ));
        }
        if self.view_budget == Some(0) {
            return Err(Error::invalid("view_budget", 0, "must be ≥ 1 (or omitted)"));
        }
        if self.eval_points == Some(0) {
            return Err(Error::invalid("eval_points", 0, "must be ≥ 1 (or omitted)"));
        }
        if self.eval.k == 0 {
            return Err(Error::invalid("eval.k", 0, "must be ≥ 1 (1 = max cosine)"));
        }
        if let Some(name) = &self.eval.score {
            self.method.score(name)?;
        }
        if self.eval.batch_size == 0 {
            return Err(Error::invalid("eval.batch_size", 0, "must be ≥ 1"));
        }
        if self.threads == Some(0) {
            return Err(Error::invalid(
                "threads",
                0,
                "must be ≥ 1, or omitted for the global pool",
            ));
        }
        self.augment.train.to_augment_config(32)?;
        self.augment.test.to_augment_config(32)?;
        Ok(())
    }

    /// Checks the settings that depend on the machine running the config (a stored config is
    /// not re-checked against another machine): `threads` ≤ [`MAX_THREADS_PER_CORE`] × cores,
    /// and `precision` supported by this CPU.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming `threads`.
    pub fn validate_for_this_machine(&self) -> Result<()> {
        if !self.precision.supported() {
            return Err(Error::invalid(
                "precision",
                self.precision.name(),
                "needs a CPU with AMX-BF16 (Intel Sapphire Rapids or newer) and this one has \
                 none; use precision = \"f32\" (the default)",
            ));
        }
        if let Some(n) = self.threads {
            let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
            let max = MAX_THREADS_PER_CORE * cores;
            if n > max {
                return Err(Error::invalid(
                    "threads",
                    n,
                    format!(
                        "must be ≤ {max} ({MAX_THREADS_PER_CORE} × the {cores} cores of this \
                         machine): more threads only contend for the cores; omit it to use one \
                         per core"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The config with everything that depends on the data filled in: augmentation sizes from
    /// the image side and `model.in_channels` from the channel count of the training views.
    ///
    /// # Errors
    /// [`Error::ChannelMismatch`] when the training and test pipelines (or `model.in_channels`)
    /// disagree on the channel count; augmentation shape errors.
    pub fn resolve(&self, height: usize, width: usize, channels: usize) -> Result<Self> {
        self.validate()?;
        let mut out = self.clone();
        let side = height.min(width);
        out.augment.train = self.augment.train.resolved(side);
        out.augment.test = self.augment.test.resolved(side);
        let shape_of = |spec: &crate::AugmentSpec| -> Result<[usize; 3]> {
            Ok(spec
                .to_augment_config(side)?
                .output_shape([channels, height, width], Default::default())?)
        };
        let train_shape = shape_of(&out.augment.train)?;
        let test_shape = shape_of(&out.augment.test)?;
        if self.method.trains() && train_shape[0] != test_shape[0] {
            return Err(Error::ChannelMismatch {
                what: "training views vs test views",
                expected: train_shape[0],
                found: test_shape[0],
                fix: "make both augmentation pipelines produce the same channel count",
            });
        }
        if self.method.trains() {
            let c = self.model.in_channels.unwrap_or(train_shape[0]);
            if c != train_shape[0] {
                return Err(Error::ChannelMismatch {
                    what: "model.in_channels vs the training views",
                    expected: c,
                    found: train_shape[0],
                    fix: "set model.in_channels to the views' channel count, or omit it",
                });
            }
            out.model.in_channels = Some(c);
        }
        Ok(out)
    }

    /// The config with `epochs` derived from `view_budget` for `images` training images (and
    /// `eval_every`/`checkpoint_every` from `eval_points`); unchanged without a budget.
    #[must_use]
    pub fn with_budget_for(&self, images: usize) -> Self {
        let mut out = self.clone();
        let per_epoch = (self.method.views_per_image() * images) as f64;
        if let Some(views) = self.view_budget
            && per_epoch > 0.0
        {
            out.epochs = ((views as f64 / per_epoch).round() as u64).max(1);
        }
        if let Some(points) = self.eval_points {
            let every = (out.epochs / points).max(1);
            out.eval_every = every;
            out.checkpoint_every = every;
        }
        out
    }

    /// Parses TOML; unknown method names give [`Error::UnknownMethod`].
    ///
    /// # Errors
    /// [`Error::UnknownMethod`], [`Error::ConfigParse`] (the message names the offending key),
    /// then [`TrainConfig::validate`]'s errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let parse_err = |message: String| Error::ConfigParse {
            origin: origin.to_string(),
            message,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        // The method table first, so an unknown name is `UnknownMethod` and a bad field names
        // the method.
        let method = match table.remove("method") {
            Some(toml::Value::Table(t)) => Some(MethodConfig::from_table(t, origin)?),
            Some(_) => return Err(parse_err("`method` must be a table ([method])".into())),
            None => None,
        };
        let mut config: Self = table
            .try_into()
            .map_err(|e: toml::de::Error| parse_err(e.to_string()))?;
        if let Some(m) = method {
            config.method = m;
        }
        config.validate()?;
        Ok(config)
    }

    /// Reads a TOML file.
    ///
    /// # Errors
    /// [`Error::Io`] and as [`TrainConfig::from_toml_str`].
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// The config as TOML (every field, defaults included).
    ///
    /// # Errors
    /// [`Error::ConfigParse`] if a value cannot be represented in TOML.
    pub fn to_toml_string(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::ConfigParse {
            origin: "serialisation".into(),
            message: e.to_string(),
        })
    }

    /// One line per top-level section or key whose value differs from `other`'s (`threads` is not
    /// compared: results are bit-identical for any thread count).
    pub fn differences(&self, other: &Self) -> Vec<String> {
        let (Ok(a), Ok(b)) = (toml::Value::try_from(self), toml::Value::try_from(other)) else {
            return vec!["configs cannot be compared".into()];
        };
        let (Some(a), Some(b)) = (a.as_table(), b.as_table()) else {
            return vec!["configs cannot be compared".into()];
        };
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            // The thread count never changes results (bit-identical for any count).
            .filter(|k| k.as_str() != "threads")
            .filter(|k| a.get(*k) != b.get(*k))
            .map(|k| {
                let show = |v: Option<&toml::Value>| {
                    v.map_or("(unset)".to_string(), |v| v.to_string().replace('\n', " "))
                };
                format!("{k}: {} vs {}", show(a.get(k)), show(b.get(k)))
            })
            .collect()
    }
}
