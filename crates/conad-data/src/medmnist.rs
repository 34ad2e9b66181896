//! MedMNIST v2 `.npz` archives (Yang et al., Scientific Data 2023) and their normal-label
//! conventions (docs/reference.md §4.2).
//!
//! Keys: `train_images`, `train_labels`, `val_images`, `val_labels`, `test_images`, `test_labels`.
//! Images: uint8 `(N, H, W)` (grey) or `(N, H, W, 3)` (RGB). Labels: uint8 or int64, `(N, 1)` or
//! `(N,)`; multi-label arrays (ChestMNIST's `(N, 14)`) are rejected.
//!
//! The data set name is taken from the file stem (`breastmnist.npz`, `breastmnist_224.npz` →
//! `breastmnist`) unless overridden. Known names carry class names and the normal label used by
//! the one-class protocol:
//!
//! | name | labels | normal |
//! |---|---|---|
//! | breastmnist | 0 malignant, 1 normal + benign | 1 |
//! | pneumoniamnist | 0 normal, 1 pneumonia | 0 |
//! | octmnist | 0 CNV, 1 DME, 2 drusen, 3 normal | 3 |
//!
//! Other names get classes `"0"…"K−1"` with K = largest label + 1 and no default normal class.

use crate::dataset::{Dataset, LoadedData};
use crate::error::{Error, Result};
use crate::npz::Npz;
use std::io::{Read, Seek};
use std::path::Path;

/// The label dictionary and normal label of a known MedMNIST data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MedMnistConvention {
    /// Data set name (lower case, as in the `medmnist` package).
    pub name: &'static str,
    /// Class names, label order.
    pub class_names: &'static [&'static str],
    /// The label of the normal ("healthy") class.
    pub normal_label: u32,
}

/// Conventions for the MedMNIST data sets docs/reference.md §4.2 uses.
pub const CONVENTIONS: [MedMnistConvention; 3] = [
    MedMnistConvention {
        name: "breastmnist",
        class_names: &["malignant", "normal, benign"],
        normal_label: 1,
    },
    MedMnistConvention {
        name: "pneumoniamnist",
        class_names: &["normal", "pneumonia"],
        normal_label: 0,
    },
    MedMnistConvention {
        name: "octmnist",
        class_names: &[
            "choroidal neovascularization",
            "diabetic macular edema",
            "drusen",
            "normal",
        ],
        normal_label: 3,
    },
];

/// The convention of a data set name (case-insensitive), if known.
pub fn convention(name: &str) -> Option<&'static MedMnistConvention> {
    let lower = name.to_ascii_lowercase();
    CONVENTIONS.iter().find(|c| c.name == lower)
}

/// The data set name implied by a file path: the stem, lower-cased, without a MedMNIST+ size
/// suffix (`_28`, `_64`, `_128`, `_224`).
pub fn name_from_path(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match stem.rsplit_once('_') {
        Some((base, size)) if !base.is_empty() && ["28", "64", "128", "224"].contains(&size) => {
            base.to_string()
        }
        _ => stem,
    }
}

/// Most classes accepted for a data set without a known convention.
const MAX_UNKNOWN_CLASSES: i64 = 1000;

struct RawSplit {
    images: Vec<u8>,
    n: usize,
    shape: (usize, usize, usize),
    labels: Vec<i64>,
    origin: String,
}

fn read_split<R: Read + Seek>(npz: &mut Npz<R>, split: &str) -> Result<RawSplit> {
    let img_key = format!("{split}_images");
    let lab_key = format!("{split}_labels");
    let origin_img = format!("{}[{img_key}]", npz.origin());
    let origin_lab = format!("{}[{lab_key}]", npz.origin());
    let images = npz.read(&img_key)?;
    let unsupported = |key: &str, origin: &str, problem: String| Error::UnsupportedArray {
        origin: origin.to_string(),
        key: Some(key.to_string()),
        problem,
    };
    let (n, shape) = match images.shape[..] {
        [n, h, w] => (n, (h, w, 1)),
        [n, h, w, 3] => (n, (h, w, 3)),
        _ => {
            return Err(unsupported(
                &img_key,
                &origin_img,
                format!(
                    "images must have shape (N, H, W) or (N, H, W, 3), found {:?}",
                    images.shape
                ),
            ));
        }
    };
    let images = images.into_u8(&origin_img)?;
    let labels = npz.read(&lab_key)?;
    let labels_n = match labels.shape[..] {
        [m] | [m, 1] => m,
        _ => {
            return Err(unsupported(
                &lab_key,
                &origin_lab,
                format!(
                    "labels must have shape (N, 1) or (N,), found {:?} (multi-label data sets such as \
                     ChestMNIST are not supported)",
                    labels.shape
                ),
            ));
        }
    };
    let labels = labels.into_i64(&origin_lab)?;
    if labels_n != n {
        return Err(Error::CountMismatch {
            images_origin: origin_img,
            images: n,
            labels_origin: origin_lab,
            labels: labels_n,
        });
    }
    Ok(RawSplit {
        images,
        n,
        shape,
        labels,
        origin: origin_lab,
    })
}

