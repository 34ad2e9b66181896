//! `conad data info SPEC`: per-split, per-class counts, image shape and channels.
use crate::output::outln;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use conad_data::{DataSpec, DatasetInfo};

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Print per-split, per-class counts, image shape and channels of a dataset.
    Info(InfoArgs),
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Dataset spec, e.g. `embedded:fashion-mnist`, `fashion-mnist:DIR`, `cifar10:DIR`,
    /// `cifar100:DIR`, `medmnist:FILE.npz`, `folder:DIR`.
    pub spec: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Info(args) => info(&args),
    }
}

fn info(args: &InfoArgs) -> Result<()> {
    let spec: DataSpec = args.spec.parse()?;
    let data = spec
        .load()
        .with_context(|| format!("loading {}", args.spec))?;
    let info = DatasetInfo::of(&data);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&info)?)?;
    } else {
        crate::output::write_stdout(format_args!("{info}"))?;
    }
    Ok(())
}
