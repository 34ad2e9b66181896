//! The raw-pixel "method": no training; the embedding of an image is its test-transformed pixels
//! in [0, 1], flattened `(C, H, W)`. With kNN max-cosine it gives the floor every trained method
//! must beat (raw-pixel kNN measured on the full data sets: Fashion-MNIST 0.892, CIFAR-10 0.576, BreastMNIST 0.706).

use serde::{Deserialize, Serialize};

use super::{
    BatchContext, BuildContext, Method, MethodBatch, MethodParams, StepContext, StepOutput,
};
use crate::error::{Error, Result};
use crate::score::{ScoreDef, standard_scores};

/// Parameters of the raw-pixel baseline (none).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPixelsConfig {}

impl MethodParams for RawPixelsConfig {
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    fn build(&self, _ctx: BuildContext<'_>) -> Result<Box<dyn Method>> {
        Ok(Box::new(RawPixels))
    }

    /// The encoder-feature scores on pixels (kNN first).
    fn scores(&self) -> Vec<ScoreDef> {
        standard_scores()
    }

    fn views_per_image(&self) -> usize {
        0
    }

    fn trains(&self) -> bool {
        false
    }

    /// Nothing is trained.
    fn min_batch_size(&self) -> usize {
        1
    }
}

/// The raw-pixel baseline: no heads, no training step.
#[derive(Debug)]
struct RawPixels;

impl Method for RawPixels {
    fn batch(&self, _ctx: &BatchContext<'_>) -> Result<MethodBatch> {
        Err(Error::invalid("method", "raw_pixels", "does not train"))
    }

    fn forward_loss(
        &self,
        _encoder: &conad_models::ResNet,
        _batch: &MethodBatch,
        _step: &StepContext,
    ) -> Result<StepOutput> {
        Err(Error::invalid("method", "raw_pixels", "does not train"))
    }

    fn heads(&self) -> serde_json::Value {
        serde_json::json!({})
    }
}
