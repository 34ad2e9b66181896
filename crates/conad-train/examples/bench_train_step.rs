//! Benchmark of one SimCLR training step (forward → NT-Xent → backward → AdamW on a freshly
//! augmented batch; augmentation timed separately) and of the optimiser update alone (conad's
//! in-place update vs candle-nn's tensor-op AdamW). The Rust side of `cargo xtask bench train`;
//! the PyTorch side is `xtask/scripts/bench_train.py`.
//!
//! ```text
//! cargo run --release -p conad-train --example bench_train_step -- [--quick] [--steps N]
//!     [--width W] [--batch B] [--side S] [--channels C] [--precision f32|bf16]
//! ```
//! Defaults: width 1/4, 28×28×1, B = 32 source images × 2 views, 5 timed steps after 1 warm-up.
//! Prints one JSON object per measured case on stdout; progress goes to stderr.

use std::time::Instant;

use candle_core::{DType, Device};
use candle_nn::{Optimizer as _, VarMap};
use conad_augment::{Augmenter, ImageBatchU8, presets};
use conad_models::{ResNet, ResNetConfig, seeded_var_builder};
use conad_rng::SeedTree;
use conad_train::{
    AdamConfig, BatchContext, Method, Optimizer, OptimizerConfig, Precision, SimClrConfig,
    SimClrMethod, StepContext, StepHyper,
};
use rand::Rng;
use rayon::prelude::*;

struct Args {
    quick: bool,
    steps: usize,
    width: f64,
    batch: usize,
    side: usize,
    channels: usize,
    precision: Precision,
}

fn parse_args() -> Args {
    let mut a = Args {
        quick: false,
        steps: 5,
        width: 0.25,
        batch: 32,
        side: 28,
        channels: 1,
        precision: Precision::F32,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let val = |i: usize| -> String {
            argv.get(i + 1).cloned().unwrap_or_else(|| {
                eprintln!("{} needs a value", argv[i]);
                std::process::exit(2)
            })
        };
        let num = |s: String| -> f64 {
            s.parse().unwrap_or_else(|_| {
                eprintln!("not a number: {s}");
                std::process::exit(2)
            })
        };
        match argv[i].as_str() {
            "--quick" => a.quick = true,
            "--steps" => {
                a.steps = num(val(i)) as usize;
                i += 1;
            }
            "--width" => {
                a.width = num(val(i));
                i += 1;
            }
            "--batch" => {
                a.batch = num(val(i)) as usize;
                i += 1;
            }
            "--side" => {
                a.side = num(val(i)) as usize;
                i += 1;
            }
            "--precision" => {
                a.precision = val(i).parse().unwrap_or_else(|e: String| {
                    eprintln!("--precision: {e}");
                    std::process::exit(2)
                });
                i += 1;
            }
            "--channels" => {
                a.channels = num(val(i)) as usize;
                i += 1;
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2)
            }
        }
        i += 1;
    }
    if a.quick {
        a.steps = 1;
        a.width = 1.0 / 16.0;
        a.batch = 4;
        a.side = 8;
    }
    a
}

/// Multiply-adds of every convolution of the CIFAR-stem ResNet-18 for one image of
/// `side × side` (3×3 stem, four stages of two BasicBlocks, 1×1 projection shortcuts).
fn conv_macs(resnet: &ResNetConfig, side: usize) -> f64 {
    let widths = resnet.stage_widths();
    let conv =
        |cin: usize, cout: usize, k: usize, out: usize| (cin * cout * k * k * out * out) as f64;
    let mut macs = conv(resnet.in_channels, widths[0], 3, side);
    let (mut cin, mut s) = (widths[0], side);
    for (i, &w) in widths.iter().enumerate() {
        if i > 0 {
            s = s.div_ceil(2);
        }
        // First block: 3×3 (strided), 3×3, and a 1×1 projection when the shape changes.
        macs += conv(cin, w, 3, s) + conv(w, w, 3, s);
        if i > 0 || cin != w {
            macs += conv(cin, w, 1, s);
        }
        // Second block: two 3×3.
        macs += 2.0 * conv(w, w, 3, s);
        cin = w;
    }
    macs
}

