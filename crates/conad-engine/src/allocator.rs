//! Keeps the training step's activation buffers in the process heap instead of returning them to
//! the kernel after every step.
//!
//! Every training step allocates and frees the same few hundred activation and gradient buffers
//! (0.1–32 MiB each at batch 64). glibc serves blocks above its mmap threshold (128 KiB, raised
//! dynamically only up to the largest block freed so far) with fresh `mmap`s: each step then pays
//! one page fault per 4 KiB page, a zero-page copy-on-write with a cross-CPU TLB shootdown when a
//! zeroed buffer is read before it is written, and another shootdown on `munmap`. Raising the mmap
//! threshold to glibc's maximum (32 MiB) and the trim threshold above it keeps the freed blocks for
//! reuse (measured effect: `docs/engine.md`); the heap grows in 64 MiB steps ([`TOP_PAD`]).
//!
//! [`keep_activation_buffers`] applies this once per process; the engine calls it on its first op.
//! It is a no-op on other platforms and allocators, and is skipped when the environment variable
//! `CONAD_KEEP_MALLOC_DEFAULTS` is set (for users who tune glibc themselves).

use std::sync::OnceLock;

/// glibc's largest accepted mmap threshold on 64-bit targets (`DEFAULT_MMAP_THRESHOLD_MAX`).
pub const MMAP_THRESHOLD: usize = 32 << 20;
/// Heap top kept before glibc trims it back to the kernel.
pub const TRIM_THRESHOLD: usize = 1 << 30;
/// Extra heap requested whenever the heap grows: fewer `brk` calls, and fresh memory in whole
/// huge pages for [`crate::HugePageAlloc`] to mark before it is written.
pub const TOP_PAD: usize = 64 << 20;

static APPLIED: OnceLock<bool> = OnceLock::new();

/// Raises glibc's mmap and trim thresholds once per process (see the module docs). Returns
/// whether the settings were applied by this or an earlier call.
pub fn keep_activation_buffers() -> bool {
    *APPLIED.get_or_init(|| std::env::var_os("CONAD_KEEP_MALLOC_DEFAULTS").is_none() && apply())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() -> bool {
    // SAFETY: `mallopt` only changes allocator parameters; glibc serialises it against other
    // allocator calls. Both values are within the documented ranges.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int) == 1
            && libc::mallopt(libc::M_TOP_PAD, TOP_PAD as libc::c_int) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On glibc both `mallopt` calls must be accepted (a value outside glibc's range makes it
    /// return 0); the answer is the same on every call.
    #[test]
    fn thresholds_are_accepted_once_and_for_all() {
        let first = keep_activation_buffers();
        if cfg!(all(target_os = "linux", target_env = "gnu"))
            && std::env::var_os("CONAD_KEEP_MALLOC_DEFAULTS").is_none()
        {
            assert!(first, "glibc rejected the mmap or trim threshold");
        }
        assert_eq!(keep_activation_buffers(), first);
    }
}
