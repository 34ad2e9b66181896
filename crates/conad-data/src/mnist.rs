//! MNIST and Fashion-MNIST from a folder of IDX files (see [`crate::idx`] for the format and the
//! accepted file names), and from IDX bytes held in memory (the embedded subset).
//!
//! Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): 60 000 / 10 000 grey 28×28 images, 6 000 / 1 000
//! per class; classes 0 T-shirt/top … 9 Ankle boot (docs/reference.md §4.1).

use crate::dataset::{Dataset, LoadedData};
use crate::error::{Error, Result};
use crate::idx;
use std::path::{Path, PathBuf};

/// Fashion-MNIST class names (label order).
pub const FASHION_MNIST_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Which IDX data set a folder holds (only the class names differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MnistKind {
    /// Handwritten digits, classes "0"…"9".
    Mnist,
    /// Zalando's Fashion-MNIST.
    FashionMnist,
}

impl MnistKind {
    /// The data set name used in specs and reports.
    pub fn name(self) -> &'static str {
        match self {
            MnistKind::Mnist => "mnist",
            MnistKind::FashionMnist => "fashion-mnist",
        }
    }

    /// Class names.
    pub fn class_names(self) -> Vec<String> {
        match self {
            MnistKind::Mnist => (0..10).map(|d| d.to_string()).collect(),
            MnistKind::FashionMnist => FASHION_MNIST_NAMES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// The four IDX files of a data set, as bytes, with their names for messages.
#[derive(Clone, Copy, Debug)]
pub struct IdxFiles<'a> {
    /// Training images (IDX3), plain or gzip.
    pub train_images: (&'a [u8], &'a str),
    /// Training labels (IDX1).
    pub train_labels: (&'a [u8], &'a str),
    /// Test images (IDX3).
    pub test_images: (&'a [u8], &'a str),
    /// Test labels (IDX1).
    pub test_labels: (&'a [u8], &'a str),
}

fn split(images: (&[u8], &str), labels: (&[u8], &str), names: &[String]) -> Result<Dataset> {
    let (im, lab) = rayon::join(
        || idx::parse_images(images.0, images.1),
        || idx::parse_labels(labels.0, labels.1),
    );
    let (im, lab) = (im?, lab?);
    if im.n != lab.len() {
        return Err(Error::CountMismatch {
            images_origin: images.1.to_string(),
            images: im.n,
            labels_origin: labels.1.to_string(),
            labels: lab.len(),
        });
    }
    if let Some((i, &l)) = lab
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= names.len())
    {
        return Err(Error::LabelOutOfRange {
            origin: labels.1.to_string(),
            index: i,
            label: i64::from(l),
            num_classes: names.len(),
        });
    }
    Dataset::new(
        im.pixels,
        im.n,
        (im.rows, im.cols, 1),
        lab.into_iter().map(u32::from).collect(),
        names.to_vec(),
    )
}

/// Parses the four IDX files of an MNIST-like data set held in memory (train and test in parallel).
///
/// # Errors
/// The IDX parse errors, [`Error::CountMismatch`], [`Error::LabelOutOfRange`],
/// [`Error::SplitShapeMismatch`].
pub fn load_from_bytes(files: IdxFiles<'_>, kind: MnistKind, source: &str) -> Result<LoadedData> {
    let names = kind.class_names();
    let (train, test) = rayon::join(
        || split(files.train_images, files.train_labels, &names),
        || split(files.test_images, files.test_labels, &names),
    );
    let data = LoadedData {
        name: kind.name().into(),
        source: source.to_string(),
        train: train?,
        val: None,
        test: test?,
        default_normal_classes: None,
        notes: Vec::new(),
    };
    data.validate()?;
    Ok(data)
}

/// File-name candidates for `prefix` (`train`/`t10k`) and `part` (`images-idx3`/`labels-idx1`).
fn candidates(prefix: &str, part: &str) -> [String; 4] {
    let dotted = part.replacen('-', ".", 1);
    [
        format!("{prefix}-{part}-ubyte.gz"),
        format!("{prefix}-{part}-ubyte"),
        format!("{prefix}-{dotted}-ubyte.gz"),
        format!("{prefix}-{dotted}-ubyte"),
    ]
}

fn find_file(dir: &Path, prefix: &str, part: &str, kind: MnistKind) -> Result<PathBuf> {
    let c = candidates(prefix, part);
    c.iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::MissingFile {
            what: format!(
                "{} {prefix} {}",
                kind.name(),
                part.split('-').next().unwrap_or(part)
            ),
            path: dir.join(&c[0]),
            hint: format!("expected one of {} in {}", c.join(", "), dir.display()),
        })
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Loads MNIST or Fashion-MNIST from a folder of IDX files (plain or `.gz`).
///
/// # Errors
/// [`Error::MissingFile`] naming the missing file and the accepted names, plus those of
/// [`load_from_bytes`].
pub fn load_idx_dir(dir: &Path, kind: MnistKind) -> Result<LoadedData> {
    if !dir.is_dir() {
        return Err(Error::MissingFile {
            what: format!("{} folder", kind.name()),
            path: dir.to_path_buf(),
            hint: "give the folder holding train-images-idx3-ubyte[.gz] and friends (Debian: apt-get install \
                   dataset-fashion-mnist → /usr/share/datasets/fashion-mnist)"
                .into(),
        });
    }
    let paths = [
        find_file(dir, "train", "images-idx3", kind)?,
        find_file(dir, "train", "labels-idx1", kind)?,
        find_file(dir, "t10k", "images-idx3", kind)?,
        find_file(dir, "t10k", "labels-idx1", kind)?,
    ];
    let ((a, b), (c, d)) = rayon::join(
        || (read(&paths[0]), read(&paths[1])),
        || (read(&paths[2]), read(&paths[3])),
    );
    let bytes = [a?, b?, c?, d?];
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let files = IdxFiles {
        train_images: (&bytes[0], &names[0]),
        train_labels: (&bytes[1], &names[1]),
        test_images: (&bytes[2], &names[2]),
        test_labels: (&bytes[3], &names[3]),
    };
    load_from_bytes(files, kind, &format!("{}:{}", kind.name(), dir.display()))
}
