//! Data sets compiled into the library, so `embedded:fashion-mnist` works with nothing installed.
//!
//! `fashion-mnist`: a real subset of Fashion-MNIST (Xiao, Rasul, Vollgraf 2017; MIT licence,
//! © 2017 Zalando SE — see `fixtures/fashion-mnist-subset/LICENSE`): the first 300 training
//! images of each class (3 000) and the first 100 test images of each class (1 000), in their
//! original order, as IDX `.gz` files written by `fixtures/generate.py` (1.7 MB in total).

use crate::dataset::LoadedData;
use crate::error::Result;
use crate::mnist::{self, IdxFiles, MnistKind};
use serde::{Deserialize, Serialize};

static FMNIST_TRAIN_IMAGES: &[u8] =
    include_bytes!("../../../fixtures/fashion-mnist-subset/train-images-idx3-ubyte.gz");
static FMNIST_TRAIN_LABELS: &[u8] =
    include_bytes!("../../../fixtures/fashion-mnist-subset/train-labels-idx1-ubyte.gz");
static FMNIST_TEST_IMAGES: &[u8] =
    include_bytes!("../../../fixtures/fashion-mnist-subset/t10k-images-idx3-ubyte.gz");
static FMNIST_TEST_LABELS: &[u8] =
    include_bytes!("../../../fixtures/fashion-mnist-subset/t10k-labels-idx1-ubyte.gz");

/// Training images per class in the embedded Fashion-MNIST subset.
pub const FASHION_MNIST_TRAIN_PER_CLASS: usize = 300;
/// Test images per class in the embedded Fashion-MNIST subset.
pub const FASHION_MNIST_TEST_PER_CLASS: usize = 100;

/// A data set compiled into the library.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmbeddedDataset {
    /// The Fashion-MNIST subset (3 000 train / 1 000 test, 28×28 grey).
    FashionMnist,
}

impl EmbeddedDataset {
    /// All embedded data sets.
    pub const ALL: [EmbeddedDataset; 1] = [EmbeddedDataset::FashionMnist];

    /// The name used in the spec (`embedded:NAME`).
    pub fn name(self) -> &'static str {
        match self {
            EmbeddedDataset::FashionMnist => "fashion-mnist",
        }
    }

    /// Decodes the embedded data set.
    ///
    /// # Errors
    /// Only if the embedded bytes were corrupted at build time (the IDX parse errors).
    pub fn load(self) -> Result<LoadedData> {
        match self {
            EmbeddedDataset::FashionMnist => {
                let files = IdxFiles {
                    train_images: (
                        FMNIST_TRAIN_IMAGES,
                        "embedded:fashion-mnist/train-images-idx3-ubyte.gz",
                    ),
                    train_labels: (
                        FMNIST_TRAIN_LABELS,
                        "embedded:fashion-mnist/train-labels-idx1-ubyte.gz",
                    ),
                    test_images: (
                        FMNIST_TEST_IMAGES,
                        "embedded:fashion-mnist/t10k-images-idx3-ubyte.gz",
                    ),
                    test_labels: (
                        FMNIST_TEST_LABELS,
                        "embedded:fashion-mnist/t10k-labels-idx1-ubyte.gz",
                    ),
                };
                let mut data = mnist::load_from_bytes(
                    files,
                    MnistKind::FashionMnist,
                    "embedded:fashion-mnist",
                )?;
                data.name = "fashion-mnist-subset".into();
                data.notes.push(format!(
                    "embedded subset of Fashion-MNIST (MIT licence, © 2017 Zalando SE): the first \
                     {FASHION_MNIST_TRAIN_PER_CLASS} training and first {FASHION_MNIST_TEST_PER_CLASS} test \
                     images of each class"
                ));
                Ok(data)
            }
        }
    }

    /// The raw embedded files `(name, bytes)` (for tests and for writing them out).
    pub fn files(self) -> [(&'static str, &'static [u8]); 4] {
        match self {
            EmbeddedDataset::FashionMnist => [
                ("train-images-idx3-ubyte.gz", FMNIST_TRAIN_IMAGES),
                ("train-labels-idx1-ubyte.gz", FMNIST_TRAIN_LABELS),
                ("t10k-images-idx3-ubyte.gz", FMNIST_TEST_IMAGES),
                ("t10k-labels-idx1-ubyte.gz", FMNIST_TEST_LABELS),
            ],
        }
    }
}
