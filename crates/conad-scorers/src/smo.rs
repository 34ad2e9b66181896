//! libsvm's SMO solver specialised to the ν-one-class dual (Schölkopf et al.; docs/reference.md §2.8).
//!
//! libsvm (and scikit-learn's `OneClassSVM`) solve
//!
//! ```text
//! min_α ½ αᵀQα   s.t. 0 ≤ α_i ≤ 1,  Σ α_i = ν·n,      Q_ij = K(x_i, x_j)
//! ```
//!
//! which is docs/reference.md §2.8's dual (`0 ≤ α ≤ 1/(νn)`, `Σα = 1`) scaled by `νn`. This solver follows
//! `svm.cpp` (`solve_one_class` + `Solver::Solve`) with all `y_i = +1`, `p = 0`, `C = 1`:
//! the same initial point (the first ⌊νn⌋ α at 1, the next at the fractional remainder),
//! second-order working-set selection (WSS3, Fan et al. 2005), the same two-variable update and
//! clipping, the same stopping rule (`Gmax + Gmax2 < eps`), and `calculate_rho`. Shrinking is
//! not implemented (it changes speed, not the solution beyond `eps`).
//!
//! One deliberate difference: when no α is free (e.g. ν = 1, all α at the upper bound) libsvm's
//! ρ = (ub + lb)/2 is infinite (scikit-learn then raises "dual coefficients or intercepts are not
//! finite"). Any ρ ≥ max_i G_i is optimal there; this solver returns the finite end of the
//! interval (`lb`), which leaves rankings unchanged.
//!
//! Kernel rows come from a dense `f32` matrix when it fits in the cache budget (computed with
//! the blocked GEMM), else from an LRU cache of rows computed on demand — libsvm likewise keeps
//! kernel values in `float` (`Qfloat`) and the gradient in `double`.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::embeddings::dot64;
use crate::similarity::bank_times_queries_t;

/// libsvm's `TAU`.
const TAU: f64 = 1e-12;

/// Which kernel the matrix holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum KernelFn {
    /// `x·y`.
    Linear,
    /// `exp(−γ‖x−y‖²)`.
    Rbf(f32),
    /// `tanh(γ x·y + coef0)` (scikit-learn's `kernel="sigmoid"`; not positive semi-definite,
    /// which libsvm's second-order working-set rule tolerates through `TAU`).
    Sigmoid {
        /// γ.
        gamma: f32,
        /// coef0.
        coef0: f32,
    },
}

impl KernelFn {
    /// The kernel value from the dot product `x·y` and the squared norms of `x` and `y`.
    pub(crate) fn value(self, dot: f32, sq_x: f32, sq_y: f32) -> f32 {
        match self {
            Self::Linear => dot,
            Self::Rbf(g) => (-g * (sq_x + sq_y - 2.0 * dot).max(0.0)).exp(),
            Self::Sigmoid { gamma, coef0 } => (gamma * dot + coef0).tanh(),
        }
    }
}

/// Source of kernel rows for the solver.
#[derive(Debug)]
pub(crate) struct KernelMatrix<'a> {
    x: &'a [f32],
    n: usize,
    d: usize,
    kernel: KernelFn,
    sq_norms: Vec<f32>,
    diag: Vec<f64>,
    /// Full `n × n` matrix when it fits.
    dense: Option<Vec<f32>>,
    /// LRU row cache otherwise: row index → (last use, values).
    cache: HashMap<usize, (u64, Vec<f32>)>,
    cache_rows: usize,
    clock: u64,
}

impl<'a> KernelMatrix<'a> {
    /// `x` is `n × d` row-major (already in kernel feature space). Uses a dense matrix if
    /// `n²·4 ≤ cache_bytes`, otherwise caches as many rows as fit (at least 2).
    pub(crate) fn new(
        x: &'a [f32],
        n: usize,
        d: usize,
        kernel: KernelFn,
        cache_bytes: usize,
    ) -> Self {
        let sq_norms: Vec<f32> = x.chunks_exact(d).map(|r| dot64(r, r) as f32).collect();
        let diag: Vec<f64> = match kernel {
            KernelFn::Linear => x.chunks_exact(d).map(|r| dot64(r, r)).collect(),
            KernelFn::Rbf(_) => vec![1.0; n],
            KernelFn::Sigmoid { .. } => sq_norms
                .iter()
                .map(|&s| f64::from(kernel.value(s, s, s)))
                .collect(),
        };
        let row_bytes = n.saturating_mul(4).max(1);
        let mut km = Self {
            x,
            n,
            d,
            kernel,
            sq_norms,
            diag,
            dense: None,
            cache: HashMap::new(),
            cache_rows: (cache_bytes / row_bytes).max(2),
            clock: 0,
        };
        if n.saturating_mul(n).saturating_mul(4) <= cache_bytes {
            km.dense = Some(km.compute_dense());
        }
        km
    }

    fn apply_kernel(&self, i: usize, row: &mut [f32]) {
        if self.kernel == KernelFn::Linear {
            return;
        }
        let si = self.sq_norms[i];
        for (v, &sj) in row.iter_mut().zip(&self.sq_norms) {
            *v = self.kernel.value(*v, si, sj);
        }
    }

