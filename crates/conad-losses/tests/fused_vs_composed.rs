//! The fused op of conad-kernels (`conad_kernels::fused_info_nce*`) against the same loss
//! composed from candle ops (`conad_losses::info_nce`, itself checked against PyTorch), on
//! layouts large enough to span several row blocks and key tiles (n > 256 keys, > 128 anchors,
//! ragged tails), in f64 (1e-10) and f32 (1e-5); plus a finite-difference check of the backward
//! pass (docs/reference.md §0 "The generic kernel"). It lives in conad-losses, which depends on
//! conad-kernels, so that conad-kernels needs no dev-dependency on the crate above it.

use candle_core::{DType, Device, Tensor, Var};
use conad_kernels::{
    AnchorRows, Denominator, EmptyAnchors, FusedInfoNceConfig, MaskRules, PositiveReduction,
    PositiveRule, RowIds, fused_info_nce, fused_info_nce_per_anchor, fused_info_nce_qk,
};
use conad_losses::{AnchorViews, ContrastMasks, InfoNceConfig, info_nce};
use conad_rng::SeedTree;
use rand::Rng;
use rand_distr::StandardNormal;

/// `n × d` rows with i.i.d. normal entries, L2-normalised, from a named seed.
fn normalised(n: usize, d: usize, name: &str) -> Vec<f64> {
    let mut rng = SeedTree::new(7).child(name).rng();
    let mut z = Vec::with_capacity(n * d);
    for _ in 0..n {
        let row: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
        let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
        z.extend(row.iter().map(|x| x / norm));
    }
    z
}

fn var(values: &[f64], n: usize, d: usize, dtype: DType) -> Var {
    let t = Tensor::from_vec(values.to_vec(), (n, d), &Device::Cpu).unwrap();
    Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap()
}

