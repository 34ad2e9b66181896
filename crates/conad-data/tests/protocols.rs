//! One-class / contamination / subsampling protocols (docs/reference.md §4.1–§4.3, §6.19) on the embedded
//! Fashion-MNIST subset (300 train / 100 test per class) and small hand-built data sets.

use conad_data::{
    Dataset, EmbeddedDataset, Error, LoadedData, OneClassProtocol, Subsample, cifar,
    contamination_count,
};
use std::path::Path;
use std::sync::OnceLock;

fn fmnist() -> &'static LoadedData {
    static DATA: OnceLock<LoadedData> = OnceLock::new();
    DATA.get_or_init(|| EmbeddedDataset::FashionMnist.load().unwrap())
}

fn protocol(normal: &[u32], gamma: Option<f64>, seed: u64) -> OneClassProtocol {
    OneClassProtocol {
        normal_classes: normal.to_vec(),
        contamination: gamma,
        seed,
        ..Default::default()
    }
}

#[test]
fn clean_one_vs_rest() {
    let data = fmnist();
    let task = protocol(&[4], None, 0).build(data).unwrap();
    assert_eq!(task.train.len(), 300);
    assert!(task.train.labels.iter().all(|&l| l == 4));
    assert_eq!(task.num_contaminants(), 0);
    assert_eq!(task.test.len(), 1000);
    assert_eq!(task.num_test_anomalies(), 900);
    for (i, &a) in task.test_is_anomaly.iter().enumerate() {
        assert_eq!(a, task.test.labels[i] != 4);
    }
    // Training images are the class-4 images of the split, in order.
    let expected: Vec<usize> = data.train.indices_where(|l| l == 4);
    assert_eq!(task.train_source_indices, expected);
    assert_eq!(task.train.image(7), data.train.image(expected[7]));
    assert!(
        task.description.contains("normal = {4 'Coat'}"),
        "{}",
        task.description
    );
}

#[test]
fn several_normal_classes() {
    let task = protocol(&[6, 0, 6], None, 0).build(fmnist()).unwrap();
    assert_eq!(task.normal_classes, vec![0, 6]);
    assert_eq!(task.train.len(), 600);
    assert_eq!(task.num_test_anomalies(), 800);
}

#[test]
fn contamination_is_gamma_of_the_final_set_and_seeded() {
    let data = fmnist();
    let task = protocol(&[0], Some(0.05), 11).build(data).unwrap();
    let n_anom = contamination_count(0.05, 300);
    assert_eq!(n_anom, 16); // round(0.05 · 300 / 0.95) = round(15.79)
    assert_eq!(task.num_contaminants(), 16);
    assert_eq!(task.train.len(), 316);
    for (i, &c) in task.train_is_contaminant.iter().enumerate() {
        assert_eq!(
            c,
            task.train.labels[i] != 0,
            "flag {i} disagrees with the label"
        );
    }
    // Original order kept, no duplicates.
    assert!(task.train_source_indices.windows(2).all(|w| w[0] < w[1]));
    // Same seed → same draw; another seed → another draw.
    let again = protocol(&[0], Some(0.05), 11).build(data).unwrap();
    assert_eq!(again.train_source_indices, task.train_source_indices);
    let other = protocol(&[0], Some(0.05), 12).build(data).unwrap();
    assert_ne!(other.train_source_indices, task.train_source_indices);
    // The test split is untouched by contamination.
    assert_eq!(task.test.len(), 1000);
}

#[test]
fn contaminants_are_uniform_over_other_classes() {
    // γ = 0.5 → 300 contaminants from 2700 images (300 per other class): hypergeometric mean 33.3
    // per class, sd ≈ 5.4. A sampler biased to the start of the pool (class 1, 2, …) fails.
    let task = protocol(&[0], Some(0.5), 3).build(fmnist()).unwrap();
    let counts = task.train.class_counts();
    assert_eq!(counts[0], 300);
    for (c, &k) in counts.iter().enumerate().skip(1) {
        assert!(
            (14..=53).contains(&k),
            "class {c}: {k} contaminants ({counts:?})"
        );
    }
    assert_eq!(counts.iter().sum::<usize>(), 600);
}

