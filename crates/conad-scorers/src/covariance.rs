//! Mean and centred scatter matrix `Σ_n (x_n − μ)(x_n − μ)ᵀ` of a (transformed) embedding set,
//! in `f64`, by blocked GEMM (docs/reference.md §2.6, §2.10), plus the dense linear algebra the Gaussian
//! scorers share (Cholesky whitening, pseudo-inverse whitening via a symmetric eigendecomposition).
//!
//! The rows are transformed on the fly (L2 normalisation, standardisation) chunk by chunk, so no
//! transformed copy of the whole bank is ever made. The work is split into a fixed number of row
//! groups (independent of the thread count) whose partial sums are added in group order: results
//! are bit-identical whatever `RAYON_NUM_THREADS` is.

use faer::{Mat, MatRef, Par, Side};
use rayon::prelude::*;

use crate::embeddings::Embeddings;
use crate::error::{Error, Result};
use crate::similarity::accumulate_gram_f64;

/// Row groups of the parallel reduction (fixed, so the summation order never depends on threads).
const GROUPS: usize = 8;
/// Rows converted to `f64` per GEMM call.
const CHUNK_ROWS: usize = 1024;

/// First and second moments of a set of `d`-dimensional rows.
#[derive(Clone, Debug)]
pub(crate) struct Scatter {
    /// Number of rows.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// Mean, length `d`.
    pub mean: Vec<f64>,
    /// `Σ_n (x_n − μ)(x_n − μ)ᵀ`, `d × d` row-major.
    pub scatter: Vec<f64>,
    /// `Σ_n ‖x_n − μ‖⁴` (Ledoit–Wolf's β term).
    pub sum_sq_norm_sq: f64,
}

