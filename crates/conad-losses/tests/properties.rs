//! Hand-computed examples (docs/reference.md §7), identities between losses, error handling and a
//! finite-difference gradient check of the generic kernel.

use candle_core::{DType, Device, Tensor, Var};
use conad_losses::{
    AnchorViews, ContrastMasks, EmptyAnchors, Error, InfoNceConfig, NtXent, NtXentConfig,
    NtXentVariant, PositiveReduction, SupCon, SupConConfig, info_nce, info_nce_per_anchor,
    l2_normalize, masked_log_softmax,
};
use conad_rng::SeedTree;
use proptest::prelude::*;
use rand_distr::{Distribution, StandardNormal};

fn randn(seed: u64, shape: &[usize]) -> Tensor {
    let mut rng = SeedTree::new(seed).rng();
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

#[test]
fn methods_section7_orthogonal_images_with_identical_views() {
    // z = [e1, e2 ; e1, e2] (view-major). Anchor e1: positive e1 (s = 1), negatives e2, e2
    // (s = 0), the anchor itself excluded → ℓ = −log(e^{1/τ} / (e^{1/τ} + 2)) for every anchor.
    // Including the diagonal would give −log(e^{1/τ} / (2e^{1/τ} + 2)) instead.
    let z = Tensor::new(&[[1f64, 0.0], [0.0, 1.0]], &Device::Cpu).unwrap();
    for tau in [0.1f64, 0.5, 1.0] {
        let e = (1.0 / tau).exp();
        let want = -(e / (e + 2.0)).ln();
        let loss = NtXent::new(NtXentConfig {
            temperature: tau,
            variant: NtXentVariant::Symmetric,
        })
        .unwrap()
        .forward(&z, &z)
        .unwrap();
        assert!((scalar(&loss) - want).abs() < 1e-12, "τ = {tau}");
        // Every anchor, not only the mean.
        let zz = Tensor::cat(&[&z, &z], 0).unwrap();
        let masks = ContrastMasks::instance_discrimination(2, 2, AnchorViews::All);
        let per = info_nce_per_anchor(
            &zz,
            &zz,
            &masks,
            &InfoNceConfig {
                temperature: tau,
                ..Default::default()
            },
        )
        .unwrap();
        for l in per.losses.to_vec1::<f64>().unwrap() {
            assert!((l - want).abs() < 1e-12);
        }
        // The same through SupCon without labels.
        let f = Tensor::stack(&[&z, &z], 1).unwrap();
        let sc = SupCon::new(SupConConfig {
            temperature: tau,
            base_temperature: tau,
            anchors: AnchorViews::All,
        })
        .unwrap();
        assert!((scalar(&sc.forward(&f, None).unwrap()) - want).abs() < 1e-12);
    }
}

#[test]
fn supcon_with_distinct_labels_equals_nt_xent() {
    let h = randn(1, &[6, 2, 8]);
    let f = {
        let flat = l2_normalize(&h.reshape((12, 8)).unwrap(), 1e-8).unwrap();
        flat.reshape((6, 2, 8)).unwrap()
    };
    let z1 = f.narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
    let z2 = f.narrow(1, 1, 1).unwrap().squeeze(1).unwrap();
    for tau in [0.07, 0.5] {
        let nt = NtXent::new(NtXentConfig {
            temperature: tau,
            ..Default::default()
        })
        .unwrap()
        .forward(&z1, &z2)
        .unwrap();
        let sc = SupCon::new(SupConConfig {
            temperature: tau,
            base_temperature: tau,
            anchors: AnchorViews::All,
        })
        .unwrap();
        let distinct = sc.forward(&f, Some(&[10, 11, 12, 13, 14, 15])).unwrap();
        let none = sc.forward(&f, None).unwrap();
        assert!((scalar(&nt) - scalar(&distinct)).abs() < 1e-12);
        assert!((scalar(&nt) - scalar(&none)).abs() < 1e-12);
    }
    // With repeated labels the loss differs.
    let sc = SupCon::new(SupConConfig {
        temperature: 0.5,
        base_temperature: 0.5,
        anchors: AnchorViews::All,
    })
    .unwrap();
    let rep = sc.forward(&f, Some(&[0, 0, 1, 1, 2, 2])).unwrap();
    let nt = NtXent::new(NtXentConfig::default())
        .unwrap()
        .forward(&z1, &z2)
        .unwrap();
    assert!((scalar(&rep) - scalar(&nt)).abs() > 1e-3);
}

#[test]
fn supcon_temperature_ratio_scales_the_loss() {
    let f = l2_normalize(&randn(2, &[10, 6]), 1e-8)
        .unwrap()
        .reshape((5, 2, 6))
        .unwrap();
    let y = [0, 1, 0, 1, 2];
    let base = SupCon::new(SupConConfig {
        temperature: 0.1,
        base_temperature: 0.1,
        anchors: AnchorViews::All,
    })
    .unwrap();
    let scaled = SupCon::new(SupConConfig {
        temperature: 0.1,
        base_temperature: 0.07,
        anchors: AnchorViews::All,
    })
    .unwrap();
    let (a, b) = (
        scalar(&base.forward(&f, Some(&y)).unwrap()),
        scalar(&scaled.forward(&f, Some(&y)).unwrap()),
    );
    assert!((b - a * 0.1 / 0.07).abs() < 1e-12);
}

#[test]
fn anchors_without_positives_contribute_zero_and_count_or_are_dropped() {
    // Hand example: 3 anchors × 3 keys, unit logits (q·k = 0 → all s = 0), τ = 1.
    // Anchor 0: keys {1, 2} valid, positive 1 → ℓ = log 2. Anchor 1: positive 0, keys {0, 2}
    // → log 2. Anchor 2: no positive → 0.
    let q = Tensor::zeros((3, 2), DType::F64, &Device::Cpu).unwrap();
    let masks = ContrastMasks::new(
        3,
        3,
        vec![false, true, true, true, false, true, true, true, false],
        vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    )
    .unwrap();
    let ln2 = 2f64.ln();
    let count = InfoNceConfig {
        temperature: 1.0,
        ..Default::default()
    };
    let drop = InfoNceConfig {
        empty_anchors: EmptyAnchors::Drop,
        ..count
    };
    let per = info_nce_per_anchor(&q, &q, &masks, &count).unwrap();
    let l = per.losses.to_vec1::<f64>().unwrap();
    assert!((l[0] - ln2).abs() < 1e-12 && (l[1] - ln2).abs() < 1e-12 && l[2] == 0.0);
    assert_eq!(per.has_positive, vec![true, true, false]);
    assert!((scalar(&info_nce(&q, &q, &masks, &count).unwrap()) - 2.0 * ln2 / 3.0).abs() < 1e-12);
    assert!((scalar(&info_nce(&q, &q, &masks, &drop).unwrap()) - ln2).abs() < 1e-12);
    // No positives anywhere.
    let none = ContrastMasks::new(1, 2, vec![true, true], vec![0.0, 0.0]).unwrap();
    let q1 = Tensor::zeros((1, 2), DType::F64, &Device::Cpu).unwrap();
    let k2 = Tensor::zeros((2, 2), DType::F64, &Device::Cpu).unwrap();
    assert_eq!(scalar(&info_nce(&q1, &k2, &none, &count).unwrap()), 0.0);
    assert!(matches!(
        info_nce(&q1, &k2, &none, &drop),
        Err(Error::NoPositives)
    ));
}

#[test]
fn l_in_hand_example() {
    // One anchor, logits s = [0, ln 2, ln 3] (τ = 1), all valid, positives {1, 2} with weights
    // {1, 1}: p = [1, 2, 3]/6 → L_out = −(ln(2/6) + ln(3/6))/2, L_in = −ln(5/6),
    // L_in with mean inside = −ln(5/12).
    let q = Tensor::new(&[[1f64]], &Device::Cpu).unwrap();
    let k = Tensor::new(&[[0f64], [2f64.ln()], [3f64.ln()]], &Device::Cpu).unwrap();
    let masks = ContrastMasks::new(1, 3, vec![true; 3], vec![0.0, 1.0, 1.0]).unwrap();
    for (red, want) in [
        (
            PositiveReduction::MeanLogProb,
            -((2.0f64 / 6.0).ln() + (3.0f64 / 6.0).ln()) / 2.0,
        ),
        (PositiveReduction::LogSumProb, -(5.0f64 / 6.0).ln()),
        (PositiveReduction::LogMeanProb, -(5.0f64 / 12.0).ln()),
    ] {
        let cfg = InfoNceConfig {
            temperature: 1.0,
            reduction: red,
            empty_anchors: EmptyAnchors::CountAsZero,
        };
        assert!(
            (scalar(&info_nce(&q, &k, &masks, &cfg).unwrap()) - want).abs() < 1e-12,
            "{red:?}"
        );
    }
}

#[test]
fn small_temperature_does_not_overflow() {
    // τ = 0.01 → logits up to ±100 and e^{200} gaps; the row-max shift keeps everything finite.
    let z = l2_normalize(&randn(3, &[8, 4]), 1e-8)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    let loss = NtXent::new(NtXentConfig {
        temperature: 0.01,
        ..Default::default()
    })
    .unwrap()
    .forward(&z.narrow(0, 0, 4).unwrap(), &z.narrow(0, 4, 4).unwrap())
    .unwrap();
    assert!(scalar(&loss).is_finite() && scalar(&loss) >= 0.0);
    // Invalid keys never enter a row: with every key but one masked, log p of that key is 0.
    let q = Tensor::new(&[[100f64, 0.0]], &Device::Cpu).unwrap();
    let k = Tensor::new(&[[1f64, 0.0], [-1.0, 0.0], [0.0, 1.0]], &Device::Cpu).unwrap();
    let masks = ContrastMasks::new(1, 3, vec![false, true, false], vec![0.0, 1.0, 0.0]).unwrap();
    let lp = masked_log_softmax(&q, &k, &masks, 0.01)
        .unwrap()
        .to_vec2::<f64>()
        .unwrap();
    assert_eq!(lp[0][1], 0.0);
}

#[test]
fn finite_difference_gradient_check() {
    let q0 = randn(4, &[4, 3]);
    let k0 = randn(5, &[6, 3]);
    let masks = ContrastMasks::from_fn(4, 6, |i, j| {
        let valid = (i + 2 * j) % 5 != 0;
        let w = if valid && (i * j + i) % 3 == 0 {
            0.5 + (i + j) as f32 * 0.25
        } else {
            0.0
        };
        (valid, w)
    })
    .unwrap();
    for red in [
        PositiveReduction::MeanLogProb,
        PositiveReduction::LogSumProb,
        PositiveReduction::LogMeanProb,
    ] {
        let cfg = InfoNceConfig {
            temperature: 0.4,
            reduction: red,
            empty_anchors: EmptyAnchors::Drop,
        };
        let f = |q: &Tensor, k: &Tensor| scalar(&info_nce(q, k, &masks, &cfg).unwrap());
        let qv = Var::from_tensor(&q0).unwrap();
        let kv = Var::from_tensor(&k0).unwrap();
        let grads = info_nce(qv.as_tensor(), kv.as_tensor(), &masks, &cfg)
            .unwrap()
            .backward()
            .unwrap();
        for (which, base) in [(0, &q0), (1, &k0)] {
            let g = grads
                .get(if which == 0 {
                    qv.as_tensor()
                } else {
                    kv.as_tensor()
                })
                .unwrap();
            let g = g.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let flat = base.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let h = 1e-6;
            for idx in 0..flat.len() {
                let perturb = |delta: f64| {
                    let mut v = flat.clone();
                    v[idx] += delta;
                    let t = Tensor::from_vec(v, base.dims(), &Device::Cpu).unwrap();
                    if which == 0 { f(&t, &k0) } else { f(&q0, &t) }
                };
                let fd = (perturb(h) - perturb(-h)) / (2.0 * h);
                assert!(
                    (fd - g[idx]).abs() < 1e-7 * (1.0 + fd.abs()),
                    "{red:?} input {which}[{idx}]: fd {fd} vs autograd {}",
                    g[idx]
                );
            }
        }
    }
}

#[test]
fn bad_inputs_give_typed_errors() {
    for tau in [0.0, -0.5, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            NtXent::new(NtXentConfig {
                temperature: tau,
                ..Default::default()
            }),
            Err(Error::InvalidTemperature { .. })
        ));
        assert!(matches!(
            SupCon::new(SupConConfig {
                base_temperature: tau,
                ..Default::default()
            }),
            Err(Error::InvalidTemperature {
                name: "base_temperature",
                ..
            })
        ));
    }
    let z = randn(6, &[4, 3]);
    let nt = NtXent::new(NtXentConfig::default()).unwrap();
    assert!(matches!(
        nt.forward(&z, &z.narrow(0, 0, 3).unwrap()),
        Err(Error::Shape { .. })
    ));
    let sc = SupCon::new(SupConConfig::default()).unwrap();
    assert!(matches!(
        sc.forward(&z, None),
        Err(Error::Shape {
            what: "features",
            ..
        })
    ));
    let f = randn(7, &[4, 2, 3]);
    assert!(matches!(
        sc.forward(&f, Some(&[0, 1, 2])),
        Err(Error::LabelCount {
            got: 3,
            expected: 4,
            ..
        })
    ));
    assert!(matches!(
        sc.forward_with_mask(&f, &[true; 9]),
        Err(Error::LabelCount { .. })
    ));
    // z has 4 rows, the masks are for 3 images × 2 views = 6 rows.
    let masks = ContrastMasks::instance_discrimination(3, 2, AnchorViews::All);
    let cfg = InfoNceConfig::default();
    assert!(matches!(
        info_nce(&z, &z, &masks, &cfg),
        Err(Error::MaskShape {
            rows: 6,
            cols: 6,
            ..
        })
    ));
    let masks = ContrastMasks::instance_discrimination(2, 2, AnchorViews::All);
    assert!(matches!(
        info_nce(&z, &z.to_dtype(DType::F32).unwrap(), &masks, &cfg),
        Err(Error::DType { .. })
    ));
    assert!(matches!(
        info_nce(&z, &randn(8, &[4, 2]), &masks, &cfg),
        Err(Error::Shape { what: "keys", .. })
    ));
    // NaN features → typed error, not a NaN loss.
    let mut v = z.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    v[5] = f64::NAN;
    let bad = Tensor::from_vec(v, (4, 3), &Device::Cpu).unwrap();
    let masks = ContrastMasks::instance_discrimination(2, 2, AnchorViews::All);
    assert!(matches!(
        info_nce(&bad, &bad, &masks, &cfg),
        Err(Error::NonFiniteLoss { .. })
    ));
    assert!(matches!(
        nt.forward(&bad.narrow(0, 0, 2).unwrap(), &bad.narrow(0, 2, 2).unwrap()),
        Err(Error::NonFiniteLoss { .. })
    ));
}

