//! CSI detection score with its λ balancing (Tack et al. 2020; docs/reference.md §2.4, §2.5).
//!
//! Inputs are per shift k (rotation 0°, 90°, …): the projections (`simclr` head output,
//! un-normalised) of T random ensemble samples of every image under shift k, and optionally the
//! shift-head logit of class k for those samples. Per shift k:
//!
//! - training axis `a_k(x_m) = normalise(mean_T proj(rot_k(x_m)))`;
//! - test vector `v_k(x) = mean_T proj(rot_k(x))` (**not** normalised);
//! - `s_con,k(x) = max_m v_k(x)·a_k(x_m) = ‖v_k(x)‖·max_m cos(v_k(x), a_k(x_m))`;
//! - `s_cls,k(x) = mean_T logit_k(rot_k(x))`;
//! - `λ^con_k = 1 / mean_m ‖mean_T proj(rot_k(x_m))‖`, `λ^cls_k = 1 / mean_m mean_T logit_k`
//!   (from the training set).
//!
//! `CSI(x) = (1/K) Σ_k [λ^con_k s_con,k(x) + λ^cls_k s_cls,k(x)]`, higher = more normal.
//! The "simclr" score of SimCLR models is one shift, no logits, λ^con = 1 ([`CsiParams::balance`]
//! off, [`CsiParams::use_shift_logits`] off).
//!
//! **Anomaly score returned here: `−CSI(x)`.**

use serde::{Deserialize, Serialize};

use crate::embeddings::{EmbeddingMatrix, Embeddings, dot64};
use crate::error::{Error, Result};
use crate::knn::{KnnParams, KnnScorer};
use crate::traits::{AnomalyScorer, ParamGuard, impl_param_guard};

/// Features of one shift (rotation) for a set of images.
///
/// # Shapes
/// `projections`: `(n·T) × d`, sample-major — rows `i·T .. (i+1)·T` are image `i`'s T ensemble
/// samples; `shift_logits`: `n·T` values (the logit of *this* shift's class for each sample).
#[derive(Clone, Copy, Debug)]
pub struct CsiShiftFeatures<'a> {
    /// Projection-head outputs (un-normalised).
    pub projections: Embeddings<'a>,
    /// Shift-classifier logit of this shift's class, per sample (`None` if not used).
    pub shift_logits: Option<&'a [f32]>,
}

/// Validated CSI parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CsiValidParams {
    ensemble_size: usize,
    use_shift_logits: bool,
    balance: bool,
}

impl Default for CsiValidParams {
    fn default() -> Self {
        Self {
            ensemble_size: 10,
            use_shift_logits: true,
            balance: true,
        }
    }
}

impl CsiValidParams {
    /// T, the number of random ensemble samples per image (CSI uses 10).
    pub const fn ensemble_size(&self) -> usize {
        self.ensemble_size
    }
    /// Whether `s_cls` enters the score.
    pub const fn use_shift_logits(&self) -> bool {
        self.use_shift_logits
    }
    /// Whether λ weights are computed (off: all λ = 1).
    pub const fn balance(&self) -> bool {
        self.balance
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.ensemble_size == 0 {
            return Err(Error::invalid(
                "ensemble_size",
                "0",
                "need at least one sample per image (CSI uses T = 10)",
            ));
        }
        Ok(())
    }

