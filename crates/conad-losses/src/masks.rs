//! Anchor/key masks for the generic masked InfoNCE kernel (docs/reference.md §0 "Generic kernel").
//!
//! A [`ContrastMasks`] holds, for `M` anchors and `M'` keys, which keys enter each anchor's
//! denominator (`valid`) and the non-negative weight of each positive (`pos_weight`, 0 = not a
//! positive). Masks live on the host: they are built from labels and batch layout, validated once,
//! and uploaded to the device by the kernel.
//!
//! Builders use the **view-major layout** of docs/reference.md §0: a batch of `n` images with `v` views is
//! `[view 0 of images 0..n ; view 1 of images 0..n ; …]`, so key row `r` is image `r mod n`, view
//! `r / n`, and the positive of row `i` in a two-view batch is row `(i + n) mod 2n`. Self-exclusion:
//! the anchor itself is removed from both its positives and its denominator; other views of the
//! same image are never excluded.

use conad_kernels::{MaskRules, RowIds};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which views act as anchors (HobbitLong `contrast_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorViews {
    /// Every row of the view-major batch is an anchor (`contrast_mode='all'`, SimCLR): `M = v·n`.
    #[default]
    All,
    /// Only view 0 rows are anchors (`contrast_mode='one'`): `M = n`.
    First,
}

/// Denominator and positive masks for `rows` anchors × `cols` keys (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct ContrastMasks {
    rows: usize,
    cols: usize,
    valid: Vec<bool>,
    pos_weight: Vec<f32>,
}

impl ContrastMasks {
    /// Masks from explicit row-major entries.
    ///
    /// # Errors
    /// [`Error::MaskShape`] if a vector's length is not `rows·cols`; [`Error::InvalidWeight`] for
    /// a negative or non-finite weight; [`Error::PositiveNotInDenominator`] if a key with positive
    /// weight is not valid for that anchor.
    pub fn new(rows: usize, cols: usize, valid: Vec<bool>, pos_weight: Vec<f32>) -> Result<Self> {
        for (len, name) in [(valid.len(), "valid"), (pos_weight.len(), "pos_weight")] {
            if len != rows * cols {
                return Err(Error::MaskShape {
                    rows,
                    cols,
                    what: format!("`{name}` has {len} entries"),
                });
            }
        }
        for (idx, (&w, &ok)) in pos_weight.iter().zip(&valid).enumerate() {
            let (row, col) = (idx / cols.max(1), idx % cols.max(1));
            if !(w.is_finite() && w >= 0.0) {
                return Err(Error::InvalidWeight { row, col, value: w });
            }
            if w > 0.0 && !ok {
                return Err(Error::PositiveNotInDenominator { row, col });
            }
        }
        Ok(Self {
            rows,
            cols,
            valid,
            pos_weight,
        })
    }

    /// Builds masks from a predicate `f(anchor, key) -> (valid, weight)`; the result is validated
    /// as in [`ContrastMasks::new`].
    ///
    /// # Errors
    /// As [`ContrastMasks::new`].
    pub fn from_fn(
        rows: usize,
        cols: usize,
        mut f: impl FnMut(usize, usize) -> (bool, f32),
    ) -> Result<Self> {
        let mut valid = Vec::with_capacity(rows * cols);
        let mut pos = Vec::with_capacity(rows * cols);
        for i in 0..rows {
            for j in 0..cols {
                let (v, w) = f(i, j);
                valid.push(v);
                pos.push(w);
            }
        }
        Self::new(rows, cols, valid, pos)
    }

    /// SimCLR / NT-Xent instance discrimination on a view-major batch of `n_images × n_views`
    /// rows: positives are the other views of the anchor's image (weight 1), the denominator is
    /// every key but the anchor itself.
    pub fn instance_discrimination(n_images: usize, n_views: usize, anchors: AnchorViews) -> Self {
        Self::tiled(n_images, n_views, anchors, |i, j| i == j)
    }

    /// SupCon on a view-major batch: positives are all keys with the anchor's label (other views
    /// of the same image included, the anchor itself excluded).
    ///
    /// # Errors
    /// [`Error::LabelCount`] if `labels` is empty.
    pub fn from_labels<L: PartialEq>(
        labels: &[L],
        n_views: usize,
        anchors: AnchorViews,
    ) -> Result<Self> {
        if labels.is_empty() {
            return Err(Error::LabelCount {
                what: "labels",
                got: 0,
                expected: 1,
            });
        }
        Ok(Self::tiled(labels.len(), n_views, anchors, |i, j| {
            labels[i] == labels[j]
        }))
    }

    /// SupCon's explicit `mask` argument: `same[i·n + j]` says whether image `j` is a positive of
    /// image `i` (may be asymmetric); tiled over views with the anchor itself excluded.
    ///
    /// # Errors
    /// [`Error::LabelCount`] if `same.len() != n_images²`.
    pub fn from_image_pairs(
        same: &[bool],
        n_images: usize,
        n_views: usize,
        anchors: AnchorViews,
    ) -> Result<Self> {
        if same.len() != n_images * n_images || n_images == 0 {
            return Err(Error::LabelCount {
                what: "mask",
                got: same.len(),
                expected: n_images * n_images,
            });
        }
        Ok(Self::tiled(n_images, n_views, anchors, |i, j| {
            same[i * n_images + j]
        }))
    }

    /// FIRM's pairwise NT-Xent (`NTXentLoss`, docs/reference.md §1.1): anchors are the `n` view-1 rows, keys
    /// the `n` view-2 rows; every key is in the denominator (no self-pair exists) and the positive
    /// of anchor `i` is key `i`.
    pub fn pairwise_diagonal(n: usize) -> Self {
        let valid = vec![true; n * n];
        let mut pos = vec![0.0; n * n];
        for i in 0..n {
            pos[i * n + i] = 1.0;
        }
        Self {
            rows: n,
            cols: n,
            valid,
            pos_weight: pos,
        }
    }

    /// Masks of one contrast set (anchors = keys = the rows of `ids`) from the fused kernel's
    /// id rules ([`MaskRules`]): row `a` is excluded from its own positives and denominator, every
    /// other pair is decided by [`MaskRules::pair`]. This is the dense equivalent of what
    /// `conad_kernels::fused_info_nce` generates tile by tile, so the composed and fused compute
    /// paths share one definition of each objective's mask (CSI, CON2, UniCLR / FIRM concat, MSC).
    ///
    /// # Errors
    /// [`Error::LabelCount`] if the rules read labels and `ids` carries none.
    pub fn from_rules(ids: &RowIds, rules: &MaskRules) -> Result<Self> {
        let (inst, lab) = Self::ids_and_labels(ids, rules)?;
        Self::from_fn(ids.len(), ids.len(), |a, k| {
            let (v, p) = rules.pair(inst[a], lab[a], inst[k], lab[k], a == k);
            (v, if p { 1.0 } else { 0.0 })
        })
    }

    /// Masks for separate anchors and keys (no self-pair exists, nothing is excluded), e.g.
    /// FIRM's pairwise `z¹ z²ᵀ` loss; the dense equivalent of `conad_kernels::fused_info_nce_qk`.
    ///
    /// # Errors
    /// [`Error::LabelCount`] if the rules read labels and either id set carries none.
    pub fn from_rules_qk(anchor_ids: &RowIds, key_ids: &RowIds, rules: &MaskRules) -> Result<Self> {
        let (ai, al) = Self::ids_and_labels(anchor_ids, rules)?;
        let (ki, kl) = Self::ids_and_labels(key_ids, rules)?;
        Self::from_fn(anchor_ids.len(), key_ids.len(), |a, k| {
            let (v, p) = rules.pair(ai[a], al[a], ki[k], kl[k], false);
            (v, if p { 1.0 } else { 0.0 })
        })
    }

    fn ids_and_labels<'a>(ids: &'a RowIds, rules: &MaskRules) -> Result<(&'a [i64], &'a [i64])> {
        match ids.labels() {
            Some(l) => Ok((ids.instances(), l)),
            None if rules.needs_labels() => Err(Error::LabelCount {
                what: "labels",
                got: 0,
                expected: ids.len(),
            }),
            None => Ok((ids.instances(), ids.instances())),
        }
    }

    fn tiled(
        n_images: usize,
        n_views: usize,
        anchors: AnchorViews,
        same: impl Fn(usize, usize) -> bool,
    ) -> Self {
        let cols = n_images * n_views;
        let rows = match anchors {
            AnchorViews::All => cols,
            AnchorViews::First => n_images,
        };
        let mut valid = vec![true; rows * cols];
        let mut pos = vec![0.0f32; rows * cols];
        for a in 0..rows {
            let i = a % n_images.max(1);
            for c in 0..cols {
                let idx = a * cols + c;
                if c == a {
                    // The anchor row `a` is key row `a` in the view-major layout (for `First`
                    // too: anchor `a` is view 0 of image `a`).
                    valid[idx] = false;
                } else if same(i, c % n_images) {
                    pos[idx] = 1.0;
                }
            }
        }
        Self {
            rows,
            cols,
            valid,
            pos_weight: pos,
        }
    }

    /// Number of anchors `M`.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of keys `M'`.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row-major denominator mask.
    pub fn valid(&self) -> &[bool] {
        &self.valid
    }

    /// Row-major positive weights.
    pub fn pos_weight(&self) -> &[f32] {
        &self.pos_weight
    }

    /// Whether key `col` enters anchor `row`'s denominator.
    pub fn is_valid(&self, row: usize, col: usize) -> bool {
        self.valid[row * self.cols + col]
    }

    /// Positive weight of key `col` for anchor `row`.
    pub fn weight(&self, row: usize, col: usize) -> f32 {
        self.pos_weight[row * self.cols + col]
    }

    /// Σ_j pos_weight[i, j] for every anchor.
    pub fn positive_weight_sums(&self) -> Vec<f32> {
        self.pos_weight
            .chunks(self.cols.max(1))
            .map(|r| r.iter().sum())
            .take(self.rows)
            .collect()
    }

    /// Rescales each row's positive weights to sum to 1 (rows without positives are unchanged).
    pub fn normalised_rows(&self) -> Self {
        let mut out = self.clone();
        if self.cols == 0 {
            return out;
        }
        for row in out.pos_weight.chunks_mut(self.cols) {
            let s: f32 = row.iter().sum();
            if s > 0.0 {
                row.iter_mut().for_each(|w| *w /= s);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positives(m: &ContrastMasks, row: usize) -> Vec<usize> {
        (0..m.cols()).filter(|&c| m.weight(row, c) > 0.0).collect()
    }

    #[test]
    fn simclr_positive_is_row_plus_n_mod_2n() {
        let n = 4;
        let m = ContrastMasks::instance_discrimination(n, 2, AnchorViews::All);
        assert_eq!((m.rows(), m.cols()), (8, 8));
        for i in 0..2 * n {
            assert_eq!(positives(&m, i), vec![(i + n) % (2 * n)]);
            // 2N − 1 denominator entries, self excluded.
            let valid: Vec<usize> = (0..2 * n).filter(|&c| m.is_valid(i, c)).collect();
            assert_eq!(valid.len(), 2 * n - 1);
            assert!(!m.is_valid(i, i));
        }
    }

    #[test]
    fn labels_give_same_class_positives_and_first_view_anchors() {
        let m = ContrastMasks::from_labels(&[0, 1, 0], 2, AnchorViews::All).unwrap();
        assert_eq!(positives(&m, 0), vec![2, 3, 5]);
        assert_eq!(positives(&m, 3), vec![0, 2, 5]);
        assert_eq!(positives(&m, 4), vec![1]);
        assert_eq!(positives(&m, 1), vec![4]);
        let m = ContrastMasks::from_labels(&[0, 1, 0], 2, AnchorViews::First).unwrap();
        assert_eq!((m.rows(), m.cols()), (3, 6));
        assert_eq!(positives(&m, 0), vec![2, 3, 5]);
        assert!(!m.is_valid(1, 1) && m.is_valid(1, 4));
        // One view, singleton label: no positives at all.
        let m = ContrastMasks::from_labels(&[7, 8, 8], 1, AnchorViews::All).unwrap();
        assert_eq!(m.positive_weight_sums(), vec![0.0, 1.0, 1.0]);
    }

    #[test]
    fn image_pair_mask_reproduces_firm_concat_golden_mask() {
        // docs/reference.md §1.6: labels [1, 2, 2, −1, −1] (B = 5). Inliers are positives of same-class
        // inliers; an outlier (−1) only of its own other view.
        let y = [1, 2, 2, -1, -1];
        let same: Vec<bool> = (0..5)
            .flat_map(|i| (0..5).map(move |j| i == j || (y[i] == y[j] && y[i] != -1)))
            .collect();
        let m = ContrastMasks::from_image_pairs(&same, 5, 2, AnchorViews::All).unwrap();
        assert_eq!(positives(&m, 0), vec![5]);
        assert_eq!(positives(&m, 1), vec![2, 6, 7]);
        assert_eq!(positives(&m, 2), vec![1, 6, 7]);
        assert_eq!(positives(&m, 3), vec![8]);
        assert_eq!(positives(&m, 4), vec![9]);
        // Lower half mirrors.
        assert_eq!(positives(&m, 5), vec![0]);
        assert_eq!(positives(&m, 6), vec![1, 2, 7]);
        assert_eq!(positives(&m, 9), vec![4]);
    }

    #[test]
    fn pairwise_mask_keeps_the_diagonal_in_the_denominator() {
        let m = ContrastMasks::pairwise_diagonal(3);
        for i in 0..3 {
            assert_eq!(positives(&m, i), vec![i]);
            assert!((0..3).all(|c| m.is_valid(i, c)));
        }
    }

    #[test]
    fn invalid_masks_are_rejected() {
        assert!(matches!(
            ContrastMasks::new(2, 2, vec![true; 3], vec![0.0; 4]),
            Err(Error::MaskShape { .. })
        ));
        assert!(matches!(
            ContrastMasks::new(1, 2, vec![true, true], vec![-1.0, 0.0]),
            Err(Error::InvalidWeight { row: 0, col: 0, .. })
        ));
        assert!(matches!(
            ContrastMasks::new(1, 2, vec![true, true], vec![f32::NAN, 0.0]),
            Err(Error::InvalidWeight { .. })
        ));
        assert!(matches!(
            ContrastMasks::new(1, 2, vec![true, false], vec![0.0, 1.0]),
            Err(Error::PositiveNotInDenominator { row: 0, col: 1 })
        ));
        assert!(matches!(
            ContrastMasks::from_image_pairs(&[true; 3], 2, 2, AnchorViews::All),
            Err(Error::LabelCount { .. })
        ));
        assert!(matches!(
            ContrastMasks::from_labels::<i64>(&[], 2, AnchorViews::All),
            Err(Error::LabelCount { .. })
        ));
    }

    #[test]
    fn normalised_rows_sum_to_one() {
        let m =
            ContrastMasks::new(2, 3, vec![true; 6], vec![1.0, 3.0, 0.0, 0.0, 0.0, 0.0]).unwrap();
        let n = m.normalised_rows();
        assert_eq!(n.pos_weight(), &[0.25, 0.75, 0.0, 0.0, 0.0, 0.0]);
    }
}
