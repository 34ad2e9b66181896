//! The per-plane f64 sums behind batch normalisation: `Σ v`, `Σ (v − m)²` (forward statistics)
//! and `(Σ g, Σ g·(x − m))` (backward), each in one fixed order.
//!
//! Order: eight f64 lanes, lane `i` summing the elements `≡ i (mod 8)` of the plane's full
//! 8-blocks in block order; the lanes folded pairwise ([`fold_lanes`]); then the tail in order.
//! The plain loops define that order. Where the CPU has AVX-512F, explicit intrinsics run the
//! same lanes in one 512-bit register per sum — the same operations on the same values in the
//! same order (no fused multiply-add), so the same bits (tested below): the compiler keeps these
//! loops scalar or 128-bit even inside a `target_feature` copy (the gradient sums were 9 % of a
//! width-1/4 training step as scalar `vcvtss2sd`/`vmulsd` code; docs/engine.md).

/// f64 lanes per sum.
pub(crate) const LANES: usize = 8;

/// `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`: a fixed pairwise fold of the lanes.
#[inline(always)]
pub(crate) fn fold_lanes(a: [f64; LANES]) -> f64 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

/// The gradient reaching the batch norm: `dy`, masked by the ReLU (`y > 0`) when one follows.
#[inline(always)]
pub(crate) fn upstream(relu: bool, y: f32, dy: f32) -> f32 {
    if relu && y <= 0.0 { 0.0 } else { dy }
}

/// `Σ v` over `values` in f64.
pub(crate) fn plane_sum(values: &[f32]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx512() {
        // SAFETY: AVX-512F was detected at run time.
        return unsafe { avx512::plane_sum(values) };
    }
    plain::plane_sum(values)
}

/// `Σ (v − m)²` over `values` in f64.
pub(crate) fn plane_sq_dev(values: &[f32], m: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx512() {
        // SAFETY: AVX-512F was detected at run time.
        return unsafe { avx512::plane_sq_dev(values, m) };
    }
    plain::plane_sq_dev(values, m)
}

/// `(Σ g, Σ g·(x − m))` over one plane in f64, `g = `[`upstream`]`(relu, y, dy)`.
pub(crate) fn plane_grad_sums(
    xs: &[f32],
    ys: &[f32],
    dys: &[f32],
    m: f64,
    relu: bool,
) -> (f64, f64) {
    assert!(
        ys.len() == xs.len() && dys.len() == xs.len(),
        "plane_grad_sums: x, y and dy planes differ in length"
    );
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx512() {
        // SAFETY: AVX-512F was detected at run time; the lengths were checked above.
        return unsafe { avx512::plane_grad_sums(xs, ys, dys, m, relu) };
    }
    plain::plane_grad_sums(xs, ys, dys, m, relu)
}

/// The reference loops: they define the summation order.
mod plain {
    use super::{LANES, fold_lanes, upstream};

    pub(super) fn plane_sum(values: &[f32]) -> f64 {
        lane_sum(values, |v| v)
    }

    pub(super) fn plane_sq_dev(values: &[f32], m: f64) -> f64 {
        lane_sum(values, |v| (v - m) * (v - m))
    }

    /// `Σ term(v)` over `values` (widened to f64) in the module's lane order.
    fn lane_sum(values: &[f32], term: impl Fn(f64) -> f64) -> f64 {
        let mut acc = [0.0f64; LANES];
        let mut blocks = values.chunks_exact(LANES);
        for b in &mut blocks {
            for i in 0..LANES {
                acc[i] += term(b[i] as f64);
            }
        }
        let mut total = fold_lanes(acc);
        for &v in blocks.remainder() {
            total += term(v as f64);
        }
        total
    }

