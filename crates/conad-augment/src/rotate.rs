//! Rotations by k·90° as exact index permutations (docs/reference.md §3.7): counter-clockwise, the
//! direction of `torch.rot90(x, k, dims=(-2, -1))` (CSI) and of PIL/torchvision `rotate(90·k)`
//! (FIRM), so one direction serves train and test.
//!
//! For an (H, W) plane: k = 1 gives (W, H) with `out[i][j] = in[j][W−1−i]`; k = 2 gives
//! `out[i][j] = in[H−1−i][W−1−j]`; k = 3 gives (W, H) with `out[i][j] = in[H−1−j][i]`.

use crate::error::{Error, Result};
use crate::image::Image;

/// Rotates counter-clockwise by `quarter_turns · 90°`.
///
/// # Shapes
/// (C, H, W) → (C, H, W) for even `quarter_turns`, (C, W, H) for odd.
///
/// # Errors
/// [`Error::InvalidShiftIndex`] unless `quarter_turns ≤ 3`.
pub fn rot90(img: &Image, quarter_turns: u8) -> Result<Image> {
    check_quarter_turns(quarter_turns)?;
    let mut out = Image::empty();
    rot90_into(img, quarter_turns, &mut out);
    Ok(out)
}

pub(crate) fn check_quarter_turns(quarter_turns: u8) -> Result<()> {
    if quarter_turns <= 3 {
        Ok(())
    } else {
        Err(Error::InvalidShiftIndex {
            what: "rotate.quarter_turns",
            index: quarter_turns,
        })
    }
}

/// [`rot90`] into reusable storage; `quarter_turns ≤ 3` has been checked.
pub(crate) fn rot90_into(img: &Image, quarter_turns: u8, out: &mut Image) {
    let (c, h, w) = (img.channels(), img.height(), img.width());
    match quarter_turns {
        0 => out.assign(img),
        2 => {
            out.reshape(c, h, w);
            for ch in 0..c {
                let src = img.plane(ch);
                for (o, &v) in out.plane_mut(ch).iter_mut().zip(src.iter().rev()) {
                    *o = v;
                }
            }
        }
        k => {
            out.reshape(c, w, h);
            for ch in 0..c {
                let src = img.plane(ch);
                let dst = out.plane_mut(ch);
                for (i, row) in dst.chunks_exact_mut(h).enumerate() {
                    for (j, o) in row.iter_mut().enumerate() {
                        *o = if k == 1 {
                            src[j * w + (w - 1 - i)]
                        } else {
                            src[(h - 1 - j) * w + i]
                        };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_by_three() -> Image {
        // [[1, 2, 3],
        //  [4, 5, 6]]
        Image::new(1, 2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap()
    }

    #[test]
    fn hand_computed_two_by_three() {
        let img = two_by_three();
        let r1 = rot90(&img, 1).unwrap();
        // Counter-clockwise: [[3, 6], [2, 5], [1, 4]] (torch.rot90(x, 1)).
        assert_eq!(r1.shape(), [1, 3, 2]);
        assert_eq!(r1.data(), &[3.0, 6.0, 2.0, 5.0, 1.0, 4.0]);
        let r2 = rot90(&img, 2).unwrap();
        assert_eq!(r2.data(), &[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]);
        let r3 = rot90(&img, 3).unwrap();
        assert_eq!(r3.shape(), [1, 3, 2]);
        assert_eq!(r3.data(), &[4.0, 1.0, 5.0, 2.0, 6.0, 3.0]);
        assert_eq!(rot90(&img, 0).unwrap(), img);
        assert!(rot90(&img, 4).is_err());
    }

    #[test]
    fn four_quarter_turns_are_identity_and_compose() {
        let img = Image::new(3, 4, 7, (0..84).map(|v| v as f32).collect()).unwrap();
        let mut x = img.clone();
        for _ in 0..4 {
            x = rot90(&x, 1).unwrap();
        }
        assert_eq!(x, img);
        let twice = rot90(&rot90(&img, 1).unwrap(), 1).unwrap();
        assert_eq!(twice, rot90(&img, 2).unwrap());
        let thrice = rot90(&twice, 1).unwrap();
        assert_eq!(thrice, rot90(&img, 3).unwrap());
    }
}
