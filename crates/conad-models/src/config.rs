//! Typed configuration of the ResNet encoder (docs/reference.md §0 "Backbone default").

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Widths of the four stages of a full-width ResNet-18 (torchvision `layer1`..`layer4`).
pub const FULL_WIDTHS: [usize; 4] = [64, 128, 256, 512];

/// Input stem of the ResNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stem {
    /// CIFAR variant for inputs of at most 64 px: 3×3 stride-1 convolution, no max-pool.
    Cifar,
    /// ImageNet variant for 224 px inputs: 7×7 stride-2 convolution, then 3×3 stride-2 max-pool.
    ImageNet,
}

impl std::fmt::Display for Stem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stem::Cifar => "cifar",
            Stem::ImageNet => "image_net",
        })
    }
}

/// One of the four residual stages (`res1`..`res4` in UniCon-HA's notation, torchvision
/// `layer1`..`layer4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// `layer1`, width 64·w, stride 1 relative to the stem output.
    Res1,
    /// `layer2`, width 128·w, stride 2.
    Res2,
    /// `layer3`, width 256·w, stride 2.
    Res3,
    /// `layer4`, width 512·w, stride 2.
    Res4,
}

impl Stage {
    /// All stages in forward order.
    pub const ALL: [Stage; 4] = [Stage::Res1, Stage::Res2, Stage::Res3, Stage::Res4];

    /// Zero-based position (`Res1` → 0).
    pub const fn index(self) -> usize {
        match self {
            Stage::Res1 => 0,
            Stage::Res2 => 1,
            Stage::Res3 => 2,
            Stage::Res4 => 3,
        }
    }
}

/// Configuration of a BasicBlock ResNet encoder (ResNet-18 by default).
///
/// Parameter names follow torchvision (`conv1`, `bn1`, `layer1.0.conv1`, `layer2.0.downsample.0`,
/// `fc`), so torchvision `resnet18` weights load without renaming when `stem = ImageNet`,
/// `in_channels = 3`, `width_multiplier = 1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResNetConfig {
    /// Input stem (CIFAR for ≤ 64 px inputs, ImageNet for 224 px).
    pub stem: Stem,
    /// Image channels: 3 for RGB, 1 for grayscale (Fashion-MNIST, BreastMNIST).
    pub in_channels: usize,
    /// Scales the stage widths 64/128/256/512 (1, 1/2, 1/4 for CPU budgets); `64·w` must be a
    /// positive integer.
    pub width_multiplier: f64,
    /// BasicBlocks per stage; `[2, 2, 2, 2]` is ResNet-18, `[3, 4, 6, 3]` ResNet-34.
    pub blocks_per_stage: [usize; 4],
    /// Output classes of the optional final linear layer `fc`; `None` = encoder only.
    pub num_classes: Option<usize>,
    /// Batch-norm momentum in PyTorch semantics: `running ← (1−m)·running + m·batch` (0.1 default;
    /// FIRM uses 0.9).
    pub bn_momentum: f64,
    /// Batch-norm epsilon added to the variance.
    pub bn_eps: f64,
}

impl Default for ResNetConfig {
    fn default() -> Self {
        Self {
            stem: Stem::Cifar,
            in_channels: 3,
            width_multiplier: 1.0,
            blocks_per_stage: [2, 2, 2, 2],
            num_classes: None,
            bn_momentum: 0.1,
            bn_eps: 1e-5,
        }
    }
}

impl ResNetConfig {
    /// ResNet-18 with the CIFAR stem (the default).
    pub fn resnet18_cifar() -> Self {
        Self::default()
    }

    /// ResNet-18 with the ImageNet stem, as torchvision's `resnet18` (without `fc` unless
    /// `num_classes` is set).
    pub fn resnet18_imagenet() -> Self {
        Self {
            stem: Stem::ImageNet,
            ..Self::default()
        }
    }

    /// Checks every field; returns the first violation.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field, its value and the accepted domain.
    pub fn validate(&self) -> Result<()> {
        if self.in_channels == 0 {
            return Err(invalid(
                "in_channels",
                self.in_channels,
                "must be ≥ 1 (3 for RGB, 1 for grayscale)",
            ));
        }
        let w = self.width_multiplier;
        let base = 64.0 * w;
        if !(w.is_finite() && w > 0.0 && base >= 1.0 && (base - base.round()).abs() < 1e-9) {
            return Err(invalid(
                "width_multiplier",
                w,
                "64 × width_multiplier must be a positive integer (e.g. 1, 0.5, 0.25, 0.125)",
            ));
        }
        if self.blocks_per_stage.contains(&0) {
            return Err(invalid(
                "blocks_per_stage",
                format!("{:?}", self.blocks_per_stage),
                "every stage needs at least one block ([2, 2, 2, 2] is ResNet-18)",
            ));
        }
        if self.num_classes == Some(0) {
            return Err(invalid(
                "num_classes",
                0,
                "use None for an encoder without `fc`, or a class count ≥ 1",
            ));
        }
        if !(0.0..=1.0).contains(&self.bn_momentum) {
            return Err(invalid(
                "bn_momentum",
                self.bn_momentum,
                "must lie in [0, 1] (PyTorch semantics; 0.1 is the default)",
            ));
        }
        if !(self.bn_eps.is_finite() && self.bn_eps > 0.0) {
            return Err(invalid(
                "bn_eps",
                self.bn_eps,
                "must be positive and finite (1e-5 is the default)",
            ));
        }
        Ok(())
    }

