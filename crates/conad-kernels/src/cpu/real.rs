//! The two element types of the CPU kernels and a branch-free `exp` that vectorises.
//!
//! `f32` uses a Cephes-style `expf` (range reduction by `ln 2` in two parts, degree-5 minimax
//! polynomial, exponent assembled from integer bits): ≤ 2 ulp on the range the kernels use, no
//! branches and no calls, so LLVM vectorises the loops that call it (16 lanes with AVX-512).
//! `f64` (used by golden tests) calls `f64::exp`.
//!
//! No operation here is contracted into an FMA or reassociated (Rust never does either without
//! being asked), so the vectorised and scalar builds produce identical bits.

use std::fmt::Debug;
use std::ops::{Add, Mul, Neg, Sub};

/// An element type of the CPU kernels.
pub(crate) trait Real:
    Copy
    + Debug
    + Default
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Neg<Output = Self>
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INFINITY: Self;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// `e^x`; the f32 version saturates outside [−87, 88] (results ≈ 1.6e−38 and 1.7e38).
    fn exp(self) -> Self;
    /// Maximum (`f*::max` semantics).
    fn max(self, other: Self) -> Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        exp_f32(self)
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        f32::max(self, other)
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        f64::max(self, other)
    }
}

/// Branch-free `expf` (Cephes coefficients); input clamped to [−87, 88].
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' constants, as published.
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits.
    const SHIFTER: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_375;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + SHIFTER;
    let n = t - SHIFTER;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let y = p * (r * r) + r + 1.0;
    // n ∈ [−126, 127]: 2ⁿ is a normal float.
    let n_int = t.to_bits() as i32 - SHIFTER.to_bits() as i32;
    let scale = f32::from_bits(((n_int + 127) as u32) << 23);
    y * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_is_within_two_ulp_of_libm() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let got = f64::from(exp_f32(x));
            let want = f64::from(x).exp();
            let ulp = f64::from(f32::EPSILON) * want;
            worst = worst.max((got - want).abs() / ulp);
            x += 0.001_37;
        }
        assert!(worst < 2.0, "worst error {worst} ulp");
        assert_eq!(exp_f32(0.0), 1.0);
        // Saturation instead of ±∞.
        assert!(exp_f32(-1e30) > 0.0 && exp_f32(-1e30) < 1e-37);
        assert!(exp_f32(f32::NEG_INFINITY) < 1e-37);
        assert!(exp_f32(1e30).is_finite());
    }
}
