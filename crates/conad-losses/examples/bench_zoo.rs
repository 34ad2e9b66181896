//! Per-step cost of the objective zoo: forward + backward of each objective at the batch sizes of
//! docs/reference.md §1.3–§1.8, f32 on the CPU, composed and (where offered) fused compute paths.
//!
//! ```text
//! cargo run --release -p conad-losses --example bench_zoo [-- --quick]
//! ```
//!
//! One JSON line per case on stdout:
//! `{"bench":"zoo","case":"csi_n128","impl":"conad-composed","seconds":…,"loss":…,"rows":1024}`
//! — `seconds` is the median of the repetitions of forward + backward (mask building included).
//! Inputs come from a fixed seed (conad-rng).

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use conad_losses::{
    Con2, Con2Config, Csi, CsiConfig, Firm, FirmConfig, FirmVariant, InfoNceBackend, KeConfig,
    KeLoss, L2_EPS, MilConv, MilConvConfig, Msc, MscConfig, SoftAggregationConfig, UniClr,
    UniClrConfig, l2_normalize,
};
use conad_rng::SeedTree;
use rand::Rng;
use rand_distr::StandardNormal;

fn randn(seed: u64, rows: usize, cols: usize) -> Tensor {
    let mut rng = SeedTree::new(seed).child("bench_zoo").rng();
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `f(z) → loss; loss.backward()` on a fresh Var of `rows × d`.
fn time(case: &str, imp: &str, rows: usize, d: usize, reps: usize, f: impl Fn(&Tensor) -> Tensor) {
    let h = Var::from_tensor(&randn(rows as u64, rows, d)).unwrap();
    let mut secs = Vec::new();
    let mut loss = 0.0;
    for _ in 0..reps {
        let t = Instant::now();
        let z = l2_normalize(h.as_tensor(), L2_EPS).unwrap();
        let l = f(&z);
        let g = l.backward().unwrap();
        assert!(g.get(h.as_tensor()).is_some());
        secs.push(t.elapsed().as_secs_f64());
        loss = l.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
    }
    println!(
        "{{\"bench\":\"zoo\",\"case\":\"{case}\",\"impl\":\"{imp}\",\"seconds\":{:.6},\"loss\":{loss:.6},\"rows\":{rows}}}",
        median(secs)
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, reps, d) = if quick { (8, 3, 16) } else { (128, 5, 128) };
    let backends = [
        ("conad-composed", InfoNceBackend::Composed),
        ("conad-fused", InfoNceBackend::Fused),
    ];
    for (imp, backend) in backends {
        // CSI: N images × 4 rotations × 2 views.
        let csi = Csi::new(CsiConfig {
            backend,
            ..CsiConfig::default()
        })
        .unwrap();
        let logits = randn(1, 8 * n, 4);
        time(&format!("csi_n{n}"), imp, 8 * n, d, reps, |z| {
            csi.forward(z, &logits).unwrap()
        });
        // CON2: N images × 2 contexts × 2 views, content head = context head here.
        let con2 = Con2::new(Con2Config {
            backend,
            ..Con2Config::default()
        })
        .unwrap();
        time(&format!("con2_n{n}"), imp, 4 * n, d, reps, |z| {
            con2.forward(z, z, 10, 100).unwrap()
        });
        // UniCLR: B = N/4 inliers + 3B rotations, two views.
        let inlier: Vec<bool> = (0..n).map(|i| i % 4 == 0).collect();
        let uni = UniClr::new(UniClrConfig {
            backend,
            ..UniClrConfig::default()
        })
        .unwrap();
        time(&format!("uniclr_m{n}"), imp, 2 * n, d, reps, |z| {
            uni.forward(
                &z.narrow(0, 0, n).unwrap(),
                &z.narrow(0, n, n).unwrap(),
                &inlier,
            )
            .unwrap()
        });
        // FIRM pairwise, batch 32 (its training batch).
        let labels: Vec<i64> = (0..32).map(|i| if i % 4 == 0 { 0 } else { -1 }).collect();
        let firm = Firm::new(FirmConfig {
            variant: FirmVariant::Pairwise,
            backend,
            ..FirmConfig::default()
        })
        .unwrap();
        time("firm_pair_n32", imp, 64, d, reps, |z| {
            firm.forward(
                &z.narrow(0, 0, 32).unwrap(),
                &z.narrow(0, 32, 32).unwrap(),
                &labels,
            )
            .unwrap()
        });
        // MSC / MIL-Conv L_Mean on CSI's 8N rows.
        let msc = Msc::new(MscConfig {
            backend,
            ..MscConfig::default()
        })
        .unwrap();
        let c = l2_normalize(&randn(2, 1, d), L2_EPS)
            .unwrap()
            .squeeze(0)
            .unwrap();
        time(&format!("msc_n{n}"), imp, 8 * n, d, reps, |z| {
            msc.forward(
                &z.narrow(0, 0, 4 * n).unwrap(),
                &z.narrow(0, 4 * n, 4 * n).unwrap(),
                Some(&c),
            )
            .unwrap()
        });
    }
    // Composed-only objectives.
    let inlier: Vec<bool> = (0..n).map(|i| i % 4 == 0).collect();
    let sa = UniClr::new(UniClrConfig {
        soft_aggregation: Some(SoftAggregationConfig::default()),
        ..UniClrConfig::default()
    })
    .unwrap();
    time(
        &format!("uniclr_sa_m{n}"),
        "conad-composed",
        2 * n,
        d,
        reps,
        |z| {
            sa.forward(
                &z.narrow(0, 0, n).unwrap(),
                &z.narrow(0, n, n).unwrap(),
                &inlier,
            )
            .unwrap()
        },
    );
    let ke = KeLoss::new(KeConfig::default()).unwrap();
    time(&format!("ke_n{n}"), "conad-composed", 5 * n, d, reps, |z| {
        let a = z.narrow(0, 0, n).unwrap();
        let p = z.narrow(0, n, 2 * n).unwrap().reshape((n, 2, d)).unwrap();
        let q = z
            .narrow(0, 3 * n, 2 * n)
            .unwrap()
            .reshape((n, 2, d))
            .unwrap();
        ke.forward(&a, &p, &q).unwrap()
    });
    let mil = MilConv::new(MilConvConfig::default()).unwrap();
    time(
        &format!("mil_conv_n{}", 2 * n),
        "conad-composed",
        2 * n,
        d,
        reps,
        |z| {
            let mut rng = SeedTree::new(0).child("mil_conv").index(0).rng();
            mil.forward(z, &mut rng).unwrap()
        },
    );
}
