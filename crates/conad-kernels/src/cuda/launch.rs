//! Host side of the CUDA kernels: argument marshalling and launches on a cudarc stream, shared by
//! the standalone [`CudaKernels`] (feature `cuda-nvrtc`) and candle's `cuda_fwd` (feature
//! `cuda`).

use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, CudaView, LaunchConfig,
    PushKernelArg,
};
use cudarc::nvrtc::Ptx;

use super::{INFO_NCE_BWD, INFO_NCE_FWD, KNN_MAX_K, KNN_TOPK, arch_for_capability, cached_ptx};
use super::{driver_available, driver_err, nvrtc_available};
use crate::error::{Error, Result};
use crate::info_nce::{
    FusedInfoNceConfig, Output, PositiveReduction, RowIds, Spec, Target, build_shared_spec,
};

/// Threads per block of every tile kernel (`THREADS` in `common.cuh`).
const THREADS: u32 = 256;
/// Rows per tile (`TILE`).
const TILE: usize = 64;

/// The InfoNCE kernels of one context.
#[derive(Debug, Clone)]
pub(crate) struct InfoNceFunctions {
    pub fwd: CudaFunction,
    pub mean: CudaFunction,
    pub coefs: CudaFunction,
    pub bwd: CudaFunction,
}

/// The kNN kernels of one context.
#[derive(Debug, Clone)]
pub(crate) struct KnnFunctions {
    pub partial: CudaFunction,
    pub merge: CudaFunction,
}

/// Ids and positive counts on the device.
#[derive(Debug)]
pub(crate) struct DeviceIds {
    q_inst: CudaSlice<i64>,
    q_lab: CudaSlice<i64>,
    /// `None` when keys are the anchors' rows (shared `z`).
    keys: Option<(CudaSlice<i64>, CudaSlice<i64>)>,
    counts: CudaSlice<u32>,
}

impl DeviceIds {
    fn keys(&self) -> (&CudaSlice<i64>, &CudaSlice<i64>) {
        self.keys
            .as_ref()
            .map_or((&self.q_inst, &self.q_lab), |(i, l)| (i, l))
    }
}

/// What the forward pass leaves for the backward pass.
#[derive(Debug)]
pub(crate) struct DeviceStats {
    ids: DeviceIds,
    lse: CudaSlice<f32>,
    lse_pos: CudaSlice<f32>,
}

/// Per-row backward coefficients.
#[derive(Debug)]
struct DeviceCoefs {
    a: CudaSlice<f32>,
    b: CudaSlice<f32>,
    l: CudaSlice<f32>,
    lp: CudaSlice<f32>,
}

fn blocks(n: usize, per_block: usize) -> Result<u32> {
    u32::try_from(n.div_ceil(per_block)).map_err(|_| Error::Cuda {
        reason: format!("{n} rows exceed the grid size"),
    })
}

fn int(n: usize, what: &str) -> Result<i32> {
    i32::try_from(n).map_err(|_| Error::Cuda {
        reason: format!("{what} = {n} does not fit the kernels' 32-bit indices"),
    })
}

