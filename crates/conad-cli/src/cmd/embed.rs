//! `conad embed`: embed a split with a trained run (encoder features in eval mode after the run's
//! test transform; raw pixels for `--method raw` runs) and write them as a float32 `.npy`
//! matrix `N × d`, plus the labels as int64 `.npy` next to it (`FILE.labels.npy`, or
//! `--labels-out`). Both files are written atomically.
use super::eval::run_task;
use crate::output::errln;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use conad_data::{Dataset, npy};
use conad_train::load_run;
use std::path::{Path, PathBuf};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The whole training split.
    Train,
    /// The validation split (MedMNIST only).
    Val,
    /// The whole test split.
    Test,
    /// The run's one-class training set (its normal images, plus contaminants if any).
    Normal,
}

#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// Run directory written by `conad train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Dataset spec; default: the one the run was trained on (`RUN/task.toml`).
    #[arg(long)]
    pub data: Option<String>,
    /// Which images.
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    /// Output `.npy` (float32, N × d).
    #[arg(long)]
    pub out: PathBuf,
    /// Output of the labels (int64 `.npy`); default `OUT_STEM.labels.npy` beside `--out`
    /// (required when `--out` is not a regular file, e.g. `/dev/stdout`).
    #[arg(long)]
    pub labels_out: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
}

/// `--labels-out`, or `STEM.labels.npy` beside a regular `--out` (never beside a device: the
/// labels of `--out /dev/null` must not become `/dev/null.labels.npy`).
fn labels_path(out: &Path, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if std::fs::metadata(out).is_ok_and(|m| !m.is_file()) {
        bail!(
            "--out {} is not a regular file, so the labels have no place beside it; name them \
             with --labels-out FILE.npy",
            out.display()
        );
    }
    let stem = out
        .file_stem()
        .map_or_else(|| "embeddings".into(), |s| s.to_string_lossy().into_owned());
    Ok(out.with_file_name(format!("{stem}.labels.npy")))
}

pub fn run(args: &EmbedArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be ≥ 1");
    }
    let lpath = labels_path(&args.out, args.labels_out.as_deref())?;
    let model = load_run(&args.run)?;
    let task_file = run_task(&model, &args.run)?;
    let images: Dataset = if args.split == Split::Normal {
        let train = task_file.build(args.data.as_deref())?.1.train;
        model.check_training_data(&train)?;
        train
    } else {
        let data = task_file.load(args.data.as_deref())?;
        match args.split {
            Split::Train | Split::Normal => data.train,
            Split::Test => data.test,
            Split::Val => data.val.with_context(|| {
                format!(
                    "{} has no validation split (only MedMNIST has one)",
                    data.source
                )
            })?,
        }
    };
    let emb = model
        .embed(&images, args.batch_size)
        .with_context(|| format!("embedding {} images", images.len()))?;
    // Labels first, embeddings last: new embeddings never appear before their labels are in
    // place. (Both writes are atomic and name their file in errors.)
    let labels: Vec<i64> = images.labels.iter().map(|&l| i64::from(l)).collect();
    npy::write_i64_vector(&lpath, &labels)?;
    npy::write_f32_matrix(&args.out, emb.as_slice(), emb.rows(), emb.cols())?;
    errln!(
        "wrote {} × {} embeddings to {} and their labels to {}",
        emb.rows(),
        emb.cols(),
        args.out.display(),
        lpath.display()
    );
    Ok(())
}