/// Peak f32 multiply-add rate of this machine on every rayon thread: a loop of independent
/// AVX-512 FMAs (16 lanes, 12 accumulators to cover the latency) per thread, in GFLOP/s (2 flops
/// per multiply-add); `None` without AVX-512F.
fn fma_peak_gflops() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return None;
        }
        const ITERS: u64 = 20_000_000;
        const ACC: u64 = 12;
        #[target_feature(enable = "avx512f")]
        fn fma_loop(seed: f32) -> f32 {
            use std::arch::x86_64::*;
            let a = _mm512_set1_ps(1.000_000_1);
            let b = _mm512_set1_ps(seed * 1e-9);
            let mut acc = [_mm512_set1_ps(seed); ACC as usize];
            for _ in 0..ITERS {
                for x in &mut acc {
                    *x = _mm512_fmadd_ps(*x, a, b);
                }
            }
            let mut total = _mm512_setzero_ps();
            for x in acc {
                total = _mm512_add_ps(total, x);
            }
            _mm512_reduce_add_ps(total)
        }
        let threads = rayon::current_num_threads();
        let t = Instant::now();
        let sums: Vec<f32> = (0..threads)
            .into_par_iter()
            .map(|k| {
                // SAFETY: AVX-512F was detected above.
                unsafe { fma_loop(k as f32 + 1.0) }
            })
            .collect();
        let secs = t.elapsed().as_secs_f64();
        std::hint::black_box(sums);
        let flops = 2.0 * (ITERS * ACC * 16) as f64 * threads as f64;
        Some(flops / secs / 1e9)
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Large blocks (activations, gradients) on transparent huge pages (conad-engine's
/// `HugePageAlloc`; width-1 training steps measured 3–10 % faster).
#[global_allocator]
static ALLOC: conad_train::HugePageAlloc = conad_train::HugePageAlloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As the `conad` binary does (see its `single_thread_candle_pool`): candle's own pool only
    // serves the small head/loss ops, and its spinning workers compete with the engine's GEMMs.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: first statement of `main`, before any other thread exists.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    let args = parse_args();
    let dev = Device::Cpu;
    let n_images = args.batch * 4;
    let mut rng = SeedTree::new(0).child("bench-data").rng();
    let pixels: Vec<u8> = (0..n_images * args.side * args.side * args.channels)
        .map(|_| rng.random())
        .collect();
    let images = ImageBatchU8::new(&pixels, n_images, args.side, args.side, args.channels)?;
    let labels = vec![0u32; n_images];
    let augmenter = Augmenter::new(&presets::simclr_cifar(args.side), SeedTree::new(0))?;

    let resnet = ResNetConfig {
        in_channels: args.channels,
        width_multiplier: args.width,
        ..Default::default()
    };
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, SeedTree::new(0).child("init"), DType::F32, &dev);
    let encoder = ResNet::new(&resnet, vb.pp("encoder"))?;
    let method = SimClrMethod::new(&SimClrConfig::default(), &resnet, vb.pp("heads"))?;
    let adamw = OptimizerConfig::AdamW(AdamConfig {
        weight_decay: 0.01,
        ..Default::default()
    });
    let mut opt = Optimizer::from_varmap(adamw, &varmap, |_| true)?;
    eprintln!(
        "SimCLR step: width {}, {}x{}x{}, B = {} x 2 views, {} trainable scalars, {} threads",
        args.width,
        args.side,
        args.side,
        args.channels,
        args.batch,
        opt.num_scalars(),
        rayon::current_num_threads()
    );

    let (mut aug_t, mut fwd_t, mut bwd_t, mut opt_t, mut step_t) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut last_grads = None;
    for step in 0..=args.steps {
        let lo = (step * args.batch) % (n_images - args.batch + 1);
        let indices: Vec<usize> = (lo..lo + args.batch).collect();
        let t0 = Instant::now();
        // One "epoch" per step: every step draws fresh augmentations.
        let ctx = StepContext::new(&SeedTree::new(0), step as u64, 0, 1, args.steps as u64 + 1);
        let batch = method.batch(&BatchContext {
            images: &images,
            labels: &labels,
            indices: &indices,
            step: &ctx,
            augmenter: &augmenter,
            device: &dev,
        })?;
        let t1 = Instant::now();
        let scope = args.precision.scope()?;
        // As the trainer's step: parameter gradients of the fused blocks handed over directly.
        let direct = conad_engine::DirectGradients::scope();
        let out = method.forward_loss(&encoder, &batch, &ctx)?;
        let loss = out.loss.to_scalar::<f32>()?;
        let t2 = Instant::now();
        let mut grads = out.loss.backward()?;
        direct.merge_into(&mut grads)?;
        drop(scope);
        let t3 = Instant::now();
        opt.step(&grads, StepHyper::lr(1e-3))?;
        let t4 = Instant::now();
        eprintln!(
            "step {step}: loss {loss:.4}, augment {:.3}s forward {:.3}s backward {:.3}s optimizer {:.4}s",
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t2).as_secs_f64(),
            (t4 - t3).as_secs_f64()
        );
        if step > 0 {
            aug_t.push((t1 - t0).as_secs_f64());
            fwd_t.push((t2 - t1).as_secs_f64());
            bwd_t.push((t3 - t2).as_secs_f64());
            opt_t.push((t4 - t3).as_secs_f64());
            // The compared step excludes augmentation (reported separately as `augment_s`):
            // the PyTorch side of `cargo xtask bench train` times a pre-augmented batch too.
            step_t.push((t4 - t1).as_secs_f64());
        }
        last_grads = Some(grads);
    }
    let views = 2 * args.batch;
    let step_s = median(step_t);
    // Convolution work of a step: forward, input gradient (not for the stem) and weight
    // gradient, 2 flops per multiply-add.
    let fwd_macs = conv_macs(&resnet, args.side);
    let stem_macs = (args.channels * resnet.stage_widths()[0] * 9 * args.side * args.side) as f64;
    let step_gflop = 2.0 * views as f64 * (3.0 * fwd_macs - stem_macs) / 1e9;
    let effective = step_gflop / step_s;
    let peak = if args.quick { None } else { fma_peak_gflops() };
    eprintln!(
        "convolution work {step_gflop:.2} GFLOP per step: {effective:.1} GF/s effective{}",
        peak.map_or_else(String::new, |p| format!(
            ", {:.1} % of the {p:.0} GF/s FMA peak measured on {} threads",
            100.0 * effective / p,
            rayon::current_num_threads()
        ))
    );
    let peak_fields = peak.map_or_else(String::new, |p| {
        format!(
            ",\"peak_gflops\":{p:.1},\"peak_fraction\":{:.4}",
            effective / p
        )
    });
    println!(
        "{{\"bench\":\"train_step\",\"case\":\"simclr_w{}_{}x{}x{}_b{}x2{}\",\"impl\":\"conad\",\"seconds\":{step_s:.6},\"images_per_second\":{:.3},\"source_images_per_second\":{:.3},\"augment_s\":{:.6},\"forward_s\":{:.6},\"backward_s\":{:.6},\"optimizer_s\":{:.6},\"conv_gflop\":{step_gflop:.4},\"effective_gflops\":{effective:.2}{peak_fields}}}",
        args.width,
        args.side,
        args.side,
        args.channels,
        args.batch,
        if args.precision == Precision::Bf16 {
            "_bf16"
        } else {
            ""
        },
        views as f64 / step_s,
        args.batch as f64 / step_s,
        median(aug_t),
        median(fwd_t),
        median(bwd_t),
        median(opt_t),
    );

    // The optimiser update alone on the same gradients: conad's in-place pass vs candle-nn's
    // AdamW (about ten tensor ops per parameter).
    let grads = last_grads.ok_or("no step ran")?;
    let reps = if args.quick { 3 } else { 20 };
    let mut ours = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        opt.step(&grads, StepHyper::lr(1e-3))?;
        ours.push(t.elapsed().as_secs_f64());
    }
    let vars: Vec<_> = {
        let data = varmap.data().lock().map_err(|_| "poisoned")?;
        data.iter()
            .filter(|(k, _)| !conad_train::is_batch_norm_statistic(k))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let mut candle_adamw = candle_nn::AdamW::new(
        vars,
        candle_nn::ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.01,
            ..Default::default()
        },
    )?;
    let mut theirs = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        candle_adamw.step(&grads)?;
        theirs.push(t.elapsed().as_secs_f64());
    }
    let scalars = opt.num_scalars();
    for (name, times) in [("conad-inplace", ours), ("candle-nn", theirs)] {
        let s = median(times);
        println!(
            "{{\"bench\":\"optimizer_step\",\"case\":\"adamw_{scalars}params\",\"impl\":\"{name}\",\"seconds\":{s:.6},\"params_per_second\":{:.1}}}",
            scalars as f64 / s
        );
    }
    Ok(())
}
