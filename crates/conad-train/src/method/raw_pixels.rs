//! The raw-pixel "method": no training; the embedding of an image is its test-transformed pixels
//! in [0, 1], flattened `(C, H, W)`. With kNN max-cosine it gives the floor every trained method
//! must beat (BASELINES §6: Fashion-MNIST 0.892, CIFAR-10 0.576, BreastMNIST 0.706).

use serde::{Deserialize, Serialize};

/// Parameters of the raw-pixel baseline (none).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPixelsConfig {}
