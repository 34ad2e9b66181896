//! Shifting transforms (docs/reference.md §3.7: rotations, CutPerm) and CON2 context transforms
//! (docs/reference.md §3.8: invert, vertical flip, equalize): deterministic transforms that *expand* a batch —
//! every source image appears once per shift — as opposed to the random content augmentations.
//!
//! A pipeline marks where the shift acts with a [`crate::config::Step::Shift`] slot (CSI: after the
//! horizontal flip; FIRM and CON2: on the raw image, i.e. first); without a slot the shift acts
//! before every step.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cutperm::{check_index, cutperm_into};
use crate::equalize::equalize_with;
use crate::error::Result;
use crate::flip::vflip;
use crate::image::Image;
use crate::invert::invert;
use crate::rotate::{check_quarter_turns, rot90_into};

/// One deterministic batch-expanding transform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Shift {
    /// No change (the inlier / original context).
    #[default]
    Identity,
    /// Counter-clockwise rotation by `quarter_turns · 90°` (0–3).
    Rotate {
        /// 0, 1, 2 or 3.
        quarter_turns: u8,
    },
    /// CSI's CutPerm with index 0–3.
    CutPerm {
        /// 0, 1, 2 or 3.
        index: u8,
    },
    /// `x ← 1 − x` (CON2 context for medical images).
    Invert,
    /// Reverse the row order (CON2 context for natural images).
    VerticalFlip,
    /// PIL histogram equalisation per channel (CON2 context).
    Equalize,
}

impl Shift {
    /// The four rotations 0°, 90°, 180°, 270° (CSI, UniCon-HA, FIRM, MIL-Conv label order).
    pub const ROTATIONS: [Self; 4] = [
        Self::Rotate { quarter_turns: 0 },
        Self::Rotate { quarter_turns: 1 },
        Self::Rotate { quarter_turns: 2 },
        Self::Rotate { quarter_turns: 3 },
    ];

    /// The four CutPerm permutations.
    pub const CUT_PERMS: [Self; 4] = [
        Self::CutPerm { index: 0 },
        Self::CutPerm { index: 1 },
        Self::CutPerm { index: 2 },
        Self::CutPerm { index: 3 },
    ];

    /// Checks indices.
    ///
    /// # Errors
    /// [`crate::Error::InvalidShiftIndex`] for a rotation or CutPerm index above 3.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::Rotate { quarter_turns } => check_quarter_turns(quarter_turns),
            Self::CutPerm { index } => check_index(index),
            _ => Ok(()),
        }
    }

    /// A stable number naming the transform, used to key the random stream of the steps after the
    /// shift slot: identical transforms share it (`Identity`, `Rotate 0`, `CutPerm 0` → 0;
    /// `Rotate k` → k; `CutPerm k` → 3 + k; `Invert` → 7; `VerticalFlip` → 8; `Equalize` → 9).
    pub const fn stream_id(&self) -> u64 {
        match *self {
            Self::Identity => 0,
            Self::Rotate { quarter_turns } => quarter_turns as u64,
            Self::CutPerm { index: 0 } => 0,
            Self::CutPerm { index } => 3 + index as u64,
            Self::Invert => 7,
            Self::VerticalFlip => 8,
            Self::Equalize => 9,
        }
    }

    /// Output `(height, width)` for an input of `(height, width)`.
    pub fn output_size(&self, height: usize, width: usize) -> (usize, usize) {
        match *self {
            Self::Rotate { quarter_turns } if quarter_turns % 2 == 1 => (width, height),
            _ => (height, width),
        }
    }

    /// Applies the shift to a copy of `img`.
    ///
    /// # Errors
    /// As [`Shift::validate`].
    pub fn apply(&self, img: &Image) -> Result<Image> {
        self.validate()?;
        let mut cur = img.clone();
        let mut next = Image::empty();
        self.apply_in(&mut cur, &mut next, &mut Vec::new());
        Ok(cur)
    }

    /// Applies the (validated) shift to `cur`, using `next` and `levels` as scratch.
    pub(crate) fn apply_in(&self, cur: &mut Image, next: &mut Image, levels: &mut Vec<u8>) {
        match *self {
            Self::Identity | Self::Rotate { quarter_turns: 0 } | Self::CutPerm { index: 0 } => {}
            Self::Rotate { quarter_turns } => {
                rot90_into(cur, quarter_turns, next);
                std::mem::swap(cur, next);
            }
            Self::CutPerm { index } => {
                cutperm_into(cur, index, next);
                std::mem::swap(cur, next);
            }
            Self::Invert => invert(cur),
            Self::VerticalFlip => vflip(cur),
            Self::Equalize => equalize_with(cur, levels),
        }
    }
}

impl fmt::Display for Shift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Identity => write!(f, "identity"),
            Self::Rotate { quarter_turns } => {
                write!(f, "rotate {}°", 90 * u32::from(*quarter_turns))
            }
            Self::CutPerm { index } => write!(f, "cut_perm {index}"),
            Self::Invert => write!(f, "invert"),
            Self::VerticalFlip => write!(f, "vertical_flip"),
            Self::Equalize => write!(f, "equalize"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_delegate_to_their_ops() {
        let img = Image::new(1, 2, 3, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]).unwrap();
        let r = Shift::Rotate { quarter_turns: 1 }.apply(&img).unwrap();
        assert_eq!(r.data(), &[0.4, 1.0, 0.2, 0.8, 0.0, 0.6]);
        assert_eq!(Shift::Rotate { quarter_turns: 1 }.output_size(2, 3), (3, 2));
        let v = Shift::VerticalFlip.apply(&img).unwrap();
        assert_eq!(v.data(), &[0.6, 0.8, 1.0, 0.0, 0.2, 0.4]);
        let i = Shift::Invert.apply(&img).unwrap();
        assert!((i.data()[1] - 0.8).abs() < 1e-7);
        assert_eq!(Shift::Identity.apply(&img).unwrap(), img);
        assert!(Shift::CutPerm { index: 9 }.apply(&img).is_err());
        assert_eq!(
            Shift::Rotate { quarter_turns: 2 }.to_string(),
            "rotate 180°"
        );
    }

    #[test]
    fn stream_ids_are_distinct_except_for_identities() {
        let mut all = vec![
            Shift::Identity,
            Shift::Invert,
            Shift::VerticalFlip,
            Shift::Equalize,
        ];
        all.extend(Shift::ROTATIONS[1..].iter().copied());
        all.extend(Shift::CUT_PERMS[1..].iter().copied());
        let ids: std::collections::HashSet<u64> = all.iter().map(Shift::stream_id).collect();
        assert_eq!(ids.len(), all.len());
        assert_eq!(Shift::ROTATIONS[0].stream_id(), 0);
        assert_eq!(Shift::CUT_PERMS[0].stream_id(), 0);
    }

    #[test]
    fn serde_form_is_tagged() {
        let s = serde_json::to_string(&Shift::Rotate { quarter_turns: 3 }).unwrap();
        assert_eq!(s, r#"{"kind":"rotate","quarter_turns":3}"#);
        let back: Shift = serde_json::from_str(r#"{"kind":"equalize"}"#).unwrap();
        assert_eq!(back, Shift::Equalize);
    }
}