    /// Channel widths of `layer1`..`layer4` after the width multiplier.
    pub fn stage_widths(&self) -> [usize; 4] {
        FULL_WIDTHS.map(|c| (c as f64 * self.width_multiplier).round() as usize)
    }

    /// Width of the stem output (equals `stage_widths()[0]`).
    pub fn stem_width(&self) -> usize {
        self.stage_widths()[0]
    }

    /// Dimension of the pooled feature (512·w).
    pub fn feature_dim(&self) -> usize {
        self.stage_widths()[3]
    }

    /// One sentence per field in which `checkpoint` (the stored config) differs from `self` (the
    /// requested config), e.g. `checkpoint has width_multiplier 0.25, config asks 1`. Empty when
    /// the architectures agree (BN momentum is a training hyper-parameter and is not compared).
    pub fn differences_from(&self, checkpoint: &ResNetConfig) -> Vec<String> {
        let mut out = Vec::new();
        let mut cmp = |name: &str, have: String, want: String| {
            if have != want {
                out.push(format!("checkpoint has {name} {have}, config asks {want}"));
            }
        };
        cmp("stem", checkpoint.stem.to_string(), self.stem.to_string());
        cmp(
            "in_channels",
            checkpoint.in_channels.to_string(),
            self.in_channels.to_string(),
        );
        cmp(
            "width_multiplier",
            checkpoint.width_multiplier.to_string(),
            self.width_multiplier.to_string(),
        );
        cmp(
            "blocks_per_stage",
            format!("{:?}", checkpoint.blocks_per_stage),
            format!("{:?}", self.blocks_per_stage),
        );
        cmp(
            "num_classes",
            format!("{:?}", checkpoint.num_classes),
            format!("{:?}", self.num_classes),
        );
        cmp(
            "bn_eps",
            checkpoint.bn_eps.to_string(),
            self.bn_eps.to_string(),
        );
        out
    }
}

fn invalid(field: &'static str, value: impl ToString, reason: &str) -> Error {
    Error::invalid(field, value, reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_resnet18_cifar_and_valid() {
        let c = ResNetConfig::default();
        c.validate().unwrap();
        assert_eq!(c.stage_widths(), [64, 128, 256, 512]);
        assert_eq!(c.feature_dim(), 512);
        assert_eq!(c.stem, Stem::Cifar);
    }

    #[test]
    fn width_multiplier_scales_widths() {
        let c = ResNetConfig {
            width_multiplier: 0.25,
            ..Default::default()
        };
        c.validate().unwrap();
        assert_eq!(c.stage_widths(), [16, 32, 64, 128]);
        let c = ResNetConfig {
            width_multiplier: 0.5,
            ..Default::default()
        };
        assert_eq!(c.stage_widths(), [32, 64, 128, 256]);
    }

    #[test]
    fn invalid_fields_are_named() {
        for (cfg, field) in [
            (
                ResNetConfig {
                    width_multiplier: 0.3,
                    ..Default::default()
                },
                "width_multiplier",
            ),
            (
                ResNetConfig {
                    width_multiplier: f64::NAN,
                    ..Default::default()
                },
                "width_multiplier",
            ),
            (
                ResNetConfig {
                    in_channels: 0,
                    ..Default::default()
                },
                "in_channels",
            ),
            (
                ResNetConfig {
                    num_classes: Some(0),
                    ..Default::default()
                },
                "num_classes",
            ),
            (
                ResNetConfig {
                    bn_momentum: 1.5,
                    ..Default::default()
                },
                "bn_momentum",
            ),
            (
                ResNetConfig {
                    blocks_per_stage: [2, 0, 2, 2],
                    ..Default::default()
                },
                "blocks_per_stage",
            ),
            (
                ResNetConfig {
                    bn_eps: 0.0,
                    ..Default::default()
                },
                "bn_eps",
            ),
        ] {
            match cfg.validate() {
                Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("expected InvalidConfig for {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn serde_roundtrip_and_unknown_fields_rejected() {
        let c = ResNetConfig {
            stem: Stem::ImageNet,
            in_channels: 1,
            width_multiplier: 0.5,
            num_classes: Some(4),
            ..Default::default()
        };
        let json = serde_json::to_string(&c).unwrap();
        let back: ResNetConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let partial: ResNetConfig = serde_json::from_str(r#"{"width_multiplier":0.25}"#).unwrap();
        assert_eq!(partial.stage_widths(), [16, 32, 64, 128]);
        assert!(serde_json::from_str::<ResNetConfig>(r#"{"widht":1}"#).is_err());
    }

    #[test]
    fn differences_name_the_field_and_both_values() {
        let stored = ResNetConfig {
            width_multiplier: 0.25,
            ..Default::default()
        };
        let asked = ResNetConfig::default();
        let d = asked.differences_from(&stored);
        assert_eq!(
            d,
            vec!["checkpoint has width_multiplier 0.25, config asks 1"]
        );
        assert!(asked.differences_from(&asked.clone()).is_empty());
    }
}