    fn compute_dense(&self) -> Vec<f32> {
        const BLOCK: usize = 256;
        let (n, d) = (self.n, self.d);
        let mut k = vec![0.0f32; n * n];
        k.par_chunks_mut(BLOCK * n)
            .enumerate()
            .for_each(|(b, dst)| {
                let r0 = b * BLOCK;
                let rows = dst.len() / n;
                bank_times_queries_t(&self.x[r0 * d..(r0 + rows) * d], rows, self.x, n, d, dst);
                for (i, row) in dst.chunks_exact_mut(n).enumerate() {
                    self.apply_kernel(r0 + i, row);
                }
            });
        k
    }

    fn compute_row(&self, i: usize) -> Vec<f32> {
        let (n, d) = (self.n, self.d);
        let mut row = vec![0.0f32; n];
        // One row: Kᵢ· = X xᵢ (as an n × 1 product).
        bank_times_queries_t(self.x, n, &self.x[i * d..(i + 1) * d], 1, d, &mut row);
        self.apply_kernel(i, &mut row);
        row
    }

    /// Row `i` of Q (copied into `out`).
    fn row_into(&mut self, i: usize, out: &mut [f32]) {
        if let Some(k) = &self.dense {
            out.copy_from_slice(&k[i * self.n..(i + 1) * self.n]);
            return;
        }
        self.clock += 1;
        let now = self.clock;
        if let Some(entry) = self.cache.get_mut(&i) {
            entry.0 = now;
            out.copy_from_slice(&entry.1);
            return;
        }
        let row = self.compute_row(i);
        out.copy_from_slice(&row);
        if self.cache.len() >= self.cache_rows {
            // Evict the least recently used row (smallest clock; ties impossible).
            if let Some((&old, _)) = self.cache.iter().min_by_key(|(_, v)| v.0) {
                self.cache.remove(&old);
            }
        }
        self.cache.insert(i, (now, row));
    }

    /// Whether the whole matrix is held densely.
    #[cfg(test)]
    pub(crate) fn is_dense(&self) -> bool {
        self.dense.is_some()
    }
}

/// Solution of the one-class dual.
#[derive(Clone, Debug)]
pub(crate) struct OneClassSolution {
    /// α in libsvm's scale (`0 ≤ α ≤ 1`, `Σα = νn`).
    pub alpha: Vec<f64>,
    /// ρ (decision = Σ α_i K(x_i, x) − ρ).
    pub rho: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Whether the stopping rule was met before `max_iter`.
    pub converged: bool,
}

