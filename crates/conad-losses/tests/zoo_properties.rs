//! Identities, hand examples, finite-difference gradients, determinism and error handling of the
//! objective zoo (docs/reference.md §1.3–§1.9, §6, §7).

use candle_core::{DType, Device, Tensor, Var};
use conad_losses::{
    AnchorViews, Con2, Con2Config, ContrastMasks, ConvexCombinations, Csi, CsiConfig, Error, Firm,
    FirmConfig, FirmVariant, InfoNceBackend, KeConfig, KeLoss, KeNegatives, L2_EPS, MaskRules,
    MilConv, MilConvConfig, Msc, MscConfig, NtXent, NtXentConfig, PositiveRule, RotationCe,
    RotationCeConfig, SamplingRule, SoftAggregationConfig, SoftNormalisation, StageAverage, SupCon,
    SupConConfig, UniClr, UniClrConfig, UniConHa, UniConHaConfig, conv_loss, dirichlet_uniform,
    draw_combinations, l2_normalize, pseudo_normality_scores, shift_labels, soft_sampling,
};
use conad_rng::SeedTree;
use rand_distr::{Distribution, StandardNormal};

fn randn(seed: u64, shape: &[usize]) -> Tensor {
    let mut rng = SeedTree::new(seed).child("zoo").rng();
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn unit(seed: u64, rows: usize, d: usize) -> Tensor {
    l2_normalize(&randn(seed, &[rows, d]), L2_EPS).unwrap()
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

fn vec64(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

fn positives(m: &ContrastMasks, row: usize) -> Vec<usize> {
    (0..m.cols()).filter(|&c| m.weight(row, c) > 0.0).collect()
}

/// Central finite differences of `f` at the raw f64 input `x` against candle's autograd.
fn fd_check(name: &str, x: &Tensor, f: impl Fn(&Tensor) -> Tensor) {
    let v = Var::from_tensor(x).unwrap();
    let grads = f(v.as_tensor()).backward().unwrap();
    let g = vec64(grads.get(v.as_tensor()).unwrap());
    let flat = vec64(x);
    let h = 1e-6;
    for idx in 0..flat.len() {
        let at = |delta: f64| {
            let mut w = flat.clone();
            w[idx] += delta;
            scalar(&f(&Tensor::from_vec(w, x.dims(), &Device::Cpu).unwrap()))
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        assert!(
            (fd - g[idx]).abs() < 1e-6 * (1.0 + fd.abs()),
            "{name}[{idx}]: finite difference {fd} vs autograd {}",
            g[idx]
        );
    }
}

fn n2(x: &Tensor) -> Tensor {
    l2_normalize(x, L2_EPS).unwrap()
}

// ---------------------------------------------------------------------------------------------
// CSI (§1.3)

#[test]
fn csi_layout_positive_offset_and_shift_labels() {
    let csi = Csi::new(CsiConfig::default()).unwrap();
    // N = 2, K = 4: 16 rows; positive of r is r ± 8; other rotations of the image are negatives.
    let m = ContrastMasks::from_rules(
        &csi.row_ids(2),
        &MaskRules {
            positives: PositiveRule::SameInstance,
            ..MaskRules::default()
        },
    )
    .unwrap();
    for r in 0..16 {
        assert_eq!(positives(&m, r), vec![(r + 8) % 16]);
        assert_eq!((0..16).filter(|&c| m.is_valid(r, c)).count(), 15);
        // Row 0 (image 0, rot 0): rows 2, 4, 6 are image 0 under rot 90/180/270 — negatives.
    }
    assert!(m.is_valid(0, 2) && m.weight(0, 2) == 0.0);
    assert_eq!(
        csi.shift_labels(2),
        vec![0, 0, 1, 1, 2, 2, 3, 3, 0, 0, 1, 1, 2, 2, 3, 3]
    );
    assert_eq!(shift_labels(1, 2, 2), vec![0, 1, 0, 1]);
}

#[test]
fn csi_with_one_shift_and_no_classifier_is_simclr() {
    let z1 = unit(1, 5, 4);
    let z2 = unit(2, 5, 4);
    let csi = Csi::new(CsiConfig {
        n_shifts: 1,
        shift_weight: 0.0,
        ..CsiConfig::default()
    })
    .unwrap();
    let z = Tensor::cat(&[&z1, &z2], 0).unwrap();
    let got = csi.forward(&z, &randn(3, &[10, 1])).unwrap();
    let want = NtXent::new(NtXentConfig::default())
        .unwrap()
        .forward(&z1, &z2)
        .unwrap();
    assert!((scalar(&got) - scalar(&want)).abs() < 1e-12);
}

#[test]
fn csi_total_is_con_plus_lambda_cls_and_gradients_match_finite_differences() {
    let logits = randn(4, &[16, 4]);
    let csi = Csi::new(CsiConfig {
        shift_weight: 0.7,
        ..CsiConfig::default()
    })
    .unwrap();
    let parts = csi.forward_parts(&unit(5, 16, 3), &logits).unwrap();
    let want = scalar(&parts.con_si) + 0.7 * scalar(&parts.cls_si);
    assert!((scalar(&parts.loss) - want).abs() < 1e-12);
    assert!((0.0..=1.0).contains(&parts.shift_accuracy));
    fd_check("csi", &randn(6, &[16, 3]), |h| {
        csi.forward(&n2(h), &logits).unwrap()
    });
}

// ---------------------------------------------------------------------------------------------
// CON2 (§1.4)

#[test]
fn con2_terms_equal_supcon_with_context_and_source_labels() {
    let n = 3;
    let (zc, zn) = (unit(7, 4 * n, 5), unit(8, 4 * n, 5));
    let con2 = Con2::new(Con2Config {
        context_temperature: 0.1,
        content_temperature: 0.3,
        ..Con2Config::default()
    })
    .unwrap();
    let parts = con2.forward_parts(&zc, &zn, 2, 8).unwrap();
    let supcon = |tau: f64, z: &Tensor, labels: &[i64]| {
        // SupCon features bsz × n_views × d from the view-major 4N rows.
        let f = Tensor::stack(
            &[
                z.narrow(0, 0, 2 * n).unwrap(),
                z.narrow(0, 2 * n, 2 * n).unwrap(),
            ],
            1,
        )
        .unwrap();
        scalar(
            &SupCon::new(SupConConfig {
                temperature: tau,
                base_temperature: tau,
                anchors: AnchorViews::All,
            })
            .unwrap()
            .forward(&f, Some(labels))
            .unwrap(),
        )
    };
    let ctx = supcon(0.1, &zc, &Con2::context_labels(n));
    let cnt = supcon(0.3, &zn, &Con2::content_labels(n));
    assert!((scalar(&parts.context) - ctx).abs() < 1e-12);
    assert!((scalar(&parts.content) - cnt).abs() < 1e-12);
    assert_eq!(parts.alpha, 0.25);
    assert!((scalar(&parts.loss) - (ctx + 0.25 * cnt)).abs() < 1e-12);
    assert_eq!(Con2::context_labels(2), vec![0, 0, 1, 1]);
    assert_eq!(Con2::content_labels(2), vec![0, 1, 0, 1]);
}

#[test]
fn con2_alpha_schedule_is_linear_per_step() {
    let c = Con2Config::default();
    assert_eq!(c.alpha(0, 100).unwrap(), 0.0);
    assert_eq!(c.alpha(25, 100).unwrap(), 0.25);
    assert_eq!(c.alpha(100, 100).unwrap(), 1.0);
    assert_eq!(c.alpha(250, 100).unwrap(), 1.0);
    let c = Con2Config {
        alpha_start: 0.5,
        alpha_end: 0.0,
        ..c
    };
    assert_eq!(c.alpha(50, 100).unwrap(), 0.25);
    assert!(matches!(
        c.alpha(0, 0),
        Err(Error::InvalidConfig { field, .. }) if field == "total_steps"
    ));
}

#[test]
fn con2_gradients_match_finite_differences() {
    let con2 = Con2::new(Con2Config::default()).unwrap();
    let zn = unit(9, 8, 3);
    fd_check("con2 context", &randn(10, &[8, 3]), |h| {
        con2.forward(&n2(h), &zn, 3, 4).unwrap()
    });
}

// ---------------------------------------------------------------------------------------------
// UniCLR / UniCon-HA (§1.5)

#[test]
fn soft_aggregation_with_equal_weights_is_uniclr() {
    let inlier = [true, false, false, false, true, false, false, false, true];
    let (z1, z2) = (unit(11, 9, 4), unit(12, 9, 4));
    let plain = UniClr::new(UniClrConfig::default()).unwrap();
    let want = scalar(&plain.forward(&z1, &z2, &inlier).unwrap());
    for w in [1.0, 0.3, 7.0] {
        let got = plain
            .forward_with_weights(&z1, &z2, &inlier, &[w; 6])
            .unwrap();
        assert!((scalar(&got) - want).abs() < 1e-12, "weight {w}");
    }
    // Unequal weights change the loss; the computed weights have mean 1.
    let sa = UniClr::new(UniClrConfig {
        soft_aggregation: Some(SoftAggregationConfig::default()),
        ..UniClrConfig::default()
    })
    .unwrap();
    let parts = sa.forward_parts(&z1, &z2, &inlier).unwrap();
    let w = parts.weights.unwrap();
    assert_eq!(w.len(), 6);
    assert!((w.iter().sum::<f64>() / 6.0 - 1.0).abs() < 1e-12);
    assert!((scalar(&parts.loss) - want).abs() > 1e-6);
    // Both normalisations reduce to UniCLR under equal weights and differ otherwise.
    let global = UniClr::new(UniClrConfig {
        soft_aggregation: Some(SoftAggregationConfig {
            normalisation: SoftNormalisation::Global,
            ..SoftAggregationConfig::default()
        }),
        ..UniClrConfig::default()
    })
    .unwrap();
    let g = scalar(
        &global
            .forward_with_weights(&z1, &z2, &inlier, &[2.0; 6])
            .unwrap(),
    );
    assert!((g - want).abs() < 1e-12);
    let g = scalar(&global.forward(&z1, &z2, &inlier).unwrap());
    assert!((g - scalar(&parts.loss)).abs() > 1e-9);
}

#[test]
fn per_anchor_soft_aggregation_ignores_the_anchors_own_weight() {
    // Eq. 6 normalises per anchor: scaling one inlier view's weight changes the loss only
    // through the terms where that view is a positive, never through its own anchor term.
    let inlier = [true, true, false];
    let (z1, z2) = (unit(17, 3, 4), unit(18, 3, 4));
    let sa = UniClr::new(UniClrConfig {
        soft_aggregation: Some(SoftAggregationConfig::default()),
        ..UniClrConfig::default()
    })
    .unwrap();
    // Inlier views (rows 0, 1, 3, 4). Hand-computed per-anchor loss from log-probabilities.
    let z = Tensor::cat(&[&z1, &z2], 0).unwrap();
    let zz: Vec<Vec<f64>> = z.matmul(&z.t().unwrap()).unwrap().to_vec2().unwrap();
    let log_p = |a: usize, b: usize| {
        let den: f64 = (0..6)
            .filter(|&k| k != a)
            .map(|k| (zz[a][k] / 0.5).exp())
            .sum();
        zz[a][b] / 0.5 - den.ln()
    };
    let w = [0.4, 1.0, 2.0, 0.6];
    let rows = [0usize, 1, 3, 4];
    let mut total = 0.0;
    for (i, &a) in rows.iter().enumerate() {
        let (mut num, mut den) = (0.0, 0.0);
        for (j, &b) in rows.iter().enumerate() {
            if a != b {
                num += w[i] * w[j] * log_p(a, b);
                den += w[i] * w[j];
            }
        }
        total -= num / den;
    }
    total -= log_p(2, 5) + log_p(5, 2);
    let got = scalar(&sa.forward_with_weights(&z1, &z2, &inlier, &w).unwrap());
    assert!(
        (got - total / 6.0).abs() < 1e-12,
        "{got} vs {}",
        total / 6.0
    );
}

#[test]
fn uniclr_is_firm_concat_with_one_inlier_class() {
    let inlier = [true, false, true, false, false];
    let labels: Vec<i64> = inlier.iter().map(|&b| if b { 0 } else { -1 }).collect();
    let (z1, z2) = (unit(13, 5, 4), unit(14, 5, 4));
    let u = UniClr::new(UniClrConfig::default()).unwrap();
    let f = Firm::new(FirmConfig {
        temperature: 0.5,
        variant: FirmVariant::Concat,
        ..FirmConfig::default()
    })
    .unwrap();
    let a = scalar(&u.forward(&z1, &z2, &inlier).unwrap());
    let b = scalar(&f.forward(&z1, &z2, &labels).unwrap());
    assert!((a - b).abs() < 1e-12);
    // Mask: inlier row 0 attracts every other inlier view (2, 5, 7); outlier row 1 only row 6.
    let m = UniClr::masks(&inlier).unwrap();
    assert_eq!(positives(&m, 0), vec![2, 5, 7]);
    assert_eq!(positives(&m, 1), vec![6]);
    assert_eq!(positives(&m, 8), vec![3]);
}

#[test]
fn soft_aggregated_uniclr_gradients_with_fixed_weights_match_finite_differences() {
    // The weights are detached constants, so the finite-difference check uses fixed weights.
    let inlier = [true, false, true, false];
    let u = UniClr::new(UniClrConfig::default()).unwrap();
    let z2 = unit(15, 4, 3);
    let w = [0.5, 1.5, 1.2, 0.8];
    fd_check("uniclr sa", &randn(16, &[4, 3]), |h| {
        u.forward_with_weights(&n2(h), &z2, &inlier, &w).unwrap()
    });
}

#[test]
fn unicon_ha_averages_weighted_stages_with_soft_aggregation_last() {
    let inlier = [true, false, false, false, true, false, false, false];
    let stages: Vec<(Tensor, Tensor)> = (0..3)
        .map(|s| (unit(20 + s, 8, 4), unit(30 + s, 8, 4)))
        .collect();
    let ha = UniConHa::new(UniConHaConfig {
        stage_weights: vec![0.5, 1.0, 2.0],
        ..UniConHaConfig::default()
    })
    .unwrap();
    let parts = ha.forward_parts(&stages, &inlier).unwrap();
    let plain = UniClr::new(UniClrConfig::default()).unwrap();
    let sa = UniClr::new(UniClrConfig {
        soft_aggregation: Some(SoftAggregationConfig::default()),
        ..UniClrConfig::default()
    })
    .unwrap();
    let l: Vec<f64> = vec![
        scalar(&plain.forward(&stages[0].0, &stages[0].1, &inlier).unwrap()),
        scalar(&plain.forward(&stages[1].0, &stages[1].1, &inlier).unwrap()),
        scalar(&sa.forward(&stages[2].0, &stages[2].1, &inlier).unwrap()),
    ];
    // Eq. 9: (1/4) Σ λ_s L_s, also with three stages.
    let want = (0.5 * l[0] + l[1] + 2.0 * l[2]) / 4.0;
    assert!((scalar(&parts.loss) - want).abs() < 1e-12);
    let used = UniConHa::new(UniConHaConfig {
        stage_weights: vec![0.5, 1.0, 2.0],
        stage_average: StageAverage::UsedStages,
        ..UniConHaConfig::default()
    })
    .unwrap();
    let got = scalar(&used.forward(&stages, &inlier).unwrap());
    assert!((got - want * 4.0 / 3.0).abs() < 1e-12);
    for (got, want) in parts.stages.iter().zip(&l) {
        assert!((scalar(got) - want).abs() < 1e-12);
    }
    assert_eq!(parts.weights.unwrap().len(), 4);
    assert!(matches!(
        ha.forward(&stages[..2], &inlier),
        Err(Error::LabelCount {
            what: "stages",
            got: 2,
            expected: 3
        })
    ));
}

// ---------------------------------------------------------------------------------------------
// FIRM (§1.6)

#[test]
fn firm_concat_golden_mask_of_methods_1_6() {
    // Labels [1, 2, 2, −1, −1] (B = 5).
    let m = Firm::concat_masks(&[1, 2, 2, -1, -1]).unwrap();
    assert_eq!(positives(&m, 0), vec![5]);
    assert_eq!(positives(&m, 1), vec![2, 6, 7]);
    assert_eq!(positives(&m, 2), vec![1, 6, 7]);
    assert_eq!(positives(&m, 3), vec![8]);
    assert_eq!(positives(&m, 4), vec![9]);
    // The lower half mirrors this.
    assert_eq!(positives(&m, 5), vec![0]);
    assert_eq!(positives(&m, 6), vec![1, 2, 7]);
    assert_eq!(positives(&m, 7), vec![1, 2, 6]);
    assert_eq!(positives(&m, 8), vec![3]);
    assert_eq!(positives(&m, 9), vec![4]);
    for r in 0..10 {
        assert!(!m.is_valid(r, r));
        assert_eq!((0..10).filter(|&c| m.is_valid(r, c)).count(), 9);
    }
}

#[test]
fn firm_pairwise_mask_uniform_over_inliers_incl_diagonal_and_one_hot_outliers() {
    let m = Firm::pairwise_masks(&[0, -1, 0, 0, -1]).unwrap();
    for r in [0, 2, 3] {
        assert_eq!(positives(&m, r), vec![0, 2, 3]);
    }
    assert_eq!(positives(&m, 1), vec![1]);
    assert_eq!(positives(&m, 4), vec![4]);
    // No self-pair exists: every key is in every denominator.
    assert!((0..5).all(|r| (0..5).all(|c| m.is_valid(r, c))));
}

#[test]
fn firm_pairwise_with_only_outliers_is_pairwise_nt_xent() {
    let (z1, z2) = (unit(40, 6, 4), unit(41, 6, 4));
    let f = Firm::new(FirmConfig::default()).unwrap();
    let nt = NtXent::new(NtXentConfig {
        temperature: 0.2,
        variant: conad_losses::NtXentVariant::Pairwise,
    })
    .unwrap();
    let a = scalar(&f.forward(&z1, &z2, &[-1; 6]).unwrap());
    let b = scalar(&nt.forward(&z1, &z2).unwrap());
    assert!((a - b).abs() < 1e-12);
    fd_check("firm pairwise", &randn(42, &[6, 4]), |h| {
        f.forward(&n2(h), &z2, &[0, -1, 0, -1, -1, 0]).unwrap()
    });
}

// ---------------------------------------------------------------------------------------------
// KE (§1.7)

#[test]
fn ke_readings_differ_only_by_in_batch_negatives() {
    let (n, p, q, d) = (3, 2, 2, 4);
    let a = unit(50, n, d);
    let pos = unit(51, n * p, d).reshape((n, p, d)).unwrap();
    let neg = unit(52, n * q, d).reshape((n, q, d)).unwrap();
    let own = KeLoss::new(KeConfig::default()).unwrap();
    assert_eq!(
        own.config().negatives,
        KeNegatives::OwnOnly,
        "eq. 1 is the default"
    );
    let batch = KeLoss::new(KeConfig {
        negatives: KeNegatives::InBatch,
        ..KeConfig::default()
    })
    .unwrap();
    let got = vec64(&batch.forward_per_anchor(&a, &pos, &neg).unwrap());
    for (i, &got_i) in got.iter().enumerate() {
        // Reading 1 for anchor i alone, with every other row of the batch appended to its negatives.
        let mut extra = vec![neg.get(i).unwrap()];
        for j in (0..n).filter(|&j| j != i) {
            extra.push(a.narrow(0, j, 1).unwrap());
            extra.push(pos.get(j).unwrap());
            extra.push(neg.get(j).unwrap());
        }
        let negs = Tensor::cat(&extra, 0).unwrap().unsqueeze(0).unwrap();
        let want = own
            .forward(
                &a.narrow(0, i, 1).unwrap(),
                &pos.narrow(0, i, 1).unwrap(),
                &negs,
            )
            .unwrap();
        assert!((scalar(&want) - got_i).abs() < 1e-12, "anchor {i}");
    }
    // A single anchor has no in-batch negatives: both readings coincide.
    let one = |k: &KeLoss| {
        scalar(
            &k.forward(
                &a.narrow(0, 0, 1).unwrap(),
                &pos.narrow(0, 0, 1).unwrap(),
                &neg.narrow(0, 0, 1).unwrap(),
            )
            .unwrap(),
        )
    };
    assert!((one(&own) - one(&batch)).abs() < 1e-12);
    // More negatives never lower the loss.
    let own_all = vec64(&own.forward_per_anchor(&a, &pos, &neg).unwrap());
    assert!(own_all.iter().zip(&got).all(|(o, b)| b > o));
}

#[test]
fn ke_hand_example_and_finite_differences() {
    // Anchor e1; positives e1, e2; negatives −e1, e2 (d = 2), τ = 1, own reading:
    // L = −½ log((e¹ + e⁰) / (e¹ + e⁰ + e⁻¹ + e⁰)).
    let dev = Device::Cpu;
    let a = Tensor::new(&[[1f64, 0.]], &dev).unwrap();
    let p = Tensor::new(&[[[1f64, 0.], [0., 1.]]], &dev).unwrap();
    let ng = Tensor::new(&[[[-1f64, 0.], [0., 1.]]], &dev).unwrap();
    let ke = KeLoss::new(KeConfig {
        temperature: 1.0,
        negatives: KeNegatives::OwnOnly,
    })
    .unwrap();
    let e = std::f64::consts::E;
    let want = -0.5 * ((e + 1.0) / (e + 1.0 + 1.0 / e + 1.0)).ln();
    assert!((scalar(&ke.forward(&a, &p, &ng).unwrap()) - want).abs() < 1e-12);
    let (pos, neg) = (unit(53, 6, 3), unit(54, 6, 3));
    let (pos, neg) = (
        pos.reshape((3, 2, 3)).unwrap(),
        neg.reshape((3, 2, 3)).unwrap(),
    );
    let batch = KeLoss::new(KeConfig::default()).unwrap();
    fd_check("ke", &randn(55, &[3, 3]), |h| {
        batch.forward(&n2(h), &pos, &neg).unwrap()
    });
}

// ---------------------------------------------------------------------------------------------
// MIL-Conv and MSC (§1.8)

#[test]
fn dirichlet_weights_lie_on_the_simplex_and_are_uniform() {
    let mut rng = SeedTree::new(3).child("dirichlet").rng();
    let draws = 20_000;
    let (mut mean0, mut above_half) = (0.0, 0usize);
    for _ in 0..draws {
        let w = dirichlet_uniform(&mut rng, 3);
        assert_eq!(w.len(), 3);
        assert!(w.iter().all(|&x| (0.0..=1.0).contains(&x)));
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        mean0 += w[0];
        above_half += usize::from(w[0] > 0.5);
    }
    // Dirichlet(1,1,1): each coordinate ~ Beta(1, 2): mean 1/3, P(w > ½) = ¼.
    assert!((mean0 / draws as f64 - 1.0 / 3.0).abs() < 0.01);
    assert!((above_half as f64 / draws as f64 - 0.25).abs() < 0.01);
}

#[test]
fn pseudo_normality_scores_hand_example() {
    // Rows e1, e1, e2, (e1+e2)/√2 with K = 1: the most similar other row.
    let s = std::f64::consts::FRAC_1_SQRT_2;
    let z = Tensor::new(&[[1f64, 0.], [1., 0.], [0., 1.], [s, s]], &Device::Cpu).unwrap();
    let got = pseudo_normality_scores(&z, 1).unwrap();
    let want = [1.0, 1.0, s, s];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12);
    }
    // K = 2: mean of the two most similar.
    let got = pseudo_normality_scores(&z, 2).unwrap();
    assert!((got[2] - (s + 0.0) / 2.0).abs() < 1e-12);
    assert!((got[0] - (1.0 + s) / 2.0).abs() < 1e-12);
}

#[test]
fn soft_sampling_literal_and_shifted_readings() {
    let scores = [0.9, 0.2, 0.5, -0.6, 0.7, 0.4, 0.8, 0.3, 0.6, 0.1, 0.5];
    // ⌈0.1·11⌉ = 2 abnormal candidates: rows 3 (−0.6) and 9 (0.1).
    let s = soft_sampling(&scores, 0.1, SamplingRule::Shifted).unwrap();
    assert_eq!(s.abnormal, vec![3, 9]);
    assert_eq!(s.normal.len(), 9);
    assert!((s.p_positive.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    // p⁻ ∝ 1 − s' with s' = (s + 1)/2: row 3 → 0.8, row 9 → 0.45.
    assert!((s.p_negative[0] - 0.8 / 1.25).abs() < 1e-12);
    assert!((s.p_negative[1] - 0.45 / 1.25).abs() < 1e-12);
    // p⁺ ∝ s' on S_n.
    let total: f64 = s.normal.iter().map(|&r| (scores[r] + 1.0) / 2.0).sum();
    for (&r, &p) in s.normal.iter().zip(&s.p_positive) {
        assert!((p - (scores[r] + 1.0) / 2.0 / total).abs() < 1e-12);
    }
    // Literal (eq. 4): p ∝ s on each set; eq. 4 is undefined for s ≤ 0, which gets
    // probability 0 (row 3, s = −0.6), so row 9 (s = 0.1) is the only negative drawn.
    let lit = soft_sampling(&scores, 0.1, SamplingRule::Literal).unwrap();
    assert_eq!(lit.p_negative, vec![0.0, 1.0]);
    let total: f64 = lit.normal.iter().map(|&r| scores[r]).sum();
    for (&r, &p) in lit.normal.iter().zip(&lit.p_positive) {
        assert!((p - scores[r] / total).abs() < 1e-12, "row {r}: {p}");
    }
    // A set without a positive score is sampled uniformly.
    let negative = [0.9, -0.2, 0.5, -0.6, 0.7];
    let lit = soft_sampling(&negative, 0.4, SamplingRule::Literal).unwrap();
    assert_eq!(lit.abnormal, vec![3, 1]);
    assert_eq!(lit.p_negative, vec![0.5, 0.5]);
    let positive: Vec<f64> = scores.iter().map(|s| s + 1.0).collect();
    let lit = soft_sampling(&positive, 0.1, SamplingRule::Literal).unwrap();
    assert!((lit.p_negative[0] - 0.4 / 1.5).abs() < 1e-12);
}

#[test]
fn mil_conv_is_deterministic_per_seed_and_samples_from_the_right_sets() {
    let z = unit(60, 20, 6);
    let mil = MilConv::new(MilConvConfig::default()).unwrap();
    let run = |seed: u64| {
        let mut rng = SeedTree::new(seed).child("mil_conv").index(0).rng();
        mil.forward_parts(&z, &mut rng).unwrap()
    };
    let (a, b, c) = (run(1), run(1), run(2));
    assert_eq!(scalar(&a.loss).to_bits(), scalar(&b.loss).to_bits());
    assert_eq!(a.combinations, b.combinations);
    assert_ne!(a.combinations, c.combinations);
    let comb = &a.combinations;
    assert_eq!((comb.triplets, comb.rows), (20, 20));
    assert_eq!(a.sampling.abnormal.len(), 2);
    for t in 0..20 {
        for (w, set) in [
            (&comb.positive_a, &a.sampling.normal),
            (&comb.positive_b, &a.sampling.normal),
            (&comb.negative, &a.sampling.abnormal),
        ] {
            let row = &w[t * 20..(t + 1) * 20];
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            for (r, &x) in row.iter().enumerate() {
                assert!(x >= 0.0);
                if x > 0.0 {
                    assert!(set.contains(&r), "triplet {t}: row {r} outside its set");
                }
            }
        }
    }
}

#[test]
fn conv_loss_hand_example_and_finite_differences() {
    // One triplet: z⁺_i = e1, z⁺_j = e1, z⁻_k = e2 (single-instance combinations), τ = 1:
    // −log(e / (e + 1)).
    let z = Tensor::new(&[[1f64, 0.], [0., 1.]], &Device::Cpu).unwrap();
    let comb = ConvexCombinations {
        triplets: 1,
        rows: 2,
        positive_a: vec![1.0, 0.0],
        positive_b: vec![1.0, 0.0],
        negative: vec![0.0, 1.0],
    };
    let e = std::f64::consts::E;
    let want = -(e / (e + 1.0)).ln();
    assert!((scalar(&conv_loss(&z, &comb, 1.0).unwrap()) - want).abs() < 1e-12);
    let sampling = soft_sampling(
        &[0.5, 0.4, 0.3, 0.2, 0.9, 0.1, 0.6, 0.7],
        0.25,
        SamplingRule::Shifted,
    )
    .unwrap();
    let comb = draw_combinations(&sampling, 8, 5, 3, &mut SeedTree::new(9).rng());
    fd_check("conv", &randn(61, &[8, 4]), |h| {
        conv_loss(&n2(h), &comb, 0.5).unwrap()
    });
}

#[test]
fn mil_conv_total_weights_the_three_terms() {
    let mil = MilConv::new(MilConvConfig {
        mean_weight: 0.5,
        rot_weight: 2.0,
        ..MilConvConfig::default()
    })
    .unwrap();
    let t = |v: f64| Tensor::new(v, &Device::Cpu).unwrap();
    let total = mil.total(&t(1.0), &t(2.0), &t(3.0)).unwrap();
    assert_eq!(scalar(&total), 1.0 + 0.5 * 2.0 + 2.0 * 3.0);
}

#[test]
fn msc_without_centre_is_nt_xent_and_angular_term_is_two_minus_two_cos() {
    let (f1, f2) = (unit(70, 5, 4), unit(71, 5, 4));
    let msc = Msc::new(MscConfig::default()).unwrap();
    let plain = msc.forward_parts(&f1, &f2, None).unwrap();
    let nt = NtXent::new(NtXentConfig {
        temperature: 0.25,
        ..NtXentConfig::default()
    })
    .unwrap()
    .forward(&f1, &f2)
    .unwrap();
    assert!((scalar(&plain.loss) - scalar(&nt)).abs() < 1e-12);
    assert_eq!(scalar(&plain.angular), 0.0);
    let c = conad_losses::msc_center(&randn(72, &[30, 4])).unwrap();
    assert_eq!(c.dims(), &[4]);
    assert!((scalar(&c.sqr().unwrap().sum_all().unwrap()) - 1.0).abs() < 1e-12);
    let parts = msc.forward_parts(&f1, &f2, Some(&c)).unwrap();
    let cos1 = vec64(&f1.matmul(&c.unsqueeze(1).unwrap()).unwrap());
    let cos2 = vec64(&f2.matmul(&c.unsqueeze(1).unwrap()).unwrap());
    let want: f64 = cos1.iter().map(|x| 2.0 - 2.0 * x).sum::<f64>() / 5.0
        + cos2.iter().map(|x| 2.0 - 2.0 * x).sum::<f64>() / 5.0;
    assert!((scalar(&parts.angular) - want).abs() < 1e-12);
    fd_check("msc", &randn(73, &[5, 4]), |h| {
        msc.forward(&n2(h), &f2, Some(&c)).unwrap()
    });
}

// ---------------------------------------------------------------------------------------------
// Rotation CE (§1.9)

#[test]
fn rotation_cross_entropy_hand_example() {
    // Uniform logits → log K; a confident correct row → ≈ 0.
    let ce = RotationCe::new(RotationCeConfig::default()).unwrap();
    let l = Tensor::zeros((3, 4), DType::F64, &Device::Cpu).unwrap();
    assert!((scalar(&ce.forward(&l, &[0, 1, 3]).unwrap()) - 4f64.ln()).abs() < 1e-12);
    let l = Tensor::new(&[[50f64, 0., 0., 0.]], &Device::Cpu).unwrap();
    assert!(scalar(&ce.forward(&l, &[0]).unwrap()) < 1e-20);
    assert_eq!(ce.accuracy(&l, &[0]).unwrap(), 1.0);
    fd_check("rotation ce", &randn(80, &[6, 4]), |h| {
        ce.forward(h, &[0, 1, 2, 3, 2, 1]).unwrap()
    });
}

// ---------------------------------------------------------------------------------------------
// Composed vs fused compute paths (random f32 inputs, values and gradients)

fn agree(name: &str, x: &Tensor, f: impl Fn(&Tensor, InfoNceBackend) -> Tensor) {
    let x = x.to_dtype(DType::F32).unwrap();
    let mut out = Vec::new();
    for backend in [InfoNceBackend::Composed, InfoNceBackend::Fused] {
        let v = Var::from_tensor(&x).unwrap();
        let loss = f(v.as_tensor(), backend);
        let g = vec64(loss.backward().unwrap().get(v.as_tensor()).unwrap());
        out.push((scalar(&loss), g));
    }
    let (a, b) = (&out[0], &out[1]);
    assert!(
        (a.0 - b.0).abs() < 1e-5 * (1.0 + a.0.abs()),
        "{name}: {} vs {}",
        a.0,
        b.0
    );
    for (x, y) in a.1.iter().zip(&b.1) {
        assert!((x - y).abs() < 1e-5, "{name}: gradient {x} vs {y}");
    }
}

#[test]
fn fused_and_composed_backends_agree() {
    let logits = randn(90, &[48, 4]).to_dtype(DType::F32).unwrap();
    agree("csi", &randn(91, &[48, 16]), |h, backend| {
        Csi::new(CsiConfig {
            backend,
            ..CsiConfig::default()
        })
        .unwrap()
        .forward(&n2(h), &logits)
        .unwrap()
    });
    let zn = unit(92, 24, 16).to_dtype(DType::F32).unwrap();
    agree("con2", &randn(93, &[24, 16]), |h, backend| {
        Con2::new(Con2Config {
            backend,
            ..Con2Config::default()
        })
        .unwrap()
        .forward(&n2(h), &zn, 5, 10)
        .unwrap()
    });
    let inlier: Vec<bool> = (0..12).map(|i| i % 4 == 0).collect();
    let z2 = unit(94, 12, 16).to_dtype(DType::F32).unwrap();
    agree("uniclr", &randn(95, &[12, 16]), |h, backend| {
        UniClr::new(UniClrConfig {
            backend,
            ..UniClrConfig::default()
        })
        .unwrap()
        .forward(&n2(h), &z2, &inlier)
        .unwrap()
    });
    let labels: Vec<i64> = (0..12)
        .map(|i| if i % 3 == 0 { -1 } else { i % 2 })
        .collect();
    for variant in [FirmVariant::Pairwise, FirmVariant::Concat] {
        agree("firm", &randn(96, &[12, 16]), |h, backend| {
            Firm::new(FirmConfig {
                variant,
                backend,
                ..FirmConfig::default()
            })
            .unwrap()
            .forward(&n2(h), &z2, &labels)
            .unwrap()
        });
    }
    let c = conad_losses::msc_center(&randn(97, &[20, 16]))
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    agree("msc", &randn(98, &[12, 16]), |h, backend| {
        Msc::new(MscConfig {
            backend,
            ..MscConfig::default()
        })
        .unwrap()
        .forward(&n2(h), &z2, Some(&c))
        .unwrap()
    });
}

// ---------------------------------------------------------------------------------------------
// Bad input → typed errors carrying the bad value

#[test]
fn bad_configs_are_rejected_with_the_value() {
    for tau in [0.0, -1.0, f64::NAN] {
        assert!(matches!(
            Csi::new(CsiConfig { temperature: tau, ..CsiConfig::default() }),
            Err(Error::InvalidTemperature { name: "temperature", value }) if value.to_bits() == tau.to_bits()
        ));
        assert!(matches!(
            Con2::new(Con2Config {
                content_temperature: tau,
                ..Con2Config::default()
            }),
            Err(Error::InvalidTemperature {
                name: "content_temperature",
                ..
            })
        ));
        assert!(matches!(
            UniClr::new(UniClrConfig {
                soft_aggregation: Some(SoftAggregationConfig {
                    temperature: tau,
                    ..SoftAggregationConfig::default()
                }),
                ..UniClrConfig::default()
            }),
            Err(Error::InvalidTemperature { .. })
        ));
        assert!(matches!(
            Firm::new(FirmConfig {
                temperature: tau,
                ..FirmConfig::default()
            }),
            Err(Error::InvalidTemperature { .. })
        ));
        assert!(matches!(
            KeLoss::new(KeConfig {
                temperature: tau,
                ..KeConfig::default()
            }),
            Err(Error::InvalidTemperature { .. })
        ));
        assert!(matches!(
            MilConv::new(MilConvConfig {
                temperature: tau,
                ..MilConvConfig::default()
            }),
            Err(Error::InvalidTemperature { .. })
        ));
        assert!(matches!(
            Msc::new(MscConfig {
                temperature: tau,
                ..MscConfig::default()
            }),
            Err(Error::InvalidTemperature { .. })
        ));
    }
    assert!(matches!(
        Csi::new(CsiConfig { shift_weight: -1.0, ..CsiConfig::default() }),
        Err(Error::InvalidConfig { ref field, ref value, .. }) if field == "shift_weight" && value == "-1"
    ));
    assert!(matches!(
        UniClr::new(UniClrConfig {
            soft_aggregation: Some(SoftAggregationConfig::default()),
            backend: InfoNceBackend::Fused,
            ..UniClrConfig::default()
        }),
        Err(Error::InvalidConfig { field, .. }) if field == "backend"
    ));
    assert!(matches!(
        UniConHa::new(UniConHaConfig {
            stage_weights: vec![],
            ..UniConHaConfig::default()
        }),
        Err(Error::InvalidConfig { field, .. }) if field == "stage_weights"
    ));
    for (cfg, field) in [
        (
            MilConvConfig {
                neighbours: 0,
                ..MilConvConfig::default()
            },
            "neighbours",
        ),
        (
            MilConvConfig {
                abnormal_fraction: 1.0,
                ..MilConvConfig::default()
            },
            "abnormal_fraction",
        ),
        (
            MilConvConfig {
                instances_per_combination: 0,
                ..MilConvConfig::default()
            },
            "instances_per_combination",
        ),
        (
            MilConvConfig {
                triplets: Some(0),
                ..MilConvConfig::default()
            },
            "triplets",
        ),
        (
            MilConvConfig {
                mean_weight: f64::NAN,
                ..MilConvConfig::default()
            },
            "mean_weight",
        ),
    ] {
        assert!(
            matches!(MilConv::new(cfg), Err(Error::InvalidConfig { field: f, .. }) if f == field)
        );
    }
    assert!(matches!(
        RotationCe::new(RotationCeConfig { n_classes: 1 }),
        Err(Error::InvalidConfig { field, .. }) if field == "n_classes"
    ));
    // Serde: unknown fields are rejected, defaults fill the rest.
    let c: MilConvConfig = serde_json::from_str(r#"{"neighbours": 3}"#).unwrap();
    assert_eq!((c.neighbours, c.instances_per_combination), (3, 4));
    assert!(serde_json::from_str::<Con2Config>(r#"{"tau": 0.1}"#).is_err());
    let k: KeConfig = serde_json::from_str(r#"{"negatives": "own_only"}"#).unwrap();
    assert_eq!(k.negatives, KeNegatives::OwnOnly);
}

#[test]
fn bad_inputs_give_typed_errors() {
    let z = unit(100, 16, 4);
    let csi = Csi::new(CsiConfig::default()).unwrap();
    // 12 rows are not a multiple of 2K = 8.
    assert!(matches!(
        csi.forward(&z.narrow(0, 0, 12).unwrap(), &randn(1, &[12, 4])),
        Err(Error::Shape { what: "projections", ref got, .. }) if got == &[12, 4]
    ));
    assert!(matches!(
        csi.forward(&z, &randn(1, &[8, 4])),
        Err(Error::Shape {
            what: "shift logits",
            ..
        })
    ));
    let empty = Tensor::zeros((0, 4), DType::F64, &Device::Cpu).unwrap();
    assert!(matches!(
        csi.forward(&empty, &empty),
        Err(Error::Shape { .. })
    ));
    // NaN features.
    let mut v = vec64(&z);
    v[5] = f64::NAN;
    let zn = Tensor::from_vec(v, (16, 4), &Device::Cpu).unwrap();
    assert!(matches!(
        csi.forward(&zn, &randn(1, &[16, 4])),
        Err(Error::NonFiniteLoss { .. })
    ));
    assert!(matches!(
        pseudo_normality_scores(&zn, 2),
        Err(Error::NonFiniteInput { index: 5, .. })
    ));
    let fused = Csi::new(CsiConfig {
        backend: InfoNceBackend::Fused,
        ..CsiConfig::default()
    })
    .unwrap();
    assert!(matches!(
        fused.forward(&zn, &randn(1, &[16, 4])),
        Err(Error::Kernel(_))
    ));

    let con2 = Con2::new(Con2Config::default()).unwrap();
    assert!(matches!(
        con2.forward(&z, &z.narrow(0, 0, 8).unwrap(), 0, 1),
        Err(Error::Shape {
            what: "content projections",
            ..
        })
    ));
    assert!(matches!(
        con2.forward(
            &z.narrow(0, 0, 6).unwrap(),
            &z.narrow(0, 0, 6).unwrap(),
            0,
            1
        ),
        Err(Error::Shape { .. })
    ));

    let (z1, z2) = (unit(101, 4, 3), unit(102, 5, 3));
    let u = UniClr::new(UniClrConfig::default()).unwrap();
    assert!(matches!(
        u.forward(&z1, &z2, &[true; 4]),
        Err(Error::Shape { what: "view 2", .. })
    ));
    assert!(matches!(
        u.forward(&z1, &z1, &[true; 3]),
        Err(Error::LabelCount {
            what: "inlier flags",
            got: 3,
            expected: 4
        })
    ));
    assert!(matches!(
        u.forward_with_weights(&z1, &z1, &[true, false, false, false], &[1.0]),
        Err(Error::LabelCount {
            got: 1,
            expected: 2,
            ..
        })
    ));
    assert!(matches!(
        u.forward_with_weights(&z1, &z1, &[true, false, false, false], &[1.0, -2.0]),
        Err(Error::InvalidConfig { ref value, .. }) if value == "-2"
    ));
    let f = Firm::new(FirmConfig::default()).unwrap();
    assert!(matches!(
        f.forward(&z1, &z1, &[0, 0]),
        Err(Error::LabelCount {
            what: "labels",
            got: 2,
            expected: 4
        })
    ));
    assert!(matches!(
        f.forward(&z1, &z1.to_dtype(DType::F32).unwrap(), &[0; 4]),
        Err(Error::DType { .. })
    ));

    let ke = KeLoss::new(KeConfig::default()).unwrap();
    let a = unit(103, 3, 4);
    let p = randn(104, &[3, 2, 4]);
    assert!(matches!(
        ke.forward(&a, &randn(105, &[2, 2, 4]), &p),
        Err(Error::Shape { what: "positives", ref got, .. }) if got == &[2, 2, 4]
    ));
    assert!(matches!(
        ke.forward(&a, &p, &randn(106, &[3, 2, 5])),
        Err(Error::Shape {
            what: "negatives",
            ..
        })
    ));

    assert!(matches!(
        pseudo_normality_scores(&unit(107, 5, 3), 5),
        Err(Error::BatchTooSmall { rows: 5, .. })
    ));
    let mil = MilConv::new(MilConvConfig::default()).unwrap();
    assert!(matches!(
        mil.forward(&unit(108, 4, 3), &mut SeedTree::new(0).rng()),
        Err(Error::BatchTooSmall { rows: 4, .. })
    ));
    assert!(matches!(
        soft_sampling(&[0.5], 0.1, SamplingRule::Shifted),
        Err(Error::BatchTooSmall { rows: 1, .. })
    ));
    assert!(matches!(
        soft_sampling(&[0.5, f64::NAN, 0.1], 0.1, SamplingRule::Shifted),
        Err(Error::NonFiniteInput { index: 1, .. })
    ));
    let comb = ConvexCombinations {
        triplets: 1,
        rows: 3,
        positive_a: vec![1.0; 3],
        positive_b: vec![1.0; 3],
        negative: vec![1.0; 3],
    };
    assert!(matches!(
        conv_loss(&unit(109, 4, 3), &comb, 0.5),
        Err(Error::Shape {
            what: "convex combinations",
            ..
        })
    ));

    let msc = Msc::new(MscConfig::default()).unwrap();
    assert!(matches!(
        msc.forward(&z1, &z1, Some(&randn(110, &[4]))),
        Err(Error::Shape { what: "centre", .. })
    ));

    let ce = RotationCe::new(RotationCeConfig::default()).unwrap();
    assert!(matches!(
        ce.forward(&randn(111, &[3, 4]), &[0, 4, 1]),
        Err(Error::LabelRange {
            index: 1,
            value: 4,
            classes: 4
        })
    ));
    assert!(matches!(
        ce.forward(&randn(111, &[3, 4]), &[0, 1]),
        Err(Error::LabelCount {
            got: 2,
            expected: 3,
            ..
        })
    ));
    assert!(matches!(
        ce.forward(&randn(111, &[3, 5]), &[0, 1, 2]),
        Err(Error::Shape {
            what: "shift logits",
            ..
        })
    ));
}
