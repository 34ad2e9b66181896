//! The approximate kNN backend (feature `hnsw`) through the public scorer API: recall against
//! the exact backend, bank members, determinism (seed, thread count), serde, typed errors.
//!
//! Run with `cargo test -p conad-scorers --features hnsw`.
#![cfg(feature = "hnsw")]

use conad_rng::SeedTree;
use conad_scorers::{
    AnomalyScorer, Embeddings, Error, Fit, FittedScorer, HnswParams, KnnBackend, KnnParams,
    KnnScorer, ScorerConfig,
};
use rand::Rng;

/// `rows × d` raw (unnormalised) points around `clusters` Gaussian centres, Box–Muller on a
/// seed-tree stream; row `r` belongs to cluster `(r·7919) mod clusters`.
fn clustered(seed: u64, rows: usize, d: usize, clusters: usize, spread: f32) -> Vec<f32> {
    let mut rng = SeedTree::new(seed).child("hnsw-api-data").rng();
    let mut gauss = move || {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    };
    // Cluster centres share the stream with the points: fixed by the seed.
    let centres: Vec<f32> = (0..clusters * d).map(|_| 3.0 * gauss()).collect();
    let mut x = Vec::with_capacity(rows * d);
    for r in 0..rows {
        let c = (r * 7919) % clusters;
        // Raw norms vary (×0.5 … ×2) so normalisation and norm weighting are exercised.
        let scale = 0.5 + 1.5 * ((r % 7) as f32 / 6.0);
        for j in 0..d {
            x.push(scale * (centres[c * d + j] + 3.0 * spread * gauss()));
        }
    }
    x
}

fn emb(v: &[f32], d: usize) -> Embeddings<'_> {
    Embeddings::new(v, v.len() / d, d).unwrap()
}

fn hnsw(p: HnswParams) -> KnnBackend {
    KnnBackend::Hnsw(p)
}

const D: usize = 32;

#[test]
fn recall_against_the_exact_backend() {
    // 5 000 × 32 clustered bank, 400 queries. recall@k = fraction of the HNSW top-k similarities
    // that reach the exact k-th similarity (−1e-5 for rounding): with distinct bank items and no
    // exact ties this equals the id-based recall (the id-based one is checked in the unit test).
    let x = clustered(1, 5000, D, 50, 0.35);
    let q = clustered(2, 400, D, 50, 0.35);
    for k in [1usize, 5, 10] {
        let exact = KnnParams::default().k(k).fit(emb(&x, D)).unwrap();
        let approx = KnnParams::default()
            .k(k)
            .backend(hnsw(HnswParams::default())) // ef_search = 64
            .fit(emb(&x, D))
            .unwrap();
        let te = exact.top_k_similarities(emb(&q, D)).unwrap();
        let ta = approx.top_k_similarities(emb(&q, D)).unwrap();
        let mut hits = 0usize;
        for (re, ra) in te.chunks(k).zip(ta.chunks(k)) {
            let kth = re[k - 1];
            hits += ra.iter().filter(|&&s| s >= kth - 1e-5).count();
            // Approximate similarities never beat the exact ones, rank by rank.
            for (a, e) in ra.iter().zip(re) {
                assert!(*a <= *e + 1e-5, "{a} > {e}");
            }
        }
        let recall = hits as f64 / te.len() as f64;
        eprintln!("k = {k}: recall@{k} = {recall:.4}");
        assert!(recall >= 0.95, "recall@{k} = {recall}");
        // Anomaly scores: 1 − mean top-k cosine, close to the exact ones on average.
        let (se, sa) = (
            exact.score_batch(emb(&q, D)).unwrap(),
            approx.score_batch(emb(&q, D)).unwrap(),
        );
        let mean_gap: f64 = se
            .iter()
            .zip(&sa)
            .map(|(e, a)| f64::from(a - e))
            .sum::<f64>()
            / se.len() as f64;
        assert!((0.0..2e-3).contains(&mean_gap), "mean score gap {mean_gap}");
    }
}

