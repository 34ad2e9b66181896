//! `cargo xtask` — conad's task runner (the rust-analyzer xtask pattern: a cargo alias, one module
//! per task, minimal dependencies, JSON + Markdown results under `target/`).
//!
//! Tasks:
//! - `cargo xtask bench <name>` — side-by-side benchmarks against the reference implementations
//!   (see [`bench`]).
//! - `cargo xtask fixtures` — regenerate `fixtures/` with `fixtures/generate.py`.

mod bench;
mod fixtures;
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
    /// Regenerate the files under `fixtures/` (needs Debian's python3-numpy, python3-pil and
    /// dataset-fashion-mnist).
    Fixtures,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = util::project_root();
    std::env::set_current_dir(&root)?;
    match cli.task {
        Task::Bench(args) => bench::run(&root, args),
        Task::Fixtures => fixtures::run(&root),
    }
}
