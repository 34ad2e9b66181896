//! Constant padding on all four sides, e.g. DROC's zero padding of 28×28 Fashion-MNIST to 32×32
//! (two pixels per side; docs/reference.md §3.4).

use crate::image::Image;

/// Pads every side with `pixels` rows/columns of `value`.
///
/// # Shapes
/// (C, H, W) → (C, H + 2·pixels, W + 2·pixels).
pub fn pad(img: &Image, pixels: usize, value: f32) -> Image {
    let mut out = Image::empty();
    pad_into(img, pixels, value, &mut out);
    out
}

pub(crate) fn pad_into(img: &Image, pixels: usize, value: f32, out: &mut Image) {
    let (c, h, w) = (img.channels(), img.height(), img.width());
    let ow = w + 2 * pixels;
    out.reshape(c, h + 2 * pixels, ow);
    out.data_mut().fill(value);
    for ch in 0..c {
        let src = img.plane(ch);
        let dst = out.plane_mut(ch);
        for (y, row) in src.chunks_exact(w).enumerate() {
            let start = (y + pixels) * ow + pixels;
            dst[start..start + w].copy_from_slice(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_with_value_around_the_image() {
        let img = Image::new(1, 1, 2, vec![0.5, 0.75]).unwrap();
        let out = pad(&img, 1, 0.0);
        assert_eq!(out.shape(), [1, 3, 4]);
        assert_eq!(
            out.data(),
            &[0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.75, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        // DROC: 28 → 32.
        let fm = Image::zeros(1, 28, 28).unwrap();
        assert_eq!(pad(&fm, 2, 0.0).shape(), [1, 32, 32]);
    }
}
