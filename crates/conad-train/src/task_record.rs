//! [`TaskRecord`]: which data and which one-class protocol a run was trained on
//! (`RUN_DIR/task.toml`), so that `conad eval` and `conad embed` rebuild the same split. The
//! trainer writes it when the run starts and records it in every checkpoint, so an edited or
//! foreign `task.toml` is detected when the run is loaded.
//!
//! ```toml
//! data = "embedded:fashion-mnist"
//!
//! [protocol]
//! normal_classes = [0]
//! seed = 0
//! ```

use std::path::Path;

use conad_data::{DataSpec, LoadedData, OneClassProtocol, OneClassTask};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// File name of the record inside the run directory.
pub const TASK_FILE: &str = "task.toml";

/// The data spec and one-class protocol of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRecord {
    /// Data spec string (`conad data info` syntax).
    pub data: String,
    /// One-class protocol (normal classes, contamination, seed, subsamples).
    pub protocol: OneClassProtocol,
}

impl TaskRecord {
    /// The record as TOML.
    ///
    /// # Errors
    /// [`Error::Json`] if it does not serialise (not expected for valid protocols).
    pub fn to_toml_string(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::Json {
            what: TASK_FILE.into(),
            message: e.to_string(),
        })
    }

    /// Reads `RUN_DIR/task.toml`; `Ok(None)` when the run has none.
    ///
    /// # Errors
    /// [`Error::Io`] when it exists but cannot be read, [`Error::ConfigParse`] when it does
    /// not parse.
    pub fn read(run_dir: &Path) -> Result<Option<Self>> {
        let path = run_dir.join(TASK_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| Error::ConfigParse {
                origin: path.display().to_string(),
                message: e.to_string(),
            })
    }

    /// Differences from `other`, one line per field (empty when equal).
    pub fn differences(&self, other: &Self) -> Vec<String> {
        let mut out = Vec::new();
        if self.data != other.data {
            out.push(format!("data: `{}` vs `{}`", self.data, other.data));
        }
        if self.protocol != other.protocol {
            out.push(format!(
                "protocol: {:?} vs {:?}",
                self.protocol, other.protocol
            ));
        }
        out
    }

    /// Loads the data set (`data` overrides the recorded spec, e.g. after moving the files).
    ///
    /// # Errors
    /// Spec and loader errors ([`Error::Data`]).
    pub fn load(&self, data: Option<&str>) -> Result<LoadedData> {
        let spec: DataSpec = data.unwrap_or(&self.data).parse()?;
        Ok(spec.load()?)
    }

    /// Loads the data and builds the one-class task.
    ///
    /// # Errors
    /// As [`TaskRecord::load`], plus protocol errors.
    pub fn build(&self, data: Option<&str>) -> Result<(LoadedData, OneClassTask)> {
        let loaded = self.load(data)?;
        let task = self.protocol.build(&loaded)?;
        Ok((loaded, task))
    }
}
