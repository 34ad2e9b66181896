//! Runs and outputs are never lost or inconsistent, and the process never panics on its I/O:
//! a rejected `--overwrite` keeps the old run, a kill at any file-system step leaves a directory
//! that `conad eval` either reads consistently or refuses, edited or damaged parts are refused,
//! a full disk leaves the previous output intact, and a closed or full stdout is not a panic.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn conad_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_conad"));
    c.args(args);
    c
}

fn conad(args: &[&str]) -> Output {
    conad_cmd(args).output().expect("the conad binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn spec() -> String {
    let npz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/medmnist/breastmnist.npz");
    format!("medmnist:{}", npz.display())
}

/// Asserts a clean failure: exit status 2 (never a panic's 101) and one error line on stderr
/// (`conad: …`) that contains `needle`.
fn assert_refused(o: &Output, needle: &str) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("conad: ")).collect();
    assert_eq!(errors.len(), 1, "stderr: {err}");
    assert!(errors[0].contains(needle), "stderr lacks {needle:?}: {err}");
}

/// SimCLR, 2 epochs at width 1/8 on the BreastMNIST fixture, normal class `class`.
fn train_args<'a>(out: &'a str, class: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "train",
        "--method",
        "simclr",
        "--data",
        &spec(),
        "--normal-class",
        class,
        "--epochs",
        "2",
        "--width",
        "0.125",
        "--out",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !extra.contains(&"--batch-size") {
        a.extend(["--batch-size".to_string(), "2".to_string()]);
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn train(out: &Path, class: &str, extra: &[&str]) -> Output {
    let args = train_args(out.to_str().unwrap(), class, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    conad(&args)
}

fn eval_json(run: &Path) -> Output {
    conad(&["eval", "--json", "--run", run.to_str().unwrap()])
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&o.stdout), text(&o.stderr)))
}

/// The normal classes recorded in a weight file's own header (read here without conad).
fn trained_classes(weights: &Path) -> Vec<u64> {
    let bytes = std::fs::read(weights).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(header["__metadata__"]["conad"].as_str().unwrap()).unwrap();
    meta["training"]["run"]["task"]["protocol"]["normal_classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

#[test]
fn a_rejected_overwrite_keeps_the_old_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    assert_ok(&train(&run, "1", &[]));
    let before = json(&eval_json(&run));
    // More images per step than the class has (drop_last): rejected after loading the data.
    let o = train(&run, "1", &["--overwrite", "--batch-size", "100000"]);
    assert_refused(&o, "batch_size");
    for f in [
        "config.toml",
        "task.toml",
        "model.safetensors",
        "report.json",
    ] {
        assert!(run.join(f).is_file(), "{f} was deleted by a rejected rerun");
    }
    let after = json(&eval_json(&run));
    assert_eq!(before["auroc"], after["auroc"]);
    // A first attempt that fails leaves no directory behind.
    let fresh = dir.path().join("fresh");
    assert_refused(
        &train(&fresh, "1", &["--batch-size", "100000"]),
        "batch_size",
    );
    assert!(
        !fresh.exists(),
        "a rejected first attempt created {fresh:?}"
    );
}

/// `conad train --overwrite` of another task over a finished run, killed before each of its
/// file-system mutations in turn: after every kill, `conad eval` either reports a run whose
/// task.toml and weights agree, or refuses with a one-line error; a resumed or fresh rerun
/// then always succeeds.
#[test]
fn a_kill_at_any_point_of_an_overwrite_never_mixes_two_runs() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    assert_ok(&train(&run, "1", &[]));
    let mut completed = false;
    for step in 1..200 {
        let args = train_args(run.to_str().unwrap(), "0", &["--overwrite"]);
        let o = conad_cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .env("CONAD_TEST_ABORT_AT_FS_OP", step.to_string())
            .output()
            .unwrap();
        if o.status.success() {
            completed = true;
            assert!(step > 10, "the overwrite took only {step} steps");
            break;
        }
        assert!(
            text(&o.stderr).contains("aborting before file-system mutation"),
            "step {step}: {}",
            text(&o.stderr)
        );
        let e = eval_json(&run);
        if e.status.success() {
            let report = json(&e);
            let reported: Vec<u64> = report["normal_classes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            let weights = [
                run.join("model.safetensors"),
                run.join("checkpoint.safetensors"),
            ]
            .into_iter()
            .find(|p| p.is_file())
            .unwrap();
            assert_eq!(reported, trained_classes(&weights), "step {step}");
            let task = std::fs::read_to_string(run.join("task.toml")).unwrap();
            assert!(
                task.contains(&format!("normal_classes = [{}]", reported[0])),
                "step {step}: {task}"
            );
        } else {
            assert_eq!(e.status.code(), Some(2), "step {step}: {}", text(&e.stderr));
            assert!(!text(&e.stderr).contains("panicked"));
        }
    }
    assert!(completed, "the overwrite never completed");
    let report = json(&eval_json(&run));
    assert_eq!(report["normal_classes"], serde_json::json!([0]));
}

