//! Detectors: fit with a calibration hold-out, save, load without the training data, score
//! bit-identically, refuse damaged, foreign and other-format files, explain with the nearest
//! normal image.

mod common;

use common::{fresh_dir, quiet, tiny_config};
use conad_data::{EmbeddedDataset, OneClassProtocol, OneClassTask, Subsample};
use conad_models::Checkpoint;
use conad_scorers::ThresholdRule;
use conad_train::detector::{DETECTOR_FORMAT, Detector, DetectorFit, ThresholdChoice};
use conad_train::{Error, MethodConfig, RawPixelsConfig, TaskRecord, TrainOptions, load_run};

fn task(calibration: Option<f64>) -> (TaskRecord, OneClassTask) {
    let record = TaskRecord {
        data: "embedded:fashion-mnist".into(),
        protocol: OneClassProtocol {
            normal_classes: vec![1],
            seed: 3,
            train_subsample: Some(Subsample::PerClass(60)),
            test_subsample: Some(Subsample::PerClass(4)),
            calibration_fraction: calibration,
            ..Default::default()
        },
    };
    let data = EmbeddedDataset::FashionMnist.load().unwrap();
    let task = record.protocol.build(&data).unwrap();
    (record, task)
}

fn trained(name: &str, raw: bool) -> (std::path::PathBuf, OneClassTask) {
    let (record, task) = task(Some(0.25));
    let dir = fresh_dir(name);
    let mut config = tiny_config(1);
    config.batch_size = 8;
    if raw {
        config.method = MethodConfig::new(RawPixelsConfig::default());
    }
    let options = TrainOptions {
        task: Some(record),
        ..quiet()
    };
    conad_train::train_with_options(&config, &task, dir.join("run"), &options).unwrap();
    (dir, task)
}

fn bits(v: &[conad_train::detector::Verdict]) -> Vec<(u64, u64, bool, usize, u32)> {
    v.iter()
        .map(|v| {
            (
                v.score.to_bits(),
                v.p_value.to_bits(),
                v.is_anomaly,
                v.nearest_normal,
                v.similarity.to_bits(),
            )
        })
        .collect()
}

#[test]
fn fit_save_load_score_bit_identically() {
    let (dir, task) = trained("detector-roundtrip", false);
    // 60 normal images, 15 held out: training on 45.
    assert_eq!(task.train.n, 45);
    assert_eq!(task.calibration.as_ref().unwrap().n, 15);
    let model = load_run(dir.join("run")).unwrap();
    let detector = Detector::fit(
        model,
        &task,
        DetectorFit {
            threshold: ThresholdChoice::Conformal { alpha: 0.1 },
            batch_size: 16,
            ..Default::default()
        },
    )
    .unwrap();
    // n = 15, α = 0.1: l = ⌈1.6⌉ − 1 = 1: the threshold is the largest calibration score.
    let cal = detector.calibrator().scores().to_vec();
    assert_eq!(cal.len(), 15);
    assert_eq!(detector.threshold().threshold(), cal[14]);
    assert_eq!(detector.record().format, DETECTOR_FORMAT);
    // Versions: conad's and, from Cargo.lock, candle's and the GEMM's.
    let versions = &detector.record().versions;
    for name in ["conad", "candle-core", "candle-nn", "gemm", "safetensors"] {
        assert!(
            versions.contains_key(name),
            "{name} missing from {versions:?}"
        );
    }
    assert_eq!(detector.record().score, "knn"); // SimCLR's paper score

    let test = &task.test;
    let before = detector.score_prepared(&test.images, test.n).unwrap();
    assert_eq!(before.len(), test.n);
    for v in &before {
        assert_eq!(v.is_anomaly, v.p_value < 0.1, "{v:?}");
        assert!((0.0..=1.0).contains(&v.p_value));
    }
    // The detector's one-forward path gives the scores of the generic score code.
    let model = load_run(dir.join("run")).unwrap();
    let fitted = model.fit_named_score(None, &task.train, 16).unwrap();
    assert!(fitted.reads_encoder_test_features());
    let generic = model.score(&fitted, test, 16).unwrap();
    let fast: Vec<f64> = before.iter().map(|v| v.score).collect();
    assert_eq!(
        generic.iter().map(|s| s.to_bits()).collect::<Vec<_>>(),
        fast.iter().map(|s| s.to_bits()).collect::<Vec<_>>()
    );
    let path = dir.join("det.conad");
    detector.save(&path).unwrap();
    let loaded = Detector::load(&path).unwrap();
    assert_eq!(loaded.record(), detector.record());
    let after = loaded.score_prepared(&test.images, test.n).unwrap();
    assert_eq!(bits(&before), bits(&after));

    // A training image's nearest normal image is itself.
    let v = loaded
        .score_prepared(task.train.image(5), 1)
        .unwrap()
        .remove(0);
    assert_eq!(v.nearest_normal, 5);
    assert!(v.similarity > 0.9999, "{}", v.similarity);
    assert_eq!(
        loaded.training_name(5),
        Some(format!("train[{}]", task.train_source_indices[5]).as_str())
    );
    let (thumb, h, w, c) = loaded.training_thumbnail(5).unwrap();
    assert_eq!((thumb, h, w, c), (task.train.image(5), 28, 28, 1));

    // score_image resizes: a 56×56 copy (nearest-neighbour upscaling) scores close to it.
    let img = task.train.image(5);
    let big: Vec<u8> = (0..56 * 56)
        .map(|i| img[(i / 56 / 2) * 28 + (i % 56) / 2])
        .collect();
    let v2 = loaded.score_image(&big, (56, 56, 1)).unwrap();
    assert_eq!(v2.nearest_normal, 5);

    // Another shape for score_batch: a typed error naming both shapes.
    let batch = conad_augment::ImageBatchU8::new(&big, 1, 56, 56, 1).unwrap();
    match loaded.score_batch(&batch) {
        Err(Error::DetectorInputShape { expected, found }) => {
            assert_eq!((expected, found), ((28, 28, 1), (56, 56, 1)));
        }
        other => panic!("{other:?}"),
    }
    // A buffer that is not n prepared images.
    assert!(matches!(
        loaded.score_prepared(&big, 3),
        Err(Error::Augment(_))
    ));
}

