//! `conad ke select`: Knowledge Exposure's per-class ranking of the transformation bank by the
//! Wasserstein distance between the normal training images and their transformed copies in a
//! knowledge encoder's space (docs/reference.md §1.7, §6.12).
use crate::output::{errln, outln};
use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use conad_data::OneClassProtocol;
use conad_scorers::WassersteinMethod;
use conad_train::TaskRecord;
use conad_train::ke::{KeSelection, load_knowledge_encoder, select_transforms};

#[derive(Subcommand, Debug)]
pub enum KeCommand {
    /// Rank the 10 transforms for a normal class: W_i, positives (nearest K) and negatives
    /// (farthest K).
    Select(SelectArgs),
}

/// How W1 is computed.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Solver {
    /// Exact assignment up to 2000 images, Sinkhorn (ε 0.05) above.
    Auto,
    /// Exact assignment (any size; O(n³)).
    Exact,
    /// Entropic Sinkhorn, ε 0.05.
    Sinkhorn,
}

#[derive(Args, Debug)]
pub struct SelectArgs {
    /// Knowledge encoder: `clip:FILE.safetensors` (CLIP's image tower under Hugging Face's
    /// names, e.g. openai/clip-vit-base-patch32's model.safetensors with its config.json beside
    /// it) or a conad run directory.
    #[arg(long)]
    pub encoder: String,
    /// Dataset spec (`conad data info` syntax).
    #[arg(long)]
    pub data: String,
    /// Normal class label(s), comma-separated.
    #[arg(long = "normal-class", value_delimiter = ',')]
    pub normal_class: Vec<u32>,
    /// K positives and K negatives (KE: 2).
    #[arg(long, default_value_t = 2)]
    pub k: usize,
    /// Severity of the transformed sets (KE trains at 1).
    #[arg(long, default_value_t = 1)]
    pub severity: u8,
    /// Seed of the transformed sets.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// W1 solver.
    #[arg(long, value_enum, default_value_t = Solver::Auto)]
    pub solver: Solver,
    /// Print the selection as JSON.
    #[arg(long)]
    pub json: bool,
}

fn method(solver: Solver) -> WassersteinMethod {
    match solver {
        Solver::Auto => WassersteinMethod::default(),
        Solver::Exact => WassersteinMethod::Exact,
        Solver::Sinkhorn => WassersteinMethod::Sinkhorn {
            epsilon: 0.05,
            max_iterations: 10_000,
            tolerance: 1e-6,
        },
    }
}

/// The selection for the normal training images of `data` / `normal_class`.
pub fn select(
    encoder: &str,
    data: &str,
    normal_class: &[u32],
    k: usize,
    severity: u8,
    seed: u64,
    solver: Solver,
) -> Result<KeSelection> {
    let record = TaskRecord {
        data: data.to_string(),
        protocol: OneClassProtocol {
            normal_classes: normal_class.to_vec(),
            seed,
            ..Default::default()
        },
    };
    record.protocol.validate()?;
    let (_, task) = record.build(None)?;
    let encoder = load_knowledge_encoder(encoder)
        .with_context(|| format!("loading the knowledge encoder {encoder}"))?;
    errln!(
        "ranking 10 transforms on {} ({} images) ...",
        task.description,
        task.train.len()
    );
    Ok(select_transforms(
        encoder.as_ref(),
        &task.train,
        k,
        severity,
        seed,
        method(solver),
    )?)
}

pub fn run(cmd: &KeCommand) -> Result<()> {
    match cmd {
        KeCommand::Select(args) => {
            let s = select(
                &args.encoder,
                &args.data,
                &args.normal_class,
                args.k,
                args.severity,
                args.seed,
                args.solver,
            )?;
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&s)?)?;
                return Ok(());
            }
            outln!("encoder: {}", s.encoder)?;
            outln!(
                "{} images, severity {}, seed {}",
                s.images,
                s.severity,
                s.seed
            )?;
            outln!("| rank | transform | W1 | solver | role |")?;
            outln!("|---:|---|---:|---|---|")?;
            for (i, r) in s.ranking.iter().enumerate() {
                let role = if s.positives.contains(&r.transform) {
                    "positive"
                } else if s.negatives.contains(&r.transform) {
                    "negative"
                } else {
                    ""
                };
                outln!(
                    "| {} | {} | {:.4} | {} | {role} |",
                    i + 1,
                    r.transform,
                    r.distance,
                    if r.exact { "exact" } else { "sinkhorn" }
                )?;
            }
            Ok(())
        }
    }
}
