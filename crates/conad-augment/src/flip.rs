//! Horizontal and vertical flips (torchvision `F.hflip` / `F.vflip`).
//!
//! The horizontal flip is a content augmentation (docs/reference.md §3.1 step 2, p = 0.5); the vertical
//! flip is one of CON2's context transforms (docs/reference.md §3.8: "reverse row order").

use crate::image::Image;

/// Mirrors every row left ↔ right in place.
///
/// # Shapes
/// (C, H, W) → (C, H, W).
pub fn hflip(img: &mut Image) {
    let w = img.width();
    for row in img.data_mut().chunks_exact_mut(w) {
        row.reverse();
    }
}

/// Reverses the row order of every channel in place.
///
/// # Shapes
/// (C, H, W) → (C, H, W).
pub fn vflip(img: &mut Image) {
    let (h, w) = (img.height(), img.width());
    for c in 0..img.channels() {
        let plane = img.plane_mut(c);
        for y in 0..h / 2 {
            let (upper, lower) = plane.split_at_mut((h - 1 - y) * w);
            upper[y * w..(y + 1) * w].swap_with_slice(&mut lower[..w]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Image {
        // 2 channels are not allowed; use RGB 3×2×3 with distinct values 0..18.
        Image::new(3, 2, 3, (0..18).map(|v| v as f32).collect()).unwrap()
    }

    #[test]
    fn hflip_reverses_rows() {
        let mut img = sample();
        hflip(&mut img);
        assert_eq!(&img.data()[..6], &[2.0, 1.0, 0.0, 5.0, 4.0, 3.0]);
        assert_eq!(&img.data()[12..], &[14.0, 13.0, 12.0, 17.0, 16.0, 15.0]);
        hflip(&mut img);
        assert_eq!(img, sample());
    }

    #[test]
    fn vflip_reverses_row_order_including_odd_heights() {
        let mut img = sample();
        vflip(&mut img);
        assert_eq!(&img.data()[..6], &[3.0, 4.0, 5.0, 0.0, 1.0, 2.0]);
        let mut odd = Image::new(1, 3, 2, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        vflip(&mut odd);
        assert_eq!(odd.data(), &[4.0, 5.0, 2.0, 3.0, 0.0, 1.0]);
    }
}
