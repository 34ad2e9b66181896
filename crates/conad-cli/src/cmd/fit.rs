//! `conad fit`: train a method on the normal images (holding out a calibration fraction), fit
//! its paper score, calibrate the threshold on the held-out normal images and write ONE
//! self-contained detector file (`conad_train::detector`). The training run lives in `--run`
//! (default `OUT.run/`): an interrupted fit resumes from its last checkpoint with the same
//! command, and a finished run is reused.
use crate::cmd::train::{RecipeArgs, resolve_config, session_options};
use crate::output::{errln, outln};
use anyhow::{Context, Result, bail};
use clap::Args;
use conad_data::{DataSpec, OneClassProtocol, ResizePolicy};
use conad_train::detector::{Detector, DetectorFit, ThresholdChoice};
use conad_train::{TaskRecord, TrainConfig, load_run};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct FitArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Dataset spec (`conad data info` syntax), e.g. `folder:DIR` (normal training images in
    /// `DIR/train/good/`). Optional when `--run` holds a finished run (its data is reused).
    #[arg(long)]
    pub data: Option<String>,
    /// Normal class label(s), comma-separated; omitted = the data set's conventional normal class.
    #[arg(long = "normal-class", value_delimiter = ',')]
    pub normal_class: Vec<u32>,
    /// Test-time score of the method (`conad methods --scores`); default: its paper score.
    #[arg(long)]
    pub score: Option<String>,
    /// Fraction of the normal training images held out to calibrate the threshold (seeded).
    #[arg(long, default_value_t = 0.2)]
    pub calibration_fraction: f64,
    /// Conformal false-positive rate α: flag `p < α`, guaranteeing a false-positive rate ≤ α
    /// on normal images exchangeable with the calibration images (the default rule, α 0.01).
    #[arg(long, conflicts_with_all = ["threshold", "f1_data"])]
    pub fpr: Option<f64>,
    /// A manual score threshold (images scoring above it are anomalies; no guarantee).
    #[arg(long, conflicts_with = "f1_data")]
    pub threshold: Option<f64>,
    /// Labelled images (a data spec; its test split, with the same normal class) on which to
    /// choose the F1-optimal threshold (optimistic on those images, no guarantee).
    #[arg(long)]
    pub f1_data: Option<String>,
    /// How image files of other sizes are brought to the training size (`stretch` or
    /// `center-crop`); default: the `folder:` spec's `resize=`, else `stretch`.
    #[arg(long)]
    pub resize: Option<String>,
    /// Training run directory (default: `OUT.run` beside the detector file).
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Images per forward pass while fitting the score.
    #[arg(long, default_value_t = 256)]
    pub score_batch: usize,
    /// Retrain from scratch even if the run directory holds a run.
    #[arg(long)]
    pub overwrite: bool,
    /// The detector file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// The method `conad fit` trains when neither `--method`, `--config` nor `--profile` is given.
const DEFAULT_METHOD: &str = "supcon";

fn default_run_dir(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".run");
    out.with_file_name(name)
}

fn parse_resize(s: &str) -> Result<ResizePolicy> {
    match s {
        "stretch" => Ok(ResizePolicy::Stretch),
        "center-crop" => Ok(ResizePolicy::CenterCrop),
        other => bail!("--resize {other}: use `stretch` or `center-crop`"),
    }
}

/// The recipe and task: from the flags, or from the finished run in `run` when no recipe flag
/// is given.
fn recipe_and_task(args: &FitArgs, run: &Path) -> Result<(TrainConfig, TaskRecord)> {
    let r = &args.recipe;
    let recipe_given = r.method.is_some() || r.config.is_some() || r.profile.is_some();
    if !recipe_given && run.join(conad_train::run_dir::CONFIG_FILE).is_file() && !args.overwrite {
        let config = TrainConfig::from_toml_file(&run.join(conad_train::run_dir::CONFIG_FILE))?;
        let Some(task) = TaskRecord::read(run)? else {
            bail!(
                "{} was trained without a task record; refit with --data and --method",
                run.display()
            );
        };
        if task.protocol.calibration_fraction.is_none() {
            return Err(conad_train::Error::NoCalibrationImages {
                what: format!("the run {}", run.display()),
            }
            .into());
        }
        if let Some(data) = &args.data
            && *data != task.data
        {
            bail!(
                "--data {data} differs from the run's data `{}`; omit --data to reuse the run",
                task.data
            );
        }
        return Ok((config, task));
    }
    let Some(data) = &args.data else {
        bail!("no data: pass --data SPEC, or --run RUN_DIR holding a run made by `conad fit`");
    };
    let config = if recipe_given {
        resolve_config(r)?
    } else {
        // No recipe: SupCon* on the rotation pool, the best budget method of the BreastMNIST
        // suite and the demo's method (README).
        resolve_config(&RecipeArgs {
            method: Some(DEFAULT_METHOD.into()),
            ..r.clone()
        })?
    };
    let task = TaskRecord {
        data: data.clone(),
        protocol: OneClassProtocol {
            normal_classes: args.normal_class.clone(),
            seed: config.seed,
            calibration_fraction: Some(args.calibration_fraction),
            ..Default::default()
        },
    };
    task.protocol.validate()?;
    Ok((config, task))
}

