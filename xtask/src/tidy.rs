//! The repository's conventions, enforced as tests (run by `cargo test --workspace`), in the
//! manner of rust-analyzer's `xtask/src/tidy.rs`: what docs/architecture.md states as rules is
//! checked here, so a change that breaks one fails CI instead of drifting from the prose.
//!
//! - every Rust source file opens with a `//!` module doc;
//! - every `unsafe` block, function or impl has a `SAFETY:` comment (or a `# Safety` doc section)
//!   just above it (or, for a trait method of an `unsafe impl`, as its first line);
//! - workspace crates depend only on crates of lower layers ([`LAYERS`]);
//! - `conad-scorers` and `conad-eval` stay free of candle, dev-dependencies included;
//! - every public error type is `#[non_exhaustive]`, and a bad config field has one shape in
//!   every crate (`InvalidConfig { field, value, reason }`, one message format);
//! - every `MethodParams` type is registered in the `METHODS` table;
//! - the `conad` binary never prints with `println!`/`eprintln!` (they panic on a closed pipe).

#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer of every workspace crate: a crate may depend only on crates of lower layers.
const LAYERS: &[(&str, u8)] = &[
    ("conad-rng", 0),
    ("conad-fs", 0),
    ("conad-data", 1),
    ("conad-augment", 1),
    ("conad-scorers", 1),
    ("conad-eval", 1),
    ("conad-engine", 1),
    ("conad-kernels", 1),
    ("conad-models", 2),
    ("conad-losses", 2),
    ("conad-train", 3),
    ("conad-cli", 4),
    ("xtask", 4),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

/// Every `.rs` file under the workspace's crates and xtask (not `target/`).
fn rust_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "target") {
                    walk(&p, out);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("crates"), &mut out);
    walk(&root().join("xtask/src"), &mut out);
    out.sort();
    assert!(out.len() > 100, "found only {} source files", out.len());
    out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// The code part of a line (before a `//` comment; good enough for these checks).
