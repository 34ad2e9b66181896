//! `RUN_DIR/task.toml`: which data and which one-class protocol a run was trained on, so that
//! `conad eval --run RUN_DIR` and `conad embed --run RUN_DIR` rebuild the same split.
//!
//! ```toml
//! data = "embedded:fashion-mnist"
//!
//! [protocol]
//! normal_classes = [0]
//! seed = 0
//! ```
use anyhow::{Context, Result};
use conad_data::{DataSpec, LoadedData, OneClassProtocol, OneClassTask};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// File name inside the run directory.
pub const TASK_FILE: &str = "task.toml";

/// The data spec and protocol of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFile {
    /// Data spec string (`conad data info` syntax).
    pub data: String,
    /// One-class protocol (normal classes, contamination, seed, subsamples).
    pub protocol: OneClassProtocol,
}

impl TaskFile {
    /// Writes `RUN_DIR/task.toml`.
    pub fn write(&self, run_dir: &Path) -> Result<()> {
        let path = run_dir.join(TASK_FILE);
        let text = toml::to_string_pretty(self).context("serialising the task file")?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads `RUN_DIR/task.toml`.
    pub fn read(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join(TASK_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} is not a run directory written by `conad train` (cannot read {TASK_FILE})",
                run_dir.display()
            )
        })?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Loads the data set (`data` overrides the recorded spec, e.g. after moving the files).
    pub fn load(&self, data: Option<&str>) -> Result<LoadedData> {
        let spec_text = data.unwrap_or(&self.data);
        let spec: DataSpec = spec_text.parse()?;
        spec.load().with_context(|| format!("loading {spec_text}"))
    }

    /// Loads the data and builds the one-class task.
    pub fn build(&self, data: Option<&str>) -> Result<(LoadedData, OneClassTask)> {
        let loaded = self.load(data)?;
        let task = self
            .protocol
            .build(&loaded)
            .with_context(|| format!("building the one-class task on {}", loaded.source))?;
        Ok((loaded, task))
    }
}
