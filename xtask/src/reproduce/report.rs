//! Suite reports from the committed results: per entry and class, every score's AUROC as
//! mean ± std over seeds beside the published figure, AULC, epochs and training seconds, every
//! seed's figure; JSON + Markdown + a bar plot under `target/reproduce/<suite>/`, and
//! `RESULTS.md` (all suites) at the repository root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use conad_eval::{Bar, MeanStd, plot_bars};
use serde::{Deserialize, Serialize};

use super::results::{RunResult, read_all, write_atomic};
use super::suites::{SUITES, Suite};

/// A published figure (`xtask/reproduce/published.toml`).
#[derive(Clone, Debug, Deserialize)]
struct Published {
    suite: String,
    label: String,
    class: String,
    auroc: f64,
    #[serde(default)]
    std: Option<f64>,
    source: String,
    #[serde(default)]
    measured: bool,
}

#[derive(Debug, Deserialize)]
struct PublishedFile {
    entry: Vec<Published>,
}

fn published(root: &Path) -> Result<Vec<Published>> {
    let path = root.join("xtask/reproduce/published.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(toml::from_str::<PublishedFile>(&text)
        .with_context(|| format!("parsing {}", path.display()))?
        .entry)
}

/// One row: an entry on one class under one profile, over its seeds.
#[derive(Clone, Debug, Serialize)]
struct Row {
    label: String,
    method: String,
    profile: String,
    class: u32,
    seeds: Vec<u64>,
    paper_score: String,
    /// Every score: AUROC mean ± std over seeds (in [0, 1]).
    scores: BTreeMap<String, MeanStd>,
    aulc: Option<MeanStd>,
    epochs: MeanStd,
    train_seconds: MeanStd,
    published: Option<f64>,
    published_std: Option<f64>,
    published_source: Option<String>,
}

fn rows(results: &[RunResult], published: &[Published], suite: &str) -> Vec<Row> {
    let mut groups: BTreeMap<(String, String, u32), Vec<&RunResult>> = BTreeMap::new();
    for r in results {
        groups
            .entry((r.label.clone(), r.profile.clone(), r.class))
            .or_default()
            .push(r);
    }
    // Keep the suite's entry order.
    let order = |label: &str| {
        SUITES
            .iter()
            .find(|s| s.name == suite)
            .and_then(|s| s.entry_position(label))
            .unwrap_or(usize::MAX)
    };
    let mut out: Vec<Row> = groups
        .into_iter()
        .map(|((label, profile, class), runs)| {
            let names: BTreeSet<&String> = runs.iter().flat_map(|r| r.scores.keys()).collect();
            let scores = names
                .into_iter()
                .map(|n| {
                    let v: Vec<f64> = runs
                        .iter()
                        .filter_map(|r| r.scores.get(n).map(|s| s.auroc))
                        .collect();
                    (n.clone(), MeanStd::of(&v))
                })
                .collect();
            let aulcs: Vec<f64> = runs.iter().filter_map(|r| r.aulc).collect();
            let p = published
                .iter()
                .find(|p| p.suite == suite && p.label == label && p.class == class.to_string());
            Row {
                method: runs[0].method.clone(),
                paper_score: runs[0].paper_score.clone(),
                seeds: runs.iter().map(|r| r.seed).collect(),
                scores,
                aulc: (!aulcs.is_empty()).then(|| MeanStd::of(&aulcs)),
                epochs: MeanStd::of(&runs.iter().map(|r| r.epochs as f64).collect::<Vec<_>>()),
                train_seconds: MeanStd::of(
                    &runs.iter().map(|r| r.train_seconds).collect::<Vec<_>>(),
                ),
                published: p.map(|p| p.auroc),
                published_std: p.and_then(|p| p.std),
                published_source: p.map(|p| {
                    if p.measured {
                        format!("{} [measured]", p.source)
                    } else {
                        p.source.clone()
                    }
                }),
                label,
                profile,
                class,
            }
        })
        .collect();
    out.sort_by_key(|r| (r.profile.clone(), r.class, order(&r.label)));
    out
}