#[test]
fn damaged_foreign_and_other_format_files_are_refused() {
    let (dir, task) = trained("detector-refusals", false);
    let model = load_run(dir.join("run")).unwrap();
    let detector = Detector::fit(model, &task, DetectorFit::default().clone()).map(|_| ());
    // 15 calibration images cannot reach α = 0.01 (needs 100).
    match detector {
        Err(Error::Scorers(conad_scorers::Error::CalibrationTooSmall { needed, .. })) => {
            assert_eq!(needed, 100);
        }
        other => panic!("{other:?}"),
    }
    let model = load_run(dir.join("run")).unwrap();
    let detector = Detector::fit(
        model,
        &task,
        DetectorFit {
            threshold: ThresholdChoice::Manual { threshold: 0.5 },
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        detector.threshold(),
        &ThresholdRule::Manual { threshold: 0.5 }
    );
    let path = dir.join("det.conad");
    detector.save(&path).unwrap();

    // A flipped byte near the end (inside a tensor): the content hash catches it.
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x40;
    std::fs::write(dir.join("flipped.conad"), &bytes).unwrap();
    let e = Detector::load(dir.join("flipped.conad")).unwrap_err();
    assert!(e.to_string().contains("hash"), "{e}");

    // A run's model file is a checkpoint, not a detector.
    match Detector::load(dir.join("run/model.safetensors")) {
        Err(Error::NotADetector { reason, .. }) => {
            assert!(reason.contains("conad fit"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Another format version, and another conad version: rewritten with a valid hash.
    let mut ckpt = Checkpoint::load(&path, &candle_core::Device::Cpu).unwrap();
    ckpt.meta.training["detector"]["format"] = "conad-detector-v0".into();
    ckpt.save(dir.join("v0.conad")).unwrap();
    match Detector::load(dir.join("v0.conad")) {
        Err(Error::DetectorFormat {
            found, expected, ..
        }) => {
            assert_eq!(
                (found.as_str(), expected.as_str()),
                ("conad-detector-v0", DETECTOR_FORMAT)
            );
        }
        other => panic!("{other:?}"),
    }
    let mut ckpt = Checkpoint::load(&path, &candle_core::Device::Cpu).unwrap();
    ckpt.meta.conad_version = "0.0.1".into();
    ckpt.save(dir.join("old.conad")).unwrap();
    let e = Detector::load(dir.join("old.conad")).unwrap_err();
    assert!(e.to_string().contains("0.0.1"), "{e}");
    // A missing tensor.
    let mut ckpt = Checkpoint::load(&path, &candle_core::Device::Cpu).unwrap();
    ckpt.tensors.remove("detector.neighbours");
    ckpt.save(dir.join("partial.conad")).unwrap();
    match Detector::load(dir.join("partial.conad")) {
        Err(Error::NotADetector { reason, .. }) => assert!(reason.contains("detector.neighbours")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Detector::load(dir.join("missing.conad")),
        Err(Error::Models(_))
    ));
}

#[test]
fn a_task_without_calibration_images_is_refused_and_raw_pixels_work() {
    let (dir, task) = trained("detector-raw", true);
    let (_, no_cal) = self::task(None);
    let model = load_run(dir.join("run")).unwrap();
    assert!(matches!(
        Detector::fit(model, &no_cal, DetectorFit::default()),
        Err(Error::NoCalibrationImages { .. })
    ));
    let model = load_run(dir.join("run")).unwrap();
    let labels: Vec<bool> = task.test_is_anomaly.clone();
    let detector = Detector::fit(
        model,
        &task,
        DetectorFit {
            threshold: ThresholdChoice::F1Optimal {
                images: task.test.clone(),
                is_anomaly: labels,
            },
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(detector.threshold().mode(), "f1_optimal");
    assert!(detector.threshold().threshold().is_finite());
    // Labelled images of another shape than the training images are refused.
    let model = load_run(dir.join("run")).unwrap();
    let small = conad_data::Dataset::new(
        vec![0; 4 * 8 * 8],
        4,
        (8, 8, 1),
        vec![0; 4],
        vec!["x".into()],
    )
    .unwrap();
    assert!(matches!(
        Detector::fit(
            model,
            &task,
            DetectorFit {
                threshold: ThresholdChoice::F1Optimal {
                    images: small,
                    is_anomaly: vec![false, true, false, true],
                },
                ..Default::default()
            },
        ),
        Err(Error::DetectorInputShape { .. })
    ));
    let path = dir.join("raw.conad");
    detector.save(&path).unwrap();
    let loaded = Detector::load(&path).unwrap();
    let a = detector
        .score_prepared(&task.test.images, task.test.n)
        .unwrap();
    let b = loaded
        .score_prepared(&task.test.images, task.test.n)
        .unwrap();
    assert_eq!(bits(&a), bits(&b));
}
