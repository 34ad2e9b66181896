//! Optimisers on candle [`Var`]s (docs/reference.md §7 "Training schedules"): SGD (momentum, Nesterov,
//! coupled weight decay), Adam, AdamW (decoupled decay) and LARS over SGD (CSI).
//!
//! The update runs **in place on the parameter's CPU storage** through a candle
//! [`InplaceOp2`]: one pass over contiguous f32 slices per parameter, no temporary tensors
//! (candle-nn's AdamW issues ~10 tensor ops per parameter and allocates for each). On other
//! devices the parameter and gradient are copied to the host, updated there and written back.
//! Arithmetic follows PyTorch 1.13 (golden tests in `tests/optim_golden.rs`, to 1e-6).
//!
//! Parameters without a gradient in a step are left untouched (no decay, no state update), as in
//! PyTorch. Batch-norm running statistics are variables of the [`VarMap`] but never parameters:
//! [`Optimizer::from_varmap`] leaves them out (see [`is_batch_norm_statistic`]).
//!
//! State (momentum buffers, Adam moments, per-parameter step counts) round-trips through
//! [`Optimizer::state_tensors`] / [`Optimizer::state_meta`] and [`Optimizer::load_state`], which
//! the trainer stores in the checkpoint for bit-exact resume.

mod adam;
mod lars;
mod sgd;

use std::cell::RefCell;
use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, Device, InplaceOp2, Layout, Tensor, Var};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

pub use adam::AdamConfig;
pub use lars::LarsConfig;
pub use sgd::SgdConfig;

use crate::error::{Error, Result};
use adam::{AdamStep, adam_update};
use lars::lars_update;
use sgd::sgd_update;

/// Which optimiser, with its hyper-parameters. The learning rate (and OneCycle's momentum) come
/// from the [`crate::LrSchedule`] at every step.
///
/// TOML: `[optimizer]` with `kind = "sgd" | "adam" | "adam_w" | "lars"` and the fields of the
/// variant's struct.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// [`SgdConfig`].
    Sgd(SgdConfig),
    /// Adam with coupled L2 decay ([`AdamConfig`]).
    Adam(AdamConfig),
    /// AdamW with decoupled decay ([`AdamConfig`]).
    #[serde(rename = "adam_w", alias = "adamw")]
    AdamW(AdamConfig),
    /// LARS over SGD ([`LarsConfig`]).
    Lars(LarsConfig),
}

impl Default for OptimizerConfig {
    /// AdamW(β = (0.9, 0.999), ε 1e-8, decay 1e-3) — CON2's optimiser.
    fn default() -> Self {
        Self::AdamW(AdamConfig::default())
    }
}

impl OptimizerConfig {
    /// Checks the variant's ranges.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Sgd(c) => c.validate(),
            Self::Adam(c) | Self::AdamW(c) => c.validate(),
            Self::Lars(c) => c.validate(),
        }
    }

    /// The `kind` tag (`sgd`, `adam`, `adam_w`, `lars`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sgd(_) => "sgd",
            Self::Adam(_) => "adam",
            Self::AdamW(_) => "adam_w",
            Self::Lars(_) => "lars",
        }
    }

    /// Names of the per-parameter state buffers, in storage order.
    fn buffer_names(&self) -> &'static [&'static str] {
        match self {
            Self::Sgd(c) if c.momentum == 0.0 => &[],
            Self::Sgd(_) | Self::Lars(_) => &["momentum_buffer"],
            Self::Adam(_) | Self::AdamW(_) => &["exp_avg", "exp_avg_sq"],
        }
    }
}

/// `true` for batch-norm running statistics (`…running_mean`, `…running_var`), which are
/// variables but not trainable parameters.
pub fn is_batch_norm_statistic(name: &str) -> bool {
    name.ends_with("running_mean") || name.ends_with("running_var")
}

/// Per-step hyper-parameters from the schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepHyper {
    /// Learning rate of this step.
    pub lr: f64,
    /// Momentum (SGD/LARS μ, Adam β₁) overriding the config for this step (OneCycle's cycling);
    /// `None` keeps the configured value.
    pub momentum: Option<f64>,
}

impl StepHyper {
    /// A step with learning rate `lr` and the configured momentum.
    pub const fn lr(lr: f64) -> Self {
        Self { lr, momentum: None }
    }
}

/// What one [`Optimizer::step`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepStats {
    /// Parameters updated.
    pub updated: usize,
    /// Parameters skipped because they had no gradient.
    pub skipped: usize,
}

/// Scalar optimiser state stored in the checkpoint metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptimizerStateMeta {
    /// The optimiser kind that wrote the state.
    pub kind: String,
    /// Steps taken per parameter (Adam's bias-correction counter; informative for the others).
    pub steps: BTreeMap<String, u64>,
}

#[derive(Debug)]
struct Param {
    name: String,
    var: Var,
    buffers: Vec<Vec<f32>>,
    steps: u64,
}

