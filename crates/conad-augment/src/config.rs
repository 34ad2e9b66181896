//! The serde-described augmentation pipeline (docs/reference.md §3): an ordered list of typed [`Step`]s plus
//! the luma weights, with `Default` (SimCLR CIFAR, §3.1) and [`AugmentConfig::validate`].
//!
//! TOML form (one `[[steps]]` table per step, tagged by `op`):
//! ```toml
//! luma = "itu601"
//! [[steps]]
//! op = "random_resized_crop"
//! size = [32, 32]
//! scale = [0.08, 1.0]
//! ratio = [0.75, 1.3333333]
//! [[steps]]
//! op = "horizontal_flip"
//! p = 0.5
//! ```

use serde::{Deserialize, Serialize};

use crate::blur::GaussianBlur;
use crate::color_jitter::{ColorJitter, check_probability};
use crate::crop::{RandomResizedCrop, center_crop_rect};
use crate::cutperm::check_index;
use crate::error::{Error, Result};
use crate::grayscale::LumaWeights;
use crate::image::check_shape;
use crate::normalize::Normalize;
use crate::resize::shorter_side_size;
use crate::rotate::check_quarter_turns;
use crate::shift::Shift;

/// One step of a pipeline. Random steps draw from the view's random stream in pipeline order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// Replicate a grey channel to RGB (no-op on RGB images).
    ToRgb,
    /// Pad every side with `pixels` of `value` (DROC: 2 px of 0, 28 → 32).
    Pad {
        /// Rows/columns added on each side.
        pixels: usize,
        /// Fill value.
        #[serde(default)]
        value: f32,
    },
    /// Bilinear resize to exactly `height × width`.
    Resize {
        /// Output height.
        height: usize,
        /// Output width.
        width: usize,
    },
    /// Bilinear resize of the shorter side to `size` (torchvision `Resize(int)`).
    ResizeShorter {
        /// Target length of the shorter side.
        size: usize,
    },
    /// Centre crop (torchvision `CenterCrop`), must fit inside the image.
    CenterCrop {
        /// Crop height.
        height: usize,
        /// Crop width.
        width: usize,
    },
    /// `RandomResizedCrop` (random crop, then bilinear resize).
    RandomResizedCrop(RandomResizedCrop),
    /// Mirror left ↔ right with probability `p`.
    HorizontalFlip {
        /// Probability.
        p: f64,
    },
    /// Reverse the row order with probability `p` (p = 1: CON2's flip context).
    VerticalFlip {
        /// Probability.
        p: f64,
    },
    /// `RandomApply(ColorJitter, p)`.
    ColorJitter(ColorJitter),
    /// `RandomGrayscale(p)`: replace RGB by three copies of the luma.
    RandomGrayscale {
        /// Probability.
        p: f64,
    },
    /// `RandomApply(GaussianBlur, p)`.
    GaussianBlur(GaussianBlur),
    /// Fixed counter-clockwise rotation.
    Rotate {
        /// 0–3.
        quarter_turns: u8,
    },
    /// Fixed CutPerm.
    CutPerm {
        /// 0–3.
        index: u8,
    },
    /// `x ← 1 − x`.
    Invert,
    /// PIL histogram equalisation (on 8-bit levels).
    Equalize,
    /// Where the batch's shifting / context transform acts (at most one slot).
    Shift,
    /// `(x − mean)/std` per channel; normally the last step.
    Normalize(Normalize),
}

/// A complete augmentation pipeline: one source image → one view per call, steps in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    /// Steps, applied in order to every view.
    pub steps: Vec<Step>,
    /// Grayscale weights used by `RandomGrayscale`, contrast and saturation.
    #[serde(default)]
    pub luma: LumaWeights,
}

impl Default for AugmentConfig {
    /// SimCLR at CIFAR strength, 32 px (docs/reference.md §3.1): [`crate::presets::simclr_cifar`].
    fn default() -> Self {
        crate::presets::simclr_cifar(32)
    }
}

fn nonzero(what: &str, height: usize, width: usize) -> Result<()> {
    if height == 0 || width == 0 {
        Err(Error::EmptySize {
            what: what.into(),
            height,
            width,
        })
    } else {
        Ok(())
    }
}

