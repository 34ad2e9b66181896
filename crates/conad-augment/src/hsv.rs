//! RGB ↔ HSV exactly like torchvision 0.14's `_rgb2hsv` / `_hsv2rgb` (tensor backend), and the
//! hue shift of `ColorJitter` built on them (docs/reference.md §3.1: "hue shifts H by h ~ U(−0.1, 0.1) of a
//! full turn").
//!
//! Per pixel, in f32 (H, S, V ∈ [0, 1]):
//! - `V = max(r,g,b)`, `C = V − min(r,g,b)`, `S = C / V` (0 when `C = 0`);
//!   `rc = (V−r)/C`, `gc = (V−g)/C`, `bc = (V−b)/C` (divisor 1 when `C = 0`);
//!   `h = bc − gc` if `V = r`, else `2 + rc − bc` if `V = g`, else `4 + gc − rc`;
//!   `H = fmod(h/6 + 1, 1)`.
//! - back: `i = ⌊6H⌋ mod 6`, `f = 6H − ⌊6H⌋`, `p = clamp(V(1−S))`, `q = clamp(V(1−Sf))`,
//!   `t = clamp(V(1−S(1−f)))`; (r,g,b) = (V,t,p), (q,V,p), (p,V,t), (p,q,V), (t,p,V), (V,p,q) for
//!   i = 0…5.
//! - hue shift: `H ← (H + δ) mod 1` (Python/torch `remainder`), no further clamping.

use crate::error::{Error, Result};
use crate::image::Image;
use crate::simd::multiversion;

/// One RGB pixel (values in [0, 1]) to `(h, s, v)`.
#[inline(always)]
pub fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let eqc = maxc == minc;
    let cr = maxc - minc;
    let s = cr / if eqc { 1.0 } else { maxc };
    let cr_divisor = if eqc { 1.0 } else { cr };
    let rc = (maxc - r) / cr_divisor;
    let gc = (maxc - g) / cr_divisor;
    let bc = (maxc - b) / cr_divisor;
    let h = if maxc == r {
        bc - gc
    } else if maxc == g {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    // h ∈ [−1, 5] ⇒ t ∈ [5/6, 11/6]; fmod(t, 1) is t − 1 (exact) or t.
    let t = h / 6.0 + 1.0;
    let h = if t >= 1.0 { t - 1.0 } else { t };
    (h, s, maxc)
}

/// One HSV pixel back to `(r, g, b)`, for `h ∈ [0, 1]` (what [`rgb_to_hsv`] and the hue shift
/// produce; `h = 1` acts as `h = 0`).
#[inline(always)]
pub fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    debug_assert!((0.0..=1.0).contains(&h), "hue {h} outside [0, 1]");
    let h6 = h * 6.0;
    // ⌊6h⌋ for 6h ∈ [0, 7) by comparisons: vectorises, unlike `floorf` (a libm call on baseline
    // x86-64) or a saturating float→int cast.
    let step = |edge: f32| if h6 >= edge { 1.0f32 } else { 0.0 };
    let fl = step(1.0) + step(2.0) + step(3.0) + step(4.0) + step(5.0) + step(6.0);
    let f = h6 - fl;
    // i mod 6: h = 1.0 can occur after the hue remainder rounds up.
    let i = if fl >= 6.0 { fl - 6.0 } else { fl };
    let p = (v * (1.0 - s)).clamp(0.0, 1.0);
    let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
    let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
    // Branch-free selection (vectorises): i ∈ {0,…,5} as f32.
    let r = if i == 0.0 || i == 5.0 {
        v
    } else if i == 1.0 {
        q
    } else if i == 4.0 {
        t
    } else {
        p
    };
    let g = if i == 1.0 || i == 2.0 {
        v
    } else if i == 0.0 {
        t
    } else if i == 3.0 {
        q
    } else {
        p
    };
    let b = if i == 3.0 || i == 4.0 {
        v
    } else if i == 2.0 {
        t
    } else if i == 5.0 {
        q
    } else {
        p
    };
    (r, g, b)
}

/// `(h + δ) mod 1` with torch `remainder` semantics for `h ∈ [0, 1)`, `δ ∈ [−0.5, 0.5]`.
#[inline(always)]
fn shift_hue(h: f32, delta: f32) -> f32 {
    let x = h + delta;
    if x >= 1.0 {
        x - 1.0
    } else if x < 0.0 {
        x + 1.0
    } else {
        x
    }
}

/// Shifts the hue of an RGB image by `hue_factor` turns (torchvision `F.adjust_hue`); a grey
/// image is returned unchanged (as torchvision does).
///
/// # Errors
/// [`Error::InvalidParameter`] unless `−0.5 ≤ hue_factor ≤ 0.5`.
pub fn adjust_hue(img: &mut Image, hue_factor: f32) -> Result<()> {
    if !(-0.5..=0.5).contains(&hue_factor) {
        return Err(Error::invalid(
            "hue_factor",
            f64::from(hue_factor),
            "need −0.5 ≤ hue_factor ≤ 0.5 (a fraction of a full turn)",
        ));
    }
    adjust_hue_unchecked(img, hue_factor);
    Ok(())
}

