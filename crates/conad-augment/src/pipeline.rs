//! A validated [`AugmentConfig`] ready to run: one source image + a random stream → one view
//! (docs/reference.md §3; §0 for how views are laid out in a batch, see [`crate::batch`]).
//!
//! Random steps draw from the stream in pipeline order, so a view is a pure function of
//! (source image, shift, stream). Steps before the shift slot draw from the *pre-shift* stream,
//! the others from the *post-shift* stream: in a shifted batch the pre-shift part (CSI's flip) is
//! shared by all shifts of a view, as in CSI, while everything after the slot is independent per
//! shift.

use rand::Rng;

use crate::blur::{BlurScratch, gaussian_blur_unchecked};
use crate::color_jitter::apply_jitter;
use crate::config::{AugmentConfig, Step};
use crate::crop::{CropRect, center_crop_rect, crop_into};
use crate::cutperm::cutperm_into;
use crate::equalize::equalize_with;
use crate::error::Result;
use crate::flip::{hflip, vflip};
use crate::grayscale::{LumaWeights, grayscale_in_place};
use crate::image::Image;
use crate::invert::invert;
use crate::pad::pad_into;
use crate::resize::{ResizeScratch, resized_crop_into, shorter_side_size};
use crate::rotate::rot90_into;
use crate::shift::Shift;

/// A validated pipeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    steps: Vec<Step>,
    luma: LumaWeights,
    /// Index of the step before which the shift acts.
    shift_at: usize,
}

/// Reusable per-thread buffers: no allocation per view once warm.
#[derive(Debug)]
pub(crate) struct Workspace {
    pub(crate) cur: Image,
    next: Image,
    resize: ResizeScratch,
    blur: BlurScratch,
    levels: Vec<u8>,
}

impl Workspace {
    pub(crate) fn new() -> Self {
        Self {
            cur: Image::empty(),
            next: Image::empty(),
            resize: ResizeScratch::default(),
            blur: BlurScratch::default(),
            levels: Vec::new(),
        }
    }
}

