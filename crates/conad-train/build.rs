//! Records the versions of the crates that decide a detector's numbers (candle, the GEMM, the
//! safetensors format) from the workspace's `Cargo.lock`, for `DetectorRecord::versions`:
//! `CONAD_LOCKED_VERSIONS = "candle-core 0.11.1;gemm 0.19.0;…"` (empty outside the workspace).

use std::path::Path;

/// The packages whose versions a detector file records.
const RECORDED: [&str; 4] = ["candle-core", "candle-nn", "gemm", "safetensors"];

fn main() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
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
