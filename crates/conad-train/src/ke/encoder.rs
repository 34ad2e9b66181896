//! Knowledge encoders: what embeds images for KE's Wasserstein selection. A conad run (any
//! method's trained encoder, docs/reference.md §6.12 allows any encoder where CLIP weights are
//! absent) is [`RunEncoder`].

use std::path::{Path, PathBuf};

use conad_data::Dataset;
use conad_scorers::EmbeddingMatrix;

use crate::error::{Error, Result};
use crate::run_dir::{TrainedModel, load_run};

/// Something that turns images into embeddings for the selection.
pub trait KnowledgeEncoder {
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
        for row in data.chunks_exact_mut(d.max(1)) {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            for v in row {
                *v /= norm;
            }
        }
        Ok(EmbeddingMatrix::new(data, n, d)?)
    }
}
