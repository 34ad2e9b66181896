//! `cargo xtask bench <name>`: side-by-side benchmarks.
//!
//! Every benchmark is a Rust example (`crates/<crate>/examples/bench_<name>.rs`) and, where a
//! reference exists, a Python script (`xtask/scripts/bench_<name>.py`) measuring the same work.
//! Both print one JSON object per measured case on stdout
//! (`{"bench", "case", "impl", "seconds", …extra numeric fields}`). The runner builds the example
//! once, then runs conad and each reference alternately (`conad, ref, conad, ref, …`, the machine
//! is noisy), takes medians per (case, impl), prints a Markdown table, writes
//! `target/bench/<name>/results.{json,md}` and ends with the benchmark's headline line
//! (e.g. `knn_ratio conad/numpy = X`, X = reference time / conad time, geometric mean over cases).

mod augment;
mod auroc;
mod conv;
mod epoch;
mod infonce;
mod load;
mod runner;
mod score;
mod scorers;
mod train;

use anyhow::Result;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Which benchmark to run.
    #[arg(value_enum)]
    pub name: BenchName,
    /// Alternating rounds (each round runs conad once and every reference once).
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Tiny sizes: a smoke test of the benchmark programs, not a measurement.
    #[arg(long)]
    pub quick: bool,
    /// Data directory for benchmarks that read real data (e.g. the Fashion-MNIST IDX directory).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Training arithmetic for `train` and `epoch`: bf16 runs conad's `precision = "bf16"`
    /// against PyTorch's CPU bf16 autocast (needs a CPU with AMX-BF16).
    #[arg(long, value_enum, default_value_t = BenchPrecision::F32)]
    pub precision: BenchPrecision,
}

/// `--precision` of `cargo xtask bench train|epoch`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchPrecision {
    /// f32 on both sides.
    F32,
    /// conad `precision = "bf16"` vs PyTorch CPU bf16 autocast.
    Bf16,
}

impl BenchPrecision {
    /// The value passed to the benchmark programs' `--precision`.
    pub fn name(self) -> &'static str {
        match self {
            BenchPrecision::F32 => "f32",
            BenchPrecision::Bf16 => "bf16",
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum BenchName {
    /// AUROC over 10^7 scores: conad-eval vs sklearn `roc_auc_score`.
    Auroc,
    /// SimCLR augmentation throughput (32×32 RGB) vs torchvision.
    Augment,
    /// Per-layer ResNet-18 convolution speed (forward, grad-input, grad-weight) vs PyTorch.
    Conv,
    /// Whole SimCLR epochs on BreastMNIST (width 1/4, batch 64 × 2) vs PyTorch + torchvision + DataLoader.
    Epoch,
    /// Fused InfoNCE (conad-kernels) vs the same loss composed from candle ops (conad-losses).
    Infonce,
    /// Loading all of Fashion-MNIST (70,000 images) with conad-data.
    Load,
    /// Scoring images with a ResNet-18 detector (latency, throughput; 28, 32, 224 px) vs PyTorch.
    Score,
    /// kNN max-cosine (50,000 × 512 bank, 10,000 queries) vs numpy + OpenBLAS and faiss; S_LH fit.
    Scorers,
    /// One ResNet-18 SimCLR training step (B = 32 × 2 views) vs PyTorch, four configurations.
    Train,
}

pub fn run(root: &Path, args: BenchArgs) -> Result<()> {
    let spec = match args.name {
        BenchName::Augment => augment::spec(root, &args),
        BenchName::Auroc => auroc::spec(root, &args),
        BenchName::Conv => conv::spec(root, &args),
        BenchName::Epoch => epoch::spec(root, &args),
        BenchName::Infonce => infonce::spec(root, &args),
        BenchName::Load => load::spec(root, &args)?,
        BenchName::Score => score::spec(root, &args),
        BenchName::Scorers => scorers::spec(root, &args),
        BenchName::Train => train::spec(root, &args),
    };
    runner::run(root, &spec, &args)
}
