//! Linear classification head, e.g. the 4-way rotation classifier of RotNet / "Rot. Pred."
//! (docs/reference.md §1.9) or CSI's shift head. Parameters: `weight` (`classes × in`), `bias`.

use candle_core::{Module, ModuleT, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layers::linear;

/// Configuration of a [`LinearHead`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinearHeadConfig {
    /// Input dimension (512·w for a ResNet-18 feature).
    pub in_dim: usize,
    /// Number of classes (4 rotations by default).
    pub num_classes: usize,
    /// Whether the layer has a bias.
    pub bias: bool,
}

impl Default for LinearHeadConfig {
    /// Rotation prediction on a full-width ResNet-18: 512 → 4 with bias.
    fn default() -> Self {
        Self {
            in_dim: 512,
            num_classes: 4,
            bias: true,
        }
    }
}

impl LinearHeadConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero dimension.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [("in_dim", self.in_dim), ("num_classes", self.num_classes)] {
            if v == 0 {
                return Err(Error::invalid(field, "0", "must be ≥ 1"));
            }
        }
        Ok(())
    }
}

/// `logits = x Wᵀ + b`.
#[derive(Clone, Debug)]
pub struct LinearHead {
    config: LinearHeadConfig,
    layer: Linear,
}

impl LinearHead {
    /// Builds the head under `vb`'s prefix (PyTorch default init).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`]; candle errors for stored tensors of the wrong shape.
    pub fn new(config: &LinearHeadConfig, vb: VarBuilder<'_>) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config: config.clone(),
            layer: linear(config.in_dim, config.num_classes, config.bias, vb)?,
        })
    }

    /// The head's config.
    pub fn config(&self) -> &LinearHeadConfig {
        &self.config
    }

    /// # Shapes
    /// `N × in_dim` → `N × num_classes`.
    ///
    /// # Errors
    /// [`Error::InputShape`] for a wrong rank or width.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() != 2 || x.dim(1)? != self.config.in_dim {
            return Err(Error::InputShape {
                module: "LinearHead",
                got: x.dims().to_vec(),
                expected: format!("N × {}", self.config.in_dim),
            });
        }
        Ok(self.layer.forward(x)?)
    }
}

impl ModuleT for LinearHead {
    fn forward_t(&self, x: &Tensor, _train: bool) -> candle_core::Result<Tensor> {
        self.forward(x).map_err(Error::into_candle)
    }
}
