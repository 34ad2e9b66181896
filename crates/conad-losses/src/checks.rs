//! Shape and value checks shared by the objectives (every failure is a typed [`Error`]).

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};

/// `t` is `rows × cols` with `rows ≥ 1` and a float dtype; returns `(rows, cols)`.
pub(crate) fn matrix(t: &Tensor, what: &'static str) -> Result<(usize, usize)> {
    match t.dims() {
        &[r, c] if r > 0 && c > 0 => {
            float(t)?;
            Ok((r, c))
        }
        d => Err(Error::Shape {
            what,
            got: d.to_vec(),
            expected: "rows × d with at least one row and column".into(),
        }),
    }
}

/// Two views of one batch: same `N × d` shape and dtype; returns `(N, d)`.
pub(crate) fn two_views(z1: &Tensor, z2: &Tensor) -> Result<(usize, usize)> {
    let shape = matrix(z1, "view 1")?;
    if z2.dims() != z1.dims() {
        return Err(Error::Shape {
            what: "view 2",
            got: z2.dims().to_vec(),
            expected: format!("{} × {} like view 1", shape.0, shape.1),
        });
    }
    same_dtype(z1, z2)?;
    Ok(shape)
}

/// Same float dtype.
pub(crate) fn same_dtype(a: &Tensor, b: &Tensor) -> Result<()> {
    if a.dtype() == b.dtype() {
        Ok(())
    } else {
        Err(Error::DType {
            anchors: a.dtype(),
            keys: b.dtype(),
        })
    }
}

fn float(t: &Tensor) -> Result<()> {
    if matches!(
        t.dtype(),
        DType::F16 | DType::BF16 | DType::F32 | DType::F64
    ) {
        Ok(())
    } else {
        Err(Error::DType {
            anchors: t.dtype(),
            keys: t.dtype(),
        })
    }
}

/// Flat host copy in f64 (detached), rejecting NaN/∞.
pub(crate) fn host_f64(t: &Tensor, what: &'static str) -> Result<Vec<f64>> {
    let v = t
        .detach()
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(Error::NonFiniteInput { what, index, value });
    }
    Ok(v)
}

/// Number of labels equals the number of samples.
pub(crate) fn label_count(what: &'static str, got: usize, expected: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::LabelCount {
            what,
            got,
            expected,
        })
    }
}

/// A weight (λ, α, …) is finite and ≥ 0.
pub(crate) fn weight(field: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(field, value, "must be finite and ≥ 0"))
    }
}

/// Host values (f64) → tensor of `like`'s dtype and device.
pub(crate) fn upload(values: Vec<f64>, shape: (usize, usize), like: &Tensor) -> Result<Tensor> {
    Ok(Tensor::from_vec(values, shape, like.device())?.to_dtype(like.dtype())?)
}
