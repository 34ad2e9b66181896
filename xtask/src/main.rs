//! `cargo xtask` — conad's task runner (rust-analyzer's xtask pattern).
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(about = "conad task runner")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand, Debug)]
enum Task {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.task {}
}
