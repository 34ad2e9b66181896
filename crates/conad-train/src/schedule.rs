//! Learning-rate schedules, evaluated per optimiser step (docs/reference.md §7 "Training schedules",
//! §1.3 CSI, §1.6 FIRM).
//!
//! With `t` the zero-based global step, `T` the total number of steps, `S` the steps per epoch:
//!
//! | kind | learning rate at step `t` | PyTorch equivalent (stepped once per optimiser step) |
//! |---|---|---|
//! | `constant` | `lr` | — |
//! | `cosine` | `min + (lr − min)(1 + cos(π t/T))/2` | `CosineAnnealingLR(T_max = T, eta_min = min)` |
//! | `warmup_cosine` | linear `start → lr` over `W = round(warmup_epochs·S)` steps, then cosine `lr → min` over `T − W` | `SequentialLR([LinearLR(start/lr, 1, W), CosineAnnealingLR(T − W, min)], [W])` |
//! | `one_cycle` | PyTorch's two-phase cosine OneCycle: `max/div → max` over the first `pct_start·T` steps, then `max → max/(div·final_div)`; momentum cycled `max_m → base_m → max_m` | `OneCycleLR(max_lr, total_steps = T, pct_start, anneal_strategy='cos', div_factor, final_div_factor)` |
//! | `csi_warmup_cosine` | with fractional epoch `e = t/S`, `E = T/S`: `lr·(1 + (m−1)·e/w)` for `e ≤ w`, else `lr·m·(1 + cos(π(e − w)/E))/2` | CSI's `GradualWarmupScheduler(multiplier m, total_epoch w, after_scheduler = CosineAnnealingLR(T_max = E))` stepped with `epoch − 1 + n/len(loader)` |
//!
//! FIRM: `one_cycle` with `max_lr = 0.01`, `pct_start = 0.01` (20 of 2000 epochs), momentum
//! cycled 0.95 → 0.85 → 0.95. CSI: `csi_warmup_cosine` with `lr = 0.1`, `m = 10`, `w = 10`;
//! note the cosine runs over all `E` epochs, so it ends at `lr·m·(1 + cos(π(E − w)/E))/2 > 0`, as
//! in CSI. CSI's scheduler returns the un-multiplied base lr for the single step at which the
//! warm-up hands over to the cosine (a quirk of `GradualWarmupScheduler`); conad does not
//! replicate that one-step glitch.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where in training a step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulePoint {
    /// Zero-based global step.
    pub step: u64,
    /// Optimiser steps per epoch (≥ 1).
    pub steps_per_epoch: u64,
    /// Optimiser steps of the whole run (≥ 1).
    pub total_steps: u64,
}

/// Learning rate (and, for OneCycle, momentum) of one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleValue {
    /// Learning rate.
    pub lr: f64,
    /// Momentum override (SGD/LARS μ, Adam β₁), when the schedule cycles it.
    pub momentum: Option<f64>,
}

