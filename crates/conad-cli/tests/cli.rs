//! End-to-end tests of the `conad` binary: real process, real files, exit codes and stderr.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn conad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conad"))
        .args(args)
        .output()
        .expect("the conad binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Asserts a failed run: non-zero exit and exactly one line on stderr containing `needle`.
fn assert_one_line_error(o: &Output, needle: &str) {
    assert!(
        !o.status.success(),
        "expected failure, stdout: {}",
        stdout(o)
    );
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
}

#[test]
fn data_info_reports_embedded_counts() {
    let o = conad(&["data", "info", "embedded:fashion-mnist", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let text = v.to_string();
    // 300 train and 100 test images of each of the 10 classes.
    assert!(text.contains("3000"), "{text}");
    assert!(text.contains("1000"), "{text}");
    assert!(
        text.contains("T-shirt/top") && text.contains("Ankle boot"),
        "{text}"
    );

    let table = conad(&["data", "info", "embedded:fashion-mnist"]);
    assert!(table.status.success());
    let t = stdout(&table);
    assert!(t.contains("28") && t.contains("Trouser"), "{t}");
}

#[test]
fn data_info_reads_a_medmnist_fixture() {
    let spec = format!(
        "medmnist:{}",
        fixtures().join("medmnist/breastmnist.npz").display()
    );
    let o = conad(&["data", "info", &spec]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("val"), "{}", stdout(&o));
}

#[test]
fn data_info_rejects_bad_specs_with_one_line() {
    assert_one_line_error(&conad(&["data", "info", "imagenet:/x"]), "imagenet");
    assert_one_line_error(
        &conad(&["data", "info", "cifar10:/definitely/not/here"]),
        "/definitely/not/here",
    );
}

// Golden values from scikit-learn 1.2.1:
//   s = [0.1,0.4,0.35,0.8,0.4,0.4,0.1,0.9,0.35,0.2]; y = [0,0,1,1,1,0,0,1,0,1]
//   roc_auc_score(y, s) = 0.74; average_precision_score(y, s) = 0.7592857142857143
//   FPR at 95 % TPR: all 5 anomalies are found only at threshold 0.2, where 3 of 5 normals
//   (0.4, 0.4, 0.35) are also above it → 0.6.
const TIED_CSV: &str =
    "score,label\n0.1,0\n0.4,0\n0.35,1\n0.8,1\n0.4,1\n0.4,0\n0.1,0\n0.9,1\n0.35,0\n0.2,1\n";

#[test]
fn metrics_agree_with_sklearn_on_ties() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("scores.csv");
    std::fs::write(&csv, TIED_CSV).unwrap();
    let o = conad(&["metrics", "--scores", csv.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!((v["auroc"].as_f64().unwrap() - 0.74).abs() < 1e-9, "{v}");
    assert!((v["aupr"].as_f64().unwrap() - 0.759_285_714_285_714_3).abs() < 1e-9);
    assert!((v["fpr_at_95_tpr"].as_f64().unwrap() - 0.6).abs() < 1e-9);
}

/// A spreadsheet's UTF-8 byte-order mark before the header is accepted.
#[test]
fn metrics_accept_a_byte_order_mark() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bom.csv");
    std::fs::write(&csv, "\u{feff}score,label\n0.9,1\n0.1,0\n0.5,0\n").unwrap();
    let o = conad(&["metrics", "--json", "--scores", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_of(&o)["auroc"].as_f64().unwrap(), 1.0);
}

#[test]
fn metrics_malformed_rows_fail_naming_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "score,label\n0.5,1\n0.2,maybe\n").unwrap();
    assert_one_line_error(
        &conad(&["metrics", "--scores", csv.to_str().unwrap()]),
        "line 3",
    );
    std::fs::write(&csv, "score,label\n0.5,1\n0.2,1\n").unwrap();
    // One class only: AUROC is undefined.
    let o = conad(&["metrics", "--scores", csv.to_str().unwrap()]);
    assert!(!o.status.success());
}

fn write_npy(path: &Path, data: &[f32], rows: usize, cols: usize) {
    conad_data::npy::write_f32_matrix(path, data, rows, cols).unwrap();
}

#[test]
fn score_embeddings_knn_scores_bank_members_zero_and_reports_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.npy");
    let test = dir.path().join("test.npy");
    let out = dir.path().join("scores.csv");
    let labels = dir.path().join("labels.npy");
    // Normal embeddings point along +x/+y; the anomaly points along −x.
    write_npy(&train, &[1.0, 0.0, 0.0, 1.0, 0.7, 0.7], 3, 2);
    write_npy(&test, &[2.0, 0.0, -1.0, 0.0, 0.0, 3.0], 3, 2);
    // labels as uint8 .npy written by hand: header + 3 bytes.
    let mut bytes = conad_data::npy::encode_header(conad_data::npy::DType::U8, &[3]);
    bytes.extend_from_slice(&[0, 1, 0]);
    std::fs::write(&labels, bytes).unwrap();
    let o = conad(&[
        "score-embeddings",
        "--train",
        train.to_str().unwrap(),
        "--test",
        test.to_str().unwrap(),
        "--scorer",
        "knn",
        "--k",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<(usize, f64)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let (i, s) = l.split_once(',').unwrap();
            (i.parse().unwrap(), s.parse().unwrap())
        })
        .collect();
    assert_eq!(csv.lines().next(), Some("index,score"));
    assert_eq!(rows.len(), 3);
    assert!(rows[0].1.abs() < 1e-6 && rows[2].1.abs() < 1e-6, "{csv}");
    // Nearest normal to (−1, 0) has cosine 0 (the +y member): anomaly score 1.
    assert!((rows[1].1 - 1.0).abs() < 1e-6, "{csv}");
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["auroc"].as_f64(), Some(1.0));
}

