//! One-class SVM (Schölkopf et al.), linear and RBF (docs/reference.md §2.8, §6.15).
//!
//! Normality (paper / scikit-learn): the continuous decision function
//! `g(x) = Σ_i α_i K(x_i, x) − ρ` (scikit-learn's `OneClassSVM.decision_function`; α in
//! libsvm's scale `0 ≤ α ≤ 1, Σα = νn`, i.e. docs/reference.md §2.8's α times νn — irrelevant for ranking).
//!
//! **Anomaly score returned here: `−g(x)`.**
//!
//! Defaults follow docs/reference.md §2.8: ν = 0.5, tol = 1e-3; the linear kernel ("LOC-SVM") on **raw**
//! features; the RBF kernel on L2-normalised features with DROC's `γ = 10/(Var·d)`.
//! KE's reading (§6.15) is RBF with [`Gamma::Scale`]. The dual is solved by libsvm's SMO
//! (module `smo`).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::embeddings::{EmbeddingMatrix, Embeddings, NORM_EPS, normalize_in_place};
use crate::error::{Error, Result};
use crate::rbf::{Gamma, RbfBank, rbf_log_sum, to_feature_space};
use crate::similarity::{TilePlan, bank_times_queries_t};
use crate::smo::{KernelFn, KernelMatrix, solve_one_class};
use crate::traits::{AnomalyScorer, Fit, impl_param_guard};

/// Kernel of the one-class SVM.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kernel", rename_all = "snake_case")]
pub enum OcSvmKernel {
    /// `K(x, y) = x·y`.
    Linear,
    /// `K(x, y) = exp(−γ‖x − y‖²)`.
    Rbf {
        /// Bandwidth rule.
        gamma: Gamma,
    },
    /// `K(x, y) = tanh(γ x·y + coef0)` (scikit-learn's `kernel="sigmoid"`; KE's scorer,
    /// docs/reference.md §6.15: γ "scale", coef0 0).
    Sigmoid {
        /// γ rule.
        gamma: Gamma,
        /// coef0 (finite).
        coef0: f32,
    },
}

/// Validated one-class SVM parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OcSvmValidParams {
    kernel: OcSvmKernel,
    nu: f64,
    tol: f64,
    /// `None`: L2-normalise for RBF, raw for linear (docs/reference.md §2.1).
    l2_normalize: Option<bool>,
    cache_mib: usize,
}

impl Default for OcSvmValidParams {
    fn default() -> Self {
        Self {
            kernel: OcSvmKernel::Rbf { gamma: Gamma::Droc },
            nu: 0.5,
            tol: 1e-3,
            l2_normalize: None,
            cache_mib: 256,
        }
    }
}

