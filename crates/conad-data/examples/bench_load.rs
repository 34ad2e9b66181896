//! Benchmark: wall time to load data sets into memory (decompress + parse + build `Dataset`s).
//!
//! ```text
//! cargo run --release -p conad-data --example bench_load -- \
//!     [--dir /usr/share/datasets/fashion-mnist] [--spec SPEC]... [--repeats 5] [--quick]
//! ```
//! Cases: `fashion-mnist` (from `--dir`, all 70 000 images, IDX .gz; skipped with a note on stderr
//! when the folder is missing), `embedded-fashion-mnist` (always), and one case per `--spec`
//! (named after the spec's kind and file stem). `--quick`: the embedded case only, 1 repeat.
//! Prints one JSON object per case on stdout (benchmark contract); the median over repeats.

use conad_data::{DataSpec, LoadedData};
use std::path::PathBuf;
use std::time::Instant;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn images(d: &LoadedData) -> (usize, usize) {
    let n = d.train.len() + d.test.len() + d.val.as_ref().map_or(0, |v| v.len());
    let bytes =
        d.train.images.len() + d.test.images.len() + d.val.as_ref().map_or(0, |v| v.images.len());
    (n, bytes)
}

fn case_name(spec: &DataSpec) -> String {
    let loc = spec.to_string();
    let loc = loc
        .split_once(':')
        .map_or(loc.as_str(), |(_, l)| l)
        .to_string();
    let stem = PathBuf::from(loc.split(',').next().unwrap_or(""))
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{}-{stem}", spec.kind())
}

fn bench(case: &str, spec: &DataSpec, repeats: usize) -> Result<(), String> {
    let mut times = Vec::with_capacity(repeats);
    let mut last = None;
    for _ in 0..repeats {
        let t = Instant::now();
        let data = spec.load().map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64());
        last = Some(data);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let (n, bytes) = last.as_ref().map(images).unwrap_or((0, 0));
    println!(
        "{{\"bench\":\"load\",\"case\":\"{case}\",\"impl\":\"conad\",\"seconds\":{median:.6},\"min_seconds\":{:.6},\
         \"images\":{n},\"mib_per_s\":{:.1},\"threads\":{},\"peak_rss_mib\":{:.1}}}",
        times[0],
        bytes as f64 / (1 << 20) as f64 / median,
        rayon::current_num_threads(),
        peak_rss_mib()
    );
    Ok(())
}

fn main() {
    let mut dir = PathBuf::from("/usr/share/datasets/fashion-mnist");
    let mut specs: Vec<String> = Vec::new();
    let mut repeats = 5usize;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dir" => dir = args.next().expect("--dir needs a folder").into(),
            "--spec" => specs.push(args.next().expect("--spec needs a data set spec")),
            "--repeats" => {
                repeats = args
                    .next()
                    .and_then(|r| r.parse().ok())
                    .expect("--repeats needs a number")
            }
            "--quick" => quick = true,
            "-h" | "--help" => {
                eprintln!(
                    "usage: bench_load [--dir FASHION_MNIST_DIR] [--spec SPEC]... [--repeats N] [--quick]"
                );
                return;
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    if quick {
        repeats = 1;
    }
    let mut cases: Vec<(String, DataSpec)> = Vec::new();
    if !quick {
        if dir.is_dir() {
            cases.push(("fashion-mnist".into(), DataSpec::FashionMnist(dir.clone())));
        } else {
            eprintln!(
                "{} not found: skipping the fashion-mnist case",
                dir.display()
            );
        }
    }
    cases.push((
        "embedded-fashion-mnist".into(),
        "embedded:fashion-mnist".parse().expect("valid spec"),
    ));
    if !quick {
        for s in &specs {
            match s.parse::<DataSpec>() {
                Ok(spec) => cases.push((case_name(&spec), spec)),
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
            }
        }
    }
    let mut failed = false;
    for (case, spec) in &cases {
        if let Err(e) = bench(case, spec, repeats) {
            eprintln!("{case}: {e}");
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}
