//! Runtime CPU dispatch for the per-pixel kernels.
//!
//! The workspace builds for baseline x86-64 (SSE2, 4 f32 lanes); [`multiversion!`] compiles a
//! kernel a second time with AVX2 enabled (8 lanes) and picks that copy when the CPU has AVX2.
//! FMA is deliberately *not* enabled and LLVM never contracts `a·b + c` on its own, so both copies
//! produce bit-identical results: outputs do not depend on the machine's instruction set.

/// Defines `fn $name(args) -> ret` that runs an AVX2 build of `$body` when available, else the
/// baseline build. Arguments must be plain (non-generic) types.
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn generic($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                generic($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (detected just above), the only requirement of
                // `avx2`.
                return unsafe { avx2($($arg),*) };
            }
            generic($($arg),*)
        }
    };
}

pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    multiversion! {
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            a.iter().zip(b).map(|(x, y)| x * y).sum()
        }
    }

    #[test]
    fn dispatched_kernel_computes_the_same_as_scalar_code() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.25).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.01).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot(&a, &b), want);
    }
}
