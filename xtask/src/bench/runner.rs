//! The alternating side-by-side runner shared by every benchmark.
use super::BenchArgs;
use crate::util::{cargo, python, run_status, run_stdout};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One side of a comparison: the Rust example, or a Python reference script.
#[derive(Debug, Clone)]
pub enum Side {
    /// `cargo build --release -p CRATE --example EXAMPLE`, then run the built binary with `args`.
    Example {
        krate: &'static str,
        example: &'static str,
        args: Vec<String>,
        env: Vec<(&'static str, String)>,
    },
    /// `python xtask/scripts/SCRIPT args…`.
    Python {
        script: &'static str,
        args: Vec<String>,
    },
}

/// What a benchmark runs and how its headline is formed.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    pub name: &'static str,
    pub sides: Vec<Side>,
    /// Headline label, e.g. `knn_ratio`; the last line prints `LABEL conad/REF = X` for `headline_ref`.
    pub headline: &'static str,
    pub headline_ref: Option<&'static str>,
    /// Cases to include in the headline's geometric mean (empty = every case both sides ran).
    pub headline_cases: Vec<&'static str>,
    /// Result fields every implementation must agree on per case (name, absolute tolerance), e.g.
    /// the AUROC value or a checksum: a fast wrong answer is not a benchmark result.
    pub agree: Vec<(&'static str, f64)>,
}

#[derive(Debug, Clone, Serialize)]
struct Record {
    round: usize,
    case: String,
    implementation: String,
    seconds: f64,
    fields: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
struct Summary {
    case: String,
    implementation: String,
    runs: usize,
    median_seconds: f64,
    median_fields: BTreeMap<String, f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn example_binary(root: &Path, example: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("release/examples").join(example)
}

fn command_for(root: &Path, side: &Side, quick: bool) -> Command {
    match side {
        Side::Example {
            example, args, env, ..
        } => {
            let mut c = Command::new(example_binary(root, example));
            c.args(args);
            if quick {
                c.arg("--quick");
            }
            for (k, v) in env {
                c.env(k, v);
            }
            c
        }
        Side::Python { script, args } => {
            let mut c = Command::new(python(root));
            c.arg(root.join("xtask/scripts").join(script)).args(args);
            if quick {
                c.arg("--quick");
            }
            // Reference libraries get the same two cores; the OpenBLAS overrides some machines set
            // for old builds slow a current numpy down, so drop them for the reference only.
            c.env_remove("OPENBLAS_CORETYPE")
                .env_remove("OPENBLAS_L2_SIZE")
                .env("OMP_NUM_THREADS", "2")
                .env("OPENBLAS_NUM_THREADS", "2")
                .env("MKL_NUM_THREADS", "2");
            c
        }
    }
}

fn parse_records(out: &str, round: usize, cmd: &str) -> Result<Vec<Record>> {
    let mut records = Vec::new();
    for line in out.lines().filter(|l| l.trim_start().starts_with('{')) {
        let v: Map<String, Value> =
            serde_json::from_str(line).with_context(|| format!("{cmd}: bad JSON line {line:?}"))?;
        let get_str = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(case), Some(implementation), Some(seconds)) = (
            get_str("case"),
            get_str("impl"),
            v.get("seconds").and_then(Value::as_f64),
        ) else {
            bail!("{cmd}: JSON line lacks case/impl/seconds: {line}");
        };
        let mut fields = v.clone();
        for k in ["case", "impl", "seconds", "bench"] {
            fields.remove(k);
        }
        records.push(Record {
            round,
            case,
            implementation,
            seconds,
            fields,
        });
    }
    if records.is_empty() {
        bail!("{cmd} printed no JSON result line");
    }
    Ok(records)
}

fn machine_description() -> String {
    let cpu = crate::util::cpu_model();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("{cores} cores, {cpu}, load average at start {load}")
}

fn check_agreement(spec: &BenchSpec, summaries: &[Summary]) -> Result<()> {
    for (field, tol) in &spec.agree {
        for s in summaries {
            let Some(a) = s.median_fields.get(*field) else {
                continue;
            };
            for o in summaries.iter().filter(|o| o.case == s.case) {
                if let Some(b) = o.median_fields.get(*field)
                    && (a - b).abs() > *tol
                {
                    bail!(
                        "case {}: {field} disagrees between {} ({a}) and {} ({b}) beyond {tol}",
                        s.case,
                        s.implementation,
                        o.implementation
                    );
                }
            }
        }
    }
    Ok(())
}

pub fn run(root: &Path, spec: &BenchSpec, args: &BenchArgs) -> Result<()> {
    for side in &spec.sides {
        if let Side::Example { krate, example, .. } = side {
            eprintln!("building {krate} example {example} (release)…");
            run_status(cargo().args([
                "build",
                "--release",
                "--quiet",
                "-p",
                krate,
                "--example",
                example,
            ]))?;
        }
    }
    let machine = machine_description();
    eprintln!("machine: {machine}");
    let mut records = Vec::new();
    for round in 0..args.rounds.max(1) {
        for side in &spec.sides {
            let mut cmd = command_for(root, side, args.quick);
            let label = format!("{cmd:?}");
            eprintln!("round {round}: {label}");
            let out = run_stdout(&mut cmd)?;
            records.extend(parse_records(&out, round, &label)?);
        }
    }

    // Medians per (case, impl), in first-seen order.
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in &records {
        let k = (r.case.clone(), r.implementation.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let summaries: Vec<Summary> = keys
        .iter()
        .map(|(case, imp)| {
            let rs: Vec<&Record> = records
                .iter()
                .filter(|r| &r.case == case && &r.implementation == imp)
                .collect();
            let mut fields: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for r in &rs {
                for (k, v) in &r.fields {
                    if let Some(x) = v.as_f64() {
                        fields.entry(k.clone()).or_default().push(x);
                    }
                }
            }
            Summary {
                case: case.clone(),
                implementation: imp.clone(),
                runs: rs.len(),
                median_seconds: median(rs.iter().map(|r| r.seconds).collect()),
                median_fields: fields.into_iter().map(|(k, v)| (k, median(v))).collect(),
            }
        })
        .collect();

    check_agreement(spec, &summaries)?;

    let mut md = String::new();
    writeln!(md, "# bench {}\n", spec.name)?;
    writeln!(md, "Machine: {machine}. Rounds: {}.\n", args.rounds)?;
    writeln!(
        md,
        "| case | impl | runs | median s | other medians | speed vs conad |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|")?;
    for s in &summaries {
        let conad = summaries
            .iter()
            .find(|c| c.case == s.case && c.implementation == "conad");
        let ratio = match conad {
            Some(c) if s.implementation != "conad" => {
                format!("conad {:.2}× faster", s.median_seconds / c.median_seconds)
            }
            _ => String::new(),
        };
        let other: Vec<String> = s
            .median_fields
            .iter()
            .map(|(k, v)| {
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    format!("{k}={v:.0}")
                } else {
                    format!("{k}={v:.4}")
                }
            })
            .collect();
        writeln!(
            md,
            "| {} | {} | {} | {:.4} | {} | {} |",
            s.case,
            s.implementation,
            s.runs,
            s.median_seconds,
            other.join(", "),
            ratio
        )?;
    }

    let mut headline = None;
    if let Some(reference) = spec.headline_ref {
        let ratios: Vec<f64> = summaries
            .iter()
            .filter(|s| s.implementation == reference)
            .filter(|s| {
                spec.headline_cases.is_empty() || spec.headline_cases.contains(&s.case.as_str())
            })
            .filter_map(|r| {
                summaries
                    .iter()
                    .find(|c| c.case == r.case && c.implementation == "conad")
                    .map(|c| r.median_seconds / c.median_seconds)
            })
            .collect();
        if ratios.is_empty() {
            eprintln!("no case ran on both conad and {reference}: no headline ratio");
        } else {
            let g = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
            // A headline that names its own sides (`x fused/composed @2048`) is printed as is.
            let label = if spec.headline.contains('/') {
                spec.headline.to_owned()
            } else {
                format!("{} conad/{reference}", spec.headline)
            };
            headline = Some(format!("{label} = {g:.3}"));
        }
    }
    if let Some(h) = &headline {
        writeln!(md, "\n{h}")?;
    }

    let dir = root.join("target/bench").join(spec.name);
    std::fs::create_dir_all(&dir)?;
    let json = serde_json::json!({
        "bench": spec.name,
        "machine": machine,
        "rounds": args.rounds,
        "quick": args.quick,
        "records": records,
        "summary": summaries,
        "headline": headline,
    });
    crate::util::write_atomic(
        &dir.join("results.json"),
        &serde_json::to_string_pretty(&json)?,
    )?;
    crate::util::write_atomic(&dir.join("results.md"), &md)?;
    println!("{md}");
    println!("results: {}", dir.join("results.{json,md}").display());
    if let Some(h) = headline {
        println!("{h}");
    }
    Ok(())
}
