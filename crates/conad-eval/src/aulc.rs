//! AULC: area under the learning curve of test AUROCs (FIRM; docs/reference.md §4.7).
//!
//! FIRM evaluates the test AUROC every `save_freq` epochs, giving `a₁ … a_n`, places the points at
//! `x = linspace(0, 1, n)` (spacing `h = 1/(n−1)`) and integrates with Simpson's rule. Here:
//!
//! - `n` odd (≥ 3): composite Simpson, `h/3·(a₁ + 4a₂ + 2a₃ + … + 4a_{n−1} + a_n)`;
//! - `n` even (≥ 4): composite Simpson on the first `n − 1` points (an odd count) plus the
//!   trapezoid `h/2·(a_{n−1} + a_n)` on the last interval (scipy ≥ 1.11 instead fits a parabola
//!   on that interval; the difference is ≪ 0.1 AUROC point for smooth curves);
//! - `n = 2`: the trapezoid `(a₁ + a₂)/2`;
//! - `n = 1`: `a₁` (a constant curve);
//! - `n = 0`: [`Error::EmptyLearningCurve`].
//!
//! The result is on the scale of the inputs (multiply by 100 for FIRM's tables). Simpson's rule is
//! exact for cubics, so a constant curve returns the constant and a linear one its mean.

use crate::error::{Error, Result};

/// Area under the learning curve `values` placed at `linspace(0, 1, n)` (see the module docs).
///
/// # Errors
/// [`Error::EmptyLearningCurve`] for an empty slice; [`Error::NonFiniteCurveValue`] (index of
/// the first NaN/±∞).
///
/// ```
/// // Simpson is exact for x² on [0, 1]: 1/3.
/// let v: Vec<f64> = (0..5).map(|i| (i as f64 / 4.0).powi(2)).collect();
/// assert!((conad_eval::aulc(&v)? - 1.0 / 3.0).abs() < 1e-15);
/// # Ok::<(), conad_eval::Error>(())
/// ```
pub fn aulc(values: &[f64]) -> Result<f64> {
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFiniteCurveValue {
            index,
            value: values[index],
        });
    }
    let n = values.len();
    match n {
        0 => Err(Error::EmptyLearningCurve),
        1 => Ok(values[0]),
        2 => Ok(0.5 * (values[0] + values[1])),
        _ => {
            let h = 1.0 / (n - 1) as f64;
            let odd = if n % 2 == 1 { n } else { n - 1 };
            let mut area = simpson(&values[..odd], h);
            if odd < n {
                area += 0.5 * h * (values[n - 2] + values[n - 1]);
            }
            Ok(area)
        }
    }
}

/// Composite Simpson over an odd number (≥ 3) of equally spaced values.
fn simpson(v: &[f64], h: f64) -> f64 {
    let last = v.len() - 1;
    let inner: f64 = v[1..last]
        .iter()
        .enumerate()
        .map(|(i, &x)| if i % 2 == 0 { 4.0 * x } else { 2.0 * x })
        .sum();
    h / 3.0 * (v[0] + inner + v[last])
}
