//! `cargo xtask bench infonce`: the fused InfoNCE of conad-kernels ("conad") vs the same loss
//! composed from candle ops in conad-losses ("composed"), forward + backward, NT-Xent on
//! N ∈ {512, 2048, 8192} rows, d = 128, f32, CPU. Both sides are the same example binary
//! (`crates/conad-losses/examples/bench_infonce.rs`, in conad-losses because it needs both crates)
//! with `--impl conad` / `--impl composed`, run alternately in separate processes; each case also
//! reports the peak of live heap bytes (`peak_alloc_mib`). The two sides must agree on the loss
//! and the gradient norm. Headline: the speed-up at N = 2048.
use super::BenchArgs;
use super::runner::{BenchSpec, Side};
use std::path::Path;

pub fn spec(_root: &Path, args: &BenchArgs) -> BenchSpec {
    let side = |implementation: &str| Side::Example {
        krate: "conad-losses",
        example: "bench_infonce",
        args: vec!["--impl".into(), implementation.into()],
        env: vec![],
    };
    BenchSpec {
        name: "infonce",
        sides: vec![side("conad"), side("composed")],
        headline: "infonce_speedup fused/composed @2048",
        headline_ref: Some("composed"),
        // `--quick` runs N ∈ {128, 256}: take every case then.
        headline_cases: if args.quick { vec![] } else { vec!["n2048"] },
        agree: vec![("loss", 1e-4), ("grad_norm", 1e-4)],
    }
}
