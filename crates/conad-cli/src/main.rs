//! `conad` — contrastive anomaly detection from the command line.
//!
//! Errors end the process with exit code 2 and one line on stderr that names the cause
//! (`conad: <what went wrong>: <why>`); a closed stdout pipe ends it quietly with 0
//! ([`output`]).

mod cmd;
mod output;
mod png;
mod report;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "conad",
    version,
    about = "Contrastive anomaly detection: train on normal images, score, evaluate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Inspect a dataset.
    #[command(subcommand)]
    Data(cmd::data::DataCommand),
    /// AUROC, AUPR and FPR at 95 % TPR from a CSV of scores and labels.
    Metrics(cmd::metrics::MetricsArgs),
    /// Score test embeddings against training embeddings with any scorer of conad-scorers.
    ScoreEmbeddings(cmd::score_embeddings::ScoreEmbeddingsArgs),
    /// Train a method on the normal images of a one-class task; writes a run directory.
    Train(cmd::train::TrainArgs),
    /// Embed a split with a trained run; writes `.npy` embeddings and labels.
    Embed(cmd::embed::EmbedArgs),
    /// Score a run's test split against its normal training images: AUROC as JSON, Markdown, ROC PNG.
    Eval(cmd::eval::EvalArgs),
    /// Fit a detector on normal images: train (holding out calibration images), calibrate the
    /// threshold, write ONE self-contained detector file (default method: supcon, budget).
    Fit(cmd::fit::FitArgs),
    /// Score image files and folders with a detector file: per-image CSV, optional HTML report.
    Score(cmd::score::ScoreArgs),
    /// Knowledge Exposure tools: `conad ke select` ranks the transformation bank for a class.
    #[command(subcommand)]
    Ke(cmd::ke::KeCommand),
    /// List the methods conad can train (and, with --scores, their test-time scores).
    Methods(cmd::methods::MethodsArgs),
}

/// Runs candle's own element-wise CPU ops on the calling thread unless the user sized its pool.
///
/// The heavy work of training and embedding runs in `conad-engine`'s kernels on rayon's pool;
/// candle's separate barrier pool only serves the small head/loss/optimizer ops, and its workers
/// spin for 25 000 iterations after every op, taking a core from the engine's GEMMs (4–5 % of a
/// training step on 2 cores, `perf`). Candle reads the variable once, at its first CPU op.
fn single_thread_candle_pool() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: called first thing in `main`, before any other thread exists, so nothing can
        // read the environment concurrently.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
}

/// Large blocks (activations, gradients) on transparent huge pages (conad-engine's
/// `HugePageAlloc`; width-1 training steps measured 3–10 % faster).
#[global_allocator]
static ALLOC: conad_train::HugePageAlloc = conad_train::HugePageAlloc;

fn main() {
    single_thread_candle_pool();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CONAD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(c) => cmd::data::run(c),
        Command::Metrics(a) => cmd::metrics::run(&a),
        Command::ScoreEmbeddings(a) => cmd::score_embeddings::run(&a),
        Command::Train(a) => cmd::train::run(&a),
        Command::Embed(a) => cmd::embed::run(&a),
        Command::Eval(a) => cmd::eval::run(&a),
        Command::Fit(a) => cmd::fit::run(&a),
        Command::Score(a) => cmd::score::run(&a),
        Command::Ke(c) => cmd::ke::run(&c),
        Command::Methods(a) => cmd::methods::run(&a),
    };
    std::process::exit(output::exit_status(result));
}
