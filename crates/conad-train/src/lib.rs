//! The training spine of conad: optimisers, learning-rate schedules, a training loop generic
//! over self-supervised methods, checkpoints with bit-exact resume, online evaluation (any of
//! the method's scores) with a learning curve, and the embedding API (docs/reference.md §1.1, §3.1, §4.7, §7 "Training schedules").
//!
//! | concept | items | file |
//! |---|---|---|
//! | optimisers on candle `Var`s (in-place CPU update) | [`Optimizer`], [`OptimizerConfig`], [`SgdConfig`], [`AdamConfig`], [`LarsConfig`] | `optim/` |
//! | per-step schedules (cosine, warm-up, OneCycle, CSI) | [`LrSchedule`], [`SchedulePoint`] | `schedule.rs` |
//! | methods and their registry (one file per method, one line each in [`METHODS`]) | [`Method`], [`MethodParams`], [`MethodConfig`], [`METHODS`] | `method/` |
//! | test-time scores owned by the methods, fitted scores | [`ScoreDef`], [`ScoreRecipe`], [`FittedScore`] | `score/` |
//! | detectors for the user's images: one self-contained file, conformal thresholds, nearest normal images | [`detector::Detector`] | `detector/` |
//! | typed TOML config | [`TrainConfig`], [`ModelConfig`], [`AugmentSpec`], [`EvalConfig`] | `config.rs`, `augment_spec.rs` |
//! | the loop | [`train`], [`train_with_options`], [`TrainOptions`], [`TrainReport`] | `trainer.rs`, `report.rs` |
//! | run directory (crash-safe, self-checking), loading, embedding | [`load_run`], [`TrainedModel`], [`RunRecord`], [`TaskRecord`], [`embed()`] | `run_dir.rs`, `task_record.rs`, `embed.rs` |
//! | online evaluation, collapse monitor | [`knn_auroc`], [`std_of_l2_normalized`] | `evaluate.rs`, `collapse.rs` |
//!
//! Reproducibility: weights are initialised, data shuffled and views augmented from one
//! [`conad_rng::SeedTree`] (`seed → "init" / "shuffle" → epoch / "augment" → epoch → sample →
//! view`); the same seed gives bit-identical weights whatever the thread count, and a run
//! resumed from a checkpoint ends with the same weights as an uninterrupted one.
//!
//! ```no_run
//! use conad_data::{DataSpec, OneClassProtocol};
//! use conad_train::{TrainConfig, load_run, train};
//! let data = "embedded:fashion-mnist".parse::<DataSpec>()?.load()?;
//! let task = OneClassProtocol::new(vec![0]).build(&data)?;
//! let config = TrainConfig::from_toml_str(
//!     "epochs = 20\n[model]\nwidth_multiplier = 0.25\n[method]\nname = \"simclr\"\n",
//!     "inline",
//! )?;
//! let report = train(&config, &task, "runs/fmnist-0")?;
//! println!("AUROC {:?}, AULC {:?}", report.final_auroc, report.aulc);
//! let model = load_run("runs/fmnist-0")?;
//! let test_embeddings = model.embed(&task.test, 256)?; // N × 128 (512 × 0.25)
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod augment_spec;
mod collapse;
mod config;
pub mod detector;
mod embed;
mod error;
mod evaluate;
pub mod ke;
pub mod method;
pub mod optim;
mod profiles;
mod progress;
mod report;
pub mod run_dir;
mod schedule;
pub mod score;
mod task_record;
mod trainer;

pub use augment_spec::{AugmentSettings, AugmentSpec};
pub use collapse::std_of_l2_normalized;
pub use conad_engine::{HugePageAlloc, Precision};
pub use config::{EvalConfig, ModelConfig, TrainConfig};
pub use embed::{embed, embed_raw_pixels};
pub use error::{Error, Result};
pub use evaluate::knn_auroc;
pub use method::{
    BatchContext, BuildContext, Con2Params, ContextTransform, CsiParams, DistributionShift,
    FirmParams, HookContext, KeParams, METHODS, Method, MethodBatch, MethodConfig, MethodInfo,
    MethodParams, MilConvParams, MscParams, ProjectionKind, RawPixelsConfig, RotNetParams,
    SimClrConfig, SimClrMethod, StepContext, StepOutput, SupConLabels, SupConParams,
    UniConHaParams, UniConHaStage, method_names,
};
pub use optim::{
    AdamConfig, LarsConfig, Optimizer, OptimizerConfig, OptimizerStateMeta, SgdConfig, StepHyper,
    StepStats, is_batch_norm_statistic,
};
pub use profiles::{PROFILE_NAMES, PROFILES, Profile, profile};
pub use progress::ProgressMode;
pub use report::{EpochRecord, EvalPoint, History, LearningCurve, TrainReport};
pub use run_dir::{RunRecord, TrainedModel, load_run, load_run_on};
pub use schedule::{LrSchedule, SchedulePoint, ScheduleValue};
pub use score::{FittedScore, Output, ScoreDef, ScoreRecipe, ScoringModel, ViewAugment, ViewSpec};
pub use task_record::{TASK_FILE, TaskRecord};
pub use trainer::{ResumePolicy, TrainOptions, train, train_with_method, train_with_options};
