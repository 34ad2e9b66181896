//! Fused convolution + training-mode batch norm (+ ReLU) as one candle `CustomOp3` on
//! `(x, w, [γ; β])`.
//!
//! candle's autograd materialises a zero tensor and an addition for every gradient it stores
//! (`GradStore::or_insert` + `add`), so each graph node with a large output costs two extra
//! passes over memory in the backward pass. Fusing the convolution with the batch norm that
//! follows it removes the conv output's node: the op keeps the conv output `z` and the batch
//! statistics from its forward pass and runs batch-norm backward then conv backward in one go.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use crate::batch_norm_op::{BatchNormStats, batch_norm_backward, batch_norm_forward};
use crate::conv_backward::conv_backward;
use crate::conv_forward::conv_forward;
use crate::cpu_data::{cpu_tensor, storage_slice, with_tensor_slice};
use crate::geometry::ConvGeometry;

/// What the forward pass leaves for the backward pass: the conv output and its statistics.
#[derive(Debug, Default)]
pub struct ConvBnSaved {
    z: Option<Arc<Vec<f32>>>,
    stats: Option<Arc<BatchNormStats>>,
}

impl ConvBnSaved {
    /// The batch statistics of the last forward pass.
    pub fn stats(&self) -> Option<Arc<BatchNormStats>> {
        self.stats.clone()
    }
}

/// `bn(conv2d(x, w))` with batch statistics, then a ReLU when `relu`; the third argument is
/// `[γ; β]` (length `2·O`). CPU f32 only.
#[derive(Clone, Debug)]
pub struct ConvBnOp {
    stride: usize,
    padding: usize,
    eps: f64,
    relu: bool,
    saved: Arc<Mutex<ConvBnSaved>>,
}

impl ConvBnOp {
    /// A new op; `saved` receives the conv output and statistics of the forward pass.
    pub fn new(
        stride: usize,
        padding: usize,
        eps: f64,
        relu: bool,
        saved: Arc<Mutex<ConvBnSaved>>,
    ) -> Self {
        Self {
            stride,
            padding,
            eps,
            relu,
            saved,
        }
    }

    fn geometry(&self, x: &[usize], w: &[usize]) -> candle_core::Result<ConvGeometry> {
        ConvGeometry::new(x, w, self.stride, self.padding).map_err(crate::Error::into_candle)
    }
}

impl CustomOp3 for ConvBnOp {
    fn name(&self) -> &'static str {
        "conad-conv-batch-norm"
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
        let g = self.geometry(l1.dims(), l2.dims())?;
        let x = storage_slice(self.name(), s1, l1)?;
        let w = storage_slice(self.name(), s2, l2)?;
        let gb = storage_slice(self.name(), s3, l3)?;
        let c = g.out_channels;
        if gb.len() != 2 * c {
            candle_core::bail!("{}: [γ; β] needs {} values", self.name(), 2 * c);
        }
        let z = conv_forward(&g, x, w);
        let pixels = g.out_pixels();
        let stats = BatchNormStats::compute(&z, g.batch, c, pixels);
        let y = batch_norm_forward(
            &z,
            g.batch,
            pixels,
            &stats,
            &gb[..c],
            &gb[c..],
            self.eps,
            self.relu,
        );
        let mut saved = self
            .saved
            .lock()
            .map_err(|_| candle_core::Error::Msg("conv-bn state poisoned".into()))?;
        saved.z = Some(Arc::new(z));
        saved.stats = Some(Arc::new(stats));
        let shape = Shape::from((g.batch, c, g.out_height(), g.out_width()));
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        gb: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.geometry(x.dims(), w.dims())?;
        let c = g.out_channels;
        let pixels = g.out_pixels();
        let name = self.name();
        let (z, stats) = {
            let saved = self
                .saved
                .lock()
                .map_err(|_| candle_core::Error::Msg("conv-bn state poisoned".into()))?;
            (saved.z.clone(), saved.stats.clone())
        };
        let (Some(z), Some(stats)) = (z, stats) else {
            candle_core::bail!("{name}: backward before forward");
        };
        let (dx, dw, dgb) = with_tensor_slice(name, x, |xs| {
            with_tensor_slice(name, w, |ws| {
                with_tensor_slice(name, gb, |gbs| {
                    let dz = with_tensor_slice(name, y, |ys| {
                        with_tensor_slice(name, dy, |dys| {
                            Ok(batch_norm_backward(
                                &z,
                                ys,
                                dys,
                                g.batch,
                                pixels,
                                &stats,
                                &gbs[..c],
                                self.eps,
                                self.relu,
                            ))
                        })
                    })?;
                    let (dzv, dgamma, dbeta) = dz;
                    let (dx, dw) = conv_backward(&g, xs, ws, &dzv, x.track_op(), w.track_op());
                    let mut dgb = dgamma;
                    dgb.extend_from_slice(&dbeta);
                    Ok((dx, dw, dgb))
                })
            })
        })?;
        let dx = dx.map(|v| cpu_tensor(v, x.dims())).transpose()?;
        let dw = dw.map(|v| cpu_tensor(v, w.dims())).transpose()?;
        Ok((dx, dw, Some(cpu_tensor(dgb, 2 * c)?)))
    }
}
