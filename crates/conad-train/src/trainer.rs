//! The training loop, generic over a [`Method`] (docs/reference.md §1.1 for SimCLR, §4.7 for the
//! learning curve).
//!
//! Per epoch `e`: the training pool (the images, times the method's shifted copies — see
//! [`Method::copies_per_image`]) is shuffled with `seed → "shuffle" → e`; each step takes
//! `batch_size` pool items, the method builds its views with the augmenter (keyed by
//! `seed → "augment" → e → sample → view`), the loss is back-propagated and the optimiser
//! updates the parameters with the schedule's learning rate for that step. A NaN/±∞ loss stops
//! the run with [`Error::NonFiniteLoss`]. Checkpoints every `checkpoint_every` epochs hold the
//! weights, batch-norm statistics, optimiser state and history, which with the keyed random
//! streams makes a resumed run bit-identical to an uninterrupted one.
//!
//! Determinism across thread counts: augmentation is keyed per view; candle's CPU kernels
//! partition work per output element (convolutions per image and tile, `gemm` over output
//! blocks with a reduction blocking that depends on the matrix shape only, never on the thread
//! count), its reductions are sequential, and the optimiser updates each parameter
//! sequentially. Tests check bit-identical weights for 1 and 2 rayon threads in-process, and for
//! `RAYON_NUM_THREADS` = 1, 2, 3 in child processes (which also changes the thread count candle
//! hands to `gemm` and its element-wise pool), together with a matmul and a convolution with
//! its gradients at sizes where `gemm` runs multi-threaded.
//!
//! Bit-identity holds for a fixed configuration. Changing the batch size (training or
//! embedding) changes results at float rounding (~1e-7 relative): candle runs strided 1×1
//! convolutions as one im2col GEMM over the whole batch, whose reduction blocking depends on
//! the batch size.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use conad_augment::{Augmenter, ImageBatchU8};
use conad_data::OneClassTask;
use conad_models::{Checkpoint, CheckpointMeta, ResNet, ResNetConfig, seeded_var_builder};

use conad_rng::SeedTree;
use rand::seq::SliceRandom;

use crate::config::TrainConfig;
use crate::embed::{embed, embed_raw_pixels};
use crate::error::{Error, Result};
use crate::evaluate::embedding_std;
use crate::method::{BatchContext, BuildContext, HookContext, Method, StepContext, method_seed};
use crate::optim::{Optimizer, StepHyper};
use crate::progress::{ProgressMode, training_bar};
use crate::report::{EpochRecord, EvalPoint, History, TrainReport};
use crate::run_dir::{
    CHECKPOINT_FILE, CURVE_FILE, HISTORY_FILE, MODEL_FILE, REPORT_FILE, RunDirPlan, RunRecord,
    TEST_TRANSFORM_SEED, TrainingState, commit_run_dir, data_fingerprint, dataset_view,
    inspect_run_dir, write_json,
};
use crate::schedule::SchedulePoint;
use crate::score::{FittedScore, ScoreDef, ScoringModel};
use crate::task_record::TaskRecord;

/// What to do when the run directory already holds a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResumePolicy {
    /// Continue from `checkpoint.safetensors` if present (the config must be identical).
    #[default]
    IfPresent,
    /// Delete the run's files and start from scratch (only after the new run was validated).
    Overwrite,
}

/// Session options that do not change the trained model.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Resume or overwrite an existing run.
    pub resume: ResumePolicy,
    /// Progress bar.
    pub progress: ProgressMode,
    /// Device of the model.
    pub device: Device,
    /// Stop this session after completing this many epochs (the run stays resumable; writes
    /// no extra checkpoint — like a kill after that epoch).
    pub stop_after_epochs: Option<u64>,
    /// Set to `true` (e.g. from a Ctrl-C handler) to stop before the next step; the partial
    /// epoch is discarded and the run resumes from its last checkpoint.
    pub cancel: Option<Arc<AtomicBool>>,
    /// The data spec and protocol of `task`, written to `RUN_DIR/task.toml` when the run starts
    /// and recorded in its checkpoints (so `conad eval` rebuilds the same split and detects an
    /// edited `task.toml`).
    pub task: Option<TaskRecord>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            resume: ResumePolicy::IfPresent,
            progress: ProgressMode::Auto,
            device: Device::Cpu,
            stop_after_epochs: None,
            cancel: None,
            task: None,
        }
    }
}

