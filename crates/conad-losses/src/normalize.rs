//! L2 normalisation of projections (docs/reference.md §0: `z = h/‖h‖`, ε ≈ 1e-8 in the norm).

use candle_core::{D, Tensor};

use crate::error::{Error, Result};

/// Default ε of [`l2_normalize`].
pub const L2_EPS: f64 = 1e-8;

/// Row-wise `z = h / max(‖h‖₂, ε)` (PyTorch `F.normalize` semantics), differentiable.
///
/// # Shapes
/// `N × d` → `N × d`.
///
/// # Errors
/// [`Error::Shape`] unless `h` has rank 2.
pub fn l2_normalize(h: &Tensor, eps: f64) -> Result<Tensor> {
    if h.rank() != 2 {
        return Err(Error::Shape {
            what: "projections",
            got: h.dims().to_vec(),
            expected: "N × d".into(),
        });
    }
    let norm = h.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(eps)?;
    Ok(h.broadcast_div(&norm)?)
}