impl Pipeline {
    /// Validates and compiles a config.
    ///
    /// # Errors
    /// As [`AugmentConfig::validate`].
    pub fn new(config: &AugmentConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            steps: config.steps.clone(),
            luma: config.luma,
            shift_at: config.shift_position(),
        })
    }

    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The luma weights.
    pub const fn luma(&self) -> LumaWeights {
        self.luma
    }

    /// Shape of the views produced from `[C, H, W]` inputs under `shift`.
    ///
    /// # Errors
    /// As [`AugmentConfig::output_shape`].
    pub fn output_shape(&self, input: [usize; 3], shift: Shift) -> Result<[usize; 3]> {
        AugmentConfig {
            steps: self.steps.clone(),
            luma: self.luma,
        }
        .output_shape(input, shift)
    }

    /// Produces one view of `img` under `shift`, drawing the pre-shift randomness from
    /// `pre_rng` and the rest from `post_rng`.
    ///
    /// # Errors
    /// As [`Pipeline::output_shape`] (the input and shift are checked first).
    pub fn apply<R1: Rng + ?Sized, R2: Rng + ?Sized>(
        &self,
        img: &Image,
        shift: Shift,
        pre_rng: &mut R1,
        post_rng: &mut R2,
    ) -> Result<Image> {
        self.output_shape(img.shape(), shift)?;
        let mut ws = Workspace::new();
        ws.cur.assign(img);
        self.run(&mut ws, shift, pre_rng, post_rng);
        Ok(ws.cur)
    }

    /// Runs all steps on `ws.cur` (shape and shift already checked).
    pub(crate) fn run<R1: Rng + ?Sized, R2: Rng + ?Sized>(
        &self,
        ws: &mut Workspace,
        shift: Shift,
        pre_rng: &mut R1,
        post_rng: &mut R2,
    ) {
        for (k, step) in self.steps.iter().enumerate() {
            if k == self.shift_at {
                shift.apply_in(&mut ws.cur, &mut ws.next, &mut ws.levels);
            }
            if k < self.shift_at {
                self.step(step, ws, pre_rng);
            } else {
                self.step(step, ws, post_rng);
            }
        }
        if self.steps.is_empty() {
            shift.apply_in(&mut ws.cur, &mut ws.next, &mut ws.levels);
        }
    }

    fn step<R: Rng + ?Sized>(&self, step: &Step, ws: &mut Workspace, rng: &mut R) {
        let Workspace {
            cur,
            next,
            resize,
            blur,
            levels,
        } = ws;
        let (h, w) = (cur.height(), cur.width());
        let full = CropRect {
            top: 0,
            left: 0,
            height: h,
            width: w,
        };
        let mut geometric = |f: &mut dyn FnMut(&Image, &mut Image)| {
            f(cur, next);
            std::mem::swap(cur, next);
        };
        match step {
            Step::ToRgb => cur.make_rgb(),
            Step::Pad { pixels, value } => geometric(&mut |c, n| pad_into(c, *pixels, *value, n)),
            Step::Resize { height, width } => {
                geometric(&mut |c, n| resized_crop_into(c, full, *height, *width, n, resize));
            }
            Step::ResizeShorter { size } => {
                let (oh, ow) = shorter_side_size(h, w, *size);
                geometric(&mut |c, n| resized_crop_into(c, full, oh, ow, n, resize));
            }
            Step::CenterCrop { height, width } => {
                // Checked by `output_shape` before any view is produced.
                if let Ok(rect) = center_crop_rect(h, w, *height, *width) {
                    geometric(&mut |c, n| crop_into(c, rect, n));
                }
            }
            Step::RandomResizedCrop(p) => {
                let rect = p.sample(rng, h, w).rect;
                let [oh, ow] = p.size;
                geometric(&mut |c, n| resized_crop_into(c, rect, oh, ow, n, resize));
            }
            Step::HorizontalFlip { p } => {
                if rng.random::<f64>() < *p {
                    hflip(cur);
                }
            }
            Step::VerticalFlip { p } => {
                if rng.random::<f64>() < *p {
                    vflip(cur);
                }
            }
            Step::ColorJitter(cj) => {
                if let Some(params) = cj.sample(rng) {
                    apply_jitter(cur, &params, self.luma);
                }
            }
            Step::RandomGrayscale { p } => {
                if rng.random::<f64>() < *p {
                    grayscale_in_place(cur, self.luma);
                }
            }
            Step::GaussianBlur(b) => {
                if let Some(sigma) = b.sample(rng) {
                    gaussian_blur_unchecked(cur, b.kernel_size, sigma, blur);
                }
            }
            Step::Rotate { quarter_turns } => {
                geometric(&mut |c, n| rot90_into(c, *quarter_turns, n));
            }
            Step::CutPerm { index } => geometric(&mut |c, n| cutperm_into(c, *index, n)),
            Step::Invert => invert(cur),
            Step::Equalize => equalize_with(cur, levels),
            // The shift itself is applied by `run` at the slot.
            Step::Shift => {}
            Step::Normalize(n) => n.apply_unchecked(cur),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Normalize;
    use crate::presets;
    use conad_rng::SeedTree;

    fn ramp(c: usize, h: usize, w: usize) -> Image {
        let n = c * h * w;
        Image::new(c, h, w, (0..n).map(|i| i as f32 / n as f32).collect()).unwrap()
    }

    #[test]
    fn deterministic_pipeline_equals_composed_ops() {
        // FIRM test transform with rotation: resize 32→36, centre crop 32, rot90, normalise.
        let img = ramp(3, 32, 32);
        let cfg = presets::firm_test(32, Normalize::half());
        let p = Pipeline::new(&cfg).unwrap();
        let mut rng = SeedTree::new(0).rng();
        let got = p
            .apply(
                &img,
                Shift::Rotate { quarter_turns: 1 },
                &mut rng.clone(),
                &mut rng,
            )
            .unwrap();
        let resized = crate::resize::resize(&img, 36, 36).unwrap();
        let cropped =
            crate::crop::crop(&resized, center_crop_rect(36, 36, 32, 32).unwrap()).unwrap();
        let mut want = crate::rotate::rot90(&cropped, 1).unwrap();
        Normalize::half().apply(&mut want).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn shift_without_slot_acts_first_and_empty_pipeline_applies_it() {
        let img = ramp(1, 2, 3);
        let mut rng = SeedTree::new(0).rng();
        let empty = Pipeline::new(&AugmentConfig::from_steps(vec![])).unwrap();
        let got = empty
            .apply(&img, Shift::Invert, &mut rng.clone(), &mut rng)
            .unwrap();
        assert_eq!(got, Shift::Invert.apply(&img).unwrap());
        let pad_then = Pipeline::new(&AugmentConfig::from_steps(vec![Step::Pad {
            pixels: 1,
            value: 0.0,
        }]))
        .unwrap();
        let got = pad_then
            .apply(&img, Shift::Invert, &mut rng.clone(), &mut rng)
            .unwrap();
        // Inverted first, then zero-padded: the border stays 0.
        assert_eq!(got.get(0, 0, 0), 0.0);
        assert_eq!(got.get(0, 1, 1), 1.0);
    }

    #[test]
    fn pre_shift_steps_use_the_pre_shift_stream() {
        // CSI: the flip precedes the slot. With p = 1 jitter etc. the post stream varies while
        // the flip decision must follow only the pre stream.
        let cfg = AugmentConfig::from_steps(vec![Step::HorizontalFlip { p: 0.5 }, Step::Shift]);
        let p = Pipeline::new(&cfg).unwrap();
        let img = ramp(1, 1, 4);
        let mut flipped = img.clone();
        hflip(&mut flipped);
        for seed in 0..20u64 {
            let pre = SeedTree::new(seed).rng();
            let a = p
                .apply(
                    &img,
                    Shift::Identity,
                    &mut pre.clone(),
                    &mut SeedTree::new(100).rng(),
                )
                .unwrap();
            let b = p
                .apply(
                    &img,
                    Shift::Identity,
                    &mut pre.clone(),
                    &mut SeedTree::new(200).rng(),
                )
                .unwrap();
            assert_eq!(a, b);
            assert!(a == img || a == flipped);
        }
    }

    #[test]
    fn random_steps_fire_with_their_probabilities() {
        // 4000 independent views: grayscale p = 0.2 and flip p = 0.5 must fire at those rates
        // (binomial std ≈ 0.0063 and 0.0079; a swapped or inverted probability fails by far).
        let cfg = AugmentConfig::from_steps(vec![
            Step::RandomGrayscale { p: 0.2 },
            Step::HorizontalFlip { p: 0.5 },
        ]);
        let p = Pipeline::new(&cfg).unwrap();
        // One pixel per column, distinct colours: grey ⇔ all planes equal; flip ⇔ red row reversed.
        let img = Image::new(3, 1, 2, vec![0.1, 0.9, 0.5, 0.3, 0.7, 0.2]).unwrap();
        let (mut grey, mut flipped) = (0, 0);
        let root = SeedTree::new(11);
        for i in 0..4000u64 {
            let key = root.index(i);
            let v = p
                .apply(
                    &img,
                    Shift::Identity,
                    &mut key.rng(),
                    &mut key.index(0).rng(),
                )
                .unwrap();
            if v.plane(0) == v.plane(1) && v.plane(1) == v.plane(2) {
                grey += 1;
            }
            if v.plane(2)[0] == 0.2 || (v.plane(0)[0] > v.plane(0)[1]) {
                flipped += 1;
            }
        }
        let (g, f) = (f64::from(grey) / 4000.0, f64::from(flipped) / 4000.0);
        assert!((g - 0.2).abs() < 0.03, "grayscale rate {g}");
        assert!((f - 0.5).abs() < 0.04, "flip rate {f}");
    }

    #[test]
    fn apply_checks_shapes() {
        let p = Pipeline::new(&presets::firm(32, Normalize::cifar10())).unwrap();
        let grey = ramp(1, 32, 32);
        let mut rng = SeedTree::new(0).rng();
        assert!(
            p.apply(&grey, Shift::Identity, &mut rng.clone(), &mut rng)
                .is_err()
        );
        let bad = Pipeline::new(&AugmentConfig::from_steps(vec![Step::Rotate {
            quarter_turns: 7,
        }]));
        assert!(bad.is_err());
    }
}