/// A learning-rate schedule; TOML `[schedule]` with `kind = "…"` (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// A constant learning rate.
    Constant {
        /// Learning rate.
        lr: f64,
    },
    /// Cosine annealing from `lr` to `min_lr` over the whole run.
    Cosine {
        /// Initial learning rate.
        lr: f64,
        /// Final learning rate (`eta_min`).
        #[serde(default)]
        min_lr: f64,
    },
    /// Linear warm-up then cosine annealing.
    WarmupCosine {
        /// Peak learning rate (reached after the warm-up).
        lr: f64,
        /// Warm-up length in epochs (fractional allowed; rounded to whole steps).
        warmup_epochs: f64,
        /// Learning rate of the first step.
        #[serde(default)]
        start_lr: f64,
        /// Final learning rate.
        #[serde(default)]
        min_lr: f64,
    },
    /// PyTorch's `OneCycleLR` with cosine annealing (FIRM).
    OneCycle {
        /// Peak learning rate.
        max_lr: f64,
        /// Fraction of the steps spent increasing the learning rate.
        #[serde(default = "default_pct_start")]
        pct_start: f64,
        /// Initial learning rate = `max_lr / div_factor`.
        #[serde(default = "default_div_factor")]
        div_factor: f64,
        /// Final learning rate = initial / `final_div_factor`.
        #[serde(default = "default_final_div_factor")]
        final_div_factor: f64,
        /// Cycle the momentum (SGD/LARS μ, Adam β₁) inversely to the learning rate between
        /// `base_momentum` and `max_momentum` (PyTorch's default); `false` leaves the
        /// optimiser's momentum alone.
        #[serde(default = "yes")]
        cycle_momentum: bool,
        /// Momentum at the learning-rate peak.
        #[serde(default = "default_base_momentum")]
        base_momentum: f64,
        /// Momentum at the start and the end.
        #[serde(default = "default_max_momentum")]
        max_momentum: f64,
    },
    /// CSI's gradual warm-up with a multiplier, then cosine.
    CsiWarmupCosine {
        /// Base learning rate (CSI 0.1); the peak is `lr·multiplier`.
        lr: f64,
        /// Warm-up multiplier (CSI 10; ≥ 1).
        #[serde(default = "default_multiplier")]
        multiplier: f64,
        /// Warm-up length in epochs (CSI 10).
        #[serde(default = "default_csi_warmup")]
        warmup_epochs: f64,
    },
}

fn default_pct_start() -> f64 {
    0.01
}
fn default_div_factor() -> f64 {
    25.0
}
fn default_final_div_factor() -> f64 {
    1e4
}
fn yes() -> bool {
    true
}
fn default_base_momentum() -> f64 {
    0.85
}
fn default_max_momentum() -> f64 {
    0.95
}
fn default_multiplier() -> f64 {
    10.0
}
fn default_csi_warmup() -> f64 {
    10.0
}

impl Default for LrSchedule {
    /// Cosine from 1e-3 to 0 (the AdamW recipe of CON2).
    fn default() -> Self {
        Self::Cosine {
            lr: 1e-3,
            min_lr: 0.0,
        }
    }
}

fn positive(field: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(field, v, "must be positive and finite"))
    }
}

fn in_range(field: &str, v: f64, lo: f64, hi: f64) -> Result<()> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            v,
            format!("must lie in [{lo}, {hi}]"),
        ))
    }
}

/// Cosine interpolation from `from` (at `pct = 0`) to `to` (at `pct = 1`), PyTorch's
/// `_annealing_cos`.
fn anneal_cos(from: f64, to: f64, pct: f64) -> f64 {
    to + (from - to) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0)
}

