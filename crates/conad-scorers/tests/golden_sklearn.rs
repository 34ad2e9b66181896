//! Golden tests against scikit-learn 1.2.1 / numpy 1.24 / scipy 1.10.
//!
//! The fixtures under `fixtures/scorers/` are written by `fixtures/scorers/generate.py`
//! (`/usr/bin/python3 fixtures/scorers/generate.py`); the snippet that produced each reference is
//! quoted next to each test. Inputs are float32; references are computed in float64 on the same
//! float32 values.

use conad_scorers::{
    AnomalyScorer, Embeddings, Fit, Gamma, GaussianParams, KdeParams, KnnParams, MahalanobisParams,
    OcSvmKernel, OcSvmParams, SsdCovariance, WassersteinMethod, wasserstein1,
};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../fixtures/scorers/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (run fixtures/scorers/generate.py)"));
    serde_json::from_str(&text).unwrap()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn emb(data: &[f32], d: usize) -> Embeddings<'_> {
    Embeddings::new(data, data.len() / d, d).unwrap()
}

/// max_i |got_i − want_i| / scale.
fn max_rel(got: &[f64], want: &[f64], scale: f64) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / scale)
        .fold(0.0, f64::max)
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

#[test]
fn knn_matches_sklearn_nearest_neighbors_cosine() {
    // nn = NearestNeighbors(n_neighbors=k, metric="cosine").fit(B)
    // dist, _ = nn.kneighbors(Q); mean_cos = 1 - dist.mean(axis=1)
    // anomaly_k{k} = 1 - mean_cos;  anomaly_k{k}_norm = -‖Q‖·mean_cos
    let f = fixture("knn.json");
    let d = f["d"].as_u64().unwrap() as usize;
    let (bank, q) = (f32s(&f["bank"]), f32s(&f["queries"]));
    for k in [1usize, 5] {
        for norm in [false, true] {
            let s = KnnParams::default()
                .k(k)
                .norm_weighting(norm)
                .fit(emb(&bank, d))
                .unwrap();
            let got = to64(&s.score_batch(emb(&q, d)).unwrap());
            let key = if norm {
                format!("anomaly_k{k}_norm")
            } else {
                format!("anomaly_k{k}")
            };
            let want = f64s(&f[key.as_str()]);
            // f32 GEMM on unit vectors: absolute error ~1e-6 (×‖q‖ ≈ 4 with norm weighting).
            let tol = if norm { 2e-5 } else { 5e-6 };
            let err = max_rel(&got, &want, 1.0);
            eprintln!("knn k={k} norm={norm}: max abs error {err:.2e}");
            assert!(err < tol, "k={k} norm={norm}: max abs error {err}");
        }
    }
}

#[test]
fn gaussian_matches_sklearn_ledoit_wolf_and_scipy_logpdf() {
    // xn, qn = l2n(x), l2n(q)                      (float64 copies of the float32 inputs)
    // lw = LedoitWolf().fit(xn)
    // anomaly = -multivariate_normal(mean=lw.location_, cov=lw.covariance_).logpdf(qn)
    let f = fixture("gaussian.json");
    for case in ["n_gt_d", "n_lt_d"] {
        let c = &f[case];
        let d = c["d"].as_u64().unwrap() as usize;
        let (x, q) = (f32s(&c["train"]), f32s(&c["queries"]));
        let g = GaussianParams::default().fit(emb(&x, d)).unwrap();
        let sh = c["shrinkage"].as_f64().unwrap();
        assert!(
            (g.shrinkage() - sh).abs() < 1e-9 * sh.max(1.0),
            "{case}: shrinkage {} vs {sh}",
            g.shrinkage()
        );
        // f64 reference vs our f64 pipeline on the same f32 inputs.
        let got: Vec<f64> = g
            .log_density(emb(&q, d))
            .unwrap()
            .iter()
            .map(|l| -l)
            .collect();
        let want = f64s(&c["anomaly"]);
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = max_rel(&got, &want, scale);
        eprintln!("gaussian {case}: max relative error {err:.2e}");
        assert!(err < 1e-9, "{case}: relative error {err}");
        // The f32 trait path agrees to f32 precision.
        let got32 = to64(&g.score_batch(emb(&q, d)).unwrap());
        assert!(max_rel(&got32, &want, scale) < 1e-6);
    }
}

#[test]
fn kde_matches_sklearn_kernel_density() {
    // gamma = 10 / (xn.var() * d); h = 1/sqrt(2 gamma)
    // ss = KernelDensity(kernel="gaussian", bandwidth=h).fit(xn).score_samples(qn)
    // anomaly = -(ss + log n + d/2 log(2 pi h^2)) / gamma         (= -f_kde)
    let f = fixture("kde.json");
    let d = f["d"].as_u64().unwrap() as usize;
    let (x, q) = (f32s(&f["train"]), f32s(&f["queries"]));
    let kde = KdeParams::default().fit(emb(&x, d)).unwrap();
    let g_want = f["gamma_droc"].as_f64().unwrap();
    assert!((f64::from(kde.gamma()) - g_want).abs() < 1e-5 * g_want);
    let got = to64(&kde.score_batch(emb(&q, d)).unwrap());
    let want = f64s(&f["anomaly"]);
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = max_rel(&got, &want, scale);
    eprintln!("kde: max relative error {err:.2e}");
    assert!(err < 1e-5, "relative error {err}");
    // Same with the fixed γ passed explicitly (the `--gamma` path).
    let fixed = KdeParams::default()
        .gamma(Gamma::Value {
            value: g_want as f32,
        })
        .fit(emb(&x, d))
        .unwrap();
    let got2 = to64(&fixed.score_batch(emb(&q, d)).unwrap());
    assert!(max_rel(&got2, &want, scale) < 1e-4);
}

