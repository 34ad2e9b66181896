//! The convolution as a candle custom op (`CustomOp2` on `(x, w)`) with its own CPU forward
//! ([`crate::conv_forward`]) and backward ([`crate::conv_backward`]).

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::conv_backward::conv_backward;
use crate::conv_forward::conv_forward;
use crate::cpu_data::{cpu_tensor, storage_slice, with_tensor_slice};
use crate::geometry::ConvGeometry;

/// `conv2d(x, w)` without bias or dilation, CPU f32 only.
#[derive(Clone, Copy, Debug)]
pub struct Conv2dOp {
    /// Stride.
    pub stride: usize,
    /// Zero padding.
    pub padding: usize,
}

impl Conv2dOp {
    fn geometry(&self, x: &[usize], w: &[usize]) -> candle_core::Result<ConvGeometry> {
        ConvGeometry::new(x, w, self.stride, self.padding).map_err(crate::Error::into_candle)
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "conad-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.geometry(l1.dims(), l2.dims())?;
        let x = storage_slice(self.name(), s1, l1)?;
        let w = storage_slice(self.name(), s2, l2)?;
        let y = conv_forward(&g, x, w);
        let shape = Shape::from((g.batch, g.out_channels, g.out_height(), g.out_width()));
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.geometry(x.dims(), w.dims())?;
        let (need_dx, need_dw) = (x.track_op(), w.track_op());
        let (dx, dw) = with_tensor_slice(self.name(), x, |xs| {
            with_tensor_slice(self.name(), w, |ws| {
                with_tensor_slice(self.name(), dy, |dys| {
                    Ok(conv_backward(&g, xs, ws, dys, need_dx, need_dw))
                })
            })
        })?;
        let dx = dx.map(|v| cpu_tensor(v, x.dims())).transpose()?;
        let dw = dw.map(|v| cpu_tensor(v, w.dims())).transpose()?;
        Ok((dx, dw))
    }
}
