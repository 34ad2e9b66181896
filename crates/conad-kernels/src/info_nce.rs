//! Fused masked multi-positive InfoNCE as a candle custom op (METHODS §0 "Generic kernel",
//! §1.1 NT-Xent, §1.2 SupCon; Khosla et al. 2020 eqs. 2–3).
//!
//! With logits `s_ij = q_i·k_j / τ`, a denominator set `A(i)` and positives `P(i) ⊆ A(i)` made
//! from row ids by [`MaskRules`]:
//!
//! * `lse_i = log Σ_{a∈A(i)} e^{s_ia}` is accumulated tile by tile with a streaming
//!   (online) log-sum-exp, so the `M × M'` logit matrix is never stored: memory is
//!   O((M + M')·d).
//! * [`PositiveReduction::MeanLogProb`] (`L_out`): `ℓ_i = lse_i − (1/|P(i)|) Σ_{p∈P(i)} s_ip`;
//!   [`PositiveReduction::LogSumProb`] (`L_in`): `ℓ_i = lse_i − log Σ_{p∈P(i)} e^{s_ip}`;
//!   [`PositiveReduction::LogMeanProb`]: `L_in + log |P(i)|`.
//! * Anchors with `P(i) = ∅` give `ℓ_i = 0` and count in the mean ([`EmptyAnchors::CountAsZero`],
//!   HobbitLong) or are left out of it ([`EmptyAnchors::Drop`]).
//!
//! The forward pass saves only `lse_i` (and the positives' log-sum-exp for `L_in`) per anchor.
//! The backward pass recomputes the logit tiles and forms
//! `∂ℓ_i/∂s_ij = [j∈A(i)] e^{s_ij − lse_i} − [j∈P(i)]·w_ij` (`w_ij = 1/|P(i)|` for `L_out`,
//! `e^{s_ij − lse⁺_i}` for `L_in`), then `dQ = (1/τ) G K` and `dK = (1/τ) Gᵀ Q`. When anchors and
//! keys are one tensor `z` ([`fused_info_nce`]) both terms are accumulated in a single pass over
//! row blocks of `z` (every rule is symmetric, so tile `(r, c)` serves `G_rc` and `G_cr`).
//!
//! CPU: `gemm` tiles, rayon over row blocks, fixed reduction order — the same input gives the
//! same bits for any number of threads. CUDA (feature `cuda`): NVRTC-compiled kernels of
//! `src/cuda/*.cu`.

use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor};
use serde::{Deserialize, Serialize};

use crate::cpu::{self, Coefs, Pass, Problem, RowStats, Rows, real::Real};
use crate::error::{Error, Result, check_temperature};
use crate::reduction::{EmptyAnchors, PositiveReduction};
use crate::rules::{MaskRules, RowIds, positive_counts};

/// Which rows of `z` act as anchors (all rows are keys).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorRows {
    /// Every row (SimCLR; HobbitLong `contrast_mode='all'`).
    #[default]
    All,
    /// The first `n` rows (`contrast_mode='one'` on a view-major batch: `n` = images).
    Leading(usize),
}

/// Configuration of the fused loss.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FusedInfoNceConfig {
    /// Temperature τ > 0.
    pub temperature: f64,
    /// Positive and denominator rules.
    pub rules: MaskRules,
    /// Combination of positives.
    pub reduction: PositiveReduction,
    /// Treatment of anchors without positives.
    pub empty_anchors: EmptyAnchors,
    /// Anchor rows of `z` ([`fused_info_nce`] only; [`fused_info_nce_qk`] uses every row of
    /// `q` and needs [`AnchorRows::All`]).
    pub anchors: AnchorRows,
}

impl Default for FusedInfoNceConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            rules: MaskRules::default(),
            reduction: PositiveReduction::MeanLogProb,
            empty_anchors: EmptyAnchors::CountAsZero,
            anchors: AnchorRows::All,
        }
    }
}

