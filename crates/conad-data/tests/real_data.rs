//! Official counts on the real data sets. Ignored by default (CI may not have the data):
//!
//! ```text
//! cargo test -p conad-data --test real_data -- --ignored
//! ```
//!
//! Data locations: `$CONAD_DATA_DIR/{fashion-mnist, cifar10, medmnist/breastmnist.npz}` when the
//! variable is set; otherwise Debian's `/usr/share/datasets/fashion-mnist` and the project's
//! `../shared/data/{cifar10, medmnist}`.

use conad_data::{DataSpec, EmbeddedDataset, LoadedData, OneClassProtocol};
use std::path::PathBuf;

fn locate(sub: &str, fallback: PathBuf) -> PathBuf {
    match std::env::var_os("CONAD_DATA_DIR") {
        Some(d) => PathBuf::from(d).join(sub),
        None => fallback,
    }
}

fn shared(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(sub)
}

fn load(spec: String) -> LoadedData {
    let t = std::time::Instant::now();
    let data = spec
        .parse::<DataSpec>()
        .unwrap()
        .load()
        .unwrap_or_else(|e| panic!("{spec}: {e}"));
    eprintln!(
        "{spec}: loaded in {:.3} s\n{}",
        t.elapsed().as_secs_f64(),
        data.info()
    );
    data
}

#[test]
#[ignore = "needs Fashion-MNIST (apt-get install dataset-fashion-mnist)"]
fn fashion_mnist_official_counts() {
    let dir = locate("fashion-mnist", "/usr/share/datasets/fashion-mnist".into());
    let data = load(format!("fashion-mnist:{}", dir.display()));
    assert_eq!(data.train.len(), 60_000);
    assert_eq!(data.test.len(), 10_000);
    assert_eq!(data.train.class_counts(), vec![6000; 10]);
    assert_eq!(data.test.class_counts(), vec![1000; 10]);
    assert_eq!(data.train.shape(), (28, 28, 1));
    // The embedded subset is the first 300 / 100 images of each class, in order.
    let sub = EmbeddedDataset::FashionMnist.load().unwrap();
    for (full, part, k) in [(&data.train, &sub.train, 300), (&data.test, &sub.test, 100)] {
        let mut keep: Vec<usize> = (0..10u32)
            .flat_map(|c| full.indices_where(|l| l == c).into_iter().take(k))
            .collect();
        keep.sort_unstable();
        let expected = full.select(&keep);
        assert_eq!(expected.labels, part.labels);
        assert_eq!(expected.images, part.images);
    }
}

#[test]
#[ignore = "needs shared/data/medmnist/breastmnist.npz"]
fn breastmnist_official_counts() {
    let file = locate(
        "medmnist/breastmnist.npz",
        shared("medmnist/breastmnist.npz"),
    );
    let data = load(format!("medmnist:{}", file.display()));
    assert_eq!(data.name, "breastmnist");
    assert_eq!(data.train.len(), 546);
    assert_eq!(data.val.as_ref().unwrap().len(), 78);
    assert_eq!(data.test.len(), 156);
    assert_eq!(data.train.class_counts(), vec![147, 399]);
    assert_eq!(data.val.as_ref().unwrap().class_counts(), vec![21, 57]);
    assert_eq!(data.test.class_counts(), vec![42, 114]);
    let task = OneClassProtocol::default().build(&data).unwrap();
    assert_eq!(task.normal_classes, vec![1]);
    assert_eq!(task.train.len(), 399);
    assert_eq!(task.num_test_anomalies(), 42);
}

#[test]
#[ignore = "needs shared/data/cifar10"]
fn cifar10_shared_copy_counts() {
    let dir = locate("cifar10", shared("cifar10"));
    let data = load(format!("cifar10:{}", dir.display()));
    assert_eq!(data.train.len(), 30_000);
    assert_eq!(data.train.class_counts(), vec![3000; 10]);
    assert_eq!(data.test.len(), 10_000);
    assert_eq!(data.test.class_counts(), vec![1000; 10]);
    assert!(
        data.notes[0].starts_with("3 training batch file(s) found"),
        "{:?}",
        data.notes
    );
    // PROVENANCE.md: test-set mean RGB (126.0, 123.7, 114.9).
    let mut sums = [0u64; 3];
    for (k, &p) in data.test.images.iter().enumerate() {
        sums[k % 3] += u64::from(p);
    }
    let n = data.test.len() as f64 * 1024.0;
    let means: Vec<f64> = sums.iter().map(|&s| s as f64 / n).collect();
    for (m, e) in means.iter().zip([126.0, 123.7, 114.9]) {
        assert!((m - e).abs() < 0.06, "means {means:?}");
    }
}
