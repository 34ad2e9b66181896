//! `cargo xtask bench infonce`: fused InfoNCE (conad-kernels) vs the same loss composed from
//! candle ops (conad-losses), forward + backward, NT-Xent on `N` rows (`N/2` images × 2 views),
//! d = 128, τ = 0.5, f32, on the CPU.
//!
//! ```text
//! cargo run --release -p conad-losses --example bench_infonce -- --impl conad    [--quick]
//! cargo run --release -p conad-losses --example bench_infonce -- --impl composed [--quick]
//! ```
//!
//! One JSON line per case on stdout:
//! `{"bench":"infonce","case":"n2048","impl":"conad","seconds":…,"loss":…,"grad_norm":…,
//!   "peak_alloc_mib":…,"n":2048}` — `seconds` is the median of the repetitions of
//! forward + backward; `peak_alloc_mib` is the peak of live heap bytes during one forward +
//! backward above what was live before it (a counting global allocator, so every case in the
//! same process is measured independently; candle's CPU tensors and the gemm buffers are heap).
//! Inputs come from a fixed seed (conad-rng). The example lives in conad-losses (which depends on
//! conad-kernels) because it needs both implementations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use conad_kernels::{FusedInfoNceConfig, RowIds, fused_info_nce};
use conad_losses::{AnchorViews, ContrastMasks, InfoNceConfig, info_nce};
use conad_rng::SeedTree;
use rand::Rng;
use rand_distr::StandardNormal;

/// System allocator that tracks live and peak bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    Conad,
    Composed,
}

struct Args {
    implementation: Impl,
    quick: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut implementation = None;
    let mut quick = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--impl" => {
                implementation = match it.next().as_deref() {
                    Some("conad") => Some(Impl::Conad),
                    Some("composed") => Some(Impl::Composed),
                    other => return Err(format!("--impl takes conad or composed, got {other:?}")),
                }
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (use --impl conad|composed [--quick])"
                ));
            }
        }
    }
    Ok(Args {
        implementation: implementation.ok_or("missing --impl conad|composed")?,
        quick,
    })
}

fn input(n: usize, d: usize) -> Tensor {
    let mut rng = SeedTree::new(2024)
        .child("bench-infonce")
        .index(n as u64)
        .rng();
    let mut v = Vec::with_capacity(n * d);
    for _ in 0..n {
        let row: Vec<f32> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.extend(row.iter().map(|x| x / norm));
    }
    Tensor::from_vec(v, (n, d), &Device::Cpu).expect("input tensor")
}

/// One forward + backward; returns (loss, ‖dz‖).
fn step(which: Impl, z: &Var, n_img: usize) -> (f64, f64) {
    let loss = match which {
        Impl::Conad => fused_info_nce(
            z.as_tensor(),
            &RowIds::view_major(n_img, 2),
            &FusedInfoNceConfig::nt_xent(0.5),
        )
        .expect("fused loss"),
        Impl::Composed => {
            let masks = ContrastMasks::instance_discrimination(n_img, 2, AnchorViews::All);
            info_nce(
                z.as_tensor(),
                z.as_tensor(),
                &masks,
                &InfoNceConfig::default(),
            )
            .expect("composed loss")
        }
    };
    let grads = loss.backward().expect("backward");
    let g = grads.get(z.as_tensor()).expect("gradient of z");
    let norm = g
        .sqr()
        .and_then(|x| x.sum_all())
        .and_then(|x| x.to_dtype(DType::F64))
        .and_then(|x| x.to_scalar::<f64>())
        .expect("gradient norm")
        .sqrt();
    let value = loss
        .to_dtype(DType::F64)
        .and_then(|x| x.to_scalar::<f64>())
        .expect("loss value");
    (value, norm)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_infonce: {e}");
            std::process::exit(2);
        }
    };
    let d = 128;
    let sizes: &[usize] = if args.quick {
        &[128, 256]
    } else {
        &[512, 2048, 8192]
    };
    let name = match args.implementation {
        Impl::Conad => "conad",
        Impl::Composed => "composed",
    };
    for &n in sizes {
        let z = Var::from_tensor(&input(n, d)).expect("var");
        let reps = match (args.quick, n) {
            (true, _) => 2,
            (false, n) if n >= 8192 => 3,
            _ => 5,
        };
        // Warm-up (page faults, thread pool) and the memory measurement.
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let (loss, grad_norm) = step(args.implementation, &z, n / 2);
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t = Instant::now();
            let r = step(args.implementation, &z, n / 2);
            times.push(t.elapsed().as_secs_f64());
            assert_eq!(
                r.0.to_bits(),
                loss.to_bits(),
                "{name}: loss changed between runs"
            );
        }
        times.sort_by(f64::total_cmp);
        let seconds = times[times.len() / 2];
        eprintln!(
            "{name} n={n}: {seconds:.4} s, peak {:.1} MiB, loss {loss:.6}",
            peak as f64 / 1048576.0
        );
        println!(
            "{{\"bench\":\"infonce\",\"case\":\"n{n}\",\"impl\":\"{name}\",\"seconds\":{seconds},\
             \"loss\":{loss},\"grad_norm\":{grad_norm},\"peak_alloc_mib\":{},\"n\":{n}}}",
            peak as f64 / 1048576.0
        );
    }
}
