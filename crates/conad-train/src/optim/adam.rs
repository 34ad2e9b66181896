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

/// One Adam/AdamW step on flat slices; `m`, `v` are the moment buffers. Element-wise, so the
/// slices are updated in parallel pieces ([`PIECE`] values) with the same bits as one pass, and
/// each piece runs an AVX-512 build of the loop where the CPU has it (the baseline build's SSE
/// square roots and divisions were 1 % of a width-1/4 training step); Rust never fuses the
/// multiply-adds, so both builds compute the same values.
pub(crate) fn adam_update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: AdamStep) {
    use rayon::prelude::*;
    assert!(p.len() == g.len() && p.len() == m.len() && p.len() == v.len());
    let k = AdamCoefficients::new(&s);
    p.par_chunks_mut(PIECE)
        .zip(g.par_chunks(PIECE))
        .zip(m.par_chunks_mut(PIECE))
        .zip(v.par_chunks_mut(PIECE))
        .for_each(|(((p, g), m), v)| {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F was detected at run time.
                unsafe { adam_piece_avx512(p, g, m, v, &k) };
                return;
            }
            adam_piece(p, g, m, v, &k);
        });
}

/// Values per parallel piece of [`adam_update`].
const PIECE: usize = 1 << 15;

/// The per-step constants of [`adam_update`], in f32.
struct AdamCoefficients {
    decoupled: bool,
    step_size: f32,
    bias2_sqrt: f32,
    b1: f32,
    b2: f32,
    one_minus_b1: f32,
    one_minus_b2: f32,
    eps: f32,
    wd: f32,
    decay: f32,
}

impl AdamCoefficients {
    fn new(s: &AdamStep) -> Self {
        let t = i32::try_from(s.t).unwrap_or(i32::MAX);
        let bias1 = 1.0 - s.beta1.powi(t);
        let bias2 = 1.0 - s.beta2.powi(t);
        Self {
            decoupled: s.decoupled,
            step_size: (s.lr / bias1) as f32,
            bias2_sqrt: bias2.sqrt() as f32,
            b1: s.beta1 as f32,
            b2: s.beta2 as f32,
            one_minus_b1: (1.0 - s.beta1) as f32,
            one_minus_b2: (1.0 - s.beta2) as f32,
            eps: s.eps as f32,
            wd: s.weight_decay as f32,
            decay: (1.0 - s.lr * s.weight_decay) as f32,
        }
    }
}

/// The update of one piece (see [`adam_update`]).
#[inline(always)]
fn adam_piece(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: &AdamCoefficients) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if k.decoupled {
            *p *= k.decay;
            g
        } else {
            g + k.wd * *p
        };
        *m = *m * k.b1 + k.one_minus_b1 * g;
        *v = *v * k.b2 + k.one_minus_b2 * g * g;
        let denom = v.sqrt() / k.bias2_sqrt + k.eps;
        *p -= k.step_size * (*m / denom);
    }
}

/// [`adam_piece`] compiled with AVX-512F enabled.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn adam_piece_avx512(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: &AdamCoefficients) {
    adam_piece(p, g, m, v, k);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parallel, dispatched update (AVX-512 pieces on this machine when it has them) equals
    /// one plain pass over the whole buffers bit for bit, for Adam and AdamW, over three steps
    /// and a length that leaves a partial last piece.
    #[test]
    fn pieces_equal_one_plain_pass_bit_for_bit() {
        let n = 3 * PIECE + 123;
        let wave = |k: usize, a: f32| -> Vec<f32> {
            (0..n)
                .map(|i| (((i * k) % 997) as f32 / 498.5 - 1.0) * a)
                .collect()
        };
        for decoupled in [false, true] {
            let (mut p, mut m, mut v) = (wave(31, 1.0), vec![0.0f32; n], vec![0.0f32; n]);
            let (mut rp, mut rm, mut rv) = (p.clone(), m.clone(), v.clone());
            for t in 1..=3u64 {
                let g = wave(17 + t as usize, 1e-2);
                let s = AdamStep {
                    lr: 1e-3,
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                    weight_decay: 1e-2,
                    decoupled,
                    t,
                };
                adam_update(&mut p, &g, &mut m, &mut v, s);
                adam_piece(&mut rp, &g, &mut rm, &mut rv, &AdamCoefficients::new(&s));
            }
            let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&p), bits(&rp), "parameters, decoupled = {decoupled}");
            assert_eq!(bits(&m), bits(&rm));
            assert_eq!(bits(&v), bits(&rv));
            assert_ne!(
                bits(&p),
                bits(&wave(31, 1.0)),
                "the update moved the parameters"
            );
        }
    }
}
