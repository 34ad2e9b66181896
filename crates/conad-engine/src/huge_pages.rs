//! A global allocator that backs large blocks with transparent huge pages.
//!
//! A training step's activations and gradients are hundreds of megabytes of 4 KiB pages at width
//! 1 (tens at width 1/4): the kernels' streams then miss the TLB at every page. Linux maps 2 MiB
//! pages into ranges marked `MADV_HUGEPAGE` (the usual `transparent_hugepage = madvise` setting);
//! [`HugePageAlloc`] marks the 2 MiB pages inside every block of at least 2 MiB, and the unused
//! top of the main heap above each new block, right after the system allocator hands the block
//! out — before anything but the allocator's chunk headers is written there. The mark stays with the
//! memory, which [`crate::keep_activation_buffers`] keeps in the process for reuse, so each range
//! is marked once: a bitmap over the address space (lazily zero-filled static memory) remembers
//! which 2 MiB pages were marked, and later blocks over them need no system call.
//!
//! Opt in per binary: `#[global_allocator] static A: conad_engine::HugePageAlloc =
//! conad_engine::HugePageAlloc;` (the `conad` CLI and the benchmarks do). Elsewhere than Linux it
//! is the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, plus `MADV_HUGEPAGE` on the 2 MiB pages inside large blocks (see the
/// module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct HugePageAlloc;

/// Size of a transparent huge page on x86-64 and arm64 (4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

// SAFETY: every method forwards to `System` with the caller's arguments; `advise` only changes
// the kernel's paging advice for whole pages inside the block just returned.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc`; the caller upholds `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        advise(p, new_size);
        p
    }
}

#[cfg(target_os = "linux")]
mod marked {
    use std::sync::atomic::{AtomicU64, Ordering};

    /// 2 MiB pages of a 47-bit user address space: one bit each.
    const WORDS: usize = (1 << (47 - 21)) / 64;
    /// Which huge pages were marked (8 MiB of zero-initialised static memory; only the words
    /// of used address ranges are ever touched).
    static BITS: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];

    /// Marks pages `first..end` (huge-page numbers) as advised; returns whether any was new.
    /// Pages already marked cost one relaxed load each (no locked write on a shared line).
    pub(super) fn claim(first: usize, end: usize) -> bool {
        let mut new = false;
        for page in first..end.min(WORDS * 64) {
            let (word, bit) = (&BITS[page / 64], 1u64 << (page % 64));
            if word.load(Ordering::Relaxed) & bit == 0 {
                new |= word.fetch_or(bit, Ordering::Relaxed) & bit == 0;
            }
        }
        new || end > WORDS * 64
    }
}

/// `MADV_HUGEPAGE` on the huge pages inside `[p, p + size)` and, for a block of the main heap,
/// on the rest of the heap above it (the unused top the next blocks are carved from), unless
/// all were marked before — blocks of glibc's mmap threshold and above are advised every time.
/// Failures are ignored: the advice is an optimisation only.
fn advise(p: *mut u8, size: usize) {
    #[cfg(target_os = "linux")]
    {
        if p.is_null() {
            return;
        }
        let (start, end) = (p as usize, p as usize + size);
        let inner = (
            start.next_multiple_of(HUGE_PAGE),
            end / HUGE_PAGE * HUGE_PAGE,
        );
        if size >= crate::allocator::MMAP_THRESHOLD {
            // glibc maps blocks this large afresh and unmaps them on free, which drops the
            // advice: advise every one (the bitmap would remember a reused address).
            advise_range(inner.0, inner.1);
            return;
        }
        if size >= HUGE_PAGE {
            mark(inner.0, inner.1);
        }
        // SAFETY: `sbrk(0)` returns the current program break; glibc sets it on its first heap
        // allocation, which Rust's runtime start-up has made before any caller runs here.
        let brk = unsafe { libc::sbrk(0) } as usize;
        if start < brk && end <= brk {
            // Above the block the heap's top chunk is untouched but for its header, which lies
            // in the page holding `end`.
            mark(end.next_multiple_of(HUGE_PAGE), brk / HUGE_PAGE * HUGE_PAGE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (p, size, HUGE_PAGE);
}

/// Advises the huge pages `[start, end)` (both multiples of [`HUGE_PAGE`]) unless all were
/// marked before.
#[cfg(target_os = "linux")]
fn mark(start: usize, end: usize) {
    if end > start && marked::claim(start / HUGE_PAGE, end / HUGE_PAGE) {
        advise_range(start, end);
    }
}

/// `MADV_HUGEPAGE` on `[start, end)`, ignoring failures.
#[cfg(target_os = "linux")]
fn advise_range(start: usize, end: usize) {
    if end <= start {
        return;
    }
    // SAFETY: the range lies in memory the system allocator has mapped (a block it returned or
    // the heap below the break); MADV_HUGEPAGE changes neither contents nor protection.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks from the allocator hold what is written to them, across reallocation, for sizes
    /// below, at and above the advice threshold; the bitmap reports a range as new only once.
    #[test]
    fn allocations_behave_like_the_system_allocator() {
        let a = HugePageAlloc;
        for size in [64, HUGE_PAGE - 8, HUGE_PAGE, 3 * HUGE_PAGE + 100] {
            let layout = Layout::from_size_align(size, 64).unwrap();
            // SAFETY: non-zero size; the block is written and read within its bounds and freed
            // with the layout it was reallocated to.
            unsafe {
                let p = a.alloc(layout);
                assert!(!p.is_null());
                for i in (0..size).step_by(4096) {
                    *p.add(i) = (i / 4096) as u8;
                }
                let q = a.realloc(p, layout, 2 * size);
                assert!(!q.is_null());
                for i in (0..size).step_by(4096) {
                    assert_eq!(*q.add(i), (i / 4096) as u8);
                }
                a.dealloc(q, Layout::from_size_align(2 * size, 64).unwrap());
                let z = a.alloc_zeroed(layout);
                assert!((0..size).step_by(997).all(|i| *z.add(i) == 0));
                a.dealloc(z, layout);
            }
        }
        #[cfg(target_os = "linux")]
        {
            // Pages far above any heap: first claim is new, the second is not.
            let base = 1 << 25;
            assert!(marked::claim(base, base + 3));
            assert!(!marked::claim(base, base + 3));
            assert!(marked::claim(base + 2, base + 4));
        }
    }
}
