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
use crate::cpu_data::{cpu_tensor, storage_slice, with_tensor_slices};
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

    fn core(&self, x: &[usize], w: &[usize]) -> candle_core::Result<ConvBnCore> {
        Ok(ConvBnCore {
            g: ConvGeometry::new(x, w, self.stride, self.padding)
                .map_err(crate::Error::into_candle)?,
            eps: self.eps,
            relu: self.relu,
            saved: self.saved.clone(),
        })
    }
}

/// The arithmetic of conv + batch norm (+ ReLU) on slices, shared by [`ConvBnOp`] and the
/// stem of [`crate::ResidualNetwork`]'s fused op.
#[derive(Clone, Debug)]
pub(crate) struct ConvBnCore {
    pub(crate) g: ConvGeometry,
    pub(crate) eps: f64,
    pub(crate) relu: bool,
    pub(crate) saved: Arc<Mutex<ConvBnSaved>>,
}

/// The input gradient (when asked for), the weight gradient (when asked for), `dγ` and `dβ`.
pub(crate) type ConvBnGrads = (Option<Vec<f32>>, Option<Vec<f32>>, Vec<f32>, Vec<f32>);

fn poisoned() -> candle_core::Error {
    candle_core::Error::Msg("conv-bn state poisoned".into())
}

impl ConvBnCore {
    pub(crate) fn out_shape(&self) -> Shape {
        let g = &self.g;
        Shape::from((g.batch, g.out_channels, g.out_height(), g.out_width()))
    }

    /// `y` from input `x`, weight `w`, `γ`, `β`; keeps the conv output and its statistics.
    pub(crate) fn forward(
        &self,
        name: &str,
        x: &[f32],
        w: &[f32],
        gamma: &[f32],
        beta: &[f32],
    ) -> candle_core::Result<Vec<f32>> {
        let g = &self.g;
        let c = g.out_channels;
        if gamma.len() != c || beta.len() != c {
            candle_core::bail!("{name}: γ and β need {c} values each");
        }
        if x.len() != g.batch * g.in_channels * g.in_pixels() || w.len() != c * g.patch_len() {
            candle_core::bail!("{name}: input or weight size mismatch");
        }
        let z = conv_forward(g, x, w);
        let pixels = g.out_pixels();
        let stats = BatchNormStats::compute(&z, g.batch, c, pixels);
        let y = batch_norm_forward(
            &z, g.batch, pixels, &stats, gamma, beta, self.eps, self.relu,
        );
        let mut saved = self.saved.lock().map_err(|_| poisoned())?;
        saved.z = Some(Arc::new(z));
        saved.stats = Some(Arc::new(stats));
        Ok(y)
    }

    /// The gradients from input `xs`, weight `ws`, `γ`, output `ys` and output gradient `dys`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward(
        &self,
        name: &str,
        xs: &[f32],
        ws: &[f32],
        gamma: &[f32],
        ys: &[f32],
        dys: &[f32],
        need_dx: bool,
        need_dw: bool,
    ) -> candle_core::Result<ConvBnGrads> {
        let g = &self.g;
        let (z, stats) = {
            let saved = self.saved.lock().map_err(|_| poisoned())?;
            (saved.z.clone(), saved.stats.clone())
        };
        let (Some(z), Some(stats)) = (z, stats) else {
            candle_core::bail!("{name}: backward before forward");
        };
        let (dz, dgamma, dbeta) = batch_norm_backward(
            &z,
            ys,
            dys,
            g.batch,
            g.out_pixels(),
            &stats,
            gamma,
            self.eps,
            self.relu,
        );
        let (dx, dw) = conv_backward(g, xs, ws, &dz, need_dx, need_dw);
        Ok((dx, dw, dgamma, dbeta))
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
        let core = self.core(l1.dims(), l2.dims())?;
        let x = storage_slice(self.name(), s1, l1)?;
        let w = storage_slice(self.name(), s2, l2)?;
        let gb = storage_slice(self.name(), s3, l3)?;
        let c = core.g.out_channels;
        if gb.len() != 2 * c {
            candle_core::bail!("{}: [γ; β] needs {} values", self.name(), 2 * c);
        }
        let y = core.forward(self.name(), x, w, &gb[..c], &gb[c..])?;
        Ok((CpuStorage::F32(y), core.out_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        gb: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let core = self.core(x.dims(), w.dims())?;
        let c = core.g.out_channels;
        let all = [x, w, gb, y, dy].map(Tensor::clone);
        let (dx, dw, mut dgb, dbeta) = with_tensor_slices(self.name(), &all, |s| {
            core.backward(
                self.name(),
                s[0],
                s[1],
                &s[2][..c],
                s[3],
                s[4],
                x.track_op(),
                w.track_op(),
            )
        })?;
        dgb.extend_from_slice(&dbeta);
        let dx = dx.map(|v| cpu_tensor(v, x.dims())).transpose()?;
        let dw = dw.map(|v| cpu_tensor(v, w.dims())).transpose()?;
        Ok((dx, dw, Some(cpu_tensor(dgb, 2 * c)?)))
    }
}
