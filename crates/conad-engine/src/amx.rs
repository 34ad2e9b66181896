//! Intel AMX tile primitives for the bf16 convolution kernels ([`crate::bf16_conv`]).
//!
//! AMX (Advanced Matrix Extensions) holds eight 2-d tile registers of up to 16 rows × 64 bytes;
//! `tdpbf16ps` multiplies a 16 × 32 bf16 tile by a 32 × 16 bf16 tile (stored as 16 rows of 16
//! pairs, the "VNNI" layout) and accumulates into a 16 × 16 f32 tile — 8,192 multiply-adds per
//! instruction. Intel® 64 and IA-32 Architectures Software Developer's Manual, Vol. 1 ch. 18 and
//! Vol. 2 (`LDTILECFG`, `TILELOADD`, `TDPBF16PS`, `TILESTORED`).
//!
//! The kernels use one fixed register assignment: accumulators `C[i][j]` in `tmm(2i + j)`
//! (`i, j < 2`), left operands `A[i]` in `tmm(4 + i)`, right operands `B[j]` in `tmm(6 + j)`.
//! Rust has no stable AMX intrinsics; the instructions are written as inline assembly, and no
//! compiled Rust code touches tile registers, so they keep their values between `asm!` blocks.
//!
//! Linux hands out the 8 KiB tile state only to processes that ask for it
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`); [`available`] asks once per process
//! and reports `false` when the CPU lacks AMX-BF16 or the kernel refuses.

use std::sync::OnceLock;

/// Whether this CPU and OS run AMX-BF16 instructions in this process (asked once, cached).
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(detect)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    // CPUID leaf 7, sub-leaf 0: EDX bit 22 AMX-BF16, bit 24 AMX-TILE.
    let leaf = std::arch::x86_64::__cpuid_count(7, 0);
    let cpu = leaf.edx & (1 << 22) != 0 && leaf.edx & (1 << 24) != 0;
    if !cpu {
        return false;
    }
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: a plain system call with integer arguments; it only changes this process's
    // permission to use the AMX tile state.
    let granted = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        )
    };
    granted == 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// The 64-byte tile configuration `LDTILECFG` reads (palette 1).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

/// A configured set of tiles for one kernel call on the current thread: accumulators 16 × 16
/// f32, left operands 16 rows × `k` bf16, right operands `k / 2` rows × 16 pairs.
/// Dropping it releases the tile state.
pub(crate) struct Tiles {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Tiles {
    /// Configures the tiles for a reduction block of `k` bf16 values (`k` even, 2–32).
    ///
    /// # Safety
    /// [`available`] must have returned `true`.
    #[cfg(target_arch = "x86_64")]
    pub(crate) unsafe fn configure(k: usize) -> Self {
        debug_assert!(k.is_multiple_of(2) && (2..=32).contains(&k));
        let mut cfg = TileConfig {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            bytes_per_row: [0; 16],
            rows: [0; 16],
        };
        for t in 0..4 {
            cfg.bytes_per_row[t] = 64;
            cfg.rows[t] = 16;
        }
        for t in 4..6 {
            cfg.bytes_per_row[t] = (2 * k) as u16;
            cfg.rows[t] = 16;
        }
        for t in 6..8 {
            cfg.bytes_per_row[t] = 64;
            cfg.rows[t] = (k / 2) as u8;
        }
        // SAFETY: AMX is available (caller) and `cfg` is a valid palette-1 configuration.
        unsafe {
            std::arch::asm!("ldtilecfg [{c}]", c = in(reg) &raw const cfg, options(nostack));
        }
        Self {
            _not_send: std::marker::PhantomData,
        }
    }

    /// Zeroes the accumulators `C[i][j]`, `i < mb`, `j < nb` (`mb, nb ∈ {1, 2}`).
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn zero(&mut self, mb: usize, nb: usize) {
        // SAFETY: the tiles are configured (`self` exists); no memory is touched.
        unsafe {
            match (mb, nb) {
                (2, 2) => std::arch::asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "tilezero tmm2",
                    "tilezero tmm3",
                    options(nostack)
                ),
                (2, 1) => std::arch::asm!("tilezero tmm0", "tilezero tmm2", options(nostack)),
                (1, 2) => std::arch::asm!("tilezero tmm0", "tilezero tmm1", options(nostack)),
                _ => std::arch::asm!("tilezero tmm0", options(nostack)),
            }
        }
    }

    /// Stores accumulator `C[i][j]` as 16 rows of 16 f32 at `dst`, rows `stride` bytes apart.
    ///
    /// # Safety
    /// `dst + r·stride .. + 64` must be writable for every row `r < 16`.
    #[cfg(target_arch = "x86_64")]
    pub(crate) unsafe fn store_c(&mut self, i: usize, j: usize, dst: *mut f32, stride: usize) {
        // SAFETY: the caller guarantees the 16 rows are writable.
        unsafe {
            match 2 * i + j {
                0 => {
                    std::arch::asm!("tilestored [{p} + {s}*1], tmm0", p = in(reg) dst, s = in(reg) stride, options(nostack))
                }
                1 => {
                    std::arch::asm!("tilestored [{p} + {s}*1], tmm1", p = in(reg) dst, s = in(reg) stride, options(nostack))
                }
                2 => {
                    std::arch::asm!("tilestored [{p} + {s}*1], tmm2", p = in(reg) dst, s = in(reg) stride, options(nostack))
                }
                _ => {
                    std::arch::asm!("tilestored [{p} + {s}*1], tmm3", p = in(reg) dst, s = in(reg) stride, options(nostack))
                }
            }
        }
    }

    /// `C[i][j] += A[i] · B[j]` for `i < mb`, `j < nb`: loads `A[i]` (16 rows of `k` bf16,
    /// `a_stride` bytes apart) from `a[i]` and `B[j]` (`k / 2` rows of 16 bf16 pairs, `b_stride`
    /// bytes apart) from `b[j]`, then multiplies.
    ///
    /// # Safety
    /// Every row of the operands named by `mb` and `nb` must be readable.
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn multiply(
        &mut self,
        mb: usize,
        nb: usize,
        a: [*const u16; 2],
        a_stride: usize,
        b: [*const u16; 2],
        b_stride: usize,
    ) {
        // SAFETY: the caller guarantees the operand rows are readable.
        unsafe {
            match (mb, nb) {
                (2, 2) => std::arch::asm!(
                    "tileloadd tmm4, [{a0} + {sa}*1]",
                    "tileloadd tmm6, [{b0} + {sb}*1]",
                    "tileloadd tmm7, [{b1} + {sb}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tileloadd tmm5, [{a1} + {sa}*1]",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a0 = in(reg) a[0], a1 = in(reg) a[1], sa = in(reg) a_stride,
                    b0 = in(reg) b[0], b1 = in(reg) b[1], sb = in(reg) b_stride,
                    options(nostack, readonly)
                ),
                (2, 1) => std::arch::asm!(
                    "tileloadd tmm4, [{a0} + {sa}*1]",
                    "tileloadd tmm6, [{b0} + {sb}*1]",
                    "tileloadd tmm5, [{a1} + {sa}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    a0 = in(reg) a[0], a1 = in(reg) a[1], sa = in(reg) a_stride,
                    b0 = in(reg) b[0], sb = in(reg) b_stride,
                    options(nostack, readonly)
                ),
                (1, 2) => std::arch::asm!(
                    "tileloadd tmm4, [{a0} + {sa}*1]",
                    "tileloadd tmm6, [{b0} + {sb}*1]",
                    "tileloadd tmm7, [{b1} + {sb}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    a0 = in(reg) a[0], sa = in(reg) a_stride,
                    b0 = in(reg) b[0], b1 = in(reg) b[1], sb = in(reg) b_stride,
                    options(nostack, readonly)
                ),
                _ => std::arch::asm!(
                    "tileloadd tmm4, [{a0} + {sa}*1]",
                    "tileloadd tmm6, [{b0} + {sb}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    a0 = in(reg) a[0], sa = in(reg) a_stride,
                    b0 = in(reg) b[0], sb = in(reg) b_stride,
                    options(nostack, readonly)
                ),
            }
        }
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `TILERELEASE` only returns the tile state to its initial, unconfigured state.
        unsafe {
            std::arch::asm!("tilerelease", options(nostack, nomem));
        }
    }
}

/// `x` rounded to the nearest bf16, ties to even (the upper 16 bits of an f32). Finite inputs
/// only — the engine never feeds non-finite values to a kernel.
#[inline(always)]
pub(crate) fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

/// The f32 value of a bf16.
#[cfg(test)]
pub(crate) fn from_bf16(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounding_is_to_nearest_even() {
        // 1 + 2⁻⁸ lies halfway between the bf16 neighbours 1 and 1 + 2⁻⁷: ties go to the even
        // mantissa (1); 1 + 3·2⁻⁸ lies halfway between 1 + 2⁻⁷ (odd) and 1 + 2⁻⁶: up.
        assert_eq!(from_bf16(to_bf16(1.0 + 2f32.powi(-8))), 1.0);
        assert_eq!(
            from_bf16(to_bf16(1.0 + 3.0 * 2f32.powi(-8))),
            1.0 + 2f32.powi(-6)
        );
        assert_eq!(
            from_bf16(to_bf16(1.0 + 1.1 * 2f32.powi(-8))),
            1.0 + 2f32.powi(-7)
        );
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        assert_eq!(to_bf16(0.0), 0);
        // The largest finite f32 that does not round to infinity.
        assert!(from_bf16(to_bf16(3.38e38)).is_finite());
    }

    /// One `tdpbf16ps` against a hand-computed product: A[r][k] = (r + 1)·(k mod 8 + 1) (exact
    /// in bf16), B = all pairs (1, 0.5) → C[r][c] = (r + 1)·Σₖ (k mod 8 + 1)·(1 or 0.5 for odd k).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn one_tile_product_matches_hand_computation() {
        if !available() {
            eprintln!("skipped: this CPU/OS has no AMX-BF16");
            return;
        }
        let k = 32;
        let a: Vec<u16> = (0..16 * k)
            .map(|i| to_bf16(((i / k + 1) * (i % k % 8 + 1)) as f32))
            .collect();
        let b: Vec<u16> = (0..16 * 32)
            .map(|i| to_bf16(if i % 2 == 0 { 1.0 } else { 0.5 }))
            .collect();
        let mut c = [0f32; 256];
        // SAFETY: AMX is available; the operands hold 16 rows of 64 bytes each.
        unsafe {
            let mut t = Tiles::configure(k);
            t.zero(1, 1);
            t.multiply(
                1,
                1,
                [a.as_ptr(), a.as_ptr()],
                64,
                [b.as_ptr(), b.as_ptr()],
                64,
            );
            t.store_c(0, 0, c.as_mut_ptr(), 64);
        }
        let per_row: f32 = (0..k)
            .map(|kk| (kk % 8 + 1) as f32 * if kk % 2 == 0 { 1.0 } else { 0.5 })
            .sum();
        for r in 0..16 {
            for col in 0..16 {
                assert_eq!(c[r * 16 + col], (r + 1) as f32 * per_row, "C[{r}][{col}]");
            }
        }
    }
}
