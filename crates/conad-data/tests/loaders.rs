//! Loaders on the tiny fixtures written by `fixtures/generate.py`.
//!
//! Pixel formulas below are copied from generate.py; a wrong plane/interleave/row order or an
//! off-by-one in a header would break the per-pixel comparisons.

use conad_data::npy::{self, DType};
use conad_data::{
    Cifar100Labels, DataSpec, EmbeddedDataset, Error, FolderOptions, LoadedData, MnistKind,
    OneClassProtocol, ResizePolicy, cifar, folder, medmnist, mnist, npz,
};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn cifar_pixel(record: usize, c: usize, y: usize, x: usize) -> u8 {
    ((record * 37 + c * 101 + y * 7 + x * 3) % 256) as u8
}
fn idx_pixel(i: usize, y: usize, x: usize) -> u8 {
    ((i * 31 + y * 5 + x * 3) % 256) as u8
}
fn npz_pixel(i: usize, y: usize, x: usize, c: usize) -> u8 {
    ((i * 13 + y * 11 + x * 7 + c * 50) % 256) as u8
}
fn folder_pixel(i: usize, y: usize, x: usize, c: usize) -> u8 {
    ((i * 40 + y * 9 + x * 5 + c * 70) % 256) as u8
}

/// Checks every pixel of image `i` of `d` against `f(y, x, c)`.
fn assert_pixels(d: &conad_data::Dataset, i: usize, f: impl Fn(usize, usize, usize) -> u8) {
    let img = d.image(i);
    for y in 0..d.height {
        for x in 0..d.width {
            for c in 0..d.channels {
                assert_eq!(
                    img[(y * d.width + x) * d.channels + c],
                    f(y, x, c),
                    "image {i} at y={y} x={x} c={c}"
                );
            }
        }
    }
}

#[test]
fn cifar10_fixture() {
    let data = cifar::load_cifar10(&fixtures().join("cifar10")).unwrap();
    assert_eq!(data.train.labels, vec![0, 1, 2, 3, 4, 9]);
    assert_eq!(data.test.labels, vec![0, 5, 9, 3]);
    assert_eq!(data.train.shape(), (32, 32, 3));
    assert_eq!(data.class_names()[0], "airplane");
    assert_eq!(data.class_names().len(), 10);
    for i in 0..6 {
        assert_pixels(&data.train, i, |y, x, c| cifar_pixel(i, c, y, x));
    }
    for i in 0..4 {
        assert_pixels(&data.test, i, |y, x, c| cifar_pixel(100 + i, c, y, x));
    }
    assert!(
        data.notes[0].starts_with("2 training batch file(s) found"),
        "{:?}",
        data.notes
    );
}

#[test]
fn cifar10_batches_in_numeric_order_and_default_names() {
    let data = cifar::load_cifar10(&fixtures().join("cifar10-numeric")).unwrap();
    // data_batch_1, _2, _10 hold labels 1, 2, 0 (lexicographic order would give 1, 0, 2).
    assert_eq!(data.train.labels, vec![1, 2, 0]);
    assert_pixels(&data.train, 2, |y, x, c| cifar_pixel(10, c, y, x));
    assert_eq!(data.class_names(), cifar::CIFAR10_NAMES);
    assert!(data.notes[0].contains("data_batch_1.bin, data_batch_2.bin, data_batch_10.bin"));
    assert!(data.notes.iter().any(|n| n.contains("no batches.meta.txt")));
}

#[test]
fn cifar100_fixture_all_label_modes() {
    let dir = fixtures().join("cifar100");
    let fine = cifar::load_cifar100(&dir, Cifar100Labels::Fine).unwrap();
    assert_eq!(fine.train.labels, vec![4, 30, 31, 99, 0]);
    assert_eq!(fine.test.labels, vec![55, 25, 38]);
    assert_eq!(fine.class_names()[31], "elephant");
    assert_pixels(&fine.test, 1, |y, x, c| cifar_pixel(201, c, y, x));
    let coarse = cifar::load_cifar100(&dir, Cifar100Labels::Coarse).unwrap();
    assert_eq!(coarse.train.labels, vec![0, 0, 11, 13, 4]);
    assert_eq!(coarse.test.labels, vec![0, 6, 11]);
    assert_eq!(coarse.class_names().len(), 20);
    assert_eq!(coarse.class_names()[11], "large_omnivores_and_herbivores");
    let csi = cifar::load_cifar100(&dir, Cifar100Labels::CoarseCsi).unwrap();
    // CSI's list: 30 dolphin → 15, 31 elephant → 0, 25 couch → 5, 38 kangaroo → 9.
    assert_eq!(csi.train.labels, vec![0, 15, 0, 13, 4]);
    assert_eq!(csi.test.labels, vec![0, 5, 9]);
}

