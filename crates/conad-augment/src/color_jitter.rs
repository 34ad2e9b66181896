//! `ColorJitter` with torchvision 0.14 tensor-backend semantics (docs/reference.md §3.1 step 3, §3.3, §3.4).
//!
//! One application draws a random order of the four operations (a uniform permutation, as
//! `torch.randperm(4)`), then the factors `b, c, s ~ U[max(0, 1−x), 1+x]` and `δ ~ U[−h, h]`
//! (a strength of 0 disables the operation and draws nothing), and applies in that order:
//! - brightness: `x ← clamp(b·x, 0, 1)`;
//! - contrast: `x ← clamp(c·x + (1−c)·m, 0, 1)` with `m` the mean of the grayscale image;
//! - saturation: `x ← clamp(s·x + (1−s)·L(x), 0, 1)` with `L` the per-pixel luma;
//! - hue: `H ← (H + δ) mod 1` in HSV ([`crate::hsv`]).
//!
//! Factors are applied in f32, like torch on float tensors. The papers' PIL pipelines quantise to
//! uint8 after every operation; conad does not (tensor semantics, as CSI's GPU pipeline).
//! Saturation and hue leave grey (1-channel) images unchanged, as torchvision does.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::crop::uniform;
use crate::error::{Error, Result};
use crate::grayscale::{LumaWeights, luma};
use crate::hsv::adjust_hue_unchecked;
use crate::image::Image;
use crate::simd::multiversion;

/// `RandomApply(ColorJitter(brightness, contrast, saturation, hue), p)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColorJitter {
    /// Brightness strength `x ≥ 0`: factor ~ U[max(0, 1−x), 1+x].
    pub brightness: f64,
    /// Contrast strength `x ≥ 0`.
    pub contrast: f64,
    /// Saturation strength `x ≥ 0`.
    pub saturation: f64,
    /// Hue strength `0 ≤ h ≤ 0.5`: shift ~ U[−h, h] turns.
    pub hue: f64,
    /// Probability of applying the jitter at all.
    pub p: f64,
}

impl Default for ColorJitter {
    /// SimCLR CIFAR strength (s = 0.5): (0.4, 0.4, 0.4, 0.1) with p = 0.8 (docs/reference.md §3.1).
    fn default() -> Self {
        Self::simclr(0.5, 0.8)
    }
}

/// One of the four jitter operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JitterOp {
    /// Multiply by the brightness factor.
    Brightness,
    /// Blend with the mean grey level.
    Contrast,
    /// Blend with the per-pixel grey level.
    Saturation,
    /// Rotate the hue.
    Hue,
}

/// The drawn parameters of one jitter application (torchvision `ColorJitter.get_params`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JitterParams {
    /// Order in which the operations run.
    pub order: [JitterOp; 4],
    /// Brightness factor, `None` when disabled.
    pub brightness: Option<f32>,
    /// Contrast factor, `None` when disabled.
    pub contrast: Option<f32>,
    /// Saturation factor, `None` when disabled.
    pub saturation: Option<f32>,
    /// Hue shift in turns, `None` when disabled.
    pub hue: Option<f32>,
}

impl ColorJitter {
    /// SimCLR colour distortion of strength `s`: (0.8s, 0.8s, 0.8s, 0.2s), applied with `p`.
    pub fn simclr(s: f64, p: f64) -> Self {
        Self {
            brightness: 0.8 * s,
            contrast: 0.8 * s,
            saturation: 0.8 * s,
            hue: 0.2 * s,
            p,
        }
    }

    /// Checks the strengths and the probability.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a negative or non-finite strength or a hue strength above
    /// 0.5; [`Error::InvalidProbability`] for `p ∉ [0, 1]`.
    pub fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("color_jitter.brightness", self.brightness),
            ("color_jitter.contrast", self.contrast),
            ("color_jitter.saturation", self.saturation),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::invalid(what, v, "need a finite strength ≥ 0"));
            }
        }
        if !(0.0..=0.5).contains(&self.hue) {
            return Err(Error::invalid(
                "color_jitter.hue",
                self.hue,
                "need 0 ≤ hue ≤ 0.5 (turns)",
            ));
        }
        check_probability("color_jitter.p", self.p)
    }

    /// Draws whether to apply (probability `p`) and, if so, the order and factors.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<JitterParams> {
        if rng.random::<f64>() >= self.p {
            return None;
        }
        Some(self.sample_params(rng))
    }

    /// Draws the order and factors (the jitter itself always applies).
    pub fn sample_params<R: Rng + ?Sized>(&self, rng: &mut R) -> JitterParams {
        let mut order = [
            JitterOp::Brightness,
            JitterOp::Contrast,
            JitterOp::Saturation,
            JitterOp::Hue,
        ];
        order.shuffle(rng);
        let mut factor = |x: f64| -> Option<f32> {
            // f32 like torch's `uniform_` on a float tensor.
            #[allow(clippy::cast_possible_truncation)]
            (x > 0.0).then(|| uniform(rng, (1.0 - x).max(0.0), 1.0 + x) as f32)
        };
        let brightness = factor(self.brightness);
        let contrast = factor(self.contrast);
        let saturation = factor(self.saturation);
        #[allow(clippy::cast_possible_truncation)]
        let hue = (self.hue > 0.0).then(|| uniform(rng, -self.hue, self.hue) as f32);
        JitterParams {
            order,
            brightness,
            contrast,
            saturation,
            hue,
        }
    }
}

