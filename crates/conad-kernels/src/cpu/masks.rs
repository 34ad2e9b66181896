//! The mask bits of one anchor against a key tile, from the row ids and the shared
//! [`MaskRules`] (docs/reference.md §0 "The generic kernel", "Self-exclusion"): the CPU
//! backend's vectorised form of [`MaskRules::pair`], which it must agree with.

use crate::info_nce::rules::{Denominator, MaskRules, PositiveRule};

/// Mask bits of one anchor against a key tile. Written as one simple loop per rule (LLVM
/// vectorises the id comparisons); the anchor's own column is cleared afterwards.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indexed loops over equal-length reslices vectorise
pub(super) fn fill_masks(
    rules: &MaskRules,
    (ai, al): (i64, i64),
    self_col: Option<usize>,
    (ki, kl): (&[i64], &[i64]),
    valid: &mut [bool],
    pos: &mut [bool],
) {
    let n = valid.len();
    let (ki, kl, pos) = (&ki[..n], &kl[..n], &mut pos[..n]);
    match rules.positives {
        PositiveRule::SameInstance => {
            for j in 0..n {
                pos[j] = ki[j] == ai;
            }
        }
        PositiveRule::SameLabel => {
            for j in 0..n {
                pos[j] = kl[j] == al;
            }
        }
        PositiveRule::SameInstanceOrInlierLabel => {
            let inlier = al >= 0;
            for j in 0..n {
                pos[j] = (ki[j] == ai) | ((kl[j] == al) & inlier);
            }
        }
    }
    match rules.denominator {
        Denominator::AllOthers => valid.fill(true),
        Denominator::NoSameLabelNegatives => {
            for j in 0..n {
                valid[j] = pos[j] | (kl[j] != al);
            }
        }
    }
    if let Some(c) = self_col {
        valid[c] = false;
        pos[c] = false;
    }
}
