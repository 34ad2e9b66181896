//! `conad data export` → `conad fit` → `conad score --report` end to end on the embedded
//! Fashion-MNIST subset written as an image folder, and the report rendered by headless
//! Chromium (skipped, with the reason printed, where Chromium is not installed).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn conad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conad"))
        .args(args)
        .output()
        .expect("the conad binary runs")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `conad fit` of a tiny SimCLR (width 1/8, batch 32, no online evaluation) on `folder:DATA`,
/// followed by `extra` flags.
fn fit_args(data: &Path, epochs: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "fit",
        "--data",
        &format!("folder:{}", data.display()),
        "--method",
        "simclr",
        "--epochs",
        epochs,
        "--width",
        "0.125",
        "--batch-size",
        "32",
        "--eval-every",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn conad_owned(args: &[String]) -> Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    conad(&refs)
}

fn work() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("conad-detector-cli")
}

/// The folder, the detector and a scored report, built once for every test of this file.
struct Fixture {
    folder: PathBuf,
    detector: PathBuf,
    csv: PathBuf,
    report: PathBuf,
    score_stderr: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = work();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        let folder = dir.join("trouser");
        let s = |p: &Path| p.display().to_string();
        let out = ok(&conad(&[
            "data",
            "export",
            "embedded:fashion-mnist",
            "--normal-class",
            "1",
            "--out",
            &s(&folder),
        ]));
        assert!(out.contains("1300 PNG files"), "{out}");
        let detector = dir.join("trouser.conad");
        let out = ok(&conad_owned(&fit_args(
            &folder,
            "1",
            &["--fpr", "0.05", "--out", &s(&detector)],
        )));
        assert!(out.contains("conformal"), "{out}");
        // A corrupt image and a text file beside real images: skipped / ignored.
        let extra = dir.join("extra");
        std::fs::create_dir_all(&extra).unwrap();
        std::fs::write(extra.join("broken.png"), b"\x89PNG\r\n\x1a\n not really").unwrap();
        std::fs::write(extra.join("notes.txt"), "not an image").unwrap();
        std::fs::copy(
            folder.join("test/good/test_000002.png"),
            extra.join("copy of a normal, image.png"),
        )
        .unwrap();
        let csv = dir.join("scores.csv");
        let report = dir.join("report.html");
        let o = conad(&[
            "score",
            "--detector",
            &s(&detector),
            &s(&folder),
            &s(&extra),
            "--out",
            &s(&csv),
            "--report",
            &s(&report),
        ]);
        ok(&o);
        Fixture {
            folder,
            detector,
            csv,
            report,
            score_stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    })
}

#[test]
fn csv_has_one_row_per_readable_image_and_the_corrupt_one_is_counted() {
    let f = fixture();
    let text = std::fs::read_to_string(&f.csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("path,score,p_value,is_anomaly,nearest_normal,similarity")
    );
    let rows: Vec<&str> = lines.collect();
    // 1000 test images of the folder + the copied one; the broken PNG is skipped.
    assert_eq!(rows.len(), 1001);
    assert!(
        f.score_stderr.contains("1001 images scored"),
        "{}",
        f.score_stderr
    );
    assert!(f.score_stderr.contains("1 skipped"), "{}", f.score_stderr);
    assert!(f.score_stderr.contains("broken.png"), "{}", f.score_stderr);
    // The path with a comma is quoted; nearest-normal names are training files.
    let quoted = rows
        .iter()
        .find(|r| r.contains("copy of a normal"))
        .unwrap();
    assert!(quoted.starts_with('"'), "{quoted}");
    assert!(quoted.contains("train/good/train_"), "{quoted}");
    // Every p-value lies in (0, 1]; the decision agrees with p < 0.05.
    for r in rows.iter().filter(|r| !r.starts_with('"')) {
        let f: Vec<&str> = r.split(',').collect();
        let p: f64 = f[2].parse().unwrap();
        assert!(p > 0.0 && p <= 1.0, "{r}");
        assert_eq!(f[3] == "1", p < 0.05, "{r}");
    }
    // Scoring again gives the same bytes (deterministic).
    let again = work().join("again.csv");
    ok(&conad(&[
        "score",
        "--detector",
        &f.detector.display().to_string(),
        &f.folder.display().to_string(),
        "--out",
        &again.display().to_string(),
        "--batch-size",
        "7",
    ]));
    let a = std::fs::read_to_string(&again).unwrap();
    let folder_rows: Vec<&str> = text.lines().take(1001).collect();
    assert_eq!(a.lines().collect::<Vec<_>>(), folder_rows);
}

