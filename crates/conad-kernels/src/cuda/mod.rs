//! The CUDA backend: hand-written kernels, compiled at run time by NVRTC through cudarc. It
//! implements the contract of `crate::info_nce` (the op description it shares with the CPU
//! backend, which it never imports) and adds a kNN top-k kernel for the scorers.
//!
//! Sources (`*.cu` next to this file, each prefixed with `common.cuh`):
//! * `info_nce_fwd.cu` — fused InfoNCE forward: 64×64 logit tiles, masks from ids, streaming
//!   log-sum-exp per anchor; plus the deterministic mean;
//! * `info_nce_bwd.cu` — the backward row pass (recomputed tiles, `out += (1/τ) H C`) and the
//!   per-anchor gradient coefficients;
//! * `knn_topk.cu` — kNN max-cosine: bank-blocked dot products and per-query top-k lists.
//!
//! With feature `cuda-nvrtc` cudarc *loads* libnvrtc / libcuda at run time, so this builds with
//! no CUDA installed; [`nvrtc_available`] and [`driver_available`] say whether the libraries can
//! be opened (calling into cudarc without them would panic, so every entry point checks first).
//! With feature `cuda` cudarc links them (candle's configuration) and they are assumed present.

pub mod launch;

#[cfg(feature = "cuda")]
pub(crate) mod candle_ops;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};

use crate::error::{Error, Result};

pub use launch::{CudaKernels, TopK};

/// Definitions prepended to every kernel source.
pub const COMMON_HEADER: &str = include_str!("common.cuh");

/// One `.cu` source and the kernels it defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSource {
    /// Module name (the file stem).
    pub name: &'static str,
    /// The source text (without [`COMMON_HEADER`]).
    pub source: &'static str,
    /// `extern "C"` kernels it defines.
    pub functions: &'static [&'static str],
}

impl KernelSource {
    /// The text NVRTC compiles: [`COMMON_HEADER`] followed by the source.
    pub fn full_source(&self) -> String {
        format!(
            "{COMMON_HEADER}\n#line 1 \"{}.cu\"\n{}",
            self.name, self.source
        )
    }
}

/// The InfoNCE forward source.
pub const INFO_NCE_FWD: KernelSource = KernelSource {
    name: "info_nce_fwd",
    source: include_str!("info_nce_fwd.cu"),
    functions: &["info_nce_fwd", "info_nce_mean"],
};

/// The InfoNCE backward source.
pub const INFO_NCE_BWD: KernelSource = KernelSource {
    name: "info_nce_bwd",
    source: include_str!("info_nce_bwd.cu"),
    functions: &["info_nce_coefs", "info_nce_bwd"],
};

/// The kNN top-k source.
pub const KNN_TOPK: KernelSource = KernelSource {
    name: "knn_topk",
    source: include_str!("knn_topk.cu"),
    functions: &["knn_topk_partial", "knn_topk_merge"],
};

/// Every kernel source of the crate.
pub const KERNEL_SOURCES: [KernelSource; 3] = [INFO_NCE_FWD, INFO_NCE_BWD, KNN_TOPK];

/// Largest `k` of the top-k kernel (`KMAX` in `knn_topk.cu`).
pub const KNN_MAX_K: usize = 32;

/// The virtual architectures the CI check compiles for (A100 and H100).
pub const CHECK_ARCHS: [&str; 2] = ["compute_80", "compute_90"];

/// Whether libnvrtc can be opened (always `true` with feature `cuda`, which links it).
pub fn nvrtc_available() -> bool {
    #[cfg(feature = "cuda-nvrtc")]
    {
        // SAFETY: only tries to open the shared library by its candidate names.
        unsafe { cudarc::nvrtc::sys::is_culib_present() }
    }
    #[cfg(not(feature = "cuda-nvrtc"))]
    {
        true
    }
}

/// Whether libcuda (the driver) can be opened (always `true` with feature `cuda`).
pub fn driver_available() -> bool {
    #[cfg(feature = "cuda-nvrtc")]
    {
        // SAFETY: only tries to open the shared library by its candidate names.
        unsafe { cudarc::driver::sys::is_culib_present() }
    }
    #[cfg(not(feature = "cuda-nvrtc"))]
    {
        true
    }
}

