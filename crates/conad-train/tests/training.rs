//! The training loop end to end on a tiny synthetic task: run-directory contents, the embedding
//! API, the raw-pixel baseline, typed errors (NaN loss, too few images, config mismatch),
//! cancellation.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use candle_core::Tensor;
use common::{fresh_dir, quiet, tiny_config, tiny_task};
use conad_models::ResNet;
use conad_train::run_dir::{
    CHECKPOINT_FILE, CONFIG_FILE, CURVE_FILE, HISTORY_FILE, MODEL_FILE, REPORT_FILE,
};
use conad_train::{
    BatchContext, Error, LearningCurve, Method, MethodBatch, MethodConfig, RawPixelsConfig,
    ResumePolicy, SimClrConfig, SimClrMethod, StepContext, StepOutput, TrainConfig, TrainOptions,
    knn_auroc, load_run, train_with_method, train_with_options,
};

#[test]
fn a_run_writes_its_directory_and_load_run_reproduces_the_online_evaluation() {
    let task = tiny_task();
    let config = tiny_config(2);
    let dir = fresh_dir("run-layout");
    let report = train_with_options(&config, &task, &dir, &quiet()).unwrap();
    for f in [
        CONFIG_FILE,
        CHECKPOINT_FILE,
        MODEL_FILE,
        HISTORY_FILE,
        CURVE_FILE,
        REPORT_FILE,
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert!(report.completed);
    assert_eq!(report.method, "simclr");
    assert_eq!(report.history.epochs.len(), 2);
    assert_eq!(report.history.evals.len(), 2);
    let e = &report.history.epochs[0];
    assert!(e.loss.is_finite() && e.loss > 0.0);
    assert!(e.images_per_second > 0.0);
    // Collapse monitor on 8 projections in R^16: between 0 and 1/√(n−1)-ish, never NaN.
    let s = e.embedding_std.unwrap();
    assert!(s > 0.0 && s < 1.0, "{s}");
    // NT-Xent on 2N = 8 views starts near ln(2N − 1) = ln 7.
    assert!((report.history.epochs[0].loss - 7f64.ln()).abs() < 0.5);

    // The resolved config is written next to the run.
    let stored = TrainConfig::from_toml_file(&dir.join(CONFIG_FILE)).unwrap();
    assert_eq!(stored, config.resolve(8, 8, 1).unwrap());
    assert_eq!(stored.model.in_channels, Some(1));

    let curve: LearningCurve =
        serde_json::from_str(&std::fs::read_to_string(dir.join(CURVE_FILE)).unwrap()).unwrap();
    assert_eq!(curve.epochs, vec![1, 2]);
    // AULC of two points is their mean (trapezoid).
    let mean = (curve.auroc[0] + curve.auroc[1]) / 2.0;
    assert!((curve.aulc.unwrap() - mean).abs() < 1e-15);
    assert_eq!(report.aulc, curve.aulc);

    // load_run + embed gives exactly the embeddings the online evaluation scored.
    let model = load_run(&dir).unwrap();
    assert_eq!(model.epochs(), 2);
    let train_emb = model.embed(&task.train, 3).unwrap();
    let test_emb = model.embed(&task.test, 4).unwrap();
    assert_eq!((test_emb.rows(), test_emb.cols()), (6, 32));
    let auroc = knn_auroc(&train_emb, &test_emb, &task.test_is_anomaly, 1).unwrap();
    assert_eq!(auroc.to_bits(), report.final_auroc.unwrap().to_bits());
    // Embedding is deterministic for a fixed batch size ...
    let again = model.embed(&task.test, 4).unwrap();
    assert_eq!(again.as_slice(), test_emb.as_slice());
    // ... and another batch size changes it only at float rounding: candle runs strided 1×1
    // convolutions (the downsampling shortcuts) as one im2col GEMM over the whole batch, whose
    // reduction blocking depends on the batch size.
    let other = model.embed(&task.test, 6).unwrap();
    for (a, b) in other.as_slice().iter().zip(test_emb.as_slice()) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

#[test]
fn raw_pixel_method_embeds_pixels_and_needs_no_training() {
    let task = tiny_task();
    let config = TrainConfig {
        method: MethodConfig::new(RawPixelsConfig::default()),
        ..tiny_config(1)
    };
    let dir = fresh_dir("raw-pixels");
    let report = train_with_options(&config, &task, &dir, &quiet()).unwrap();
    assert!(report.completed);
    assert_eq!(report.epochs_planned, 0);
    assert!(!dir.join(MODEL_FILE).exists());
    // Blobs vs uniform noise: every noise image is farther from the blob bank than every blob.
    assert_eq!(report.final_auroc, Some(1.0));

    let model = load_run(&dir).unwrap();
    assert!(model.encoder().is_none());
    let emb = model.embed(&task.test, 4).unwrap();
    assert_eq!((emb.rows(), emb.cols()), (6, 64));
    let want: Vec<f32> = task
        .test
        .images
        .iter()
        .map(|&p| f32::from(p) / 255.0)
        .collect();
    assert_eq!(emb.as_slice(), &want[..]);
}

/// SimCLR whose loss turns NaN at global step `nan_at`.
#[derive(Debug)]
struct NanAt {
    inner: SimClrMethod,
    calls: AtomicU64,
    nan_at: u64,
}

impl Method for NanAt {
    fn batch(&self, ctx: &BatchContext<'_>) -> conad_train::Result<MethodBatch> {
        self.inner.batch(ctx)
    }
    fn forward_loss(
        &self,
        encoder: &ResNet,
        batch: &MethodBatch,
        step: &StepContext,
    ) -> conad_train::Result<StepOutput> {
        let mut out = self.inner.forward_loss(encoder, batch, step)?;
        if self.calls.fetch_add(1, Ordering::Relaxed) == self.nan_at {
            let nan = Tensor::new(f32::NAN, out.loss.device())?;
            out.loss = out.loss.broadcast_mul(&nan)?;
        }
        Ok(out)
    }
    fn heads(&self) -> serde_json::Value {
        self.inner.heads()
    }
}

#[test]
fn nan_loss_stops_with_an_error_naming_epoch_and_step() {
    let task = tiny_task();
    let config = tiny_config(3);
    let dir = fresh_dir("nan");
    let simclr: SimClrConfig = config.method.params::<SimClrConfig>().unwrap().clone();
    // 2 steps per epoch: global step 3 is epoch 1, step 1.
    let err = train_with_method(&config, &task, &dir, &quiet(), move |ctx| {
        Ok(Box::new(NanAt {
            inner: SimClrMethod::new(&simclr, ctx.encoder, ctx.heads)?,
            calls: AtomicU64::new(0),
            nan_at: 3,
        }) as Box<dyn Method>)
    })
    .unwrap_err();
    match err {
        Error::NonFiniteLoss {
            epoch,
            step,
            global_step,
            value,
        } => {
            assert_eq!((epoch, step, global_step), (1, 1, 3));
            assert!(value.is_nan());
        }
        other => panic!("expected NonFiniteLoss, got {other:?}"),
    }
    // The checkpoint of epoch 1 (before the divergence) is still there to resume from.
    assert!(dir.join(CHECKPOINT_FILE).is_file());
    let msg = Error::NonFiniteLoss {
        epoch: 1,
        step: 1,
        global_step: 3,
        value: f64::NAN,
    }
    .to_string();
    assert!(msg.contains("epoch 1, step 1"), "{msg}");
}

#[test]
fn typed_errors_for_bad_runs() {
    let task = tiny_task();
    // 8 training images cannot fill a batch of 16 with drop_last.
    let mut big = tiny_config(1);
    big.batch_size = 16;
    match train_with_options(&big, &task, fresh_dir("too-few"), &quiet()) {
        Err(Error::TooFewImages { images, batch_size }) => {
            assert_eq!((images, batch_size), (8, 16))
        }
        other => panic!("{other:?}"),
    }

    // A run directory holding another config's weights refuses to resume it, naming the
    // difference.
    let dir = fresh_dir("mismatch");
    train_with_options(&tiny_config(1), &task, &dir, &quiet()).unwrap();
    assert!(dir.join(MODEL_FILE).is_file());
    let mut other = tiny_config(1);
    other.seed = 99;
    match train_with_options(&other, &task, &dir, &quiet()) {
        Err(Error::RunConfigMismatch { differences, .. }) => {
            assert_eq!(differences.len(), 1, "{differences:?}");
            assert!(
                differences[0].starts_with("seed: 7 vs 99"),
                "{differences:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Overwrite starts afresh with the new config.
    let overwrite = TrainOptions {
        resume: ResumePolicy::Overwrite,
        ..quiet()
    };
    train_with_options(&other, &task, &dir, &overwrite).unwrap();
    let stored = TrainConfig::from_toml_file(&dir.join(CONFIG_FILE)).unwrap();
    assert_eq!(stored.seed, 99);
    // A run cancelled before its first checkpoint has nothing to lose: another config replaces
    // it without `Overwrite`.
    let early = fresh_dir("early");
    let cancelled = TrainOptions {
        cancel: Some(Arc::new(AtomicBool::new(true))),
        ..quiet()
    };
    let r = train_with_options(&tiny_config(1), &task, &early, &cancelled).unwrap();
    assert!(!r.completed && r.epochs_completed == 0);
    assert!(early.join(CONFIG_FILE).is_file() && !early.join(MODEL_FILE).exists());
    train_with_options(&other, &task, &early, &quiet()).unwrap();
    let stored = TrainConfig::from_toml_file(&early.join(CONFIG_FILE)).unwrap();
    assert_eq!(stored.seed, 99);

    // A test split without anomalies cannot be evaluated online; without evaluation it trains.
    let mut all_normal = task.clone();
    all_normal.test_is_anomaly = vec![false; 6];
    assert!(matches!(
        train_with_options(
            &tiny_config(1),
            &all_normal,
            fresh_dir("one-class"),
            &quiet()
        ),
        Err(Error::OneSidedTestSplit {
            anomalies: 0,
            total: 6
        })
    ));
    let mut no_eval = tiny_config(1);
    no_eval.eval_every = 0;
    let r = train_with_options(&no_eval, &all_normal, fresh_dir("no-eval"), &quiet()).unwrap();
    assert!(r.completed && r.history.evals.is_empty() && r.final_auroc.is_none());
    assert_eq!(r.history.epochs[0].images, 16); // 2 steps × 4 images × 2 views

    // Mismatched test labels and an empty directory for load_run.
    let mut broken = task.clone();
    broken.test_is_anomaly.pop();
    assert!(matches!(
        train_with_options(&tiny_config(1), &broken, fresh_dir("broken"), &quiet()),
        Err(Error::CountMismatch { .. })
    ));
    assert!(matches!(
        load_run(fresh_dir("empty")),
        Err(Error::NotARun { .. })
    ));
}