#[test]
fn report_holds_every_part() {
    let f = fixture();
    let html = std::fs::read_to_string(&f.report).unwrap();
    for part in [
        "id=\"detector\"",
        "id=\"calibration\"",
        "id=\"scores\"",
        "id=\"top\"",
        "id=\"quality\"",
        "id=\"skipped\"",
        "ROC (AUROC",
        "Precision–recall",
        "measured false-positive rate",
        "nearest normal training image",
    ] {
        assert!(html.contains(part), "the report lacks {part}");
    }
    // Self-contained: no external resources.
    assert!(!html.contains("src=\"http") && !html.contains("<script"));
    assert_eq!(html.matches("data:image/png;base64,").count(), 24); // 12 rows × 2 images
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let f = fixture();
    let d = f.detector.display().to_string();
    let o = conad(&["score", "--detector", &d, "/definitely/not/here.png"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/definitely/not/here.png"));
    // A run's checkpoint is not a detector.
    let model = work().join("trouser.conad.run/model.safetensors");
    let o = conad(&["score", "--detector", &model.display().to_string(), "x.png"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success() && err.contains("not a conad detector"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    // α below what 60 calibration images reach.
    let o = conad(&[
        "fit",
        "--run",
        &work().join("trouser.conad.run").display().to_string(),
        "--fpr",
        "0.01",
        "--out",
        &work().join("strict.conad").display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success() && err.contains("at least 100"), "{err}");
    assert!(!work().join("strict.conad").exists());
}

#[test]
fn reusing_the_finished_run_gives_the_same_detector() {
    let f = fixture();
    let again = work().join("reused.conad");
    ok(&conad(&[
        "fit",
        "--run",
        &work().join("trouser.conad.run").display().to_string(),
        "--fpr",
        "0.05",
        "--out",
        &again.display().to_string(),
    ]));
    // Same tensors (content hash) and metadata; the header's key order may differ (the
    // safetensors crate keeps metadata in a HashMap).
    let header = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        let h: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
        let meta = &h["__metadata__"];
        let conad: serde_json::Value =
            serde_json::from_str(meta["conad"].as_str().unwrap()).unwrap();
        (
            meta["content_hash"].as_str().unwrap().to_string(),
            conad,
            b.len(),
        )
    };
    let (hash_a, meta_a, len_a) = header(&again);
    let (hash_b, meta_b, len_b) = header(&f.detector);
    assert_eq!(hash_a, hash_b);
    assert!(meta_a == meta_b, "the detector records differ");
    assert_eq!(len_a, len_b);
}

/// Headless Chromium renders the report; the screenshot must show the histogram's two colours,
/// the thumbnails (grey pixels) and the curves.
#[test]
fn chromium_renders_the_report() {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        println!("skipped: no chromium on this machine (apt-get install -y chromium)");
        return;
    };
    let f = fixture();
    let shot = work().join("report.png");
    let _ = std::fs::remove_file(&shot);
    let o = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,3000",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", f.report.display()),
        ])
        .output()
        .unwrap();
    assert!(
        shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let img = image::open(&shot).unwrap().to_rgb8();
    let count = |target: [u8; 3], tol: i32| {
        img.pixels()
            .filter(|p| (0..3).all(|k| (i32::from(p[k]) - i32::from(target[k])).abs() <= tol))
            .count()
    };
    // Histogram bars at 80 % opacity over white: normal #3b7dd8, anomalous #d8543b.
    let blend = |c: [u8; 3]| c.map(|v| (f64::from(v) * 0.8 + 255.0 * 0.2).round() as u8);
    let normal = count(blend([0x3b, 0x7d, 0xd8]), 6);
    let anomalous = count(blend([0xd8, 0x54, 0x3b]), 6);
    // The ROC / PR polylines (opaque normal colour).
    let curves = count([0x3b, 0x7d, 0xd8], 6);
    // Thumbnail pixels: grey, neither white nor the page's near-white backgrounds.
    let grey = img
        .pixels()
        .filter(|p| p[0] == p[1] && p[1] == p[2] && p[0] > 20 && p[0] < 200)
        .count();
    println!(
        "screenshot {}: normal {normal}, anomalous {anomalous}, curves {curves}, grey {grey}",
        shot.display()
    );
    assert!(
        normal > 300,
        "histogram's normal bars missing ({normal} px)"
    );
    assert!(
        anomalous > 300,
        "histogram's anomalous bars missing ({anomalous} px)"
    );
    assert!(curves > 300, "ROC/PR curves missing ({curves} px)");
    assert!(grey > 5000, "thumbnails missing ({grey} px)");
}

/// `conad fit` killed before any of its file-system mutations (config, task, checkpoints,
/// history, model, report, the detector) leaves either no detector or a complete one, and the
/// same command run again resumes and writes the detector an uninterrupted fit writes.
#[test]
fn an_interrupted_fit_resumes_to_the_same_detector() {
    let f = fixture();
    let dir = work().join("interrupted");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let s = |p: &Path| p.display().to_string();
    let fit = |run: &Path, out: &Path, abort_at: Option<u64>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_conad"));
        c.args(fit_args(
            &f.folder,
            "2",
            &["--fpr", "0.05", "--run", &s(run), "--out", &s(out)],
        ));
        if let Some(n) = abort_at {
            c.env("CONAD_TEST_ABORT_AT_FS_OP", n.to_string());
        }
        c.output().unwrap()
    };
    let content = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        let h: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
        let meta = &h["__metadata__"];
        (
            meta["content_hash"].as_str().unwrap().to_string(),
            serde_json::from_str::<serde_json::Value>(meta["conad"].as_str().unwrap()).unwrap(),
        )
    };
    let reference = dir.join("reference.conad");
    ok(&fit(&dir.join("reference.run"), &reference, None));
    let expected = content(&reference);
    let mut aborted = 0;
    for n in 1..=40u64 {
        let run = dir.join(format!("run-{n}"));
        let out = dir.join(format!("det-{n}.conad"));
        let o = fit(&run, &out, Some(n));
        if o.status.success() {
            break;
        }
        aborted += 1;
        // Killed: no detector yet, or (killed after publishing it) a complete one.
        if out.exists() {
            assert_eq!(content(&out), expected, "abort at {n}: a partial detector");
        }
        ok(&fit(&run, &out, None));
        assert_eq!(content(&out), expected, "abort at {n}: resumed fit differs");
    }
    assert!(
        aborted >= 5,
        "only {aborted} file-system mutations were interrupted"
    );
}

