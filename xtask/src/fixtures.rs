//! `cargo xtask fixtures`: regenerate `fixtures/` deterministically with `fixtures/generate.py`.
use crate::util::run_status;
use anyhow::Result;
use std::path::Path;
use std::process::Command;

pub fn run(root: &Path) -> Result<()> {
    run_status(Command::new("/usr/bin/python3").arg(root.join("fixtures/generate.py")))
}
