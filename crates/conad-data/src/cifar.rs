//! CIFAR-10 and CIFAR-100 in the official binary layout (Krizhevsky 2009,
//! <https://www.cs.toronto.edu/~kriz/cifar.html>).
//!
//! - CIFAR-10: `data_batch_*.bin` (all that exist, in numeric order) and `test_batch.bin`;
//!   3073-byte records = 1 label byte + 1024 red + 1024 green + 1024 blue bytes (32×32 row-major
//!   planes). Class names from `batches.meta.txt` when present, else the standard ten.
//! - CIFAR-100: `train.bin`, `test.bin`; 3074-byte records = coarse label byte, fine label byte,
//!   3072 pixel bytes. Every record's coarse label is checked against the official fine→coarse
//!   array (docs/reference.md §4.1); names from `coarse_label_names.txt` / `fine_label_names.txt` when present.
//!
//! Both loaders also look inside the folder the official archives extract to
//! (`cifar-10-batches-bin/`, `cifar-100-binary/`) when given its parent.
//!
//! Pixels are converted from planar CHW to the crate's interleaved HWC layout.

use crate::dataset::{Dataset, LoadedData};
use crate::error::{Error, Result};
use crate::superclass::{COARSE_NAMES, FINE_NAMES, FINE_TO_COARSE, SuperclassMapping};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;
const PIXELS: usize = 3 * PLANE;
/// Bytes per CIFAR-10 record.
pub const CIFAR10_RECORD: usize = 1 + PIXELS;
/// Bytes per CIFAR-100 record.
pub const CIFAR100_RECORD: usize = 2 + PIXELS;

/// The standard CIFAR-10 class names (label order).
pub const CIFAR10_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Which CIFAR-100 labels a loaded data set carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cifar100Labels {
    /// The 20 superclasses of the official mapping (the one-class benchmark; default).
    #[default]
    Coarse,
    /// The 20 superclasses of the CSI repository's list (docs/reference.md §4.1 last column, §6.20).
    CoarseCsi,
    /// The 100 fine classes.
    Fine,
}

/// Converts planar records into interleaved HWC pixels and labels.
///
/// `record` is the record size, `label_at` the offset of the label byte used as the label.
fn decode_records(bytes: &[u8], record: usize, label_at: usize) -> (Vec<u8>, Vec<u8>) {
    let n = bytes.len() / record;
    let mut images = vec![0u8; n * PIXELS];
    images
        .par_chunks_mut(PIXELS)
        .zip(bytes.par_chunks_exact(record))
        .for_each(|(dst, rec)| {
            let px = &rec[record - PIXELS..];
            let (r, rest) = px.split_at(PLANE);
            let (g, b) = rest.split_at(PLANE);
            for (((d, &r), &g), &b) in dst.chunks_exact_mut(3).zip(r).zip(g).zip(b) {
                d[0] = r;
                d[1] = g;
                d[2] = b;
            }
        });
    let labels = bytes
        .chunks_exact(record)
        .map(|rec| rec[label_at])
        .collect();
    (images, labels)
}

fn check_len(bytes: &[u8], record: usize, origin: &str) -> Result<()> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        let n = bytes.len() / record;
        return Err(Error::truncated(
            origin,
            format!(
                "CIFAR records of {record} bytes (file size must be a non-zero multiple of {record})"
            ),
            ((n + 1) * record) as u64,
            bytes.len() as u64,
        ));
    }
    Ok(())
}

/// Parses a CIFAR-10 binary batch: `(pixels (N,32,32,3), labels)`.
///
/// # Errors
/// [`Error::Truncated`] if the length is not a non-zero multiple of 3073;
/// [`Error::LabelOutOfRange`] if a label is ≥ 10.
pub fn parse_cifar10(bytes: &[u8], origin: &str) -> Result<(Vec<u8>, Vec<u32>)> {
    check_len(bytes, CIFAR10_RECORD, origin)?;
    if let Some((i, rec)) = bytes
        .chunks_exact(CIFAR10_RECORD)
        .enumerate()
        .find(|(_, r)| r[0] >= 10)
    {
        return Err(Error::LabelOutOfRange {
            origin: origin.to_string(),
            index: i,
            label: i64::from(rec[0]),
            num_classes: 10,
        });
    }
    let (images, labels) = decode_records(bytes, CIFAR10_RECORD, 0);
    Ok((images, labels.into_iter().map(u32::from).collect()))
}

