//! Embedding images with a trained encoder (eval mode, batch-norm running statistics) or as raw
//! pixels, after the run's deterministic test transform (docs/reference.md §2.1, §3.6).

use candle_core::{Device, Tensor};
use conad_augment::{Augmenter, ImageBatchU8};
use conad_models::ResNet;
use conad_scorers::EmbeddingMatrix;

use crate::error::{Error, Result};

/// The test transform's view `[C, H, W]` for `images`.
///
/// # Errors
/// The pipeline's shape errors.
pub fn view_shape(transform: &Augmenter, images: &ImageBatchU8<'_>) -> Result<[usize; 3]> {
    Ok(transform.view_shape(images, &[Default::default()])?)
}

/// Runs `f` on consecutive chunks of at most `batch` images, transformed to f32 `(n, C, H, W)`.
fn for_each_chunk(
    images: &ImageBatchU8<'_>,
    transform: &Augmenter,
    batch: usize,
    mut f: impl FnMut(Vec<f32>, usize, [usize; 3]) -> Result<()>,
) -> Result<()> {
    if batch == 0 {
        return Err(Error::invalid("embedding batch size", 0, "must be ≥ 1"));
    }
    let shape = view_shape(transform, images)?;
    let per_image = shape.iter().product::<usize>();
    let all: Vec<usize> = (0..images.len()).collect();
    for chunk in all.chunks(batch) {
        let mut buf = vec![0f32; chunk.len() * per_image];
        // Epoch 0, view 0: a fixed stream, so even a random "test" transform is reproducible.
        transform.augment_batch_into(images, chunk, 0, 1, &mut buf)?;
        f(buf, chunk.len(), shape)?;
    }
    Ok(())
}

/// Encoder features of every image, in eval mode.
///
/// # Shapes
/// `images`: N images → `N × d` (d = the encoder's feature dimension).
///
/// # Errors
/// [`Error::EmptyImages`] for an empty image set; transform and model errors.
pub fn embed(
    encoder: &ResNet,
    images: &ImageBatchU8<'_>,
    transform: &Augmenter,
    batch: usize,
    device: &Device,
) -> Result<EmbeddingMatrix> {
    if images.is_empty() {
        return Err(Error::EmptyImages {
            what: "the images to embed",
        });
    }
    let d = encoder.feature_dim();
    let mut out = Vec::with_capacity(images.len() * d);
    for_each_chunk(images, transform, batch, |buf, n, [c, h, w]| {
        let x = Tensor::from_vec(buf, (n, c, h, w), device)?;
        let f = encoder.features(&x, false)?;
        out.extend(f.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    })?;
    Ok(EmbeddingMatrix::new(out, images.len(), d)?)
}

/// The transformed pixels of every image, flattened `(C, H, W)` (the raw-pixel baseline).
///
/// # Shapes
/// `images`: N images → `N × (C·H·W)`.
///
/// # Errors
/// [`Error::EmptyImages`] for an empty image set; transform errors.
pub fn embed_raw_pixels(
    images: &ImageBatchU8<'_>,
    transform: &Augmenter,
    batch: usize,
) -> Result<EmbeddingMatrix> {
    if images.is_empty() {
        return Err(Error::EmptyImages {
            what: "the images to embed",
        });
    }
    let d = view_shape(transform, images)?.iter().product::<usize>();
    let mut out = Vec::with_capacity(images.len() * d);
    for_each_chunk(images, transform, batch, |buf, _, _| {
        out.extend(buf);
        Ok(())
    })?;
    Ok(EmbeddingMatrix::new(out, images.len(), d)?)
}
