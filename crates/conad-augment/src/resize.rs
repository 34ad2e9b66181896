//! Bilinear resampling with torchvision 0.14 tensor `F.resize(…, BILINEAR, antialias=False)`
//! semantics, i.e. PyTorch `interpolate(mode="bilinear", align_corners=False)` (docs/reference.md §3.1 step 1,
//! §3.4, §3.6).
//!
//! Per output axis (f32 arithmetic as in ATen's CPU kernel): `scale = in/out`,
//! `src = max(scale·(dst + ½) − ½, 0)`, `i0 = ⌊src⌋`, `i1 = min(i0 + 1, in − 1)`,
//! `λ1 = min(src − i0, 1)`, `λ0 = 1 − λ1`; the output is
//! `λy0·(λx0·I[y0,x0] + λx1·I[y0,x1]) + λy1·(λx0·I[y1,x0] + λx1·I[y1,x1])`.
//! No antialiasing when shrinking (the tensor backend's default in 0.14; PIL would antialias).
//!
//! [`resized_crop`] fuses the crop into the index tables (`F.resized_crop`), so a
//! `RandomResizedCrop` never materialises the cropped image.

use crate::crop::CropRect;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::simd::multiversion;

/// Precomputed source indices and weights of one output axis.
#[derive(Clone, Debug, Default)]
pub(crate) struct AxisTaps {
    i0: Vec<usize>,
    i1: Vec<usize>,
    l0: Vec<f32>,
    l1: Vec<f32>,
}

impl AxisTaps {
    /// Fills the taps for resampling `in_len` source samples starting at `offset` to `out_len`.
    pub(crate) fn compute(&mut self, offset: usize, in_len: usize, out_len: usize) {
        self.i0.clear();
        self.i1.clear();
        self.l0.clear();
        self.l1.clear();
        // Exact for image sizes (< 2^24).
        #[allow(clippy::cast_precision_loss)]
        let scale = in_len as f32 / out_len as f32;
        for d in 0..out_len {
            #[allow(clippy::cast_precision_loss)]
            let src = (scale * (d as f32 + 0.5) - 0.5).max(0.0);
            // `src` is non-negative and below `in_len`, so truncation is the floor.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let i0 = (src as usize).min(in_len - 1);
            #[allow(clippy::cast_precision_loss)]
            let l1 = (src - i0 as f32).min(1.0);
            let i1 = if i0 + 1 < in_len { i0 + 1 } else { i0 };
            self.i0.push(offset + i0);
            self.i1.push(offset + i1);
            self.l0.push(1.0 - l1);
            self.l1.push(l1);
        }
    }
}

/// Reusable tables for [`resized_crop`] on the hot path.
#[derive(Clone, Debug, Default)]
pub(crate) struct ResizeScratch {
    x: AxisTaps,
    y: AxisTaps,
    /// The crop's source rows resampled along x, `crop_h × out_w`.
    rows: Vec<f32>,
}

/// Bilinear resize of the whole image to `height × width`.
///
/// # Shapes
/// (C, H, W) → (C, height, width).
///
/// # Errors
/// [`Error::EmptySize`] for a zero output side.
pub fn resize(img: &Image, height: usize, width: usize) -> Result<Image> {
    let rect = CropRect {
        top: 0,
        left: 0,
        height: img.height(),
        width: img.width(),
    };
    resized_crop(img, rect, height, width)
}

/// Crops `rect` and resizes it bilinearly to `height × width` (torchvision `F.resized_crop`).
///
/// # Shapes
/// (C, H, W) → (C, height, width).
///
/// # Errors
/// [`Error::CropOutOfBounds`] if `rect` is empty or leaves the image, [`Error::EmptySize`] for a
/// zero output side.
pub fn resized_crop(img: &Image, rect: CropRect, height: usize, width: usize) -> Result<Image> {
    rect.check_inside(img.height(), img.width())?;
    if height == 0 || width == 0 {
        return Err(Error::EmptySize {
            what: "resize output".into(),
            height,
            width,
        });
    }
    let mut out = Image::empty();
    resized_crop_into(
        img,
        rect,
        height,
        width,
        &mut out,
        &mut ResizeScratch::default(),
    );
    Ok(out)
}

/// [`resized_crop`] into reusable storage; arguments have been checked.
pub(crate) fn resized_crop_into(
    img: &Image,
    rect: CropRect,
    height: usize,
    width: usize,
    out: &mut Image,
    scratch: &mut ResizeScratch,
) {
    out.reshape(img.channels(), height, width);
    let src_w = img.width();
    // Identity: plain copy (torch gives exactly the input, since λ1 = 0 everywhere).
    if rect.height == height && rect.width == width {
        crate::crop::crop_into(img, rect, out);
        return;
    }
    let ResizeScratch { x, y, rows } = scratch;
    x.compute(rect.left, rect.width, width);
    y.compute(rect.top, rect.height, height);
    // Horizontal pass once per source row of the crop (rows are shared by neighbouring output
    // rows when upscaling), then a vectorisable vertical blend of two resampled rows. The
    // arithmetic is exactly torch's `λy0·(λx0·a + λx1·b) + λy1·(λx0·c + λx1·d)`.
    rows.resize(rect.height * width, 0.0);
    for c in 0..img.channels() {
        resample_plane(img.plane(c), src_w, rect.top, x, y, rows, out.plane_mut(c));
    }
}