#[test]
fn ocsvm_matches_sklearn_decision_function() {
    // linear: OneClassSVM(kernel="linear", nu=nu, tol=1e-3).fit(X).decision_function(Q)  (raw)
    // rbf:    g = c / (Xn.var() * d), c = 10 (DROC) or 1 ("scale")
    //         OneClassSVM(kernel="rbf", nu=nu, gamma=g, tol=1e-3).fit(Xn).decision_function(Qn)
    // sigmoid: OneClassSVM(kernel="sigmoid", nu=nu, gamma="scale", coef0=0.0, tol=1e-3)
    //         .fit(Xn).decision_function(Qn)   (KE's scorer)
    let f = fixture("ocsvm.json");
    let d = f["d"].as_u64().unwrap() as usize;
    let (x, q) = (f32s(&f["train"]), f32s(&f["queries"]));
    for c in f["cases"].as_array().unwrap() {
        let nu = c["nu"].as_f64().unwrap();
        let kernel = match (c["kernel"].as_str().unwrap(), c["gamma_rule"].as_str()) {
            ("linear", _) => OcSvmKernel::Linear,
            ("rbf", Some("droc")) => OcSvmKernel::Rbf { gamma: Gamma::Droc },
            ("rbf", Some("scale")) => OcSvmKernel::Rbf {
                gamma: Gamma::Scale,
            },
            ("sigmoid", Some("scale")) => OcSvmKernel::Sigmoid {
                gamma: Gamma::Scale,
                coef0: 0.0,
            },
            other => panic!("{other:?}"),
        };
        let svm = OcSvmParams::default()
            .kernel(kernel)
            .nu(nu)
            .tol(c["tol"].as_f64().unwrap())
            .fit(emb(&x, d))
            .unwrap();
        let want = f64s(&c["decision"]);
        let got = svm.decision_function(emb(&q, d)).unwrap();
        let range = want.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v))
            - want.iter().fold(f64::INFINITY, |m, &v| m.min(v));
        let err = max_rel(&got, &want, range);
        eprintln!(
            "ocsvm {} nu={}: max error {err:.2e} of the decision range",
            c["kernel"], c["nu"]
        );
        assert!(err < 1e-3, "{c}: error {err} of the decision range");
        // Anomaly = −decision.
        let anom = svm.score_batch(emb(&q, d)).unwrap();
        assert!((f64::from(anom[0]) + got[0]).abs() < 1e-5 * got[0].abs().max(1.0));
        let sum: f64 = svm.dual_coef().iter().sum();
        assert!(
            (sum - c["dual_coef_sum"].as_f64().unwrap()).abs() < 1e-6,
            "Σα = {sum}"
        );
        let rho = c["rho"].as_f64().unwrap();
        assert!(
            (svm.rho() - rho).abs() < 1e-3 * range,
            "rho {} vs {rho}",
            svm.rho()
        );
        let ns = c["n_support"].as_u64().unwrap() as i64;
        assert!(
            (svm.n_support() as i64 - ns).abs() <= 2,
            "n_support {} vs {ns}",
            svm.n_support()
        );
    }
}

#[test]
fn mahalanobis_matches_ssd_numpy_formula() {
    // ftrain /= norm + 1e-10; m, s = mean, std (train); x = (x - m)/(s + 1e-10)
    // prec = np.linalg.pinv(np.cov(ftrain.T, bias=True), rcond=1e-10)
    // score = sum((ftest - mu) * (prec @ (ftest - mu).T).T, axis=-1)
    let f = fixture("mahalanobis.json");
    for case in ["n_gt_d", "n_lt_d"] {
        let c = &f[case];
        let d = c["d"].as_u64().unwrap() as usize;
        let (x, q) = (f32s(&c["train"]), f32s(&c["queries"]));
        let ssd = MahalanobisParams::default()
            .covariance(SsdCovariance::PseudoInverse { rcond: 1e-10 })
            .fit(emb(&x, d))
            .unwrap();
        let got = to64(&ssd.score_batch(emb(&q, d)).unwrap());
        let want = f64s(&c["anomaly"]);
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = max_rel(&got, &want, scale);
        eprintln!("mahalanobis {case}: max relative error {err:.2e}");
        assert!(err < 1e-6, "{case}: relative error {err}");
    }
}

#[test]
fn wasserstein_matches_scipy_assignment_and_a_numpy_sinkhorn() {
    // exact:    M = ‖a_i − b_j‖; r, c = scipy.optimize.linear_sum_assignment(M); M[r, c].mean()
    // sinkhorn: log-domain, uniform marginals, ε = 0.05, to a 1e-13 marginal error; Σ P·M
    //           (fixtures/scorers/generate.py)
    let f = fixture("wasserstein.json");
    let d = f["d"].as_u64().unwrap() as usize;
    let (a, b, c) = (f32s(&f["a"]), f32s(&f["b"]), f32s(&f["c"]));
    let exact = wasserstein1(emb(&a, d), emb(&b, d), WassersteinMethod::Exact).unwrap();
    let want = f["exact_ab"].as_f64().unwrap();
    assert!(
        (exact.distance - want).abs() < 1e-9,
        "{} vs {want}",
        exact.distance
    );
    let sinkhorn = WassersteinMethod::Sinkhorn {
        epsilon: 0.05,
        max_iterations: 100_000,
        tolerance: 1e-12,
    };
    for (other, key) in [(&b, "sinkhorn_ab"), (&c, "sinkhorn_ac")] {
        let got = wasserstein1(emb(&a, d), emb(other, d), sinkhorn).unwrap();
        let want = f[key].as_f64().unwrap();
        assert!(
            (got.distance - want).abs() < 1e-7,
            "{key}: {} vs {want}",
            got.distance
        );
    }
}