/// Runs the solver. `eps` is libsvm's tolerance (scikit-learn's `tol`, default 1e-3).
pub(crate) fn solve_one_class(q: &mut KernelMatrix<'_>, nu: f64, eps: f64) -> OneClassSolution {
    let l = q.n;
    // Initial point (solve_one_class in svm.cpp).
    let mut alpha = vec![0.0f64; l];
    let n_upper = ((nu * l as f64) as usize).min(l);
    for a in alpha.iter_mut().take(n_upper) {
        *a = 1.0;
    }
    if n_upper < l {
        alpha[n_upper] = nu * l as f64 - n_upper as f64;
    }
    let c = 1.0f64;
    let is_upper = |a: f64| a >= c;
    let is_lower = |a: f64| a <= 0.0;

    // G = Qα (p = 0).
    let mut grad = vec![0.0f64; l];
    let mut qi = vec![0.0f32; l];
    let mut qj = vec![0.0f32; l];
    for (i, &a) in alpha.iter().enumerate() {
        if !is_lower(a) {
            q.row_into(i, &mut qi);
            for (g, &v) in grad.iter_mut().zip(&qi) {
                *g += a * f64::from(v);
            }
        }
    }

    let max_iter = 10_000_000usize.max(100usize.saturating_mul(l));
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iter {
        // select_working_set (all y = +1).
        let mut gmax = f64::NEG_INFINITY;
        let mut gmax_idx = usize::MAX;
        for t in 0..l {
            if !is_upper(alpha[t]) && -grad[t] >= gmax {
                gmax = -grad[t];
                gmax_idx = t;
            }
        }
        let i = gmax_idx;
        if i != usize::MAX {
            q.row_into(i, &mut qi);
        }
        let mut gmax2 = f64::NEG_INFINITY;
        let mut gmin_idx = usize::MAX;
        let mut obj_diff_min = f64::INFINITY;
        for j in 0..l {
            if !is_lower(alpha[j]) {
                let grad_diff = gmax + grad[j];
                if grad[j] >= gmax2 {
                    gmax2 = grad[j];
                }
                if grad_diff > 0.0 {
                    let quad = q.diag[i] + q.diag[j] - 2.0 * f64::from(qi[j]);
                    let obj_diff = if quad > 0.0 {
                        -(grad_diff * grad_diff) / quad
                    } else {
                        -(grad_diff * grad_diff) / TAU
                    };
                    if obj_diff <= obj_diff_min {
                        gmin_idx = j;
                        obj_diff_min = obj_diff;
                    }
                }
            }
        }
        if gmax + gmax2 < eps || gmin_idx == usize::MAX {
            converged = true;
            break;
        }
        iterations += 1;
        let j = gmin_idx;
        q.row_into(j, &mut qj);

        // Two-variable update (y_i == y_j branch of Solver::Solve).
        let (old_ai, old_aj) = (alpha[i], alpha[j]);
        let mut quad = q.diag[i] + q.diag[j] - 2.0 * f64::from(qi[j]);
        if quad <= 0.0 {
            quad = TAU;
        }
        let delta = (grad[i] - grad[j]) / quad;
        let sum = alpha[i] + alpha[j];
        alpha[i] -= delta;
        alpha[j] += delta;
        if sum > c {
            if alpha[i] > c {
                alpha[i] = c;
                alpha[j] = sum - c;
            }
        } else if alpha[j] < 0.0 {
            alpha[j] = 0.0;
            alpha[i] = sum;
        }
        if sum > c {
            if alpha[j] > c {
                alpha[j] = c;
                alpha[i] = sum - c;
            }
        } else if alpha[i] < 0.0 {
            alpha[i] = 0.0;
            alpha[j] = sum;
        }
        let (dai, daj) = (alpha[i] - old_ai, alpha[j] - old_aj);
        for ((g, &a), &b) in grad.iter_mut().zip(&qi).zip(&qj) {
            *g += f64::from(a) * dai + f64::from(b) * daj;
        }
    }

    // calculate_rho (y = +1).
    let (mut ub, mut lb) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut sum_free, mut nr_free) = (0.0f64, 0usize);
    for t in 0..l {
        let yg = grad[t];
        if is_upper(alpha[t]) {
            lb = lb.max(yg);
        } else if is_lower(alpha[t]) {
            ub = ub.min(yg);
        } else {
            nr_free += 1;
            sum_free += yg;
        }
    }
    let rho = if nr_free > 0 {
        sum_free / nr_free as f64
    } else if ub.is_finite() && lb.is_finite() {
        (ub + lb) / 2.0
    } else if lb.is_finite() {
        lb
    } else {
        ub
    };
    OneClassSolution {
        alpha,
        rho,
        iterations,
        converged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_cached_rows_agree() {
        let (n, d) = (7, 3);
        let x: Vec<f32> = (0..n * d)
            .map(|i| ((i * 11) % 5) as f32 * 0.4 - 0.7)
            .collect();
        let sigmoid = KernelFn::Sigmoid {
            gamma: 0.6,
            coef0: -0.2,
        };
        for kernel in [KernelFn::Linear, KernelFn::Rbf(0.8), sigmoid] {
            let mut dense = KernelMatrix::new(&x, n, d, kernel, 1 << 20);
            let mut cached = KernelMatrix::new(&x, n, d, kernel, 3 * n * 4);
            assert!(dense.is_dense() && !cached.is_dense());
            let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
            for i in [0, 3, 6, 1, 3, 5, 0] {
                dense.row_into(i, &mut a);
                cached.row_into(i, &mut b);
                for j in 0..n {
                    let dot: f32 = (0..d).map(|c| x[i * d + c] * x[j * d + c]).sum();
                    let d2: f32 = (0..d).map(|c| (x[i * d + c] - x[j * d + c]).powi(2)).sum();
                    let e = match kernel {
                        KernelFn::Linear => dot,
                        KernelFn::Rbf(g) => (-g * d2).exp(),
                        KernelFn::Sigmoid { gamma, coef0 } => (gamma * dot + coef0).tanh(),
                    };
                    assert!((a[j] - e).abs() < 1e-5 && (b[j] - e).abs() < 1e-5);
                }
            }
            assert!(cached.cache.len() <= 3);
        }
    }

    #[test]
    fn kkt_conditions_hold_at_the_solution() {
        let (n, d) = (40, 4);
        let x: Vec<f32> = (0..n * d)
            .map(|i| ((i as f32) * 0.618).fract() * 2.0 - 1.0)
            .collect();
        let mut q = KernelMatrix::new(&x, n, d, KernelFn::Rbf(0.5), 1 << 20);
        let nu = 0.3;
        let sol = solve_one_class(&mut q, nu, 1e-6);
        assert!(sol.converged);
        let sum: f64 = sol.alpha.iter().sum();
        assert!((sum - nu * n as f64).abs() < 1e-9);
        // KKT: free α ⇒ G = ρ; α = 0 ⇒ G ≥ ρ; α = 1 ⇒ G ≤ ρ (within eps).
        let mut row = vec![0.0f32; n];
        for i in 0..n {
            q.row_into(i, &mut row);
            let g: f64 = (0..n).map(|j| f64::from(row[j]) * sol.alpha[j]).sum();
            let a = sol.alpha[i];
            assert!((0.0..=1.0).contains(&a));
            if a > 0.0 && a < 1.0 {
                assert!((g - sol.rho).abs() < 1e-5, "free {i}: {g} vs {}", sol.rho);
            } else if a == 0.0 {
                assert!(g >= sol.rho - 1e-5);
            } else {
                assert!(g <= sol.rho + 1e-5);
            }
        }
    }
}
