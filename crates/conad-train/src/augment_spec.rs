//! The training config's augmentation settings (docs/reference.md §3): the training and the test
//! pipeline, each an [`AugmentSpec`] (conad-augment's table of named presets, or a custom list
//! of steps).

pub use conad_augment::AugmentSpec;
use serde::{Deserialize, Serialize};

/// Training and test pipelines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentSettings {
    /// Applied to every view of every training step.
    pub train: AugmentSpec,
    /// Deterministic transform for embeddings (online evaluation, `embed`).
    pub test: AugmentSpec,
}

impl Default for AugmentSettings {
    fn default() -> Self {
        Self {
            train: AugmentSpec::SimclrCifar { size: None },
            test: AugmentSpec::Identity,
        }
    }
}