#[test]
fn score_embeddings_rejects_mismatched_dimensions_and_bad_options() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.npy");
    let test = dir.path().join("test.npy");
    write_npy(&train, &[1.0, 0.0, 0.0, 1.0], 2, 2);
    write_npy(&test, &[1.0, 0.0, 0.0], 1, 3);
    let out = dir.path().join("o.csv");
    let base = |extra: &[&str]| {
        let mut a = vec![
            "score-embeddings",
            "--train",
            train.to_str().unwrap(),
            "--test",
            test.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        conad(&a)
    };
    assert_one_line_error(&base(&[]), "dimension mismatch");
    write_npy(&test, &[1.0, 0.0], 1, 2);
    assert_one_line_error(&base(&["--scorer", "knn", "--k", "0"]), "k");
    assert_one_line_error(&base(&["--scorer", "knn", "--nu", "0.5"]), "--nu");
    std::fs::write(&test, b"not an npy file").unwrap();
    assert_one_line_error(&base(&[]), "test.npy");
}

// ------------------------------------------------------------------------------------------------
// train → embed → eval

fn read_npy_f32(path: &Path) -> (Vec<f32>, usize, usize) {
    conad_data::npy::read_f32_matrix(path).unwrap()
}

fn json_of(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "stderr: {}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// SimCLR on the 6×6 BreastMNIST fixture (normal = label 1 by the MedMNIST convention), two
/// epochs at width 1/8: every file of the run layout is written, embeddings have the encoder's
/// width, evaluation reports a valid AUROC, and a second run with the same seed embeds
/// bit-identically.
#[test]
fn train_embed_eval_pipeline_is_complete_and_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!(
        "medmnist:{}",
        fixtures().join("medmnist/breastmnist.npz").display()
    );
    let train = |out: &Path| {
        conad(&[
            "train",
            "--method",
            "simclr",
            "--data",
            &spec,
            "--epochs",
            "2",
            "--width",
            "0.125",
            "--batch-size",
            "2",
            "--seed",
            "7",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let run_a = dir.path().join("a");
    let report = json_of(&train(&run_a));
    assert_eq!(report["method"], "simclr");
    assert_eq!(report["epochs_completed"], 2);
    assert_eq!(report["completed"], true);
    for f in [
        "config.toml",
        "task.toml",
        "model.safetensors",
        "history.json",
        "learning_curve.json",
        "report.json",
    ] {
        assert!(run_a.join(f).is_file(), "missing {f}");
    }
    let task = std::fs::read_to_string(run_a.join("task.toml")).unwrap();
    assert!(
        task.contains("breastmnist.npz") && task.contains("seed = 7"),
        "{task}"
    );

    let emb_a = dir.path().join("a.npy");
    let o = conad(&[
        "embed",
        "--run",
        run_a.to_str().unwrap(),
        "--split",
        "test",
        "--out",
        emb_a.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (values, rows, cols) = read_npy_f32(&emb_a);
    // 3 test images; 512 · 1/8 = 64 features.
    assert_eq!((rows, cols), (3, 64));
    assert!(values.iter().all(|v| v.is_finite()));
    let labels = conad_data::npy::read_array(dir.path().join("a.labels.npy"))
        .unwrap()
        .into_i64("labels")
        .unwrap();
    assert_eq!(labels.len(), 3);
    assert!(labels.iter().all(|&l| l == 0 || l == 1), "{labels:?}");

    let eval = json_of(&conad(&[
        "eval",
        "--json",
        "--run",
        run_a.to_str().unwrap(),
    ]));
    let auroc = eval["auroc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auroc), "{eval}");
    // SimCLR's paper score is kNN on the encoder features; the preset is the budget profile.
    assert_eq!(eval["score"], "knn");
    assert_eq!(eval["profile"], "budget");
    assert!(eval["training_seconds"].as_f64().unwrap() > 0.0, "{eval}");
    assert_eq!(eval["embedding_dim"], 64);
    assert_eq!(eval["n_test"], 3);
    for f in ["metrics.json", "metrics.md", "roc.png", "scores.csv"] {
        assert!(run_a.join("eval").join(f).is_file(), "missing eval/{f}");
    }
    let md = std::fs::read_to_string(run_a.join("eval/metrics.md")).unwrap();
    assert!(md.contains(&format!("{auroc:.4}")), "{md}");
    let scores = std::fs::read_to_string(run_a.join("eval/scores.csv")).unwrap();
    assert_eq!(scores.lines().count(), 4, "{scores}");
    // `conad metrics` reads eval's own scores.csv and agrees with metrics.json.
    let o = conad(&[
        "metrics",
        "--json",
        "--scores",
        run_a.join("eval/scores.csv").to_str().unwrap(),
    ]);
    assert_eq!(json_of(&o)["auroc"].as_f64().unwrap(), auroc, "{scores}");

    // Same seed, fresh directory: the same embeddings, bit for bit.
    let run_b = dir.path().join("b");
    json_of(&train(&run_b));
    let emb_b = dir.path().join("b.npy");
    let o = conad(&[
        "embed",
        "--run",
        run_b.to_str().unwrap(),
        "--out",
        emb_b.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&emb_a).unwrap(),
        std::fs::read(&emb_b).unwrap()
    );
}

/// The raw-pixel floor through the CLI: `conad eval` (kNN via conad-scorers) agrees with the
/// online evaluation of `conad train` (kNN via conad-train) on the embedded Fashion-MNIST subset,
/// and the raw embeddings are the 784 pixels.
#[test]
fn raw_method_eval_matches_the_training_report() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("raw");
    let report = json_of(&conad(&[
        "train",
        "--method",
        "raw",
        "--data",
        "embedded:fashion-mnist",
        "--normal-class",
        "0",
        "--json",
        "--out",
        run.to_str().unwrap(),
    ]));
    assert_eq!(report["method"], "raw_pixels");
    let online = report["final_auroc"].as_f64().unwrap();
    let eval = json_of(&conad(&["eval", "--json", "--run", run.to_str().unwrap()]));
    let offline = eval["auroc"].as_f64().unwrap();
    assert!((online - offline).abs() < 1e-12, "{online} vs {offline}");
    assert!(offline > 0.5 && offline < 1.0, "{offline}");
    assert_eq!(eval["n_train"], 300);
    assert_eq!(eval["n_test"], 1000);
    assert_eq!(eval["n_test_anomalies"], 900);
    assert_eq!(eval["embedding_dim"], 784);

    // Rotating train and test images alike only permutes the pixels, so for raw pixels FIRM's
    // rotation ensemble equals the plain score (up to float summation order).
    let out = dir.path().join("rot");
    let rot = json_of(&conad(&[
        "eval",
        "--json",
        "--score",
        "rot_knn",
        "--run",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(rot["score"], "rot_knn");
    let ensemble = rot["auroc"].as_f64().unwrap();
    assert!((ensemble - offline).abs() < 1e-3, "{ensemble} vs {offline}");
    assert!(out.join("metrics.json").is_file());
    // A score the method does not offer: one line listing its scores.
    assert_one_line_error(
        &conad(&["eval", "--run", run.to_str().unwrap(), "--score", "nope"]),
        "rot_knn",
    );
}

/// `conad methods --scores` lists every registered method with its paper score first.
#[test]
fn methods_list_their_scores() {
    let o = conad(&["methods", "--scores"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for (method, paper) in [
        ("simclr", "knn"),
        ("csi", "csi"),
        ("con2", "nnd"),
        ("firm", "knn5"),
        ("rotnet", "rotnet"),
        ("msc", "knn2"),
    ] {
        let block: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with(&format!("{method} ")))
            .collect();
        let first = block
            .get(1)
            .unwrap_or_else(|| panic!("{method} missing:\n{text}"));
        assert!(
            first.split_whitespace().take(2).eq([paper, "paper"]),
            "{method}: {first}"
        );
    }
}

#[test]
fn train_and_eval_reject_bad_input_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let out = out.to_str().unwrap();
    let base = ["train", "--data", "embedded:fashion-mnist", "--out", out];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        conad(&a)
    };
    // Unknown method: the error lists the registry.
    assert_one_line_error(
        &with(&["--method", "simclrr"]),
        "raw_pixels, simclr, supcon",
    );
    // No method at all.
    assert_one_line_error(&with(&[]), "--method");
    // A class the data set does not have.
    assert_one_line_error(&with(&["--method", "raw", "--normal-class", "12"]), "12");
    // Invalid hyper-parameters are named.
    assert_one_line_error(
        &with(&["--method", "simclr", "--normal-class", "0", "--epochs", "0"]),
        "epochs",
    );
    // An unknown profile names the profiles.
    assert_one_line_error(
        &with(&[
            "--method",
            "csi",
            "--profile",
            "fast",
            "--normal-class",
            "0",
        ]),
        "budget, paper",
    );
    // A directory that is not a run.
    assert_one_line_error(
        &conad(&["eval", "--run", dir.path().to_str().unwrap()]),
        "config.toml",
    );
    assert_one_line_error(
        &conad(&[
            "embed",
            "--run",
            dir.path().to_str().unwrap(),
            "--out",
            "x.npy",
        ]),
        "config.toml",
    );
}

fn read_score_column(path: &Path) -> Vec<f64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}

/// `--normalize off` reproduces scikit-learn's `OneClassSVM` on the raw features; the RBF
/// default (on) does not; cosine scorers refuse `off`.
///
/// ```python
/// import numpy as np; from sklearn.svm import OneClassSVM
/// X = np.array([[((i*7+j*3) % 11)/4.0 - 1.0 for j in range(3)] for i in range(12)])
/// T = np.array([[0.1,0.2,0.0],[2.0,-1.0,0.5],[-1.0,1.5,0.25],[3.0,3.0,3.0]])
/// m = OneClassSVM(kernel='rbf', gamma=0.5, nu=0.5, tol=1e-6).fit(X)
/// print(-m.decision_function(T))   # scikit-learn 1.2.1
/// ```
#[test]
fn score_embeddings_normalisation_is_an_explicit_switch() {
    let dir = tempfile::tempdir().unwrap();
    let train: Vec<f32> = (0..12)
        .flat_map(|i| (0..3).map(move |j| ((i * 7 + j * 3) % 11) as f32 / 4.0 - 1.0))
        .collect();
    let test = [
        0.1f32, 0.2, 0.0, 2.0, -1.0, 0.5, -1.0, 1.5, 0.25, 3.0, 3.0, 3.0,
    ];
    let (tr, te) = (dir.path().join("train.npy"), dir.path().join("test.npy"));
    write_npy(&tr, &train, 12, 3);
    write_npy(&te, &test, 4, 3);
    let out = dir.path().join("s.csv");
    let run = |extra: &[&str]| {
        let mut a = vec![
            "score-embeddings",
            "--train",
            tr.to_str().unwrap(),
            "--test",
            te.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        conad(&a)
    };
    let sklearn = [
        -0.3113748322032277,
        0.6374804318953955,
        0.9470788053457317,
        1.7728627156622871,
    ];
    let svm = ["--scorer", "ocsvm", "--gamma", "0.5", "--nu", "0.5"];
    let o = run(&[&svm[..], &["--normalize", "off"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("L2-normalised: off"), "{}", stderr(&o));
    for (got, want) in read_score_column(&out).iter().zip(sklearn) {
        assert!((got - want).abs() < 2e-3, "{got} vs scikit-learn {want}");
    }
    let o = run(&svm);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("L2-normalised: on"), "{}", stderr(&o));
    let normalised = read_score_column(&out);
    assert!(
        normalised
            .iter()
            .zip(sklearn)
            .any(|(g, w)| (g - w).abs() > 0.05),
        "{normalised:?}"
    );
    assert_one_line_error(&run(&["--normalize", "off"]), "always L2-normalise");
}