impl Step {
    /// Checks the step's parameters (independently of any image).
    ///
    /// # Errors
    /// The step's typed error: zero sizes, probabilities outside [0, 1], reversed ranges, even
    /// blur kernels, bad normalisation constants, shift indices above 3.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::ToRgb | Self::Invert | Self::Equalize | Self::Shift => Ok(()),
            Self::Pad { value, .. } => {
                if value.is_finite() {
                    Ok(())
                } else {
                    Err(Error::invalid(
                        "pad.value",
                        f64::from(*value),
                        "need a finite fill value",
                    ))
                }
            }
            Self::Resize { height, width } => nonzero("resize", *height, *width),
            Self::ResizeShorter { size } => nonzero("resize_shorter.size", *size, *size),
            Self::CenterCrop { height, width } => nonzero("center_crop", *height, *width),
            Self::RandomResizedCrop(c) => c.validate(),
            Self::HorizontalFlip { p } => check_probability("horizontal_flip.p", *p),
            Self::VerticalFlip { p } => check_probability("vertical_flip.p", *p),
            Self::ColorJitter(c) => c.validate(),
            Self::RandomGrayscale { p } => check_probability("random_grayscale.p", *p),
            Self::GaussianBlur(b) => b.validate(),
            Self::Rotate { quarter_turns } => check_quarter_turns(*quarter_turns),
            Self::CutPerm { index } => check_index(*index),
            Self::Normalize(n) => n.validate(),
        }
    }

    /// Shape `[C, H, W]` after this step for an input of `shape` (the shift slot under `shift`).
    ///
    /// # Errors
    /// [`Error::CropOutOfBounds`] for a centre crop larger than the image,
    /// [`Error::NormalizeLength`] for constants that do not fit the channel count.
    pub fn output_shape(&self, shape: [usize; 3], shift: Shift) -> Result<[usize; 3]> {
        let [c, h, w] = shape;
        Ok(match self {
            Self::ToRgb => [3, h, w],
            Self::Pad { pixels, .. } => [c, h + 2 * pixels, w + 2 * pixels],
            Self::Resize { height, width } => [c, *height, *width],
            Self::ResizeShorter { size } => {
                let (oh, ow) = shorter_side_size(h, w, *size);
                [c, oh, ow]
            }
            Self::CenterCrop { height, width } => {
                center_crop_rect(h, w, *height, *width)?;
                [c, *height, *width]
            }
            Self::RandomResizedCrop(r) => [c, r.size[0], r.size[1]],
            Self::Rotate { quarter_turns } if quarter_turns % 2 == 1 => [c, w, h],
            Self::Shift => {
                let (oh, ow) = shift.output_size(h, w);
                [c, oh, ow]
            }
            Self::Normalize(n) => {
                n.check_channels(c)?;
                shape
            }
            _ => shape,
        })
    }
}

impl AugmentConfig {
    /// A pipeline from steps with the default (ITU-R 601) luma weights.
    pub fn from_steps(steps: Vec<Step>) -> Self {
        Self {
            steps,
            luma: LumaWeights::default(),
        }
    }

    /// The same pipeline with a `ToRgb` step in front (grey datasets into RGB pipelines, e.g.
    /// Fashion-MNIST for FIRM, docs/reference.md §3.4).
    #[must_use]
    pub fn with_grey_to_rgb(mut self) -> Self {
        if self.steps.first() != Some(&Step::ToRgb) {
            self.steps.insert(0, Step::ToRgb);
        }
        self
    }

    /// Checks every step and that there is at most one shift slot.
    ///
    /// # Errors
    /// The first invalid step's error, or [`Error::DuplicateShiftSlot`].
    pub fn validate(&self) -> Result<()> {
        for step in &self.steps {
            step.validate()?;
        }
        let count = self.steps.iter().filter(|s| **s == Step::Shift).count();
        if count > 1 {
            return Err(Error::DuplicateShiftSlot { count });
        }
        Ok(())
    }

    /// Index of the step before which the shift acts (the slot's index, or 0 without a slot).
    pub fn shift_position(&self) -> usize {
        self.steps
            .iter()
            .position(|s| *s == Step::Shift)
            .unwrap_or(0)
    }