    pub(super) fn plane_grad_sums(
        xs: &[f32],
        ys: &[f32],
        dys: &[f32],
        m: f64,
        relu: bool,
    ) -> (f64, f64) {
        let (mut s, mut sx) = ([0.0f64; LANES], [0.0f64; LANES]);
        let n = xs.len() / LANES * LANES;
        for ((xb, yb), db) in xs[..n]
            .chunks_exact(LANES)
            .zip(ys[..n].chunks_exact(LANES))
            .zip(dys[..n].chunks_exact(LANES))
        {
            for i in 0..LANES {
                let gv = upstream(relu, yb[i], db[i]) as f64;
                s[i] += gv;
                sx[i] += gv * (xb[i] as f64 - m);
            }
        }
        tail_grad_sums((fold_lanes(s), fold_lanes(sx)), xs, ys, dys, n, m, relu)
    }

    /// Adds the elements from `n` on to the folded sums, in order.
    pub(super) fn tail_grad_sums(
        (mut ts, mut tsx): (f64, f64),
        xs: &[f32],
        ys: &[f32],
        dys: &[f32],
        n: usize,
        m: f64,
        relu: bool,
    ) -> (f64, f64) {
        for i in n..xs.len() {
            let gv = upstream(relu, ys[i], dys[i]) as f64;
            ts += gv;
            tsx += gv * (xs[i] as f64 - m);
        }
        (ts, tsx)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{LANES, fold_lanes};

    /// The eight lanes of `v`.
    #[target_feature(enable = "avx512f")]
    fn lanes(v: __m512d) -> [f64; LANES] {
        let mut a = [0.0f64; LANES];
        // SAFETY: `a` holds eight f64; unaligned store.
        unsafe { _mm512_storeu_pd(a.as_mut_ptr(), v) };
        a
    }

    /// Eight f32 from `p` widened to f64.
    ///
    /// # Safety
    /// `p` must point to eight readable f32 and AVX-512F must be available.
    #[target_feature(enable = "avx512f")]
    unsafe fn widen(p: *const f32) -> __m512d {
        // SAFETY: the caller's contract.
        unsafe { _mm512_cvtps_pd(_mm256_loadu_ps(p)) }
    }

    /// # Safety
    /// AVX-512F must be available.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn plane_sum(values: &[f32]) -> f64 {
        let n = values.len() / LANES * LANES;
        let mut acc = _mm512_setzero_pd();
        for i in (0..n).step_by(LANES) {
            // SAFETY: `i + 8 ≤ n ≤ values.len()`.
            acc = _mm512_add_pd(acc, unsafe { widen(values.as_ptr().add(i)) });
        }
        let mut total = fold_lanes(lanes(acc));
        for &v in &values[n..] {
            total += v as f64;
        }
        total
    }