#[test]
fn bank_members_find_themselves() {
    let x = clustered(3, 3000, D, 30, 0.35);
    let knn = KnnParams::default()
        .backend(hnsw(HnswParams::default()))
        .fit(emb(&x, D))
        .unwrap();
    // Every 3rd bank member (1 000 queries): k = 1 anomaly 1 − cos(x, x) ≈ 0.
    let members: Vec<f32> = x
        .chunks(D)
        .step_by(3)
        .flat_map(|r| r.iter().copied())
        .collect();
    let s = knn.score_batch(emb(&members, D)).unwrap();
    let worst = s.iter().fold(0.0f32, |a, &v| a.max(v.abs()));
    assert!(worst < 1e-5, "worst bank-member anomaly {worst}");
    // Norm weighting: −‖f‖·s_cos1 = −‖f‖ for a member.
    let w = KnnParams::default()
        .norm_weighting(true)
        .backend(hnsw(HnswParams::default()))
        .fit(emb(&x, D))
        .unwrap();
    let r = &x[3 * D..4 * D];
    let norm = r.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
    assert!((f64::from(w.score(r).unwrap()) + norm).abs() < 1e-4 * norm);
}

#[test]
fn same_seed_same_graph_and_scores_whatever_the_thread_count() {
    let x = clustered(4, 2000, D, 20, 0.35);
    let q = clustered(5, 300, D, 20, 0.35);
    let params = |seed| {
        KnnParams::default().k(5).backend(hnsw(HnswParams {
            seed,
            ..HnswParams::default()
        }))
    };
    let run = |threads: usize, seed: u64| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let knn = params(seed).fit(emb(&x, D)).unwrap();
                let s = knn.score_batch(emb(&q, D)).unwrap();
                (knn, s)
            })
    };
    let (a1, s1) = run(1, 7);
    let (a2, s2) = run(2, 7);
    assert_eq!(a1, a2); // bank, parameters and graph (levels, entry point, every link)
    assert_eq!(
        s1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        s2.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    let (a3, s3) = run(2, 7);
    assert_eq!((a3, s3), (a1.clone(), s1.clone()));
    // Another seed draws other levels: another graph, similar scores.
    let (b, sb) = run(2, 8);
    let (ga, gb) = (a1.hnsw_index().unwrap(), b.hnsw_index().unwrap());
    assert_ne!(
        (0..ga.len()).map(|i| ga.level(i)).collect::<Vec<_>>(),
        (0..gb.len()).map(|i| gb.level(i)).collect::<Vec<_>>()
    );
    let gap = s1
        .iter()
        .zip(&sb)
        .map(|(a, b)| f64::from((a - b).abs()))
        .sum::<f64>()
        / s1.len() as f64;
    assert!(gap < 2e-3, "{gap}");
}

#[test]
fn fitted_scorer_and_config_round_trip_through_serde() {
    let x = clustered(6, 800, D, 10, 0.35);
    let q = clustered(7, 50, D, 10, 0.35);
    let p = HnswParams {
        m: 8,
        ef_construction: 50,
        ef_search: 20,
        ..HnswParams::default()
    };
    let config = ScorerConfig::Knn(KnnParams::default().k(3).backend(hnsw(p)));
    // A hand-written config fills in the defaults.
    let hand: ScorerConfig = serde_json::from_str(
        r#"{"scorer":"knn","k":3,"backend":{"hnsw":{"m":8,"ef_construction":50,"ef_search":20}}}"#,
    )
    .unwrap();
    assert_eq!(hand, config);
    let j = serde_json::to_string(&config).unwrap();
    assert_eq!(serde_json::from_str::<ScorerConfig>(&j).unwrap(), config);
    // The TOML form documented in `config`.
    let t: ScorerConfig =
        toml::from_str("scorer = \"knn\"\nk = 5\n[backend.hnsw]\nm = 16\nef_search = 128\n")
            .unwrap();
    assert_eq!(
        t,
        ScorerConfig::Knn(KnnParams::default().k(5).backend(hnsw(HnswParams {
            m: 16,
            ef_search: 128,
            ..HnswParams::default()
        })))
    );
    let exact: ScorerConfig = toml::from_str("scorer = \"knn\"\nbackend = \"exact\"\n").unwrap();
    assert_eq!(exact, ScorerConfig::Knn(KnnParams::default()));

    let fitted = config.fit(emb(&x, D)).unwrap();
    let s = fitted.score_batch(emb(&q, D)).unwrap();
    let json = serde_json::to_string(&fitted).unwrap();
    let back: FittedScorer = serde_json::from_str(&json).unwrap();
    assert_eq!(back, fitted);
    assert_eq!(back.score_batch(emb(&q, D)).unwrap(), s);

    // An exact scorer's file carries no index; one with the index removed is rejected when used.
    let exact = KnnParams::default().fit(emb(&x, D)).unwrap();
    assert!(
        !serde_json::to_string(&exact)
            .unwrap()
            .contains("\"hnsw\":{\"params\"")
    );
    let FittedScorer::Knn(knn) = &fitted else {
        panic!("knn expected")
    };
    let mut v: serde_json::Value = serde_json::to_value(knn).unwrap();
    v.as_object_mut().unwrap().remove("hnsw");
    let stripped: KnnScorer = serde_json::from_value(v).unwrap();
    assert!(matches!(
        stripped.score_batch(emb(&q, D)),
        Err(Error::CorruptModel { scorer: "knn", .. })
    ));
}

