//! Crops: fixed rectangles, centre crops and the parameter draw of `RandomResizedCrop`
//! (docs/reference.md §3.1 step 1, §3.3, §3.4, §2.3–§2.4, §3.6).
//!
//! The parameter draw follows torchvision 0.14 `RandomResizedCrop.get_params` exactly, apart from
//! the random source (conad's seed tree instead of torch's global generator):
//! up to 10 attempts of `target_area = H·W·U(scale)`, `aspect = exp(U(log ratio))`,
//! `w = round(√(target_area·aspect))`, `h = round(√(target_area/aspect))` (Python `round`, i.e.
//! half to even), accepted when `0 < w ≤ W` and `0 < h ≤ H`, then `top ~ U{0..H−h}`,
//! `left ~ U{0..W−w}`; otherwise the centre-crop fallback (clip the image's aspect ratio into
//! `ratio`, centre it). The crop is then resized by [`crate::resize::resized_crop`].

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::image::Image;

/// A crop rectangle inside an image (torchvision's `(i, j, h, w)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CropRect {
    /// First row (torchvision `i`).
    pub top: usize,
    /// First column (torchvision `j`).
    pub left: usize,
    /// Number of rows (torchvision `h`).
    pub height: usize,
    /// Number of columns (torchvision `w`).
    pub width: usize,
}

impl CropRect {
    /// Checks that the rectangle is non-empty and inside an `image_height × image_width` image.
    ///
    /// # Errors
    /// [`Error::CropOutOfBounds`] otherwise.
    pub fn check_inside(&self, image_height: usize, image_width: usize) -> Result<()> {
        let fits = self.height > 0
            && self.width > 0
            && self
                .top
                .checked_add(self.height)
                .is_some_and(|b| b <= image_height)
            && self
                .left
                .checked_add(self.width)
                .is_some_and(|r| r <= image_width);
        if fits {
            Ok(())
        } else {
            Err(Error::CropOutOfBounds {
                top: self.top,
                left: self.left,
                height: self.height,
                width: self.width,
                image_height,
                image_width,
            })
        }
    }
}

/// Crops `rect` out of `img` (no resampling).
///
/// # Shapes
/// (C, H, W) → (C, rect.height, rect.width).
///
/// # Errors
/// [`Error::CropOutOfBounds`] if the rectangle is empty or leaves the image.
pub fn crop(img: &Image, rect: CropRect) -> Result<Image> {
    rect.check_inside(img.height(), img.width())?;
    let mut out = Image::empty();
    crop_into(img, rect, &mut out);
    Ok(out)
}

/// [`crop`] into a reusable image; the rectangle has been checked.
pub(crate) fn crop_into(img: &Image, rect: CropRect, out: &mut Image) {
    out.reshape(img.channels(), rect.height, rect.width);
    let w = img.width();
    for c in 0..img.channels() {
        let src = img.plane(c);
        let dst = out.plane_mut(c);
        for (y, row) in dst.chunks_exact_mut(rect.width).enumerate() {
            let start = (rect.top + y) * w + rect.left;
            row.copy_from_slice(&src[start..start + rect.width]);
        }
    }
}

/// The centred `height × width` rectangle of an `image_height × image_width` image, placed like
/// torchvision `F.center_crop`: `top = round((H − h)/2)`, `left = round((W − w)/2)` with Python's
/// half-to-even rounding.
///
/// # Errors
/// [`Error::CropOutOfBounds`] if the crop is empty or larger than the image (torchvision would
/// zero-pad; conad asks for an explicit [`crate::pad::pad`] instead).
pub fn center_crop_rect(
    image_height: usize,
    image_width: usize,
    height: usize,
    width: usize,
) -> Result<CropRect> {
    let centre = |outer: usize, inner: usize| -> usize {
        if inner > outer {
            0
        } else {
            half_to_even_usize((outer - inner) as f64 / 2.0)
        }
    };
    let rect = CropRect {
        top: centre(image_height, height),
        left: centre(image_width, width),
        height,
        width,
    };
    rect.check_inside(image_height, image_width)?;
    Ok(rect)
}

/// `int(round(x))` in Python for a non-negative, finite `x`.
fn half_to_even_usize(x: f64) -> usize {
    debug_assert!(x >= 0.0 && x.is_finite());
    // `x` is non-negative and finite, so the rounded value converts exactly (saturating for
    // absurd sizes, which the bound checks then reject).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let v = x.round_ties_even() as usize;
    v
}

/// Parameters of a `RandomResizedCrop` (torchvision semantics, bilinear resize).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomResizedCrop {
    /// Output size `[height, width]`.
    pub size: [usize; 2],
    /// Range of the crop area as a fraction of the image area, `[min, max]` with
    /// `0 < min ≤ max ≤ 1`.
    pub scale: [f64; 2],
    /// Range of the crop aspect ratio width/height, `[min, max]` with `0 < min ≤ max`; drawn
    /// log-uniformly.
    pub ratio: [f64; 2],
}

