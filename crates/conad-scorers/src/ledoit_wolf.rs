//! Ledoit–Wolf shrinkage coefficient, exactly as scikit-learn 1.2.1
//! (`sklearn.covariance.ledoit_wolf_shrinkage`), used by S_LH (docs/reference.md §2.6, §6.4) and optionally
//! by the SSD Mahalanobis score (§2.10).
//!
//! With centred data `X` (`n × d`), `S = XᵀX / n` (biased empirical covariance),
//! `μ̄ = tr(S)/d`:
//!
//! ```text
//! δ' = ‖S‖²_F                       β' = Σ_n ‖x_n‖⁴
//! β  = (β'/n − δ') / (d·n)           δ  = ‖S − μ̄ I‖²_F / d
//! shrinkage = min(β, δ) / δ   (0 if β = 0, or if d = 1)
//! Σ_LW = (1 − shrinkage)·S + shrinkage·μ̄·I
//! ```
//!
//! sklearn evaluates `β'` as `sum(X2ᵀ X2)` and `δ'` as `sum((XᵀX)²)/n²`; both are the same sums
//! as above, computed here from the [`Scatter`](crate::covariance) moments in `f64`.

use crate::covariance::Scatter;

/// sklearn's Ledoit–Wolf shrinkage from centred moments.
pub(crate) fn ledoit_wolf_shrinkage(s: &Scatter) -> f64 {
    let (n, d) = (s.n as f64, s.d);
    if d == 1 || s.n == 0 {
        return 0.0;
    }
    let df = d as f64;
    // S = scatter / n.
    let trace: f64 = (0..d).map(|i| s.scatter[i * d + i]).sum::<f64>() / n;
    let mu = trace / df;
    let delta_raw: f64 = s.scatter.iter().map(|&v| (v / n) * (v / n)).sum();
    let beta = (s.sum_sq_norm_sq / n - delta_raw) / (df * n);
    let delta = (delta_raw - 2.0 * mu * trace + df * mu * mu) / df;
    let beta = beta.min(delta);
    if beta == 0.0 { 0.0 } else { beta / delta }
}

/// Σ_LW (row-major `d × d`) and the shrinkage used.
pub(crate) fn ledoit_wolf_covariance(s: &Scatter) -> (Vec<f64>, f64) {
    let d = s.d;
    let n = s.n as f64;
    let shrinkage = ledoit_wolf_shrinkage(s);
    let mu = (0..d).map(|i| s.scatter[i * d + i]).sum::<f64>() / n / d as f64;
    let mut cov: Vec<f64> = s
        .scatter
        .iter()
        .map(|&v| (1.0 - shrinkage) * v / n)
        .collect();
    for i in 0..d {
        cov[i * d + i] += shrinkage * mu;
    }
    (cov, shrinkage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::covariance::centered_scatter;
    use crate::embeddings::Embeddings;

    #[test]
    fn matches_sklearn_on_a_small_matrix() {
        // import numpy as np
        // from sklearn.covariance import LedoitWolf, ledoit_wolf_shrinkage
        // X = np.array([[1.,2.,0.],[0.,1.,3.],[2.,2.,1.],[1.,0.,0.],[3.,1.,2.],[4.,3.,1.],
        //               [5.,4.,0.],[2.,3.,3.]]); X[:,1] += 2*X[:,0]
        // print(repr(ledoit_wolf_shrinkage(X)))                      # 0.27176438431050975
        // print(repr(LedoitWolf().fit(X).covariance_[0].tolist()))
        // # [3.6434544553778867, 4.5514725980593145, -0.40963253382533826]
        let x = [
            1.0f32, 4., 0., 0., 1., 3., 2., 6., 1., 1., 2., 0., 3., 7., 2., 4., 11., 1., 5., 14.,
            0., 2., 7., 3.,
        ];
        let e = Embeddings::new(&x, 8, 3).unwrap();
        let s = centered_scatter(e, None, |r, o| {
            for (a, &b) in o.iter_mut().zip(r) {
                *a = f64::from(b);
            }
        });
        let (cov, sh) = ledoit_wolf_covariance(&s);
        assert!((sh - 0.271_764_384_310_509_75).abs() < 1e-12, "{sh}");
        let golden_row0 = [
            3.643_454_455_377_886_7,
            4.551_472_598_059_314_5,
            -0.409_632_533_825_338_26,
        ];
        for (c, g) in cov[..3].iter().zip(golden_row0) {
            assert!((c - g).abs() < 1e-12, "{c} vs {g}");
        }
    }
}