#[test]
fn cifar100_coarse_mismatch_is_reported() {
    let mut bytes = std::fs::read(fixtures().join("cifar100/train.bin")).unwrap();
    bytes[cifar::CIFAR100_RECORD * 2] = 3; // record 2: fine 31 (elephant) claims superclass 3
    let e = cifar::parse_cifar100(&bytes, "train.bin").unwrap_err();
    assert!(
        matches!(
            e,
            Error::CoarseLabelMismatch {
                record: 2,
                fine: 31,
                coarse: 3,
                expected: 11,
                ..
            }
        ),
        "{e}"
    );
}

fn check_idx(data: &LoadedData) {
    assert_eq!(data.train.len(), 20);
    assert_eq!(data.test.len(), 10);
    assert_eq!(data.train.shape(), (7, 5, 1));
    assert_eq!(
        data.train.labels,
        (0..20).map(|i| i % 10).collect::<Vec<u32>>()
    );
    assert_eq!(
        data.test.labels,
        (0..10).map(|i| (3 * i) % 10).collect::<Vec<u32>>()
    );
    for i in [0, 7, 19] {
        assert_pixels(&data.train, i, |y, x, _| idx_pixel(i, y, x));
    }
    assert_pixels(&data.test, 9, |y, x, _| idx_pixel(1009, y, x));
}

#[test]
fn idx_plain_and_gz_agree() {
    let plain = mnist::load_idx_dir(&fixtures().join("idx/plain"), MnistKind::Mnist).unwrap();
    let gz = mnist::load_idx_dir(&fixtures().join("idx/gz"), MnistKind::FashionMnist).unwrap();
    check_idx(&plain);
    check_idx(&gz);
    assert_eq!(plain.train.images, gz.train.images);
    assert_eq!(plain.class_names()[3], "3");
    assert_eq!(gz.class_names()[9], "Ankle boot");
}

#[test]
fn idx_count_mismatch_and_missing_files() {
    let dir = fixtures().join("idx/plain");
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    let (ti, tl, si) = (
        read("train-images-idx3-ubyte"),
        read("train-labels-idx1-ubyte"),
        read("t10k-images-idx3-ubyte"),
    );
    let files = mnist::IdxFiles {
        train_images: (&si, "t10k-images"),  // 10 images
        train_labels: (&tl, "train-labels"), // 20 labels
        test_images: (&ti, "train-images"),
        test_labels: (&tl, "train-labels"),
    };
    let e = mnist::load_from_bytes(files, MnistKind::Mnist, "mem").unwrap_err();
    assert!(
        matches!(
            e,
            Error::CountMismatch {
                images: 10,
                labels: 20,
                ..
            }
        ),
        "{e}"
    );

    let e = mnist::load_idx_dir(&fixtures().join("cifar10"), MnistKind::FashionMnist).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::MissingFile { .. }));
    assert!(
        msg.contains("train-images-idx3-ubyte.gz") && msg.contains("cifar10"),
        "{msg}"
    );

    let e = "fashion-mnist:/nonexistent/fm"
        .parse::<DataSpec>()
        .unwrap()
        .load()
        .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/fm"), "{e}");
}