/// Applies drawn jitter parameters in their order.
pub fn apply_jitter(img: &mut Image, params: &JitterParams, weights: LumaWeights) {
    for op in params.order {
        match op {
            JitterOp::Brightness => {
                if let Some(f) = params.brightness {
                    brightness_unchecked(img, f);
                }
            }
            JitterOp::Contrast => {
                if let Some(f) = params.contrast {
                    contrast_unchecked(img, f, weights);
                }
            }
            JitterOp::Saturation => {
                if let Some(f) = params.saturation {
                    saturation_unchecked(img, f, weights);
                }
            }
            JitterOp::Hue => {
                if let Some(d) = params.hue {
                    adjust_hue_unchecked(img, d);
                }
            }
        }
    }
}

/// `Err` unless `p ∈ [0, 1]`.
pub(crate) fn check_probability(what: &str, p: f64) -> Result<()> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::InvalidProbability {
            what: what.into(),
            p,
        })
    }
}

fn check_factor(what: &str, f: f32) -> Result<()> {
    if f >= 0.0 && f.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(
            what,
            f64::from(f),
            "need a finite factor ≥ 0",
        ))
    }
}

/// `x ← clamp(f·x, 0, 1)` (torchvision `F.adjust_brightness`).
///
/// # Errors
/// [`Error::InvalidParameter`] for a negative or non-finite factor.
pub fn adjust_brightness(img: &mut Image, factor: f32) -> Result<()> {
    check_factor("brightness_factor", factor)?;
    brightness_unchecked(img, factor);
    Ok(())
}

/// `x ← clamp(f·x + (1−f)·mean(grey), 0, 1)` (torchvision `F.adjust_contrast`); for a grey
/// image the mean is that of the image itself.
///
/// # Errors
/// [`Error::InvalidParameter`] for a negative or non-finite factor.
pub fn adjust_contrast(img: &mut Image, factor: f32, weights: LumaWeights) -> Result<()> {
    check_factor("contrast_factor", factor)?;
    contrast_unchecked(img, factor, weights);
    Ok(())
}

/// `x ← clamp(f·x + (1−f)·L, 0, 1)` per pixel (torchvision `F.adjust_saturation`); grey images
/// are unchanged.
///
/// # Errors
/// [`Error::InvalidParameter`] for a negative or non-finite factor.
pub fn adjust_saturation(img: &mut Image, factor: f32, weights: LumaWeights) -> Result<()> {
    check_factor("saturation_factor", factor)?;
    saturation_unchecked(img, factor, weights);
    Ok(())
}

pub(crate) fn brightness_unchecked(img: &mut Image, f: f32) {
    scale_clamp(img.data_mut(), f, 0.0);
}

multiversion! {
    /// `x ← clamp(f·x + offset, 0, 1)`.
    fn scale_clamp(data: &mut [f32], f: f32, offset: f32) {
        if offset == 0.0 {
            // Brightness: torch adds (1 − f)·0 = 0, which changes nothing.
            for x in data.iter_mut() {
                *x = (f * *x).clamp(0.0, 1.0);
            }
        } else {
            for x in data.iter_mut() {
                *x = (f * *x + offset).clamp(0.0, 1.0);
            }
        }
    }
}

multiversion! {
    /// Σ luma over a block of pixels, in f32 (at most 64 values per call).
    fn luma_block_sum(r: &[f32], g: &[f32], b: &[f32], w: [f32; 3]) -> f32 {
        let mut acc = 0.0f32;
        for ((&r, &g), &b) in r.iter().zip(g).zip(b) {
            acc += luma(r, g, b, w);
        }
        acc
    }
}

