//! SGD with momentum, Nesterov momentum and coupled (L2) weight decay, in PyTorch 1.13's
//! `torch.optim.SGD` semantics (dampening 0):
//!
//! ```text
//! d  = g + wd·p
//! b  = μ·b + d            (b starts at 0, so the first step stores b = d exactly as PyTorch)
//! d' = d + μ·b  (Nesterov)  or  b
//! p  = p − lr·d'
//! ```
//! With μ = 0 no buffer is kept and `p = p − lr·d`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Hyper-parameters of [`crate::OptimizerConfig::Sgd`] (the learning rate comes from the schedule).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdConfig {
    /// Momentum μ ∈ [0, 1) (0.9 in SimCLR/CSI/FIRM).
    pub momentum: f64,
    /// Nesterov momentum (needs μ > 0).
    pub nesterov: bool,
    /// Coupled L2 weight decay added to the gradient (FIRM 3e-4).
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl SgdConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        check_momentum("optimizer.momentum", self.momentum)?;
        check_weight_decay("optimizer.weight_decay", self.weight_decay)?;
        if self.nesterov && self.momentum == 0.0 {
            return Err(Error::invalid(
                "optimizer.nesterov",
                true,
                "Nesterov momentum needs momentum > 0",
            ));
        }
        Ok(())
    }
}

pub(crate) fn check_momentum(field: &str, m: f64) -> Result<()> {
    if !(0.0..1.0).contains(&m) {
        return Err(Error::invalid(
            field,
            m,
            "must lie in [0, 1) (0.9 is usual)",
        ));
    }
    Ok(())
}

pub(crate) fn check_weight_decay(field: &str, wd: f64) -> Result<()> {
    if !(wd.is_finite() && wd >= 0.0) {
        return Err(Error::invalid(field, wd, "must be finite and ≥ 0"));
    }
    Ok(())
}

/// One SGD step on a flat parameter slice. `buf` is the momentum buffer (unused when μ = 0).
pub(crate) fn sgd_update(
    p: &mut [f32],
    g: &[f32],
    buf: &mut [f32],
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    nesterov: bool,
) {
    debug_assert_eq!(p.len(), g.len());
    if momentum == 0.0 {
        for (p, &g) in p.iter_mut().zip(g) {
            let d = g + weight_decay * *p;
            *p -= lr * d;
        }
        return;
    }
    debug_assert_eq!(p.len(), buf.len());
    if nesterov {
        for ((p, &g), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
            let d = g + weight_decay * *p;
            *b = momentum * *b + d;
            *p -= lr * (d + momentum * *b);
        }
    } else {
        for ((p, &g), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
            let d = g + weight_decay * *p;
            *b = momentum * *b + d;
            *p -= lr * *b;
        }
    }
}