#[test]
fn subsampling_train_and_test() {
    let p = OneClassProtocol {
        normal_classes: vec![2],
        contamination: Some(0.1),
        seed: 5,
        train_subsample: Some(Subsample::PerClass(50)),
        test_subsample: Some(Subsample::Fraction(0.1)),
        calibration_fraction: None,
    };
    let task = p.build(fmnist()).unwrap();
    let normals = task.train_is_contaminant.iter().filter(|&&c| !c).count();
    assert_eq!(normals, 50);
    assert_eq!(task.num_contaminants(), contamination_count(0.1, 50)); // 6
    assert_eq!(task.num_contaminants(), 6);
    assert_eq!(task.test.len(), 100);
    assert_eq!(task.test.class_counts(), vec![10; 10]);
    assert_eq!(task.num_test_anomalies(), 90);
    assert_eq!(
        p.build(fmnist()).unwrap().test_source_indices,
        task.test_source_indices
    );
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let data = EmbeddedDataset::FashionMnist.load().unwrap();
                let t = protocol(&[3], Some(0.1), 99).build(&data).unwrap();
                (data.train.images, t.train_source_indices)
            })
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn protocol_errors() {
    let data = fmnist();
    let e = protocol(&[10], None, 0).build(data).unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnknownClass {
                class: 10,
                num_classes: 10,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("9 Ankle boot"));
    let e = protocol(&[], None, 0).build(data).unwrap_err();
    assert!(
        e.to_string().contains("no conventional normal class"),
        "{e}"
    );
    for g in [1.0, -0.1, f64::NAN, f64::INFINITY] {
        let e = protocol(&[0], Some(g), 0).build(data).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidConfig { field, .. } if field == "contamination"),
            "{g}: {e}"
        );
    }
    // γ = 0.95 needs round(0.95 · 300 / 0.05) = 5700 anomalies; only 2700 exist.
    let e = protocol(&[0], Some(0.95), 0).build(data).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotEnoughAnomalies {
                requested: 5700,
                available: 2700,
                ..
            }
        ),
        "{e}"
    );
    let all: Vec<u32> = (0..10).collect();
    let e = protocol(&all, None, 0).build(data).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DegenerateTestSet {
                normals: 1000,
                anomalies: 0
            }
        ),
        "{e}"
    );
    let mut p = protocol(&[0], None, 0);
    p.train_subsample = Some(Subsample::PerClass(0));
    assert!(p.build(data).is_err());
}

fn tiny(labels: Vec<u32>, names: &[&str]) -> Dataset {
    let n = labels.len();
    Dataset::new(
        vec![0; n * 4],
        n,
        (2, 2, 1),
        labels,
        names.iter().map(|s| s.to_string()).collect(),
    )
    .unwrap()
}

#[test]
fn empty_normal_class_is_an_error() {
    let names = ["a", "b", "c"];
    let data = LoadedData {
        name: "tiny".into(),
        source: "mem".into(),
        train: tiny(vec![0, 0, 1], &names),
        val: None,
        test: tiny(vec![0, 1, 2], &names),
        default_normal_classes: None,
        notes: vec![],
    };
    let e = protocol(&[2], None, 0).build(&data).unwrap_err();
    assert!(matches!(e, Error::EmptyNormalClass { class: 2, .. }), "{e}");
    assert!(e.to_string().contains("'c'"));
    // Fraction subsampling that rounds a class to zero is reported too: round(0.2 · 1) = 0.
    let mut p = protocol(&[1], None, 0);
    p.train_subsample = Some(Subsample::Fraction(0.2));
    assert!(matches!(
        p.build(&data).unwrap_err(),
        Error::EmptyNormalClass { class: 1, .. }
    ));
}

