//! `cargo xtask reproduce --suite NAME [--methods …] [--classes …] [--seeds …] [--profile P]`:
//! runs suite entries × classes × seeds through `conad-train` (training, then every score of
//! the suite with the method's own detectors), skips runs whose result is already committed
//! under `results/<suite>/` (a killed suite resumes: unfinished runs continue from their
//! checkpoint under `target/reproduce/<suite>/runs/`), writes each finished run's result as it
//! lands, then the suite report (`target/reproduce/<suite>/report.{json,md,png}`) and
//! `RESULTS.md`. `--report` only regenerates the reports from the committed results.

mod report;
mod results;
mod suites;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use conad_data::{DataSpec, LoadedData, OneClassProtocol};
use conad_train::{ProgressMode, TrainOptions, load_run, train_with_options};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use results::{CurvePoint, RunResult, ScoreResult};
use suites::{Entry, ScoreSet, Suite};

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// The suite (`breastmnist`, `fmnist`).
    #[arg(long, required_unless_present = "report")]
    pub suite: Option<String>,
    /// Suite entries to run (default: all of the suite's).
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<String>,
    /// Normal classes (default: the suite's).
    #[arg(long, value_delimiter = ',')]
    pub classes: Vec<u32>,
    /// Seeds (default: the suite's).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
    /// Profile of every method.
    #[arg(long, default_value = "budget")]
    pub profile: String,
    /// Data spec replacing the suite's.
    #[arg(long)]
    pub data: Option<String>,
    /// Only regenerate the reports (every suite, or `--suite`) from `results/`.
    #[arg(long)]
    pub report: bool,
}

/// One planned run.
struct Plan<'a> {
    entry: &'a Entry,
    class: u32,
    seed: u64,
}