    /// # Safety
    /// AVX-512F must be available.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn plane_sq_dev(values: &[f32], m: f64) -> f64 {
        let n = values.len() / LANES * LANES;
        let (mut acc, mv) = (_mm512_setzero_pd(), _mm512_set1_pd(m));
        for i in (0..n).step_by(LANES) {
            // SAFETY: `i + 8 ≤ n ≤ values.len()`.
            let d = _mm512_sub_pd(unsafe { widen(values.as_ptr().add(i)) }, mv);
            acc = _mm512_add_pd(acc, _mm512_mul_pd(d, d));
        }
        let mut total = fold_lanes(lanes(acc));
        for &v in &values[n..] {
            let d = v as f64 - m;
            total += d * d;
        }
        total
    }

    /// # Safety
    /// AVX-512F must be available and `ys`, `dys` as long as `xs`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn plane_grad_sums(
        xs: &[f32],
        ys: &[f32],
        dys: &[f32],
        m: f64,
        relu: bool,
    ) -> (f64, f64) {
        let n = xs.len() / LANES * LANES;
        let (mut s, mut sx) = (_mm512_setzero_pd(), _mm512_setzero_pd());
        let (mv, zero) = (_mm512_set1_pd(m), _mm512_setzero_pd());
        for i in (0..n).step_by(LANES) {
            // SAFETY: `i + 8 ≤ n` and all three slices hold `xs.len() ≥ n` values.
            let (x, y, dy) = unsafe {
                (
                    widen(xs.as_ptr().add(i)),
                    widen(ys.as_ptr().add(i)),
                    widen(dys.as_ptr().add(i)),
                )
            };
            // `upstream`: keep dy where `!(y <= 0)` (NaN keeps it too), else +0.
            let g = if relu {
                _mm512_maskz_mov_pd(_mm512_cmp_pd_mask::<_CMP_NLE_UQ>(y, zero), dy)
            } else {
                dy
            };
            s = _mm512_add_pd(s, g);
            sx = _mm512_add_pd(sx, _mm512_mul_pd(g, _mm512_sub_pd(x, mv)));
        }
        super::plain::tail_grad_sums(
            (fold_lanes(lanes(s)), fold_lanes(lanes(sx))),
            xs,
            ys,
            dys,
            n,
            m,
            relu,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Planes of every length class (empty, tail only, whole blocks, blocks + tail) with values
    /// of mixed sign and magnitude, exact zeros, a negative zero and a NaN in `y`.
    fn planes() -> Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        use rand_distr::{Distribution, Uniform};
        let mut rng = conad_rng::SeedTree::new(16).child("plane-sums").rng();
        let uniform = Uniform::new(-400.0f32, 600.0).expect("a non-empty range");
        [0usize, 3, 8, 16, 49, 784, 1001]
            .iter()
            .map(|&len| {
                let mut v = || -> Vec<f32> { (0..len).map(|_| uniform.sample(&mut rng)).collect() };
                let (xs, mut ys, dys) = (v(), v(), v());
                for (i, y) in ys.iter_mut().enumerate() {
                    match i % 13 {
                        0 => *y = 0.0,
                        5 => *y = -0.0,
                        11 => *y = f32::NAN,
                        _ => {}
                    }
                }
                (xs, ys, dys)
            })
            .collect()
    }

    #[test]
    fn dispatched_sums_equal_the_reference_loops_bit_for_bit() {
        // On an AVX-512 machine this compares the intrinsics with the plain loops; elsewhere both
        // sides are the plain loops and the hand check below carries the test.
        for (xs, ys, dys) in planes() {
            assert_eq!(
                plane_sum(&xs).to_bits(),
                plain::plane_sum(&xs).to_bits(),
                "Σv, len {}",
                xs.len()
            );
            assert_eq!(
                plane_sq_dev(&xs, 12.5).to_bits(),
                plain::plane_sq_dev(&xs, 12.5).to_bits()
            );
            for relu in [false, true] {
                let (s, sx) = plane_grad_sums(&xs, &ys, &dys, -3.25, relu);
                let (ps, psx) = plain::plane_grad_sums(&xs, &ys, &dys, -3.25, relu);
                assert_eq!(
                    (s.to_bits(), sx.to_bits()),
                    (ps.to_bits(), psx.to_bits()),
                    "gradient sums, len {}, relu {relu}",
                    xs.len()
                );
            }
        }
    }

    #[test]
    fn sums_follow_the_lane_order_on_a_hand_example() {
        // Nine values: lanes 0..8 take one each, the ninth is the tail. The order matters here:
        // summed left to right every `+ 1` to 1e16 is a tie rounded back to it
        // (1.0000000272564224e16), while the lane fold adds 1 + 1 pairs first (…232e16).
        let v = [1e16f32, 1., 1., 1., 1., 1., 1., 1., 1.];
        let lane_order = ((1e16f32 as f64 + 1.) + (1. + 1.)) + ((1. + 1.) + (1. + 1.)) + 1.;
        assert_eq!(plane_sum(&v), lane_order);
        assert_eq!(lane_order, 1.0000000272564232e16);
        // Gradient sums with a ReLU mask: y ≤ 0 (and −0) drop dy, NaN keeps it.
        let xs = [2.0f32; 9];
        let ys = [1., 0., -0., f32::NAN, -1., 1., 1., 1., 1.];
        let dys = [1., 10., 100., 1000., 10_000., 2., 3., 4., 5.];
        let (s, sx) = plane_grad_sums(&xs, &ys, &dys, 1.0, true);
        assert_eq!((s, sx), (1015.0, 1015.0));
        let (s, _) = plane_grad_sums(&xs, &ys, &dys, 1.0, false);
        assert_eq!(s, 11_125.0);
        assert_eq!(plane_sq_dev(&[1., 3., 5.], 3.0), 8.0);
    }
}
