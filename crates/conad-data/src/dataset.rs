//! In-memory data sets: uint8 images (N, H, W, C) in one contiguous buffer, labels and class names.
//!
//! A [`Dataset`] never holds a float copy of the images: models convert one mini-batch at a time.
//! A [`LoadedData`] groups the splits of one data set (train, optional val, test) which share one
//! label space and one image shape.

use crate::error::{Error, Result};
use crate::info::DatasetInfo;

/// One split of a data set.
///
/// # Shapes
/// `images` has `n · height · width · channels` bytes in (N, H, W, C) order: image `i` is the
/// slice `images[i·H·W·C .. (i+1)·H·W·C]`, row-major, channels interleaved (RGB or grey).
/// `labels` has `n` entries, each `< class_names.len()`.
///
/// The fields are public for zero-copy access; [`Dataset::new`] and [`Dataset::validate`] check
/// the invariants above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// Pixels, (N, H, W, C) contiguous.
    pub images: Vec<u8>,
    /// Number of images.
    pub n: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Channels: 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// One label per image.
    pub labels: Vec<u32>,
    /// Name of each class; the label is the index.
    pub class_names: Vec<String>,
}

impl Dataset {
    /// Builds a data set and checks its invariants.
    ///
    /// # Errors
    /// [`Error::InvalidDataset`] when the buffer length, label count or a label is inconsistent.
    pub fn new(
        images: Vec<u8>,
        n: usize,
        (height, width, channels): (usize, usize, usize),
        labels: Vec<u32>,
        class_names: Vec<String>,
    ) -> Result<Self> {
        let d = Self {
            images,
            n,
            height,
            width,
            channels,
            labels,
            class_names,
        };
        d.validate()?;
        Ok(d)
    }

    /// Checks the invariants documented on [`Dataset`].
    ///
    /// # Errors
    /// [`Error::InvalidDataset`] naming the first inconsistency.
    pub fn validate(&self) -> Result<()> {
        let bad = |problem: String| Err(Error::InvalidDataset { problem });
        if self.channels != 1 && self.channels != 3 {
            return bad(format!("channels = {}, expected 1 or 3", self.channels));
        }
        let expected = self
            .n
            .checked_mul(self.height)
            .and_then(|x| x.checked_mul(self.width))
            .and_then(|x| x.checked_mul(self.channels))
            .ok_or_else(|| Error::InvalidDataset {
                problem: "n·H·W·C overflows".into(),
            })?;
        if self.images.len() != expected {
            return bad(format!(
                "image buffer has {} bytes, expected n·H·W·C = {}·{}·{}·{} = {expected}",
                self.images.len(),
                self.n,
                self.height,
                self.width,
                self.channels
            ));
        }
        if self.n > 0 && (self.height == 0 || self.width == 0) {
            return bad(format!(
                "{} images of {}×{} pixels",
                self.n, self.height, self.width
            ));
        }
        if self.labels.len() != self.n {
            return bad(format!(
                "{} labels for {} images",
                self.labels.len(),
                self.n
            ));
        }
        if let Some((i, &l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= self.class_names.len())
        {
            return bad(format!(
                "label {l} of image {i} is out of range ({} class names)",
                self.class_names.len()
            ));
        }
        Ok(())
    }

    /// Number of bytes of one image (H·W·C).
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// The pixels of image `i`, (H, W, C) row-major.
    ///
    /// # Panics
    /// If `i >= n` (like slice indexing).
    pub fn image(&self, i: usize) -> &[u8] {
        let len = self.image_len();
        &self.images[i * len..(i + 1) * len]
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Number of classes (length of `class_names`).
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Image shape (H, W, C).
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.height, self.width, self.channels)
    }

    /// Number of images of each class (indexed by label).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0usize; self.class_names.len()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// Indices of the images whose label satisfies `keep`, in ascending order.
    pub fn indices_where(&self, mut keep: impl FnMut(u32) -> bool) -> Vec<usize> {
        self.labels
            .iter()
            .enumerate()
            .filter(|&(_, &l)| keep(l))
            .map(|(i, _)| i)
            .collect()
    }

