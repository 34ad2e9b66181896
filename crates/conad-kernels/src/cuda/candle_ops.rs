//! candle integration (feature `cuda`): the CUDA side of the fused InfoNCE ops' `cuda_fwd`
//! (called by the op glue in [`crate::info_nce`]) on `CudaStorage`.
//!
//! Kernels are compiled by NVRTC for the device's compute capability (cached per process) and
//! loaded once per device through `CudaDevice::get_or_load_custom_func`. The forward pass returns
//! its per-anchor statistics, which stay on the device, for the glue to hand to the backward.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::CudaView;
use candle_core::{CudaDevice, CudaStorage, DType, Layout, Shape};

use super::launch::{DeviceStats, InfoNceFunctions, info_nce_backward, info_nce_forward};
use super::{INFO_NCE_BWD, INFO_NCE_FWD, arch_for_capability, cached_ptx};
use crate::info_nce::{Output, Spec, Target};

fn wrap(e: crate::Error) -> candle_core::Error {
    candle_core::Error::wrap(e)
}

fn functions(dev: &CudaDevice) -> candle_core::Result<InfoNceFunctions> {
    let stream = dev.cuda_stream();
    let (major, minor) = stream
        .context()
        .compute_capability()
        .map_err(candle_core::Error::wrap)?;
    let arch = arch_for_capability(major, minor);
    let fwd = cached_ptx(&INFO_NCE_FWD, arch).map_err(wrap)?;
    let bwd = cached_ptx(&INFO_NCE_BWD, arch).map_err(wrap)?;
    let get = |name: &str, module: &str, ptx: &str| {
        dev.get_or_load_custom_func(name, module, ptx)
            .map(|f| f.into_cuda_function())
    };
    Ok(InfoNceFunctions {
        fwd: get("info_nce_fwd", "conad_info_nce_fwd", &fwd)?,
        mean: get("info_nce_mean", "conad_info_nce_fwd", &fwd)?,
        coefs: get("info_nce_coefs", "conad_info_nce_bwd", &bwd)?,
        bwd: get("info_nce_bwd", "conad_info_nce_bwd", &bwd)?,
    })
}

/// The contiguous f32 view of a storage.
fn view<'a>(s: &'a CudaStorage, l: &Layout, what: &str) -> candle_core::Result<CudaView<'a, f32>> {
    if s.dtype() != DType::F32 {
        candle_core::bail!(
            "fused InfoNCE on CUDA takes F32 {what}, got {:?}",
            s.dtype()
        );
    }
    let Some((start, end)) = l.contiguous_offsets() else {
        candle_core::bail!("fused InfoNCE: {what} must be contiguous");
    };
    Ok(s.as_cuda_slice::<f32>()?.slice(start..end))
}

/// Forward of the shared op (`keys = None`, anchors are the leading rows of `z`) or the pair op:
/// the op's output and the statistics for the backward (left on the device).
pub(crate) fn forward(
    spec: &Spec,
    (s1, l1): (&CudaStorage, &Layout),
    keys: Option<(&CudaStorage, &Layout)>,
) -> candle_core::Result<(CudaStorage, Shape, DeviceStats)> {
    let dev = s1.device().clone();
    let f = functions(&dev)?;
    let stream = dev.cuda_stream();
    let d = l1.dims()[1];
    let first = view(s1, l1, "z")?;
    let (q, k) = match keys {
        None => (first.slice(0..spec.m * d), first),
        Some((s2, l2)) => (first, view(s2, l2, "keys")?),
    };
    let (out, stats) = info_nce_forward(&stream, &f, spec, &q, &k, d).map_err(wrap)?;
    let shape = match spec.output {
        Output::Mean { .. } => Shape::from(()),
        Output::PerAnchor => Shape::from(spec.m),
    };
    Ok((CudaStorage::wrap_cuda_slice(out, dev), shape, stats))
}

/// Backward from the forward's statistics: `dz` (shared), `dq` or `dk` (pair; `keys` given).
pub(crate) fn backward(
    spec: &Spec,
    stats: &DeviceStats,
    target: Target,
    (s1, l1): (&CudaStorage, &Layout),
    keys: Option<(&CudaStorage, &Layout)>,
    (sg, lg): (&CudaStorage, &Layout),
) -> candle_core::Result<(CudaStorage, Shape)> {
    let dev = s1.device().clone();
    let f = functions(&dev)?;
    let stream = dev.cuda_stream();
    let d = l1.dims()[1];
    let first = view(s1, l1, "z")?;
    let (q, k) = match keys {
        None => (first.slice(0..spec.m * d), first),
        Some((s2, l2)) => (first, view(s2, l2, "keys")?),
    };
    let grad = view(sg, lg, "gradient")?;
    let out =
        info_nce_backward(&stream, &f, spec, stats, target, &q, &k, d, &grad).map_err(wrap)?;
    let rows = out.len() / d.max(1);
    Ok((
        CudaStorage::wrap_cuda_slice(out, dev),
        Shape::from((rows, d)),
    ))
}
