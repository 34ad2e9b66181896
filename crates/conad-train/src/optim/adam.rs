//! Adam (coupled L2 decay) and AdamW (decoupled decay, Loshchilov & Hutter 2019), in PyTorch
//! 1.13's single-tensor semantics (`amsgrad = False`):
//!
//! ```text
//! AdamW: p = p·(1 − lr·wd)          Adam: g = g + wd·p
//! m = β₁·m + (1 − β₁)·g
//! v = β₂·v + (1 − β₂)·g²
//! p = p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
//! ```
//! `t` counts the steps in which the parameter had a gradient (PyTorch keeps it per parameter).
//! CON2 trains with AdamW(β = (0.9, 0.999), wd 1e-3, lr 1e-3) (docs/reference.md §7).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::optim::sgd::check_weight_decay;

/// Hyper-parameters of [`crate::OptimizerConfig::Adam`] and [`crate::OptimizerConfig::AdamW`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamConfig {
    /// β₁ (first-moment decay; cycled by OneCycle when it cycles momentum).
    pub beta1: f64,
    /// β₂ (second-moment decay).
    pub beta2: f64,
    /// ε added to the denominator.
    pub eps: f64,
    /// Weight decay: coupled L2 for Adam, decoupled for AdamW.
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    /// PyTorch's AdamW defaults except the decay, which is CON2's 1e-3 (docs/reference.md §7).
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-3,
        }
    }
}

impl AdamConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        for (field, b) in [
            ("optimizer.beta1", self.beta1),
            ("optimizer.beta2", self.beta2),
        ] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::invalid(field, b, "must lie in [0, 1)"));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::invalid(
                "optimizer.eps",
                self.eps,
                "must be positive and finite (1e-8 is usual)",
            ));
        }
        check_weight_decay("optimizer.weight_decay", self.weight_decay)
    }
}

/// Scalars of one Adam step for a parameter that has taken `t` steps (including this one).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub decoupled: bool,
    pub t: u64,
}

/// One Adam/AdamW step on flat slices; `m`, `v` are the moment buffers.
pub(crate) fn adam_update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: AdamStep) {
    debug_assert!(p.len() == g.len() && p.len() == m.len() && p.len() == v.len());
    let t = i32::try_from(s.t).unwrap_or(i32::MAX);
    let bias1 = 1.0 - s.beta1.powi(t);
    let bias2 = 1.0 - s.beta2.powi(t);
    let step_size = (s.lr / bias1) as f32;
    let bias2_sqrt = bias2.sqrt() as f32;
    let (b1, b2) = (s.beta1 as f32, s.beta2 as f32);
    let (one_minus_b1, one_minus_b2) = ((1.0 - s.beta1) as f32, (1.0 - s.beta2) as f32);
    let eps = s.eps as f32;
    let wd = s.weight_decay as f32;
    let decay = (1.0 - s.lr * s.weight_decay) as f32;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if s.decoupled {
            *p *= decay;
            g
        } else {
            g + wd * *p
        };
        *m = *m * b1 + one_minus_b1 * g;
        *v = *v * b2 + one_minus_b2 * g * g;
        let denom = v.sqrt() / bias2_sqrt + eps;
        *p -= step_size * (*m / denom);
    }
}