/// Parses a CIFAR-100 binary file: `(pixels (N,32,32,3), fine labels)`, after checking each
/// record's coarse label against the official mapping.
///
/// # Errors
/// [`Error::Truncated`], [`Error::LabelOutOfRange`] (fine ≥ 100 or coarse ≥ 20) or
/// [`Error::CoarseLabelMismatch`].
pub fn parse_cifar100(bytes: &[u8], origin: &str) -> Result<(Vec<u8>, Vec<u32>)> {
    check_len(bytes, CIFAR100_RECORD, origin)?;
    for (i, rec) in bytes.chunks_exact(CIFAR100_RECORD).enumerate() {
        let (coarse, fine) = (rec[0], rec[1]);
        if fine >= 100 {
            return Err(Error::LabelOutOfRange {
                origin: origin.to_string(),
                index: i,
                label: i64::from(fine),
                num_classes: 100,
            });
        }
        if coarse >= 20 {
            return Err(Error::LabelOutOfRange {
                origin: origin.to_string(),
                index: i,
                label: i64::from(coarse),
                num_classes: 20,
            });
        }
        let expected = FINE_TO_COARSE[fine as usize];
        if coarse != expected {
            return Err(Error::CoarseLabelMismatch {
                origin: origin.to_string(),
                record: i,
                fine,
                coarse,
                expected,
            });
        }
    }
    let (images, labels) = decode_records(bytes, CIFAR100_RECORD, 1);
    Ok((images, labels.into_iter().map(u32::from).collect()))
}

/// Parses a names file (one name per line; blank lines ignored) and checks it has exactly
/// `expected` names.
///
/// # Errors
/// [`Error::Corrupt`] naming the file when the count differs.
pub fn parse_names(text: &str, expected: usize, origin: &str) -> Result<Vec<String>> {
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.len() != expected {
        return Err(Error::corrupt(
            origin,
            format!(
                "lists {} class names, expected {expected} (one per line) — fix or delete the file to use the \
                 standard names",
                names.len()
            ),
        ));
    }
    Ok(names)
}

pub(crate) fn read_file(path: &Path, what: &str, hint: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::MissingFile {
                what: what.to_string(),
                path: path.to_path_buf(),
                hint: hint.to_string(),
            }
        } else {
            Error::io(path, e)
        }
    })
}

fn read_names(path: &Path, expected: usize, default: &[&str]) -> Result<Vec<String>> {
    if path.is_file() {
        let bytes = read_file(path, "class-name file", "")?;
        parse_names(
            &String::from_utf8_lossy(&bytes),
            expected,
            &path.display().to_string(),
        )
    } else {
        Ok(default.iter().map(|s| s.to_string()).collect())
    }
}

/// `dir`, or `dir/sub` when `dir` lacks `probe` but `dir/sub` has it (official archive layout).
fn resolve_dir(dir: &Path, probe: &str, sub: &str) -> PathBuf {
    if !dir.join(probe).exists() && dir.join(sub).join(probe).exists() {
        dir.join(sub)
    } else {
        dir.to_path_buf()
    }
}

fn require_dir(dir: &Path, what: &str) -> Result<()> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(Error::MissingFile {
            what: format!("{what} folder"),
            path: dir.to_path_buf(),
            hint: "give the folder that holds the binary batch files".into(),
        })
    }
}