/// [`adjust_hue`] without the range check.
pub(crate) fn adjust_hue_unchecked(img: &mut Image, hue_factor: f32) {
    if let Some((r, g, b)) = img.rgb_planes_mut() {
        hue_planes(r, g, b, hue_factor);
    }
}

multiversion! {
    fn hue_planes(r: &mut [f32], g: &mut [f32], b: &mut [f32], hue_factor: f32) {
        for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
            let (h, s, v) = rgb_to_hsv(*r, *g, *b);
            let (nr, ng, nb) = hsv_to_rgb(shift_hue(h, hue_factor), s, v);
            *r = nr;
            *g = ng;
            *b = nb;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primaries_have_textbook_hsv() {
        let cases = [
            ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)),
            ((0.0, 1.0, 0.0), (1.0 / 3.0, 1.0, 1.0)),
            ((0.0, 0.0, 1.0), (2.0 / 3.0, 1.0, 1.0)),
            ((1.0, 1.0, 0.0), (1.0 / 6.0, 1.0, 1.0)),
            ((0.5, 0.5, 0.5), (0.0, 0.0, 0.5)),
            ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
            // Magenta: V = r = b → first branch (V = r): h = bc − gc = 0 − 1 = −1 → 5/6.
            ((1.0, 0.0, 1.0), (5.0 / 6.0, 1.0, 1.0)),
        ];
        for ((r, g, b), (h, s, v)) in cases {
            let got = rgb_to_hsv(r, g, b);
            assert!((got.0 - h).abs() < 1e-6, "{r},{g},{b} → {got:?}");
            assert!((got.1 - s).abs() < 1e-7 && (got.2 - v).abs() < 1e-7);
            let back = hsv_to_rgb(got.0, got.1, got.2);
            assert!(
                (back.0 - r).abs() < 1e-6 && (back.1 - g).abs() < 1e-6 && (back.2 - b).abs() < 1e-6
            );
        }
    }

    #[test]
    fn third_turn_permutes_primaries_and_h_one_wraps() {
        let mut img = Image::new(3, 1, 1, vec![1.0, 0.0, 0.0]).unwrap();
        assert!(matches!(
            adjust_hue(&mut img, 0.6),
            Err(Error::InvalidConfig { .. })
        ));
        // Red + 1/3 turn = green.
        let mut green = img.clone();
        adjust_hue(&mut green, 1.0 / 3.0).unwrap();
        let d = green.data();
        assert!(
            d[0].abs() < 1e-6 && (d[1] - 1.0).abs() < 1e-6 && d[2].abs() < 1e-6,
            "{d:?}"
        );
        adjust_hue(&mut img, 0.5).unwrap();
        // Red + ½ turn = cyan.
        let d = img.data();
        assert!(d[0].abs() < 1e-6 && (d[1] - 1.0).abs() < 1e-6 && (d[2] - 1.0).abs() < 1e-6);
        // h = 1.0 (possible after rounding) behaves like h = 0.
        assert_eq!(hsv_to_rgb(1.0, 1.0, 1.0), hsv_to_rgb(0.0, 1.0, 1.0));
        // The remainder wraps negatives like Python.
        assert!((shift_hue(0.1, -0.3) - 0.8).abs() < 1e-6);
        assert!((shift_hue(0.9, 0.3) - 0.2).abs() < 1e-6);
    }

    #[test]
    fn dispatched_kernel_is_bit_identical_to_per_pixel_code() {
        // `adjust_hue` runs the AVX2 build where available; the per-pixel functions called here
        // run in baseline code. No FMA contraction ⇒ identical bits.
        use rand::Rng;
        let mut rng = conad_rng::SeedTree::new(4).rng();
        let n = 3 * 17 * 19;
        let data: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
        let mut img = Image::new(3, 17, 19, data.clone()).unwrap();
        adjust_hue(&mut img, 0.23).unwrap();
        let p = 17 * 19;
        for i in 0..p {
            let (h, s, v) = rgb_to_hsv(data[i], data[p + i], data[2 * p + i]);
            let (r, g, b) = hsv_to_rgb(shift_hue(h, 0.23), s, v);
            assert_eq!(img.data()[i].to_bits(), r.to_bits());
            assert_eq!(img.data()[p + i].to_bits(), g.to_bits());
            assert_eq!(img.data()[2 * p + i].to_bits(), b.to_bits());
        }
    }

    #[test]
    fn grey_images_are_untouched() {
        let mut img = Image::new(1, 1, 2, vec![0.2, 0.7]).unwrap();
        adjust_hue(&mut img, 0.3).unwrap();
        assert_eq!(img.data(), &[0.2, 0.7]);
    }
}
