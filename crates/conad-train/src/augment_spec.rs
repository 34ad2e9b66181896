//! Named augmentation pipelines for the training config (METHODS §3): a preset with its size
//! (defaulting to the data's image size) or a fully custom [`AugmentConfig`].

use conad_augment::normalize::Normalize;
use conad_augment::{AugmentConfig, presets};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One augmentation pipeline; TOML: `[augment.train]` with `preset = "…"` and the preset's
/// fields, or `preset = "custom"` with conad-augment's `steps` list.
///
/// `size = None` means "the data's image side" (square images); the resolved config written
/// next to a run always carries the concrete size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "preset", rename_all = "snake_case", deny_unknown_fields)]
pub enum AugmentSpec {
    /// No transform: the image as f32 in [0, 1] (`ToTensor`). The default test transform.
    Identity,
    /// SimCLR at CIFAR strength (METHODS §3.1): crop scale (0.08, 1), flip, jitter (0.4, 0.4,
    /// 0.4, 0.1) p 0.8, grayscale p 0.2, no blur.
    SimclrCifar {
        /// Output side (default: the image side).
        #[serde(default)]
        size: Option<usize>,
    },
    /// SimCLR ImageNet recipe with colour strength `strength` and optional blur (§3.1).
    Simclr {
        /// Output side (default: the image side).
        #[serde(default)]
        size: Option<usize>,
        /// Colour-distortion strength s.
        #[serde(default = "one")]
        strength: f64,
        /// Gaussian blur p 0.5 with a kernel of ~10 % of the side.
        #[serde(default = "yes")]
        blur: bool,
    },
    /// CSI's training pipeline without shifts (§3.2).
    Csi {
        /// Output side (default: the image side).
        #[serde(default)]
        size: Option<usize>,
    },
    /// FIRM's training pipeline (§3.4).
    Firm {
        /// Output side (default: the image side).
        #[serde(default)]
        size: Option<usize>,
        /// Per-dataset normalisation constants.
        normalize: Normalize,
    },
    /// FIRM's deterministic test transform: resize to ⌊9·size/8⌋, centre crop, normalise (§3.6).
    FirmTest {
        /// Output side (default: the image side).
        #[serde(default)]
        size: Option<usize>,
        /// Per-dataset normalisation constants.
        normalize: Normalize,
    },
    /// `(x − mean)/std` only (SupContrast/SSD test transform, §3.6).
    Normalize {
        /// Normalisation constants.
        normalize: Normalize,
    },
    /// Any pipeline of conad-augment steps.
    Custom(AugmentConfig),
}

fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}

impl AugmentSpec {
    /// The same spec with `size = None` replaced by `image_side`.
    #[must_use]
    pub fn resolved(&self, image_side: usize) -> Self {
        let fill = |s: &Option<usize>| Some(s.unwrap_or(image_side));
        match self {
            Self::SimclrCifar { size } => Self::SimclrCifar { size: fill(size) },
            Self::Simclr {
                size,
                strength,
                blur,
            } => Self::Simclr {
                size: fill(size),
                strength: *strength,
                blur: *blur,
            },
            Self::Csi { size } => Self::Csi { size: fill(size) },
            Self::Firm { size, normalize } => Self::Firm {
                size: fill(size),
                normalize: normalize.clone(),
            },
            Self::FirmTest { size, normalize } => Self::FirmTest {
                size: fill(size),
                normalize: normalize.clone(),
            },
            other => other.clone(),
        }
    }

    /// The conad-augment pipeline; unresolved sizes use `image_side`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero size or a strength outside (0, ∞), and the pipeline's
    /// own validation errors.
    pub fn to_augment_config(&self, image_side: usize) -> Result<AugmentConfig> {
        let side = |s: &Option<usize>| -> Result<usize> {
            let v = s.unwrap_or(image_side);
            if v == 0 {
                return Err(Error::invalid("augment.size", 0, "must be ≥ 1"));
            }
            Ok(v)
        };
        let cfg = match self {
            Self::Identity => AugmentConfig::from_steps(Vec::new()),
            Self::SimclrCifar { size } => presets::simclr_cifar(side(size)?),
            Self::Simclr {
                size,
                strength,
                blur,
            } => {
                if !(strength.is_finite() && *strength > 0.0) {
                    return Err(Error::invalid(
                        "augment.strength",
                        strength,
                        "must be positive (1 for ImageNet, 0.5 for CIFAR)",
                    ));
                }
                presets::simclr(side(size)?, *strength, *blur)
            }
            Self::Csi { size } => presets::csi(side(size)?),
            Self::Firm { size, normalize } => presets::firm(side(size)?, normalize.clone()),
            Self::FirmTest { size, normalize } => {
                presets::firm_test(side(size)?, normalize.clone())
            }
            Self::Normalize { normalize } => presets::test_normalize(normalize.clone()),
            Self::Custom(c) => c.clone(),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

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