/// The `data_batch_<k>.bin` files of `dir`, sorted by `k` numerically.
fn cifar10_train_batches(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(k) = name
            .strip_prefix("data_batch_")
            .and_then(|r| r.strip_suffix(".bin"))
            .and_then(|k| k.parse::<u64>().ok())
        {
            found.push((k, entry.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Loads CIFAR-10 from `dir` (see the module docs).
///
/// # Errors
/// [`Error::MissingFile`] when `dir`, every `data_batch_*.bin` or `test_batch.bin` is missing; the
/// parse errors of [`parse_cifar10`]; [`Error::Corrupt`] for a bad `batches.meta.txt`.
pub fn load_cifar10(dir: &Path) -> Result<LoadedData> {
    require_dir(dir, "CIFAR-10")?;
    let given = dir;
    let dir = resolve_dir(dir, "test_batch.bin", "cifar-10-batches-bin");
    let batches = cifar10_train_batches(&dir)?;
    if batches.is_empty() {
        return Err(Error::MissingFile {
            what: "CIFAR-10 training batches".into(),
            path: dir.join("data_batch_1.bin"),
            hint:
                "expected data_batch_1.bin … data_batch_5.bin (binary version, 3073-byte records)"
                    .into(),
        });
    }
    let names = read_names(&dir.join("batches.meta.txt"), 10, &CIFAR10_NAMES)?;
    let test_path = dir.join("test_batch.bin");
    let mut files: Vec<PathBuf> = batches.clone();
    files.push(test_path);
    let parsed: Vec<Result<(Vec<u8>, Vec<u32>)>> = files
        .par_iter()
        .map(|p| {
            let bytes = read_file(
                p,
                "CIFAR-10 batch",
                "expected data_batch_*.bin and test_batch.bin (binary version)",
            )?;
            parse_cifar10(&bytes, &p.display().to_string())
        })
        .collect();
    let mut parsed = parsed.into_iter().collect::<Result<Vec<_>>>()?;
    let (test_images, test_labels) = parsed.pop().unwrap_or_default();
    let mut images = Vec::with_capacity(parsed.iter().map(|p| p.0.len()).sum());
    let mut labels = Vec::new();
    for (im, l) in parsed {
        images.extend_from_slice(&im);
        labels.extend(l);
    }
    let shape = (SIDE, SIDE, 3);
    let n_train = labels.len();
    let train = Dataset::new(images, n_train, shape, labels, names.clone())?;
    let test = Dataset::new(test_images, test_labels.len(), shape, test_labels, names)?;
    let batch_names: Vec<String> = batches
        .iter()
        .filter_map(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .collect();
    let mut notes = vec![format!(
        "{} training batch file(s) found ({}); the official set has 5",
        batches.len(),
        batch_names.join(", ")
    )];
    if dir != given {
        notes.push(format!("read the batches from {}", dir.display()));
    }
    if !dir.join("batches.meta.txt").is_file() {
        notes.push("no batches.meta.txt: using the standard CIFAR-10 class names".into());
    }
    let data = LoadedData {
        name: "cifar10".into(),
        source: format!("cifar10:{}", dir.display()),
        train,
        val: None,
        test,
        default_normal_classes: None,
        notes,
    };
    data.validate()?;
    Ok(data)
}

/// Loads CIFAR-100 from `dir` with the requested label granularity (see the module docs).
///
/// # Errors
/// [`Error::MissingFile`] for a missing `train.bin`/`test.bin`; the errors of [`parse_cifar100`].
pub fn load_cifar100(dir: &Path, labels: Cifar100Labels) -> Result<LoadedData> {
    require_dir(dir, "CIFAR-100")?;
    let given = dir;
    let dir = resolve_dir(dir, "train.bin", "cifar-100-binary");
    let fine_names = read_names(&dir.join("fine_label_names.txt"), 100, &FINE_NAMES)?;
    let coarse_names = read_names(&dir.join("coarse_label_names.txt"), 20, &COARSE_NAMES)?;
    let load = |file: &str| -> Result<Dataset> {
        let p = dir.join(file);
        let bytes = read_file(
            &p,
            "CIFAR-100 split",
            "expected train.bin and test.bin (binary version, 3074-byte records)",
        )?;
        let (images, l) = parse_cifar100(&bytes, &p.display().to_string())?;
        Dataset::new(images, l.len(), (SIDE, SIDE, 3), l, fine_names.clone())
    };
    let (train, test) = rayon::join(|| load("train.bin"), || load("test.bin"));
    let (mut train, mut test) = (train?, test?);
    let mut notes = Vec::new();
    if dir != given {
        notes.push(format!("read the files from {}", dir.display()));
    }
    match labels {
        Cifar100Labels::Fine => notes.push("labels: the 100 fine classes".into()),
        Cifar100Labels::Coarse | Cifar100Labels::CoarseCsi => {
            let mapping = if labels == Cifar100Labels::Coarse {
                SuperclassMapping::Official
            } else {
                SuperclassMapping::Csi
            };
            let table = mapping.fine_to_coarse();
            let map = |l: u32| u32::from(table[l as usize]);
            train = train.relabel(map, coarse_names.clone());
            test = test.relabel(map, coarse_names);
            notes.push(format!(
                "labels: the 20 superclasses, {} mapping",
                mapping.describe()
            ));
        }
    }
    let data = LoadedData {
        name: "cifar100".into(),
        source: format!("cifar100:{}", dir.display()),
        train,
        val: None,
        test,
        default_normal_classes: None,
        notes,
    };
    data.validate()?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record10(label: u8, fill: impl Fn(usize, usize) -> u8) -> Vec<u8> {
        let mut r = vec![label];
        for c in 0..3 {
            for p in 0..PLANE {
                r.push(fill(c, p));
            }
        }
        r
    }

    #[test]
    fn planar_to_interleaved() {
        let bytes = record10(7, |c, p| (c * 100 + p % 50) as u8);
        let (im, l) = parse_cifar10(&bytes, "mem").unwrap();
        assert_eq!(l, vec![7]);
        // pixel p = 33 (y = 1, x = 1): R = 33, G = 133, B = 233.
        assert_eq!(&im[33 * 3..33 * 3 + 3], &[33, 133, 233]);
    }

    #[test]
    fn bad_lengths_and_labels() {
        let mut bytes = record10(3, |_, _| 0);
        bytes.pop();
        assert!(matches!(
            parse_cifar10(&bytes, "m").unwrap_err(),
            Error::Truncated { .. }
        ));
        assert!(matches!(
            parse_cifar10(&[], "m").unwrap_err(),
            Error::Truncated { .. }
        ));
        let bytes = record10(10, |_, _| 0);
        assert!(matches!(
            parse_cifar10(&bytes, "m").unwrap_err(),
            Error::LabelOutOfRange { label: 10, .. }
        ));
    }

    #[test]
    fn cifar100_coarse_check() {
        let mut rec = vec![FINE_TO_COARSE[30], 30];
        rec.extend(std::iter::repeat_n(0u8, PIXELS));
        assert_eq!(parse_cifar100(&rec, "m").unwrap().1, vec![30]);
        // CSI's list puts fine 31 (elephant) in superclass 0; the official mapping says 11.
        rec[0] = 0;
        rec[1] = 31;
        let e = parse_cifar100(&rec, "train.bin").unwrap_err();
        assert!(
            matches!(
                e,
                Error::CoarseLabelMismatch {
                    record: 0,
                    fine: 31,
                    coarse: 0,
                    expected: 11,
                    ..
                }
            ),
            "{e}"
        );
        rec[1] = 100;
        assert!(matches!(
            parse_cifar100(&rec, "m").unwrap_err(),
            Error::LabelOutOfRange { label: 100, .. }
        ));
    }

    #[test]
    fn names_file() {
        let names = parse_names("a\nb\n\n c \n", 3, "m").unwrap();
        assert_eq!(names, vec!["a", "b", "c"]);
        assert!(parse_names("a\nb\n", 3, "m").is_err());
        assert!(parse_names("a\nb\nc\nd\n", 3, "m").is_err());
    }
}