fn cfg(grid: u32, block: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (grid, 1, 1),
        block_dim: (block, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn upload<T: cudarc::driver::DeviceRepr>(
    stream: &Arc<CudaStream>,
    v: &[T],
) -> Result<CudaSlice<T>> {
    stream.clone_htod(v).map_err(|e| driver_err("upload", e))
}

fn zeros<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
    stream: &Arc<CudaStream>,
    n: usize,
) -> Result<CudaSlice<T>> {
    stream
        .alloc_zeros::<T>(n.max(1))
        .map_err(|e| driver_err("alloc", e))
}

fn upload_ids(stream: &Arc<CudaStream>, spec: &Spec) -> Result<DeviceIds> {
    let a = &spec.anchor_ids;
    let keys = match &spec.key_ids {
        Some(k) => Some((
            upload(stream, k.instances())?,
            upload(stream, k.labels_or_instances())?,
        )),
        None => None,
    };
    Ok(DeviceIds {
        q_inst: upload(stream, a.instances())?,
        q_lab: upload(stream, a.labels_or_instances())?,
        keys,
        counts: upload(stream, &spec.counts)?,
    })
}

/// Runs the forward kernels: returns the op's output (scalar or per-anchor) and the statistics.
pub(crate) fn info_nce_forward(
    stream: &Arc<CudaStream>,
    f: &InfoNceFunctions,
    spec: &Spec,
    q: &CudaView<'_, f32>,
    k: &CudaView<'_, f32>,
    d: usize,
) -> Result<(CudaSlice<f32>, DeviceStats)> {
    let m = spec.m;
    let n = k.len() / d.max(1);
    let ids = upload_ids(stream, spec)?;
    let mut loss = zeros::<f32>(stream, m)?;
    let mut lse = zeros::<f32>(stream, m)?;
    let mut lse_pos = zeros::<f32>(stream, m)?;
    let (m_i, n_i, d_i) = (int(m, "anchors")?, int(n, "keys")?, int(d, "d")?);
    let shared = i32::from(spec.shared());
    let (pr, dr, red) = (
        spec.rules.positives.code(),
        spec.rules.denominator.code(),
        spec.reduction.code(),
    );
    let inv_tau = (1.0 / spec.temperature) as f32;
    let (k_inst, k_lab) = ids.keys();
    let mut b = stream.launch_builder(&f.fwd);
    b.arg(q)
        .arg(&m_i)
        .arg(k)
        .arg(&n_i)
        .arg(&d_i)
        .arg(&ids.q_inst)
        .arg(&ids.q_lab)
        .arg(k_inst)
        .arg(k_lab)
        .arg(&ids.counts)
        .arg(&shared)
        .arg(&pr)
        .arg(&dr)
        .arg(&red)
        .arg(&inv_tau)
        .arg(&mut loss)
        .arg(&mut lse)
        .arg(&mut lse_pos);
    // SAFETY: argument types and order match `info_nce_fwd`; buffers hold m anchors, n keys of
    // d floats, and m outputs each.
    unsafe { b.launch(cfg(blocks(m, TILE)?, THREADS)) }
        .map_err(|e| driver_err("info_nce_fwd", e))?;
    let out = match spec.output {
        Output::Mean { denominator } => {
            let mut out = zeros::<f32>(stream, 1)?;
            let scale = 1.0 / denominator as f64;
            let mut b = stream.launch_builder(&f.mean);
            b.arg(&loss).arg(&m_i).arg(&scale).arg(&mut out);
            // SAFETY: matches `info_nce_mean`; `loss` has m entries, `out` one.
            unsafe { b.launch(cfg(1, THREADS)) }.map_err(|e| driver_err("info_nce_mean", e))?;
            out
        }
        Output::PerAnchor => loss,
    };
    Ok((out, DeviceStats { ids, lse, lse_pos }))
}

#[allow(clippy::too_many_arguments)]
fn coefs(
    stream: &Arc<CudaStream>,
    f: &InfoNceFunctions,
    spec: &Spec,
    stats: &DeviceStats,
    grad: &CudaView<'_, f32>,
    n_total: usize,
) -> Result<DeviceCoefs> {
    let mut c = DeviceCoefs {
        a: zeros(stream, n_total)?,
        b: zeros(stream, n_total)?,
        l: zeros(stream, n_total)?,
        lp: zeros(stream, n_total)?,
    };
    let (is_scalar, scale) = match spec.output {
        Output::Mean { denominator } => (1i32, 1.0 / denominator as f64),
        Output::PerAnchor => (0i32, 1.0),
    };
    let (m_i, n_i, red) = (
        int(spec.m, "anchors")?,
        int(n_total, "rows")?,
        spec.reduction.code(),
    );
    let mut b = stream.launch_builder(&f.coefs);
    b.arg(grad)
        .arg(&is_scalar)
        .arg(&scale)
        .arg(&stats.ids.counts)
        .arg(&stats.lse)
        .arg(&stats.lse_pos)
        .arg(&m_i)
        .arg(&n_i)
        .arg(&red)
        .arg(&mut c.a)
        .arg(&mut c.b)
        .arg(&mut c.l)
        .arg(&mut c.lp);
    // SAFETY: matches `info_nce_coefs`; every output has n_total entries, inputs m.
    unsafe { b.launch(cfg(blocks(n_total, THREADS as usize)?, THREADS)) }
        .map_err(|e| driver_err("info_nce_coefs", e))?;
    Ok(c)
}

/// Runs the backward kernels for `target`: `dz` (shared), `dq` or `dk`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn info_nce_backward(
    stream: &Arc<CudaStream>,
    f: &InfoNceFunctions,
    spec: &Spec,
    stats: &DeviceStats,
    target: Target,
    q: &CudaView<'_, f32>,
    k: &CudaView<'_, f32>,
    d: usize,
    grad: &CudaView<'_, f32>,
) -> Result<CudaSlice<f32>> {
    let m = spec.m;
    let n = k.len() / d.max(1);
    let (k_inst, k_lab) = stats.ids.keys();
    let q_ids = (&stats.ids.q_inst, &stats.ids.q_lab);
    // (rows, n_rows, row ids, cols, n_cols, col ids, row term, col term, coefficient rows)
    let (rows, n_rows, r_ids, cols, n_cols, c_ids, row_terms, col_terms, n_coef) = match target {
        Target::Shared => (k, n, (k_inst, k_lab), k, n, (k_inst, k_lab), 1i32, 1i32, n),
        Target::Anchors => (q, m, q_ids, k, n, (k_inst, k_lab), 1, 0, m),
        Target::Keys => (k, n, (k_inst, k_lab), q, m, q_ids, 0, 1, m),
    };
    let c = coefs(stream, f, spec, stats, grad, n_coef)?;
    let mut out = zeros::<f32>(stream, n_rows * d)?;
    let (nr, nc, d_i) = (int(n_rows, "rows")?, int(n_cols, "cols")?, int(d, "d")?);
    let shared = i32::from(spec.shared());
    let (pr, dr) = (spec.rules.positives.code(), spec.rules.denominator.code());
    let log_sum = i32::from(spec.reduction != PositiveReduction::MeanLogProb);
    let inv_tau = (1.0 / spec.temperature) as f32;
    let mut b = stream.launch_builder(&f.bwd);
    b.arg(rows)
        .arg(&nr)
        .arg(cols)
        .arg(&nc)
        .arg(&d_i)
        .arg(r_ids.0)
        .arg(r_ids.1)
        .arg(c_ids.0)
        .arg(c_ids.1)
        .arg(&row_terms)
        .arg(&c.a)
        .arg(&c.b)
        .arg(&c.l)
        .arg(&c.lp)
        .arg(&col_terms)
        .arg(&c.a)
        .arg(&c.b)
        .arg(&c.l)
        .arg(&c.lp)
        .arg(&shared)
        .arg(&pr)
        .arg(&dr)
        .arg(&log_sum)
        .arg(&inv_tau)
        .arg(&mut out);
    // SAFETY: matches `info_nce_bwd`; the coefficient arrays index the anchor side (rows for the
    // row term, columns for the column term), which has n_coef entries; `out` is n_rows × d.
    unsafe { b.launch(cfg(blocks(n_rows, TILE)?, THREADS)) }
        .map_err(|e| driver_err("info_nce_bwd", e))?;
    Ok(out)
}

