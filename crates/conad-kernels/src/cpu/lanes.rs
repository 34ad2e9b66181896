//! Masked row reductions in a fixed 16-lane order.
//!
//! Every reduction keeps 16 independent partial results (lane `l` takes elements `l, l+16, …`)
//! and folds them in one fixed order at the end. LLVM vectorises the lane loop (one AVX-512
//! register, or four SSE registers), and the result is the same bits on every ISA level and
//! every thread count, because the order of additions is written down here.

use super::real::Real;

/// Lanes of every reduction.
pub(crate) const LANES: usize = 16;

#[inline(always)]
fn fold_sum<T: Real>(acc: [T; LANES]) -> T {
    // Pairwise, fixed: ((0+8)+(4+12)) … — written as a halving loop.
    let mut a = acc;
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            a[l] = a[l] + a[l + width];
        }
        width /= 2;
    }
    a[0]
}

#[inline(always)]
fn fold_max<T: Real>(acc: [T; LANES]) -> T {
    acc.iter().fold(T::NEG_INFINITY, |m, &x| m.max(x))
}

/// `max_j {s_j : mask_j}` (−∞ when no entry is selected).
#[inline(always)]
pub(crate) fn masked_max<T: Real>(s: &[T], mask: &[bool]) -> T {
    let mut acc = [T::NEG_INFINITY; LANES];
    let (s_main, s_tail) = s.split_at(s.len() - s.len() % LANES);
    let (m_main, m_tail) = mask.split_at(s_main.len());
    for (sc, mc) in s_main.chunks_exact(LANES).zip(m_main.chunks_exact(LANES)) {
        for l in 0..LANES {
            let v = if mc[l] { sc[l] } else { T::NEG_INFINITY };
            acc[l] = acc[l].max(v);
        }
    }
    for (l, (&v, &m)) in s_tail.iter().zip(m_tail).enumerate() {
        if m {
            acc[l] = acc[l].max(v);
        }
    }
    fold_max(acc)
}

/// `Σ_j {e^{s_j − shift} : mask_j}`; entries with `s_j > shift` are treated as `shift` (the
/// callers' shift is the running maximum, so this clamps rounding only).
#[inline(always)]
pub(crate) fn masked_exp_sum<T: Real>(s: &[T], mask: &[bool], shift: T) -> T {
    let mut acc = [T::ZERO; LANES];
    let (s_main, s_tail) = s.split_at(s.len() - s.len() % LANES);
    let (m_main, m_tail) = mask.split_at(s_main.len());
    for (sc, mc) in s_main.chunks_exact(LANES).zip(m_main.chunks_exact(LANES)) {
        for l in 0..LANES {
            let e = zero_capped(sc[l] - shift).exp();
            acc[l] = acc[l] + if mc[l] { e } else { T::ZERO };
        }
    }
    for (l, (&v, &m)) in s_tail.iter().zip(m_tail).enumerate() {
        if m {
            acc[l] = acc[l] + zero_capped(v - shift).exp();
        }
    }
    fold_sum(acc)
}

/// `Σ_j {s_j : mask_j}`.
#[inline(always)]
pub(crate) fn masked_sum<T: Real>(s: &[T], mask: &[bool]) -> T {
    let mut acc = [T::ZERO; LANES];
    let (s_main, s_tail) = s.split_at(s.len() - s.len() % LANES);
    let (m_main, m_tail) = mask.split_at(s_main.len());
    for (sc, mc) in s_main.chunks_exact(LANES).zip(m_main.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] = acc[l] + if mc[l] { sc[l] } else { T::ZERO };
        }
    }
    for (l, (&v, &m)) in s_tail.iter().zip(m_tail).enumerate() {
        if m {
            acc[l] = acc[l] + v;
        }
    }
    fold_sum(acc)
}

/// `min(x, 0)` without NaN handling branches (inputs are finite here).
#[inline(always)]
pub(crate) fn zero_capped<T: Real>(x: T) -> T {
    if x > T::ZERO { T::ZERO } else { x }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_match_plain_loops() {
        for n in [0usize, 1, 15, 16, 17, 40, 255] {
            let s: Vec<f64> = (0..n).map(|i| ((i * 37 % 11) as f64 - 5.0) * 0.3).collect();
            let m: Vec<bool> = (0..n).map(|i| i % 3 != 1).collect();
            let sel: Vec<f64> = s.iter().zip(&m).filter(|x| *x.1).map(|x| *x.0).collect();
            let want_max = sel.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(masked_max(&s, &m), want_max);
            let want_sum: f64 = sel.iter().sum();
            assert!((masked_sum(&s, &m) - want_sum).abs() < 1e-12);
            let shift = 2.0;
            let want_exp: f64 = sel.iter().map(|v| (v - shift).min(0.0).exp()).sum();
            assert!((masked_exp_sum(&s, &m, shift) - want_exp).abs() < 1e-12);
        }
    }
}
