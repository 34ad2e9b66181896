//! Histogram equalisation with PIL `ImageOps.equalize` semantics on 8-bit levels, per channel
//! (docs/reference.md §3.8, CON2's "equalize" context):
//! histogram `h` of 256 bins; `h_last` = the last non-zero bin; `step = ⌊(Σh − h_last)/255⌋`;
//! `step = 0` leaves the channel unchanged; otherwise, with a running counter `n` starting at
//! `⌊step/2⌋`: `lut[i] = min(⌊n/step⌋, 255)`, then `n += h[i]`; every pixel goes through the LUT.
//!
//! f32 images are quantised first (`round(255·x)`, exact for `ToTensor` output) and divided by
//! 255 afterwards.

use crate::image::{Image, to_u8};

/// The PIL equalisation LUT of one channel's 256-bin histogram; `None` means "unchanged"
/// (`step = 0`, e.g. a constant channel).
pub fn equalize_lut(hist: &[u64; 256]) -> Option<[u8; 256]> {
    let total: u64 = hist.iter().sum();
    let last = hist.iter().rev().copied().find(|&c| c != 0).unwrap_or(0);
    let step = (total - last) / 255;
    if step == 0 {
        return None;
    }
    let mut lut = [0u8; 256];
    let mut n = step / 2;
    for (l, &h) in lut.iter_mut().zip(hist) {
        // Clamped to 255, so the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        let v = (n / step).min(255) as u8;
        *l = v;
        n += h;
    }
    Some(lut)
}

/// Equalises the channel made of every `stride`-th value of `values`, starting at `offset`
/// (use `stride = C`, `offset = c` for channel `c` of interleaved (H, W, C) data).
fn equalize_strided(values: &mut [u8], offset: usize, stride: usize) {
    let mut hist = [0u64; 256];
    for &v in values.iter().skip(offset).step_by(stride) {
        hist[usize::from(v)] += 1;
    }
    if let Some(lut) = equalize_lut(&hist) {
        for v in values.iter_mut().skip(offset).step_by(stride) {
            *v = lut[usize::from(*v)];
        }
    }
}

/// Equalises one uint8 channel in place.
pub fn equalize_u8_plane(values: &mut [u8]) {
    equalize_strided(values, 0, 1);
}

/// Equalises every channel of one uint8 (H, W, C) image in place (PIL on an "L" or "RGB" image).
///
/// `channels` must divide `data.len()`; with `channels = 0` nothing happens.
pub fn equalize_u8_hwc(data: &mut [u8], channels: usize) {
    for c in 0..channels {
        equalize_strided(data, c, channels);
    }
}

/// Equalises every channel of a [0, 1] image in place (quantised to 8-bit levels).
pub fn equalize(img: &mut Image) {
    let mut levels = Vec::new();
    equalize_with(img, &mut levels);
}

pub(crate) fn equalize_with(img: &mut Image, levels: &mut Vec<u8>) {
    for c in 0..img.channels() {
        let plane = img.plane_mut(c);
        levels.clear();
        levels.extend(plane.iter().map(|&v| to_u8(v)));
        equalize_u8_plane(levels);
        for (x, &l) in plane.iter_mut().zip(levels.iter()) {
            *x = f32::from(l) / 255.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_image_is_unchanged() {
        let mut v = vec![77u8; 32 * 32];
        equalize_u8_plane(&mut v);
        assert!(v.iter().all(|&x| x == 77));
    }

    #[test]
    fn two_equally_frequent_levels_map_to_0_and_255() {
        // 32×32 with 512 pixels at 40 and 512 at 90: h_last = 512, step = ⌊512/255⌋ = 2, n₀ = 1;
        // lut[≤40] = ⌊1/2⌋ = 0; after bin 40 n = 513, lut[90] = min(⌊513/2⌋, 255) = 255.
        let mut v: Vec<u8> = (0..1024)
            .map(|i| if i % 2 == 0 { 40 } else { 90 })
            .collect();
        equalize_u8_plane(&mut v);
        assert_eq!(v.iter().filter(|&&x| x == 0).count(), 512);
        assert_eq!(v.iter().filter(|&&x| x == 255).count(), 512);
    }

    #[test]
    fn hand_computed_three_level_lut() {
        // Levels 0 (300 px), 128 (300 px), 255 (420 px): step = ⌊600/255⌋ = 2, n₀ = 1;
        // lut[0] = 0; n = 301 → lut[1..=128] = 150; n = 601 → lut[129..] = 300 → 255.
        let mut hist = [0u64; 256];
        hist[0] = 300;
        hist[128] = 300;
        hist[255] = 420;
        let lut = equalize_lut(&hist).unwrap();
        assert_eq!(
            (lut[0], lut[1], lut[128], lut[129], lut[255]),
            (0, 150, 150, 255, 255)
        );
        // A histogram too small to fill 255 steps is left unchanged.
        let mut small = [0u64; 256];
        small[3] = 100;
        small[9] = 100;
        assert!(equalize_lut(&small).is_none());
    }

    #[test]
    fn f32_path_matches_u8_path_per_channel() {
        let hwc: Vec<u8> = (0..3 * 16 * 16)
            .map(|i| ((i * 37 + i / 7) % 200) as u8)
            .collect();
        let mut img = Image::from_u8_hwc(&hwc, 16, 16, 3).unwrap();
        equalize(&mut img);
        let mut u = hwc.clone();
        equalize_u8_hwc(&mut u, 3);
        assert_eq!(img.to_u8_hwc(), u);
    }
}