/// Trains `config` on `task.train` (the normal training images), evaluating on `task.test`,
/// writing everything to `run_dir` (see [`crate::run_dir`]); resumes when `run_dir` holds a
/// checkpoint of the same config.
///
/// # Errors
/// Config errors, [`Error::EmptyImages`], [`Error::ImageShapeMismatch`], [`Error::CountMismatch`],
/// [`Error::OneSidedTestSplit`], [`Error::TooFewImages`], [`Error::NonFiniteLoss`],
/// [`Error::RunConfigMismatch`], I/O and model errors.
pub fn train(
    config: &TrainConfig,
    task: &OneClassTask,
    run_dir: impl AsRef<Path>,
) -> Result<TrainReport> {
    train_with_options(config, task, run_dir, &TrainOptions::default())
}

/// [`train`] with session options.
///
/// # Errors
/// As [`train`].
pub fn train_with_options(
    config: &TrainConfig,
    task: &OneClassTask,
    run_dir: impl AsRef<Path>,
    options: &TrainOptions,
) -> Result<TrainReport> {
    let method = config.method.clone();
    train_with_method(config, task, run_dir, options, move |ctx| method.build(ctx))
}

/// [`train_with_options`] with a method built by `build` instead of the config's registry
/// entry — for methods outside the registry (experiments, tests). `build` receives the
/// [`BuildContext`] (encoder config, a var builder under `heads.` through which it must create
/// the method's heads, the augmentation settings and the method's seed node). The config's
/// `method` is still recorded in `config.toml` and names the scores; a raw-pixel config builds
/// the registry's raw-pixel method instead.
///
/// # Errors
/// As [`train`], plus `build`'s errors.
pub fn train_with_method<B>(
    config: &TrainConfig,
    task: &OneClassTask,
    run_dir: impl AsRef<Path>,
    options: &TrainOptions,
    build: B,
) -> Result<TrainReport>
where
    B: FnOnce(BuildContext<'_>) -> Result<Box<dyn Method>> + Send,
{
    let run_dir = run_dir.as_ref();
    config.validate_for_this_machine()?;
    let data = &task.train;
    if data.is_empty() {
        return Err(Error::EmptyImages {
            what: "the training split",
        });
    }
    if task.test.shape() != data.shape() {
        return Err(Error::ImageShapeMismatch {
            train: data.shape(),
            test: task.test.shape(),
        });
    }
    if task.test_is_anomaly.len() != task.test.len() {
        return Err(Error::CountMismatch {
            what: "anomaly labels of the test images",
            expected: task.test.len(),
            found: task.test_is_anomaly.len(),
        });
    }
    let resolved =
        config
            .with_budget_for(data.len())
            .resolve(data.height, data.width, data.channels)?;
    let anomalies = task.test_is_anomaly.iter().filter(|&&a| a).count();
    let evaluates = resolved.eval_every > 0 || !resolved.method.trains();
    if evaluates && (anomalies == 0 || anomalies == task.test.len()) {
        return Err(Error::OneSidedTestSplit {
            anomalies,
            total: task.test.len(),
        });
    }
    match resolved.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::invalid("threads", n, format!("cannot build the pool: {e}")))?
            .install(|| run(&resolved, task, run_dir, options, build)),
        None => run(&resolved, task, run_dir, options, build),
    }
}

