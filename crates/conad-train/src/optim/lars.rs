//! LARS (You, Gitman & Ginsburg 2017, <https://arxiv.org/abs/1708.03888>) as CSI uses it:
//! kakaobrain `torchlars.LARS(SGD(momentum 0.9, weight_decay wd), eps 1e-8, trust_coef 0.001)`
//! wrapping **all** parameters (docs/reference.md §1.3, §7). Per parameter, every step:
//!
//! ```text
//! a  = η·‖p‖ / (‖g‖ + wd·‖p‖ + ε)   if ‖p‖ > 0 and ‖g‖ > 0, else 1
//! g' = (g + wd·p)·a
//! SGD step on g' with momentum μ and no further weight decay:  b = μ·b + g',  p = p − lr·b
//! ```
//! The norms are accumulated in f64.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::optim::sgd::{check_momentum, check_weight_decay, sgd_update};

/// Hyper-parameters of [`crate::OptimizerConfig::Lars`]; defaults are CSI's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LarsConfig {
    /// Momentum μ of the wrapped SGD.
    pub momentum: f64,
    /// Nesterov momentum in the wrapped SGD (CSI: off).
    pub nesterov: bool,
    /// Weight decay (folded into the trust ratio and the gradient; CSI 1e-6).
    pub weight_decay: f64,
    /// Trust coefficient η (0.001).
    pub trust_coefficient: f64,
    /// ε of the trust-ratio denominator (1e-8).
    pub eps: f64,
}

impl Default for LarsConfig {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            nesterov: false,
            weight_decay: 1e-6,
            trust_coefficient: 0.001,
            eps: 1e-8,
        }
    }
}

impl LarsConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        check_momentum("optimizer.momentum", self.momentum)?;
        check_weight_decay("optimizer.weight_decay", self.weight_decay)?;
        if !(self.trust_coefficient.is_finite() && self.trust_coefficient > 0.0) {
            return Err(Error::invalid(
                "optimizer.trust_coefficient",
                self.trust_coefficient,
                "must be positive and finite (0.001 in CSI)",
            ));
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(Error::invalid(
                "optimizer.eps",
                self.eps,
                "must be finite and ≥ 0 (1e-8 in CSI)",
            ));
        }
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

/// The layer-wise trust ratio `a` of the module docs.
pub(crate) fn trust_ratio(p: &[f32], g: &[f32], weight_decay: f64, trust: f64, eps: f64) -> f64 {
    let norm = |x: &[f32]| {
        x.iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt()
    };
    let (pn, gn) = (norm(p), norm(g));
    if pn > 0.0 && gn > 0.0 {
        trust * pn / (gn + weight_decay * pn + eps)
    } else {
        1.0
    }
}

/// One LARS step on flat slices; `g` is overwritten by the scaled gradient `g'`.
pub(crate) fn lars_update(
    p: &mut [f32],
    g: &mut [f32],
    buf: &mut [f32],
    lr: f32,
    momentum: f32,
    c: &LarsConfig,
) {
    let a = trust_ratio(p, g, c.weight_decay, c.trust_coefficient, c.eps) as f32;
    let wd = c.weight_decay as f32;
    for (g, &p) in g.iter_mut().zip(p.iter()) {
        *g = (*g + wd * p) * a;
    }
    sgd_update(p, g, buf, lr, momentum, 0.0, c.nesterov);
}