    /// Averages each image's T samples; returns `(n × d means, per-image mean logit)`.
    fn average(
        &self,
        f: &CsiShiftFeatures<'_>,
        k: usize,
        what: &str,
    ) -> Result<(EmbeddingMatrix, Option<Vec<f64>>)> {
        let t = self.ensemble_size;
        let p = f.projections;
        p.check_finite(&format!("{what} shift {k} projections"))?;
        if !p.rows().is_multiple_of(t) {
            return Err(Error::GroupMismatch(format!(
                "{what} shift {k}: {} projection rows is not a multiple of the ensemble size T = {t}",
                p.rows()
            )));
        }
        let (n, d) = (p.rows() / t, p.cols());
        let mut means = vec![0.0f32; n * d];
        for (i, out) in means.chunks_exact_mut(d).enumerate() {
            let mut acc = vec![0.0f64; d];
            for s in 0..t {
                for (a, &v) in acc.iter_mut().zip(p.row(i * t + s)) {
                    *a += f64::from(v);
                }
            }
            for (o, a) in out.iter_mut().zip(acc) {
                *o = (a / t as f64) as f32;
            }
        }
        let logits = if self.use_shift_logits {
            let l = f.shift_logits.ok_or_else(|| {
                Error::GroupMismatch(format!(
                    "{what} shift {k}: shift logits are required (use_shift_logits is on)"
                ))
            })?;
            if l.len() != n * t {
                return Err(Error::GroupMismatch(format!(
                    "{what} shift {k}: {} shift logits for {} samples",
                    l.len(),
                    n * t
                )));
            }
            if let Some(pos) = l.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    what: format!("{what} shift {k} logits"),
                    row: pos,
                    col: 0,
                    value: l[pos],
                });
            }
            Some(
                l.chunks_exact(t)
                    .map(|c| c.iter().map(|&v| f64::from(v)).sum::<f64>() / t as f64)
                    .collect(),
            )
        } else {
            None
        };
        Ok((EmbeddingMatrix::new(means, n, d)?, logits))
    }

    /// Fits on the training features of every shift.
    ///
    /// # Errors
    /// No shifts, inconsistent image counts or dimensions across shifts, missing logits, an
    /// empty bank, non-finite values, or a zero training mean norm/logit (λ undefined).
    pub fn fit(&self, train: &[CsiShiftFeatures<'_>]) -> Result<CsiScorer> {
        self.validate()?;
        if train.is_empty() {
            return Err(Error::GroupMismatch(
                "CSI needs the features of at least one shift".into(),
            ));
        }
        let mut shifts = Vec::with_capacity(train.len());
        let mut n0 = None;
        for (k, f) in train.iter().enumerate() {
            let (means, logits) = self.average(f, k, "training")?;
            means
                .view()
                .check_min_rows(1, &format!("shift {k} training bank"))?;
            if let Some(n0) = n0
                && n0 != means.rows()
            {
                return Err(Error::GroupMismatch(format!(
                    "shift {k} has {} training images but shift 0 has {n0}",
                    means.rows()
                )));
            }
            n0 = Some(means.rows());
            let mean_norm = means
                .view()
                .iter_rows()
                .map(|r| dot64(r, r).sqrt())
                .sum::<f64>()
                / means.rows() as f64;
            let lambda_con = if self.balance {
                if mean_norm <= 0.0 {
                    return Err(Error::invalid(
                        "lambda_con",
                        "1/0",
                        "training projections have zero mean norm; disable balance",
                    ));
                }
                1.0 / mean_norm
            } else {
                1.0
            };
            let lambda_cls = match (&logits, self.balance) {
                (Some(l), true) => {
                    let m = l.iter().sum::<f64>() / l.len() as f64;
                    if m == 0.0 {
                        return Err(Error::invalid(
                            "lambda_cls",
                            "1/0",
                            "training shift logits average to 0; disable balance",
                        ));
                    }
                    1.0 / m
                }
                (Some(_), false) => 1.0,
                (None, _) => 0.0,
            };
            let axis = KnnParams::default()
                .norm_weighting(true)
                .check()?
                .fit_owned(means)?;
            shifts.push(CsiShift {
                axis,
                lambda_con,
                lambda_cls,
            });
        }
        Ok(CsiScorer {
            params: self.clone(),
            shifts,
        })
    }
}

/// CSI parameters (unchecked; builder setters; serde).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CsiParams(CsiValidParams);
impl_param_guard!(CsiParams, CsiValidParams);

impl CsiParams {
    /// T, random ensemble samples per image (default 10).
    pub fn ensemble_size(mut self, t: usize) -> Self {
        self.0.ensemble_size = t;
        self
    }
    /// Include the shift-classifier term (default true).
    pub fn use_shift_logits(mut self, on: bool) -> Self {
        self.0.use_shift_logits = on;
        self
    }
    /// Compute the λ balancing weights (default true; off = all λ 1).
    pub fn balance(mut self, on: bool) -> Self {
        self.0.balance = on;
        self
    }
    /// Validates, then fits (see [`CsiValidParams::fit`]).
    ///
    /// # Errors
    /// As [`CsiValidParams::fit`].
    pub fn fit(&self, train: &[CsiShiftFeatures<'_>]) -> Result<CsiScorer> {
        self.check_ref()?.fit(train)
    }
}

/// One shift's fitted state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsiShift {
    /// Normalised training axes with norm-weighted max-cosine scoring (`s_con`).
    axis: KnnScorer,
    /// λ^con_k.
    pub lambda_con: f64,
    /// λ^cls_k (0 when logits are not used).
    pub lambda_cls: f64,
}

/// A fitted CSI scorer; anomaly = `−CSI(x)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsiScorer {
    params: CsiValidParams,
    shifts: Vec<CsiShift>,
}

impl CsiScorer {
    /// Per-shift state (λ weights).
    pub fn shifts(&self) -> &[CsiShift] {
        &self.shifts
    }

