//! [`AugmentSpec`]: every named pipeline of [`crate::presets`] as one serde enum — the single
//! table of presets that configs name (`preset = "firm"` and the preset's fields, or
//! `preset = "custom"` with a list of steps). Sizes left out default to the image side.

use serde::{Deserialize, Serialize};

use crate::config::AugmentConfig;
use crate::error::{Error, Result};
use crate::normalize::Normalize;
use crate::presets;

/// One augmentation pipeline by name (TOML: `preset = "…"` plus the preset's fields).
///
/// `size = None` means "the image side" (square images); [`AugmentSpec::resolved`] fills it in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "preset", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum AugmentSpec {
    /// No transform: the image as f32 in [0, 1] (`ToTensor`).
    Identity,
    /// [`presets::simclr_cifar`]: SimCLR at CIFAR strength.
    SimclrCifar {
        /// Output side (default: the image side).
        #[serde(default)]
        size: Option<usize>,
    },
    /// [`presets::simclr`]: the SimCLR ImageNet recipe with colour strength and optional blur.
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
    /// [`presets::supcon`]: the SupContrast / SSD CIFAR pipeline.
    Supcon {
        /// Output side (default: the image side).
        #[serde(default)]
        size: Option<usize>,
        /// Normalisation constants.
        normalize: Normalize,
    },
    /// [`presets::csi`]: CSI's training pipeline with its shift slot.
    Csi {
        /// Output side (default: the image side).
        #[serde(default)]
        size: Option<usize>,
    },
    /// [`presets::csi_eval`]: CSI's evaluation augmentation (crop area 0.54).
    CsiEval {
        /// Output side (default: the image side).
        #[serde(default)]
        size: Option<usize>,
    },
    /// [`presets::unicon_ha_stage`]: UniCon-HA's augmentation family of one network stage.
    UniconHaStage {
        /// Output side (default: the image side).
        #[serde(default)]
        size: Option<usize>,
        /// Stage 1–4 (strength grows with the stage; 4 = CSI's pipeline).
        stage: usize,
    },
    /// [`presets::firm`]: FIRM's training pipeline.
    Firm {
        /// Output side (default: the image side).
        #[serde(default)]
        size: Option<usize>,
        /// Per-dataset normalisation constants.
        normalize: Normalize,
    },
    /// [`presets::firm_test`]: FIRM's deterministic test transform.
    FirmTest {
        /// Output side (default: the image side).
        #[serde(default)]
        size: Option<usize>,
        /// Per-dataset normalisation constants.
        normalize: Normalize,
    },
    /// [`presets::firm_crop_ensemble`]: FIRM's crop-ensemble test transform.
    FirmCropEnsemble {
        /// Output side (default: the image side).
        #[serde(default)]
        size: Option<usize>,
        /// Per-dataset normalisation constants.
        normalize: Normalize,
    },
    /// [`presets::test_normalize`]: `(x − mean)/std` only.
    Normalize {
        /// Normalisation constants.
        normalize: Normalize,
    },
    /// [`presets::test_resize_center_crop`]: resize the shorter side, centre-crop, normalise.
    ResizeCenterCrop {
        /// Shorter side after resizing.
        resize: usize,
        /// Side of the centre crop.
        crop: usize,
        /// Normalisation constants.
        normalize: Normalize,
    },
    /// [`presets::droc_pad`]: zero-pad two pixels per side (28 → 32).
    DrocPad,
    /// Any pipeline of steps.
    Custom(AugmentConfig),
}

fn one() -> f64 {
    1.0
}

fn yes() -> bool {
    true
}

/// The names `preset = "…"` accepts, in declaration order (a test checks it against the enum).
pub const PRESET_NAMES: &[&str] = &[
    "identity",
    "simclr_cifar",
    "simclr",
    "supcon",
    "csi",
    "csi_eval",
    "unicon_ha_stage",
    "firm",
    "firm_test",
    "firm_crop_ensemble",
    "normalize",
    "resize_center_crop",
    "droc_pad",
    "custom",
];

impl AugmentSpec {
    /// The same spec with `size = None` replaced by `image_side`.
    #[must_use]
    pub fn resolved(&self, image_side: usize) -> Self {
        let mut out = self.clone();
        if let Some(size) = out.size_mut() {
            size.get_or_insert(image_side);
        }
        out
    }

    /// The preset's output side, for presets that have one.
    fn size_mut(&mut self) -> Option<&mut Option<usize>> {
        match self {
            Self::SimclrCifar { size }
            | Self::Simclr { size, .. }
            | Self::Supcon { size, .. }
            | Self::Csi { size }
            | Self::CsiEval { size }
            | Self::UniconHaStage { size, .. }
            | Self::Firm { size, .. }
            | Self::FirmTest { size, .. }
            | Self::FirmCropEnsemble { size, .. } => Some(size),
            Self::Identity
            | Self::Normalize { .. }
            | Self::ResizeCenterCrop { .. }
            | Self::DrocPad
            | Self::Custom(_) => None,
        }
    }

    /// The pipeline; unresolved sizes use `image_side`.
    ///
    /// # Errors
    /// [`Error::EmptySize`] for a zero size, [`Error::InvalidParameter`] for a strength outside
    /// (0, ∞), and the pipeline's own validation errors.
    pub fn to_augment_config(&self, image_side: usize) -> Result<AugmentConfig> {
        let resolved = self.resolved(image_side);
        let side = |s: &Option<usize>| -> Result<usize> {
            let v = s.unwrap_or(image_side);
            if v == 0 {
                return Err(Error::EmptySize {
                    what: "augment preset size".into(),
                    height: 0,
                    width: 0,
                });
            }
            Ok(v)
        };
        let cfg = match &resolved {
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
                        *strength,
                        "must be positive (1 for ImageNet, 0.5 for CIFAR)",
                    ));
                }
                presets::simclr(side(size)?, *strength, *blur)
            }
            Self::Supcon { size, normalize } => presets::supcon(side(size)?, normalize.clone()),
            Self::Csi { size } => presets::csi(side(size)?),
            Self::CsiEval { size } => presets::csi_eval(side(size)?),
            Self::UniconHaStage { size, stage } => presets::unicon_ha_stage(side(size)?, *stage)
                .ok_or_else(|| {
                    Error::invalid(
                        "augment.stage",
                        stage,
                        "UniCon-HA has augmentation families for stages 1 to 4",
                    )
                })?,
            Self::Firm { size, normalize } => presets::firm(side(size)?, normalize.clone()),
            Self::FirmTest { size, normalize } => {
                presets::firm_test(side(size)?, normalize.clone())
            }
            Self::FirmCropEnsemble { size, normalize } => {
                presets::firm_crop_ensemble(side(size)?, normalize.clone())
            }
            Self::Normalize { normalize } => presets::test_normalize(normalize.clone()),
            Self::ResizeCenterCrop {
                resize,
                crop,
                normalize,
            } => presets::test_resize_center_crop(
                side(&Some(*resize))?,
                side(&Some(*crop))?,
                normalize.clone(),
            ),
            Self::DrocPad => presets::droc_pad(),
            Self::Custom(c) => c.clone(),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}
