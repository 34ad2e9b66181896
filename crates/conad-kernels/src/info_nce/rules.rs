//! Masks generated from ids inside a tile (docs/reference.md §0 "The generic kernel", §1.1,
//! §1.2, §1.6), shared by both backends.
//!
//! Instead of the dense `valid[M×M']` and `pos_w[M×M']` of the generic kernel, every row carries
//! an *instance id* (which source image it is a view of) and optionally a *class label*; a
//! [`PositiveRule`] and a [`Denominator`] rule turn the ids of an (anchor, key) pair into the two
//! mask bits on the fly. Positive weights are 0/1. The anchor itself is always excluded from
//! both its positives and its denominator (docs/reference.md §0 "Self-exclusion"); other views
//! of the same image are never excluded.
//!
//! Every rule is symmetric in (anchor, key), which the shared-`z` backward relies on.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which keys are positives of an anchor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositiveRule {
    /// Same instance id: the other views of the anchor's image (SimCLR / NT-Xent, CSI with
    /// rotated copies as separate instances, MSC, FIRM's pairwise diagonal).
    #[default]
    SameInstance,
    /// Same class label (SupCon, CON2's context and content losses).
    SameLabel,
    /// Same instance, or same label when that label is ≥ 0 (FIRM "concat" / UniCLR: inliers
    /// with a class label ≥ 0 are mutual positives, outliers labelled −1 only match their own
    /// other view).
    SameInstanceOrInlierLabel,
}

impl PositiveRule {
    /// The rule's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::SameInstance => "same_instance",
            Self::SameLabel => "same_label",
            Self::SameInstanceOrInlierLabel => "same_instance_or_inlier_label",
        }
    }

    /// Whether the rule reads class labels.
    pub fn needs_labels(self) -> bool {
        !matches!(self, Self::SameInstance)
    }

    /// Integer code passed to the CUDA kernels (`POS_*` in `cuda/common.cuh`).
    pub fn code(self) -> i32 {
        match self {
            Self::SameInstance => 0,
            Self::SameLabel => 1,
            Self::SameInstanceOrInlierLabel => 2,
        }
    }
}

/// Which keys enter an anchor's denominator (the anchor itself never does).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Denominator {
    /// Every key but the anchor itself (SimCLR's 2N − 1 terms, SupCon, FIRM, CON2).
    #[default]
    AllOthers,
    /// Every key but the anchor itself and the keys that share the anchor's class label
    /// without being positives ("false-negative elimination", Huynh et al. 2022): with
    /// [`PositiveRule::SameInstance`] other same-class images stop acting as negatives.
    NoSameLabelNegatives,
}

impl Denominator {
    /// Whether the rule reads class labels.
    pub fn needs_labels(self) -> bool {
        matches!(self, Self::NoSameLabelNegatives)
    }

    /// Integer code passed to the CUDA kernels (`DEN_*` in `cuda/common.cuh`).
    pub fn code(self) -> i32 {
        match self {
            Self::AllOthers => 0,
            Self::NoSameLabelNegatives => 1,
        }
    }
}

/// The pair of rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaskRules {
    /// Positives.
    pub positives: PositiveRule,
    /// Denominator.
    pub denominator: Denominator,
}

impl MaskRules {
    /// Whether either rule reads class labels.
    pub fn needs_labels(&self) -> bool {
        self.positives.needs_labels() || self.denominator.needs_labels()
    }

    /// `(valid, positive)` for anchor ids `(ai, al)` and key ids `(ki, kl)`; `is_self` when the
    /// key is the anchor's own row. A positive is always valid.
    #[inline(always)]
    pub fn pair(&self, ai: i64, al: i64, ki: i64, kl: i64, is_self: bool) -> (bool, bool) {
        let same_inst = ai == ki;
        let same_lab = al == kl;
        let pos_rule = match self.positives {
            PositiveRule::SameInstance => same_inst,
            PositiveRule::SameLabel => same_lab,
            PositiveRule::SameInstanceOrInlierLabel => same_inst | (same_lab & (al >= 0)),
        };
        let valid = !is_self
            & match self.denominator {
                Denominator::AllOthers => true,
                Denominator::NoSameLabelNegatives => pos_rule | !same_lab,
            };
        (valid, valid & pos_rule)
    }
}

/// Per-row ids: instance ids and (optional) class labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowIds {
    instances: Vec<i64>,
    labels: Option<Vec<i64>>,
}

impl RowIds {
    /// Rows with the given instance ids and no labels.
    pub fn new(instances: Vec<i64>) -> Self {
        Self {
            instances,
            labels: None,
        }
    }