/// An optimiser over a fixed, name-sorted list of f32 parameters.
#[derive(Debug)]
pub struct Optimizer {
    config: OptimizerConfig,
    params: Vec<Param>,
    scratch: Vec<f32>,
}

impl Optimizer {
    /// An optimiser over `vars` (sorted by name, so the update order never depends on hash
    /// order).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad config or a duplicate name;
    /// [`Error::UnsupportedDType`] for a non-f32 variable.
    pub fn new(config: OptimizerConfig, vars: Vec<(String, Var)>) -> Result<Self> {
        config.validate()?;
        let mut vars = vars;
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = vars.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::invalid(
                "optimizer parameters",
                &w[0].0,
                "each parameter name may appear once",
            ));
        }
        let n_buf = config.buffer_names().len();
        let mut params = Vec::with_capacity(vars.len());
        for (name, var) in vars {
            if var.dtype() != DType::F32 {
                return Err(Error::UnsupportedDType {
                    name,
                    dtype: var.dtype(),
                });
            }
            let len = var.elem_count();
            params.push(Param {
                name,
                var,
                buffers: vec![vec![0.0; len]; n_buf],
                steps: 0,
            });
        }
        Ok(Self {
            config,
            params,
            scratch: Vec::new(),
        })
    }

    /// An optimiser over every variable of `varmap` for which `trains(name)` holds, except
    /// batch-norm running statistics.
    ///
    /// # Errors
    /// As [`Optimizer::new`].
    pub fn from_varmap(
        config: OptimizerConfig,
        varmap: &VarMap,
        trains: impl Fn(&str) -> bool,
    ) -> Result<Self> {
        let vars = varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("VarMap lock poisoned".into()))?
            .iter()
            .filter(|(name, _)| !is_batch_norm_statistic(name) && trains(name))
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        Self::new(config, vars)
    }

    /// The configuration.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Names of the trained parameters, sorted.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|p| p.name.as_str())
    }

    /// Number of trained scalars.
    pub fn num_scalars(&self) -> usize {
        self.params.iter().map(|p| p.var.elem_count()).sum()
    }

    /// One update of every parameter that has a gradient in `grads`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a non-finite or negative learning rate or a momentum outside
    /// [0, 1); [`Error::OptimizerState`] if a gradient's shape differs from its parameter's; candle
    /// errors from the storage access.
    pub fn step(&mut self, grads: &GradStore, hyper: StepHyper) -> Result<StepStats> {
        if !(hyper.lr.is_finite() && hyper.lr >= 0.0) {
            return Err(Error::invalid(
                "learning rate",
                hyper.lr,
                "the schedule produced a negative or non-finite learning rate",
            ));
        }
        if let Some(m) = hyper.momentum {
            sgd::check_momentum("schedule momentum", m)?;
        }
        let mut stats = StepStats::default();
        let Self {
            config,
            params,
            scratch,
        } = self;
        for param in params.iter_mut() {
            let Some(grad) = grads.get(param.var.as_tensor()) else {
                stats.skipped += 1;
                continue;
            };
            if grad.dims() != param.var.dims() {
                return Err(Error::OptimizerState {
                    name: param.name.clone(),
                    reason: format!(
                        "gradient has shape {:?}, parameter {:?}",
                        grad.dims(),
                        param.var.dims()
                    ),
                });
            }
            param.steps += 1;
            let t = param.steps;
            let buffers = &mut param.buffers;
            let kernel = |p: &mut [f32], g: &[f32]| {
                update_slice(config, hyper, t, p, g, buffers, scratch);
            };
            apply_in_place(&param.var, &grad.to_dtype(DType::F32)?, kernel)?;
            stats.updated += 1;
        }
        Ok(stats)
    }

    /// The per-parameter buffers as tensors named `<param>.<buffer>` (PyTorch's names:
    /// `momentum_buffer`, `exp_avg`, `exp_avg_sq`), shaped like the parameter, on the CPU.
    ///
    /// # Errors
    /// candle errors.
    pub fn state_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let names = self.config.buffer_names();
        let mut out = Vec::with_capacity(self.params.len() * names.len());
        for p in &self.params {
            for (buf, bname) in p.buffers.iter().zip(names) {
                out.push((
                    format!("{}.{bname}", p.name),
                    Tensor::from_slice(buf, p.var.dims(), &Device::Cpu)?,
                ));
            }
        }
        Ok(out)
    }

    /// Scalar state (kind and step counts).
    pub fn state_meta(&self) -> OptimizerStateMeta {
        OptimizerStateMeta {
            kind: self.config.kind().to_string(),
            steps: self
                .params
                .iter()
                .map(|p| (p.name.clone(), p.steps))
                .collect(),
        }
    }

    /// Restores the state written by [`Optimizer::state_tensors`] / [`Optimizer::state_meta`].
    /// Nothing is changed on error.
    ///
    /// # Errors
    /// [`Error::OptimizerState`] when the kind differs, a buffer or step count is missing, or a
    /// buffer's element count differs from its parameter's.
    pub fn load_state(
        &mut self,
        tensors: &BTreeMap<String, Tensor>,
        meta: &OptimizerStateMeta,
    ) -> Result<()> {
        if meta.kind != self.config.kind() {
            return Err(Error::OptimizerState {
                name: "kind".into(),
                reason: format!(
                    "checkpoint was written by `{}`, the config asks `{}`",
                    meta.kind,
                    self.config.kind()
                ),
            });
        }
        let names = self.config.buffer_names();
        let mut restored = Vec::with_capacity(self.params.len());
        for p in &self.params {
            let steps = *meta
                .steps
                .get(&p.name)
                .ok_or_else(|| Error::OptimizerState {
                    name: p.name.clone(),
                    reason: "no step count in the checkpoint".into(),
                })?;
            let mut bufs = Vec::with_capacity(names.len());
            for bname in names {
                let key = format!("{}.{bname}", p.name);
                let t = tensors.get(&key).ok_or_else(|| Error::OptimizerState {
                    name: key.clone(),
                    reason: "missing from the checkpoint".into(),
                })?;
                if t.elem_count() != p.var.elem_count() {
                    return Err(Error::OptimizerState {
                        name: key,
                        reason: format!(
                            "{} values stored, the parameter has {}",
                            t.elem_count(),
                            p.var.elem_count()
                        ),
                    });
                }
                bufs.push(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?);
            }
            restored.push((steps, bufs));
        }
        for (p, (steps, bufs)) in self.params.iter_mut().zip(restored) {
            p.steps = steps;
            p.buffers = bufs;
        }
        Ok(())
    }
}

