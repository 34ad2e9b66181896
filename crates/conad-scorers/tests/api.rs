//! API-level tests: configs, serde round trips, typed errors, thread-count invariance and the
//! docs/reference.md §7 invariants that are not tied to one module.

use conad_rng::SeedTree;
use conad_scorers::{
    AnomalyScorer, CenterParams, EmbeddingMatrix, Embeddings, Error, Fit, FittedScorer,
    GaussianCovariance, GaussianParams, KnnParams, MahalanobisParams, OcSvmKernel, OcSvmParams,
    ScorerConfig, TtaEnsemble,
};
use proptest::prelude::*;
use rand::Rng;

/// Seeded Gaussian-ish data (sum of uniforms), `rows × d`, with a per-column offset.
fn data(seed: u64, rows: usize, d: usize, offset: f32) -> Vec<f32> {
    let mut rng = SeedTree::new(seed).child("test-data").rng();
    (0..rows * d)
        .map(|i| {
            let u: f32 = (0..4).map(|_| rng.random::<f32>()).sum::<f32>() - 2.0;
            u + offset * ((i % d) as f32 / d as f32)
        })
        .collect()
}

fn emb(v: &[f32], d: usize) -> Embeddings<'_> {
    Embeddings::new(v, v.len() / d, d).unwrap()
}

fn all_configs() -> Vec<ScorerConfig> {
    let mut v: Vec<ScorerConfig> = [
        "knn",
        "gaussian",
        "mahalanobis",
        "kde",
        "ocsvm",
        "ocsvm-linear",
        "center",
    ]
    .iter()
    .map(|n| ScorerConfig::from_name(n).unwrap())
    .collect();
    v.push(ScorerConfig::from_name("knn").unwrap().with_k(4).unwrap());
    v.push(
        ScorerConfig::from_name("mahalanobis")
            .unwrap()
            .with_k(3)
            .unwrap(),
    );
    v
}

#[test]
fn config_names_options_and_errors() {
    match ScorerConfig::from_name("lof") {
        Err(Error::UnknownScorer { name, valid }) => {
            assert_eq!(name, "lof");
            assert_eq!(valid, conad_scorers::scorer_names());
        }
        other => panic!("{other:?}"),
    }
    let knn = ScorerConfig::from_name("knn").unwrap();
    assert!(matches!(
        knn.clone().with_nu(0.5),
        Err(Error::OptionNotApplicable {
            option: "--nu",
            scorer: "knn",
            ..
        })
    ));
    assert!(matches!(
        knn.clone().with_normalize(false),
        Err(Error::OptionNotApplicable { .. })
    ));
    assert!(knn.clone().with_normalize(true).is_ok());
    assert!(matches!(
        ScorerConfig::from_name("ocsvm-linear")
            .unwrap()
            .with_gamma(1.0),
        Err(Error::OptionNotApplicable {
            option: "--gamma",
            ..
        })
    ));
    // Invalid values surface as typed errors at validation/fit time.
    let x = data(1, 10, 3, 1.0);
    let e = emb(&x, 3);
    assert_eq!(
        knn.clone().with_k(0).unwrap().fit(e).unwrap_err(),
        Error::ZeroK
    );
    assert_eq!(
        knn.with_k(11).unwrap().fit(e).unwrap_err(),
        Error::KExceedsBank { k: 11, bank: 10 }
    );
    for nu in [0.0f64, -0.1, 1.5, f64::NAN] {
        let c = ScorerConfig::from_name("ocsvm")
            .unwrap()
            .with_nu(nu)
            .unwrap();
        match c.validate() {
            Err(Error::InvalidNu(v)) => assert!(v.is_nan() || v == nu),
            other => panic!("nu = {nu}: {other:?}"),
        }
    }
    assert_eq!(
        ScorerConfig::from_name("kde")
            .unwrap()
            .with_gamma(0.0)
            .unwrap()
            .validate(),
        Err(Error::InvalidGamma(0.0))
    );
    // The sigmoid kernel's γ and coef0 are checked; `--gamma` reaches it and a linear SVM refuses.
    let sigmoid = ScorerConfig::from_name("ocsvm-sigmoid").unwrap();
    assert_eq!(
        sigmoid.clone().with_gamma(-1.0).unwrap().validate(),
        Err(Error::InvalidGamma(-1.0))
    );
    let bad_coef0 = ScorerConfig::Ocsvm(OcSvmParams::default().kernel(OcSvmKernel::Sigmoid {
        gamma: conad_scorers::Gamma::Scale,
        coef0: f32::NAN,
    }));
    match bad_coef0.validate() {
        Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, "coef0"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ScorerConfig::from_name("ocsvm-linear")
            .unwrap()
            .with_gamma(1.0),
        Err(Error::OptionNotApplicable {
            option: "--gamma",
            ..
        })
    ));
    // Messages say what to do.
    let msg = Error::KExceedsBank { k: 5, bank: 2 }.to_string();
    assert!(msg.contains("k ≤ 2"), "{msg}");
}