fn to_f64(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

fn max_rel(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1e-3f64, |m, x| m.max(x.abs()));
    got.iter()
        .zip(want)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

/// Fused vs composed on one shared `z`: loss and `dz` in f64 and f32.
fn compare_shared(
    z: &[f64],
    n: usize,
    d: usize,
    ids: &RowIds,
    masks: &ContrastMasks,
    config: FusedInfoNceConfig,
) {
    let m = masks.rows();
    let composed_cfg = InfoNceConfig {
        temperature: config.temperature,
        reduction: config.reduction,
        empty_anchors: config.empty_anchors,
    };
    for (dtype, tol) in [(DType::F64, 1e-10), (DType::F32, 1e-5)] {
        let zf = var(z, n, d, dtype);
        let fused = fused_info_nce(zf.as_tensor(), ids, &config).unwrap();
        let gf = to_f64(fused.backward().unwrap().get(zf.as_tensor()).unwrap());
        let zc = var(z, n, d, dtype);
        let q = zc.as_tensor().narrow(0, 0, m).unwrap();
        let composed = info_nce(&q, zc.as_tensor(), masks, &composed_cfg).unwrap();
        let gc = to_f64(composed.backward().unwrap().get(zc.as_tensor()).unwrap());
        let (lf, lc) = (to_f64(&fused)[0], to_f64(&composed)[0]);
        assert!(
            (lf - lc).abs() / lc.abs().max(1.0) < tol,
            "{config:?} {dtype:?}: loss fused {lf} vs composed {lc}"
        );
        let err = max_rel(&gf, &gc);
        assert!(err < tol, "{config:?} {dtype:?}: dz differs by {err}");
    }
}

#[test]
fn nt_xent_many_blocks_equals_composed() {
    // 150 images × 2 views = 300 rows: 3 row blocks of 128 and 2 key tiles of 256 (both ragged).
    let (n_img, d) = (150, 24);
    let z = normalised(2 * n_img, d, "ntxent");
    let ids = RowIds::view_major(n_img, 2);
    let masks = ContrastMasks::instance_discrimination(n_img, 2, AnchorViews::All);
    compare_shared(
        &z,
        2 * n_img,
        d,
        &ids,
        &masks,
        FusedInfoNceConfig::nt_xent(0.5),
    );
}

#[test]
fn supcon_reductions_and_empty_anchors_equal_composed() {
    // One view; labels with singletons (anchors without positives) across 290 rows.
    let n = 290;
    let d = 16;
    let labels: Vec<i64> = (0..n as i64)
        .map(|i| if i % 7 == 3 { 1000 + i } else { i % 5 })
        .collect();
    let z = normalised(n, d, "supcon");
    let ids = RowIds::view_major_labelled(&labels, 1).unwrap();
    let masks = ContrastMasks::from_labels(&labels, 1, AnchorViews::All).unwrap();
    assert!(masks.positive_weight_sums().contains(&0.0));
    for reduction in [
        PositiveReduction::MeanLogProb,
        PositiveReduction::LogSumProb,
        PositiveReduction::LogMeanProb,
    ] {
        for empty_anchors in [EmptyAnchors::CountAsZero, EmptyAnchors::Drop] {
            let config = FusedInfoNceConfig {
                reduction,
                empty_anchors,
                ..FusedInfoNceConfig::supcon(0.1)
            };
            compare_shared(&z, n, d, &ids, &masks, config);
        }
    }
}

#[test]
fn supcon_leading_anchors_equal_composed() {
    // contrast_mode='one' with 3 views: anchors are the 70 view-0 rows of 210.
    let labels: Vec<i64> = (0..70).map(|i| i % 9).collect();
    let z = normalised(210, 12, "one");
    let ids = RowIds::view_major_labelled(&labels, 3).unwrap();
    let masks = ContrastMasks::from_labels(&labels, 3, AnchorViews::First).unwrap();
    let config = FusedInfoNceConfig {
        anchors: AnchorRows::Leading(70),
        ..FusedInfoNceConfig::supcon(0.07)
    };
    compare_shared(&z, 210, 12, &ids, &masks, config);
}

#[test]
fn firm_concat_equals_composed() {
    let y: Vec<i64> = (0..140)
        .map(|i| if i % 4 == 0 { i % 3 } else { -1 })
        .collect();
    let same: Vec<bool> = (0..140)
        .flat_map(|i| {
            let y = &y;
            (0..140).map(move |j| i == j || (y[i] == y[j] && y[i] != -1))
        })
        .collect();
    let masks = ContrastMasks::from_image_pairs(&same, 140, 2, AnchorViews::All).unwrap();
    let ids = RowIds::view_major_labelled(&y, 2).unwrap();
    let config = FusedInfoNceConfig {
        temperature: 0.2,
        rules: MaskRules {
            positives: PositiveRule::SameInstanceOrInlierLabel,
            denominator: Denominator::AllOthers,
        },
        ..Default::default()
    };
    compare_shared(&normalised(280, 8, "firm"), 280, 8, &ids, &masks, config);
}

#[test]
fn false_negative_elimination_equals_composed() {
    // SimCLR positives; same-class other images leave the denominator. Masks written out here
    // independently of the kernel's rule code.
    let labels: Vec<i64> = (0..100).map(|i| i % 6).collect();
    let n = 200;
    let masks = ContrastMasks::from_fn(n, n, |a, c| {
        let (ia, ic) = (a % 100, c % 100);
        let positive = a != c && ia == ic;
        let valid = a != c && (positive || labels[ia] != labels[ic]);
        (valid, if positive { 1.0 } else { 0.0 })
    })
    .unwrap();
    let ids = RowIds::view_major_labelled(&labels, 2).unwrap();
    let config = FusedInfoNceConfig {
        rules: MaskRules {
            positives: PositiveRule::SameInstance,
            denominator: Denominator::NoSameLabelNegatives,
        },
        ..FusedInfoNceConfig::nt_xent(0.3)
    };
    compare_shared(&normalised(n, 10, "fne"), n, 10, &ids, &masks, config);
}

#[test]
fn pairwise_qk_equals_composed() {
    // FIRM pairwise loss: inlier anchors uniform over inlier keys incl. the diagonal, outlier
    // anchors one-hot on the diagonal; 130 anchors × 300 keys (keys are view 2 of 130 images
    // plus 170 extra rows that are never positives).
    let (m, n, d) = (130, 300, 20);
    let inlier = |i: usize| !i.is_multiple_of(3);
    let key_inst: Vec<i64> = (0..n as i64).collect();
    let key_lab: Vec<i64> = (0..n)
        .map(|j| if j < m && inlier(j) { 0 } else { -1 })
        .collect();
    let anchor_lab: Vec<i64> = (0..m).map(|i| if inlier(i) { 0 } else { -1 }).collect();
    let anchor_ids = RowIds::with_labels((0..m as i64).collect(), anchor_lab).unwrap();
    let key_ids = RowIds::with_labels(key_inst, key_lab.clone()).unwrap();
    let masks = ContrastMasks::from_fn(m, n, |i, j| {
        let pos = i == j || (inlier(i) && key_lab[j] == 0);
        (true, if pos { 1.0 } else { 0.0 })
    })
    .unwrap();
    let config = FusedInfoNceConfig {
        temperature: 0.2,
        rules: MaskRules {
            positives: PositiveRule::SameInstanceOrInlierLabel,
            denominator: Denominator::AllOthers,
        },
        ..Default::default()
    };
    let (qv, kv) = (normalised(m, d, "q"), normalised(n, d, "k"));
    for (dtype, tol) in [(DType::F64, 1e-10), (DType::F32, 1e-5)] {
        let (q, k) = (var(&qv, m, d, dtype), var(&kv, n, d, dtype));
        let fused = fused_info_nce_qk(q.as_tensor(), k.as_tensor(), &anchor_ids, &key_ids, &config)
            .unwrap();
        let g = fused.backward().unwrap();
        let (dqf, dkf) = (
            to_f64(g.get(q.as_tensor()).unwrap()),
            to_f64(g.get(k.as_tensor()).unwrap()),
        );
        let (q2, k2) = (var(&qv, m, d, dtype), var(&kv, n, d, dtype));
        let composed = info_nce(
            q2.as_tensor(),
            k2.as_tensor(),
            &masks,
            &InfoNceConfig {
                temperature: 0.2,
                ..Default::default()
            },
        )
        .unwrap();
        let g = composed.backward().unwrap();
        let (dqc, dkc) = (
            to_f64(g.get(q2.as_tensor()).unwrap()),
            to_f64(g.get(k2.as_tensor()).unwrap()),
        );
        let (lf, lc) = (to_f64(&fused)[0], to_f64(&composed)[0]);
        assert!(
            (lf - lc).abs() / lc.max(1.0) < tol,
            "{dtype:?}: {lf} vs {lc}"
        );
        assert!(
            max_rel(&dqf, &dqc) < tol,
            "{dtype:?}: dq {}",
            max_rel(&dqf, &dqc)
        );
        assert!(
            max_rel(&dkf, &dkc) < tol,
            "{dtype:?}: dk {}",
            max_rel(&dkf, &dkc)
        );
    }
}

#[test]
fn qk_anchors_without_matching_keys_count_as_zero() {
    // Anchors 0..40; keys are images 0..30 only (anchors 30..40 have no positive) plus 20
    // distractors with fresh ids.
    let (m, n, d) = (40, 50, 6);
    let anchor_ids = RowIds::new((0..m as i64).collect());
    let key_ids = RowIds::new((0..30).chain(1000..1020).collect());
    let masks = ContrastMasks::from_fn(m, n, |i, j| {
        (true, if j < 30 && i == j { 1.0 } else { 0.0 })
    })
    .unwrap();
    let (qv, kv) = (normalised(m, d, "qa"), normalised(n, d, "ka"));
    for empty_anchors in [EmptyAnchors::CountAsZero, EmptyAnchors::Drop] {
        let config = FusedInfoNceConfig {
            empty_anchors,
            ..FusedInfoNceConfig::nt_xent(0.3)
        };
        let (q, k) = (var(&qv, m, d, DType::F64), var(&kv, n, d, DType::F64));
        let fused = fused_info_nce_qk(q.as_tensor(), k.as_tensor(), &anchor_ids, &key_ids, &config)
            .unwrap();
        let g = fused.backward().unwrap();
        let (q2, k2) = (var(&qv, m, d, DType::F64), var(&kv, n, d, DType::F64));
        let composed_cfg = InfoNceConfig {
            temperature: 0.3,
            empty_anchors,
            ..Default::default()
        };
        let composed = info_nce(q2.as_tensor(), k2.as_tensor(), &masks, &composed_cfg).unwrap();
        let gc = composed.backward().unwrap();
        assert!((to_f64(&fused)[0] - to_f64(&composed)[0]).abs() < 1e-10);
        for (a, b) in [
            (q.as_tensor(), q2.as_tensor()),
            (k.as_tensor(), k2.as_tensor()),
        ] {
            let err = max_rel(&to_f64(g.get(a).unwrap()), &to_f64(gc.get(b).unwrap()));
            assert!(err < 1e-10, "{empty_anchors:?}: {err}");
        }
    }
}

#[test]
fn per_anchor_losses_equal_composed_and_backpropagate() {
    let n_img = 40;
    let z = normalised(2 * n_img, 8, "per-anchor");
    let ids = RowIds::view_major(n_img, 2);
    let masks = ContrastMasks::instance_discrimination(n_img, 2, AnchorViews::All);
    let zf = var(&z, 2 * n_img, 8, DType::F64);
    let per =
        fused_info_nce_per_anchor(zf.as_tensor(), &ids, &FusedInfoNceConfig::nt_xent(0.5)).unwrap();
    let zc = var(&z, 2 * n_img, 8, DType::F64);
    let want = conad_losses::info_nce_per_anchor(
        zc.as_tensor(),
        zc.as_tensor(),
        &masks,
        &InfoNceConfig::default(),
    )
    .unwrap();
    assert!(max_rel(&to_f64(&per), &to_f64(&want.losses)) < 1e-12);
    // A weighted sum of per-anchor losses: weights reach the right anchors in the backward.
    let w = Tensor::from_vec(
        (0..2 * n_img).map(|i| (i % 5) as f64).collect::<Vec<_>>(),
        2 * n_img,
        &Device::Cpu,
    )
    .unwrap();
    let gf = to_f64(
        (per * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(zf.as_tensor())
            .unwrap(),
    );
    let gc = to_f64(
        (want.losses * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(zc.as_tensor())
            .unwrap(),
    );
    assert!(max_rel(&gf, &gc) < 1e-10);
}

#[test]
fn gradient_matches_central_differences() {
    // Unnormalised rows (the op does not need unit norm), L_in reduction, SupCon labels.
    let (n, d) = (70, 5);
    let z: Vec<f64> = normalised(n, d, "fd").iter().map(|x| 1.3 * x).collect();
    let labels: Vec<i64> = (0..35).map(|i| i % 4).collect();
    let ids = RowIds::view_major_labelled(&labels, 2).unwrap();
    for reduction in [
        PositiveReduction::MeanLogProb,
        PositiveReduction::LogSumProb,
    ] {
        let config = FusedInfoNceConfig {
            reduction,
            ..FusedInfoNceConfig::supcon(0.4)
        };
        let loss_at = |v: &[f64]| {
            let t = Tensor::from_vec(v.to_vec(), (n, d), &Device::Cpu).unwrap();
            fused_info_nce(&t, &ids, &config)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let zv = var(&z, n, d, DType::F64);
        let g = to_f64(
            fused_info_nce(zv.as_tensor(), &ids, &config)
                .unwrap()
                .backward()
                .unwrap()
                .get(zv.as_tensor())
                .unwrap(),
        );
        let h = 1e-6;
        for idx in (0..n * d).step_by(13) {
            let (mut up, mut down) = (z.clone(), z.clone());
            up[idx] += h;
            down[idx] -= h;
            let fd = (loss_at(&up) - loss_at(&down)) / (2.0 * h);
            assert!(
                (fd - g[idx]).abs() < 1e-7,
                "{reduction:?} z[{idx}]: fd {fd} vs {}",
                g[idx]
            );
        }
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    use conad_kernels::Error;
    let z = Tensor::zeros((4, 3), DType::F32, &Device::Cpu).unwrap();
    let ids = RowIds::view_major(2, 2);
    let cfg = FusedInfoNceConfig::default();
    assert!(matches!(
        fused_info_nce(&z, &RowIds::view_major(3, 2), &cfg),
        Err(Error::IdCount {
            got: 6,
            expected: 4,
            ..
        })
    ));
    assert!(matches!(
        fused_info_nce(&z, &ids, &FusedInfoNceConfig::nt_xent(0.0)),
        Err(Error::InvalidTemperature { .. })
    ));
    assert!(matches!(
        fused_info_nce(&z, &ids, &FusedInfoNceConfig::supcon(0.1)),
        Err(Error::MissingLabels { .. })
    ));
    assert!(matches!(
        fused_info_nce(
            &z,
            &ids,
            &FusedInfoNceConfig {
                anchors: AnchorRows::Leading(5),
                ..cfg
            }
        ),
        Err(Error::AnchorCount {
            anchors: 5,
            rows: 4
        })
    ));
    let z3 = Tensor::zeros((2, 2, 3), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        fused_info_nce(&z3, &ids, &cfg),
        Err(Error::Shape { .. })
    ));
    let zi = Tensor::zeros((4, 3), DType::U32, &Device::Cpu).unwrap();
    assert!(matches!(
        fused_info_nce(&zi, &ids, &cfg),
        Err(Error::DType { .. })
    ));
    let mut v = vec![0.5f32; 12];
    v[7] = f32::NAN;
    let zn = Tensor::from_vec(v, (4, 3), &Device::Cpu).unwrap();
    assert!(matches!(
        fused_info_nce(&zn, &ids, &cfg),
        Err(Error::NonFinite { row: 2, col: 1, .. })
    ));
    // Every image alone with one view: nobody has a positive.
    let lonely = RowIds::view_major(4, 1);
    assert!(matches!(
        fused_info_nce(
            &z,
            &lonely,
            &FusedInfoNceConfig {
                empty_anchors: EmptyAnchors::Drop,
                ..cfg
            }
        ),
        Err(Error::NoPositives)
    ));
    // … which is a loss of exactly 0 (with zero gradient) under CountAsZero.
    let zv = Var::from_tensor(&z).unwrap();
    let loss = fused_info_nce(zv.as_tensor(), &lonely, &cfg).unwrap();
    assert_eq!(loss.to_scalar::<f32>().unwrap(), 0.0);
    let g = to_f64(loss.backward().unwrap().get(zv.as_tensor()).unwrap());
    assert!(g.iter().all(|&x| x == 0.0));
    let k = Tensor::zeros((4, 2), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        fused_info_nce_qk(&z, &k, &ids, &ids, &cfg),
        Err(Error::Mismatch { .. })
    ));
}