/// The arithmetic of one step for one parameter on flat slices.
fn update_slice(
    config: &OptimizerConfig,
    hyper: StepHyper,
    t: u64,
    p: &mut [f32],
    g: &[f32],
    buffers: &mut [Vec<f32>],
    scratch: &mut Vec<f32>,
) {
    let lr = hyper.lr;
    match config {
        OptimizerConfig::Sgd(c) => {
            let momentum = hyper.momentum.unwrap_or(c.momentum) as f32;
            let buf: &mut [f32] = match buffers.first_mut() {
                Some(b) => b,
                None => &mut [],
            };
            // A schedule may set μ > 0 for a config with μ = 0 and no buffer: fall back to plain SGD.
            let momentum = if buf.is_empty() { 0.0 } else { momentum };
            sgd_update(
                p,
                g,
                buf,
                lr as f32,
                momentum,
                c.weight_decay as f32,
                c.nesterov && momentum > 0.0,
            );
        }
        OptimizerConfig::Adam(c) | OptimizerConfig::AdamW(c) => {
            let (m, rest) = buffers.split_at_mut(1);
            let step = AdamStep {
                lr,
                beta1: hyper.momentum.unwrap_or(c.beta1),
                beta2: c.beta2,
                eps: c.eps,
                weight_decay: c.weight_decay,
                decoupled: matches!(config, OptimizerConfig::AdamW(_)),
                t,
            };
            adam_update(p, g, &mut m[0], &mut rest[0], step);
        }
        OptimizerConfig::Lars(c) => {
            scratch.clear();
            scratch.extend_from_slice(g);
            let momentum = hyper.momentum.unwrap_or(c.momentum) as f32;
            lars_update(p, scratch, &mut buffers[0], lr as f32, momentum, c);
        }
    }
}

/// A candle in-place op running `f(param, grad)` on the CPU storage of the parameter.
struct SliceUpdate<F: FnMut(&mut [f32], &[f32])> {
    f: RefCell<F>,
}

impl<F: FnMut(&mut [f32], &[f32])> InplaceOp2 for SliceUpdate<F> {
    fn name(&self) -> &'static str {
        "conad-optimizer-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (CpuStorage::F32(p), CpuStorage::F32(g)) = (s1, s2) else {
            candle_core::bail!("optimizer update: parameter and gradient must both be f32");
        };
        let (Some((p0, p1)), Some((g0, g1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("optimizer update: parameter and gradient must be contiguous");
        };
        if p1 - p0 != g1 - g0 {
            candle_core::bail!(
                "optimizer update: {} parameter values, {} gradient values",
                p1 - p0,
                g1 - g0
            );
        }
        (self.f.borrow_mut())(&mut p[p0..p1], &g[g0..g1]);
        Ok(())
    }
}

/// Runs `f(param, grad)` on `var`'s values: in place on the CPU, through a host copy elsewhere.
fn apply_in_place(var: &Var, grad: &Tensor, mut f: impl FnMut(&mut [f32], &[f32])) -> Result<()> {
    let grad = grad.contiguous()?;
    match var.device() {
        Device::Cpu => {
            let op = SliceUpdate { f: RefCell::new(f) };
            var.as_tensor().inplace_op2(&grad, &op)?;
        }
        device => {
            let mut p = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            let g = grad.flatten_all()?.to_vec1::<f32>()?;
            f(&mut p, &g);
            var.set(&Tensor::from_vec(p, var.dims(), device)?)?;
        }
    }
    Ok(())
}
