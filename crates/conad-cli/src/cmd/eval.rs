//! `conad eval --run RUN_DIR`: rebuild the run's one-class task (`RUN/task.toml`), embed its
//! normal training images and its test split with the trained encoder (eval mode, the run's test
//! transform), score the test images with a scorer of conad-scorers (default: max-cosine kNN,
//! METHODS §2.2) and write `metrics.json`, `metrics.md`, `roc.png` and `scores.csv` to
//! `RUN/eval/` (or `--out`). Anomalies are the positive class; higher score = more anomalous.
//! `--rotation-ensemble` is FIRM's S_rot (METHODS §2.3): for each of the four rotations, rotate
//! the training and test images, score the rotated test images against the same-rotation
//! training bank, and average the four scores (meant for models trained with rotated copies).
use super::scorer_args::ScorerArgs;
use super::task_file::TaskFile;
use anyhow::{Context, Result};
use clap::Args;
use conad_data::Dataset;
use conad_eval::{DropIntermediate, Metrics, PlotOptions, RocSeries, plot_roc, roc_curve};
use conad_train::load_run;
use serde::Serialize;
use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run directory written by `conad train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Dataset spec; default: the one the run was trained on.
    #[arg(long)]
    pub data: Option<String>,
    #[command(flatten)]
    pub scorer: ScorerArgs,
    /// Average the score over the four rotations, each against the same-rotation training bank
    /// (FIRM's S_rot, METHODS §2.3).
    #[arg(long)]
    pub rotation_ensemble: bool,
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
    pub scorer: String,
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
             | method | epochs | scorer | d | train | test (anomalies) | AUROC | AUPR | FPR@95TPR |\n\
             |---|---:|---|---:|---:|---:|---:|---:|---:|\n\
             | {method} | {epochs} | {scorer} | {d} | {n_train} | {n_test} ({n_anom}) | {auroc:.4} | {aupr:.4} | {fpr:.4} |\n\n\
             Run: `{run}`; data: `{data}`. Anomalies are positives; higher score = more anomalous.\n",
            method = self.method,
            task = self.task,
            epochs = self.epochs,
            scorer = self.scorer,
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
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn write_scores(path: &Path, scores: &[f64], labels: &[bool], classes: &[u32]) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    writeln!(w, "index,label,is_anomaly,score")?;
    for (i, ((s, a), c)) in scores.iter().zip(labels).zip(classes).enumerate() {
        writeln!(w, "{i},{c},{},{s}", u8::from(*a))?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// `d` turned `k` quarter turns; rotation 0 borrows the images instead of copying them.
fn rotated(d: &Dataset, k: u8) -> Cow<'_, Dataset> {
    if k == 0 {
        Cow::Borrowed(d)
    } else {
        Cow::Owned(d.rot90(k))
    }
}

pub fn run(args: &EvalArgs) -> Result<()> {
    anyhow::ensure!(args.batch_size >= 1, "--batch-size must be ≥ 1");
    let scorer_config = args.scorer.config()?;
    let task_file = TaskFile::read(&args.run)?;
    let (loaded, task) = task_file.build(args.data.as_deref())?;
    let model = load_run(&args.run)?;
    let turns: &[u8] = if args.rotation_ensemble {
        &[0, 1, 2, 3]
    } else {
        &[0]
    };
    let mut scores = vec![0f64; task.test.len()];
    let mut embedding_dim = 0;
    for &k in turns {
        let what = if k == 0 {
            String::new()
        } else {
            format!(" rotated by {}°", 90 * u32::from(k))
        };
        let train = model
            .embed(&rotated(&task.train, k), args.batch_size)
            .with_context(|| format!("embedding the normal training images{what}"))?;
        let test = model
            .embed(&rotated(&task.test, k), args.batch_size)
            .with_context(|| format!("embedding the test split{what}"))?;
        let scorer = scorer_config
            .fit_boxed(train.view())
            .with_context(|| format!("fitting {}{what}", scorer_config.name()))?;
        let part = scorer
            .score_batch(test.view())
            .with_context(|| format!("scoring the test split{what}"))?;
        for (s, p) in scores.iter_mut().zip(part) {
            *s += f64::from(p) / turns.len() as f64;
        }
        embedding_dim = train.cols();
    }
    let metrics = Metrics::compute(&scores, &task.test_is_anomaly)?;
    let report = EvalReport {
        run: args.run.clone(),
        method: model.config().method.name().to_string(),
        epochs: model.epochs(),
        data: loaded.source.clone(),
        task: task.description.clone(),
        normal_classes: task.normal_classes.clone(),
        scorer: if args.rotation_ensemble {
            format!("{} (rotation ensemble)", scorer_config.name())
        } else {
            scorer_config.name().to_string()
        },
        embedding_dim,
        n_train: task.train.len(),
        n_test: task.test.len(),
        n_test_anomalies: task.num_test_anomalies(),
        metrics,
    };
    let out = args.out.clone().unwrap_or_else(|| args.run.join("eval"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    write_text(
        &out.join("metrics.json"),
        &(serde_json::to_string_pretty(&report)? + "\n"),
    )?;
    write_text(&out.join("metrics.md"), &report.to_markdown())?;
    write_scores(
        &out.join("scores.csv"),
        &scores,
        &task.test_is_anomaly,
        &task.test.labels,
    )?;
    let curve = roc_curve(&scores, &task.test_is_anomaly, DropIntermediate::Collinear)?;
    let label = format!("{} ({})", report.method, report.scorer);
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
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} ({} epochs) on {}: AUROC {:.4}, AUPR {:.4}, FPR@95TPR {:.4} → {}",
            report.method,
            report.epochs,
            report.task,
            report.metrics.auroc,
            report.metrics.aupr,
            report.metrics.fpr_at_95_tpr,
            out.display()
        );
    }
    Ok(())
}