/// Top-k results, row-major `queries × k`, best first.
#[derive(Clone, Debug, PartialEq)]
pub struct TopK {
    /// `k`.
    pub k: usize,
    /// Similarities.
    pub values: Vec<f32>,
    /// Bank rows.
    pub indices: Vec<u32>,
}

pub(crate) fn knn_topk(
    stream: &Arc<CudaStream>,
    f: &KnnFunctions,
    queries: &CudaView<'_, f32>,
    bank: &CudaView<'_, f32>,
    d: usize,
    k: usize,
) -> Result<(CudaSlice<f32>, CudaSlice<i32>)> {
    let nq = queries.len() / d.max(1);
    let nb = bank.len() / d.max(1);
    if k == 0 || k > KNN_MAX_K || k > nb {
        return Err(Error::InvalidK {
            k,
            max: KNN_MAX_K,
            bank: nb,
        });
    }
    let mut part_val = zeros::<f32>(stream, nq * 4 * k)?;
    let mut part_idx = zeros::<i32>(stream, nq * 4 * k)?;
    let (nq_i, nb_i, d_i, k_i) = (
        int(nq, "queries")?,
        int(nb, "bank rows")?,
        int(d, "d")?,
        int(k, "k")?,
    );
    let mut b = stream.launch_builder(&f.partial);
    b.arg(queries)
        .arg(&nq_i)
        .arg(bank)
        .arg(&nb_i)
        .arg(&d_i)
        .arg(&k_i)
        .arg(&mut part_val)
        .arg(&mut part_idx);
    // SAFETY: matches `knn_topk_partial`; partial buffers hold nq × 4 × k entries.
    unsafe { b.launch(cfg(blocks(nq, TILE)?, THREADS)) }
        .map_err(|e| driver_err("knn_topk_partial", e))?;
    let mut values = zeros::<f32>(stream, nq * k)?;
    let mut indices = zeros::<i32>(stream, nq * k)?;
    let mut b = stream.launch_builder(&f.merge);
    b.arg(&part_val)
        .arg(&part_idx)
        .arg(&nq_i)
        .arg(&k_i)
        .arg(&mut values)
        .arg(&mut indices);
    // SAFETY: matches `knn_topk_merge`; outputs hold nq × k entries.
    unsafe { b.launch(cfg(blocks(nq, 128)?, 128)) }.map_err(|e| driver_err("knn_topk_merge", e))?;
    Ok((values, indices))
}

