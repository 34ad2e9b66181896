//! The RBF kernel `k(x, y) = exp(−γ‖x − y‖²)` (scikit-learn's convention for `gamma`) and its
//! bandwidth rules (docs/reference.md §2.7, §2.8, §6.15), plus a blocked, streaming
//! `log Σ_j w_j exp(−γ‖x − b_j‖²)` used by KDE and the RBF one-class SVM.
//!
//! `‖x − b‖² = ‖x‖² + ‖b‖² − 2 x·b` with the inner products from the blocked GEMM of
//! [`similarity`](crate::similarity) (clamped at 0), and a per-(query, bank-tile) log-sum-exp
//! `(max, Σ exp(· − max))` merged in tile order.

use serde::{Deserialize, Serialize};

use crate::embeddings::{EmbeddingMatrix, Embeddings, NORM_EPS, dot64, normalize_rows_in_place};
use crate::error::{Error, Result};
use crate::similarity::{PreparedBlock, TilePlan, blocked_reduce};

/// The RBF bandwidth γ in `exp(−γ‖x−y‖²)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Gamma {
    /// DROC/FIRM: `γ = 10 / (Var(X_train) · d)` (Var over all entries of the — normalised —
    /// training matrix; docs/reference.md §2.7).
    Droc,
    /// scikit-learn's `gamma="scale"`: `γ = 1 / (Var(X_train) · d)` (KE, docs/reference.md §6.15).
    Scale,
    /// A fixed value (`--gamma G`).
    Value {
        /// γ > 0.
        value: f32,
    },
}

impl Gamma {
    /// Checks a fixed value is finite and positive.
    ///
    /// # Errors
    /// [`Error::InvalidGamma`].
    pub fn validate(&self) -> Result<()> {
        if let Self::Value { value } = *self
            && !(value.is_finite() && value > 0.0)
        {
            return Err(Error::InvalidGamma(value));
        }
        Ok(())
    }

    /// Resolves γ for a training matrix (already in the kernel's feature space).
    ///
    /// # Errors
    /// [`Error::ZeroVariance`] for a data-derived rule on constant data.
    pub fn resolve(&self, train: Embeddings<'_>) -> Result<f32> {
        let c = match *self {
            Self::Value { value } => return Ok(value),
            Self::Droc => 10.0,
            Self::Scale => 1.0,
        };
        let var = crate::embeddings::variance_of_entries(train.as_slice());
        if var.is_nan() || var <= 0.0 {
            return Err(Error::ZeroVariance);
        }
        Ok((c / (var * train.cols() as f64)) as f32)
    }
}

/// An RBF "bank": rows in kernel space plus their squared norms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RbfBank {
    pub rows: EmbeddingMatrix,
    pub sq_norms: Vec<f32>,
}

impl RbfBank {
    /// Checks the cached norms match the rows (after deserialisation).
    pub(crate) fn check(&self, scorer: &'static str) -> Result<()> {
        if self.sq_norms.len() != self.rows.rows() {
            return Err(Error::CorruptModel {
                scorer,
                detail: format!(
                    "{} bank rows but {} cached norms",
                    self.rows.rows(),
                    self.sq_norms.len()
                ),
            });
        }
        Ok(())
    }

    pub(crate) fn new(rows: EmbeddingMatrix) -> Self {
        let sq_norms = rows
            .view()
            .iter_rows()
            .map(|r| dot64(r, r) as f32)
            .collect();
        Self { rows, sq_norms }
    }
}

/// Copies `x`, L2-normalising rows if asked.
pub(crate) fn to_feature_space(x: Embeddings<'_>, l2: bool) -> EmbeddingMatrix {
    let mut m = x.to_matrix();
    if l2 {
        let cols = m.cols();
        normalize_rows_in_place(m.as_mut_slice(), cols, NORM_EPS);
    }
    m
}