impl LrSchedule {
    /// Checks the fields.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field (`schedule.<name>`).
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::Constant { lr } => positive("schedule.lr", lr),
            Self::Cosine { lr, min_lr } => {
                positive("schedule.lr", lr)?;
                in_range("schedule.min_lr", min_lr, 0.0, lr)
            }
            Self::WarmupCosine {
                lr,
                warmup_epochs,
                start_lr,
                min_lr,
            } => {
                positive("schedule.lr", lr)?;
                in_range("schedule.start_lr", start_lr, 0.0, lr)?;
                in_range("schedule.min_lr", min_lr, 0.0, lr)?;
                if !(warmup_epochs.is_finite() && warmup_epochs >= 0.0) {
                    return Err(Error::invalid(
                        "schedule.warmup_epochs",
                        warmup_epochs,
                        "must be finite and ≥ 0",
                    ));
                }
                Ok(())
            }
            Self::OneCycle {
                max_lr,
                pct_start,
                div_factor,
                final_div_factor,
                cycle_momentum,
                base_momentum,
                max_momentum,
            } => {
                positive("schedule.max_lr", max_lr)?;
                if !(pct_start > 0.0 && pct_start < 1.0) {
                    return Err(Error::invalid(
                        "schedule.pct_start",
                        pct_start,
                        "must lie in (0, 1) (FIRM: 0.01)",
                    ));
                }
                positive("schedule.div_factor", div_factor)?;
                positive("schedule.final_div_factor", final_div_factor)?;
                if cycle_momentum {
                    in_range("schedule.base_momentum", base_momentum, 0.0, max_momentum)?;
                    if !(0.0..1.0).contains(&max_momentum) {
                        return Err(Error::invalid(
                            "schedule.max_momentum",
                            max_momentum,
                            "must lie in [0, 1)",
                        ));
                    }
                }
                Ok(())
            }
            Self::CsiWarmupCosine {
                lr,
                multiplier,
                warmup_epochs,
            } => {
                positive("schedule.lr", lr)?;
                if !(multiplier.is_finite() && multiplier >= 1.0) {
                    return Err(Error::invalid(
                        "schedule.multiplier",
                        multiplier,
                        "must be ≥ 1 (CSI uses 10)",
                    ));
                }
                positive("schedule.warmup_epochs", warmup_epochs)
            }
        }
    }

    /// The highest learning rate the schedule reaches.
    pub fn peak_lr(&self) -> f64 {
        match *self {
            Self::Constant { lr } | Self::Cosine { lr, .. } | Self::WarmupCosine { lr, .. } => lr,
            Self::OneCycle { max_lr, .. } => max_lr,
            Self::CsiWarmupCosine { lr, multiplier, .. } => lr * multiplier,
        }
    }

    /// Learning rate (and momentum override) of the step at `at`. Steps past `total_steps` keep
    /// the final value.
    pub fn at(&self, at: SchedulePoint) -> ScheduleValue {
        let total = at.total_steps.max(1) as f64;
        let per_epoch = at.steps_per_epoch.max(1) as f64;
        let t = (at.step as f64).min(total);
        let lr_only = |lr| ScheduleValue { lr, momentum: None };
        match *self {
            Self::Constant { lr } => lr_only(lr),
            Self::Cosine { lr, min_lr } => lr_only(anneal_cos(lr, min_lr, t / total)),
            Self::WarmupCosine {
                lr,
                warmup_epochs,
                start_lr,
                min_lr,
            } => {
                let w = (warmup_epochs * per_epoch).round().min(total);
                if t < w {
                    lr_only(start_lr + (lr - start_lr) * t / w)
                } else {
                    let span = (total - w).max(1.0);
                    lr_only(anneal_cos(lr, min_lr, (t - w) / span))
                }
            }
            Self::OneCycle {
                max_lr,
                pct_start,
                div_factor,
                final_div_factor,
                cycle_momentum,
                base_momentum: base,
                max_momentum: max,
            } => {
                let initial = max_lr / div_factor;
                let min_lr = initial / final_div_factor;
                // PyTorch: phase 1 ends at step pct_start·T − 1, phase 2 at T − 1.
                let end1 = pct_start * total - 1.0;
                let end2 = total - 1.0;
                let (pct, lr_from, lr_to, up) = if t <= end1 {
                    (ratio(t, end1), initial, max_lr, true)
                } else {
                    (ratio(t - end1, end2 - end1), max_lr, min_lr, false)
                };
                let momentum = cycle_momentum.then(|| {
                    if up {
                        anneal_cos(max, base, pct)
                    } else {
                        anneal_cos(base, max, pct)
                    }
                });
                ScheduleValue {
                    lr: anneal_cos(lr_from, lr_to, pct),
                    momentum,
                }
            }
            Self::CsiWarmupCosine {
                lr,
                multiplier,
                warmup_epochs,
            } => {
                let e = t / per_epoch;
                let epochs = total / per_epoch;
                if e <= warmup_epochs {
                    let factor = if multiplier == 1.0 {
                        e / warmup_epochs
                    } else {
                        (multiplier - 1.0) * e / warmup_epochs + 1.0
                    };
                    lr_only(lr * factor)
                } else {
                    let pct = (e - warmup_epochs) / epochs;
                    lr_only(anneal_cos(lr * multiplier, 0.0, pct))
                }
            }
        }
    }
}