    /// Rows with instance ids and class labels.
    ///
    /// # Errors
    /// [`Error::IdCount`] if the lengths differ.
    pub fn with_labels(instances: Vec<i64>, labels: Vec<i64>) -> Result<Self> {
        if labels.len() != instances.len() {
            return Err(Error::IdCount {
                what: "labels",
                got: labels.len(),
                expected: instances.len(),
            });
        }
        Ok(Self {
            instances,
            labels: Some(labels),
        })
    }

    /// The view-major layout of docs/reference.md §0: `n_images × n_views` rows
    /// `[view 0 of images 0..n ; view 1 ; …]`, so row `r` is instance `r mod n`.
    pub fn view_major(n_images: usize, n_views: usize) -> Self {
        Self::new(
            (0..n_images * n_views)
                .map(|r| (r % n_images.max(1)) as i64)
                .collect(),
        )
    }

    /// View-major rows with per-image class labels (`labels[i]` for image `i`), as SupCon.
    ///
    /// # Errors
    /// [`Error::IdCount`] if `labels` is empty.
    pub fn view_major_labelled(labels: &[i64], n_views: usize) -> Result<Self> {
        if labels.is_empty() {
            return Err(Error::IdCount {
                what: "labels",
                got: 0,
                expected: 1,
            });
        }
        let n = labels.len();
        let rows = n * n_views;
        Self::with_labels(
            (0..rows).map(|r| (r % n) as i64).collect(),
            (0..rows).map(|r| labels[r % n]).collect(),
        )
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// Instance ids.
    pub fn instances(&self) -> &[i64] {
        &self.instances
    }

    /// Class labels, if given.
    pub fn labels(&self) -> Option<&[i64]> {
        self.labels.as_deref()
    }

    /// Labels, or the instance ids when no labels were given (rules that do not read labels
    /// never look at them).
    pub(crate) fn labels_or_instances(&self) -> &[i64] {
        self.labels.as_deref().unwrap_or(&self.instances)
    }

    /// Checks the ids against `rows` rows and the rules.
    pub(crate) fn check(&self, what: &'static str, rows: usize, rules: &MaskRules) -> Result<()> {
        if self.len() != rows {
            return Err(Error::IdCount {
                what,
                got: self.len(),
                expected: rows,
            });
        }
        if rules.needs_labels() && self.labels.is_none() {
            return Err(Error::MissingLabels {
                rule: if rules.positives.needs_labels() {
                    rules.positives.name()
                } else {
                    "no_same_label_negatives"
                },
            });
        }
        Ok(())
    }
}

/// `|P(i)|` for every anchor, in O(M + M') with hash counts (no pair loop).
///
/// `self_key(i)` is the key row of anchor `i` itself (shared `z`), or `None` when anchors and keys
/// are different tensors.
pub(crate) fn positive_counts(
    anchors: &RowIds,
    n_anchors: usize,
    keys: &RowIds,
    rules: &MaskRules,
    shared: bool,
) -> Vec<u32> {
    let mut by_inst: HashMap<i64, u32> = HashMap::new();
    let mut by_lab: HashMap<i64, u32> = HashMap::new();
    let mut by_pair: HashMap<(i64, i64), u32> = HashMap::new();
    let (ki, kl) = (keys.instances(), keys.labels_or_instances());
    for (&i, &l) in ki.iter().zip(kl) {
        *by_inst.entry(i).or_default() += 1;
        *by_lab.entry(l).or_default() += 1;
        *by_pair.entry((i, l)).or_default() += 1;
    }
    let (ai, al) = (anchors.instances(), anchors.labels_or_instances());
    (0..n_anchors)
        .map(|a| {
            let (i, l) = (ai[a], al[a]);
            // A positive is always valid under both denominators (positives are never dropped
            // by `NoSameLabelNegatives`), so counts depend on the positive rule only.
            // Anchors and keys may be different rows (q/k form): an id need not occur among keys.
            let inst = by_inst.get(&i).copied().unwrap_or(0);
            let count = match rules.positives {
                PositiveRule::SameInstance => inst,
                PositiveRule::SameLabel => by_lab.get(&l).copied().unwrap_or(0),
                PositiveRule::SameInstanceOrInlierLabel if l >= 0 => {
                    inst + by_lab.get(&l).copied().unwrap_or(0)
                        - by_pair.get(&(i, l)).copied().unwrap_or(0)
                }
                PositiveRule::SameInstanceOrInlierLabel => inst,
            };
            // In the shared case the anchor's own row matched every rule; remove it.
            if shared { count - 1 } else { count }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_counts(
        ids: &RowIds,
        m: usize,
        keys: &RowIds,
        rules: &MaskRules,
        shared: bool,
    ) -> Vec<u32> {
        let (ai, al) = (ids.instances(), ids.labels_or_instances());
        let (ki, kl) = (keys.instances(), keys.labels_or_instances());
        (0..m)
            .map(|a| {
                (0..keys.len())
                    .filter(|&k| rules.pair(ai[a], al[a], ki[k], kl[k], shared && a == k).1)
                    .count() as u32
            })
            .collect()
    }

    #[test]
    fn hash_counts_equal_pair_loop_counts() {
        // FIRM concat golden labels [1, 2, 2, −1, −1] (docs/reference.md §1.6), two views.
        let ids = RowIds::view_major_labelled(&[1, 2, 2, -1, -1], 2).unwrap();
        for positives in [
            PositiveRule::SameInstance,
            PositiveRule::SameLabel,
            PositiveRule::SameInstanceOrInlierLabel,
        ] {
            for denominator in [Denominator::AllOthers, Denominator::NoSameLabelNegatives] {
                let rules = MaskRules {
                    positives,
                    denominator,
                };
                for m in [10, 5] {
                    assert_eq!(
                        positive_counts(&ids, m, &ids, &rules, true),
                        brute_counts(&ids, m, &ids, &rules, true),
                        "{rules:?} m={m}"
                    );
                }
                assert_eq!(
                    positive_counts(&ids, 10, &ids, &rules, false),
                    brute_counts(&ids, 10, &ids, &rules, false)
                );
            }
        }
        // Separate anchors whose ids do not all occur among the keys.
        let anchors = RowIds::with_labels(vec![0, 7, 1, 9], vec![1, 2, 5, -1]).unwrap();
        for positives in [
            PositiveRule::SameInstance,
            PositiveRule::SameLabel,
            PositiveRule::SameInstanceOrInlierLabel,
        ] {
            let rules = MaskRules {
                positives,
                denominator: Denominator::AllOthers,
            };
            assert_eq!(
                positive_counts(&anchors, 4, &ids, &rules, false),
                brute_counts(&anchors, 4, &ids, &rules, false),
                "{rules:?}"
            );
        }
        let firm = MaskRules {
            positives: PositiveRule::SameInstanceOrInlierLabel,
            denominator: Denominator::AllOthers,
        };
        // Row 0 (class 1, alone): only column 5; rows 1, 2: each other and 6, 7; outliers: 1.
        assert_eq!(
            positive_counts(&ids, 10, &ids, &firm, true),
            vec![1, 3, 3, 1, 1, 1, 3, 3, 1, 1]
        );
    }

    #[test]
    fn rules_exclude_self_and_keep_positives_valid() {
        let r = MaskRules {
            positives: PositiveRule::SameLabel,
            denominator: Denominator::AllOthers,
        };
        assert_eq!(r.pair(0, 3, 0, 3, true), (false, false));
        assert_eq!(r.pair(0, 3, 1, 3, false), (true, true));
        assert_eq!(r.pair(0, 3, 1, 4, false), (true, false));
        let fne = MaskRules {
            positives: PositiveRule::SameInstance,
            denominator: Denominator::NoSameLabelNegatives,
        };
        // Same class, other image: dropped from the denominator.
        assert_eq!(fne.pair(0, 3, 1, 3, false), (false, false));
        // Other view of the same image: positive.
        assert_eq!(fne.pair(0, 3, 0, 3, false), (true, true));
        // Other class: negative.
        assert_eq!(fne.pair(0, 3, 1, 4, false), (true, false));
        let firm = MaskRules {
            positives: PositiveRule::SameInstanceOrInlierLabel,
            denominator: Denominator::AllOthers,
        };
        assert_eq!(firm.pair(0, -1, 1, -1, false), (true, false));
        assert_eq!(firm.pair(0, 2, 1, 2, false), (true, true));
    }

    #[test]
    fn labels_are_required_by_label_rules() {
        let ids = RowIds::view_major(3, 2);
        let rules = MaskRules {
            positives: PositiveRule::SameLabel,
            ..Default::default()
        };
        assert!(matches!(
            ids.check("ids", 6, &rules),
            Err(Error::MissingLabels { rule: "same_label" })
        ));
        assert!(matches!(
            ids.check("ids", 5, &MaskRules::default()),
            Err(Error::IdCount {
                got: 6,
                expected: 5,
                ..
            })
        ));
        assert!(RowIds::with_labels(vec![0, 1], vec![0]).is_err());
    }
}