impl Default for RandomResizedCrop {
    /// torchvision's defaults at 32 px: scale (0.08, 1), ratio (3/4, 4/3).
    fn default() -> Self {
        Self {
            size: [32, 32],
            scale: [0.08, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
        }
    }
}

/// The outcome of one `RandomResizedCrop` parameter draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropSample {
    /// The rectangle to crop.
    pub rect: CropRect,
    /// `true` when all 10 attempts failed and the centre-crop fallback was used.
    pub fallback: bool,
}

/// Number of rejection-sampling attempts before the centre-crop fallback (torchvision: 10).
pub const RANDOM_RESIZED_CROP_ATTEMPTS: usize = 10;

impl RandomResizedCrop {
    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::EmptySize`] for a zero output side, [`Error::InvalidRange`] for a scale outside
    /// `0 < min ≤ max ≤ 1` or a ratio outside `0 < min ≤ max < ∞` (NaN included).
    pub fn validate(&self) -> Result<()> {
        let [h, w] = self.size;
        if h == 0 || w == 0 {
            return Err(Error::EmptySize {
                what: "random_resized_crop.size".into(),
                height: h,
                width: w,
            });
        }
        let [s0, s1] = self.scale;
        if !(s0 > 0.0 && s0 <= s1 && s1 <= 1.0) {
            return Err(Error::InvalidRange {
                what: "random_resized_crop.scale".into(),
                min: s0,
                max: s1,
                requirement: "need 0 < min ≤ max ≤ 1 (fractions of the image area)",
            });
        }
        let [r0, r1] = self.ratio;
        if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
            return Err(Error::InvalidRange {
                what: "random_resized_crop.ratio".into(),
                min: r0,
                max: r1,
                requirement: "need 0 < min ≤ max < ∞ (width/height aspect ratios)",
            });
        }
        Ok(())
    }

    /// Draws a crop rectangle for an `height × width` image (torchvision `get_params`).
    ///
    /// Assumes validated parameters and a non-empty image; the result always lies inside it.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, height: usize, width: usize) -> CropSample {
        let area = (height * width) as f64;
        let [s0, s1] = self.scale;
        let (l0, l1) = (self.ratio[0].ln(), self.ratio[1].ln());
        for _ in 0..RANDOM_RESIZED_CROP_ATTEMPTS {
            let target_area = area * uniform(rng, s0, s1);
            let aspect = uniform(rng, l0, l1).exp();
            let w = half_to_even_usize((target_area * aspect).sqrt());
            let h = half_to_even_usize((target_area / aspect).sqrt());
            if 0 < w && w <= width && 0 < h && h <= height {
                let top = rng.random_range(0..=height - h);
                let left = rng.random_range(0..=width - w);
                return CropSample {
                    rect: CropRect {
                        top,
                        left,
                        height: h,
                        width: w,
                    },
                    fallback: false,
                };
            }
        }
        CropSample {
            rect: self.fallback_rect(height, width),
            fallback: true,
        }
    }

    /// torchvision's central-crop fallback: the whole image if its aspect ratio lies in `ratio`,
    /// else the largest centred crop with the nearest allowed aspect ratio.
    pub fn fallback_rect(&self, height: usize, width: usize) -> CropRect {
        let in_ratio = width as f64 / height as f64;
        let (r0, r1) = (self.ratio[0], self.ratio[1]);
        let (h, w) = if in_ratio < r0 {
            (
                half_to_even_usize(width as f64 / r0).clamp(1, height),
                width,
            )
        } else if in_ratio > r1 {
            (
                height,
                half_to_even_usize(height as f64 * r1).clamp(1, width),
            )
        } else {
            (height, width)
        };
        CropRect {
            top: (height - h) / 2,
            left: (width - w) / 2,
            height: h,
            width: w,
        }
    }
}

/// `lo + (hi − lo)·u`, `u ~ U[0, 1)` (torch `uniform_`).
pub(crate) fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use conad_rng::SeedTree;
    use proptest::prelude::*;

    #[test]
    fn crop_copies_the_rectangle() {
        // 1×3×4 image with values 0..12.
        let img = Image::new(1, 3, 4, (0..12).map(|v| v as f32).collect()).unwrap();
        let rect = CropRect {
            top: 1,
            left: 1,
            height: 2,
            width: 2,
        };
        assert_eq!(crop(&img, rect).unwrap().data(), &[5.0, 6.0, 9.0, 10.0]);
        let outside = CropRect {
            top: 2,
            left: 0,
            height: 2,
            width: 1,
        };
        assert!(matches!(
            crop(&img, outside),
            Err(Error::CropOutOfBounds { .. })
        ));
    }

    #[test]
    fn center_crop_rounds_half_to_even_like_torchvision() {
        // (36−32)/2 = 2; (5−2)/2 = 1.5 → 2 (even); (7−2)/2 = 2.5 → 2 (even).
        assert_eq!(center_crop_rect(36, 36, 32, 32).unwrap().top, 2);
        assert_eq!(
            center_crop_rect(5, 7, 2, 2).unwrap(),
            CropRect {
                top: 2,
                left: 2,
                height: 2,
                width: 2
            }
        );
        assert!(center_crop_rect(4, 4, 5, 4).is_err());
        assert!(center_crop_rect(4, 4, 0, 4).is_err());
    }

    #[test]
    fn fallback_matches_hand_computed_torchvision_cases() {
        // A 4×100 strip: every attempt at scale ≥ 0.9 needs a ~19-pixel-high crop, impossible,
        // so the fallback fires: in_ratio 25 > max ratio 4/3 → h = 4, w = round(4·4/3) = 5,
        // top = 0, left = (100 − 5)/2 = 47.
        let rrc = RandomResizedCrop {
            size: [4, 4],
            scale: [0.9, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
        };
        let mut rng = SeedTree::new(1).rng();
        let s = rrc.sample(&mut rng, 4, 100);
        assert!(s.fallback);
        assert_eq!(
            s.rect,
            CropRect {
                top: 0,
                left: 47,
                height: 4,
                width: 5
            }
        );
        // A tall 100×4 strip: in_ratio 0.04 < 3/4 → w = 4, h = round(4/(3/4)) = round(5.33) = 5,
        // top = 47.
        let t = rrc.sample(&mut rng, 100, 4);
        assert!(t.fallback);
        assert_eq!(
            t.rect,
            CropRect {
                top: 47,
                left: 0,
                height: 5,
                width: 4
            }
        );
        // Aspect inside the range → whole image.
        assert_eq!(
            rrc.fallback_rect(30, 32),
            CropRect {
                top: 0,
                left: 0,
                height: 30,
                width: 32
            }
        );
    }

    #[test]
    fn validate_rejects_bad_ranges() {
        let ok = RandomResizedCrop::default();
        assert!(ok.validate().is_ok());
        let bad_scale = RandomResizedCrop {
            scale: [0.9, 0.2],
            ..ok.clone()
        };
        assert!(matches!(bad_scale.validate(), Err(Error::InvalidRange { min, .. }) if min == 0.9));
        let nan_ratio = RandomResizedCrop {
            ratio: [f64::NAN, 1.0],
            ..ok.clone()
        };
        assert!(nan_ratio.validate().is_err());
        let zero = RandomResizedCrop {
            size: [0, 32],
            ..ok
        };
        assert!(matches!(zero.validate(), Err(Error::EmptySize { .. })));
    }

    #[test]
    fn full_scale_square_crop_is_the_whole_image() {
        // scale (1, 1), ratio (1, 1) on a square image: w = h = side, position forced to 0.
        let rrc = RandomResizedCrop {
            size: [8, 8],
            scale: [1.0, 1.0],
            ratio: [1.0, 1.0],
        };
        let mut rng = SeedTree::new(5).rng();
        for _ in 0..20 {
            let s = rrc.sample(&mut rng, 17, 17);
            assert!(!s.fallback);
            assert_eq!(
                s.rect,
                CropRect {
                    top: 0,
                    left: 0,
                    height: 17,
                    width: 17
                }
            );
        }
    }

    proptest! {
        /// Every draw lies inside the image; a non-fallback draw has an area fraction and aspect
        /// ratio that lie in `scale` and `ratio` up to the ±0.5 rounding of each side.
        #[test]
        fn draws_are_inside_and_in_range(
            seed: u64,
            h in 1usize..80,
            w in 1usize..80,
            s0 in 0.01f64..1.0,
            ds in 0.0f64..1.0,
            r0 in 0.2f64..2.0,
            dr in 0.0f64..3.0,
        ) {
            let s1 = (s0 + ds).min(1.0);
            let rrc = RandomResizedCrop { size: [8, 8], scale: [s0, s1], ratio: [r0, r0 + dr] };
            prop_assert!(rrc.validate().is_ok());
            let mut rng = SeedTree::new(seed).rng();
            for _ in 0..8 {
                let s = rrc.sample(&mut rng, h, w);
                let r = s.rect;
                prop_assert!(r.check_inside(h, w).is_ok(), "{r:?} outside {h}×{w}");
                if !s.fallback {
                    let area = (h * w) as f64;
                    let (hf, wf) = (r.height as f64, r.width as f64);
                    // target_area = w*·h* with |w − w*| ≤ ½, |h − h*| ≤ ½.
                    prop_assert!((wf + 0.5) * (hf + 0.5) >= s0 * area - 1e-9);
                    prop_assert!((wf - 0.5) * (hf - 0.5) <= s1 * area + 1e-9);
                    // aspect w*/h* ∈ [r0, r1].
                    prop_assert!((wf + 0.5) / (hf - 0.5).max(1e-12) >= r0 - 1e-9);
                    prop_assert!((wf - 0.5) / (hf + 0.5) <= r0 + dr + 1e-9);
                }
            }
        }
    }
}