/// The headline use: a folder holding only normal images (`DIR/train/good/`, no `test/`) is
/// enough to fit a detector, which then scores new files.
#[test]
fn a_folder_of_normal_images_only_is_enough_to_fit() {
    let f = fixture();
    let dir = work().join("normal-only");
    let _ = std::fs::remove_dir_all(&dir);
    let good = dir.join("data/train/good");
    std::fs::create_dir_all(&good).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(f.folder.join("train/good"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    for p in names.iter().take(120) {
        std::fs::copy(p, good.join(p.file_name().unwrap())).unwrap();
    }
    let s = |p: &Path| p.display().to_string();
    let det = dir.join("det.conad");
    // No --method: the default (SupCon*, budget recipe) with the other flags.
    let mut args = fit_args(
        &dir.join("data"),
        "1",
        &[
            "--calibration-fraction",
            "0.25",
            "--fpr",
            "0.1",
            "--out",
            &s(&det),
        ],
    );
    let m = args.iter().position(|a| a == "--method").unwrap();
    args.drain(m..m + 2);
    let o = conad_owned(&args);
    let out = ok(&o);
    assert!(out.contains("90 training images"), "{out}");
    assert!(out.starts_with("supcon"), "{out}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("without online evaluation"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let csv = ok(&conad(&[
        "score",
        "--detector",
        &s(&det),
        &s(&f.folder.join("test/Bag")),
    ]));
    assert_eq!(csv.lines().count(), 101); // header + the 100 bag images
}

/// `conad score --fpr` re-chooses the conformal threshold from the calibration scores stored in
/// the detector, `--threshold` replaces it; no refit.
#[test]
fn the_threshold_can_be_rechosen_at_scoring_time() {
    let f = fixture();
    let flagged = |extra: &[&str]| -> usize {
        let mut args = vec!["score", "--detector"];
        let d = f.detector.display().to_string();
        let folder = f.folder.join("test/good").display().to_string();
        args.push(&d);
        args.push(&folder);
        args.extend_from_slice(extra);
        ok(&conad(&args))
            .lines()
            .skip(1)
            .filter(|r| r.split(',').nth(3) == Some("1"))
            .count()
    };
    let default = flagged(&[]); // α = 0.05, as fitted
    let loose = flagged(&["--fpr", "0.3"]);
    assert!(
        loose > default,
        "α 0.3 flags {loose}, α 0.05 flags {default}"
    );
    assert_eq!(flagged(&["--threshold", "1e9"]), 0);
    // 60 calibration images cannot reach α = 0.001.
    let d = f.detector.display().to_string();
    let o = conad(&["score", "--detector", &d, "--fpr", "0.001", "x.png"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success() && err.contains("at least 1000"),
        "{err}"
    );
}