#[test]
fn config_round_trips_through_json_and_toml() {
    for c in all_configs() {
        let j = serde_json::to_string(&c).unwrap();
        let back: ScorerConfig = serde_json::from_str(&j).unwrap();
        assert_eq!(back, c, "{j}");
    }
    // A hand-written config with defaults filled in.
    let c: ScorerConfig = serde_json::from_str(r#"{"scorer":"knn","k":5}"#).unwrap();
    assert_eq!(
        c,
        ScorerConfig::from_name("knn").unwrap().with_k(5).unwrap()
    );
    let g: ScorerConfig = serde_json::from_str(
        r#"{"scorer":"gaussian","covariance":{"kind":"ridge","epsilon":0.001}}"#,
    )
    .unwrap();
    assert_eq!(
        g,
        ScorerConfig::Gaussian(
            GaussianParams::default().covariance(GaussianCovariance::Ridge { epsilon: 1e-3 })
        )
    );
}

#[test]
fn fitted_scorers_round_trip_through_serde_with_identical_scores() {
    let (d, x, q) = (6, data(2, 60, 6, 3.0), data(3, 17, 6, 3.0));
    for c in all_configs() {
        let fitted = c.fit(emb(&x, d)).unwrap();
        let s1 = fitted.score_batch(emb(&q, d)).unwrap();
        let json = serde_json::to_string(&fitted).unwrap();
        let back: FittedScorer = serde_json::from_str(&json).unwrap();
        assert_eq!(back.name(), fitted.name());
        assert_eq!(back.score_batch(emb(&q, d)).unwrap(), s1, "{}", c.name());
        // Boxed trait objects give the same numbers.
        let boxed = c.fit_boxed(emb(&x, d)).unwrap();
        assert_eq!(boxed.score_batch(emb(&q, d)).unwrap(), s1);
        assert!(s1.iter().all(|v| v.is_finite()));
        // single-row scoring agrees with the batch
        let one = boxed.score(&q[..d]).unwrap();
        assert!(
            (one - s1[0]).abs() <= 1e-5 * s1[0].abs().max(1.0),
            "{}: {one} vs {}",
            c.name(),
            s1[0]
        );
    }
    // A corrupted file is rejected, not a panic.
    let bad = r#"{"scorer":"knn","params":{"k":1},"bank":{"rows":3,"cols":2,"data":[1.0,2.0]}}"#;
    assert!(serde_json::from_str::<FittedScorer>(bad).is_err());
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let (d, x, q) = (16, data(4, 3000, 16, 2.0), data(5, 700, 16, 2.0));
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    for c in all_configs() {
        let run = |threads| {
            pool(threads).install(|| {
                let s = c.fit(emb(&x, d)).unwrap();
                s.score_batch(emb(&q, d)).unwrap()
            })
        };
        let (a, b) = (run(1), run(3));
        assert!(
            a.iter().zip(&b).all(|(u, v)| u.to_bits() == v.to_bits()),
            "{} differs between 1 and 3 threads",
            c.name()
        );
    }
}

#[test]
fn ocsvm_nu_one_gives_equal_alphas() {
    // docs/reference.md §7: for ν → 1 all α equal 1/n (libsvm scale: all α = 1, Σα = n).
    let (d, x) = (4, data(6, 30, 4, 1.0));
    for kernel in [
        OcSvmKernel::Linear,
        OcSvmKernel::Rbf {
            gamma: conad_scorers::Gamma::Scale,
        },
    ] {
        let svm = OcSvmParams::default()
            .kernel(kernel)
            .nu(1.0)
            .fit(emb(&x, d))
            .unwrap();
        assert_eq!(svm.n_support(), 30);
        for &a in svm.dual_coef() {
            assert!((a / 30.0 - 1.0 / 30.0).abs() < 1e-12, "α = {a}");
        }
        assert!(svm.rho().is_finite());
        let s = svm.score_batch(emb(&x, d)).unwrap();
        assert!(s.iter().all(|v| v.is_finite()));
    }
    // ν just below 1: almost all α at the bound, Σα = νn.
    let svm = OcSvmParams::default().nu(0.95).fit(emb(&x, d)).unwrap();
    let sum: f64 = svm.dual_coef().iter().sum();
    assert!((sum - 0.95 * 30.0).abs() < 1e-9, "{sum}");
}

#[test]
fn gaussian_works_when_n_is_below_d() {
    // BreastMNIST shape: 399 normal training embeddings of dimension 512.
    let (d, x) = (512, data(7, 399, 512, 4.0));
    let g = GaussianParams::default().fit(emb(&x, d)).unwrap();
    assert!(g.shrinkage() > 0.0 && g.shrinkage() < 1.0);
    let inside = g.score(&x[..d]).unwrap();
    let far: Vec<f32> = x[..d]
        .iter()
        .enumerate()
        .map(|(i, v)| if i % 2 == 0 { -v } else { *v })
        .collect();
    let outside = g.score(&far).unwrap();
    assert!(
        inside.is_finite() && outside > inside,
        "{inside} vs {outside}"
    );
    // The unregularised covariance is singular here: a typed error, not garbage.
    let e = GaussianParams::default()
        .covariance(GaussianCovariance::Ridge { epsilon: 0.0 })
        .fit(emb(&x, d))
        .unwrap_err();
    assert!(matches!(e, Error::NotPositiveDefinite { .. }), "{e:?}");
    // The ridge alternative works.
    assert!(
        GaussianParams::default()
            .covariance(GaussianCovariance::Ridge { epsilon: 1e-3 })
            .fit(emb(&x, d))
            .is_ok()
    );
}

#[test]
fn mahalanobis_clusters_cover_every_blob() {
    // Two blobs that differ in every dimension (so standardisation keeps them apart); with two
    // clusters both blob centres score far below the midpoint between them.
    let d = 4;
    let centres = [[3.0f32, 1.0, 2.0, 1.0], [-1.0, 2.0, -2.0, 3.0]];
    let mut x = Vec::new();
    let mut rng = SeedTree::new(8).child("blobs").rng();
    for i in 0..200 {
        for &c in &centres[i % 2] {
            x.push(c + 0.3 * (rng.random::<f32>() - 0.5));
        }
    }
    let two = MahalanobisParams::default()
        .n_clusters(2)
        .seed(3)
        .fit(emb(&x, d))
        .unwrap();
    assert_eq!(two.clusters().len(), 2);
    let sizes: Vec<usize> = two.clusters().iter().map(|c| c.size).collect();
    assert_eq!(sizes, vec![100, 100]);
    let a = two.score(&centres[0]).unwrap();
    let b = two.score(&centres[1]).unwrap();
    let midpoint: Vec<f32> = (0..d)
        .map(|c| 0.5 * (centres[0][c] + centres[1][c]))
        .collect();
    let mid = two.score(&midpoint).unwrap();
    assert!(a < 10.0 && b < 10.0 && mid > 100.0, "{a} {b} {mid}");
    // Same seed → same model.
    let again = MahalanobisParams::default()
        .n_clusters(2)
        .seed(3)
        .fit(emb(&x, d))
        .unwrap();
    assert_eq!(again, two);
    assert!(matches!(
        MahalanobisParams::default().n_clusters(201).fit(emb(&x, d)),
        Err(Error::TooManyClusters {
            clusters: 201,
            rows: 200
        })
    ));
}

#[test]
fn tta_ensemble_of_configured_scorers_serialises() {
    let d = 5;
    let banks: Vec<Vec<f32>> = (0..4).map(|g| data(10 + g, 40, d, g as f32)).collect();
    let views: Vec<Embeddings<'_>> = banks.iter().map(|b| emb(b, d)).collect();
    let ens: TtaEnsemble<FittedScorer> =
        TtaEnsemble::fit(&ScorerConfig::from_name("knn").unwrap(), &views).unwrap();
    let qs: Vec<Vec<f32>> = (0..4).map(|g| data(20 + g, 7, d, g as f32)).collect();
    let qv: Vec<Embeddings<'_>> = qs.iter().map(|q| emb(q, d)).collect();
    let s = ens.score_groups(&qv).unwrap();
    // Equals the hand-made mean of the members' scores.
    let per_member: Vec<Vec<f32>> = (0..4)
        .map(|g| ens.members()[g].score_batch(qv[g]).unwrap())
        .collect();
    for (i, &si) in s.iter().enumerate() {
        let mean: f64 = per_member.iter().map(|m| f64::from(m[i])).sum::<f64>() / 4.0;
        assert!((f64::from(si) - mean).abs() < 1e-6);
    }
    let json = serde_json::to_string(&ens).unwrap();
    let back: TtaEnsemble<FittedScorer> = serde_json::from_str(&json).unwrap();
    assert_eq!(back.score_groups(&qv).unwrap(), s);
    // Different dimensions across banks are rejected, naming the group.
    let other = data(30, 10, 3, 0.0);
    let mixed = [views[0], emb(&other, 3)];
    assert!(matches!(
        TtaEnsemble::<FittedScorer>::fit(&ScorerConfig::default(), &mixed),
        Err(Error::DimensionMismatch { .. })
    ));
}

#[test]
fn owned_fit_equals_borrowed_fit() {
    let (d, x, q) = (8, data(40, 100, 8, 1.0), data(41, 9, 8, 1.0));
    let a = KnnParams::default().k(3).fit(emb(&x, d)).unwrap();
    let b = KnnParams::default()
        .k(3)
        .fit_owned(EmbeddingMatrix::new(x.clone(), 100, d).unwrap())
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(
        a.score_batch(emb(&q, d)).unwrap(),
        b.score_batch(emb(&q, d)).unwrap()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn centre_score_is_scale_invariant(seed in 0u64..1000, scales in proptest::collection::vec(0.01f32..100.0, 12)) {
        let d = 5;
        let x = data(seed, 12, d, 2.0);
        let scaled: Vec<f32> = x.chunks(d).zip(&scales).flat_map(|(r, &s)| r.iter().map(move |v| v * s)).collect();
        let a = CenterParams::default().fit(emb(&x, d)).unwrap();
        let b = CenterParams::default().fit(emb(&scaled, d)).unwrap();
        let (sa, sb) = (a.score_batch(emb(&x, d)).unwrap(), b.score_batch(emb(&scaled, d)).unwrap());
        for (u, v) in sa.iter().zip(&sb) {
            prop_assert!((u - v).abs() < 1e-5);
        }
    }

    #[test]
    fn knn_permuting_queries_permutes_scores(seed in 0u64..1000, shift in 1usize..9) {
        let d = 6;
        let (x, q) = (data(seed, 30, d, 1.0), data(seed + 1, 9, d, 1.0));
        let s = KnnParams::default().k(2).fit(emb(&x, d)).unwrap();
        let rot: Vec<f32> = (0..9).flat_map(|i| q[((i + shift) % 9) * d..((i + shift) % 9 + 1) * d].to_vec()).collect();
        let (a, b) = (s.score_batch(emb(&q, d)).unwrap(), s.score_batch(emb(&rot, d)).unwrap());
        for i in 0..9 {
            prop_assert_eq!(a[(i + shift) % 9], b[i]);
        }
    }
}

/// The scorer table is the only place names live: every entry and alias resolves, names round
/// trip through the config, its serde tag and the fitted scorer, and every `ScorerConfig` kind
/// has an entry.
#[test]
fn the_scorer_table_is_complete_and_consistent() {
    use conad_scorers::{AnomalyScorer, Embeddings, Fit, SCORERS};
    let train: Vec<f32> = (0..40 * 3)
        .map(|i| ((i * 7) % 13) as f32 / 13.0 + 0.1)
        .collect();
    let mut kinds = std::collections::BTreeSet::new();
    for info in SCORERS {
        let config = ScorerConfig::from_name(info.name).unwrap();
        assert_eq!(config, (info.default)());
        for alias in info.aliases {
            assert_eq!(ScorerConfig::from_name(alias).unwrap(), config, "{alias}");
        }
        assert_eq!(
            ScorerConfig::from_name(&info.name.to_uppercase()).unwrap(),
            config
        );
        // The kind's name: the entry's own, or the first entry of the same kind.
        let kind = config.name();
        assert!(info.name.starts_with(kind), "{} vs {kind}", info.name);
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["scorer"], kind, "serde tag of {}", info.name);
        let fitted = config.fit(Embeddings::new(&train, 40, 3).unwrap()).unwrap();
        assert_eq!(fitted.name(), kind, "fitted {}", info.name);
        kinds.insert(kind);
        assert!(!info.summary.is_empty());
    }
    // Exhaustive over the enum: a new kind without a table entry fails here.
    let every_kind = |c: &ScorerConfig| match c {
        ScorerConfig::Knn(_)
        | ScorerConfig::Gaussian(_)
        | ScorerConfig::Mahalanobis(_)
        | ScorerConfig::Kde(_)
        | ScorerConfig::Ocsvm(_)
        | ScorerConfig::Center(_) => c.name(),
    };
    for c in all_configs() {
        assert!(kinds.contains(every_kind(&c)), "{c:?} has no table entry");
    }
    assert_eq!(kinds.len(), 6);
}
