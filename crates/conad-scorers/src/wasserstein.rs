//! Wasserstein-1 distance between two empirical distributions of embeddings with uniform
//! weights and Euclidean ground cost (Knowledge Exposure's transform selection, §3;
//! docs/reference.md §1.7, §6.12).
//!
//! - [`WassersteinMethod::Exact`]: equal sizes `n`; `W1 = (1/n) min_σ Σ_j ‖a_j − b_σ(j)‖`, an
//!   assignment problem solved by the `lsap` crate (a port of SciPy's
//!   `linear_sum_assignment`, a shortest-augmenting-path Jonker–Volgenant variant).
//! - [`WassersteinMethod::Sinkhorn`]: any sizes; entropic OT (Cuturi 2013) in the log domain,
//!   `min_P ⟨P, C⟩ − ε H(P)` with marginals `1/n`, `1/m`; returns the transport cost `⟨P, C⟩` of
//!   the entropic plan (≥ W1, → W1 as ε → 0). Iterates until the row marginals are within
//!   `tolerance` (L1, checked every 10 iterations) or `max_iterations`.
//! - [`WassersteinMethod::Auto`] (the KE default): exact up to `max_exact` points per side
//!   (2000), Sinkhorn with ε = 0.05 and an L1 marginal tolerance of 1e-4 above.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::embeddings::Embeddings;
use crate::error::{Error, Result};

/// How W1 is computed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum WassersteinMethod {
    /// Exact assignment (equal sizes).
    Exact,
    /// Entropic regularisation.
    Sinkhorn {
        /// ε, in units of the ground cost (0.05 on L2-normalised embeddings).
        epsilon: f64,
        /// Iteration cap.
        max_iterations: usize,
        /// L1 error of the row marginals at which iteration stops.
        tolerance: f64,
    },
    /// Exact when both sides have the same size ≤ `max_exact`, else Sinkhorn with `epsilon`.
    Auto {
        /// Largest exact problem (2000).
        max_exact: usize,
        /// ε of the Sinkhorn fallback (0.05).
        epsilon: f64,
    },
}

impl Default for WassersteinMethod {
    fn default() -> Self {
        Self::Auto {
            max_exact: 2000,
            epsilon: 0.05,
        }
    }
}

/// The result: the distance and how it was computed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Wasserstein {
    /// W1 (exact) or the entropic plan's transport cost (Sinkhorn).
    pub distance: f64,
    /// `true` when the exact assignment was solved.
    pub exact: bool,
    /// Sinkhorn iterations run (0 for the exact path).
    pub iterations: usize,
}

/// `n × m` Euclidean distances (f64).
fn cost_matrix(a: Embeddings<'_>, b: Embeddings<'_>) -> Vec<f64> {
    let m = b.rows();
    let mut cost = vec![0.0; a.rows() * m];
    cost.par_chunks_mut(m.max(1))
        .enumerate()
        .for_each(|(i, row)| {
            let x = a.row(i);
            for (j, c) in row.iter_mut().enumerate() {
                let d2: f64 = x
                    .iter()
                    .zip(b.row(j))
                    .map(|(&p, &q)| (f64::from(p) - f64::from(q)).powi(2))
                    .sum();
                *c = d2.sqrt();
            }
        });
    cost
}

