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

use conad_train::ke::KeProtocol;
use results::{CurvePoint, RunResult, ScoreResult};
use suites::{Entry, ScoreSet, Suite};

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// The suite (`breastmnist`, `fmnist`, `fmnist-embedded`, `contaminated`, `cifar10`).
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
    /// Contamination ratios γ of a contaminated suite (default: the suite's), e.g. `0.1`.
    #[arg(long, value_delimiter = ',')]
    pub contamination: Vec<f64>,
    /// KE protocols of a protocol suite (default: the suite's): `sad`, `spa`, `ssa`.
    #[arg(long, value_delimiter = ',')]
    pub protocols: Vec<String>,
    /// Knowledge encoder of a protocol suite (`clip:FILE.safetensors` or a conad run
    /// directory); default: a SimCLR run on every class of the suite's data, trained on first
    /// use into `target/reproduce/<suite>/encoder` with the budget profile.
    #[arg(long)]
    pub encoder: Option<String>,
    /// Profile of every method.
    #[arg(long, default_value = "budget")]
    pub profile: String,
    /// Data spec replacing the suite's.
    #[arg(long)]
    pub data: Option<String>,
    /// Only regenerate the reports (every suite, or `--suite`) from `results/`.
    #[arg(long)]
    pub report: bool,
    /// Evaluate on this split: `test` (`results/<suite>/`) or `val`, the validation split of data
    /// sets that have one (`results/<suite>-val/`) — where temperatures, schedules and recipes
    /// are chosen, never on the test split.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Override a config value of every entry: `--set method.context_temperature=0.5`
    /// (dotted key, TOML value); needs `--tag`.
    #[arg(long = "set", requires = "tag")]
    pub sets: Vec<String>,
    /// Name of the variant made by `--set`: results are labelled `<entry>+<tag>`.
    #[arg(long)]
    pub tag: Option<String>,
}

/// `config` with the dotted `key=value` assignments applied.
fn apply_sets(
    config: conad_train::TrainConfig,
    sets: &[String],
) -> Result<conad_train::TrainConfig> {
    if sets.is_empty() {
        return Ok(config);
    }
    let profile = config.profile.clone();
    let mut table: toml::Table = toml::from_str(&config.to_toml_string()?)?;
    for set in sets {
        let (key, value) = set.split_once('=').with_context(|| {
            format!("--set {set}: expected KEY=VALUE, e.g. method.temperature=0.2")
        })?;
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_string()));
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        let mut node = &mut table;
        for p in parts {
            node = node
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .with_context(|| format!("--set {set}: `{p}` is not a table"))?;
        }
        node.insert(last.to_string(), value);
    }
    let mut out = conad_train::TrainConfig::from_toml_str(&table.to_string(), "--set")?;
    out.profile = profile;
    Ok(out)
}

/// One planned run.
struct Plan<'a> {
    entry: &'a Entry,
    label: String,
    class: u32,
    seed: u64,
    contamination: Option<f64>,
    protocol: Option<KeProtocol>,
}