#[test]
fn explicit_mask_matches_labels() {
    let f = l2_normalize(&randn(9, &[10, 4]), 1e-8)
        .unwrap()
        .reshape((5, 2, 4))
        .unwrap();
    let y = [3i64, 1, 3, 2, 1];
    let same: Vec<bool> = (0..5)
        .flat_map(|i| (0..5).map(move |j| y[i] == y[j]))
        .collect();
    for anchors in [AnchorViews::All, AnchorViews::First] {
        let sc = SupCon::new(SupConConfig {
            anchors,
            ..Default::default()
        })
        .unwrap();
        let a = scalar(&sc.forward(&f, Some(&y)).unwrap());
        let b = scalar(&sc.forward_with_mask(&f, &same).unwrap());
        assert!((a - b).abs() < 1e-12);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// L_out is non-negative, and relabelling/permuting the images of a batch (consistently in
    /// both views and labels) leaves the loss unchanged.
    #[test]
    fn supcon_nonnegative_and_permutation_invariant(seed in 0u64..1000, n in 2usize..6, shift in 1usize..5) {
        let f = l2_normalize(&randn(seed, &[2 * n, 5]), 1e-8).unwrap().reshape((n, 2, 5)).unwrap();
        let y: Vec<i64> = (0..n as i64).map(|i| (i * 7 + seed as i64) % 3).collect();
        let sc = SupCon::new(SupConConfig { temperature: 0.2, base_temperature: 0.2, anchors: AnchorViews::All }).unwrap();
        let a = scalar(&sc.forward(&f, Some(&y)).unwrap());
        prop_assert!(a >= 0.0);
        let perm: Vec<u32> = (0..n).map(|i| ((i + shift) % n) as u32).collect();
        let idx = Tensor::new(perm.as_slice(), &Device::Cpu).unwrap();
        let fp = f.index_select(&idx, 0).unwrap();
        let yp: Vec<i64> = perm.iter().map(|&p| y[p as usize]).collect();
        let b = scalar(&sc.forward(&fp, Some(&yp)).unwrap());
        prop_assert!((a - b).abs() < 1e-10, "{} vs {}", a, b);
    }
}
