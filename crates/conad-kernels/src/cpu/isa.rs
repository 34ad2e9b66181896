//! Run-time instruction-set dispatch of the CPU kernels: the elementwise loops (masks,
//! exponentials, lane reductions) are compiled for x86-64-v4, -v3 and baseline and one is picked
//! once per process. Every level gives the same bits, so dispatch never changes results.

/// Runtime-selected instruction set for the elementwise loops (the `gemm` crate dispatches on
/// its own). All levels give identical bits (no FMA contraction, fixed reduction order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Level {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    V3,
    #[cfg(target_arch = "x86_64")]
    V4,
}

pub(super) fn level() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Level::V4;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Level::V3;
            }
        }
        Level::Baseline
    })
}

/// Defines `$name` (runtime dispatch) over `$imp` compiled for x86-64-v4, -v3 and baseline.
macro_rules! multiversion {
    ($name:ident, $imp:ident, ($($arg:ident: $ty:ty),*)) => {
        fn $name<T: $crate::cpu::real::Real>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
                fn v4<T: $crate::cpu::real::Real>($($arg: $ty),*) {
                    $imp($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn v3<T: $crate::cpu::real::Real>($($arg: $ty),*) {
                    $imp($($arg),*)
                }
                match $crate::cpu::isa::level() {
                    // SAFETY: `level()` detected these features on this CPU.
                    $crate::cpu::isa::Level::V4 => return unsafe { v4::<T>($($arg),*) },
                    // SAFETY: as above.
                    $crate::cpu::isa::Level::V3 => return unsafe { v3::<T>($($arg),*) },
                    $crate::cpu::isa::Level::Baseline => {}
                }
            }
            $imp($($arg),*)
        }
    };
}

pub(super) use multiversion;