fn pct(m: &MeanStd) -> String {
    match m.std {
        Some(s) => format!("{:.1} ± {:.1}", 100.0 * m.mean, 100.0 * s),
        None => format!("{:.1}", 100.0 * m.mean),
    }
}

fn markdown(suite: &Suite, rows: &[Row], results: &[RunResult]) -> String {
    let mut md = format!("## {} — {}\n\n", suite.name, suite.summary);
    if rows.is_empty() {
        md.push_str("No results yet.\n");
        return md;
    }
    md.push_str(
        "AUROC in percent, mean ± std over the seeds listed (sample std; one seed: no std). \
         The paper score is the method's own (`conad methods --scores`); AULC is the area under \
         the online learning curve (its score in the per-run table). Published figures are \
         the papers' (different budgets: see each profile), `[measured]` ones were measured \
         on this machine kind.\n\n",
    );
    md.push_str(
        "| method | profile | class | seeds | paper score | AUROC | published | AULC | epochs | training s |\n\
         |---|---|---:|---|---|---:|---|---:|---:|---:|\n",
    );
    for r in rows {
        let paper = r.scores.get(&r.paper_score).map_or_else(|| "—".into(), pct);
        let published = r.published.map_or_else(
            || "—".into(),
            |p| match r.published_std {
                Some(s) => format!("{p:.1} ± {s:.1}"),
                None => format!("{p:.1}"),
            },
        );
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} |\n",
            r.label,
            r.profile,
            r.class,
            r.seeds
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            r.paper_score,
            paper,
            published,
            r.aulc.as_ref().map_or_else(|| "—".into(), pct),
            r.epochs.mean,
            r.train_seconds.mean,
        ));
    }
    // Mean over classes of the per-class paper-score means, per entry and profile.
    // (label, profile) → per class (conad mean, published).
    type PerClass = Vec<(f64, Option<f64>)>;
    let mut by_entry: BTreeMap<(&str, &str), PerClass> = BTreeMap::new();
    for r in rows {
        if let Some(m) = r.scores.get(&r.paper_score) {
            by_entry
                .entry((r.label.as_str(), r.profile.as_str()))
                .or_default()
                .push((m.mean, r.published));
        }
    }
    if by_entry.values().any(|v| v.len() > 1) {
        md.push_str("\nMean over classes (paper score, AUROC %):\n\n| method | profile | classes | conad | published |\n|---|---|---:|---:|---:|\n");
        for ((label, profile), v) in &by_entry {
            let mean = v.iter().map(|x| x.0).sum::<f64>() / v.len() as f64;
            let published: Option<Vec<f64>> = v.iter().map(|x| x.1).collect();
            let published = published.map_or_else(
                || "—".to_string(),
                |p| format!("{:.1}", p.iter().sum::<f64>() / p.len() as f64),
            );
            md.push_str(&format!(
                "| {label} | {profile} | {} | {:.1} | {published} |\n",
                v.len(),
                100.0 * mean
            ));
        }
    }
    md.push_str("\nEvery score (AUROC %, mean ± std over seeds):\n\n");
    for r in rows {
        let all: Vec<String> = r
            .scores
            .iter()
            .map(|(n, m)| format!("{n} {}", pct(m)))
            .collect();
        md.push_str(&format!(
            "- {} (class {}, {}): {}\n",
            r.label,
            r.class,
            r.profile,
            all.join(", ")
        ));
    }
    md.push_str("\nEvery run:\n\n| method | profile | class | seed | paper score AUROC | epochs | training s | learning curve (epoch: AUROC) | commit |\n|---|---|---:|---:|---:|---:|---:|---|---|\n");
    for r in results {
        let curve: Vec<String> = r
            .curve
            .iter()
            .map(|p| format!("{}: {:.3}", p.epoch, p.auroc))
            .collect();
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:.4} | {} | {:.0} | {} ({}) | {} |\n",
            r.label,
            r.profile,
            r.class,
            r.seed,
            r.scores.get(&r.paper_score).map_or(f64::NAN, |s| s.auroc),
            r.epochs,
            r.train_seconds,
            curve.join(", "),
            r.curve_score,
            r.commit,
        ));
    }
    let commands: BTreeSet<&str> = results.iter().map(|r| r.command.as_str()).collect();
    let machines: BTreeSet<&str> = results.iter().map(|r| r.machine.as_str()).collect();
    md.push_str("\nCommands:\n\n");
    for c in commands {
        md.push_str(&format!("- `{c}`\n"));
    }
    md.push_str("\nMachines:\n\n");
    for m in machines {
        md.push_str(&format!("- {m}\n"));
    }
    let sources: BTreeSet<&str> = rows
        .iter()
        .filter_map(|r| r.published_source.as_deref())
        .collect();
    if !sources.is_empty() {
        md.push_str("\nPublished figures:\n\n");
        for s in sources {
            md.push_str(&format!("- {s}\n"));
        }
    }
    md
}