/// `num/den`, with a zero-length phase counting as finished (PyTorch divides by zero there).
fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 { (num / den).min(1.0) } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(step: u64, per_epoch: u64, total: u64) -> SchedulePoint {
        SchedulePoint {
            step,
            steps_per_epoch: per_epoch,
            total_steps: total,
        }
    }

    #[test]
    fn csi_schedule_ramps_tenfold_then_decays() {
        // Hand-computed: lr 0.1, multiplier 10, warm-up 10 epochs of 5 steps, 100 epochs.
        let s = LrSchedule::CsiWarmupCosine {
            lr: 0.1,
            multiplier: 10.0,
            warmup_epochs: 10.0,
        };
        s.validate().unwrap();
        let at = |step| s.at(p(step, 5, 500)).lr;
        assert!((at(0) - 0.1).abs() < 1e-15);
        // epoch 5 of 10: 0.1·(9·0.5 + 1) = 0.55
        assert!((at(25) - 0.55).abs() < 1e-12);
        assert!((at(50) - 1.0).abs() < 1e-12);
        // epoch 55: 1.0·(1 + cos(π·45/100))/2
        let want = (1.0 + (std::f64::consts::PI * 0.45).cos()) / 2.0;
        assert!((at(275) - want).abs() < 1e-12);
        assert_eq!(s.peak_lr(), 1.0);
        // Multiplier 1: GradualWarmupScheduler ramps from 0.
        let s1 = LrSchedule::CsiWarmupCosine {
            lr: 0.1,
            multiplier: 1.0,
            warmup_epochs: 10.0,
        };
        assert_eq!(s1.at(p(0, 5, 500)).lr, 0.0);
        assert!((s1.at(p(25, 5, 500)).lr - 0.05).abs() < 1e-15);
    }

    #[test]
    fn invalid_fields_are_named() {
        let cases = [
            (LrSchedule::Constant { lr: -1.0 }, "schedule.lr"),
            (
                LrSchedule::Cosine {
                    lr: 0.1,
                    min_lr: 0.2,
                },
                "schedule.min_lr",
            ),
            (
                LrSchedule::OneCycle {
                    max_lr: 0.01,
                    pct_start: 1.0,
                    div_factor: 25.0,
                    final_div_factor: 1e4,
                    cycle_momentum: false,
                    base_momentum: 0.85,
                    max_momentum: 0.95,
                },
                "schedule.pct_start",
            ),
            (
                LrSchedule::CsiWarmupCosine {
                    lr: 0.1,
                    multiplier: 0.5,
                    warmup_epochs: 10.0,
                },
                "schedule.multiplier",
            ),
            (
                LrSchedule::WarmupCosine {
                    lr: 0.1,
                    warmup_epochs: f64::NAN,
                    start_lr: 0.0,
                    min_lr: 0.0,
                },
                "schedule.warmup_epochs",
            ),
        ];
        for (s, field) in cases {
            match s.validate() {
                Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{s:?}: expected InvalidConfig({field}), got {other:?}"),
            }
        }
    }

    #[test]
    fn one_cycle_with_a_zero_length_warm_up_starts_at_the_peak() {
        // pct_start·T − 1 = 0 makes PyTorch divide by zero; conad treats the phase as done.
        let s = LrSchedule::OneCycle {
            max_lr: 0.01,
            pct_start: 0.01,
            div_factor: 25.0,
            final_div_factor: 1e4,
            cycle_momentum: false,
            base_momentum: 0.85,
            max_momentum: 0.95,
        };
        let v = s.at(p(0, 10, 100));
        assert!((v.lr - 0.01).abs() < 1e-15, "{v:?}");
        assert!(v.momentum.is_none());
    }
}
