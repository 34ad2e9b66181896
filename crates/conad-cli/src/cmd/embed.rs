//! `conad embed`: embed a split with a trained run (encoder features in eval mode after the run's
//! test transform; raw pixels for `--method raw` runs) and write them as a float32 `.npy`
//! matrix `N × d`, plus the labels as int64 `.npy` next to it (`FILE.labels.npy`).
use super::task_file::TaskFile;
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
    /// Images per forward pass.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
}

fn labels_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(|| "embeddings".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}.labels.npy"))
}

pub fn run(args: &EmbedArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be ≥ 1");
    }
    let task_file = TaskFile::read(&args.run)?;
    let model = load_run(&args.run)?;
    let images: Dataset = if args.split == Split::Normal {
        task_file.build(args.data.as_deref())?.1.train
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
    npy::write_f32_matrix(&args.out, emb.as_slice(), emb.rows(), emb.cols())
        .with_context(|| format!("writing {}", args.out.display()))?;
    let labels: Vec<i64> = images.labels.iter().map(|&l| i64::from(l)).collect();
    let lpath = labels_path(&args.out);
    npy::write_i64_vector(&lpath, &labels)
        .with_context(|| format!("writing {}", lpath.display()))?;
    eprintln!(
        "wrote {} × {} embeddings to {} and their labels to {}",
        emb.rows(),
        emb.cols(),
        args.out.display(),
        lpath.display()
    );
    Ok(())
}