/// Per query: `log Σ_j w_j exp(−γ‖x − b_j‖²)` (`w_j = 1` when `log_weights` is `None`; otherwise
/// `log_weights[j] = ln w_j`). Queries are L2-normalised first if `l2`.
pub(crate) fn rbf_log_sum(
    queries: Embeddings<'_>,
    bank: &RbfBank,
    log_weights: Option<&[f32]>,
    gamma: f32,
    l2: bool,
    plan: TilePlan,
) -> Vec<f64> {
    let n = bank.rows.rows();
    blocked_reduce(
        queries,
        bank.rows.as_slice(),
        n,
        plan,
        |blk| {
            let mut operand = blk.as_slice().to_vec();
            if l2 {
                normalize_rows_in_place(&mut operand, blk.cols(), NORM_EPS);
            }
            let sq: Vec<f32> = operand
                .chunks_exact(blk.cols())
                .map(|r| dot64(r, r) as f32)
                .collect();
            PreparedBlock {
                operand,
                rows: blk.rows(),
                aux: sq,
            }
        },
        |p| (vec![f64::NEG_INFINITY; p.rows], vec![0.0f64; p.rows]),
        |(mx, sum), p, tile, c0| {
            let m = p.rows;
            // Exponents of this tile (in place), then a two-pass log-sum-exp per query.
            let mut tmax = vec![f32::NEG_INFINITY; m];
            for (j, row) in tile.chunks_exact_mut(m).enumerate() {
                let bn = bank.sq_norms[c0 + j];
                let lw = log_weights.map_or(0.0, |w| w[c0 + j]);
                for ((e, &qn), tm) in row.iter_mut().zip(&p.aux).zip(&mut tmax) {
                    let d2 = (qn + bn - 2.0 * *e).max(0.0);
                    *e = lw - gamma * d2;
                    *tm = if *e > *tm { *e } else { *tm };
                }
            }
            let mut tsum = vec![0.0f64; m];
            for erow in tile.chunks_exact(m) {
                for ((s, &e), &tm) in tsum.iter_mut().zip(erow).zip(&tmax) {
                    *s += f64::from((e - tm).exp());
                }
            }
            for i in 0..m {
                let tm = f64::from(tmax[i]);
                if tm == f64::NEG_INFINITY {
                    continue;
                }
                if tm > mx[i] {
                    sum[i] = sum[i] * (mx[i] - tm).exp() + tsum[i];
                    mx[i] = tm;
                } else {
                    sum[i] += tsum[i] * (tm - mx[i]).exp();
                }
            }
        },
        |(amx, asum), (bmx, bsum)| {
            for i in 0..amx.len() {
                if bmx[i] == f64::NEG_INFINITY {
                    continue;
                }
                if bmx[i] > amx[i] {
                    asum[i] = asum[i] * (amx[i] - bmx[i]).exp() + bsum[i];
                    amx[i] = bmx[i];
                } else {
                    asum[i] += bsum[i] * (bmx[i] - amx[i]).exp();
                }
            }
        },
        |(mx, sum), _p, out| {
            for (m, s) in mx.into_iter().zip(sum) {
                out.push(m + s.ln());
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sum_matches_direct_sum() {
        let (n, m, d) = (9, 5, 3);
        let b: Vec<f32> = (0..n * d)
            .map(|i| ((i * 13) % 7) as f32 * 0.3 - 1.0)
            .collect();
        let q: Vec<f32> = (0..m * d)
            .map(|i| ((i * 5) % 9) as f32 * 0.2 - 0.8)
            .collect();
        let bank = RbfBank::new(EmbeddingMatrix::new(b.clone(), n, d).unwrap());
        let w: Vec<f32> = (0..n).map(|j| (0.1 + j as f32 * 0.05).ln()).collect();
        let gamma = 0.7;
        let plan = TilePlan {
            query_block: 2,
            bank_tile: 4,
        };
        let got = rbf_log_sum(
            Embeddings::new(&q, m, d).unwrap(),
            &bank,
            Some(&w),
            gamma,
            false,
            plan,
        );
        for i in 0..m {
            let direct: f64 = (0..n)
                .map(|j| {
                    let d2: f64 = (0..d)
                        .map(|c| f64::from(q[i * d + c] - b[j * d + c]).powi(2))
                        .sum();
                    f64::from(w[j]).exp() * (-f64::from(gamma) * d2).exp()
                })
                .sum();
            assert!(
                (got[i] - direct.ln()).abs() < 1e-5,
                "{} vs {}",
                got[i],
                direct.ln()
            );
        }
    }

    #[test]
    fn gamma_rules() {
        // numpy: X = [[1,0],[0,1]] → X.var() = 0.25, d = 2 → scale 2.0, droc 20.0
        let x = [1.0f32, 0.0, 0.0, 1.0];
        let e = Embeddings::new(&x, 2, 2).unwrap();
        assert_eq!(Gamma::Scale.resolve(e).unwrap(), 2.0);
        assert_eq!(Gamma::Droc.resolve(e).unwrap(), 20.0);
        assert_eq!(Gamma::Value { value: 0.5 }.resolve(e).unwrap(), 0.5);
        assert_eq!(
            Gamma::Value { value: -1.0 }.validate(),
            Err(Error::InvalidGamma(-1.0))
        );
        let c = [1.0f32; 4];
        assert_eq!(
            Gamma::Droc.resolve(Embeddings::new(&c, 2, 2).unwrap()),
            Err(Error::ZeroVariance)
        );
    }
}