/// W1 between the rows of `a` and the rows of `b`.
///
/// # Errors
/// [`Error::DimensionMismatch`] for different widths; empty or non-finite sides;
/// [`Error::InvalidConfig`] for the exact method with different sizes or a non-positive ε /
/// tolerance / iteration cap.
pub fn wasserstein1(
    a: Embeddings<'_>,
    b: Embeddings<'_>,
    method: WassersteinMethod,
) -> Result<Wasserstein> {
    b.check_dim(a.cols(), "second sample")?;
    a.check_min_rows(1, "first sample")?;
    b.check_min_rows(1, "second sample")?;
    a.check_finite("first sample")?;
    b.check_finite("second sample")?;
    let (n, m) = (a.rows(), b.rows());
    let method = match method {
        WassersteinMethod::Auto { max_exact, epsilon } => {
            if n == m && n <= max_exact {
                WassersteinMethod::Exact
            } else {
                WassersteinMethod::Sinkhorn {
                    epsilon,
                    max_iterations: 10_000,
                    // An L1 marginal error of 1e-4 of the unit mass: far below the gaps between
                    // transforms' distances (≥ 1e-3 on CIFAR-10), and reached in minutes at
                    // n = 3000 where 1e-6 was not.
                    tolerance: 1e-4,
                }
            }
        }
        other => other,
    };
    let cost = cost_matrix(a, b);
    match method {
        WassersteinMethod::Exact => {
            if n != m {
                return Err(Error::invalid(
                    "wasserstein.method",
                    "exact",
                    format!(
                        "the exact assignment needs samples of equal size (got {n} and {m}); use sinkhorn"
                    ),
                ));
            }
            let (rows, cols) = lsap::solve(n, m, &cost, false).map_err(|e| {
                Error::invalid(
                    "wasserstein.method",
                    "exact",
                    format!("assignment failed: {e:?}"),
                )
            })?;
            let total: f64 = rows.iter().zip(&cols).map(|(&i, &j)| cost[i * m + j]).sum();
            Ok(Wasserstein {
                distance: total / n as f64,
                exact: true,
                iterations: 0,
            })
        }
        WassersteinMethod::Sinkhorn {
            epsilon,
            max_iterations,
            tolerance,
        } => {
            if !(epsilon.is_finite() && epsilon > 0.0) {
                return Err(Error::invalid(
                    "wasserstein.epsilon",
                    epsilon,
                    "must be > 0 (0.05)",
                ));
            }
            if !(tolerance.is_finite() && tolerance > 0.0) || max_iterations == 0 {
                return Err(Error::invalid(
                    "wasserstein.tolerance",
                    format!("{tolerance} / {max_iterations} iterations"),
                    "need a tolerance > 0 and at least one iteration",
                ));
            }
            Ok(sinkhorn(&cost, n, m, epsilon, max_iterations, tolerance))
        }
        WassersteinMethod::Auto { .. } => unreachable!("resolved above"),
    }
}