pub fn run(root: &Path, args: &ReproduceArgs) -> Result<()> {
    if args.report {
        let suites: Vec<&Suite> = match &args.suite {
            Some(name) => vec![suites::suite(name)?],
            None => suites::SUITES.iter().collect(),
        };
        for suite in suites {
            report::write_suite_report(root, suite)?;
        }
        return report::write_results_md(root);
    }
    let name = args.suite.as_deref().unwrap_or_default();
    let suite = suites::suite(name)?;
    let entries: Vec<&Entry> = if args.methods.is_empty() {
        suite.entries.iter().collect()
    } else {
        args.methods
            .iter()
            .map(|m| {
                suite
                    .entries
                    .iter()
                    .find(|e| e.label == m)
                    .with_context(|| {
                        format!(
                            "suite {} has no entry `{m}`; entries: {}",
                            suite.name,
                            suite
                                .entries
                                .iter()
                                .map(|e| e.label)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })
            })
            .collect::<Result<_>>()?
    };
    let classes = if args.classes.is_empty() {
        suite.classes.to_vec()
    } else {
        args.classes.clone()
    };
    let seeds = if args.seeds.is_empty() {
        suite.seeds.to_vec()
    } else {
        args.seeds.clone()
    };
    // Validate every config before any run starts.
    for e in &entries {
        e.config(&args.profile)
            .with_context(|| format!("the {} profile of {}", args.profile, e.label))?;
    }
    let spec = args.data.clone().unwrap_or_else(|| {
        suite
            .data
            .replace("{shared}", &root.join("../shared").display().to_string())
    });
    let data: LoadedData = spec
        .parse::<DataSpec>()
        .and_then(|s| s.load())
        .with_context(|| format!("loading {spec}"))?;
    let results_dir = root.join("results").join(suite.name);
    let mut plans = Vec::new();
    for e in &entries {
        for &class in &classes {
            for &seed in &seeds {
                plans.push(Plan {
                    entry: e,
                    class,
                    seed,
                });
            }
        }
    }
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::new(plans.len() as u64)
    } else {
        ProgressBar::with_draw_target(Some(plans.len() as u64), ProgressDrawTarget::hidden())
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} runs {msg}")
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    bar.set_prefix(format!("reproduce {}", suite.name));
    let command = std::iter::once("cargo xtask".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    for plan in &plans {
        let file = results_dir.join(RunResult::file_name(
            plan.entry.label,
            &args.profile,
            plan.class,
            plan.seed,
        ));
        bar.set_message(format!(
            "{} class {} seed {}",
            plan.entry.label, plan.class, plan.seed
        ));
        if file.is_file() {
            RunResult::read(&file)?;
            eprintln!("done already: {}", file.display());
            bar.inc(1);
            continue;
        }
        let result = run_one(root, suite, plan, &args.profile, &data, &command)?;
        result.write(&file)?;
        let paper = &result.scores[&result.paper_score];
        bar.println(format!(
            "{} class {} seed {}: {} AUROC {:.4} ({} epochs, {:.0} s training) → {}",
            plan.entry.label,
            plan.class,
            plan.seed,
            result.paper_score,
            paper.auroc,
            result.epochs,
            result.train_seconds,
            file.display()
        ));
        bar.inc(1);
    }
    bar.finish_and_clear();
    report::write_suite_report(root, suite)?;
    report::write_results_md(root)
}

fn run_one(
    root: &Path,
    suite: &Suite,
    plan: &Plan<'_>,
    profile: &str,
    data: &LoadedData,
    command: &str,
) -> Result<RunResult> {
    let mut config = plan.entry.config(profile)?;
    config.seed = plan.seed;
    let task = OneClassProtocol {
        normal_classes: vec![plan.class],
        seed: plan.seed,
        ..Default::default()
    }
    .build(data)?;
    let run_dir = root
        .join("target/reproduce")
        .join(suite.name)
        .join("runs")
        .join(format!(
            "{}-{profile}-c{}-s{}",
            plan.entry.label, plan.class, plan.seed
        ));
    let options = TrainOptions {
        progress: ProgressMode::Auto,
        ..Default::default()
    };
    let report = train_with_options(&config, &task, &run_dir, &options)
        .with_context(|| format!("training {} into {}", plan.entry.label, run_dir.display()))?;
    if !report.completed {
        bail!("{} stopped before its last epoch", run_dir.display());
    }
    let model = load_run(&run_dir)?;
    let method = &model.config().method;
    let paper = method.paper_score();
    let wanted: Vec<&'static str> = match suite.scores {
        ScoreSet::All => method.scores().iter().map(|s| s.name).collect(),
        ScoreSet::PaperAnd(extra) => {
            let listed: Vec<&'static str> = method.scores().iter().map(|s| s.name).collect();
            std::iter::once(paper.name)
                .chain(extra.iter().copied().filter(|e| listed.contains(e)))
                .collect()
        }
    };
    let mut scores = BTreeMap::new();
    for name in wanted {
        if scores.contains_key(name) {
            continue;
        }
        let t = Instant::now();
        let detector = model.fit_detector(Some(name), &task.train, 256)?;
        let s = model.score(&detector, &task.test, 256)?;
        let auroc = conad_eval::auroc(&s, &task.test_is_anomaly)?;
        scores.insert(
            name.to_string(),
            ScoreResult {
                auroc,
                seconds: t.elapsed().as_secs_f64(),
            },
        );
    }
    let history = &report.history;
    Ok(RunResult {
        suite: suite.name.into(),
        label: plan.entry.label.into(),
        method: method.name().into(),
        profile: profile.into(),
        class: plan.class,
        seed: plan.seed,
        n_train: task.train.len(),
        n_test: task.test.len(),
        n_test_anomalies: task.num_test_anomalies(),
        epochs: report.epochs_completed,
        view_budget: config.view_budget,
        train_seconds: history.epochs.iter().fold(0.0, |acc, e| acc + e.seconds),
        images_per_second: report.images_per_second,
        final_loss: report.final_loss,
        paper_score: paper.name.into(),
        scores,
        curve_score: history
            .evals
            .last()
            .map_or_else(String::new, |e| e.score.clone()),
        curve: history
            .evals
            .iter()
            .map(|e| CurvePoint {
                epoch: e.epoch,
                auroc: e.auroc,
            })
            .collect(),
        aulc: report.aulc,
        machine: results::machine(),
        command: command.to_string(),
        commit: results::commit(root),
    })
}