fn run<B>(
    config: &TrainConfig,
    task: &OneClassTask,
    run_dir: &Path,
    options: &TrainOptions,
    build: B,
) -> Result<TrainReport>
where
    B: FnOnce(BuildContext<'_>) -> Result<Box<dyn Method>>,
{
    let started = Instant::now();
    let plan = inspect_run_dir(run_dir, config, options.resume)?;
    let root = SeedTree::new(config.seed);
    let side = task.train.height.min(task.train.width);
    let test_transform = Augmenter::with_seed_node(
        &config.augment.test.to_augment_config(side)?,
        root.child(TEST_TRANSFORM_SEED),
    )?;
    if !config.method.trains() {
        return raw_pixels_run(config, task, run_dir, options, &plan, started);
    }
    // Everything that can reject the run happens in memory, before the directory changes.
    let session = Session::new(
        config,
        task,
        run_dir,
        options,
        test_transform,
        plan.resume_from.clone(),
        build,
    )?;
    commit_run_dir(run_dir, &plan, config, options.task.as_ref())?;
    session.run(started)
}

/// The online evaluation's score: `eval.score` of the method, else kNN with `eval.k`.
pub(crate) fn online_score(config: &TrainConfig) -> Result<ScoreDef> {
    match &config.eval.score {
        Some(name) => config.method.score(name),
        None => Ok(ScoreDef::knn(config.eval.k)),
    }
}

/// Fits `def` on the training images and returns the test AUROC (anomalies positive).
pub(crate) fn score_auroc(
    model: &ScoringModel<'_>,
    def: &ScoreDef,
    task: &OneClassTask,
) -> Result<f64> {
    let detector = FittedScore::fit(model, def, &dataset_view(&task.train)?)?;
    let scores = detector.score(model, &dataset_view(&task.test)?)?;
    Ok(conad_eval::auroc(&scores, &task.test_is_anomaly)?)
}

/// A method without weights (raw pixels): one evaluation of its online score.
fn raw_pixels_run(
    config: &TrainConfig,
    task: &OneClassTask,
    run_dir: &Path,
    options: &TrainOptions,
    plan: &RunDirPlan,
    started: Instant,
) -> Result<TrainReport> {
    let t = Instant::now();
    let record = RunRecord::new(config, options.task.as_ref())?;
    let varmap = VarMap::new();
    let root = SeedTree::new(config.seed);
    let in_channels = config.model.in_channels.unwrap_or(task.train.channels);
    let resnet = config.model.resnet(in_channels);
    let method = config.method.build(BuildContext {
        encoder: &resnet,
        heads: VarBuilder::from_varmap(&varmap, DType::F32, &options.device).pp("heads"),
        augment: &config.augment,
        seed: method_seed(&root),
    })?;
    let model = ScoringModel {
        encoder: None,
        method: method.as_ref(),
        config,
        device: &options.device,
        batch_size: config.eval.batch_size,
    };
    let def = online_score(config)?;
    let auroc = score_auroc(&model, &def, task)?;
    let transform = Augmenter::with_seed_node(
        &config
            .augment
            .test
            .to_augment_config(task.train.height.min(task.train.width))?,
        root.child(TEST_TRANSFORM_SEED),
    )?;
    let train = embed_raw_pixels(
        &dataset_view(&task.train)?,
        &transform,
        config.eval.batch_size,
    )?;
    let history = History {
        epochs: Vec::new(),
        evals: vec![EvalPoint {
            epoch: 0,
            score: def.name.to_string(),
            auroc,
            embedding_std: embedding_std(&train),
            seconds: t.elapsed().as_secs_f64(),
        }],
    };
    tracing::info!(
        method = config.method.name(),
        score = def.name,
        auroc,
        "evaluation"
    );
    commit_run_dir(run_dir, plan, config, options.task.as_ref())?;
    finish(
        config, run_dir, history, record, 0, true, None, None, started,
    )
}

#[allow(clippy::too_many_arguments)]
fn finish(
    config: &TrainConfig,
    run_dir: &Path,
    history: History,
    run: RunRecord,
    epochs_completed: u64,
    completed: bool,
    resumed_from_epoch: Option<u64>,
    images_per_second: Option<f64>,
    started: Instant,
) -> Result<TrainReport> {
    let curve = history.learning_curve();
    write_json(&run_dir.join(HISTORY_FILE), &history)?;
    write_json(&run_dir.join(CURVE_FILE), &curve)?;
    let report = TrainReport {
        run_dir: run_dir.to_path_buf(),
        method: config.method.name().to_string(),
        epochs_planned: if config.method.trains() {
            config.epochs
        } else {
            0
        },
        epochs_completed,
        completed,
        resumed_from_epoch,
        final_loss: history.epochs.last().map(|e| e.loss),
        final_auroc: history.evals.last().map(|e| e.auroc),
        aulc: curve.aulc,
        images_per_second,
        wall_seconds: started.elapsed().as_secs_f64(),
        history,
        run,
    };
    write_json(&run_dir.join(REPORT_FILE), &report)?;
    Ok(report)
}

/// One training session: model, optimiser, data and state.
struct Session<'a> {
    config: &'a TrainConfig,
    task: &'a OneClassTask,
    run_dir: &'a Path,
    options: &'a TrainOptions,
    varmap: VarMap,
    encoder: ResNet,
    method: Box<dyn Method>,
    optimizer: Optimizer,
    train_aug: Augmenter,
    test_aug: Augmenter,
    root: SeedTree,
    steps_per_epoch: u64,
    history: History,
    start_epoch: u64,
    resumed_from: Option<u64>,
    data_fingerprint: String,
    record: RunRecord,
}