    /// A new data set made of the images at `indices`, in that order (same class names).
    ///
    /// # Panics
    /// If an index is `>= n` (an internal-logic error, not a data error).
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let len = self.image_len();
        let mut images = Vec::with_capacity(indices.len() * len);
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Dataset {
            images,
            n: indices.len(),
            height: self.height,
            width: self.width,
            channels: self.channels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
        }
    }

    /// Every image turned `quarter_turns` × 90° counter-clockwise (`numpy.rot90` on the
    /// height/width axes; odd turns swap height and width). Used by FIRM's rotation ensemble
    /// (docs/reference.md §2.3), which scores each test rotation against the same-rotation training bank.
    pub fn rot90(&self, quarter_turns: u8) -> Dataset {
        let (h, w, c) = (self.height, self.width, self.channels);
        let k = quarter_turns % 4;
        let (oh, ow) = if k % 2 == 1 { (w, h) } else { (h, w) };
        let mut images = vec![0u8; self.images.len()];
        for (src, dst) in self
            .images
            .chunks_exact(h * w * c)
            .zip(images.chunks_exact_mut(h * w * c))
        {
            for i in 0..oh {
                for j in 0..ow {
                    // Output pixel (i, j) comes from input (y, x).
                    let (y, x) = match k {
                        0 => (i, j),
                        1 => (j, w - 1 - i),
                        2 => (h - 1 - i, w - 1 - j),
                        _ => (h - 1 - j, i),
                    };
                    let (o, s) = ((i * ow + j) * c, (y * w + x) * c);
                    dst[o..o + c].copy_from_slice(&src[s..s + c]);
                }
            }
        }
        Dataset {
            images,
            n: self.n,
            height: oh,
            width: ow,
            channels: c,
            labels: self.labels.clone(),
            class_names: self.class_names.clone(),
        }
    }

    /// The same images with 3 channels: grey images are replicated to R = G = B (docs/reference.md §4.1,
    /// Fashion-MNIST "convert to 3 channels by replication"); RGB data sets are returned as is.
    pub fn to_rgb(&self) -> Dataset {
        if self.channels == 3 {
            return self.clone();
        }
        let mut images = Vec::with_capacity(self.images.len() * 3);
        for &p in &self.images {
            images.extend_from_slice(&[p, p, p]);
        }
        Dataset {
            images,
            channels: 3,
            ..self.clone_without_pixels()
        }
    }

    /// The same labels with new class names and labels mapped by `map` (used for superclasses).
    pub(crate) fn relabel(mut self, map: impl Fn(u32) -> u32, class_names: Vec<String>) -> Dataset {
        for l in &mut self.labels {
            *l = map(*l);
        }
        self.class_names = class_names;
        self
    }

    fn clone_without_pixels(&self) -> Dataset {
        Dataset {
            images: Vec::new(),
            n: self.n,
            height: self.height,
            width: self.width,
            channels: self.channels,
            labels: self.labels.clone(),
            class_names: self.class_names.clone(),
        }
    }
}

/// The splits of one loaded data set, sharing one label space and one image shape.
#[derive(Clone, Debug)]
pub struct LoadedData {
    /// Short data set name (`"fashion-mnist"`, `"cifar10"`, `"breastmnist"`, `"folder"`, …).
    pub name: String,
    /// Where it came from (the spec string).
    pub source: String,
    /// Training split.
    pub train: Dataset,
    /// Validation split (MedMNIST only).
    pub val: Option<Dataset>,
    /// Test split.
    pub test: Dataset,
    /// The conventional normal class(es) of this data set when it has one (MedMNIST by name,
    /// docs/reference.md §4.2; image folders: `good`). `None` for one-vs-rest benchmarks (CIFAR, MNIST).
    pub default_normal_classes: Option<Vec<u32>>,
    /// Remarks made while loading (e.g. how many CIFAR-10 training batches were found).
    pub notes: Vec<String>,
}

impl LoadedData {
    /// Checks every split and that all splits share class names and image shape.
    ///
    /// # Errors
    /// [`Error::InvalidDataset`] or [`Error::SplitShapeMismatch`].
    pub fn validate(&self) -> Result<()> {
        self.train.validate()?;
        self.test.validate()?;
        let mut others = vec![("test", &self.test)];
        if let Some(v) = &self.val {
            v.validate()?;
            others.push(("val", v));
        }
        for (split, d) in others {
            if d.shape() != self.train.shape() {
                return Err(Error::SplitShapeMismatch {
                    origin: self.source.clone(),
                    split: split.to_string(),
                    got: d.shape(),
                    train: self.train.shape(),
                });
            }
            if d.class_names != self.train.class_names {
                return Err(Error::InvalidDataset {
                    problem: format!(
                        "{}: the {split} split's class names differ from the training split's",
                        self.source
                    ),
                });
            }
        }
        Ok(())
    }

    /// Class names (shared by all splits).
    pub fn class_names(&self) -> &[String] {
        &self.train.class_names
    }