    /// Shape `[C, H, W]` of the views produced from `[C, H, W]` inputs under `shift`.
    ///
    /// # Errors
    /// [`AugmentConfig::validate`]'s errors, [`Error::UnsupportedChannels`] /
    /// [`Error::EmptySize`] for a bad input shape, and the shape errors of
    /// [`Step::output_shape`].
    pub fn output_shape(&self, input: [usize; 3], shift: Shift) -> Result<[usize; 3]> {
        self.validate()?;
        shift.validate()?;
        check_shape(input[0], input[1], input[2], "input image")?;
        let has_slot = self.steps.contains(&Step::Shift);
        let mut shape = input;
        if !has_slot {
            let (h, w) = shift.output_size(shape[1], shape[2]);
            shape = [shape[0], h, w];
        }
        for step in &self.steps {
            shape = step.output_shape(shape, shift)?;
        }
        Ok(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presets;

    #[test]
    fn default_is_simclr_cifar_and_valid() {
        let c = AugmentConfig::default();
        c.validate().unwrap();
        assert_eq!(
            c.output_shape([3, 32, 32], Shift::Identity).unwrap(),
            [3, 32, 32]
        );
        assert_eq!(
            c.output_shape([1, 28, 28], Shift::Identity).unwrap(),
            [1, 32, 32]
        );
    }

    #[test]
    fn validate_reports_typed_errors() {
        let bad_scale =
            AugmentConfig::from_steps(vec![Step::RandomResizedCrop(RandomResizedCrop {
                scale: [0.8, 0.1],
                ..RandomResizedCrop::default()
            })]);
        assert!(matches!(
            bad_scale.validate(),
            Err(Error::InvalidRange { .. })
        ));
        let bad_p = AugmentConfig::from_steps(vec![Step::HorizontalFlip { p: -0.1 }]);
        assert!(matches!(
            bad_p.validate(),
            Err(Error::InvalidProbability { .. })
        ));
        let zero_crop = AugmentConfig::from_steps(vec![Step::CenterCrop {
            height: 0,
            width: 32,
        }]);
        assert!(matches!(zero_crop.validate(), Err(Error::EmptySize { .. })));
        let two_slots = AugmentConfig::from_steps(vec![Step::Shift, Step::Shift]);
        assert_eq!(
            two_slots.validate(),
            Err(Error::DuplicateShiftSlot { count: 2 })
        );
        let blur = AugmentConfig::from_steps(vec![Step::GaussianBlur(GaussianBlur {
            kernel_size: 4,
            ..GaussianBlur::default()
        })]);
        assert_eq!(blur.validate(), Err(Error::InvalidKernelSize { size: 4 }));
    }

    #[test]
    fn output_shape_tracks_geometry_and_checks_fit() {
        let c = AugmentConfig::from_steps(vec![
            Step::Pad {
                pixels: 2,
                value: 0.0,
            },
            Step::Shift,
            Step::CenterCrop {
                height: 30,
                width: 20,
            },
            Step::ToRgb,
        ]);
        assert_eq!(
            c.output_shape([1, 28, 28], Shift::Identity).unwrap(),
            [3, 30, 20]
        );
        assert_eq!(
            c.output_shape([1, 28, 28], Shift::Rotate { quarter_turns: 1 })
                .unwrap(),
            [3, 30, 20]
        );
        let too_big = AugmentConfig::from_steps(vec![Step::CenterCrop {
            height: 40,
            width: 4,
        }]);
        assert!(matches!(
            too_big.output_shape([3, 32, 32], Shift::Identity),
            Err(Error::CropOutOfBounds { .. })
        ));
        let norm = presets::firm(32, Normalize::cifar10());
        assert!(matches!(
            norm.output_shape([1, 32, 32], Shift::Identity),
            Err(Error::NormalizeLength { channels: 1, .. })
        ));
        assert!(matches!(
            norm.output_shape([2, 32, 32], Shift::Identity),
            Err(Error::UnsupportedChannels { channels: 2 })
        ));
        // Rotation of a non-square image without a later resize changes the shape.
        let rot = AugmentConfig::from_steps(vec![]);
        assert_eq!(
            rot.output_shape([3, 4, 6], Shift::Rotate { quarter_turns: 3 })
                .unwrap(),
            [3, 6, 4]
        );
    }

    #[test]
    fn documented_toml_form_parses() {
        let text = r#"
luma = "itu601"
[[steps]]
op = "random_resized_crop"
size = [32, 32]
scale = [0.08, 1.0]
ratio = [0.75, 1.3333333]
[[steps]]
op = "horizontal_flip"
p = 0.5
[[steps]]
op = "color_jitter"
brightness = 0.4
contrast = 0.4
saturation = 0.4
hue = 0.1
p = 0.8
[[steps]]
op = "shift"
[[steps]]
op = "normalize"
mean = [0.5]
std = [0.5]
"#;
        let c: AugmentConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.steps.len(), 5);
        assert_eq!(c.steps[2], Step::ColorJitter(ColorJitter::default()));
        assert_eq!(c.steps[4], Step::Normalize(Normalize::half()));
        let back: AugmentConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn serde_round_trip_and_unknown_fields() {
        for c in [
            presets::simclr_cifar(32),
            presets::csi(32),
            presets::firm(32, Normalize::cifar10()),
            presets::firm_test(32, Normalize::cifar10()),
        ] {
            let json = serde_json::to_string(&c).unwrap();
            let back: AugmentConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(back, c);
        }
        let json = r#"{"steps":[{"op":"horizontal_flip","p":0.5},{"op":"shift"}]}"#;
        let c: AugmentConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.steps, vec![Step::HorizontalFlip { p: 0.5 }, Step::Shift]);
        assert_eq!(c.luma, LumaWeights::Itu601);
        let typo = r#"{"steps":[{"op":"random_resized_crop","size":[32,32],"scale":[0.1,1.0],"ratio":[1.0,1.0],"scael":1}]}"#;
        assert!(serde_json::from_str::<AugmentConfig>(typo).is_err());
        let unknown_op = r#"{"steps":[{"op":"solarize"}]}"#;
        assert!(serde_json::from_str::<AugmentConfig>(unknown_op).is_err());
    }
}