#[test]
fn idx_label_out_of_range() {
    let dir = fixtures().join("idx/plain");
    let ti = std::fs::read(dir.join("train-images-idx3-ubyte")).unwrap();
    let mut tl = std::fs::read(dir.join("train-labels-idx1-ubyte")).unwrap();
    tl[8 + 5] = 12;
    let files = mnist::IdxFiles {
        train_images: (&ti, "ti"),
        train_labels: (&tl, "tl"),
        test_images: (&ti, "ti"),
        test_labels: (&tl, "tl"),
    };
    let e = mnist::load_from_bytes(files, MnistKind::Mnist, "mem").unwrap_err();
    assert!(
        matches!(
            e,
            Error::LabelOutOfRange {
                index: 5,
                label: 12,
                num_classes: 10,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn medmnist_grey_uint8_labels() {
    let data = medmnist::load_medmnist(&fixtures().join("medmnist/breastmnist.npz"), None).unwrap();
    assert_eq!(data.name, "breastmnist");
    assert_eq!(data.class_names(), ["malignant", "normal, benign"]);
    assert_eq!(data.default_normal_classes, Some(vec![1]));
    assert_eq!(data.train.labels, vec![1, 0, 1, 1, 0]);
    assert_eq!(data.val.as_ref().unwrap().labels, vec![1, 0]);
    assert_eq!(data.test.labels, vec![0, 1, 1]);
    assert_eq!(data.train.shape(), (6, 6, 1));
    assert_pixels(&data.train, 4, |y, x, _| npz_pixel(4, y, x, 0));
    assert_pixels(data.val.as_ref().unwrap(), 1, |y, x, _| {
        npz_pixel(11, y, x, 0)
    });
    assert_pixels(&data.test, 2, |y, x, _| npz_pixel(22, y, x, 0));
}

#[test]
fn medmnist_rgb_int64_labels_and_name_override() {
    let path = fixtures().join("medmnist/rgbmnist.npz");
    let data = medmnist::load_medmnist(&path, None).unwrap();
    assert_eq!(data.train.shape(), (4, 5, 3));
    assert_eq!(data.class_names(), ["0", "1", "2"]);
    assert_eq!(data.default_normal_classes, None);
    assert_eq!(data.train.labels, vec![0, 2, 1, 2]);
    assert_pixels(&data.train, 3, |y, x, c| npz_pixel(3, y, x, c));
    assert_pixels(&data.test, 1, |y, x, c| npz_pixel(21, y, x, c));
    // Overridden name: PneumoniaMNIST has 2 classes, label 2 is out of range.
    let e = medmnist::load_medmnist(&path, Some("PneumoniaMNIST")).unwrap_err();
    assert!(
        matches!(
            e,
            Error::LabelOutOfRange {
                label: 2,
                num_classes: 2,
                ..
            }
        ),
        "{e}"
    );
    let spec: DataSpec = format!("medmnist:{},name=octmnist", path.display())
        .parse()
        .unwrap();
    let data = spec.load().unwrap();
    assert_eq!(data.default_normal_classes, Some(vec![3]));
    assert_eq!(data.class_names()[3], "normal");
}

#[test]
fn npz_missing_key_lists_keys() {
    let bytes = std::fs::read(fixtures().join("medmnist/breastmnist.npz")).unwrap();
    let mut z = npz::Npz::from_bytes(&bytes, "b.npz").unwrap();
    assert_eq!(z.keys().len(), 6);
    let e = z.read("train_masks").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("train_masks") && msg.contains("train_images, train_labels"),
        "{msg}"
    );
    let e = medmnist::load_medmnist(Path::new("/nonexistent/breastmnist.npz"), None).unwrap_err();
    assert!(
        matches!(e, Error::MissingFile { .. })
            && e.to_string().contains("/nonexistent/breastmnist.npz")
    );
}

// ------------------------------------------------------------------------------------------------
// npy

fn npy_path(name: &str) -> PathBuf {
    fixtures().join("npy").join(name)
}

#[test]
fn npy_reads_numpy_files() {
    // numpy: (np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5 - 1.0)
    let expected: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
    for f in ["f32_3x4.npy", "f32_3x4_v2.npy", "f32_3x4_v3.npy"] {
        let (data, r, c) = npy::read_f32_matrix(npy_path(f)).unwrap();
        assert_eq!((r, c), (3, 4), "{f}");
        assert_eq!(data, expected, "{f}");
    }
    let (data, r, c) = npy::read_f32_matrix(npy_path("f64_2x3.npy")).unwrap();
    assert_eq!((r, c), (2, 3));
    assert_eq!(
        data,
        vec![0.1f64 as f32, -2.5, 3e10, 1e-300f64 as f32, 0.0, -0.0]
    );
    assert_eq!(
        npy::read_f32_matrix(npy_path("f32_0x4.npy")).unwrap(),
        (vec![], 0, 4)
    );
    let (v, shape) = npy::read_i64_array(npy_path("i64_5.npy")).unwrap();
    assert_eq!(shape, vec![5]);
    assert_eq!(v, vec![0, -1, 1 << 40, -(1 << 62), 7]);
    let (v, shape) = npy::read_u8_array(npy_path("u8_2x3x2.npy")).unwrap();
    assert_eq!(shape, vec![2, 3, 2]);
    assert_eq!(v, (0..12).map(|i| i * 20).collect::<Vec<u8>>());
    let a = npy::read_array(npy_path("f64_2x3.npy")).unwrap();
    assert_eq!(a.data.dtype(), DType::F64);
}

#[test]
fn npy_rejects_unsupported_layouts() {
    let e = npy::read_f32_matrix(npy_path("f32_3x4_fortran.npy")).unwrap_err();
    assert!(
        matches!(e, Error::UnsupportedArray { .. }) && e.to_string().contains("Fortran"),
        "{e}"
    );
    let e = npy::read_f32_matrix(npy_path("f32_3x4_bigendian.npy")).unwrap_err();
    assert!(e.to_string().contains("'>f4'"), "{e}");
    let e = npy::read_f32_matrix(npy_path("i64_5.npy")).unwrap_err();
    assert!(e.to_string().contains("2-D"), "{e}");
    let e = npy::read_f32_matrix(npy_path("u8_2x3x2.npy")).unwrap_err();
    assert!(e.to_string().contains("found shape [2, 3, 2]"), "{e}");
    let e = npy::read_u8_array(npy_path("f64_2x3.npy")).unwrap_err();
    assert!(e.to_string().contains("expected uint8"), "{e}");
    let e = npy::read_array(npy_path("missing.npy")).unwrap_err();
    assert!(e.to_string().contains("missing.npy"), "{e}");
}

#[test]
fn npy_writer_is_byte_identical_to_numpy() {
    let dir = std::env::temp_dir().join(format!("conad-data-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("w.npy");
    let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
    npy::write_f32_matrix(&out, &data, 3, 4).unwrap();
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(npy_path("f32_3x4.npy")).unwrap()
    );
    npy::write_f32_matrix(&out, &[], 0, 4).unwrap();
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(npy_path("f32_0x4.npy")).unwrap()
    );
    // The u8 header numpy wrote matches ours too.
    let numpy_u8 = std::fs::read(npy_path("u8_2x3x2.npy")).unwrap();
    let ours = npy::encode_header(DType::U8, &[2, 3, 2]);
    assert_eq!(&numpy_u8[..ours.len()], &ours[..]);
    let numpy_i64 = std::fs::read(npy_path("i64_5.npy")).unwrap();
    let ours = npy::encode_header(DType::I64, &[5]);
    assert_eq!(&numpy_i64[..ours.len()], &ours[..]);
    // The whole int64 file, values included, is what numpy wrote.
    let values = npy::read_array(npy_path("i64_5.npy"))
        .unwrap()
        .into_i64("i64_5.npy")
        .unwrap();
    let out_i64 = dir.join("l.npy");
    npy::write_i64_vector(&out_i64, &values).unwrap();
    assert_eq!(std::fs::read(&out_i64).unwrap(), numpy_i64);
    std::fs::remove_dir_all(&dir).unwrap();
    let e = npy::write_f32_matrix("/nonexistent-dir/x.npy", &[1.0], 1, 1).unwrap_err();
    assert!(e.to_string().contains("/nonexistent-dir/x.npy"), "{e}");
}

// ------------------------------------------------------------------------------------------------
// Image folders

fn opts(size: Option<(usize, usize)>, channels: conad_data::ChannelMode) -> FolderOptions {
    FolderOptions {
        size,
        channels,
        resize: ResizePolicy::Stretch,
    }
}

#[test]
fn folder_mixed_sizes_need_a_target_size() {
    let e = folder::load_folder(&fixtures().join("folder"), &FolderOptions::default()).unwrap_err();
    assert!(matches!(e, Error::InconsistentImageSizes { .. }), "{e}");
    assert!(e.to_string().contains("size=224x224"));
}

#[test]
fn folder_layout_labels_and_exact_pixels() {
    use conad_data::ChannelMode::*;
    // Native size of test/good/000.png (RGB 12×12, image 3): no resampling, exact pixels.
    let data =
        folder::load_folder(&fixtures().join("folder"), &opts(Some((12, 12)), Auto)).unwrap();
    assert_eq!(data.class_names(), ["good", "crack", "scratch"]);
    assert_eq!(data.train.labels, vec![0, 0, 0]);
    assert_eq!(data.test.labels, vec![0, 1, 1, 2]);
    assert_eq!(
        data.train.shape(),
        (12, 12, 3),
        "auto → RGB because colour images exist"
    );
    assert_eq!(data.default_normal_classes, Some(vec![0]));
    assert_pixels(&data.test, 0, |y, x, c| folder_pixel(3, y, x, c));
    assert!(
        data.notes.iter().any(|n| n.contains("readme.txt")),
        "{:?}",
        data.notes
    );

    // train/good/000.png: grey 10×12 → replicated to RGB, exact at native size.
    let data = folder::load_folder(&fixtures().join("folder"), &opts(Some((10, 12)), Rgb)).unwrap();
    assert_pixels(&data.train, 0, |y, x, _| folder_pixel(0, y, x, 0));
    // train/good/002.bmp: RGB 8×12, exact at native size.
    let data = folder::load_folder(&fixtures().join("folder"), &opts(Some((8, 12)), Rgb)).unwrap();
    assert_pixels(&data.train, 2, |y, x, c| folder_pixel(2, y, x, c));
    // Forced grey: the RGB bmp is converted with PIL's formula.
    let data = folder::load_folder(&fixtures().join("folder"), &opts(Some((8, 12)), Gray)).unwrap();
    assert_eq!(data.train.channels, 1);
    assert_pixels(&data.train, 2, |y, x, _| {
        folder::rgb_to_luma(
            folder_pixel(2, y, x, 0),
            folder_pixel(2, y, x, 1),
            folder_pixel(2, y, x, 2),
        )
    });
    // The jpg (lossy, chroma-subsampled) decodes like PIL's decoder, up to IDCT/upsampling
    // rounding. Golden values (PIL 9.4 / libjpeg):
    //   a = np.asarray(Image.open("fixtures/folder/train/good/001.jpg").convert("RGB")).astype(int)
    //   a.sum() == 104691; a[0, 0] == [46, 105, 195]; a[5, 7] == [116, 181, 99]
    let data = folder::load_folder(&fixtures().join("folder"), &opts(Some((16, 16)), Rgb)).unwrap();
    let img = data.train.image(1);
    let sum: i64 = img.iter().map(|&p| i64::from(p)).sum();
    assert!((sum - 104_691).abs() <= 768, "sum {sum}");
    for ((y, x), expected) in [((0, 0), [46, 105, 195]), ((5, 7), [116, 181, 99])] {
        for c in 0..3 {
            let got = i32::from(img[(y * 16 + x) * 3 + c]);
            assert!(
                (got - expected[c]).abs() <= 4,
                "({y},{x},{c}): {got} vs PIL {}",
                expected[c]
            );
        }
    }
}

#[test]
fn folder_center_crop_and_spec() {
    let dir = fixtures().join("folder");
    let spec: DataSpec = format!(
        "folder:{},size=6x6,channels=3,resize=center-crop",
        dir.display()
    )
    .parse()
    .unwrap();
    let data = spec.load().unwrap();
    assert_eq!(data.test.shape(), (6, 6, 3));
    assert_eq!(data.source, spec.to_string());
    // test/crack/001.png is 20×10 (H×W): center-crop scales by 0.6 to 12×6 and keeps rows 3..9,
    // so its top row is not the top row of the stretched version.
    let stretch =
        folder::load_folder(&dir, &opts(Some((6, 6)), conad_data::ChannelMode::Rgb)).unwrap();
    assert_ne!(data.test.image(2), stretch.test.image(2));
}

#[test]
fn folder_uniform_sizes_and_normal_alias() {
    let data = folder::load_folder(
        &fixtures().join("folder-uniform"),
        &FolderOptions::default(),
    )
    .unwrap();
    assert_eq!(data.class_names(), ["normal", "defect"]);
    assert_eq!(data.train.shape(), (8, 6, 1));
    assert_eq!(data.test.labels, vec![0, 1, 1]);
    for i in 0..3 {
        assert_pixels(&data.train, i, |y, x, _| folder_pixel(10 + i, y, x, 0));
    }
    for i in 0..3 {
        assert_pixels(&data.test, i, |y, x, _| folder_pixel(13 + i, y, x, 0));
    }
}

#[test]
fn folder_bad_layouts_say_what_was_expected_and_found() {
    // Pointing at train/ instead of its parent.
    let e = folder::load_folder(&fixtures().join("folder/train"), &FolderOptions::default())
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::BadFolderLayout { .. }), "{msg}");
    assert!(
        msg.contains("expected a train/ folder") && msg.contains("found good/"),
        "{msg}"
    );
    // A folder without train/good: fixtures/ itself has many folders but no train/.
    let e =
        folder::load_folder(&fixtures().join("cifar10"), &FolderOptions::default()).unwrap_err();
    assert!(e.to_string().contains("data_batch_1.bin"), "{e}");
    let e = folder::load_folder(Path::new("/nonexistent/mvtec"), &FolderOptions::default())
        .unwrap_err();
    assert!(matches!(e, Error::MissingFile { .. }) && e.to_string().contains("/nonexistent/mvtec"));
}

#[test]
fn a_folder_of_training_images_only_loads_with_an_empty_test_split() {
    // fixtures/folder/train copied without test/: normal images only, as for `conad fit`.
    let dir = std::env::temp_dir().join(format!("conad-train-only-{}", std::process::id()));
    let good = dir.join("train/good");
    std::fs::create_dir_all(&good).unwrap();
    let src = fixtures().join("folder/train/good");
    let mut names: Vec<_> = std::fs::read_dir(&src).unwrap().flatten().collect();
    names.sort_by_key(|e| e.file_name());
    for e in &names {
        std::fs::copy(e.path(), good.join(e.file_name())).unwrap();
    }
    let opts = FolderOptions {
        size: Some((8, 8)),
        ..FolderOptions::default()
    };
    let full = folder::load_folder(&fixtures().join("folder"), &opts).unwrap();
    let data = folder::load_folder(&dir, &opts).unwrap();
    assert_eq!(data.train.images, full.train.images);
    assert_eq!(data.test.len(), 0);
    assert!(
        data.notes.iter().any(|n| n.contains("no test/ folder")),
        "{:?}",
        data.notes
    );
    // The one-class task has no evaluation images, and a calibration hold-out still works.
    let task = OneClassProtocol {
        calibration_fraction: Some(0.5),
        ..OneClassProtocol::default()
    }
    .build(&data)
    .unwrap();
    assert_eq!(task.test.len(), 0);
    assert_eq!(
        task.train.len() + task.calibration.unwrap().len(),
        full.train.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ------------------------------------------------------------------------------------------------
// Spec, info, embedded

#[test]
fn spec_loads_each_kind_from_fixtures() {
    let f = fixtures();
    for (spec, n_train, n_test) in [
        (format!("cifar10:{}", f.join("cifar10").display()), 6, 4),
        (
            format!("cifar100:{},labels=fine", f.join("cifar100").display()),
            5,
            3,
        ),
        (format!("mnist:{}", f.join("idx/plain").display()), 20, 10),
        (
            format!("fashion-mnist:{}", f.join("idx/gz").display()),
            20,
            10,
        ),
        (
            format!("medmnist:{}", f.join("medmnist/breastmnist.npz").display()),
            5,
            3,
        ),
        (
            format!("folder:{},size=8x8", f.join("folder").display()),
            3,
            4,
        ),
        ("embedded:fashion-mnist".to_string(), 3000, 1000),
    ] {
        let data = spec.parse::<DataSpec>().unwrap().load().unwrap();
        assert_eq!(
            (data.train.len(), data.test.len()),
            (n_train, n_test),
            "{spec}"
        );
        assert_eq!(data.source, spec);
    }
}

#[test]
fn info_table_and_json() {
    let data = medmnist::load_medmnist(&fixtures().join("medmnist/breastmnist.npz"), None).unwrap();
    let info = data.info();
    let table = info.to_string();
    // label  class           train  val  test
    assert!(table.contains("image shape (H×W×C): 6×6×1"), "{table}");
    assert!(
        table.contains("default normal class: 1 (normal, benign)"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.contains("normal, benign") && !l.contains("default"))
        .unwrap();
    let nums: Vec<&str> = row.split_whitespace().rev().take(3).collect();
    assert_eq!(nums, ["2", "1", "3"], "{row}"); // test, val, train counts of label 1
    let total = table.lines().find(|l| l.contains("total")).unwrap();
    assert_eq!(
        total.split_whitespace().collect::<Vec<_>>(),
        ["total", "5", "2", "3"]
    );
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["splits"][1]["split"], "val");
    assert_eq!(json["splits"][0]["per_class"][1]["count"], 3);
    assert_eq!(json["splits"][0]["per_class"][1]["name"], "normal, benign");
    assert_eq!(json["default_normal_classes"][0], 1);
}

#[test]
fn embedded_fashion_mnist_subset() {
    let total: usize = EmbeddedDataset::FashionMnist
        .files()
        .iter()
        .map(|(_, b)| b.len())
        .sum();
    assert!(total <= 2_000_000, "embedded subset is {total} bytes");
    let data = EmbeddedDataset::FashionMnist.load().unwrap();
    assert_eq!(data.train.class_counts(), vec![300; 10]);
    assert_eq!(data.test.class_counts(), vec![100; 10]);
    assert_eq!(data.train.shape(), (28, 28, 1));
    assert_eq!(data.class_names()[0], "T-shirt/top");
    // Real images, not noise: Fashion-MNIST has a black background (corner pixels mostly 0) and
    // a mean intensity near 73 (training set mean 0.286 × 255).
    let mean = data.train.images.iter().map(|&p| f64::from(p)).sum::<f64>()
        / data.train.images.len() as f64;
    assert!((60.0..90.0).contains(&mean), "mean {mean}");
    let dark_corners = (0..data.train.len())
        .filter(|&i| data.train.image(i)[0] == 0)
        .count();
    assert!(dark_corners > 2900, "{dark_corners}");
}

/// A scratch copy of `fixtures/folder-uniform` that a test may break.
struct ScratchFolder(PathBuf);

impl ScratchFolder {
    fn new(tag: &str) -> Self {
        let dst = std::env::temp_dir().join(format!("conad-data-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dst);
        fn copy(src: &Path, dst: &Path) {
            std::fs::create_dir_all(dst).unwrap();
            for e in std::fs::read_dir(src).unwrap() {
                let e = e.unwrap();
                let to = dst.join(e.file_name());
                if e.path().is_dir() {
                    copy(&e.path(), &to);
                } else {
                    std::fs::copy(e.path(), to).unwrap();
                }
            }
        }
        copy(&fixtures().join("folder-uniform"), &dst);
        Self(dst)
    }
}

impl Drop for ScratchFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn folder_broken_image_empty_class_and_ambiguous_normal() {
    let s = ScratchFolder::new("broken");
    std::fs::write(
        s.0.join("train/normal/b.png"),
        b"\x89PNG\r\n\x1a\nnot really",
    )
    .unwrap();
    let e = folder::load_folder(&s.0, &FolderOptions::default()).unwrap_err();
    assert!(matches!(e, Error::ImageDecode { .. }), "{e}");
    assert!(e.to_string().contains("train/normal/b.png"), "{e}");

    let s = ScratchFolder::new("empty");
    std::fs::create_dir(s.0.join("test/scratch")).unwrap();
    std::fs::write(s.0.join("test/scratch/notes.txt"), b"x").unwrap();
    let e = folder::load_folder(&s.0, &FolderOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::BadFolderLayout { .. }), "{msg}");
    assert!(
        msg.contains("test/scratch") && msg.contains("found notes.txt"),
        "{msg}"
    );

    let s = ScratchFolder::new("both");
    std::fs::create_dir(s.0.join("train/good")).unwrap();
    let e = folder::load_folder(&s.0, &FolderOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("exactly one of good/ and normal/"),
        "{e}"
    );
}
