//! Embedding images under a [`ViewSpec`] with a frozen model (eval mode, batch-norm running
//! statistics): augmenters for each view kind and the forward passes.

use candle_core::{D, Tensor};
use conad_augment::crop::RandomResizedCrop;
use conad_augment::{AugmentConfig, Augmenter, ImageBatchU8, Step};
use conad_rng::SeedTree;
use conad_scorers::EmbeddingMatrix;

use super::defs::{Output, ViewAugment, ViewSpec};
use super::fitted::ScoringModel;
use crate::error::{Error, Result};
use crate::run_dir::TEST_TRANSFORM_SEED;

/// Seed child of the random test-time views: `seed → "tta" → draw`.
const TTA_SEED: &str = "tta";

/// The augmenter of `view` for images of side `side`.
pub(crate) fn view_augmenter(
    model: &ScoringModel<'_>,
    view: &ViewSpec,
    side: usize,
) -> Result<Augmenter> {
    let root = SeedTree::new(model.config.seed);
    let augment = &model.config.augment;
    match &view.augment {
        ViewAugment::Test => Ok(Augmenter::with_seed_node(
            &augment.test.to_augment_config(side)?,
            root.child(TEST_TRANSFORM_SEED),
        )?),
        ViewAugment::Train {
            draw, crop_scale, ..
        } => {
            let mut cfg = augment.train.to_augment_config(side)?;
            if let Some(scale) = crop_scale {
                for step in &mut cfg.steps {
                    if let Step::RandomResizedCrop(c) = step {
                        c.scale = *scale;
                    }
                }
            }
            Ok(Augmenter::with_seed_node(
                &cfg,
                root.child(TTA_SEED).index(*draw),
            )?)
        }
        ViewAugment::TestCrop { draw } => {
            let cfg = with_crop(augment.test.to_augment_config(side)?, side);
            Ok(Augmenter::with_seed_node(
                &cfg,
                root.child(TTA_SEED).index(*draw),
            )?)
        }
    }
}

/// `cfg` with FIRM's ensemble crop inserted before its shift slot (else before its
/// normalisation, else at the end).
fn with_crop(mut cfg: AugmentConfig, side: usize) -> AugmentConfig {
    let crop = Step::RandomResizedCrop(RandomResizedCrop {
        size: [side, side],
        scale: [0.55, 1.0],
        ratio: [1.0, 1.0],
    });
    let at = cfg
        .steps
        .iter()
        .position(|s| *s == Step::Shift)
        .or_else(|| {
            cfg.steps
                .iter()
                .position(|s| matches!(s, Step::Normalize(_)))
        })
        .unwrap_or(cfg.steps.len());
    cfg.steps.insert(at, crop);
    cfg
}

/// The outputs `outputs` of every image under `view`, in image order (`n × d` each).
///
/// # Errors
/// [`Error::EmptyImages`] for no images, [`Error::UnknownHead`] for a head output asked of the
/// raw-pixel method or a head the method lacks; augmentation and model errors.
pub(crate) fn embed_view(
    model: &ScoringModel<'_>,
    images: &ImageBatchU8<'_>,
    view: &ViewSpec,
    outputs: &[&Output],
) -> Result<Vec<EmbeddingMatrix>> {
    if images.is_empty() {
        return Err(Error::EmptyImages {
            what: "the images to embed",
        });
    }
    let [_, h, w] = images.image_shape();
    let augmenter = view_augmenter(model, view, h.min(w))?;
    let shifts = [view.shift];
    let [c, vh, vw] = augmenter.view_shape(images, &shifts)?;
    let per_image = c * vh * vw;
    let mut columns: Vec<(Vec<f32>, usize)> = outputs.iter().map(|_| (Vec::new(), 0)).collect();
    let shared = matches!(
        view.augment,
        ViewAugment::Train {
            per_image: false,
            ..
        }
    );
    let all: Vec<usize> = (0..images.len()).collect();
    for chunk in all.chunks(model.batch_size.max(1)) {
        let mut buf = vec![0f32; chunk.len() * per_image];
        if shared {
            // One transformation for every image: the stream of sample 0.
            for (slot, &i) in buf.chunks_exact_mut(per_image).zip(chunk) {
                let out = augmenter.augment_one(&images.image(i)?, 0, 0, 0, view.shift)?;
                slot.copy_from_slice(out.data());
            }
        } else {
            // Epoch 0, view 0: a fixed stream per (draw, image).
            augmenter.augment_batch_shifted_into(images, chunk, 0, 1, &shifts, &mut buf)?;
        }
        let x = Tensor::from_vec(buf, (chunk.len(), c, vh, vw), model.device)?;
        let features = match model.encoder {
            Some(encoder) => encoder.features(&x, false)?,
            None => x.flatten_from(1)?,
        };
        for ((out, cols), what) in columns.iter_mut().zip(outputs) {
            let t = match what {
                Output::Encoder => features.clone(),
                Output::Head(name) => {
                    if model.encoder.is_none() {
                        return Err(Error::UnknownHead {
                            method: "raw_pixels".into(),
                            head: name.clone(),
                        });
                    }
                    model.method.head_output(name, &features)?
                }
            };
            let t = t.flatten_from(1)?;
            *cols = t.dim(D::Minus1)?;
            out.extend(t.to_vec2::<f32>()?.into_iter().flatten());
        }
    }
    columns
        .into_iter()
        .map(|(data, cols)| Ok(EmbeddingMatrix::new(data, images.len(), cols)?))
        .collect()
}
