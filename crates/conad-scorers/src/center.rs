//! Centre score (FIRM; docs/reference.md §2.9).
//!
//! `c = normalise(mean_m ẑ(x_m))` over the L2-normalised training features; normality
//! `cos(ẑ(x), c)` (FIRM's code returns `cos − 1`).
//!
//! **Anomaly score returned here: `1 − cos(ẑ(x), c)`** (= −FIRM's value), in [0, 2].

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::embeddings::{Embeddings, NORM_EPS, dot64, normalize_in_place};
use crate::error::Result;
use crate::traits::{AnomalyScorer, Fit, impl_param_guard};

/// Validated centre-score parameters (none; kept for a uniform API and forward compatibility).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CenterValidParams {}

impl CenterValidParams {
    pub(crate) fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Centre-score parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CenterParams(CenterValidParams);
impl_param_guard!(CenterParams, CenterValidParams);

impl Fit for CenterValidParams {
    type Fitted = CenterScorer;

    fn fit(&self, train: Embeddings<'_>) -> Result<CenterScorer> {
        train.check_min_rows(1, "training bank")?;
        train.check_finite("training bank")?;
        let d = train.cols();
        let mut sum = vec![0.0f64; d];
        let mut z = vec![0.0f32; d];
        for r in train.iter_rows() {
            z.copy_from_slice(r);
            normalize_in_place(&mut z, NORM_EPS);
            for (s, &v) in sum.iter_mut().zip(&z) {
                *s += f64::from(v);
            }
        }
        let norm = sum.iter().map(|v| v * v).sum::<f64>().sqrt();
        let center: Vec<f32> = sum
            .iter()
            .map(|v| (v / norm.max(f64::from(NORM_EPS))) as f32)
            .collect();
        Ok(CenterScorer { center })
    }
}

/// A fitted centre scorer; anomaly = `1 − cos(ẑ(x), c)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CenterScorer {
    /// Unit-norm centre `c` (zero if the normalised training features sum to zero).
    center: Vec<f32>,
}

impl CenterScorer {
    /// The unit-norm centre.
    pub fn center(&self) -> &[f32] {
        &self.center
    }
}

impl AnomalyScorer for CenterScorer {
    fn name(&self) -> &'static str {
        "center"
    }
    fn dim(&self) -> usize {
        self.center.len()
    }
    fn score_batch(&self, queries: Embeddings<'_>) -> Result<Vec<f32>> {
        queries.check_dim(self.center.len(), "centre-score queries")?;
        queries.check_finite("queries")?;
        Ok((0..queries.rows())
            .into_par_iter()
            .map(|i| {
                let r = queries.row(i);
                let n = dot64(r, r).sqrt().max(f64::from(NORM_EPS));
                (1.0 - dot64(r, &self.center) / n) as f32
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_centre() {
        // Normalised rows e1, e2 → mean (½, ½) → c = (1/√2, 1/√2); the second row is stored ×5.
        let train = [1.0f32, 0.0, 0.0, 5.0];
        let s = CenterParams::default()
            .fit(Embeddings::new(&train, 2, 2).unwrap())
            .unwrap();
        let h = 0.5f32.sqrt();
        assert!((s.center()[0] - h).abs() < 1e-7 && (s.center()[1] - h).abs() < 1e-7);
        assert!(s.score(&[3.0, 3.0]).unwrap().abs() < 1e-6);
        assert!((s.score(&[1.0, 0.0]).unwrap() - (1.0 - h)).abs() < 1e-6);
        assert!((s.score(&[-1.0, -1.0]).unwrap() - 2.0).abs() < 1e-6);
    }
}
