//! Throughput of SimCLR augmentation at CIFAR strength on 32×32 RGB images (docs/reference.md §3.1):
//! RandomResizedCrop(32, (0.08, 1), (3/4, 4/3)) → hflip 0.5 → ColorJitter(0.4, 0.4, 0.4, 0.1)
//! p 0.8 → RandomGrayscale 0.2, two views per image, into the view-major (2N, 3, 32, 32) buffer.
//! Reference: `xtask/scripts/bench_augment.py` (torchvision 0.14 transforms on tensors).
//!
//! ```text
//! cargo run --release -p conad-augment --example bench_augment -- [--quick] [--images N]
//!     [--batch B] [--views V] [--threads T] [--repeats R]
//! ```
//! Prints one JSON object per case on stdout, e.g.
//! `{"bench":"augment","case":"simclr_cifar32","impl":"conad","seconds":…,"images_per_s":…}`;
//! `seconds` is the median over the repeats of the time to augment all `images` once
//! (`images_per_s` counts output views). Random uint8 images come from a fixed seed. Defaults:
//! 4096 images (512 with `--quick`, matching the Python side, whose per-image loop is slow),
//! batches of 512, 2 views, rayon's default thread count, 5 repeats after one warm-up pass.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use conad_augment::{Augmenter, ImageBatchU8, presets};
use conad_rng::SeedTree;
use rand::Rng;

struct Args {
    quick: bool,
    images: usize,
    batch: usize,
    views: usize,
    threads: Option<usize>,
    repeats: usize,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        quick: false,
        images: 4096,
        batch: 512,
        views: 2,
        threads: None,
        repeats: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<usize> {
            it.next()
                .with_context(|| format!("{name} needs a value"))?
                .parse::<usize>()
                .with_context(|| format!("{name} needs a positive integer"))
        };
        match flag.as_str() {
            "--quick" => a.quick = true,
            "--images" => a.images = value("--images")?,
            "--batch" => a.batch = value("--batch")?,
            "--views" => a.views = value("--views")?,
            "--threads" => a.threads = Some(value("--threads")?),
            "--repeats" => a.repeats = value("--repeats")?,
            other => bail!("unknown argument {other:?}; see the example's doc comment"),
        }
    }
    if a.quick {
        a.images = a.images.min(512);
        a.repeats = a.repeats.min(2);
    }
    if a.images == 0 || a.batch == 0 || a.views == 0 || a.repeats == 0 {
        bail!("--images, --batch, --views and --repeats must be positive");
    }
    Ok(a)
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    if let Some(t) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()?;
    }
    let threads = rayon::current_num_threads();
    let (h, w, c) = (32, 32, 3);
    let mut rng = SeedTree::new(0).child("bench-images").rng();
    let data: Vec<u8> = (0..args.images * h * w * c).map(|_| rng.random()).collect();
    let images = ImageBatchU8::new(&data, args.images, h, w, c)?;
    let aug = Augmenter::new(&presets::simclr_cifar(32), SeedTree::new(0))?;
    let b = args.batch.min(args.images);
    let mut out = vec![0.0f32; args.views * b * c * h * w];
    let indices: Vec<usize> = (0..args.images).collect();

    let mut run_epoch = |epoch: u64| -> Result<f64> {
        let t = Instant::now();
        for chunk in indices.chunks(b) {
            let len = args.views * chunk.len() * c * h * w;
            aug.augment_batch_into(&images, chunk, epoch, args.views, &mut out[..len])?;
        }
        Ok(t.elapsed().as_secs_f64())
    };
    run_epoch(u64::MAX)?; // warm-up
    let mut times: Vec<f64> = (0..args.repeats as u64)
        .map(&mut run_epoch)
        .collect::<Result<_>>()?;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let views = (args.views * args.images) as f64;
    eprintln!(
        "conad-augment: {} images × {} views in {:.4} s (median of {}) = {:.0} views/s on {} threads; min {:.4} s",
        args.images,
        args.views,
        median,
        args.repeats,
        views / median,
        threads,
        times[0]
    );
    println!(
        "{{\"bench\":\"augment\",\"case\":\"simclr_cifar32\",\"impl\":\"conad\",\"seconds\":{median:.6},\
         \"images_per_s\":{:.1},\"images\":{},\"views\":{},\"batch\":{b},\"threads\":{threads},\
         \"peak_rss_mib\":{:.1}}}",
        views / median,
        args.images,
        args.views,
        peak_rss_mib()
    );
    Ok(())
}
