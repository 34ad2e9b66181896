//! SVHN, the official cropped-digit format (`train_32x32.mat`, `test_32x32.mat`; Netzer et al.
//! 2011): `X` is a 32 × 32 × 3 × N `uint8` array in MATLAB's column-major order, `y` an N × 1
//! array of labels 1–10 where 10 stands for the digit 0. Read with [`crate::mat5`]; classes are
//! the digits 0–9 (label 10 → 0). The `extra` split is not read.

use std::path::Path;

use crate::cifar::read_file;
use crate::dataset::{Dataset, LoadedData};
use crate::error::{Error, Result};
use crate::mat5::{MatValues, read_mat5};

const SIDE: usize = 32;

/// One split: images (N, 32, 32, 3) and digit labels.
fn read_split(path: &Path) -> Result<(Vec<u8>, Vec<u32>)> {
    let origin = path.display().to_string();
    let bytes = read_file(
        path,
        "SVHN split",
        "expected the official cropped-digit files train_32x32.mat and test_32x32.mat",
    )?;
    let arrays = read_mat5(&bytes, &origin)?;
    let x = arrays
        .get("X")
        .ok_or_else(|| Error::corrupt(&origin, "no array `X` (the images)"))?;
    let y = arrays
        .get("y")
        .ok_or_else(|| Error::corrupt(&origin, "no array `y` (the labels)"))?;
    let (MatValues::U8(px), [h, w, c, n]) = (&x.values, x.dims.as_slice()) else {
        return Err(Error::corrupt(
            &origin,
            format!(
                "`X` must be a 32 × 32 × 3 × N uint8 array, got {:?}",
                x.dims
            ),
        ));
    };
    let (h, w, c, n) = (*h, *w, *c, *n);
    if (h, w, c) != (SIDE, SIDE, 3) {
        return Err(Error::corrupt(
            &origin,
            format!("`X` must be 32 × 32 × 3 × N, got {:?}", x.dims),
        ));
    }
    let labels: Vec<u32> = match &y.values {
        MatValues::F64(v) => v
            .iter()
            .enumerate()
            .map(|(i, &l)| match l {
                10.0 => Ok(0),
                l if (1.0..=9.0).contains(&l) && l.fract() == 0.0 => Ok(l as u32),
                l => Err(Error::corrupt(
                    &origin,
                    format!("label {l} of image {i}: SVHN labels are 1–10 (10 = digit 0)"),
                )),
            })
            .collect::<Result<_>>()?,
        MatValues::U8(v) => v
            .iter()
            .map(|&l| if l == 10 { 0 } else { u32::from(l) })
            .collect(),
    };
    if labels.len() != n {
        return Err(Error::corrupt(
            &origin,
            format!("{n} images but {} labels", labels.len()),
        ));
    }
    // Column-major (h, w, c, n) → row-major (n, h, w, c).
    let mut images = vec![0u8; n * h * w * c];
    for i in 0..n {
        for ch in 0..c {
            for col in 0..w {
                for row in 0..h {
                    images[((i * h + row) * w + col) * c + ch] =
                        px[row + h * (col + w * (ch + c * i))];
                }
            }
        }
    }
    Ok((images, labels))
}

/// Loads SVHN from `dir` (`train_32x32.mat`, `test_32x32.mat`).
///
/// # Errors
/// [`Error::MissingFile`] for a missing file; [`Error::Corrupt`] naming the file for anything
/// that is not SVHN's layout.
pub fn load_svhn(dir: &Path) -> Result<LoadedData> {
    let names: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let (train_px, train_labels) = read_split(&dir.join("train_32x32.mat"))?;
    let (test_px, test_labels) = read_split(&dir.join("test_32x32.mat"))?;
    let shape = (SIDE, SIDE, 3);
    let data = LoadedData {
        name: "svhn".into(),
        source: format!("svhn:{}", dir.display()),
        train: Dataset::new(
            train_px,
            train_labels.len(),
            shape,
            train_labels,
            names.clone(),
        )?,
        val: None,
        test: Dataset::new(test_px, test_labels.len(), shape, test_labels, names)?,
        default_normal_classes: None,
        notes: vec!["label 10 of the .mat files is the digit 0".into()],
    };
    data.validate()?;
    Ok(data)
}