    /// Counts and shapes per split, printable as a table (`Display`) or JSON (`Serialize`).
    pub fn info(&self) -> DatasetInfo {
        DatasetInfo::of(self)
    }

    /// Converts every split to 3 channels (see [`Dataset::to_rgb`]).
    pub fn to_rgb(&self) -> LoadedData {
        LoadedData {
            train: self.train.to_rgb(),
            val: self.val.as_ref().map(Dataset::to_rgb),
            test: self.test.to_rgb(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `numpy.rot90` of the 2×3 grey image [[1,2,3],[4,5,6]] (second image: +10, RGB check
    /// below):
    /// ```python
    /// import numpy as np; A = np.arange(1, 7).reshape(2, 3)
    /// [np.rot90(A, k).tolist() for k in range(4)]
    /// # [[[1,2,3],[4,5,6]], [[3,6],[2,5],[1,4]], [[6,5,4],[3,2,1]], [[4,1],[5,2],[6,3]]]
    /// ```
    #[test]
    fn rot90_matches_numpy() {
        let pixels: Vec<u8> = (1..=6).chain(11..=16).collect();
        let d = Dataset::new(
            pixels,
            2,
            (2, 3, 1),
            vec![0, 1],
            vec!["a".into(), "b".into()],
        )
        .unwrap();
        let expected: [(usize, usize, [u8; 6]); 4] = [
            (2, 3, [1, 2, 3, 4, 5, 6]),
            (3, 2, [3, 6, 2, 5, 1, 4]),
            (2, 3, [6, 5, 4, 3, 2, 1]),
            (3, 2, [4, 1, 5, 2, 6, 3]),
        ];
        for (k, (h, w, px)) in expected.iter().enumerate() {
            let r = d.rot90(k as u8);
            r.validate().unwrap();
            assert_eq!((r.height, r.width), (*h, *w), "k = {k}");
            assert_eq!(&r.images[..6], px, "k = {k}");
            let second: Vec<u8> = px.iter().map(|p| p + 10).collect();
            assert_eq!(&r.images[6..], &second[..], "k = {k}");
            assert_eq!(r.labels, d.labels);
        }
        // Four quarter turns are the identity; RGB pixels move as a whole.
        assert_eq!(d.rot90(1).rot90(3), d);
        let rgb = d.to_rgb().rot90(1);
        assert_eq!(&rgb.images[..6], &[3, 3, 3, 6, 6, 6]);
    }

    fn tiny() -> Dataset {
        // 3 images of 2×1×1: pixels [0,1], [2,3], [4,5]; labels 1, 0, 1.
        Dataset::new(
            (0..6).collect(),
            3,
            (2, 1, 1),
            vec![1, 0, 1],
            vec!["a".into(), "b".into()],
        )
        .unwrap()
    }

    #[test]
    fn image_select_and_counts() {
        let d = tiny();
        assert_eq!(d.image(1), &[2, 3]);
        assert_eq!(d.class_counts(), vec![1, 2]);
        assert_eq!(d.indices_where(|l| l == 1), vec![0, 2]);
        let s = d.select(&[2, 0]);
        assert_eq!(s.images, vec![4, 5, 0, 1]);
        assert_eq!(s.labels, vec![1, 1]);
        assert_eq!(s.n, 2);
        s.validate().unwrap();
    }

    #[test]
    fn to_rgb_replicates() {
        let d = tiny().to_rgb();
        assert_eq!(d.channels, 3);
        assert_eq!(d.image(0), &[0, 0, 0, 1, 1, 1]);
        d.validate().unwrap();
    }

    #[test]
    fn new_rejects_inconsistencies() {
        let names = vec!["a".to_string()];
        let e = Dataset::new(vec![0; 5], 3, (2, 1, 1), vec![0; 3], names.clone()).unwrap_err();
        assert!(e.to_string().contains("5 bytes"), "{e}");
        let e = Dataset::new(vec![0; 6], 3, (2, 1, 1), vec![0; 2], names.clone()).unwrap_err();
        assert!(e.to_string().contains("2 labels for 3 images"), "{e}");
        let e = Dataset::new(vec![0; 6], 3, (2, 1, 1), vec![0, 1, 0], names.clone()).unwrap_err();
        assert!(e.to_string().contains("label 1 of image 1"), "{e}");
        let e = Dataset::new(vec![0; 12], 3, (2, 1, 2), vec![0; 3], names).unwrap_err();
        assert!(e.to_string().contains("channels = 2"), "{e}");
    }
}
