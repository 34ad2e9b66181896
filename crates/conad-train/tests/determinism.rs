//! Reproducibility by construction: the same seed gives bit-identical weights whatever the
//! thread count (rayon pools of 1 and 2 threads in-process; `RAYON_NUM_THREADS` = 1, 2, 3 in
//! child processes, which also changes the thread count candle hands to `gemm`), and a run
//! killed after an epoch and resumed from its checkpoint ends with the same weights, losses and
//! learning curve as an uninterrupted run.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use candle_core::{Device, Tensor, Var};
use common::{digest, fresh_dir, quiet, tiny_config, tiny_task, weight_bits};
use conad_rng::SeedTree;
use conad_train::{TrainOptions, run_dir::MODEL_FILE, train_with_options};
use rand::Rng;

#[test]
fn same_seed_same_weights_in_pools_of_one_and_two_threads() {
    let task = tiny_task();
    let mut runs = Vec::new();
    for threads in [1, 2] {
        let mut config = tiny_config(2);
        config.threads = Some(threads);
        let dir = fresh_dir(&format!("threads-{threads}"));
        let report = train_with_options(&config, &task, &dir, &quiet()).unwrap();
        assert!(report.completed);
        runs.push((weight_bits(&dir.join(MODEL_FILE)), report));
    }
    let (w1, r1) = &runs[0];
    let (w2, r2) = &runs[1];
    assert!(w1.len() > 40, "{} tensors", w1.len());
    for (name, bits) in w1 {
        assert_eq!(
            bits, &w2[name],
            "tensor `{name}` differs between 1 and 2 threads"
        );
    }
    let losses = |r: &conad_train::TrainReport| {
        r.history
            .epochs
            .iter()
            .map(|e| e.loss.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(r1), losses(r2));

    // A different seed must change the weights (the comparison above can fail).
    let mut other = tiny_config(2);
    other.seed = 8;
    let dir = fresh_dir("threads-seed8");
    train_with_options(&other, &task, &dir, &quiet()).unwrap();
    assert_ne!(digest(w1), digest(&weight_bits(&dir.join(MODEL_FILE))));
}

/// `precision = "bf16"` (AMX kernels on the 16-multiple-channel layers of a width-1/4 encoder):
/// bit-identical weights in pools of 1 and 2 threads, and weights different from the f32 run's
/// (the mode is really used). Skipped, with a message, on CPUs without AMX-BF16.
#[test]
fn bf16_precision_same_weights_in_pools_of_one_and_two_threads() {
    if !conad_train::Precision::Bf16.supported() {
        eprintln!("skipped: this CPU/OS has no AMX-BF16");
        return;
    }
    let task = tiny_task();
    let run = |threads: usize, precision: conad_train::Precision| {
        let mut config = tiny_config(1);
        config.model.width_multiplier = 0.25;
        config.threads = Some(threads);
        config.precision = precision;
        let dir = fresh_dir(&format!("bf16-{threads}-{}", precision.name()));
        train_with_options(&config, &task, &dir, &quiet()).unwrap();
        weight_bits(&dir.join(MODEL_FILE))
    };
    let one = run(1, conad_train::Precision::Bf16);
    let two = run(2, conad_train::Precision::Bf16);
    for (name, bits) in &one {
        assert_eq!(
            bits, &two[name],
            "tensor `{name}` differs between 1 and 2 threads"
        );
    }
    let f32_run = run(2, conad_train::Precision::F32);
    let differs = one
        .iter()
        .filter(|(name, bits)| f32_run[*name] != **bits)
        .count();
    assert!(
        differs > 10,
        "only {differs} tensors differ between bf16 and f32"
    );
}

/// Bits of candle kernels at sizes where `gemm` runs multi-threaded (m·n·k far above its
/// threading threshold): a matmul and a convolution with its two gradients.
fn kernel_digest() -> u64 {
    let dev = Device::Cpu;
    let values = |n: usize, seed: u64| -> Vec<f32> {
        let mut rng = SeedTree::new(seed).rng();
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    };
    let a = Tensor::from_vec(values(256 * 512, 1), (256, 512), &dev).unwrap();
    let b = Tensor::from_vec(values(512 * 384, 2), (512, 384), &dev).unwrap();
    let x = Var::from_vec(values(8 * 32 * 24 * 24, 3), (8, 32, 24, 24), &dev).unwrap();
    let w = Var::from_vec(values(64 * 32 * 9, 4), (64, 32, 3, 3), &dev).unwrap();
    let y = x.conv2d(&w, 1, 1, 1, 1).unwrap();
    let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    let mut all = BTreeMap::new();
    for (name, t) in [
        ("matmul", a.matmul(&b).unwrap()),
        ("conv", y),
        ("conv.grad_w", grads.get(&w).unwrap().clone()),
        ("conv.grad_x", grads.get(&x).unwrap().clone()),
    ] {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        all.insert(name.to_string(), v.iter().map(|f| f.to_bits()).collect());
    }
    digest(&all)
}

/// Trains the tiny config and writes the weight digest and [`kernel_digest`] to
/// `$CONAD_TRAIN_DIGEST_OUT`; run by [`rayon_num_threads_does_not_change_weights`] in child
/// processes.
#[test]
#[ignore = "helper: run in a child process by rayon_num_threads_does_not_change_weights"]
fn child_training_digest() {
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into());
    let dir = fresh_dir(&format!("child-{threads}"));
    train_with_options(&tiny_config(2), &tiny_task(), &dir, &quiet()).unwrap();
    let d = digest(&weight_bits(&dir.join(MODEL_FILE)));
    let k = kernel_digest();
    if let Ok(out) = std::env::var("CONAD_TRAIN_DIGEST_OUT") {
        std::fs::write(out, format!("{d:016x} {k:016x}")).unwrap();
    }
    println!("weights {d:016x}, kernels {k:016x} with RAYON_NUM_THREADS={threads}");
}