/// Loads a MedMNIST-style archive from any reader.
///
/// `name` selects the label convention (see the module docs).
///
/// # Errors
/// [`Error::MissingKey`], [`Error::UnsupportedArray`], [`Error::CountMismatch`],
/// [`Error::LabelOutOfRange`], [`Error::SplitShapeMismatch`] and the npy/zip parse errors.
pub fn load_from_npz<R: Read + Seek>(mut npz: Npz<R>, name: &str) -> Result<LoadedData> {
    let train = read_split(&mut npz, "train")?;
    let test = read_split(&mut npz, "test")?;
    let val = if npz.contains("val_images") || npz.contains("val_labels") {
        Some(read_split(&mut npz, "val")?)
    } else {
        None
    };
    let conv = convention(name);
    let max_label = [Some(&train), Some(&test), val.as_ref()]
        .into_iter()
        .flatten()
        .flat_map(|s| s.labels.iter().copied())
        .max()
        .unwrap_or(0);
    let class_names: Vec<String> = match conv {
        Some(c) => c.class_names.iter().map(|s| s.to_string()).collect(),
        // Labels are class indices: cap the class count so a corrupt label cannot make us
        // allocate millions of names (MedMNIST has at most 14 classes).
        None => (0..=max_label.clamp(0, MAX_UNKNOWN_CLASSES - 1))
            .map(|l| l.to_string())
            .collect(),
    };
    let k = class_names.len();
    let build = |s: RawSplit| -> Result<Dataset> {
        if let Some((i, &l)) = s
            .labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l < 0 || l as usize >= k)
        {
            return Err(Error::LabelOutOfRange {
                origin: s.origin,
                index: i,
                label: l,
                num_classes: k,
            });
        }
        let labels = s.labels.iter().map(|&l| l as u32).collect();
        Dataset::new(s.images, s.n, s.shape, labels, class_names.clone())
    };
    let mut notes = Vec::new();
    match conv {
        Some(c) => notes.push(format!(
            "MedMNIST convention '{}': normal label {} ('{}')",
            c.name, c.normal_label, c.class_names[c.normal_label as usize]
        )),
        None => notes.push(format!(
            "'{name}' is not a MedMNIST name with a known normal label (known: {}); pass the normal \
             class explicitly, or name=… in the spec",
            CONVENTIONS.map(|c| c.name).join(", ")
        )),
    }
    if val.is_none() {
        notes.push("no val_images/val_labels in the archive: no validation split".into());
    }
    let data = LoadedData {
        name: name.to_string(),
        source: format!("medmnist:{}", npz.origin()),
        train: build(train)?,
        val: val.map(build).transpose()?,
        test: build(test)?,
        default_normal_classes: conv.map(|c| vec![c.normal_label]),
        notes,
    };
    data.validate()?;
    Ok(data)
}

/// Loads a MedMNIST `.npz` file; `name` overrides the name detected from the file stem.
///
/// # Errors
/// [`Error::MissingFile`] naming the path, plus those of [`load_from_npz`].
pub fn load_medmnist(path: &Path, name: Option<&str>) -> Result<LoadedData> {
    let name = name
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| name_from_path(path));
    load_from_npz(Npz::open(path)?, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_paths() {
        assert_eq!(
            name_from_path(Path::new("/d/breastmnist.npz")),
            "breastmnist"
        );
        assert_eq!(
            name_from_path(Path::new("BreastMNIST_224.npz")),
            "breastmnist"
        );
        assert_eq!(name_from_path(Path::new("octmnist_64.npz")), "octmnist");
        assert_eq!(name_from_path(Path::new("my_data_3.npz")), "my_data_3");
        assert_eq!(convention("PneumoniaMNIST").unwrap().normal_label, 0);
        assert_eq!(convention("octmnist").unwrap().normal_label, 3);
        assert_eq!(convention("breastmnist").unwrap().normal_label, 1);
        assert!(convention("dermamnist").is_none());
    }
}