impl FusedInfoNceConfig {
    /// Checks the temperature.
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`].
    pub fn validate(&self) -> Result<()> {
        check_temperature(self.temperature)
    }

    /// SimCLR / NT-Xent on a view-major batch (positives: same instance).
    pub fn nt_xent(temperature: f64) -> Self {
        Self {
            temperature,
            ..Self::default()
        }
    }

    /// SupCon (positives: same label; HobbitLong conventions; the τ/τ_base factor is the
    /// caller's).
    pub fn supcon(temperature: f64) -> Self {
        Self {
            temperature,
            rules: MaskRules {
                positives: crate::rules::PositiveRule::SameLabel,
                ..MaskRules::default()
            },
            ..Self::default()
        }
    }
}

/// What the forward op returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// The scalar `Σ_i ℓ_i / denominator`.
    Mean { denominator: usize },
    /// The vector `ℓ`.
    PerAnchor,
}

/// Statistics saved by the forward pass for the backward pass.
#[derive(Debug)]
pub(crate) enum Saved {
    Cpu(RowStats),
    #[cfg(feature = "cuda")]
    Cuda(Box<crate::cuda::launch::DeviceStats>),
}

/// Everything the forward and backward ops share.
#[derive(Debug)]
pub(crate) struct Spec {
    pub rules: MaskRules,
    pub reduction: PositiveReduction,
    pub temperature: f64,
    /// Ids of the anchor rows (`z`'s ids when shared).
    pub anchor_ids: RowIds,
    /// Ids of the key rows (`None` when shared).
    pub key_ids: Option<RowIds>,
    /// Anchors `M`.
    pub m: usize,
    /// `|P(i)|` per anchor.
    pub counts: Vec<u32>,
    pub output: Output,
    pub saved: Mutex<Option<Saved>>,
}

impl Spec {
    pub(crate) fn key_ids(&self) -> &RowIds {
        self.key_ids.as_ref().unwrap_or(&self.anchor_ids)
    }

    pub(crate) fn shared(&self) -> bool {
        self.key_ids.is_none()
    }

    /// `∂L/∂ℓ_i` from the gradient of the op's output.
    pub(crate) fn anchor_grads(&self, grad_out: &[f64]) -> Vec<f64> {
        match self.output {
            Output::Mean { denominator } => vec![grad_out[0] / denominator as f64; self.m],
            Output::PerAnchor => grad_out.to_vec(),
        }
    }

    fn store(&self, saved: Saved) {
        *self.saved.lock().unwrap_or_else(|p| p.into_inner()) = Some(saved);
    }
}

fn slice<'a, T: candle_core::WithDType>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<T>()?[a..b]),
        None => candle_core::bail!("{what} must be contiguous"),
    }
}

fn rows<'a, T>(data: &'a [T], d: usize, ids: &'a RowIds) -> Rows<'a, T> {
    Rows {
        data,
        n: ids.len(),
        inst: ids.instances(),
        lab: ids.labels_or_instances(),
    }
    .with_len(data.len(), d)
}

impl<'a, T> Rows<'a, T> {
    fn with_len(mut self, len: usize, d: usize) -> Self {
        self.n = len / d.max(1);
        self
    }
}

/// Generic CPU forward: returns the output storage and saves the statistics.
fn cpu_forward<T: Real + candle_core::WithDType>(
    spec: &Spec,
    q: &[T],
    k: &[T],
    d: usize,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let p = Problem {
        anchors: rows(q, d, &spec.anchor_ids),
        keys: rows(k, d, spec.key_ids()),
        d,
        shared: spec.shared(),
        rules: spec.rules,
        inv_tau: 1.0 / spec.temperature,
        reduction: spec.reduction,
    };
    let stats = cpu::forward(&p, &spec.counts);
    let out = match spec.output {
        Output::Mean { denominator } => {
            // Fixed-order f64 sum: identical for any thread count.
            let total: f64 = stats.loss.iter().sum();
            (
                T::to_cpu_storage_owned(vec![<T as Real>::from_f64(total / denominator as f64)]),
                Shape::from(()),
            )
        }
        Output::PerAnchor => (
            T::to_cpu_storage_owned(
                stats
                    .loss
                    .iter()
                    .map(|&x| <T as Real>::from_f64(x))
                    .collect(),
            ),
            Shape::from(spec.m),
        ),
    };
    spec.store(Saved::Cpu(stats));
    Ok(out)
}

/// The saved CPU statistics, recomputed if the forward pass did not leave them.
fn cpu_stats<T: Real + candle_core::WithDType>(
    spec: &Spec,
    q: &[T],
    k: &[T],
    d: usize,
) -> candle_core::Result<RowStats> {
    if let Some(Saved::Cpu(stats)) = &*spec.saved.lock().unwrap_or_else(|p| p.into_inner()) {
        return Ok(stats.clone());
    }
    cpu_forward(spec, q, k, d)?;
    match &*spec.saved.lock().unwrap_or_else(|p| p.into_inner()) {
        Some(Saved::Cpu(stats)) => Ok(stats.clone()),
        _ => candle_core::bail!("fused InfoNCE: forward statistics missing"),
    }
}

fn grad_values(s: &CpuStorage, l: &Layout) -> candle_core::Result<Vec<f64>> {
    match s.dtype() {
        DType::F32 => Ok(slice::<f32>(s, l, "gradient")?
            .iter()
            .map(|&x| f64::from(x))
            .collect()),
        DType::F64 => Ok(slice::<f64>(s, l, "gradient")?.to_vec()),
        other => candle_core::bail!("fused InfoNCE: gradient dtype {other:?}"),
    }
}

/// Which gradient a backward op computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `dz` of the shared op (both terms).
    Shared,
    /// `dq` of the pair op.
    Anchors,
    /// `dk` of the pair op.
    Keys,
}

fn cpu_backward<T: Real + candle_core::WithDType>(
    spec: &Spec,
    target: Target,
    q: &[T],
    k: &[T],
    d: usize,
    grad_out: &[f64],
) -> candle_core::Result<(CpuStorage, Shape)> {
    let stats = cpu_stats(spec, q, k, d)?;
    let grads = spec.anchor_grads(grad_out);
    let anchors = rows(q, d, &spec.anchor_ids);
    let keys = rows(k, d, spec.key_ids());
    fn base<'a, T>(spec: &Spec, rows: Rows<'a, T>, cols: Rows<'a, T>, d: usize) -> Pass<'a, T> {
        Pass {
            rows,
            cols,
            d,
            shared: spec.shared(),
            rules: spec.rules,
            inv_tau: 1.0 / spec.temperature,
            reduction: spec.reduction,
            row_coefs: None,
            col_coefs: None,
        }
    }
    let (out, n) = match target {
        Target::Shared => {
            let coefs = Coefs::<T>::new(&stats, &spec.counts, &grads, spec.reduction, keys.n);
            let pass = Pass {
                row_coefs: Some(&coefs),
                col_coefs: Some(&coefs),
                ..base(spec, keys, keys, d)
            };
            (cpu::backward_pass(&pass), keys.n)
        }
        Target::Anchors => {
            let coefs = Coefs::<T>::new(&stats, &spec.counts, &grads, spec.reduction, anchors.n);
            let pass = Pass {
                row_coefs: Some(&coefs),
                ..base(spec, anchors, keys, d)
            };
            (cpu::backward_pass(&pass), anchors.n)
        }
        Target::Keys => {
            let coefs = Coefs::<T>::new(&stats, &spec.counts, &grads, spec.reduction, anchors.n);
            let pass = Pass {
                col_coefs: Some(&coefs),
                ..base(spec, keys, anchors, d)
            };
            (cpu::backward_pass(&pass), keys.n)
        }
    };
    Ok((T::to_cpu_storage_owned(out), Shape::from((n, d))))
}

/// The forward op on one shared `z` (anchors are its leading rows).
#[derive(Debug, Clone)]
struct SharedOp(Arc<Spec>);

/// The forward op on separate anchors `q` and keys `k`.
#[derive(Debug, Clone)]
struct PairOp(Arc<Spec>);

/// Backward of [`SharedOp`]: `(z, ∂L/∂out) → dz`.
#[derive(Debug, Clone)]
struct SharedBackward(Arc<Spec>);

/// Backward of [`PairOp`]: `(q, k, ∂L/∂out) → dq` or `dk`.
#[derive(Debug, Clone)]
struct PairBackward(Arc<Spec>, Target);

macro_rules! by_dtype {
    ($dtype:expr, $f:ident, $($args:tt)*) => {
        match $dtype {
            DType::F32 => $f::<f32>($($args)*),
            DType::F64 => $f::<f64>($($args)*),
            other => candle_core::bail!("fused InfoNCE supports F32 and F64, got {other:?}"),
        }
    };
}

fn shared_cpu_fwd<T: Real + candle_core::WithDType>(
    spec: &Spec,
    s: &CpuStorage,
    l: &Layout,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let z = slice::<T>(s, l, "z")?;
    let d = l.dims()[1];
    cpu_forward(spec, &z[..spec.m * d], z, d)
}

fn pair_cpu_fwd<T: Real + candle_core::WithDType>(
    spec: &Spec,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
) -> candle_core::Result<(CpuStorage, Shape)> {
    let q = slice::<T>(s1, l1, "anchors")?;
    let k = slice::<T>(s2, l2, "keys")?;
    cpu_forward(spec, q, k, l1.dims()[1])
}

fn shared_cpu_bwd<T: Real + candle_core::WithDType>(
    spec: &Spec,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
) -> candle_core::Result<(CpuStorage, Shape)> {
    let z = slice::<T>(s1, l1, "z")?;
    let d = l1.dims()[1];
    let g = grad_values(s2, l2)?;
    cpu_backward(spec, Target::Shared, &z[..spec.m * d], z, d, &g)
}

fn pair_cpu_bwd<T: Real + candle_core::WithDType>(
    spec: &Spec,
    target: Target,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    (s3, l3): (&CpuStorage, &Layout),
) -> candle_core::Result<(CpuStorage, Shape)> {
    let q = slice::<T>(s1, l1, "anchors")?;
    let k = slice::<T>(s2, l2, "keys")?;
    let g = grad_values(s3, l3)?;
    cpu_backward(spec, target, q, k, l1.dims()[1], &g)
}

impl CustomOp1 for SharedOp {
    fn name(&self) -> &'static str {
        "conad-fused-info-nce"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        by_dtype!(s.dtype(), shared_cpu_fwd, &self.0, s, l)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::candle_ops::forward(&self.0, (s, l), None)
    }

    fn bwd(&self, z: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        Ok(Some(z.apply_op2_no_bwd(
            &grad,
            &SharedBackward(self.0.clone()),
        )?))
    }
}

impl CustomOp2 for SharedBackward {
    fn name(&self) -> &'static str {
        "conad-fused-info-nce-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        by_dtype!(s1.dtype(), shared_cpu_bwd, &self.0, (s1, l1), (s2, l2))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::candle_ops::backward(&self.0, Target::Shared, (s1, l1), None, (s2, l2))
    }
}

impl CustomOp2 for PairOp {
    fn name(&self) -> &'static str {
        "conad-fused-info-nce-qk"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        by_dtype!(s1.dtype(), pair_cpu_fwd, &self.0, (s1, l1), (s2, l2))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::candle_ops::forward(&self.0, (s1, l1), Some((s2, l2)))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dq = q.apply_op3_no_bwd(k, &grad, &PairBackward(self.0.clone(), Target::Anchors))?;
        let dk = q.apply_op3_no_bwd(k, &grad, &PairBackward(self.0.clone(), Target::Keys))?;
        Ok((Some(dq), Some(dk)))
    }
}

impl CustomOp3 for PairBackward {
    fn name(&self) -> &'static str {
        "conad-fused-info-nce-qk-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        by_dtype!(
            s1.dtype(),
            pair_cpu_bwd,
            &self.0,
            self.1,
            (s1, l1),
            (s2, l2),
            (s3, l3)
        )
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        crate::cuda::candle_ops::backward(&self.0, self.1, (s1, l1), Some((s2, l2)), (s3, l3))
    }
}

/// Checks rank, dtype and emptiness of an `n × d` input; returns `(n, d)`.
fn check_matrix(t: &Tensor, what: &'static str) -> Result<(usize, usize)> {
    let (n, d) = match t.dims() {
        &[n, d] if n > 0 && d > 0 => (n, d),
        dims => {
            return Err(Error::Shape {
                what,
                got: dims.to_vec(),
                expected: "n × d with n, d ≥ 1".into(),
            });
        }
    };
    if !matches!(t.dtype(), DType::F32 | DType::F64) {
        return Err(Error::DType {
            what,
            got: t.dtype(),
        });
    }
    Ok((n, d))
}

/// Fails on NaN/±∞ with the position of the first offender (`x·0` is 0 exactly for finite `x`).
fn check_finite(t: &Tensor, what: &'static str) -> Result<()> {
    let probe = (t * 0.0)?
        .sum_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?;
    if probe == 0.0 {
        return Ok(());
    }
    let d = t.dim(1)?;
    let values = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let (idx, value) = values
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
        .map_or((0, probe), |(i, &v)| (i, v));
    Err(Error::NonFinite {
        what,
        row: idx / d,
        col: idx % d,
        value,
    })
}

fn denominator(counts: &[u32], empty: EmptyAnchors) -> Result<usize> {
    let n = match empty {
        EmptyAnchors::CountAsZero => counts.len(),
        EmptyAnchors::Drop => counts.iter().filter(|&&c| c > 0).count(),
    };
    if n == 0 {
        Err(Error::NoPositives)
    } else {
        Ok(n)
    }
}

fn shared_spec(
    z: &Tensor,
    ids: &RowIds,
    config: &FusedInfoNceConfig,
    per_anchor: bool,
) -> Result<Arc<Spec>> {
    config.validate()?;
    let (n, _) = check_matrix(z, "z")?;
    let spec = build_shared_spec(n, ids, config, per_anchor)?;
    check_finite(z, "z")?;
    Ok(spec)
}

/// The [`Spec`] of the shared-`z` op for `n` rows (validates config, ids and anchors).
pub(crate) fn build_shared_spec(
    n: usize,
    ids: &RowIds,
    config: &FusedInfoNceConfig,
    per_anchor: bool,
) -> Result<Arc<Spec>> {
    config.validate()?;
    ids.check("ids", n, &config.rules)?;
    let m = match config.anchors {
        AnchorRows::All => n,
        AnchorRows::Leading(m) if (1..=n).contains(&m) => m,
        AnchorRows::Leading(m) => {
            return Err(Error::AnchorCount {
                anchors: m,
                rows: n,
            });
        }
    };
    let counts = positive_counts(ids, m, ids, &config.rules, true);
    let output = if per_anchor {
        Output::PerAnchor
    } else {
        Output::Mean {
            denominator: denominator(&counts, config.empty_anchors)?,
        }
    };
    Ok(Arc::new(Spec {
        rules: config.rules,
        reduction: config.reduction,
        temperature: config.temperature,
        anchor_ids: ids.clone(),
        key_ids: None,
        m,
        counts,
        output,
        saved: Mutex::new(None),
    }))
}

/// The fused loss on one contrast set `z` whose rows are both keys and (the leading
/// `config.anchors`) anchors: NT-Xent on `[z¹; z²]`, SupCon, FIRM concat, CON2, CSI's 8N layout.
/// Each anchor's own row is excluded from its positives and denominator.
///
/// Returns the scalar mean of `ℓ_i` (see [`EmptyAnchors`]); differentiable through candle's
/// autograd (`loss.backward()` gives `dz`).
///
/// # Shapes
/// `z`: `n × d` (L2-normalised projections, F32 or F64), `ids`: `n` rows → scalar.
///
/// # Errors
/// [`Error::Shape`], [`Error::DType`], [`Error::IdCount`], [`Error::MissingLabels`],
/// [`Error::InvalidTemperature`], [`Error::AnchorCount`], [`Error::NonFinite`],
/// [`Error::NoPositives`] (with [`EmptyAnchors::Drop`]).
pub fn fused_info_nce(z: &Tensor, ids: &RowIds, config: &FusedInfoNceConfig) -> Result<Tensor> {
    let spec = shared_spec(z, ids, config, false)?;
    Ok(z.contiguous()?.apply_op1(SharedOp(spec))?)
}

/// The per-anchor losses `ℓ_i` of [`fused_info_nce`] (0 for anchors without positives);
/// differentiable.
///
/// # Shapes
/// `z`: `n × d`, `ids`: `n` rows → `M` (the anchor count).
///
/// # Errors
/// As [`fused_info_nce`] except [`Error::NoPositives`].
pub fn fused_info_nce_per_anchor(
    z: &Tensor,
    ids: &RowIds,
    config: &FusedInfoNceConfig,
) -> Result<Tensor> {
    let spec = shared_spec(z, ids, config, true)?;
    Ok(z.contiguous()?.apply_op1(SharedOp(spec))?)
}

/// The fused loss with separate anchors `q` and keys `k` (no self-pair exists, nothing is
/// excluded): FIRM's pairwise `z¹ z²ᵀ` NT-Xent / FIRM loss. Differentiable in `q` and `k`.
///
/// # Shapes
/// `q`: `M × d`, `k`: `M' × d`, `anchor_ids`: `M` rows, `key_ids`: `M'` rows → scalar.
///
/// # Errors
/// As [`fused_info_nce`]; [`Error::Mismatch`] if `q` and `k` differ in `d`, dtype or device, or
/// `config.anchors` is not [`AnchorRows::All`].
pub fn fused_info_nce_qk(
    q: &Tensor,
    k: &Tensor,
    anchor_ids: &RowIds,
    key_ids: &RowIds,
    config: &FusedInfoNceConfig,
) -> Result<Tensor> {
    config.validate()?;
    let (m, d) = check_matrix(q, "anchors")?;
    let (n, dk) = check_matrix(k, "keys")?;
    if d != dk || q.dtype() != k.dtype() || !q.device().same_device(k.device()) {
        return Err(Error::Mismatch {
            what: "anchors and keys",
            detail: format!(
                "{m}×{d} {:?} on {:?} vs {n}×{dk} {:?} on {:?}; need one d, dtype and device",
                q.dtype(),
                q.device().location(),
                k.dtype(),
                k.device().location()
            ),
        });
    }
    if config.anchors != AnchorRows::All {
        return Err(Error::Mismatch {
            what: "config.anchors",
            detail: "the q/k form uses every row of q as an anchor; set AnchorRows::All".into(),
        });
    }
    anchor_ids.check("anchor ids", m, &config.rules)?;
    key_ids.check("key ids", n, &config.rules)?;
    check_finite(q, "anchors")?;
    check_finite(k, "keys")?;
    let counts = positive_counts(anchor_ids, m, key_ids, &config.rules, false);
    let spec = Arc::new(Spec {
        rules: config.rules,
        reduction: config.reduction,
        temperature: config.temperature,
        anchor_ids: anchor_ids.clone(),
        key_ids: Some(key_ids.clone()),
        m,
        output: Output::Mean {
            denominator: denominator(&counts, config.empty_anchors)?,
        },
        counts,
        saved: Mutex::new(None),
    });
    Ok(q.contiguous()?.apply_op2(&k.contiguous()?, PairOp(spec))?)
}
