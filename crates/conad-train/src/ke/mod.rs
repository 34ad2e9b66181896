//! Knowledge Exposure's data side (docs/reference.md §1.7, §3.9, §4.4, §6.12–§6.14): transformed
//! image sets, the per-class Wasserstein selection of positive and negative transforms with a
//! knowledge encoder, and the SAD / SPA / SSA test protocols.
//!
//! Transformed sets are uint8 images, as KE's corruption framework writes them: every image is
//! transformed with its own seed node (`seed → label → image index`), so a set is reproducible
//! and independent of the thread count.

mod encoder;
mod protocol;
mod selection;

use conad_augment::{Image, KeTransform};
use conad_data::Dataset;
use conad_rng::SeedTree;
use rayon::prelude::*;

pub use encoder::{ClipEncoder, KnowledgeEncoder, RunEncoder, load_knowledge_encoder};
pub use protocol::{KeProtocol, VEHICLE_CLASSES, ke_test_task, semantic_negatives};
pub use selection::{KeSelection, RankedTransform, select_transforms};

use crate::error::Result;

/// `images` with `transform` at `severity` applied to image `i` with the RNG of `seed → i`.
///
/// # Errors
/// The transform's errors (a severity outside 1–6, an image too small for its kernel).
pub fn transform_dataset(
    images: &Dataset,
    transform: KeTransform,
    severity: u8,
    seed: &SeedTree,
) -> Result<Dataset> {
    let (h, w, c) = (images.height, images.width, images.channels);
    let per = h * w * c;
    let pixels: Vec<Vec<u8>> = (0..images.n)
        .into_par_iter()
        .map(|i| -> Result<Vec<u8>> {
            let img = Image::from_u8_hwc(&images.images[i * per..(i + 1) * per], h, w, c)?;
            let out = transform.apply(&img, severity, &mut seed.index(i as u64).rng())?;
            Ok(out.to_u8_hwc())
        })
        .collect::<Result<_>>()?;
    Ok(Dataset::new(
        pixels.concat(),
        images.n,
        (h, w, c),
        images.labels.clone(),
        images.class_names.clone(),
    )?)
}