impl OcSvmValidParams {
    /// The kernel.
    pub const fn kernel(&self) -> OcSvmKernel {
        self.kernel
    }
    /// ν ∈ (0, 1].
    pub const fn nu(&self) -> f64 {
        self.nu
    }
    /// SMO stopping tolerance.
    pub const fn tol(&self) -> f64 {
        self.tol
    }
    /// Whether features are L2-normalised (resolved default: RBF and sigmoid yes, linear no).
    pub const fn l2_normalize(&self) -> bool {
        match self.l2_normalize {
            Some(v) => v,
            None => !matches!(self.kernel, OcSvmKernel::Linear),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if !(self.nu > 0.0 && self.nu <= 1.0) {
            return Err(Error::InvalidNu(self.nu));
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return Err(Error::invalid(
                "tol",
                self.tol,
                "the SMO tolerance must be finite and > 0 (default 1e-3)",
            ));
        }
        match self.kernel {
            OcSvmKernel::Linear => {}
            OcSvmKernel::Rbf { gamma } => gamma.validate()?,
            OcSvmKernel::Sigmoid { gamma, coef0 } => {
                gamma.validate()?;
                if !coef0.is_finite() {
                    return Err(Error::invalid(
                        "coef0",
                        coef0,
                        "the sigmoid kernel's coef0 must be finite (KE: 0)",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One-class SVM parameters (unchecked; builder setters; serde).
///
/// ```
/// use conad_scorers::{AnomalyScorer, Embeddings, Fit, OcSvmKernel, OcSvmParams};
/// let train: Vec<f32> = (0..60).map(|i| ((i * 7) % 11) as f32 / 11.0).collect();
/// let svm = OcSvmParams::default().kernel(OcSvmKernel::Linear).nu(0.5)
///     .fit(Embeddings::new(&train, 20, 3)?)?;
/// assert!(svm.score(&[0.5, 0.5, 0.5])?.is_finite());
/// # Ok::<(), conad_scorers::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OcSvmParams(OcSvmValidParams);
impl_param_guard!(OcSvmParams, OcSvmValidParams);

impl OcSvmParams {
    /// Kernel (default RBF with DROC γ).
    pub fn kernel(mut self, k: OcSvmKernel) -> Self {
        self.0.kernel = k;
        self
    }
    /// ν ∈ (0, 1] (default 0.5).
    pub fn nu(mut self, nu: f64) -> Self {
        self.0.nu = nu;
        self
    }
    /// SMO tolerance (default 1e-3, scikit-learn's `tol`).
    pub fn tol(mut self, tol: f64) -> Self {
        self.0.tol = tol;
        self
    }
    /// Force L2 normalisation on or off (default: on for RBF, off for linear).
    pub fn l2_normalize(mut self, on: bool) -> Self {
        self.0.l2_normalize = Some(on);
        self
    }
    /// The kernel currently set (unvalidated).
    pub const fn current_kernel(&self) -> OcSvmKernel {
        self.0.kernel
    }
    /// Kernel cache budget in MiB (default 256; the full matrix is kept when it fits).
    pub fn cache_mib(mut self, mib: usize) -> Self {
        self.0.cache_mib = mib;
        self
    }
}

/// A fitted one-class SVM; anomaly = `−(Σ α_i K(sv_i, x) − ρ)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OcSvmScorer {
    params: OcSvmValidParams,
    dim: usize,
    /// Resolved γ of the RBF or sigmoid kernel (0 for the linear kernel).
    gamma: f32,
    /// Support vectors (rows with α > 0) in kernel feature space, plus squared norms.
    support: RbfBank,
    /// Their α (libsvm scale).
    alpha: Vec<f64>,
    /// Linear kernel: `w = Σ α_i x_i`.
    weights: Option<Vec<f64>>,
    rho: f64,
    n_train: usize,
    iterations: usize,
    converged: bool,
}

impl OcSvmScorer {
    /// ρ (scikit-learn's `offset_`, `−intercept_`).
    pub const fn rho(&self) -> f64 {
        self.rho
    }
    /// α of the support vectors (libsvm scale: scikit-learn's `dual_coef_`).
    pub fn dual_coef(&self) -> &[f64] {
        &self.alpha
    }
    /// Number of support vectors.
    pub fn n_support(&self) -> usize {
        self.alpha.len()
    }
    /// Resolved γ (0 for the linear kernel).
    pub const fn gamma(&self) -> f32 {
        self.gamma
    }
    /// The kernel with its resolved γ.
    fn kernel_fn(&self) -> KernelFn {
        match self.params.kernel {
            OcSvmKernel::Linear => KernelFn::Linear,
            OcSvmKernel::Rbf { .. } => KernelFn::Rbf(self.gamma),
            OcSvmKernel::Sigmoid { coef0, .. } => KernelFn::Sigmoid {
                gamma: self.gamma,
                coef0,
            },
        }
    }
    /// SMO iterations and whether the stopping rule was met (false = hit libsvm's max_iter).
    pub const fn convergence(&self) -> (usize, bool) {
        (self.iterations, self.converged)
    }
    /// Training-set size.
    pub const fn n_train(&self) -> usize {
        self.n_train
    }

    /// scikit-learn's `decision_function`: `Σ α_i K(sv_i, x) − ρ` (normality; > 0 inside).
    ///
    /// # Errors
    /// As [`AnomalyScorer::score_batch`].
    pub fn decision_function(&self, queries: Embeddings<'_>) -> Result<Vec<f64>> {
        self.support.check("ocsvm")?;
        let bad = self.alpha.len() != self.support.rows.rows()
            || self.support.rows.cols() != self.dim
            || self.weights.as_ref().is_some_and(|w| w.len() != self.dim)
            || (self.weights.is_none() && !(self.gamma.is_finite() && self.gamma > 0.0));
        if bad {
            return Err(Error::CorruptModel {
                scorer: "ocsvm",
                detail: "support vectors, coefficients, weights or gamma are inconsistent".into(),
            });
        }
        queries.check_dim(self.dim, "one-class SVM queries")?;
        queries.check_finite("queries")?;
        let l2 = self.params.l2_normalize();
        match &self.weights {
            Some(w) => Ok((0..queries.rows())
                .into_par_iter()
                .map(|i| {
                    let mut row = queries.row(i).to_vec();
                    if l2 {
                        normalize_in_place(&mut row, NORM_EPS);
                    }
                    let s: f64 = row.iter().zip(w).map(|(&x, &wi)| f64::from(x) * wi).sum();
                    s - self.rho
                })
                .collect()),
            None if matches!(self.params.kernel, OcSvmKernel::Sigmoid { .. }) => {
                let kernel = self.kernel_fn();
                let bank = &self.support.rows;
                let (n_sv, d) = (bank.rows(), self.dim);
                Ok((0..queries.rows())
                    .into_par_iter()
                    .map(|i| {
                        let mut row = queries.row(i).to_vec();
                        if l2 {
                            normalize_in_place(&mut row, NORM_EPS);
                        }
                        let mut dots = vec![0.0f32; n_sv];
                        bank_times_queries_t(bank.as_slice(), n_sv, &row, 1, d, &mut dots);
                        let s: f64 = dots
                            .iter()
                            .zip(&self.alpha)
                            .map(|(&dot, &a)| a * f64::from(kernel.value(dot, 0.0, 0.0)))
                            .sum();
                        s - self.rho
                    })
                    .collect())
            }
            None => {
                let logw: Vec<f32> = self.alpha.iter().map(|&a| a.ln() as f32).collect();
                let ls = rbf_log_sum(
                    queries,
                    &self.support,
                    Some(&logw),
                    self.gamma,
                    l2,
                    TilePlan::default(),
                );
                Ok(ls.into_iter().map(|l| l.exp() - self.rho).collect())
            }
        }
    }
}

impl Fit for OcSvmValidParams {
    type Fitted = OcSvmScorer;

    fn fit(&self, train: Embeddings<'_>) -> Result<OcSvmScorer> {
        self.validate()?;
        train.check_min_rows(1, "training bank")?;
        train.check_finite("training bank")?;
        let (n, d) = (train.rows(), train.cols());
        let feats = to_feature_space(train, self.l2_normalize());
        let (kernel, gamma) = match self.kernel {
            OcSvmKernel::Linear => (KernelFn::Linear, 0.0),
            OcSvmKernel::Rbf { gamma } => {
                let g = gamma.resolve(feats.view())?;
                (KernelFn::Rbf(g), g)
            }
            OcSvmKernel::Sigmoid { gamma, coef0 } => {
                let g = gamma.resolve(feats.view())?;
                (KernelFn::Sigmoid { gamma: g, coef0 }, g)
            }
        };
        let cache = self.cache_mib.saturating_mul(1 << 20);
        let mut q = KernelMatrix::new(feats.as_slice(), n, d, kernel, cache);
        let sol = solve_one_class(&mut q, self.nu, self.tol);
        drop(q);
        let sv: Vec<usize> = (0..n).filter(|&i| sol.alpha[i] > 0.0).collect();
        let mut sv_rows = Vec::with_capacity(sv.len() * d);
        for &i in &sv {
            sv_rows.extend_from_slice(feats.row(i));
        }
        let alpha: Vec<f64> = sv.iter().map(|&i| sol.alpha[i]).collect();
        let weights = match kernel {
            KernelFn::Linear => {
                let mut w = vec![0.0f64; d];
                for (r, &a) in sv_rows.chunks_exact(d).zip(&alpha) {
                    for (wi, &x) in w.iter_mut().zip(r) {
                        *wi += a * f64::from(x);
                    }
                }
                Some(w)
            }
            KernelFn::Rbf(_) | KernelFn::Sigmoid { .. } => None,
        };
        Ok(OcSvmScorer {
            params: self.clone(),
            dim: d,
            gamma,
            support: RbfBank::new(EmbeddingMatrix::new(sv_rows, sv.len(), d)?),
            alpha,
            weights,
            rho: sol.rho,
            n_train: n,
            iterations: sol.iterations,
            converged: sol.converged,
        })
    }
}

impl AnomalyScorer for OcSvmScorer {
    fn name(&self) -> &'static str {
        "ocsvm"
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn score_batch(&self, queries: Embeddings<'_>) -> Result<Vec<f32>> {
        Ok(self
            .decision_function(queries)?
            .into_iter()
            .map(|g| (-g) as f32)
            .collect())
    }
}