#[test]
fn a_kill_during_eval_or_embed_leaves_complete_files_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    assert_ok(&train(&run, "1", &[]));
    let npy = dir.path().join("emb.npy");
    let n_test = json(&eval_json_no_write(&run))["n_test"].as_u64().unwrap();
    for step in 1..50 {
        let o = conad_cmd(&["eval", "--run", run.to_str().unwrap()])
            .env("CONAD_TEST_ABORT_AT_FS_OP", step.to_string())
            .output()
            .unwrap();
        let e = conad_cmd(&[
            "embed",
            "--split",
            "test",
            "--run",
            run.to_str().unwrap(),
            "--out",
            npy.to_str().unwrap(),
        ])
        .env("CONAD_TEST_ABORT_AT_FS_OP", step.to_string())
        .output()
        .unwrap();
        if step == 1 {
            // The outputs go through the crash-safe writer (the hook fires), so this loop
            // really kills them before each write.
            assert!(!o.status.success() && !e.status.success());
        }
        let eval = run.join("eval");
        // metrics.json is written last: when it exists, everything it describes is complete.
        if let Ok(t) = std::fs::read_to_string(eval.join("metrics.json")) {
            let v: serde_json::Value = serde_json::from_str(&t).expect("complete metrics.json");
            assert!(v["auroc"].is_number());
            let scores = std::fs::read_to_string(eval.join("scores.csv")).unwrap();
            assert_eq!(
                scores.lines().count() as u64,
                n_test + 1,
                "a partial scores.csv"
            );
            assert!(std::fs::metadata(eval.join("roc.png")).unwrap().len() > 0);
        }
        if npy.exists() {
            let (_, rows, _) = conad_data::npy::read_f32_matrix(&npy).expect("a complete .npy");
            assert_eq!(rows as u64, n_test);
            let labels = dir.path().join("emb.labels.npy");
            assert!(labels.is_file(), "embeddings without their labels");
        }
        if o.status.success() && e.status.success() {
            assert!(step > 2, "finished after {step} steps");
            return;
        }
    }
    panic!("eval and embed never completed");
}

/// `conad eval --json --out` to a scratch directory (does not touch the run's own outputs).
fn eval_json_no_write(run: &Path) -> Output {
    let scratch = run.with_extension("scratch");
    conad(&[
        "eval",
        "--json",
        "--run",
        run.to_str().unwrap(),
        "--out",
        scratch.to_str().unwrap(),
    ])
}

#[test]
fn edited_or_foreign_parts_and_damaged_weights_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    assert_ok(&train(&run, "1", &[]));
    assert_ok(&eval_json(&run));
    // An edited task.toml (another normal class).
    let task_path = run.join("task.toml");
    let task = std::fs::read_to_string(&task_path).unwrap();
    std::fs::write(&task_path, task.replace("[1]", "[0]")).unwrap();
    assert_refused(&eval_json(&run), "task.toml");
    std::fs::write(&task_path, &task).unwrap();
    assert_ok(&eval_json(&run));
    // The config.toml of another method.
    let other = dir.path().join("raw");
    let o = conad(&[
        "train",
        "--method",
        "raw",
        "--data",
        &spec(),
        "--out",
        other.to_str().unwrap(),
    ]);
    assert_ok(&o);
    let config_path = run.join("config.toml");
    let config = std::fs::read(&config_path).unwrap();
    std::fs::copy(other.join("config.toml"), &config_path).unwrap();
    assert_refused(&eval_json(&run), "config.toml");
    std::fs::write(&config_path, &config).unwrap();
    // A flipped byte in the weights.
    let model = run.join("model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x10;
    std::fs::write(&model, &bytes).unwrap();
    assert_refused(&eval_json(&run), "damaged");
}

#[test]
fn leftovers_of_an_interrupted_overwrite_are_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    assert_ok(&train(&run, "1", &[]));
    std::fs::remove_file(run.join("config.toml")).unwrap();
    assert_refused(&train(&run, "1", &[]), "--overwrite");
    assert_ok(&train(&run, "1", &["--overwrite"]));
    // A directory holding only the config of a run that never saved weights does not block a
    // corrected rerun.
    let early = dir.path().join("early");
    std::fs::create_dir_all(&early).unwrap();
    std::fs::copy(run.join("config.toml"), early.join("config.toml")).unwrap();
    assert_ok(&train(&early, "1", &["--seed", "3"]));
}

#[test]
fn degenerate_batches_and_thread_storms_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    assert_refused(&train(&run, "1", &["--batch-size", "1"]), "≥ 2");
    assert_refused(&train(&run, "1", &["--threads", "100000"]), "threads");
    assert!(!run.exists());
}

