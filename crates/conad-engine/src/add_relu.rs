//! Fused residual join `relu(a + b)` as a candle `CustomOp2`: the forward is one pass and the
//! backward one masked copy, shared by both inputs (candle composes the join from `add` and
//! `relu`, whose backward is several tensor passes plus a gradient accumulation).

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::cpu_data::{cpu_tensor, par_overwrite_chunks, storage_slice, with_tensor_slice};
use crate::error::{Error, Result};

/// Elements per parallel task.
const BLOCK: usize = 1 << 14;

/// The fused op; use [`add_relu`].
#[derive(Clone, Copy, Debug)]
pub struct AddReluOp;

impl CustomOp2 for AddReluOp {
    fn name(&self) -> &'static str {
        "conad-add-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.dims() != l2.dims() {
            candle_core::bail!(
                "{}: shapes {:?} and {:?} differ",
                self.name(),
                l1.dims(),
                l2.dims()
            );
        }
        let a = storage_slice(self.name(), s1, l1)?;
        let b = storage_slice(self.name(), s2, l2)?;
        // SAFETY: the loop stores every element of its piece.
        let y = unsafe {
            par_overwrite_chunks(a.len(), BLOCK, |k, y| {
                let (a, b) = (&a[k * BLOCK..][..y.len()], &b[k * BLOCK..][..y.len()]);
                for ((o, &u), &v) in y.iter_mut().zip(a).zip(b) {
                    *o = (u + v).max(0.0);
                }
            })
        };
        Ok((CpuStorage::F32(y), Shape::from(l1.dims())))
    }

    fn bwd(
        &self,
        _a: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = with_tensor_slice(self.name(), y, |ys| {
            with_tensor_slice(self.name(), dy, |dys| {
                // SAFETY: the loop stores every element of its piece.
                Ok(unsafe {
                    par_overwrite_chunks(ys.len(), BLOCK, |k, g| {
                        let ys = &ys[k * BLOCK..][..g.len()];
                        let dys = &dys[k * BLOCK..][..g.len()];
                        for ((o, &yv), &dv) in g.iter_mut().zip(ys).zip(dys) {
                            *o = if yv > 0.0 { dv } else { 0.0 };
                        }
                    })
                })
            })
        })?;
        let g = cpu_tensor(g, y.dims())?;
        Ok((Some(g.clone()), Some(g)))
    }
}

/// `relu(a + b)` for same-shape tensors: the engine's fused op for CPU f32, candle's `add` and
/// `relu` elsewhere. Gradients follow PyTorch (zero where the sum is ≤ 0).
///
/// # Errors
/// [`Error::Shape`] when the shapes differ.
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.dims() != b.dims() {
        return Err(Error::Shape {
            op: "add_relu",
            got: b.dims().to_vec(),
            expected: format!("the shape of the other summand, {:?}", a.dims()),
        });
    }
    let cpu_f32 = |t: &Tensor| t.device().is_cpu() && t.dtype() == candle_core::DType::F32;
    if cpu_f32(a) && cpu_f32(b) {
        Ok(a.contiguous()?.apply_op2(&b.contiguous()?, AddReluOp)?)
    } else {
        Ok((a + b)?.relu()?)
    }
}