/// Loads the module compiled from `source` for the device of `ctx`.
fn load(ctx: &Arc<CudaContext>, source: &super::KernelSource) -> Result<Arc<CudaModule>> {
    let (major, minor) = ctx
        .compute_capability()
        .map_err(|e| driver_err("compute capability", e))?;
    let ptx = cached_ptx(source, arch_for_capability(major, minor))?;
    ctx.load_module(Ptx::from_src(ptx.as_str()))
        .map_err(|e| driver_err(&format!("loading {}", source.name), e))
}

fn function(module: &Arc<CudaModule>, name: &str) -> Result<CudaFunction> {
    module
        .load_function(name)
        .map_err(|e| driver_err(&format!("kernel {name}"), e))
}

/// The crate's kernels loaded on one device, for use without candle (kNN scoring, tests,
/// benchmarks).
#[derive(Debug)]
pub struct CudaKernels {
    stream: Arc<CudaStream>,
    info_nce: InfoNceFunctions,
    knn: KnnFunctions,
}

impl CudaKernels {
    /// Opens device `ordinal`, compiles (NVRTC, cached per process) and loads every kernel.
    ///
    /// # Errors
    /// [`Error::Cuda`] if libcuda or libnvrtc cannot be opened, there is no such device, or a
    /// kernel does not compile or load.
    pub fn new(ordinal: usize) -> Result<Self> {
        if !driver_available() {
            return Err(Error::Cuda {
                reason: "libcuda (the NVIDIA driver) not found".into(),
            });
        }
        if !nvrtc_available() {
            return Err(Error::Cuda {
                reason: "libnvrtc not found (pip install nvidia-cuda-nvrtc-cu12 and add its lib \
                         directory to LD_LIBRARY_PATH)"
                    .into(),
            });
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| driver_err("opening the device", e))?;
        let fwd = load(&ctx, &INFO_NCE_FWD)?;
        let bwd = load(&ctx, &INFO_NCE_BWD)?;
        let knn = load(&ctx, &KNN_TOPK)?;
        Ok(Self {
            stream: ctx.default_stream(),
            info_nce: InfoNceFunctions {
                fwd: function(&fwd, "info_nce_fwd")?,
                mean: function(&fwd, "info_nce_mean")?,
                coefs: function(&bwd, "info_nce_coefs")?,
                bwd: function(&bwd, "info_nce_bwd")?,
            },
            knn: KnnFunctions {
                partial: function(&knn, "knn_topk_partial")?,
                merge: function(&knn, "knn_topk_merge")?,
            },
        })
    }