fn code_of(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    let missing: Vec<String> = rust_files()
        .into_iter()
        .filter(|p| {
            !std::fs::read_to_string(p)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .map(|p| rel(&p))
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` module doc: {missing:#?}"
    );
}

#[test]
fn every_unsafe_has_a_safety_comment() {
    let mut missing = Vec::new();
    for p in rust_files() {
        if p.ends_with("xtask/src/tidy.rs") {
            continue; // names the keyword in strings
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = code_of(line);
            let uses_unsafe = code
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|w| w == "unsafe");
            // Lint names and function-pointer types are not unsafe code.
            if !uses_unsafe
                || code.contains("unsafe_op_in_unsafe_fn")
                || code.contains("unsafe fn(")
            {
                continue;
            }
            let context = &lines[i.saturating_sub(8)..(i + 2).min(lines.len())];
            if !context
                .iter()
                .any(|l| l.contains("SAFETY") || l.contains("# Safety"))
            {
                missing.push(format!("{}:{}: {}", rel(&p), i + 1, line.trim()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "`unsafe` without a SAFETY comment in the 8 lines above (or the line below): {missing:#?}"
    );
}

/// `[dependencies]` (and `[build-dependencies]`) of a manifest: the workspace crates named.
fn normal_workspace_deps(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    ["dependencies", "build-dependencies"]
        .iter()
        .filter_map(|k| table.get(*k).and_then(|v| v.as_table()))
        .flat_map(|t| t.keys().cloned())
        .filter(|k| k.starts_with("conad-"))
        .collect()
}

#[test]
fn no_crate_depends_upward() {
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("Cargo.toml"))
        .filter(|p| p.is_file())
        .collect();
    manifests.push(root().join("xtask/Cargo.toml"));
    let mut violations = Vec::new();
    for m in &manifests {
        let text = std::fs::read_to_string(m).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let name = table["package"]["name"].as_str().unwrap().to_string();
        let Some(&own) = layer.get(name.as_str()) else {
            violations.push(format!("{name} has no layer in tidy::LAYERS"));
            continue;
        };
        for dep in normal_workspace_deps(m) {
            match layer.get(dep.as_str()) {
                Some(&l) if l < own => {}
                Some(&l) => violations.push(format!("{name} (layer {own}) → {dep} (layer {l})")),
                None => violations.push(format!("{name} → {dep}, which has no layer")),
            }
        }
    }
    assert_eq!(
        manifests.len(),
        LAYERS.len(),
        "a crate is missing from LAYERS"
    );
    assert!(violations.is_empty(), "{violations:#?}");
}

/// Packages reachable from `start` in Cargo.lock (every kind of dependency edge).
fn lock_closure(start: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let lock: toml::Table = toml::from_str(&text).unwrap();
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in lock["package"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap().to_string();
        let list: Vec<String> = p
            .get("dependencies")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    // "rand 0.9.5" names a version when several are locked.
                    .map(|d| d.as_str().unwrap().split(' ').next().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        deps.entry(name).or_default().extend(list);
    }
    let mut seen = BTreeSet::new();
    let mut stack = vec![start.to_string()];
    while let Some(n) = stack.pop() {
        if seen.insert(n.clone()) {
            stack.extend(deps.get(&n).cloned().unwrap_or_default());
        }
    }
    seen
}

#[test]
fn scorers_and_eval_are_free_of_candle() {
    for krate in ["conad-scorers", "conad-eval"] {
        let closure = lock_closure(krate);
        assert!(closure.len() > 3, "{krate} not found in Cargo.lock");
        let candle: Vec<&String> = closure.iter().filter(|n| n.contains("candle")).collect();
        assert!(candle.is_empty(), "{krate} reaches {candle:?}");
    }
    // The check can fail: conad-train reaches candle.
    assert!(lock_closure("conad-train").contains("candle-core"));
}

#[test]
fn public_errors_are_non_exhaustive() {
    let mut missing = Vec::new();
    for p in rust_files() {
        if !rel(&p).contains("/src/") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let is_error_type = (t.starts_with("pub enum ") || t.starts_with("pub struct "))
                && t.split_whitespace()
                    .nth(2)
                    .is_some_and(|n| n.trim_end_matches(['{', '(', ';']).ends_with("Error"));
            if !is_error_type {
                continue;
            }
            // The attribute block right above the item.
            let attrs = lines[..i].iter().rev().take_while(|l| {
                l.trim_start().starts_with("#[") || l.trim_start().starts_with("///")
            });
            if !attrs.clone().any(|l| l.contains("non_exhaustive")) {
                missing.push(format!("{}:{}: {}", rel(&p), i + 1, t));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "public errors without #[non_exhaustive]: {missing:#?}"
    );
}

#[test]
fn every_method_is_registered() {
    let dir = root().join("crates/conad-train/src/method");
    let registry = std::fs::read_to_string(dir.join("registry.rs")).unwrap();
    let mut found = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("impl MethodParams for ") else {
                continue;
            };
            let ty = rest.trim_end_matches(" {").trim();
            found += 1;
            assert!(
                registry.contains(&format!("MethodInfo::of::<{ty}>")),
                "{} implements MethodParams for {ty} but METHODS has no line for it",
                rel(&p)
            );
        }
    }
    assert!(found >= 8, "found only {found} MethodParams impls");
}

#[test]
fn the_cli_prints_only_through_its_output_module() {
    let dir = root().join("crates/conad-cli/src");
    let mut offenders = Vec::new();
    for p in rust_files().into_iter().filter(|p| p.starts_with(&dir)) {
        if p.ends_with("output.rs") {
            continue;
        }
        for (i, line) in std::fs::read_to_string(&p).unwrap().lines().enumerate() {
            let code = code_of(line);
            if ["println!", "print!", "eprintln!", "eprint!"]
                .iter()
                .any(|m| code.contains(m))
            {
                offenders.push(format!("{}:{}: {}", rel(&p), i + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "use outln!/errln! (crate::output), which never panic: {offenders:#?}"
    );
}

#[test]
fn a_bad_config_field_has_one_error_shape() {
    const MESSAGE: &str = "#[error(\"invalid config: `{field}` = {value}: {reason}\")]";
    let mut crates_with_it = Vec::new();
    for e in std::fs::read_dir(root().join("crates")).unwrap() {
        let p = e.unwrap().path().join("src/error.rs");
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let Some(i) = lines.iter().position(|l| *l == "InvalidConfig {") else {
            continue;
        };
        crates_with_it.push(rel(&p));
        assert_eq!(lines[i - 1], MESSAGE, "{}", rel(&p));
        let fields: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| **l != "},")
            .filter(|l| !l.starts_with("///"))
            .copied()
            .collect();
        assert_eq!(
            fields,
            ["field: String,", "value: String,", "reason: String,"],
            "{}",
            rel(&p)
        );
        for other in ["InvalidParameter {", "InvalidOption {"] {
            assert!(
                !lines.contains(&other),
                "{}: a second shape {other}",
                rel(&p)
            );
        }
    }
    assert!(crates_with_it.len() >= 7, "{crates_with_it:?}");
}