/// Writes `target/reproduce/<name>/report.{json,md,png}` from `results/<name>/` (`name` is the
/// suite's, or `<suite>-val` for validation-split results).
pub fn write_report(root: &Path, suite: &Suite, name: &str) -> Result<String> {
    let results = read_all(&root.join("results").join(name))?;
    let published = published(root)?;
    let rows = rows(&results, &published, suite.name);
    let md = markdown(suite, &rows, &results);
    let out = root.join("target/reproduce").join(name);
    write_atomic(
        &out.join("report.json"),
        &(serde_json::to_string_pretty(&serde_json::json!({
            "suite": suite.name,
            "rows": rows,
            "runs": results,
        }))? + "\n"),
    )?;
    write_atomic(&out.join("report.md"), &md)?;
    let bars: Vec<Bar> = rows
        .iter()
        .filter_map(|r| {
            let m = r.scores.get(&r.paper_score)?;
            Some(Bar {
                label: format!("{} c{}", r.label, r.class),
                value: m.mean,
                error: m.std,
                reference: r.published.map(|p| p / 100.0),
            })
        })
        .collect();
    if !bars.is_empty() {
        plot_bars(
            out.join("report.png"),
            &bars,
            &format!("{name} — paper score AUROC (▲ published)"),
            "AUROC",
            (0.4, 1.0),
        )?;
    }
    eprintln!("{name} → {}", out.join("report.md").display());
    Ok(md)
}

/// Regenerates `RESULTS.md` from every suite's committed results.
pub fn write_results_md(root: &Path) -> Result<()> {
    let mut text = String::from(
        "# Reproduction results\n\n\
         Generated by `cargo xtask reproduce --report` from the per-run results committed under \
         `results/<suite>/` (one JSON per method, profile, class and seed, written as each run \
         lands). Do not edit by hand. Scores are chosen as each paper scores (the method's paper \
         score); nothing here was selected on the test split.\n\n",
    );
    let published = published(root)?;
    for suite in SUITES {
        let results = read_all(&root.join("results").join(suite.name))?;
        text.push_str(&markdown(
            suite,
            &rows(&results, &published, suite.name),
            &results,
        ));
        text.push('\n');
        // Validation-split runs (`--split val`): where choices are made, never results.
        let val = read_all(&root.join("results").join(format!("{}-val", suite.name)))?;
        if !val.is_empty() {
            text.push_str(&format!(
                "### {} — validation split (for choices only)\n\n",
                suite.name
            ));
            let md = markdown(suite, &rows(&val, &[], suite.name), &val);
            // Drop the heading line of the nested section.
            text.push_str(md.split_once("\n\n").map_or(md.as_str(), |(_, rest)| rest));
            text.push('\n');
        }
    }
    write_atomic(&root.join("RESULTS.md"), &text)
}
