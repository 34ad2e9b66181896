//! `conad train`: train a method on the normal images of a one-class task and write a run
//! directory (resolved `config.toml`, `task.toml`, checkpoints, `history.json`,
//! `learning_curve.json`, `report.json`, `model.safetensors`). `--method raw` trains nothing and
//! records the raw-pixel kNN floor in the same layout, so `conad eval` treats both alike.
use crate::output::{errln, outln};
use anyhow::{Context, Result, bail};
use clap::Args;
use conad_data::OneClassProtocol;
use conad_train::{
    KeParams, MethodConfig, ProgressMode, ResumePolicy, TaskRecord, TrainConfig, TrainOptions,
    method_names, train_with_options,
};
use std::path::PathBuf;

/// The training recipe: method, profile or config file, and the flags that override it
/// (shared by `conad train` and `conad fit`).
#[derive(Args, Debug, Clone)]
pub struct RecipeArgs {
    /// Method from the registry (`conad methods`); `raw` = raw-pixel kNN floor. Overrides the
    /// config file's `[method]` unless both name the same method (then the file's parameters win).
    #[arg(long)]
    pub method: Option<String>,
    /// Start from the method's preset: `budget` (CPU, equal compute across methods; the
    /// default with `--method` and no `--config`) or `paper` (the paper's recipe, for GPUs).
    #[arg(long)]
    pub profile: Option<String>,
    /// Full training config (TOML, see `conad_train::TrainConfig`); flags override its fields.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Epochs.
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Encoder width multiplier (1, 0.5, 0.25, 0.125).
    #[arg(long)]
    pub width: Option<f64>,
    /// Root seed of weights, shuffling, augmentation and the protocol's draws.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Source images per step.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Online kNN evaluation on the test split every this many epochs (0 = never).
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Worker threads (results do not depend on it).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Arithmetic of the training steps' convolutions: `f32` (default) or `bf16` (bf16 operands,
    /// f32 accumulation and weights; CPUs with AMX-BF16). Overrides the config file.
    #[arg(long)]
    pub precision: Option<conad_train::Precision>,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Dataset spec (`conad data info` syntax), e.g. `embedded:fashion-mnist`.
    #[arg(long)]
    pub data: String,
    /// Normal class label(s), comma-separated; omitted = the data set's conventional normal class
    /// (MedMNIST, image folders).
    #[arg(long = "normal-class", value_delimiter = ',')]
    pub normal_class: Vec<u32>,
    /// Contamination ratio γ of the training set (anomalies mixed into the normal images).
    #[arg(long)]
    pub contamination: Option<f64>,
    /// Knowledge encoder of `--method ke` (`clip:FILE.safetensors` or a conad run directory,
    /// as `conad ke select --encoder`): the class's transforms are
    /// chosen by `conad ke select`'s ranking on the normal training images (K = 2, severity 1,
    /// the run's seed) and recorded in the config.
    #[arg(long)]
    pub encoder: Option<String>,
    /// The run directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Start from scratch even if `--out` holds a run (default: resume it when the config
    /// matches). The old run is deleted only once the new one has been validated.
    #[arg(long)]
    pub overwrite: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn resolve_config(args: &RecipeArgs) -> Result<TrainConfig> {
    let mut config = match (&args.config, &args.method, &args.profile) {
        (Some(path), _, _) => TrainConfig::from_toml_file(path)?,
        (None, Some(method), profile) => {
            conad_train::profile(method, profile.as_deref().unwrap_or("budget"))?
        }
        (None, None, _) => bail!(
            "no method: pass --method NAME (one of {}) or --config FILE.toml with a [method] section",
            method_names().join(", ")
        ),
    };
    if let Some(name) = &args.method {
        let wanted = MethodConfig::from_name(name)?;
        if wanted.name() != config.method.name() {
            // `--config` for another method: keep its training settings, take the method's
            // default parameters.
            config.method = wanted;
        }
    }
    if args.config.is_some()
        && let Some(profile) = &args.profile
    {
        bail!(
            "--profile {profile} and --config both give the whole config; pass one of them \
             (flags such as --epochs override either)"
        );
    }
    if let Some(e) = args.epochs {
        // Explicit epochs replace a profile's view budget.
        config.epochs = e;
        config.view_budget = None;
    }
    if let Some(w) = args.width {
        config.model.width_multiplier = w;
    }
    if let Some(s) = args.seed {
        config.seed = s;
    }
    if let Some(b) = args.batch_size {
        config.batch_size = b;
    }
    if let Some(e) = args.eval_every {
        config.eval_every = e;
    }
    if args.threads.is_some() {
        config.threads = args.threads;
    }
    if let Some(p) = args.precision {
        config.precision = p;
    }
    config.validate()?;
    config.validate_for_this_machine()?;
    Ok(config)
}

/// A CLI training session: resume a run in place unless `overwrite`, progress bar on a
/// terminal, the task recorded in the run.
pub fn session_options(overwrite: bool, task: &TaskRecord) -> TrainOptions {
    TrainOptions {
        resume: if overwrite {
            ResumePolicy::Overwrite
        } else {
            ResumePolicy::IfPresent
        },
        progress: ProgressMode::Auto,
        task: Some(task.clone()),
        ..Default::default()
    }
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let mut config = resolve_config(&args.recipe)?;
    if let Some(encoder) = &args.encoder {
        let Some(params) = config.method.params::<KeParams>() else {
            bail!(
                "--encoder chooses Knowledge Exposure's transforms; the method is {} (pass --method ke)",
                config.method.name()
            );
        };
        let selection = crate::cmd::ke::select(
            encoder,
            &args.data,
            &args.normal_class,
            2,
            params.severity,
            config.seed,
            crate::cmd::ke::Solver::Auto,
        )?;
        errln!(
            "KE transforms for this class: positives {}, negatives {} (encoder: {})",
            selection
                .positives
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", "),
            selection
                .negatives
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", "),
            selection.encoder
        );
        config.method = MethodConfig::new(params.clone().with_selection(selection));
        config.validate()?;
    }
    let task_file = TaskRecord {
        data: args.data.clone(),
        protocol: OneClassProtocol {
            normal_classes: args.normal_class.clone(),
            contamination: args.contamination,
            seed: config.seed,
            ..Default::default()
        },
    };
    task_file.protocol.validate()?;
    let (_, task) = task_file.build(None)?;
    errln!(
        "{}: {} training images, {} test images ({} anomalies)",
        task.description,
        task.train.len(),
        task.test.len(),
        task.num_test_anomalies()
    );
    let options = session_options(args.overwrite, &task_file);
    let report = train_with_options(&config, &task, &args.out, &options).with_context(|| {
        format!(
            "training {} into {}",
            config.method.name(),
            args.out.display()
        )
    })?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    let fmt = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |x| format!("{x:.4}"));
    let score = report
        .history
        .evals
        .last()
        .map_or("-", |e| e.score.as_str())
        .to_string();
    outln!(
        "{} (profile {}): {} of {} epochs, loss {}, online {score} AUROC {}, AULC {}, {} img/s, {:.0} s → {}",
        report.method,
        config.profile.as_deref().unwrap_or("custom"),
        report.epochs_completed,
        report.epochs_planned,
        fmt(report.final_loss),
        fmt(report.final_auroc),
        fmt(report.aulc),
        report
            .images_per_second
            .map_or_else(|| "n/a".to_string(), |x| format!("{x:.1}")),
        report.wall_seconds,
        args.out.display()
    )?;
    Ok(())
}