#[test]
fn bad_parameters_are_typed_errors() {
    let x = clustered(8, 50, 4, 3, 0.35);
    let fit = |p: HnswParams, k: usize| {
        KnnParams::default()
            .k(k)
            .backend(hnsw(p))
            .fit(emb(&x, 4))
            .unwrap_err()
    };
    let def = HnswParams::default();
    assert_eq!(fit(HnswParams { m: 1, ..def }, 1), Error::InvalidHnswM(1));
    assert_eq!(
        fit(HnswParams { m: 5000, ..def }, 1),
        Error::InvalidHnswM(5000)
    );
    assert!(matches!(
        fit(
            HnswParams {
                ef_search: 3,
                ..def
            },
            5
        ),
        Error::HnswEfTooSmall {
            name: "ef_search",
            value: 3,
            min: 5,
            ..
        }
    ));
    assert!(matches!(
        fit(
            HnswParams {
                m: 16,
                ef_construction: 8,
                ..def
            },
            1
        ),
        Error::HnswEfTooSmall {
            name: "ef_construction",
            value: 8,
            min: 16,
            ..
        }
    ));
    let msg = fit(
        HnswParams {
            ef_search: 3,
            ..def
        },
        5,
    )
    .to_string();
    assert!(msg.contains("ef_search ≥ 5"), "{msg}");
    // The usual kNN checks still apply.
    assert_eq!(fit(def, 0), Error::ZeroK);
    assert_eq!(fit(def, 51), Error::KExceedsBank { k: 51, bank: 50 });
    // ef_search can be changed after fitting, within the same bounds.
    let mut knn = KnnParams::default()
        .k(4)
        .backend(hnsw(def))
        .fit(emb(&x, 4))
        .unwrap();
    assert!(matches!(
        knn.set_ef_search(2),
        Err(Error::HnswEfTooSmall { min: 4, .. })
    ));
    knn.set_ef_search(50).unwrap();
    assert_eq!(
        knn.params().backend(),
        &hnsw(HnswParams {
            ef_search: 50,
            ..def
        })
    );
    // ef ≥ bank size: the search is exhaustive, scores equal the exact ones.
    let exact = KnnParams::default().k(4).fit(emb(&x, 4)).unwrap();
    let (a, e) = (
        knn.score_batch(emb(&x[..40], 4)).unwrap(),
        exact.score_batch(emb(&x[..40], 4)).unwrap(),
    );
    for (a, e) in a.iter().zip(&e) {
        assert!((a - e).abs() < 1e-5, "{a} vs {e}");
    }
    let mut ex = KnnParams::default().fit(emb(&x, 4)).unwrap();
    assert!(matches!(
        ex.set_ef_search(10),
        Err(Error::OptionNotApplicable { .. })
    ));
}
