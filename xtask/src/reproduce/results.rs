//! One finished run's result: a small JSON committed under `results/<suite>/` as it lands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The AUROC of one score and the seconds it took (fit + score).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreResult {
    /// Test AUROC (anomalies positive), in [0, 1].
    pub auroc: f64,
    /// Seconds to fit on the training images and score the test split.
    pub seconds: f64,
}

/// One online evaluation of the learning curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Epochs completed.
    pub epoch: u64,
    /// Test AUROC of the online score.
    pub auroc: f64,
}

/// `results/<suite>/<label>-<profile>-c<class>-s<seed>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Suite name.
    pub suite: String,
    /// Suite entry label (e.g. `nt_xent`).
    pub label: String,
    /// Registry method.
    pub method: String,
    /// Profile (`budget`, `paper`).
    pub profile: String,
    /// Normal class.
    pub class: u32,
    /// Root seed.
    pub seed: u64,
    /// Training images (normal, plus contaminants when `contamination` is set).
    pub n_train: usize,
    /// Contamination ratio γ of the training set, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contamination: Option<f64>,
    /// KE test protocol (`sad`, `spa`, `ssa`) of a protocol suite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Knowledge encoder of the run's KE selection (KE runs and SSA test sets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge_encoder: Option<String>,
    /// Test images (anomalies).
    pub n_test: usize,
    /// Anomalies among them.
    pub n_test_anomalies: usize,
    /// Epochs trained.
    pub epochs: u64,
    /// The profile's view budget, if any.
    pub view_budget: Option<u64>,
    /// Seconds in training steps (all sessions).
    pub train_seconds: f64,
    /// Encoder views per second while training.
    pub images_per_second: Option<f64>,
    /// Mean loss of the last epoch.
    pub final_loss: Option<f64>,
    /// The method's paper score.
    pub paper_score: String,
    /// Every computed score.
    pub scores: BTreeMap<String, ScoreResult>,
    /// The online score of the learning curve.
    pub curve_score: String,
    /// Learning curve of the online score.
    pub curve: Vec<CurvePoint>,
    /// Its area (FIRM's AULC, Simpson on [0, 1]).
    pub aulc: Option<f64>,
    /// The CPU and core count it ran on.
    pub machine: String,
    /// The command that produced it.
    pub command: String,
    /// `git rev-parse --short HEAD` of the tree it ran on.
    pub commit: String,
}

impl RunResult {
    /// File name of a run.
    pub fn file_name(label: &str, profile: &str, class: u32, seed: u64) -> String {
        format!("{label}-{profile}-c{class}-s{seed}.json")
    }

    /// Reads a result file.
    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a reproduce result (delete it to run again)",
                path.display()
            )
        })
    }

    /// Writes the result atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &(serde_json::to_string_pretty(self)? + "\n"))
    }
}

/// Every result of `dir` (sorted by file name).
pub fn read_all(dir: &Path) -> Result<Vec<RunResult>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    paths.iter().map(|p| RunResult::read(p)).collect()
}

pub use crate::util::write_atomic;

/// `model name` of the first CPU and the number of logical CPUs.
pub fn machine() -> String {
    let cpu = crate::util::cpu_model();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cpu}, {cores} CPUs, no GPU")
}

/// The current commit (short hash), or `unknown`.
pub fn commit(root: &Path) -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".into(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
        )
}
