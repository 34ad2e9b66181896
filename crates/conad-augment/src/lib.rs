//! Image augmentation for contrastive anomaly detection (docs/reference.md §3, §0, §7).
//!
//! - [`Image`]: f32 (C, H, W) in [0, 1], from the uint8 (H, W, C) layout datasets are stored in.
//! - Operations with **torchvision 0.14 tensor-backend** semantics (float arithmetic, no uint8
//!   quantisation between operations, no antialias when shrinking): [`resize::resized_crop`]
//!   (bilinear, `align_corners=False`), [`crop::RandomResizedCrop`] (`get_params` incl. the
//!   centre-crop fallback), [`flip`], [`color_jitter`], [`hsv`], [`grayscale`], [`blur`];
//!   exact permutations [`rotate`], [`cutperm`]; CON2 contexts [`invert`], [`equalize`] (PIL
//!   `ImageOps.equalize`), vertical flip; [`normalize`], [`pad`].
//!   The papers' PyTorch code runs these ops on PIL images (uint8 after each op, antialiased
//!   downscaling); the differences are below the quantisation step except for downscaling crops.
//! - [`AugmentConfig`]: a serde list of typed [`Step`]s with `validate()`; [`presets`] for the
//!   SimCLR, SupContrast, CSI, FIRM pipelines and the deterministic test transforms.
//! - [`Augmenter`]: parallel (rayon), reproducible batches in the view-major layout
//!   `(V·S·N, C, H, W)` (or `(V·M, C, H, W)` for items with their own shifts); every view is keyed
//!   by (seed, epoch, sample index, view, shift) through
//!   [`conad_rng::SeedTree`], so batches are bit-identical whatever the thread count.
//!
//! ```
//! use conad_augment::{Augmenter, ImageBatchU8, presets};
//! use conad_rng::SeedTree;
//! let pixels = vec![128u8; 4 * 32 * 32 * 3]; // N=4 RGB 32×32 images, (N, H, W, C)
//! let batch = ImageBatchU8::new(&pixels, 4, 32, 32, 3)?;
//! let aug = Augmenter::new(&presets::simclr_cifar(32), SeedTree::new(0))?;
//! let views = aug.augment_batch(&batch, &[0, 1, 2, 3], /*epoch*/ 0, /*views*/ 2)?;
//! assert_eq!(views.len(), 2 * 4 * 3 * 32 * 32); // (2N, 3, 32, 32), view-major
//! # Ok::<(), conad_augment::Error>(())
//! ```

pub mod batch;
pub mod blur;
pub mod color_jitter;
pub mod config;
pub mod crop;
pub mod cutperm;
pub mod equalize;
pub mod error;
pub mod flip;
pub mod grayscale;
pub mod hsv;
pub mod image;
pub mod invert;
pub mod ke_bank;
pub mod normalize;
pub mod pad;
pub mod pipeline;
pub mod presets;
pub mod resize;
pub mod rotate;
pub mod shift;
mod simd;
pub mod spec;

pub use batch::{Augmenter, ImageBatchU8, ShiftedSample};
pub use config::{AugmentConfig, Step};
pub use error::{Error, Result};
pub use grayscale::LumaWeights;
pub use image::Image;
pub use ke_bank::{KE_BANK, KeTransform};
pub use pipeline::Pipeline;
pub use shift::Shift;
pub use spec::{AugmentSpec, PRESET_NAMES};