pub fn run(root: &Path, args: &ReproduceArgs) -> Result<()> {
    if args.report {
        let suites: Vec<&Suite> = match &args.suite {
            Some(name) => vec![suites::suite(name)?],
            None => suites::SUITES.iter().collect(),
        };
        for suite in suites {
            report::write_report(root, suite, suite.name)?;
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
        apply_sets(e.config(&args.profile)?, &args.sets)
            .with_context(|| format!("the {} profile of {}", args.profile, e.label))?;
    }
    let spec = args.data.clone().unwrap_or_else(|| {
        suite
            .data
            .replace("{shared}", &root.join("../shared").display().to_string())
    });
    let mut data: LoadedData = spec
        .parse::<DataSpec>()
        .and_then(|s| s.load())
        .with_context(|| format!("loading {spec}"))?;
    let results_name = match args.split.as_str() {
        "test" => suite.name.to_string(),
        "val" => {
            // The validation split plays the test split's part.
            data.test = data
                .val
                .take()
                .with_context(|| format!("{spec} has no validation split"))?;
            format!("{}-val", suite.name)
        }
        other => bail!("--split {other}: expected test or val"),
    };
    let results_dir = root.join("results").join(&results_name);
    let ratios = if args.contamination.is_empty() {
        suite.ratios()
    } else if suite.contaminations.is_empty() {
        bail!(
            "suite {} is clean; --contamination applies to contaminated suites",
            suite.name
        )
    } else {
        args.contamination.iter().map(|&g| Some(g)).collect()
    };
    let protocols: Vec<Option<KeProtocol>> = if suite.protocols.is_empty() {
        if !args.protocols.is_empty() {
            bail!("suite {} has no KE protocols", suite.name);
        }
        vec![None]
    } else if args.protocols.is_empty() {
        suite.protocols.iter().map(|&p| Some(p)).collect()
    } else {
        args.protocols
            .iter()
            .map(|p| {
                suite
                    .protocols
                    .iter()
                    .find(|k| k.name() == p)
                    .map(|&k| Some(k))
                    .with_context(|| format!("--protocols {p}: expected sad, spa or ssa"))
            })
            .collect::<Result<_>>()?
    };
    let mut plans = Vec::new();
    for gamma in ratios {
        for &protocol in &protocols {
            for e in &entries {
                for &class in &classes {
                    for &seed in &seeds {
                        let label = match protocol {
                            Some(p) => Suite::protocol_label(e.label, p),
                            None => Suite::run_label(e.label, gamma),
                        };
                        plans.push(Plan {
                            entry: e,
                            label: match &args.tag {
                                Some(t) => format!("{label}+{t}"),
                                None => label,
                            },
                            class,
                            seed,
                            contamination: gamma,
                            protocol,
                        });
                    }
                }
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
            &plan.label,
            &args.profile,
            plan.class,
            plan.seed,
        ));
        bar.set_message(format!(
            "{} class {} seed {}",
            plan.label, plan.class, plan.seed
        ));
        if file.is_file() {
            RunResult::read(&file)?;
            eprintln!("done already: {}", file.display());
            bar.inc(1);
            continue;
        }
        let result = run_one(root, &results_name, plan, args, &data, &command)?;
        result.write(&file)?;
        let paper = &result.scores[&result.paper_score];
        bar.suspend(|| {
            eprintln!(
                "{} class {} seed {}: {} AUROC {:.4} ({} epochs, {:.0} s training) → {}",
                plan.label,
                plan.class,
                plan.seed,
                result.paper_score,
                paper.auroc,
                result.epochs,
                result.train_seconds,
                file.display()
            )
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    report::write_report(root, suite, &results_name)?;
    report::write_results_md(root)
}

fn run_one(
    root: &Path,
    results_name: &str,
    plan: &Plan<'_>,
    args: &ReproduceArgs,
    data: &LoadedData,
    command: &str,
) -> Result<RunResult> {
    let profile = args.profile.as_str();
    let suite = suites::suite(args.suite.as_deref().unwrap_or_default())?;
    let mut config = apply_sets(plan.entry.config(profile)?, &args.sets)?;
    config.seed = plan.seed;
    let mut task = OneClassProtocol {
        normal_classes: vec![plan.class],
        seed: plan.seed,
        contamination: plan.contamination,
        ..Default::default()
    }
    .build(data)?;
    // One training run per entry, class and seed, shared by the KE protocols.
    let run_name = match plan.protocol {
        Some(_) => plan.entry.label.to_string(),
        None => plan.label.clone(),
    };
    let run_dir = root
        .join("target/reproduce")
        .join(results_name)
        .join("runs")
        .join(format!(
            "{run_name}-{profile}-c{}-s{}",
            plan.class, plan.seed
        ));
    let mut knowledge_encoder = None;
    let test_task = match plan.protocol {
        None => None,
        Some(protocol) => {
            let selection = ke_selection(
                root,
                results_name,
                suite,
                args,
                data,
                &task,
                plan.class,
                plan.seed,
            )?;
            knowledge_encoder = Some(selection.encoder.clone());
            if let Some(p) = config.method.params::<conad_train::KeParams>() {
                config.method =
                    conad_train::MethodConfig::new(p.clone().with_selection(selection.clone()));
            }
            let class_name = task
                .test
                .class_names
                .get(plan.class as usize)
                .cloned()
                .unwrap_or_default();
            let negatives = conad_train::ke::semantic_negatives(&selection, &class_name);
            Some(conad_train::ke::ke_test_task(
                &task, protocol, &negatives, plan.seed,
            )?)
        }
    };
    if let Some(t) = test_task {
        task.test = t.test;
        task.test_is_anomaly = t.test_is_anomaly;
        task.description = t.description;
    }
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
        let detector = model.fit_named_score(Some(name), &task.train, 256)?;
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
        suite: results_name.into(),
        label: plan.label.clone(),
        method: method.name().into(),
        profile: profile.into(),
        class: plan.class,
        seed: plan.seed,
        n_train: task.train.len(),
        contamination: plan.contamination,
        protocol: plan.protocol.map(|p| p.name().to_string()),
        knowledge_encoder,
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

/// The KE selection of `class` with the suite's knowledge encoder, cached (and committed) as
/// `results/<suite>/selections/c<class>-s<seed>.json`: the per-class ranking and SSA's semantic
/// negatives are published beside the results.
#[allow(clippy::too_many_arguments)]
fn ke_selection(
    root: &Path,
    results_name: &str,
    suite: &Suite,
    args: &ReproduceArgs,
    data: &LoadedData,
    task: &conad_data::OneClassTask,
    class: u32,
    seed: u64,
) -> Result<conad_train::ke::KeSelection> {
    let file = root
        .join("results")
        .join(results_name)
        .join("selections")
        .join(format!("c{class}-s{seed}.json"));
    if file.is_file() {
        let text = std::fs::read_to_string(&file)?;
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is not a KE selection (delete it)", file.display()));
    }
    let spec = match &args.encoder {
        Some(spec) => spec.clone(),
        None => knowledge_encoder(root, suite, data)?.display().to_string(),
    };
    let encoder = conad_train::ke::load_knowledge_encoder(&spec)?;
    eprintln!("KE selection for class {class} with {spec} ...");
    let selection = conad_train::ke::select_transforms(
        encoder.as_ref(),
        &task.train,
        2,
        conad_augment::ke_bank::TRAIN_SEVERITY,
        seed,
        // Exact assignment on every image: at 3000 images per class the log-domain Sinkhorn of
        // `Auto` (ε = 0.05, 1e-6 marginal tolerance) ran > 8 minutes on one transform.
        conad_scorers::WassersteinMethod::Exact,
    )?;
    results::write_atomic(&file, &(serde_json::to_string_pretty(&selection)? + "\n"))?;
    Ok(selection)
}

/// The default knowledge encoder of a protocol suite: SimCLR (budget profile, seed 0) on every
/// class of the suite's training split, trained on first use.
fn knowledge_encoder(root: &Path, suite: &Suite, data: &LoadedData) -> Result<std::path::PathBuf> {
    let dir = root
        .join("target/reproduce")
        .join(suite.name)
        .join("encoder");
    // Every training image of every class; the test split is not used (no online evaluation),
    // so the one-class protocol (which needs anomalies in it) is bypassed.
    let n = data.train.n;
    let task = conad_data::OneClassTask {
        train: data.train.clone(),
        train_is_contaminant: vec![false; n],
        train_source_indices: (0..n).collect(),
        test: data.test.clone(),
        test_is_anomaly: vec![false; data.test.n],
        test_source_indices: (0..data.test.n).collect(),
        calibration: None,
        calibration_source_indices: Vec::new(),
        normal_classes: (0..data.train.class_names.len() as u32).collect(),
        description: format!("{}: every class of the training split", data.name),
    };
    let mut config = conad_train::profile("simclr", "budget")?;
    // Every class is normal: the test split has no anomalies to evaluate against.
    config.eval_points = None;
    config.eval_every = 0;
    eprintln!(
        "training the knowledge encoder (SimCLR, budget, {} images) into {} ...",
        task.train.len(),
        dir.display()
    );
    let report = train_with_options(
        &config,
        &task,
        &dir,
        &TrainOptions {
            progress: ProgressMode::Auto,
            ..Default::default()
        },
    )?;
    if !report.completed {
        bail!("the knowledge encoder {} stopped early", dir.display());
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use conad_train::{Con2Params, ContextTransform};

    #[test]
    fn set_overrides_dotted_keys_with_toml_values() {
        let base = conad_train::profile("con2", "budget").unwrap();
        let c = apply_sets(
            base.clone(),
            &[
                "method.context_temperature=0.5".into(),
                "method.context=flip".into(),
                "batch_size=16".into(),
            ],
        )
        .unwrap();
        let p = c.method.params::<Con2Params>().unwrap();
        assert_eq!(p.context_temperature, 0.5);
        assert_eq!(p.context, ContextTransform::Flip);
        assert_eq!(c.batch_size, 16);
        assert_eq!(c.profile.as_deref(), Some("budget"));
        // Unknown keys and malformed assignments are errors naming them.
        let err = apply_sets(base.clone(), &["method.tau=0.5".into()]).unwrap_err();
        assert!(format!("{err:#}").contains("tau"), "{err:#}");
        assert!(apply_sets(base, &["batch_size".into()]).is_err());
    }
}
