//! Element-wise loops compiled a second time with AVX-512 enabled.
//!
//! The workspace builds for baseline x86-64, so the compiler vectorises the engine's element-wise
//! passes (batch-norm normalisation and gradients, residual joins; the f64 plane sums have their
//! own intrinsics, `plane_sums`) with SSE2 only and widens f32 to f64
//! one value at a time. [`avx512_fn!`] defines a function whose body is compiled twice — plain,
//! and inside a `#[target_feature(enable = "avx512f")]` copy that runs when the CPU has AVX-512F.
//! Results do not change: the compiler neither reorders nor fuses float operations, so every value
//! goes through the same operations in the same order (tested below and by the engine's
//! bit-identity tests). Bodies must not call closures: a closure is compiled outside the AVX-512
//! copy and would stay scalar.

/// Whether this CPU has AVX-512F (the run-time check behind every AVX-512 path of the engine:
/// the direct and Winograd kernels, the permute helpers and [`avx512_fn!`]).
pub(crate) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The mask of the first `lanes` of 16 lanes (all of them for `lanes ≥ 16`).
#[cfg(target_arch = "x86_64")]
pub(crate) fn mask(lanes: usize) -> std::arch::x86_64::__mmask16 {
    if lanes >= 16 {
        0xffff
    } else {
        ((1u32 << lanes) - 1) as std::arch::x86_64::__mmask16
    }
}

/// `avx512_fn! { fn name(args) -> R { body } }`: see the module docs.
macro_rules! avx512_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            fn avx512($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::simd::avx512() {
                // SAFETY: AVX-512F was detected at run time.
                return unsafe { avx512($($arg),*) };
            }
            body($($arg),*)
        }
    };
}

pub(crate) use avx512_fn;

#[cfg(test)]
mod tests {
    avx512_fn! {
        /// f64 sums of widened f32 in eight fixed lanes (the pattern of the batch-norm sums).
        fn lane_sums(xs: &[f32], m: f64) -> f64 {
            let mut acc = [0.0f64; 8];
            for b in xs.chunks_exact(8) {
                for i in 0..8 {
                    acc[i] += b[i] as f64 * (b[i] as f64 - m);
                }
            }
            ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
        }
    }

    /// The dispatched copy (AVX-512 on this machine when it has it) equals a plain loop bit for
    /// bit.
    #[test]
    fn dispatched_loop_equals_the_plain_loop_bit_for_bit() {
        let xs: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919) % 1013) as f32 * 1e-3 - 0.4)
            .collect();
        let mut acc = [0.0f64; 8];
        for b in xs.chunks_exact(8) {
            for i in 0..8 {
                acc[i] += b[i] as f64 * (b[i] as f64 - 0.1);
            }
        }
        let plain =
            ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
        assert_eq!(lane_sums(&xs, 0.1).to_bits(), plain.to_bits());
    }
}
