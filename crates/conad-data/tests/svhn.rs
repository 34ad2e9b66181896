//! The `svhn:DIR` loader on a generated fixture (`fixtures/svhn/generate.py`: compressed and
//! uncompressed level-5 MAT files) and the MAT reader's typed errors.

use std::path::PathBuf;

use conad_data::DataSpec;
use conad_data::mat5::read_mat5;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/svhn")
}

#[test]
fn loads_both_splits_in_row_major_order_with_digit_labels() {
    let spec: DataSpec = format!("svhn:{}", dir().display()).parse().unwrap();
    assert_eq!(spec.kind(), "svhn");
    let data = spec.load().unwrap();
    assert_eq!((data.train.n, data.test.n), (4, 3));
    // Label 10 is the digit 0.
    assert_eq!(data.train.labels, vec![0, 1, 2, 0]);
    assert_eq!(data.test.labels, vec![3, 0, 9]);
    assert_eq!(data.train.class_names[0], "0");
    for (split, n) in [(&data.train, 4), (&data.test, 3)] {
        assert_eq!((split.height, split.width, split.channels), (32, 32, 3));
        for k in 0..n {
            for (h, w, c) in [(0, 0, 0), (5, 17, 2), (31, 31, 1), (12, 3, 0)] {
                let got = split.images[((k * 32 + h) * 32 + w) * 3 + c];
                let want = ((7 * h + 3 * w + 50 * c + 11 * k) % 256) as u8;
                assert_eq!(got, want, "image {k} pixel ({h}, {w}, {c})");
            }
        }
    }
}

#[test]
fn mat_errors_name_the_file_and_the_problem() {
    let bytes = std::fs::read(dir().join("test_32x32.mat")).unwrap();
    // Truncated.
    let e = read_mat5(&bytes[..bytes.len() - 100], "cut.mat")
        .unwrap_err()
        .to_string();
    assert!(e.contains("cut.mat") && e.contains("truncated"), "{e}");
    // Not a MAT file.
    let e = read_mat5(&[0u8; 200], "zeros.mat").unwrap_err().to_string();
    assert!(e.contains("zeros.mat") && e.contains("level-5"), "{e}");
    // MATLAB 7.3 (HDF5).
    let mut hdf = b"MATLAB 7.3 MAT-file, Platform: GLNXA64".to_vec();
    hdf.resize(512, 0);
    let e = read_mat5(&hdf, "v73.mat").unwrap_err().to_string();
    assert!(e.contains("-v7"), "{e}");
    // A missing split names the accepted files.
    let tmp = std::env::temp_dir().join(format!("conad-svhn-missing-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let spec: DataSpec = format!("svhn:{}", tmp.display()).parse().unwrap();
    let e = spec.load().unwrap_err().to_string();
    assert!(e.contains("train_32x32.mat"), "{e}");
}
