//! `conad methods [--scores]`: the method registry (names, aliases, one-line summaries) and,
//! with `--scores`, every test-time score each method offers (paper score first).
use crate::output::outln;
use anyhow::Result;
use clap::Args;
use conad_train::METHODS;

#[derive(Args, Debug)]
pub struct MethodsArgs {
    /// Also list each method's scores (`conad eval --score NAME`), the paper's score first.
    #[arg(long)]
    pub scores: bool,
}

pub fn run(args: &MethodsArgs) -> Result<()> {
    for m in METHODS {
        let aliases = if m.aliases.is_empty() {
            String::new()
        } else {
            format!(" (alias: {})", m.aliases.join(", "))
        };
        outln!("{:<12} {}{aliases}", m.name, m.summary)?;
        if args.scores {
            for (i, s) in m.default_config().scores().iter().enumerate() {
                let mark = if i == 0 { "paper" } else { "" };
                outln!("    {:<14} {mark:<6} {}", s.name, s.summary)?;
            }
        }
    }
    Ok(())
}
