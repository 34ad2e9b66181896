//! Knowledge encoders: what embeds images for KE's Wasserstein selection — CLIP's image tower
//! ([`ClipEncoder`], the paper's choice, §6.12) or a conad run ([`RunEncoder`], any method's
//! trained encoder) — chosen by [`load_knowledge_encoder`] from a spec string: `clip:FILE`
//! (safetensors under Hugging Face's names, the architecture from the `config.json` beside it)
//! or a run directory.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use conad_augment::Image;
use conad_augment::resize::resize;
use conad_data::Dataset;
use conad_models::{CLIP_MEAN, CLIP_STD, ClipImageEncoder, ClipVisionSpec};
use conad_scorers::EmbeddingMatrix;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::run_dir::{TrainedModel, load_run};

/// The encoder a spec names: `clip:FILE.safetensors` or a conad run directory (or a weights
/// file inside one).
///
/// # Errors
/// The loaders' errors.
pub fn load_knowledge_encoder(spec: &str) -> Result<Box<dyn KnowledgeEncoder>> {
    match spec.strip_prefix("clip:") {
        Some(file) => Ok(Box::new(ClipEncoder::load(Path::new(file))?)),
        None => Ok(Box::new(RunEncoder::load(Path::new(spec))?)),
    }
}

/// CLIP's image tower: images resized to its input side (bilinear; CLIP's own preprocessing
/// resizes bicubically), grey replicated to RGB, normalised with CLIP's mean and std, embedded
/// and L2-normalised.
#[derive(Debug)]
pub struct ClipEncoder {
    model: ClipImageEncoder,
}

impl ClipEncoder {
    /// Loads `weights` with the `config.json` beside it (ViT-B/32 when there is none).
    ///
    /// # Errors
    /// The model's loading errors (missing or mis-shaped tensors, an unreadable file).
    pub fn load(weights: &Path) -> Result<Self> {
        let config = weights.with_file_name("config.json");
        let spec = if config.is_file() {
            ClipVisionSpec::from_hf_config(&config)?
        } else {
            ClipVisionSpec::vit_b32()
        };
        Ok(Self {
            model: ClipImageEncoder::load(weights, &spec, &Device::Cpu)?,
        })
    }
}

impl KnowledgeEncoder for ClipEncoder {
    fn describe(&self) -> String {
        let s = self.model.spec();
        format!(
            "CLIP image tower {} (ViT, width {}, {} layers, patch {}, {} px)",
            self.model.source().display(),
            s.hidden_size,
            s.num_hidden_layers,
            s.patch_size,
            s.image_size
        )
    }

    fn embed(&self, images: &Dataset) -> Result<EmbeddingMatrix> {
        let side = self.model.spec().image_size;
        let (h, w, c) = (images.height, images.width, images.channels);
        let per = h * w * c;
        let mut rows = Vec::with_capacity(images.n * self.model.spec().projection_dim);
        let mut d = 0;
        let all: Vec<usize> = (0..images.n).collect();
        for chunk in all.chunks(64) {
            let pixels: Vec<Vec<f32>> = chunk
                .par_iter()
                .map(|&i| -> Result<Vec<f32>> {
                    let img = Image::from_u8_hwc(&images.images[i * per..(i + 1) * per], h, w, c)?
                        .to_rgb();
                    let mut img = resize(&img, side, side)?;
                    for (ch, (m, s)) in CLIP_MEAN.iter().zip(CLIP_STD).enumerate() {
                        for v in img.plane_mut(ch) {
                            *v = (*v - m) / s;
                        }
                    }
                    Ok(img.into_vec())
                })
                .collect::<Result<_>>()?;
            let x = Tensor::from_vec(pixels.concat(), (chunk.len(), 3, side, side), &Device::Cpu)?;
            let z = self.model.embed(&x)?;
            d = z.dim(1)?;
            rows.extend(z.flatten_all()?.to_vec1::<f32>()?);
        }
        normalise_rows(&mut rows, d);
        Ok(EmbeddingMatrix::new(rows, images.n, d)?)
    }
}

fn normalise_rows(data: &mut [f32], d: usize) {
    for row in data.chunks_exact_mut(d.max(1)) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        for v in row {
            *v /= norm;
        }
    }
}

/// Something that turns images into embeddings for the selection.
pub trait KnowledgeEncoder: std::fmt::Debug {
    /// What it is (printed beside every ranking and KE number).
    fn describe(&self) -> String;

    /// L2-normalised embeddings of `images`, one row per image.
    ///
    /// # Errors
    /// Embedding errors (channels or sizes the encoder cannot take).
    fn embed(&self, images: &Dataset) -> Result<EmbeddingMatrix>;
}

/// The encoder of a conad run directory (its features under the run's test transform).
#[derive(Debug)]
pub struct RunEncoder {
    model: TrainedModel,
    dir: PathBuf,
}

impl RunEncoder {
    /// Loads the run at `path`: a run directory, or a `model.safetensors` / checkpoint file
    /// inside one.
    ///
    /// # Errors
    /// [`Error::NotARun`] and the run loader's errors.
    pub fn load(path: &Path) -> Result<Self> {
        let dir = if path.is_file() {
            path.parent()
                .map(Path::to_path_buf)
                .ok_or_else(|| Error::NotARun {
                    path: path.to_path_buf(),
                    reason: "a weights file outside a run directory; pass the run directory".into(),
                })?
        } else {
            path.to_path_buf()
        };
        Ok(Self {
            model: load_run(&dir)?,
            dir,
        })
    }
}

impl KnowledgeEncoder for RunEncoder {
    fn describe(&self) -> String {
        format!(
            "conad run {} ({}, width {})",
            self.dir.display(),
            self.model.config().method.name(),
            self.model.config().model.width_multiplier
        )
    }

    fn embed(&self, images: &Dataset) -> Result<EmbeddingMatrix> {
        let m = self.model.embed(images, 256)?;
        let (n, d) = (m.rows(), m.cols());
        let mut data = m.as_slice().to_vec();
        normalise_rows(&mut data, d);
        Ok(EmbeddingMatrix::new(data, n, d)?)
    }
}