pub fn run(args: &FitArgs) -> Result<()> {
    let run_dir = args
        .run
        .clone()
        .unwrap_or_else(|| default_run_dir(&args.out));
    if args.out.is_dir() {
        bail!(
            "--out {} is a directory; give a file name such as det.conad",
            args.out.display()
        );
    }
    let (mut config, task_record) = recipe_and_task(args, &run_dir)?;
    let spec: DataSpec = task_record.data.parse()?;
    let (loaded, task) = task_record.build(None)?;
    // Everything that can be checked before training is checked before training.
    let resize_flag = args.resize.as_deref().map(parse_resize).transpose()?;
    if args.threshold.is_none() && args.f1_data.is_none() {
        // The smallest p-value, 1/(n + 1), must fall below α (the calibrator's own check).
        let n = task.calibration.as_ref().map_or(0, |c| c.len());
        let alpha = args.fpr.unwrap_or(0.01);
        conad_scorers::flaggable_ranks(n, alpha).with_context(|| format!("--fpr {alpha}"))?;
    }
    if let Some(t) = args.threshold
        && !t.is_finite()
    {
        bail!("--threshold {t}: a finite score (images scoring above it are anomalies)");
    }
    if task.test.is_empty() && (config.eval_every > 0 || config.eval_points.is_some()) {
        // Normal images only (a folder without test/): nothing to evaluate on while training.
        errln!("no test images: training without online evaluation");
        config.eval_every = 0;
        config.eval_points = None;
    }
    errln!(
        "{}: training on {} images, {} held out for calibration",
        task.description,
        task.train.len(),
        task.calibration.as_ref().map_or(0, |c| c.len())
    );
    let options = session_options(args.overwrite, &task_record);
    let report =
        conad_train::train_with_options(&config, &task, &run_dir, &options).with_context(|| {
            format!(
                "training {} into {}",
                config.method.name(),
                run_dir.display()
            )
        })?;
    let model = load_run(&run_dir)?;

    let threshold = match (args.fpr, args.threshold, &args.f1_data) {
        (_, Some(t), _) => ThresholdChoice::Manual { threshold: t },
        (_, None, Some(spec)) => {
            let labelled = TaskRecord {
                data: spec.clone(),
                protocol: OneClassProtocol::new(task.normal_classes.clone()),
            };
            let (_, t) = labelled
                .build(None)
                .with_context(|| format!("loading the labelled images of --f1-data {spec}"))?;
            ThresholdChoice::F1Optimal {
                images: t.test,
                is_anomaly: t.test_is_anomaly,
            }
        }
        (alpha, None, None) => ThresholdChoice::Conformal {
            alpha: alpha.unwrap_or(0.01),
        },
    };
    let (resize, training_names) = match &spec {
        DataSpec::Folder { dir, options } => {
            let files = conad_data::folder::training_files(dir)?;
            if files.len() != loaded.train.n {
                bail!(
                    "{} changed while fitting: {} training images were loaded, {} are there now",
                    dir.display(),
                    loaded.train.n,
                    files.len()
                );
            }
            let names = task
                .train_source_indices
                .iter()
                .map(|&i| {
                    files[i]
                        .strip_prefix(dir)
                        .unwrap_or(&files[i])
                        .display()
                        .to_string()
                })
                .collect();
            (options.resize, Some(names))
        }
        _ => (ResizePolicy::Stretch, None),
    };
    let resize = resize_flag.unwrap_or(resize);
    let detector = Detector::fit(
        model,
        &task,
        DetectorFit {
            score: args.score.clone(),
            threshold,
            resize,
            batch_size: args.score_batch,
            training_names,
        },
    )?;
    detector.save(&args.out)?;
    let rec = detector.record();
    let p = rec.preprocessing;
    outln!(
        "{} ({} epochs, {:.0} s of training this session), score {}, threshold {} = {:.6} on {} \
         calibration images; input {}×{}×{} ({:?}); {} training images → {}",
        rec.method,
        rec.epochs,
        report.wall_seconds,
        rec.score,
        rec.threshold.mode(),
        rec.threshold.threshold(),
        rec.calibration.len(),
        p.height,
        p.width,
        p.channels,
        p.resize,
        detector.training_images(),
        args.out.display()
    )?;
    outln!("{}", rec.threshold.guarantee())?;
    Ok(())
}