multiversion! {
    /// One channel: resample the crop's rows along x into `rows`, then blend row pairs along y.
    fn resample_plane(
        src: &[f32],
        src_w: usize,
        top: usize,
        x: &AxisTaps,
        y: &AxisTaps,
        rows: &mut [f32],
        dst: &mut [f32],
    ) {
        let width = x.i0.len();
        for (r, tmp) in rows.chunks_exact_mut(width).enumerate() {
            let sy = top + r;
            horizontal(&src[sy * src_w..(sy + 1) * src_w], x, tmp);
        }
        for (oy, out_row) in dst.chunks_exact_mut(width).enumerate() {
            let (r0, r1) = (y.i0[oy] - top, y.i1[oy] - top);
            let a = &rows[r0 * width..(r0 + 1) * width];
            let b = &rows[r1 * width..(r1 + 1) * width];
            let (ly0, ly1) = (y.l0[oy], y.l1[oy]);
            for ((o, &a), &b) in out_row.iter_mut().zip(a).zip(b) {
                *o = a * ly0 + b * ly1;
            }
        }
    }
}

/// One source row resampled along x: `λx0·row[x0] + λx1·row[x1]`.
#[inline(always)]
fn horizontal(row: &[f32], taps: &AxisTaps, out: &mut [f32]) {
    for ((((o, &i0), &i1), &l0), &l1) in out
        .iter_mut()
        .zip(&taps.i0)
        .zip(&taps.i1)
        .zip(&taps.l0)
        .zip(&taps.l1)
    {
        *o = row[i0] * l0 + row[i1] * l1;
    }
}

/// Output size of torchvision `Resize(size)` with an integer `size`: the shorter side becomes
/// `size`, the longer `⌊size · long / short⌋` (torchvision `_compute_resized_output_size`).
///
/// Returns `(height, width)`.
pub fn shorter_side_size(height: usize, width: usize, size: usize) -> (usize, usize) {
    if height <= width {
        (size, size * width / height)
    } else {
        (size * height / width, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsampling_two_pixels_matches_hand_computation() {
        // 1×1×2 [0, 1] → width 4: scale 0.5, src = 0.5(d+0.5)−0.5 = −0.25→0, 0.25, 0.75, 1.25;
        // i0 = 0,0,0,1; i1 = 1,1,1,1; λ1 = 0, 0.25, 0.75, min(0.25,1) → values 0, 0.25, 0.75, 1.
        let img = Image::new(1, 1, 2, vec![0.0, 1.0]).unwrap();
        let out = resize(&img, 1, 4).unwrap();
        assert_eq!(out.data(), &[0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn halving_averages_pixel_pairs_without_antialias() {
        // Width 4 → 2: scale 2, src = 2(d+½)−½ = 0.5, 2.5 → mean of pixels (0,1) and (2,3).
        let img = Image::new(1, 1, 4, vec![0.0, 1.0, 2.0, 4.0]).unwrap();
        assert_eq!(resize(&img, 1, 2).unwrap().data(), &[0.5, 3.0]);
        // Width 6 → 2: scale 3, src = 1, 4 → picks pixels 1 and 4 exactly (no antialias).
        let img = Image::new(1, 1, 6, vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0]).unwrap();
        assert_eq!(resize(&img, 1, 2).unwrap().data(), &[10.0, 40.0]);
    }

    #[test]
    fn same_size_is_identity_and_crop_offsets_apply() {
        let img = Image::new(1, 3, 3, (0..9).map(|v| v as f32).collect()).unwrap();
        assert_eq!(resize(&img, 3, 3).unwrap(), img);
        let rect = CropRect {
            top: 1,
            left: 1,
            height: 1,
            width: 2,
        };
        // Row 1, columns 1..3 = [4, 5] stretched to width 4: [4, 4.25, 4.75, 5].
        let out = resized_crop(&img, rect, 1, 4).unwrap();
        assert_eq!(out.data(), &[4.0, 4.25, 4.75, 5.0]);
    }

    #[test]
    fn shorter_side_matches_torchvision() {
        assert_eq!(shorter_side_size(32, 32, 36), (36, 36));
        // 28×40 → shorter 36, longer ⌊36·40/28⌋ = 51.
        assert_eq!(shorter_side_size(28, 40, 36), (36, 51));
        assert_eq!(shorter_side_size(40, 28, 36), (51, 36));
    }
}
