//! The tensors the op accepts: rank 2, `n × d` with `n, d ≥ 1`, F32 or F64, every entry finite
//! (the `# Shapes` and `# Errors` sections of [`fused_info_nce`](crate::fused_info_nce) and
//! [`fused_info_nce_qk`](crate::fused_info_nce_qk)). Checked before any backend runs, so both
//! backends see the same valid inputs and callers the same typed errors.

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};

/// Checks rank, dtype and emptiness of an `n × d` input; returns `(n, d)`.
pub(crate) fn check_matrix(t: &Tensor, what: &'static str) -> Result<(usize, usize)> {
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
pub(crate) fn check_finite(t: &Tensor, what: &'static str) -> Result<()> {
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