impl<'a> Session<'a> {
    fn new(
        config: &'a TrainConfig,
        task: &'a OneClassTask,
        run_dir: &'a Path,
        options: &'a TrainOptions,
        test_aug: Augmenter,
        resume_from: Option<PathBuf>,
        build: impl FnOnce(BuildContext<'_>) -> Result<Box<dyn Method>>,
    ) -> Result<Self> {
        let device = &options.device;
        let data = &task.train;
        let root = SeedTree::new(config.seed);
        let in_channels = config.model.in_channels.unwrap_or(data.channels);
        let resnet = config.model.resnet(in_channels);
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, root.child("init"), DType::F32, device);
        let encoder = ResNet::new(&resnet, vb.pp("encoder"))?;
        let method = build(BuildContext {
            encoder: &resnet,
            heads: vb.pp("heads"),
            augment: &config.augment,
            seed: method_seed(&root),
        })?;
        let optimizer =
            Optimizer::from_varmap(config.optimizer.clone(), &varmap, |n| method.trains(n))?;
        let side = data.height.min(data.width);
        let train_aug = Augmenter::new(&config.augment.train.to_augment_config(side)?, root)?;
        // The training pool: every image, times the method's shifted copies.
        let n = data.len() * method.copies_per_image();
        let b = config.batch_size;
        // Without drop_last the last, partial batch is kept unless it is smaller than the
        // method's minimum (its loss would be degenerate or undefined there).
        let keeps_partial = !config.drop_last && n % b >= config.method.min_batch_size();
        let steps_per_epoch = (n / b + usize::from(keeps_partial)) as u64;
        if steps_per_epoch == 0 {
            return Err(Error::TooFewImages {
                images: n,
                batch_size: b,
            });
        }
        let mut session = Self {
            config,
            task,
            run_dir,
            options,
            varmap,
            encoder,
            method,
            optimizer,
            train_aug,
            test_aug,
            root,
            steps_per_epoch,
            history: History::default(),
            start_epoch: 0,
            resumed_from: None,
            data_fingerprint: data_fingerprint(data),
            record: RunRecord::new(config, options.task.as_ref())?,
        };
        if let Some(path) = resume_from {
            session.restore(&path, &resnet)?;
        }
        tracing::info!(
            method = session.config.method.name(),
            parameters = session.optimizer.num_scalars(),
            images = n,
            steps_per_epoch,
            start_epoch = session.start_epoch,
            "training"
        );
        Ok(session)
    }

    fn restore(&mut self, path: &Path, resnet: &ResNetConfig) -> Result<()> {
        let ckpt = Checkpoint::load(path, &self.options.device)?;
        ckpt.check_compatible(resnet)?;
        let state = TrainingState::of(&ckpt, path)?;
        let mut differences = state.run.config_differences(self.config)?;
        differences.extend(
            state
                .run
                .task_differences(self.record.task.as_ref(), "this session's task"),
        );
        if !differences.is_empty() {
            return Err(Error::RunConfigMismatch {
                path: self.run_dir.to_path_buf(),
                differences,
            });
        }
        let data = &self.data_fingerprint;
        if &state.data != data {
            return Err(Error::RunConfigMismatch {
                path: self.run_dir.to_path_buf(),
                differences: vec![format!(
                    "training data: checkpoint has {}, now {data}",
                    state.data
                )],
            });
        }
        if ckpt.meta.epoch > self.config.epochs {
            return Err(Error::RunConfigMismatch {
                path: self.run_dir.to_path_buf(),
                differences: vec![format!(
                    "checkpoint is at epoch {} but the config asks {} epochs",
                    ckpt.meta.epoch, self.config.epochs
                )],
            });
        }
        ckpt.restore_varmap(&self.varmap)?;
        if ckpt.meta.epoch < self.config.epochs {
            self.optimizer
                .load_state(&ckpt.optimizer_state(), &state.optimizer)?;
        }
        self.history = state.history;
        self.start_epoch = ckpt.meta.epoch;
        self.resumed_from = Some(ckpt.meta.epoch);
        tracing::info!(epoch = ckpt.meta.epoch, "resumed from {}", path.display());
        Ok(())
    }

