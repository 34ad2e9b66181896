//! Data sets and evaluation protocols for conad.
//!
//! - **Loaders** for CIFAR-10/100 (binary), MNIST/Fashion-MNIST (IDX, plain or gzip), MedMNIST
//!   (`.npz`), MVTec-like image folders, and a Fashion-MNIST subset compiled into the library.
//!   Every parser also works on bytes in memory and returns a typed [`Error`] on bad input.
//! - A **spec string** names a data set everywhere in conad ([`DataSpec`], e.g.
//!   `cifar10:/data/cifar10`, `folder:/data/bottle,size=64x64`, `embedded:fashion-mnist`).
//! - [`Dataset`] holds uint8 images `(N, H, W, C)` in one buffer (never a float copy of the set),
//!   labels and class names; [`LoadedData`] groups train / val / test.
//! - **Protocols** (docs/reference.md §4): [`OneClassProtocol`] (one-vs-rest, contamination γ of
//!   docs/reference.md §4.3/§6.19, stratified subsampling), CIFAR-100 superclasses with the official or
//!   CSI mapping ([`SuperclassMapping`], docs/reference.md §4.1/§6.20), MedMNIST normal-label conventions
//!   ([`medmnist::CONVENTIONS`], docs/reference.md §4.2). All randomness comes from [`conad_rng::SeedTree`].
//! - [`npy`]: a small `.npy` reader/writer, also used by the CLI for embedding matrices.
//!
//! ```
//! use conad_data::{DataSpec, OneClassProtocol};
//! let data = "embedded:fashion-mnist".parse::<DataSpec>()?.load()?;
//! assert_eq!(data.train.len(), 3000);
//! let task = OneClassProtocol { normal_classes: vec![0], contamination: Some(0.05), seed: 7, ..Default::default() }
//!     .build(&data)?;
//! assert_eq!(task.num_contaminants(), 16); // round(0.05 · 300 / 0.95)
//! assert_eq!(task.num_test_anomalies(), 900);
//! println!("{}", data.info());
//! # Ok::<(), conad_data::Error>(())
//! ```

pub mod cifar;
mod dataset;
pub mod embedded;
mod error;
pub mod folder;
pub mod gz;
pub mod idx;
mod image_file;
mod info;
pub mod mat5;
pub mod medmnist;
pub mod mnist;
pub mod npy;
pub mod npz;
mod one_class;
mod spec;
pub mod subsample;
pub mod superclass;
pub mod svhn;

pub use cifar::Cifar100Labels;
pub use dataset::{Dataset, LoadedData};
pub use embedded::EmbeddedDataset;
pub use error::{Error, Result};
pub use folder::{ChannelMode, FolderOptions, ResizePolicy};
pub use image_file::{ImagePreprocessing, find_image_files};
pub use info::{ClassCount, DatasetInfo, SplitInfo};
pub use mnist::MnistKind;
pub use one_class::{OneClassProtocol, OneClassTask, contamination_count};
pub use spec::{DataSpec, SPEC_KINDS, SpecKind};
pub use subsample::Subsample;
pub use superclass::SuperclassMapping;