/// `log Σ_k exp(v_k)`, stable.
fn log_sum_exp(v: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = v.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + v.map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// Log-domain Sinkhorn with uniform marginals: potentials `f`, `g`,
/// `P_ij = exp((f_i + g_j − C_ij)/ε)`.
fn sinkhorn(cost: &[f64], n: usize, m: usize, eps: f64, max_iter: usize, tol: f64) -> Wasserstein {
    let (log_a, log_b) = (-(n as f64).ln(), -(m as f64).ln());
    let mut f = vec![0.0; n];
    let mut g = vec![0.0; m];
    let mut iterations = 0;
    for it in 1..=max_iter {
        iterations = it;
        // f_i = ε log a_i − ε log Σ_j exp((g_j − C_ij)/ε)
        f.par_iter_mut().enumerate().for_each(|(i, fi)| {
            let row = &cost[i * m..(i + 1) * m];
            *fi = eps * log_a - eps * log_sum_exp(row.iter().zip(&g).map(|(c, gj)| (gj - c) / eps));
        });
        g.par_iter_mut().enumerate().for_each(|(j, gj)| {
            let col = (0..n).map(|i| (f[i] - cost[i * m + j]) / eps);
            *gj = eps * log_b - eps * log_sum_exp(col);
        });
        // After the g-update the columns are exact; check the rows every 10 iterations (the
        // check costs as much as an update).
        if it % 10 != 0 && it != max_iter {
            continue;
        }
        let err: f64 = (0..n)
            .into_par_iter()
            .map(|i| {
                let row = &cost[i * m..(i + 1) * m];
                let s: f64 = row
                    .iter()
                    .zip(&g)
                    .map(|(c, gj)| ((f[i] + gj - c) / eps).exp())
                    .sum();
                (s - 1.0 / n as f64).abs()
            })
            .sum();
        if err < tol {
            break;
        }
    }
    let distance = (0..n)
        .into_par_iter()
        .map(|i| {
            let row = &cost[i * m..(i + 1) * m];
            row.iter()
                .zip(&g)
                .map(|(c, gj)| ((f[i] + gj - c) / eps).exp() * c)
                .sum::<f64>()
        })
        .sum();
    Wasserstein {
        distance,
        exact: false,
        iterations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emb(data: &[f32], d: usize) -> Embeddings<'_> {
        Embeddings::new(data, data.len() / d, d).unwrap()
    }

    #[test]
    fn hand_computed_assignment() {
        // a = {0, 10}, b = {9, 1} on a line: the optimal matching pairs 0↔1 and 10↔9: W1 = 1.
        let (a, b) = ([0f32, 10.0], [9f32, 1.0]);
        let w = wasserstein1(emb(&a, 1), emb(&b, 1), WassersteinMethod::Exact).unwrap();
        assert!((w.distance - 1.0).abs() < 1e-12 && w.exact);
        // Identical samples: 0; a shift by t in 1-D: t.
        let w = wasserstein1(emb(&a, 1), emb(&a, 1), WassersteinMethod::default()).unwrap();
        assert_eq!(w.distance, 0.0);
        let shifted = [2.5f32, 12.5];
        let w = wasserstein1(emb(&a, 1), emb(&shifted, 1), WassersteinMethod::Exact).unwrap();
        assert!((w.distance - 2.5).abs() < 1e-12);
    }

    #[test]
    fn sinkhorn_approaches_the_exact_value_from_above_as_epsilon_shrinks() {
        let a: Vec<f32> = (0..40).map(|i| ((i * 13) % 17) as f32 / 7.0).collect();
        let b: Vec<f32> = (0..40).map(|i| ((i * 7) % 19) as f32 / 5.0 + 0.3).collect();
        let exact = wasserstein1(emb(&a, 2), emb(&b, 2), WassersteinMethod::Exact)
            .unwrap()
            .distance;
        let mut last = f64::INFINITY;
        for eps in [0.5, 0.1, 0.02] {
            let s = wasserstein1(
                emb(&a, 2),
                emb(&b, 2),
                WassersteinMethod::Sinkhorn {
                    epsilon: eps,
                    max_iterations: 20_000,
                    tolerance: 1e-10,
                },
            )
            .unwrap();
            assert!(!s.exact);
            assert!(
                s.distance >= exact - 1e-9,
                "ε {eps}: {} < {exact}",
                s.distance
            );
            assert!(s.distance <= last + 1e-12, "ε {eps}: not decreasing");
            last = s.distance;
        }
        assert!((last - exact) / exact < 0.02, "{last} vs {exact}");
    }

    #[test]
    fn typed_errors() {
        let (a, b) = ([0f32, 1.0, 2.0], [0f32, 1.0]);
        let e = wasserstein1(emb(&a, 1), emb(&b, 1), WassersteinMethod::Exact).unwrap_err();
        assert!(e.to_string().contains("equal size"), "{e}");
        // Auto falls back to Sinkhorn for unequal sizes.
        let w = wasserstein1(emb(&a, 1), emb(&b, 1), WassersteinMethod::default()).unwrap();
        assert!(!w.exact && w.distance.is_finite());
        let bad = WassersteinMethod::Sinkhorn {
            epsilon: 0.0,
            max_iterations: 10,
            tolerance: 1e-6,
        };
        let e = wasserstein1(emb(&a, 1), emb(&a, 1), bad).unwrap_err();
        assert!(e.to_string().contains("epsilon"), "{e}");
        assert!(wasserstein1(emb(&a, 1), emb(&[0f32, 1.0, 2.0, 3.0, 4.0, 5.0], 2), bad).is_err());
        assert!(
            wasserstein1(
                emb(&[f32::NAN], 1),
                emb(&[0.0], 1),
                WassersteinMethod::Exact
            )
            .is_err()
        );
    }
}