/// Computes the [`Scatter`] of the rows `x.row(i)` for `i` in `subset` (all rows if `None`),
/// each transformed by `map(raw_row, out_f64_row)`.
pub(crate) fn centered_scatter<F>(x: Embeddings<'_>, subset: Option<&[usize]>, map: F) -> Scatter
where
    F: Fn(&[f32], &mut [f64]) + Sync,
{
    let d = x.cols();
    let n = subset.map_or(x.rows(), <[usize]>::len);
    let row_at = |i: usize| subset.map_or(i, |s| s[i]);
    let group_len = n.div_ceil(GROUPS).max(1);
    let ranges: Vec<(usize, usize)> = (0..GROUPS)
        .map(|g| ((g * group_len).min(n), ((g + 1) * group_len).min(n)))
        .collect();

    // Pass 1: mean.
    let partial_sums: Vec<Vec<f64>> = ranges
        .par_iter()
        .map(|&(a, b)| {
            let mut s = vec![0.0f64; d];
            let mut buf = vec![0.0f64; d];
            for i in a..b {
                map(x.row(row_at(i)), &mut buf);
                for (acc, v) in s.iter_mut().zip(&buf) {
                    *acc += v;
                }
            }
            s
        })
        .collect();
    let mut mean = vec![0.0f64; d];
    for s in &partial_sums {
        for (m, v) in mean.iter_mut().zip(s) {
            *m += v;
        }
    }
    if n > 0 {
        for m in &mut mean {
            *m /= n as f64;
        }
    }

    // Pass 2: centred scatter and Σ‖x−μ‖⁴.
    let partials: Vec<(Vec<f64>, f64)> = ranges
        .par_iter()
        .map(|&(a, b)| {
            let mut g = vec![0.0f64; if a < b { d * d } else { 0 }];
            let mut s4 = 0.0f64;
            let mut chunk = vec![0.0f64; CHUNK_ROWS.min(b - a) * d];
            let mut start = a;
            while start < b {
                let end = (start + CHUNK_ROWS).min(b);
                let rows = end - start;
                for (r, out) in chunk.chunks_exact_mut(d).take(rows).enumerate() {
                    map(x.row(row_at(start + r)), out);
                    let mut sq = 0.0;
                    for (v, m) in out.iter_mut().zip(&mean) {
                        *v -= m;
                        sq += *v * *v;
                    }
                    s4 += sq * sq;
                }
                accumulate_gram_f64(&chunk[..rows * d], rows, d, &mut g);
                start = end;
            }
            (g, s4)
        })
        .collect();
    let mut scatter = vec![0.0f64; d * d];
    let mut sum_sq_norm_sq = 0.0;
    for (g, s4) in partials {
        if !g.is_empty() {
            for (a, v) in scatter.iter_mut().zip(&g) {
                *a += v;
            }
        }
        sum_sq_norm_sq += s4;
    }
    // Exact symmetry (GEMM rounding can differ in the last bit between (a,b) and (b,a)).
    for a in 0..d {
        for b in 0..a {
            let v = 0.5 * (scatter[a * d + b] + scatter[b * d + a]);
            scatter[a * d + b] = v;
            scatter[b * d + a] = v;
        }
    }
    Scatter {
        n,
        d,
        mean,
        scatter,
        sum_sq_norm_sq,
    }
}

/// Cholesky whitening of a symmetric positive-definite `d × d` matrix `sigma` (row-major):
/// returns `(W = L⁻¹ row-major, ln det Σ)` with `Σ = L Lᵀ`, so `(x−μ)ᵀ Σ⁻¹ (x−μ) = ‖W (x−μ)‖²`.
pub(crate) fn cholesky_whitening(sigma: &[f64], d: usize, what: &str) -> Result<(Vec<f64>, f64)> {
    let a = MatRef::from_row_major_slice(sigma, d, d);
    let llt = a.llt(Side::Lower).map_err(|e| match e {
        faer::linalg::cholesky::llt::factor::LltError::NonPositivePivot { index } => {
            Error::NotPositiveDefinite {
                what: what.to_string(),
                pivot: index,
            }
        }
    })?;
    let l = llt.L();
    let log_det = 2.0 * (0..d).map(|i| l[(i, i)].ln()).sum::<f64>();
    let mut inv = Mat::<f64>::zeros(d, d);
    faer::linalg::triangular_inverse::invert_lower_triangular(inv.as_mut(), l, Par::Seq);
    let w: Vec<f64> = (0..d * d).map(|k| inv[(k / d, k % d)]).collect();
    Ok((w, log_det))
}

/// Pseudo-inverse whitening of a symmetric positive semi-definite `d × d` matrix (row-major):
/// eigenvalues `λ ≤ rcond · λ_max` are treated as zero (numpy's `pinv` cutoff rule). Returns
/// `W` (`r × d` row-major, `r` = numerical rank) with `xᵀ Σ⁺ x = ‖W x‖²`.
pub(crate) fn pinv_whitening(sigma: &[f64], d: usize, rcond: f64) -> Result<(Vec<f64>, usize)> {
    let a = MatRef::from_row_major_slice(sigma, d, d);
    let eig = a
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| Error::NoConvergence {
            what: "symmetric eigendecomposition of the covariance",
        })?;
    let s = eig.S();
    let u = eig.U();
    let lam: Vec<f64> = (0..d).map(|i| s[i]).collect();
    let lmax = lam.iter().fold(0.0f64, |m, &v| m.max(v.abs()));
    let cutoff = rcond * lmax;
    let mut w = Vec::new();
    let mut rank = 0;
    for (j, &l) in lam.iter().enumerate() {
        // A PSD covariance has no significantly negative eigenvalues; those within the cutoff
        // are round-off and dropped like numpy drops them.
        if l > cutoff && l > 0.0 {
            let f = 1.0 / l.sqrt();
            w.extend((0..d).map(|i| u[(i, j)] * f));
            rank += 1;
        }
    }
    Ok((w, rank))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scatter_matches_two_pass_definition() {
        let (n, d) = (23, 3);
        let data: Vec<f32> = (0..n * d).map(|i| ((i * 37) % 11) as f32 * 0.5).collect();
        let x = Embeddings::new(&data, n, d).unwrap();
        let s = centered_scatter(x, None, |r, o| {
            for (a, &b) in o.iter_mut().zip(r) {
                *a = f64::from(b);
            }
        });
        let mean: Vec<f64> = (0..d)
            .map(|c| (0..n).map(|r| f64::from(data[r * d + c])).sum::<f64>() / n as f64)
            .collect();
        for (got, want) in s.mean.iter().zip(&mean) {
            assert!((got - want).abs() < 1e-12);
        }
        for a in 0..d {
            for b in 0..d {
                let e: f64 = (0..n)
                    .map(|r| {
                        (f64::from(data[r * d + a]) - mean[a])
                            * (f64::from(data[r * d + b]) - mean[b])
                    })
                    .sum();
                assert!((s.scatter[a * d + b] - e).abs() < 1e-9);
            }
        }
        let e4: f64 = (0..n)
            .map(|r| {
                let q: f64 = (0..d)
                    .map(|c| (f64::from(data[r * d + c]) - mean[c]).powi(2))
                    .sum();
                q * q
            })
            .sum();
        assert!((s.sum_sq_norm_sq - e4).abs() < 1e-9 * e4);
        // A subset gives the moments of just those rows.
        let sub = centered_scatter(x, Some(&[0, 5]), |r, o| {
            for (a, &b) in o.iter_mut().zip(r) {
                *a = f64::from(b);
            }
        });
        assert_eq!(sub.n, 2);
        assert!((sub.mean[0] - 0.5 * f64::from(data[0] + data[15])).abs() < 1e-12);
    }

    #[test]
    fn whitening_inverts_hand_matrix() {
        // Σ = [[4, 2], [2, 3]]: det 8, Σ⁻¹ = [[3, −2], [−2, 4]]/8; x = (1, 1) → xᵀΣ⁻¹x = 3/8.
        let sigma = [4.0, 2.0, 2.0, 3.0];
        let (w, ld) = cholesky_whitening(&sigma, 2, "test").unwrap();
        assert!((ld - 8f64.ln()).abs() < 1e-12);
        let y = [w[0] + w[1], w[2] + w[3]];
        assert!((y[0] * y[0] + y[1] * y[1] - 3.0 / 8.0).abs() < 1e-12);
        let (wp, r) = pinv_whitening(&sigma, 2, 1e-15).unwrap();
        assert_eq!(r, 2);
        let yp = [wp[0] + wp[1], wp[2] + wp[3]];
        assert!((yp[0] * yp[0] + yp[1] * yp[1] - 3.0 / 8.0).abs() < 1e-12);
        // Rank one: Σ = v vᵀ with v = (1, 2); Σ⁺ = v vᵀ / ‖v‖⁴; x = v → xᵀΣ⁺x = 1.
        let rank1 = [1.0, 2.0, 2.0, 4.0];
        let (w1, r1) = pinv_whitening(&rank1, 2, 1e-10).unwrap();
        assert_eq!(r1, 1);
        let y1 = w1[0] + 2.0 * w1[1];
        assert!((y1 * y1 - 1.0).abs() < 1e-12);
        assert!(matches!(
            cholesky_whitening(&rank1, 2, "rank-one"),
            Err(Error::NotPositiveDefinite { pivot: 1, .. })
        ));
    }
}