    /// Per-shift, per-image `(s_con,k, s_cls,k)` (unweighted), `shifts × n`.
    ///
    /// # Errors
    /// As [`CsiScorer::score_batch`].
    pub fn components(&self, test: &[CsiShiftFeatures<'_>]) -> Result<Vec<Vec<(f64, f64)>>> {
        if test.len() != self.shifts.len() {
            return Err(Error::GroupMismatch(format!(
                "scorer was fitted on {} shifts but got {}",
                self.shifts.len(),
                test.len()
            )));
        }
        let mut out = Vec::with_capacity(test.len());
        let mut n0 = None;
        for (k, (f, sh)) in test.iter().zip(&self.shifts).enumerate() {
            let (means, logits) = self.params.average(f, k, "test")?;
            if let Some(n0) = n0
                && n0 != means.rows()
            {
                return Err(Error::GroupMismatch(format!(
                    "test shift {k} has {} images but shift 0 has {n0}",
                    means.rows()
                )));
            }
            n0 = Some(means.rows());
            means
                .view()
                .check_dim(sh.axis.dim(), "CSI test projections")?;
            let con = sh.axis.normality_batch(means.view())?;
            out.push(
                con.iter()
                    .enumerate()
                    .map(|(i, &c)| (f64::from(c), logits.as_ref().map_or(0.0, |l| l[i])))
                    .collect(),
            );
        }
        Ok(out)
    }

    /// Anomaly scores `−CSI(x)`, one per test image.
    ///
    /// # Errors
    /// Shift count, image count or dimension mismatches; missing logits; non-finite values.
    pub fn score_batch(&self, test: &[CsiShiftFeatures<'_>]) -> Result<Vec<f32>> {
        let comps = self.components(test)?;
        let k = comps.len() as f64;
        let n = comps.first().map_or(0, Vec::len);
        Ok((0..n)
            .map(|i| {
                let csi: f64 = comps
                    .iter()
                    .zip(&self.shifts)
                    .map(|(c, sh)| sh.lambda_con * c[i].0 + sh.lambda_cls * c[i].1)
                    .sum::<f64>()
                    / k;
                (-csi) as f32
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feats<'a>(data: &'a [f32], logits: &'a [f32], d: usize) -> CsiShiftFeatures<'a> {
        CsiShiftFeatures {
            projections: Embeddings::new(data, data.len() / d, d).unwrap(),
            shift_logits: Some(logits),
        }
    }

    #[test]
    fn training_samples_have_unit_weighted_con_score_on_average() {
        // docs/reference.md §7: a training sample against its own bank has s_con,k·λ^con_k averaging to 1.
        let d = 3;
        let t = 2;
        let shift0: Vec<f32> = (0..5 * t * d)
            .map(|i| ((i * 7) % 11) as f32 + 0.5)
            .collect();
        let shift1: Vec<f32> = (0..5 * t * d)
            .map(|i| ((i * 5) % 13) as f32 - 2.5)
            .collect();
        let logits: Vec<f32> = (0..5 * t).map(|i| 1.0 + i as f32 * 0.1).collect();
        let train = [feats(&shift0, &logits, d), feats(&shift1, &logits, d)];
        let s = CsiParams::default().ensemble_size(t).fit(&train).unwrap();
        let comps = s.components(&train).unwrap();
        for (k, c) in comps.iter().enumerate() {
            let mean: f64 = c.iter().map(|v| v.0).sum::<f64>() / c.len() as f64;
            assert!((mean * s.shifts()[k].lambda_con - 1.0).abs() < 1e-5);
            let mcls: f64 = c.iter().map(|v| v.1).sum::<f64>() / c.len() as f64;
            assert!((mcls * s.shifts()[k].lambda_cls - 1.0).abs() < 1e-9);
        }
        // Hence the training set's mean CSI score is exactly 2 (con + cls, averaged over shifts).
        let scores = s.score_batch(&train).unwrap();
        let mean: f64 = scores.iter().map(|&v| f64::from(v)).sum::<f64>() / scores.len() as f64;
        assert!((mean + 2.0).abs() < 1e-5, "{mean}");
    }

    #[test]
    fn hand_computed_single_shift() {
        // T = 1, bank axes e1 and e2 (stored ×2 and ×4: mean norm 3 → λ_con = 1/3),
        // logits 1 and 3 (λ_cls = 1/2). Test v = (3, 4), logit 2:
        // s_con = max(3, 4) = 4; CSI = 4/3 + 2/2 = 7/3.
        let train = [feats(&[2.0, 0.0, 0.0, 4.0], &[1.0, 3.0], 2)];
        let s = CsiParams::default().ensemble_size(1).fit(&train).unwrap();
        let test = [feats(&[3.0, 4.0], &[2.0], 2)];
        let a = s.score_batch(&test).unwrap();
        assert!((f64::from(a[0]) + 7.0 / 3.0).abs() < 1e-6, "{}", a[0]);
        let bad = [feats(&[3.0, 4.0, 1.0], &[2.0], 3)];
        assert!(matches!(
            s.score_batch(&bad),
            Err(Error::DimensionMismatch { .. })
        ));
        assert!(matches!(
            CsiParams::default()
                .ensemble_size(2)
                .fit(&[feats(&[1.0; 6], &[1.0; 3], 2)]),
            Err(Error::GroupMismatch(_))
        ));
    }
}