    /// The stream every launch goes to.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The fused InfoNCE on host data: the mean loss of [`crate::fused_info_nce`] and `dz` (its
    /// gradient), computed by the CUDA kernels in f32.
    ///
    /// # Shapes
    /// `z`: `n × d` row-major, `ids`: `n` rows → `(loss, dz)` with `dz` `n × d`.
    ///
    /// # Errors
    /// As [`crate::fused_info_nce`]; [`Error::Cuda`] on a launch or copy failure.
    pub fn info_nce(
        &self,
        z: &[f32],
        d: usize,
        ids: &RowIds,
        config: &FusedInfoNceConfig,
    ) -> Result<(f32, Vec<f32>)> {
        if d == 0 || !z.len().is_multiple_of(d) || z.is_empty() {
            return Err(Error::Shape {
                what: "z",
                got: vec![z.len(), d],
                expected: "n·d values with n, d ≥ 1".into(),
            });
        }
        if let Some(i) = z.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "z",
                row: i / d,
                col: i % d,
                value: f64::from(z[i]),
            });
        }
        let spec = build_shared_spec(z.len() / d, ids, config, false)?;
        let s = &self.stream;
        let z_dev = upload(s, z)?;
        let q = z_dev.slice(0..spec.m * d);
        let k = z_dev.slice(..);
        let (out, stats) = info_nce_forward(s, &self.info_nce, &spec, &q, &k, d)?;
        let one = upload(s, &[1.0f32])?;
        let dz = info_nce_backward(
            s,
            &self.info_nce,
            &spec,
            &stats,
            Target::Shared,
            &q,
            &k,
            d,
            &one.slice(..),
        )?;
        let loss = s.clone_dtoh(&out).map_err(|e| driver_err("download", e))?;
        let dz = s.clone_dtoh(&dz).map_err(|e| driver_err("download", e))?;
        Ok((loss[0], dz))
    }

    /// The `k` most similar bank rows of every query (dot products; pass L2-normalised rows
    /// for cosines), best first, ties by smaller bank index.
    ///
    /// # Shapes
    /// `bank`: `n_bank × d`, `queries`: `n_q × d` (row-major) → `n_q × k`.
    ///
    /// # Errors
    /// [`Error::InvalidK`] unless `1 ≤ k ≤ min(32, n_bank)`; [`Error::Shape`] for lengths that
    /// are not multiples of `d`; [`Error::NonFinite`]; [`Error::Cuda`].
    pub fn knn_topk(&self, bank: &[f32], queries: &[f32], d: usize, k: usize) -> Result<TopK> {
        for (what, x) in [("bank", bank), ("queries", queries)] {
            if d == 0 || x.is_empty() || !x.len().is_multiple_of(d) {
                return Err(Error::Shape {
                    what,
                    got: vec![x.len(), d],
                    expected: "n·d values with n, d ≥ 1".into(),
                });
            }
            if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    what,
                    row: i / d,
                    col: i % d,
                    value: f64::from(x[i]),
                });
            }
        }
        let s = &self.stream;
        let bank_dev = upload(s, bank)?;
        let q_dev = upload(s, queries)?;
        let (values, indices) =
            knn_topk(s, &self.knn, &q_dev.slice(..), &bank_dev.slice(..), d, k)?;
        let values = s
            .clone_dtoh(&values)
            .map_err(|e| driver_err("download", e))?;
        let indices = s
            .clone_dtoh(&indices)
            .map_err(|e| driver_err("download", e))?;
        Ok(TopK {
            k,
            values,
            indices: indices.into_iter().map(|i| i as u32).collect(),
        })
    }

    /// [`CudaKernels::knn_topk`] on device buffers already on this stream's device.
    ///
    /// # Errors
    /// [`Error::InvalidK`], [`Error::Cuda`].
    pub fn knn_topk_device(
        &self,
        bank: &CudaSlice<f32>,
        queries: &CudaSlice<f32>,
        d: usize,
        k: usize,
    ) -> Result<(CudaSlice<f32>, CudaSlice<i32>)> {
        knn_topk(
            &self.stream,
            &self.knn,
            &queries.slice(..),
            &bank.slice(..),
            d,
            k,
        )
    }
}
