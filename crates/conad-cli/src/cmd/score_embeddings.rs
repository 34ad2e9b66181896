//! `conad score-embeddings`: score test embeddings against training embeddings with any scorer
//! of `conad-scorers`, write `index,score` (higher = more anomalous) and, given labels, print the
//! metrics of `conad metrics`.
use super::metrics::print_metrics;
use super::scorer_args::ScorerArgs;
use crate::output::errln;
use anyhow::{Context, Result, bail};
use clap::Args;
use conad_data::npy;
use conad_eval::Metrics;
use conad_scorers::Embeddings;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ScoreEmbeddingsArgs {
    /// Training (normal) embeddings: `.npy` float32 (N, d).
    #[arg(long)]
    pub train: PathBuf,
    /// Test embeddings: `.npy` float32 (M, d).
    #[arg(long)]
    pub test: PathBuf,
    #[command(flatten)]
    pub scorer: ScorerArgs,
    /// Output CSV: header `index,score`, one row per test embedding.
    #[arg(long)]
    pub out: PathBuf,
    /// Test labels (`.npy` integers, 1 = anomaly, 0 = normal): also print AUROC, AUPR, FPR@95.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Print the metrics as JSON.
    #[arg(long)]
    pub json: bool,
}

fn read_matrix(path: &Path, what: &str) -> Result<(Vec<f32>, usize, usize)> {
    npy::read_f32_matrix(path).with_context(|| format!("reading {what} embeddings"))
}

fn read_labels(path: &Path, expected: usize) -> Result<Vec<bool>> {
    let origin = path.display().to_string();
    let values = npy::read_array(path)
        .and_then(|a| a.into_i64(&origin))
        .with_context(|| format!("reading labels {origin}"))?;
    if values.len() != expected {
        bail!(
            "{origin} has {} labels but the test embeddings have {expected} rows",
            values.len()
        );
    }
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| match v {
            0 => Ok(false),
            1 => Ok(true),
            other => bail!(
                "{origin}: label {other} at index {i}; labels must be 0 (normal) or 1 (anomaly)"
            ),
        })
        .collect()
}

pub fn run(args: &ScoreEmbeddingsArgs) -> Result<()> {
    let config = args.scorer.config()?;
    let (train, n, d) = read_matrix(&args.train, "training")?;
    let (test, m, d_test) = read_matrix(&args.test, "test")?;
    if d != d_test {
        bail!(
            "dimension mismatch: {} has d = {d}, {} has d = {d_test}",
            args.train.display(),
            args.test.display()
        );
    }
    let labels = args
        .labels
        .as_deref()
        .map(|p| read_labels(p, m))
        .transpose()?;
    errln!(
        "scorer {}: rows L2-normalised: {}",
        config.name(),
        if config.l2_normalizes() { "on" } else { "off" }
    );
    let scorer = config
        .fit_boxed(Embeddings::new(&train, n, d)?)
        .with_context(|| format!("fitting {} on {}", config.name(), args.train.display()))?;
    let scores = scorer
        .score_batch(Embeddings::new(&test, m, d)?)
        .with_context(|| format!("scoring {}", args.test.display()))?;
    write_scores(&args.out, &scores)?;
    if let Some(labels) = labels {
        let scores64: Vec<f64> = scores.iter().map(|&s| f64::from(s)).collect();
        let metrics = Metrics::compute(&scores64, &labels)?;
        print_metrics(&metrics, args.json)?;
    }
    Ok(())
}

/// Writes the scores atomically: a failed write (full disk) leaves the previous file intact.
fn write_scores(path: &Path, scores: &[f32]) -> Result<()> {
    Ok(conad_fs::write_atomic_with(path, |w| {
        writeln!(w, "index,score")?;
        for (i, s) in scores.iter().enumerate() {
            writeln!(w, "{i},{s}")?;
        }
        Ok(())
    })?)
}