#[test]
fn rayon_num_threads_does_not_change_weights() {
    let exe = std::env::current_exe().unwrap();
    let out_dir = fresh_dir("child-digests");
    let mut digests = Vec::new();
    for threads in ["1", "2", "3"] {
        let out = out_dir.join(format!("digest-{threads}"));
        let status = Command::new(&exe)
            .args(["--exact", "child_training_digest", "--ignored", "--quiet"])
            .env("RAYON_NUM_THREADS", threads)
            .env("CONAD_TRAIN_DIGEST_OUT", &out)
            .status()
            .unwrap();
        assert!(status.success(), "child with {threads} threads failed");
        digests.push(std::fs::read_to_string(&out).unwrap());
    }
    assert_eq!(digests[0], digests[1], "1 vs 2 threads");
    assert_eq!(digests[0], digests[2], "1 vs 3 threads");
}

#[test]
fn killed_and_resumed_run_equals_uninterrupted_run() {
    let task = tiny_task();
    let mut config = tiny_config(4);
    config.checkpoint_every = 2;
    config.eval_every = 2;

    let full_dir = fresh_dir("resume-full");
    let full = train_with_options(&config, &task, &full_dir, &quiet()).unwrap();
    assert!(full.completed && full.resumed_from_epoch.is_none());

    // Session 1 is "killed" after epoch 3: the checkpoint of epoch 2 survives, epoch 3 is lost.
    let dir = fresh_dir("resume-killed");
    let first = train_with_options(
        &config,
        &task,
        &dir,
        &TrainOptions {
            stop_after_epochs: Some(3),
            ..quiet()
        },
    )
    .unwrap();
    assert!(!first.completed);
    assert_eq!(first.epochs_completed, 3);
    assert!(!dir.join(MODEL_FILE).exists());

    // Resuming with other training images is refused (same config, different data).
    let mut changed = task.clone();
    changed.train.images[0] ^= 1;
    match train_with_options(&config, &changed, &dir, &quiet()) {
        Err(conad_train::Error::RunConfigMismatch { differences, .. }) => {
            assert!(
                differences[0].starts_with("training data"),
                "{differences:?}"
            );
        }
        other => panic!("expected RunConfigMismatch, got {other:?}"),
    }

    let resumed = train_with_options(&config, &task, &dir, &quiet()).unwrap();
    assert!(resumed.completed);
    assert_eq!(resumed.resumed_from_epoch, Some(2));
    assert_eq!(resumed.epochs_completed, 4);

    let (a, b) = (
        weight_bits(&full_dir.join(MODEL_FILE)),
        weight_bits(&dir.join(MODEL_FILE)),
    );
    for (name, bits) in &a {
        assert_eq!(bits, &b[name], "tensor `{name}` differs after resume");
    }
    // Same per-epoch losses (no duplicated epoch 3) and the same learning curve.
    let losses = |r: &conad_train::TrainReport| {
        r.history
            .epochs
            .iter()
            .map(|e| (e.epoch, e.loss.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&full), losses(&resumed));
    let curve = |r: &conad_train::TrainReport| {
        r.history
            .evals
            .iter()
            .map(|e| (e.epoch, e.auroc.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(curve(&full), curve(&resumed));
    assert_eq!(curve(&full).len(), 2);

    // Calling train again on the finished run does no more training and reports the same.
    let again = train_with_options(&config, &task, &dir, &quiet()).unwrap();
    assert!(again.completed);
    assert_eq!(losses(&again), losses(&full));
    assert_eq!(weight_bits(&dir.join(MODEL_FILE)), a);
}