/// Mean of the grayscale image: f32 sums over blocks of 64 pixels, accumulated in f64.
pub(crate) fn grey_mean(img: &Image, weights: LumaWeights) -> f32 {
    let n = img.height() * img.width();
    let sum: f64 = if img.channels() == 3 {
        let w = weights.coefficients();
        let (r, g, b) = (img.plane(0), img.plane(1), img.plane(2));
        r.chunks(64)
            .zip(g.chunks(64))
            .zip(b.chunks(64))
            .map(|((r, g), b)| f64::from(luma_block_sum(r, g, b, w)))
            .sum()
    } else {
        img.plane(0).iter().map(|&v| f64::from(v)).sum()
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let mean = (sum / n as f64) as f32;
    mean
}

pub(crate) fn contrast_unchecked(img: &mut Image, f: f32, weights: LumaWeights) {
    let mean = grey_mean(img, weights);
    scale_clamp(img.data_mut(), f, (1.0 - f) * mean);
}

pub(crate) fn saturation_unchecked(img: &mut Image, f: f32, weights: LumaWeights) {
    if let Some((r, g, b)) = img.rgb_planes_mut() {
        saturation_planes(r, g, b, f, weights.coefficients());
    }
}

multiversion! {
    fn saturation_planes(r: &mut [f32], gr: &mut [f32], b: &mut [f32], f: f32, w: [f32; 3]) {
        let g = 1.0 - f;
        for ((r, gr), b) in r.iter_mut().zip(gr.iter_mut()).zip(b.iter_mut()) {
            let l = g * luma(*r, *gr, *b, w);
            *r = (f * *r + l).clamp(0.0, 1.0);
            *gr = (f * *gr + l).clamp(0.0, 1.0);
            *b = (f * *b + l).clamp(0.0, 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conad_rng::SeedTree;

    #[test]
    fn hand_computed_brightness_contrast_saturation() {
        let base = Image::new(3, 1, 2, vec![0.2, 0.8, 0.4, 0.6, 0.1, 0.9]).unwrap();
        let mut b = base.clone();
        adjust_brightness(&mut b, 1.5).unwrap();
        let want = [0.3, 1.0, 0.6, 0.9, 0.15, 1.0];
        for (g, w) in b.data().iter().zip(want) {
            assert!((g - w).abs() < 1e-6);
        }
        // Pixels (r,g,b) = (0.2, 0.4, 0.1) and (0.8, 0.6, 0.9). ITU-601 luma:
        // 0.299·0.2 + 0.587·0.4 + 0.114·0.1 = 0.0598 + 0.2348 + 0.0114 = 0.306,
        // 0.299·0.8 + 0.587·0.6 + 0.114·0.9 = 0.2392 + 0.3522 + 0.1026 = 0.694; mean 0.5.
        // Contrast 0.5: 0.5·0.2 + 0.5·0.5 = 0.35.
        let mut c = base.clone();
        adjust_contrast(&mut c, 0.5, LumaWeights::Itu601).unwrap();
        assert!((c.data()[0] - 0.35).abs() < 1e-6, "{:?}", c.data());
        // Saturation 0: every channel becomes the luma.
        let mut s = base.clone();
        adjust_saturation(&mut s, 0.0, LumaWeights::Itu601).unwrap();
        assert!((s.data()[0] - 0.306).abs() < 1e-6 && (s.data()[4] - 0.306).abs() < 1e-6);
        assert!((s.data()[1] - 0.694).abs() < 1e-6);
        assert!(adjust_brightness(&mut s, -1.0).is_err());
    }

    #[test]
    fn grey_contrast_uses_own_mean_and_saturation_is_noop() {
        let mut g = Image::new(1, 1, 2, vec![0.2, 0.6]).unwrap();
        adjust_saturation(&mut g, 0.0, LumaWeights::Itu601).unwrap();
        assert_eq!(g.data(), &[0.2, 0.6]);
        adjust_contrast(&mut g, 0.0, LumaWeights::Itu601).unwrap();
        assert!((g.data()[0] - 0.4).abs() < 1e-7 && (g.data()[1] - 0.4).abs() < 1e-7);
    }

    #[test]
    fn factors_stay_in_range_and_all_orders_occur() {
        let cj = ColorJitter {
            brightness: 0.4,
            contrast: 1.5,
            saturation: 0.4,
            hue: 0.1,
            p: 1.0,
        };
        cj.validate().unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut rng = SeedTree::new(3).rng();
        for _ in 0..2000 {
            let p = cj.sample(&mut rng).unwrap();
            let b = p.brightness.unwrap();
            assert!((0.6..=1.4).contains(&b));
            // Contrast 1.5 → [max(0, −0.5), 2.5] = [0, 2.5].
            assert!((0.0..=2.5).contains(&p.contrast.unwrap()));
            assert!((-0.1..=0.1).contains(&p.hue.unwrap()));
            seen.insert(p.order);
        }
        assert_eq!(seen.len(), 24, "every permutation of 4 ops must occur");
        // p = 0 never applies; zero strengths draw nothing.
        let off = ColorJitter {
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            hue: 0.0,
            p: 0.0,
        };
        assert!(off.sample(&mut rng).is_none());
        let p = off.sample_params(&mut rng);
        assert!(p.brightness.is_none() && p.hue.is_none());
    }

    #[test]
    fn validate_rejects_bad_values() {
        let ok = ColorJitter::default();
        assert!(ok.validate().is_ok());
        assert!(matches!(
            ColorJitter { p: 1.2, ..ok.clone() }.validate(),
            Err(Error::InvalidProbability { p, .. }) if p == 1.2
        ));
        assert!(
            ColorJitter {
                hue: 0.6,
                ..ok.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            ColorJitter {
                brightness: -0.1,
                ..ok.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            ColorJitter {
                contrast: f64::NAN,
                ..ok
            }
            .validate()
            .is_err()
        );
    }
}
