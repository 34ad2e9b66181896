//! The CPU side of the candle op: typed host slices out of `CpuStorage`, the kernels' inputs
//! ([`Problem`], [`Pass`]) from the op's [`Spec`], and the results back into `CpuStorage`. The
//! forward returns its [`RowStats`] for the caller to keep; the backward takes them (the op
//! glue in [`crate::info_nce`] owns the hand-over). F32 and F64.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout, Shape};

use super::Rows;
use super::backward::{Coefs, Pass, backward_pass};
use super::forward::{Problem, RowStats, forward};
use super::real::Real;
use crate::info_nce::{Output, RowIds, Spec, Target};

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

/// Generic CPU forward: returns the output storage and the statistics.
fn cpu_forward<T: Real + candle_core::WithDType>(
    spec: &Spec,
    q: &[T],
    k: &[T],
    d: usize,
) -> candle_core::Result<(CpuStorage, Shape, RowStats)> {
    let p = Problem {
        anchors: rows(q, d, &spec.anchor_ids),
        keys: rows(k, d, spec.key_ids()),
        d,
        shared: spec.shared(),
        rules: spec.rules,
        inv_tau: 1.0 / spec.temperature,
        reduction: spec.reduction,
    };
    let stats = forward(&p, &spec.counts);
    let (out, shape) = match spec.output {
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
    Ok((out, shape, stats))
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

fn cpu_backward<T: Real + candle_core::WithDType>(
    spec: &Spec,
    stats: &RowStats,
    target: Target,
    q: &[T],
    k: &[T],
    d: usize,
    grad_out: &[f64],
) -> candle_core::Result<(CpuStorage, Shape)> {
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
            let coefs = Coefs::<T>::new(stats, &spec.counts, &grads, spec.reduction, keys.n);
            let pass = Pass {
                row_coefs: Some(&coefs),
                col_coefs: Some(&coefs),
                ..base(spec, keys, keys, d)
            };
            (backward_pass(&pass), keys.n)
        }
        Target::Anchors => {
            let coefs = Coefs::<T>::new(stats, &spec.counts, &grads, spec.reduction, anchors.n);
            let pass = Pass {
                row_coefs: Some(&coefs),
                ..base(spec, anchors, keys, d)
            };
            (backward_pass(&pass), anchors.n)
        }
        Target::Keys => {
            let coefs = Coefs::<T>::new(stats, &spec.counts, &grads, spec.reduction, anchors.n);
            let pass = Pass {
                col_coefs: Some(&coefs),
                ..base(spec, keys, anchors, d)
            };
            (backward_pass(&pass), keys.n)
        }
    };
    Ok((T::to_cpu_storage_owned(out), Shape::from((n, d))))
}

macro_rules! by_dtype {
    ($dtype:expr, $f:ident, $($args:tt)*) => {
        match $dtype {
            DType::F32 => $f::<f32>($($args)*),
            DType::F64 => $f::<f64>($($args)*),
            other => candle_core::bail!("fused InfoNCE supports F32 and F64, got {other:?}"),
        }
    };
}

fn shared_fwd<T: Real + candle_core::WithDType>(
    spec: &Spec,
    s: &CpuStorage,
    l: &Layout,
) -> candle_core::Result<(CpuStorage, Shape, RowStats)> {
    let z = slice::<T>(s, l, "z")?;
    let d = l.dims()[1];
    cpu_forward(spec, &z[..spec.m * d], z, d)
}

fn pair_fwd<T: Real + candle_core::WithDType>(
    spec: &Spec,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
) -> candle_core::Result<(CpuStorage, Shape, RowStats)> {
    let q = slice::<T>(s1, l1, "anchors")?;
    let k = slice::<T>(s2, l2, "keys")?;
    cpu_forward(spec, q, k, l1.dims()[1])
}

fn shared_bwd<T: Real + candle_core::WithDType>(
    spec: &Spec,
    stats: &RowStats,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
) -> candle_core::Result<(CpuStorage, Shape)> {
    let z = slice::<T>(s1, l1, "z")?;
    let d = l1.dims()[1];
    let g = grad_values(s2, l2)?;
    cpu_backward(spec, stats, Target::Shared, &z[..spec.m * d], z, d, &g)
}

fn pair_bwd<T: Real + candle_core::WithDType>(
    spec: &Spec,
    stats: &RowStats,
    target: Target,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    (s3, l3): (&CpuStorage, &Layout),
) -> candle_core::Result<(CpuStorage, Shape)> {
    let q = slice::<T>(s1, l1, "anchors")?;
    let k = slice::<T>(s2, l2, "keys")?;
    let g = grad_values(s3, l3)?;
    cpu_backward(spec, stats, target, q, k, l1.dims()[1], &g)
}

/// Forward of the shared op on `z` (anchors are its leading `spec.m` rows): the op's output and
/// the statistics for the backward.
pub(crate) fn shared_forward(
    spec: &Spec,
    s: &CpuStorage,
    l: &Layout,
) -> candle_core::Result<(CpuStorage, Shape, RowStats)> {
    by_dtype!(s.dtype(), shared_fwd, spec, s, l)
}

/// Forward of the pair op on anchors `q` and keys `k`.
pub(crate) fn pair_forward(
    spec: &Spec,
    q: (&CpuStorage, &Layout),
    k: (&CpuStorage, &Layout),
) -> candle_core::Result<(CpuStorage, Shape, RowStats)> {
    by_dtype!(q.0.dtype(), pair_fwd, spec, q, k)
}

/// Backward of the shared op: `(z, ∂L/∂out) → dz`.
pub(crate) fn shared_backward(
    spec: &Spec,
    stats: &RowStats,
    z: (&CpuStorage, &Layout),
    grad: (&CpuStorage, &Layout),
) -> candle_core::Result<(CpuStorage, Shape)> {
    by_dtype!(z.0.dtype(), shared_bwd, spec, stats, z, grad)
}

/// Backward of the pair op: `(q, k, ∂L/∂out) → dq` or `dk` (`target`).
pub(crate) fn pair_backward(
    spec: &Spec,
    stats: &RowStats,
    target: Target,
    q: (&CpuStorage, &Layout),
    k: (&CpuStorage, &Layout),
    grad: (&CpuStorage, &Layout),
) -> candle_core::Result<(CpuStorage, Shape)> {
    by_dtype!(q.0.dtype(), pair_bwd, spec, stats, target, q, k, grad)
}
