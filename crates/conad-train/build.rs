//! Records the versions of the crates that decide a detector's numbers (candle, the GEMM, the
//! safetensors format) from the workspace's `Cargo.lock`, for `DetectorRecord::versions`:
//! `CONAD_LOCKED_VERSIONS = "candle-core 0.11.1;gemm 0.19.0;…"` (empty outside the workspace).

use std::path::PathBuf;

/// The packages whose versions a detector file records.
const RECORDED: [&str; 4] = ["candle-core", "candle-nn", "gemm", "safetensors"];

fn main() {
    // The directory cargo runs this script for, read at run time: `env!` would bake in the path
    // the script binary was compiled under, and cargo reuses a compiled build script for
    // checkouts at other paths (a CI clone, a moved workspace) — the versions then came out empty.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(PathBuf::new, PathBuf::from);
    let lock = dir.join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let mut found = Vec::new();
    // `[[package]]` blocks: `name = "…"` followed by `version = "…"`.
    let mut name: Option<&str> = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"'));
        } else if let Some(v) = line.strip_prefix("version = ")
            && let Some(n) = name.take()
            && RECORDED.contains(&n)
        {
            found.push(format!("{n} {}", v.trim_matches('"')));
        }
    }
    found.sort();
    found.dedup();
    println!("cargo:rustc-env=CONAD_LOCKED_VERSIONS={}", found.join(";"));
}