#[test]
fn labels_are_never_derived_beside_a_device() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    assert_ok(&train(&run, "1", &[]));
    let r = run.to_str().unwrap();
    assert_refused(
        &conad(&["embed", "--run", r, "--out", "/dev/null"]),
        "--labels-out",
    );
    let labels = dir.path().join("labels.npy");
    assert_ok(&conad(&[
        "embed",
        "--run",
        r,
        "--out",
        "/dev/null",
        "--labels-out",
        labels.to_str().unwrap(),
    ]));
    assert!(labels.is_file());
    assert!(!Path::new("/dev/null.labels.npy").exists());
}

fn write_npy(path: &Path, rows: usize, cols: usize) {
    let data: Vec<f32> = (0..rows * cols).map(|i| (i % 7) as f32 * 0.25).collect();
    conad_data::npy::write_f32_matrix(path, &data, rows, cols).unwrap();
}

/// A write that fails half-way (the file-size limit stands in for a full disk, without root)
/// leaves the previous CSV byte for byte, and no temporary file.
#[test]
fn a_full_disk_keeps_the_previous_output() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (dir.path().join("train.npy"), dir.path().join("test.npy"));
    write_npy(&train, 20, 4);
    write_npy(&test, 4000, 4);
    let out = dir.path().join("scores.csv");
    let previous = b"index,score\n0,0.5\n".to_vec();
    std::fs::write(&out, &previous).unwrap();
    let script = format!(
        "trap '' XFSZ; ulimit -f 8; exec {} score-embeddings --train {} --test {} --out {}",
        env!("CARGO_BIN_EXE_conad"),
        train.display(),
        test.display(),
        out.display()
    );
    let o = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert_refused(&o, "scores.csv");
    assert_eq!(std::fs::read(&out).unwrap(), previous);
    let names: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn a_closed_or_full_stdout_is_not_a_panic() {
    // Full device: an error naming standard output.
    let full = std::fs::File::create("/dev/full").unwrap();
    let o = conad_cmd(&["methods", "--scores"])
        .stdout(full)
        .output()
        .unwrap();
    assert_refused(&o, "standard output");
    // Closed pipe: the reader is gone before the first write (deterministic EPIPE); a normal
    // end, nothing on stderr.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = conad_cmd(&["data", "info", "embedded:fashion-mnist"])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
    assert!(!text(&o.stderr).contains("panicked"));
}

#[test]
fn a_directory_of_other_files_is_never_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, b"mine").unwrap();
    for extra in [&[][..], &["--overwrite"][..]] {
        assert_refused(&train(dir.path(), "1", extra), "notes.txt");
    }
    assert_eq!(std::fs::read(&notes).unwrap(), b"mine");
}

#[test]
fn a_raw_pixel_run_is_not_replaced_without_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("raw");
    let raw = |extra: &[&str]| {
        let mut a = vec![
            "train",
            "--method",
            "raw",
            "--data",
            "embedded:fashion-mnist",
            "--normal-class",
            "0",
            "--out",
            run.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        conad(&a)
    };
    assert_ok(&raw(&[]));
    assert_refused(&raw(&["--seed", "5"]), "different config");
    assert_ok(&raw(&["--seed", "5", "--overwrite"]));
}

/// `threads` never changes results: a stored config is not re-checked against this machine's
/// cores, and resuming with another thread count is accepted.
#[test]
fn the_thread_count_is_not_part_of_a_runs_identity() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    assert_ok(&train(&run, "1", &["--threads", "2"]));
    let config_path = run.join("config.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    assert!(config.contains("threads = 2"), "{config}");
    std::fs::write(
        &config_path,
        config.replace("threads = 2", "threads = 100000"),
    )
    .unwrap();
    assert_ok(&eval_json(&run));
    std::fs::write(&config_path, &config).unwrap();
    assert_ok(&train(&run, "1", &["--threads", "1"]));
}

/// A training image changed after training: eval refuses instead of scoring with weights
/// trained on other images.
#[test]
fn changed_training_data_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("folder");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/folder");
    for sub in ["train/good", "test/good", "test/crack", "test/scratch"] {
        std::fs::create_dir_all(data.join(sub)).unwrap();
        for e in std::fs::read_dir(src.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x != "txt") {
                std::fs::copy(&p, data.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    let spec = format!("folder:{},size=8", data.display());
    let run = dir.path().join("run");
    let o = conad(&[
        "train",
        "--method",
        "simclr",
        "--data",
        &spec,
        "--epochs",
        "1",
        "--width",
        "0.125",
        "--batch-size",
        "2",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert_ok(&o);
    assert_ok(&eval_json(&run));
    std::fs::copy(
        data.join("test/good/000.png"),
        data.join("train/good/000.png"),
    )
    .unwrap();
    assert_refused(
        &eval_json(&run),
        "differs from the one the run was trained on",
    );
}
