//! `cargo xtask` — conad's task runner (the rust-analyzer xtask pattern: a cargo alias, one module
//! per task, minimal dependencies, JSON + Markdown results under `target/`).
//!
//! Tasks:
//! - `cargo xtask bench <name>` — side-by-side benchmarks against the reference implementations
//!   (see [`mod@bench`]).
//! - `cargo xtask demo` — the README's main command: SupCon* (budget profile) on the embedded
//!   Fashion-MNIST subset next to the raw-pixel kNN floor (see [`demo`]).
//! - `cargo xtask reproduce --suite NAME` — methods × classes × seeds through the library,
//!   resumable, results committed under `results/` (see [`reproduce`]).
//! - `cargo xtask fixtures` — regenerate `fixtures/` with `fixtures/generate.py`.
//! - `cargo xtask check-cuda` — compile every CUDA kernel to PTX and SASS without a GPU.

mod bench;
mod check_cuda;
mod demo;
mod fixtures;
mod reproduce;
mod tidy;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(about = "conad task runner", long_about = None)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand, Debug)]
enum Task {
    /// Run a benchmark side by side with its reference (PyTorch, numpy, sklearn, faiss).
    Bench(bench::BenchArgs),
    /// Train SupCon* (budget profile) on the embedded Fashion-MNIST subset and compare it with
    /// raw-pixel kNN.
    Demo(demo::DemoArgs),
    /// Run a reproduction suite (methods × classes × seeds) and write its report.
    Reproduce(reproduce::ReproduceArgs),
    /// Regenerate the files under `fixtures/` (needs Debian's python3-numpy, python3-pil and
    /// dataset-fashion-mnist).
    Fixtures,
    /// Compile every CUDA kernel with NVRTC (compute_80/90) and ptxas (sm_80/90); no GPU needed.
    CheckCuda,
}

/// Large blocks (activations, gradients) on transparent huge pages (conad-engine's
/// `HugePageAlloc`; width-1 training steps measured 3–10 % faster).
#[global_allocator]
static ALLOC: conad_train::HugePageAlloc = conad_train::HugePageAlloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = util::project_root();
    std::env::set_current_dir(&root)?;
    match cli.task {
        Task::Bench(args) => bench::run(&root, args),
        Task::Demo(args) => demo::run(&root, &args),
        Task::Reproduce(args) => reproduce::run(&root, &args),
        Task::Fixtures => fixtures::run(&root),
        Task::CheckCuda => check_cuda::run(&root),
    }
}
