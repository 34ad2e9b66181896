//! `conad eval --run RUN_DIR`: rebuild the run's one-class task (`RUN/task.toml`), fit the
//! method's test-time score on its normal training images with the trained model (encoder and
//! heads, eval mode) and score the test split — the same library code as the trainer's online
//! evaluation (`conad_train::FittedScore`). Default: the method's paper score; `--score NAME` picks
//! any score the method lists (`conad methods --scores`). Writes `metrics.json` (AUROC, AUPR,
//! FPR@95, the score, the profile, epochs and training seconds), `metrics.md`, `roc.png` and
//! `scores.csv` (`index,class,label,score`, label 1 = anomaly: `conad metrics` reads it) to
//! `RUN/eval/` (or `--out`). Anomalies are the positive class; higher score =
//! more anomalous.
use crate::output::outln;
use anyhow::{Context, Result};
use clap::Args;
use conad_eval::{DropIntermediate, Metrics, PlotOptions, RocSeries, plot_roc, roc_curve};
use conad_train::load_run;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run directory written by `conad train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Dataset spec; default: the one the run was trained on.
    #[arg(long)]
    pub data: Option<String>,
    /// The method's score to use (default: its paper score; `conad methods --scores` lists
    /// them, e.g. `knn`, `rot_knn` = FIRM's S_rot, `csi`, `nnd`).
    #[arg(long)]
    pub score: Option<String>,
    /// Output directory (default `RUN/eval`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `metrics.json`.
#[derive(Debug, Serialize)]
pub struct EvalReport {
    pub run: PathBuf,
    pub method: String,
    pub epochs: u64,
    pub data: String,
    pub task: String,
    pub normal_classes: Vec<u32>,
    pub score: String,
    pub profile: Option<String>,
    pub training_seconds: Option<f64>,
    pub embedding_dim: usize,
    pub n_train: usize,
    pub n_test: usize,
    pub n_test_anomalies: usize,
    #[serde(flatten)]
    pub metrics: Metrics,
}

impl EvalReport {
    fn to_markdown(&self) -> String {
        format!(
            "# conad eval — {method} on {task}\n\n\
             | method | profile | epochs | training s | score | d | train | test (anomalies) | AUROC | AUPR | FPR@95TPR |\n\
             |---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|\n\
             | {method} | {profile} | {epochs} | {seconds} | {score} | {d} | {n_train} | {n_test} ({n_anom}) | {auroc:.4} | {aupr:.4} | {fpr:.4} |\n\n\
             Run: `{run}`; data: `{data}`. Anomalies are positives; higher score = more anomalous.\n",
            method = self.method,
            task = self.task,
            epochs = self.epochs,
            score = self.score,
            profile = self.profile.as_deref().unwrap_or("custom"),
            seconds = self
                .training_seconds
                .map_or_else(|| "n/a".to_string(), |s| format!("{s:.0}")),
            d = self.embedding_dim,
            n_train = self.n_train,
            n_test = self.n_test,
            n_anom = self.n_test_anomalies,
            auroc = self.metrics.auroc,
            aupr = self.metrics.aupr,
            fpr = self.metrics.fpr_at_95_tpr,
            run = self.run.display(),
            data = self.data,
        )
    }
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    Ok(conad_fs::write_atomic(path, text.as_bytes())?)
}

fn write_scores(path: &Path, scores: &[f64], labels: &[bool], classes: &[u32]) -> Result<()> {
    Ok(conad_fs::write_atomic_with(path, |w| {
        // `label` is the anomaly flag, as `conad metrics` reads it; `class` the original label.
        writeln!(w, "index,class,label,score")?;
        for (i, ((s, a), c)) in scores.iter().zip(labels).zip(classes).enumerate() {
            writeln!(w, "{i},{c},{},{s}", u8::from(*a))?;
        }
        Ok(())
    })?)
}

/// The run's task record (checked against its weights by `load_run`).
pub(crate) fn run_task<'m>(
    model: &'m conad_train::TrainedModel,
    run: &Path,
) -> Result<&'m conad_train::TaskRecord> {
    model.task().with_context(|| {
        format!(
            "{} records no task (trained through the library without a TaskRecord); \
             `conad eval` and `conad embed` need the data and protocol of `conad train`",
            run.display()
        )
    })
}

/// Seconds the run spent in training steps (all sessions), from `RUN/history.json`.
fn training_seconds(run: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(run.join(conad_train::run_dir::HISTORY_FILE)).ok()?;
    let history: conad_train::History = serde_json::from_str(&text).ok()?;
    Some(history.epochs.iter().fold(0.0, |acc, e| acc + e.seconds))
}

pub fn run(args: &EvalArgs) -> Result<()> {
    anyhow::ensure!(args.batch_size >= 1, "--batch-size must be ≥ 1");
    let model = load_run(&args.run)?;
    let (loaded, task) = run_task(&model, &args.run)?.build(args.data.as_deref())?;
    model.check_training_data(&task.train)?;
    let detector = model
        .fit_named_score(args.score.as_deref(), &task.train, args.batch_size)
        .context("fitting the score on the normal training images")?;
    let scores = model
        .score(&detector, &task.test, args.batch_size)
        .context("scoring the test split")?;
    let embedding_dim = detector.embedding_dim;
    let metrics = Metrics::compute(&scores, &task.test_is_anomaly)?;
    let report = EvalReport {
        run: args.run.clone(),
        method: model.config().method.name().to_string(),
        epochs: model.epochs(),
        data: loaded.source.clone(),
        task: task.description.clone(),
        normal_classes: task.normal_classes.clone(),
        score: detector.score.clone(),
        profile: model.config().profile.clone(),
        training_seconds: training_seconds(&args.run),
        embedding_dim,
        n_train: task.train.len(),
        n_test: task.test.len(),
        n_test_anomalies: task.num_test_anomalies(),
        metrics,
    };
    let out = args.out.clone().unwrap_or_else(|| args.run.join("eval"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // metrics.json last: whoever reads it finds the scores, ROC and Markdown of the same eval.
    write_text(&out.join("metrics.md"), &report.to_markdown())?;
    write_scores(
        &out.join("scores.csv"),
        &scores,
        &task.test_is_anomaly,
        &task.test.labels,
    )?;
    let curve = roc_curve(&scores, &task.test_is_anomaly, DropIntermediate::Collinear)?;
    let label = format!("{} ({})", report.method, report.score);
    plot_roc(
        out.join("roc.png"),
        &[RocSeries {
            label: &label,
            curve: &curve,
        }],
        &PlotOptions {
            title: Some(format!("ROC — {}", report.task)),
            ..Default::default()
        },
    )?;
    write_text(
        &out.join("metrics.json"),
        &(serde_json::to_string_pretty(&report)? + "\n"),
    )?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        outln!(
            "{} [{}] ({} epochs, profile {}) on {}: AUROC {:.4}, AUPR {:.4}, FPR@95TPR {:.4} → {}",
            report.method,
            report.score,
            report.epochs,
            report.profile.as_deref().unwrap_or("custom"),
            report.task,
            report.metrics.auroc,
            report.metrics.aupr,
            report.metrics.fpr_at_95_tpr,
            out.display()
        )?;
    }
    Ok(())
}
