//! Invert, CON2's context transform for medical images (docs/reference.md §3.8): `x ← 1 − x` per pixel
//! and channel on [0, 1] images (`255 − v` on uint8), torchvision `F.invert`.

use crate::image::Image;

/// `x ← 1 − x` in place.
///
/// # Shapes
/// (C, H, W) → (C, H, W).
pub fn invert(img: &mut Image) {
    for v in img.data_mut() {
        *v = 1.0 - *v;
    }
}

/// `v ← 255 − v` in place on uint8 values.
pub fn invert_u8(values: &mut [u8]) {
    for v in values {
        *v = 255 - *v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invert_is_exact_and_involutive() {
        let mut img = Image::new(1, 1, 3, vec![0.0, 0.25, 1.0]).unwrap();
        invert(&mut img);
        assert_eq!(img.data(), &[1.0, 0.75, 0.0]);
        invert(&mut img);
        assert_eq!(img.data(), &[0.0, 0.25, 1.0]);
        let mut u = vec![0u8, 7, 255];
        invert_u8(&mut u);
        assert_eq!(u, vec![255, 248, 0]);
        // On every level, f32 inversion agrees with uint8 inversion after ToTensor.
        for v in 0..=255u8 {
            let mut x = Image::from_u8_hwc(&[v], 1, 1, 1).unwrap();
            invert(&mut x);
            assert_eq!(x.to_u8_hwc(), vec![255 - v]);
        }
    }
}