    fn cancelled(&self) -> bool {
        self.options
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    fn run(mut self, started: Instant) -> Result<TrainReport> {
        let epochs = self.config.epochs;
        let session_epochs = epochs - self.start_epoch;
        let limit = self
            .options
            .stop_after_epochs
            .map_or(session_epochs, |k| k.min(session_epochs));
        let bar = training_bar(self.options.progress, limit * self.steps_per_epoch);
        let task = self.task;
        let images = dataset_view(&task.train)?;
        let start = self.start_epoch;
        self.hook(&images, start, |m, ctx| m.before_training(ctx))?;
        let (mut views, mut step_seconds) = (0u64, 0f64);
        let mut epoch = self.start_epoch;
        let mut stopped = false;
        while epoch < epochs && epoch - self.start_epoch < limit {
            let Some(record) = self.train_epoch(&images, epoch, &bar)? else {
                stopped = true;
                break;
            };
            views += record.images;
            step_seconds += record.seconds;
            tracing::info!(
                epoch = record.epoch,
                loss = record.loss,
                lr = record.lr,
                images_per_second = record.images_per_second,
                embedding_std = record.embedding_std,
                "epoch done"
            );
            self.history.epochs.push(record);
            epoch += 1;
            let last = epoch == epochs;
            let due = |every: u64| every > 0 && (epoch.is_multiple_of(every) || last);
            if due(self.config.eval_every) {
                self.evaluate(epoch)?;
            }
            if due(self.config.checkpoint_every) {
                self.save(epoch, true, &self.run_dir.join(CHECKPOINT_FILE))?;
            }
            write_json(&self.run_dir.join(HISTORY_FILE), &self.history)?;
        }
        bar.finish_and_clear();
        let completed = !stopped && epoch == epochs;
        if completed {
            self.save(epoch, false, &self.run_dir.join(MODEL_FILE))?;
        }
        let ips = (step_seconds > 0.0).then(|| views as f64 / step_seconds);
        finish(
            self.config,
            self.run_dir,
            self.history,
            self.record,
            epoch,
            completed,
            self.resumed_from,
            ips,
            started,
        )
    }

    /// One epoch; `None` when cancelled.
    fn train_epoch(
        &mut self,
        images: &ImageBatchU8<'_>,
        epoch: u64,
        bar: &indicatif::ProgressBar,
    ) -> Result<Option<EpochRecord>> {
        self.hook(images, epoch, |m, ctx| m.on_epoch_start(ctx))?;
        let n = images.len() * self.method.copies_per_image();
        let b = self.config.batch_size;
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut self.root.child("shuffle").index(epoch).rng());
        let (mut loss_sum, mut std_sum, mut std_count) = (0f64, 0f64, 0usize);
        let (mut views, mut lr) = (0usize, 0f64);
        let t0 = Instant::now();
        for step in 0..self.steps_per_epoch {
            if self.cancelled() {
                return Ok(None);
            }
            let lo = step as usize * b;
            let indices = &order[lo..(lo + b).min(n)];
            let ctx = StepContext::new(
                &self.root,
                epoch,
                step,
                self.steps_per_epoch,
                self.config.epochs,
            );
            let global_step = ctx.global_step;
            let value = self.config.schedule.at(SchedulePoint {
                step: global_step,
                steps_per_epoch: self.steps_per_epoch,
                total_steps: ctx.total_steps,
            });
            lr = value.lr;
            let batch = self.method.batch(&BatchContext {
                images,
                labels: &self.task.train.labels,
                indices,
                step: &ctx,
                augmenter: &self.train_aug,
                device: &self.options.device,
            })?;
            let non_finite = |value: f64| Error::NonFiniteLoss {
                epoch,
                step,
                global_step,
                value,
            };
            // The step's convolutions (forward and backward) run in the configured precision.
            let precision = self.config.precision.scope().map_err(|e| {
                Error::invalid("precision", self.config.precision.name(), e.to_string())
            })?;
            // The fused residual blocks hand their parameter gradients over directly instead
            // of through candle's graph (same values, fewer passes over memory).
            let direct = conad_engine::DirectGradients::scope();
            let out = match self.method.forward_loss(&self.encoder, &batch, &ctx) {
                Err(Error::Losses(conad_losses::Error::NonFiniteLoss { value, .. })) => {
                    return Err(non_finite(value));
                }
                other => other?,
            };
            let loss = out.loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            if !loss.is_finite() {
                return Err(non_finite(loss));
            }
            let mut grads = out.loss.backward()?;
            direct.merge_into(&mut grads)?;
            drop(precision);
            self.optimizer.step(
                &grads,
                StepHyper {
                    lr: value.lr,
                    momentum: value.momentum,
                },
            )?;
            if let Some(z) = out.monitored {
                let (rows, dim) = z.dims2()?;
                let flat = z.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
                if let Some(s) = crate::collapse::std_of_l2_normalized(&flat, rows, dim) {
                    std_sum += s;
                    std_count += 1;
                }
            }
            loss_sum += loss;
            views += batch.encoder_images;
            bar.inc(1);
            let secs = t0.elapsed().as_secs_f64();
            bar.set_message(format!(
                "epoch {}/{}  loss {loss:.4}  {:.1} img/s",
                epoch + 1,
                self.config.epochs,
                views as f64 / secs.max(1e-9)
            ));
        }
        let seconds = t0.elapsed().as_secs_f64();
        Ok(Some(EpochRecord {
            epoch: epoch + 1,
            loss: loss_sum / self.steps_per_epoch as f64,
            lr,
            embedding_std: (std_count > 0).then(|| std_sum / std_count as f64),
            images: views as u64,
            images_per_second: views as f64 / seconds.max(1e-9),
            seconds,
        }))
    }

