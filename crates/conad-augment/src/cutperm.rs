//! CutPerm, CSI's permutation shift (docs/reference.md §3.7): split at `h_mid = ⌊H/2⌋`, `w_mid = ⌊W/2⌋`;
//! for index k, `k div 2 = 1` swaps the top and bottom parts (cyclic roll by `h_mid` along H:
//! `out[y] = in[(y + h_mid) mod H]`) and `k mod 2 = 1` swaps the left and right parts
//! (`out[·][x] = in[·][(x + w_mid) mod W]`). k = 0 is the identity, k = 3 does both.

use crate::error::{Error, Result};
use crate::image::Image;

/// Applies CutPerm `index` (0–3).
///
/// # Shapes
/// (C, H, W) → (C, H, W).
///
/// # Errors
/// [`Error::InvalidShiftIndex`] unless `index ≤ 3`.
pub fn cutperm(img: &Image, index: u8) -> Result<Image> {
    check_index(index)?;
    let mut out = Image::empty();
    cutperm_into(img, index, &mut out);
    Ok(out)
}

pub(crate) fn check_index(index: u8) -> Result<()> {
    if index <= 3 {
        Ok(())
    } else {
        Err(Error::InvalidShiftIndex {
            what: "cut_perm.index",
            index,
        })
    }
}

/// [`cutperm`] into reusable storage; `index ≤ 3` has been checked.
pub(crate) fn cutperm_into(img: &Image, index: u8, out: &mut Image) {
    let (c, h, w) = (img.channels(), img.height(), img.width());
    out.reshape(c, h, w);
    let dy = if index / 2 == 1 { h / 2 } else { 0 };
    let dx = if index % 2 == 1 { w / 2 } else { 0 };
    for ch in 0..c {
        let src = img.plane(ch);
        let dst = out.plane_mut(ch);
        for (y, row) in dst.chunks_exact_mut(w).enumerate() {
            let s = &src[((y + dy) % h) * w..((y + dy) % h + 1) * w];
            row[..w - dx].copy_from_slice(&s[dx..]);
            row[w - dx..].copy_from_slice(&s[..dx]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_three_by_four() {
        // [[0, 1, 2, 3],
        //  [4, 5, 6, 7],
        //  [8, 9,10,11]]   h_mid = 1, w_mid = 2.
        let img = Image::new(1, 3, 4, (0..12).map(|v| v as f32).collect()).unwrap();
        assert_eq!(cutperm(&img, 0).unwrap(), img);
        // k = 1: left/right swap → rows [2,3,0,1], …
        let k1: Vec<f32> = [2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9]
            .iter()
            .map(|&v| v as f32)
            .collect();
        assert_eq!(cutperm(&img, 1).unwrap().data(), k1.as_slice());
        // k = 2: top/bottom swap, torch.cat((x[h_mid:], x[:h_mid])) → rows 1, 2, 0.
        let k2: Vec<f32> = [4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3]
            .iter()
            .map(|&v| v as f32)
            .collect();
        assert_eq!(cutperm(&img, 2).unwrap().data(), k2.as_slice());
        // k = 3: both.
        let k3: Vec<f32> = [6, 7, 4, 5, 10, 11, 8, 9, 2, 3, 0, 1]
            .iter()
            .map(|&v| v as f32)
            .collect();
        assert_eq!(cutperm(&img, 3).unwrap().data(), k3.as_slice());
        assert!(cutperm(&img, 4).is_err());
    }

    #[test]
    fn even_sides_make_each_permutation_an_involution() {
        let img = Image::new(3, 6, 8, (0..144).map(|v| v as f32).collect()).unwrap();
        for k in 0..4 {
            let once = cutperm(&img, k).unwrap();
            assert_eq!(cutperm(&once, k).unwrap(), img, "k = {k}");
        }
    }
}