#[test]
fn medmnist_default_normal_label() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let data =
        conad_data::medmnist::load_medmnist(&fixtures.join("medmnist/breastmnist.npz"), None)
            .unwrap();
    let task = OneClassProtocol::default().build(&data).unwrap();
    assert_eq!(task.normal_classes, vec![1]);
    assert_eq!(task.train_source_indices, vec![0, 2, 3]);
    assert_eq!(task.test_is_anomaly, vec![true, false, false]);
    // Overriding: label 0 as normal.
    let task = protocol(&[0], None, 0).build(&data).unwrap();
    assert_eq!(task.train_source_indices, vec![1, 4]);
}

#[test]
fn cifar100_superclass_one_class() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let data = cifar::load_cifar100(
        &fixtures.join("cifar100"),
        conad_data::Cifar100Labels::Coarse,
    )
    .unwrap();
    // Superclass 0 (aquatic mammals): train fine 4 beaver and 30 dolphin; test fine 55 otter.
    let task = protocol(&[0], None, 0).build(&data).unwrap();
    assert_eq!(task.train_source_indices, vec![0, 1]);
    assert_eq!(task.test_is_anomaly, vec![false, true, true]);
    let csi = cifar::load_cifar100(
        &fixtures.join("cifar100"),
        conad_data::Cifar100Labels::CoarseCsi,
    )
    .unwrap();
    // CSI's superclass 0 holds 31 elephant instead of 30 dolphin.
    let task = protocol(&[0], None, 0).build(&csi).unwrap();
    assert_eq!(task.train_source_indices, vec![0, 2]);
}

#[test]
fn protocol_serde_roundtrip() {
    let p = OneClassProtocol {
        normal_classes: vec![1],
        contamination: Some(0.02),
        seed: 4,
        train_subsample: Some(Subsample::PerClass(100)),
        test_subsample: None,
        calibration_fraction: None,
    };
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(
        json,
        r#"{"normal_classes":[1],"contamination":0.02,"seed":4,"train_subsample":{"per-class":100},"test_subsample":null}"#
    );
    assert_eq!(serde_json::from_str::<OneClassProtocol>(&json).unwrap(), p);
    assert!(serde_json::from_str::<OneClassProtocol>(r#"{"normal":[1]}"#).is_err());
}

#[test]
fn calibration_hold_out_is_disjoint_seeded_and_counted_before_contamination() {
    let p = OneClassProtocol {
        calibration_fraction: Some(0.2),
        ..protocol(&[3], Some(0.1), 4)
    };
    let task = p.build(fmnist()).unwrap();
    let cal = task.calibration.as_ref().unwrap();
    // 300 normal images: round(0.2 · 300) = 60 held out, 240 left to train on.
    assert_eq!(cal.len(), 60);
    assert!(cal.labels.iter().all(|&l| l == 3));
    let normals = task.train_is_contaminant.iter().filter(|&&c| !c).count();
    assert_eq!(normals, 240);
    assert_eq!(task.num_contaminants(), contamination_count(0.1, 240));
    for (k, &i) in task.calibration_source_indices.iter().enumerate() {
        assert!(!task.train_source_indices.contains(&i), "image {i} in both");
        assert_eq!(cal.image(k), fmnist().train.image(i));
    }
    // Same seed, same hold-out; another seed, another one.
    assert_eq!(
        p.build(fmnist()).unwrap().calibration_source_indices,
        task.calibration_source_indices
    );
    let other = OneClassProtocol {
        seed: 5,
        ..p.clone()
    }
    .build(fmnist())
    .unwrap();
    assert_ne!(
        other.calibration_source_indices,
        task.calibration_source_indices
    );
    assert!(
        task.description
            .contains("calibration = 60 normal held out")
    );
}

#[test]
fn calibration_fraction_outside_0_1_is_an_error() {
    for f in [0.0, 1.0, -0.5, f64::NAN, 0.001] {
        let p = OneClassProtocol {
            calibration_fraction: Some(f),
            ..protocol(&[3], None, 0)
        };
        match p.build(fmnist()) {
            Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, "calibration_fraction"),
            other => panic!("fraction {f}: {other:?}"),
        }
    }
}