    /// Runs a method hook with the session's hook context.
    fn hook(
        &mut self,
        images: &ImageBatchU8<'_>,
        epoch: u64,
        f: impl FnOnce(&mut dyn Method, &HookContext<'_>) -> Result<()>,
    ) -> Result<()> {
        let ctx = HookContext {
            epoch,
            epochs: self.config.epochs,
            encoder: &self.encoder,
            vars: &self.varmap,
            images,
            test_transform: &self.test_aug,
            batch_size: self.config.eval.batch_size,
            device: &self.options.device,
        };
        f(self.method.as_mut(), &ctx)
    }

    fn evaluate(&mut self, epoch: u64) -> Result<()> {
        let t = Instant::now();
        let (bs, device) = (self.config.eval.batch_size, &self.options.device);
        let def = online_score(self.config)?;
        let model = ScoringModel {
            encoder: Some(&self.encoder),
            method: self.method.as_ref(),
            config: self.config,
            device,
            batch_size: bs,
        };
        let auroc = score_auroc(&model, &def, self.task)?;
        let train = embed(
            &self.encoder,
            &dataset_view(&self.task.train)?,
            &self.test_aug,
            bs,
            device,
        )?;
        let point = EvalPoint {
            epoch,
            score: def.name.to_string(),
            auroc,
            embedding_std: embedding_std(&train),
            seconds: t.elapsed().as_secs_f64(),
        };
        tracing::info!(
            epoch,
            score = def.name,
            auroc,
            embedding_std = point.embedding_std,
            "online evaluation"
        );
        self.history.evals.push(point);
        Ok(())
    }

    fn save(&self, epoch: u64, with_optimizer: bool, path: &Path) -> Result<()> {
        let data = &self.task.train;
        let mut meta = CheckpointMeta::new(self.encoder.config().clone(), self.config.seed, epoch);
        meta.heads = self.method.heads();
        meta.preprocessing = serde_json::json!({
            "image_shape_hwc": [data.height, data.width, data.channels],
            "test_transform": self.config.augment.test,
        });
        let state = TrainingState {
            method: self.config.method.name().to_string(),
            data: self.data_fingerprint.clone(),
            global_step: epoch * self.steps_per_epoch,
            history: self.history.clone(),
            optimizer: self.optimizer.state_meta(),
            run: self.record.clone(),
        };
        meta.training = serde_json::to_value(&state).map_err(|e| Error::Json {
            what: "training state".into(),
            message: e.to_string(),
        })?;
        let mut ckpt = Checkpoint::from_varmap(&self.varmap, meta)?;
        if with_optimizer {
            for (name, t) in self.optimizer.state_tensors()? {
                ckpt.insert_optimizer_state(&name, t);
            }
        }
        ckpt.save(path)?;
        tracing::debug!(epoch, "saved {}", path.display());
        Ok(())
    }
}