/// The virtual architecture for a device of compute capability `major.minor`, if NVRTC 12.9
/// knows it (otherwise NVRTC's default is used and the driver JIT-compiles).
pub fn arch_for_capability(major: i32, minor: i32) -> Option<&'static str> {
    Some(match (major, minor) {
        (7, 0) => "compute_70",
        (7, 5) => "compute_75",
        (8, 0) => "compute_80",
        (8, 6) => "compute_86",
        (8, 7) => "compute_87",
        (8, 9) => "compute_89",
        (9, 0) => "compute_90",
        (10, 0) => "compute_100",
        (12, 0) => "compute_120",
        _ => return None,
    })
}

/// Compiles `source` to PTX text for `arch` (e.g. `"compute_90"`; `None` = NVRTC's default).
///
/// # Errors
/// [`Error::Cuda`] if libnvrtc cannot be opened or compilation fails (the message holds the
/// NVRTC log).
pub fn compile_ptx(source: &KernelSource, arch: Option<&'static str>) -> Result<String> {
    if !nvrtc_available() {
        return Err(Error::Cuda {
            reason: "libnvrtc not found (install nvidia-cuda-nvrtc-cu12 and put its lib directory \
                     on LD_LIBRARY_PATH, or run `cargo xtask check-cuda`)"
                .into(),
        });
    }
    let opts = CompileOptions {
        arch,
        name: Some(format!("{}.cu", source.name)),
        ..CompileOptions::default()
    };
    match compile_ptx_with_opts(source.full_source(), opts) {
        Ok(ptx) => Ok(ptx.to_src()),
        Err(cudarc::nvrtc::CompileError::CompileError { log, options, .. }) => Err(Error::Cuda {
            reason: format!(
                "NVRTC failed on {}.cu with options {options:?}:\n{}",
                source.name,
                log.to_string_lossy()
            ),
        }),
        Err(e) => Err(Error::Cuda {
            reason: format!("NVRTC failed on {}.cu: {e}", source.name),
        }),
    }
}

/// [`compile_ptx`] with a process-wide cache keyed by (source, arch).
///
/// # Errors
/// As [`compile_ptx`].
pub fn cached_ptx(source: &KernelSource, arch: Option<&'static str>) -> Result<Arc<String>> {
    type Cache = Mutex<HashMap<(&'static str, Option<&'static str>), Arc<String>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let key = (source.name, arch);
    if let Some(ptx) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(ptx.clone());
    }
    let ptx = Arc::new(compile_ptx(source, arch)?);
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, ptx.clone());
    Ok(ptx)
}

/// Wraps a driver error.
pub(crate) fn driver_err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Cuda {
        reason: format!("{what}: {e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_define_the_listed_kernels() {
        for src in KERNEL_SOURCES {
            for f in src.functions {
                assert!(
                    src.source
                        .contains(&format!("extern \"C\" __global__ void {f}(")),
                    "{} lacks {f}",
                    src.name
                );
            }
            assert!(src.full_source().starts_with(COMMON_HEADER));
        }
    }

    #[test]
    fn rule_codes_match_the_header() {
        use crate::info_nce::{Denominator as D, PositiveReduction as R, PositiveRule as P};
        for (name, code) in [
            ("POS_SAME_INSTANCE", P::SameInstance.code()),
            ("POS_SAME_LABEL", P::SameLabel.code()),
            (
                "POS_INSTANCE_OR_INLIER_LABEL",
                P::SameInstanceOrInlierLabel.code(),
            ),
            ("DEN_ALL_OTHERS", D::AllOthers.code()),
            (
                "DEN_NO_SAME_LABEL_NEGATIVES",
                D::NoSameLabelNegatives.code(),
            ),
            ("RED_MEAN_LOG_PROB", R::MeanLogProb.code()),
            ("RED_LOG_SUM_PROB", R::LogSumProb.code()),
            ("RED_LOG_MEAN_PROB", R::LogMeanProb.code()),
        ] {
            assert!(
                COMMON_HEADER.contains(&format!("#define {name} {code}\n")),
                "{name} ≠ {code}"
            );
        }
        assert!(
            KNN_TOPK
                .source
                .contains(&format!("#define KMAX {KNN_MAX_K}\n"))
        );
    }
}
