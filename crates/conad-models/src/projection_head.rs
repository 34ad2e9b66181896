//! MLP projection heads: SimCLR/CSI/SupContrast's `Linear–ReLU–Linear` (docs/reference.md §1.1), CON2's
//! one-hidden-layer heads (§6.5) and FIRM's 8-layer BN head (§1.6).
//!
//! The head returns the raw projection `h`; losses L2-normalise it (`z = h/‖h‖`, docs/reference.md §0).
//! Parameter names: `fc{i}.weight`, `fc{i}.bias` (if `bias`), `bn{i}.*` (if batch norm follows
//! layer `i`), `i = 0..depth`.

use candle_core::{ModuleT, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layers::{BatchNorm, linear};

/// Batch norm after the last linear layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalBatchNorm {
    /// No normalisation of the output (SimCLR).
    None,
    /// BN with learnable weight and bias.
    Affine,
    /// BN without parameters (FIRM: `BatchNorm1d(128, affine=False)`).
    NonAffine,
}

/// Configuration of an MLP head `in → hidden_dims… → out`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpHeadConfig {
    /// Input dimension (the encoder's feature dimension, 512·w).
    pub in_dim: usize,
    /// Widths of the hidden layers; the head has `hidden_dims.len() + 1` linear layers, each
    /// hidden one followed by (BN and) ReLU.
    pub hidden_dims: Vec<usize>,
    /// Output (projection) dimension, 128 everywhere in METHODS.
    pub out_dim: usize,
    /// Whether linear layers have a bias (SimCLR/CSI: yes; FIRM: no).
    pub bias: bool,
    /// Batch norm between each hidden linear layer and its ReLU (FIRM).
    pub hidden_batch_norm: bool,
    /// Batch norm after the last linear layer.
    pub final_batch_norm: FinalBatchNorm,
    /// BN momentum, PyTorch semantics.
    pub bn_momentum: f64,
    /// BN epsilon.
    pub bn_eps: f64,
}

impl Default for MlpHeadConfig {
    /// SimCLR's head on a full-width ResNet-18: 512 → 512 → ReLU → 128, with biases.
    fn default() -> Self {
        Self::simclr(512)
    }
}

impl MlpHeadConfig {
    /// SimCLR/CSI/SupContrast head: `Linear(d→d) → ReLU → Linear(d→128)`, with biases.
    pub fn simclr(in_dim: usize) -> Self {
        Self {
            in_dim,
            hidden_dims: vec![in_dim],
            out_dim: 128,
            bias: true,
            hidden_batch_norm: false,
            final_batch_norm: FinalBatchNorm::None,
            bn_momentum: 0.1,
            bn_eps: 1e-5,
        }
    }

    /// FIRM's depth-8 head (docs/reference.md §1.6): `Linear(d→1024, no bias)–BN–ReLU`, six ×
    /// `[Linear(1024→1024, no bias)–BN–ReLU]`, `Linear(1024→128, no bias)–BN(affine=False)`.
    pub fn firm(in_dim: usize) -> Self {
        Self {
            in_dim,
            hidden_dims: vec![1024; 7],
            out_dim: 128,
            bias: false,
            hidden_batch_norm: true,
            final_batch_norm: FinalBatchNorm::NonAffine,
            bn_momentum: 0.1,
            bn_eps: 1e-5,
        }
    }

    /// Number of linear layers.
    pub fn depth(&self) -> usize {
        self.hidden_dims.len() + 1
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero dimension or a BN momentum/epsilon out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, value: String, reason: &str| {
            Err(Error::invalid(field, value, reason))
        };
        if self.in_dim == 0 {
            return bad("in_dim", "0".into(), "must be ≥ 1");
        }
        if self.out_dim == 0 {
            return bad("out_dim", "0".into(), "must be ≥ 1");
        }
        if self.hidden_dims.contains(&0) {
            return bad(
                "hidden_dims",
                format!("{:?}", self.hidden_dims),
                "every hidden width must be ≥ 1",
            );
        }
        if !(0.0..=1.0).contains(&self.bn_momentum) {
            return bad(
                "bn_momentum",
                self.bn_momentum.to_string(),
                "must lie in [0, 1]",
            );
        }
        if !(self.bn_eps.is_finite() && self.bn_eps > 0.0) {
            return bad("bn_eps", self.bn_eps.to_string(), "must be positive");
        }
        Ok(())
    }
}

/// A multi-layer perceptron head.
#[derive(Clone, Debug)]
pub struct MlpHead {
    config: MlpHeadConfig,
    layers: Vec<(Linear, Option<BatchNorm>)>,
}

impl MlpHead {
    /// Builds the head under `vb`'s prefix.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`MlpHeadConfig::validate`]; candle errors for stored
    /// tensors of the wrong shape.
    pub fn new(config: &MlpHeadConfig, vb: VarBuilder<'_>) -> Result<Self> {
        config.validate()?;
        let dims: Vec<usize> = std::iter::once(config.in_dim)
            .chain(config.hidden_dims.iter().copied())
            .chain(std::iter::once(config.out_dim))
            .collect();
        let depth = config.depth();
        let mut layers = Vec::with_capacity(depth);
        for i in 0..depth {
            let lin = linear(dims[i], dims[i + 1], config.bias, vb.pp(format!("fc{i}")))?;
            let last = i + 1 == depth;
            let affine = match (last, config.hidden_batch_norm, config.final_batch_norm) {
                (false, true, _) => Some(true),
                (true, _, FinalBatchNorm::Affine) => Some(true),
                (true, _, FinalBatchNorm::NonAffine) => Some(false),
                _ => None,
            };
            let bn = match affine {
                Some(affine) => Some(BatchNorm::new(
                    dims[i + 1],
                    affine,
                    config.bn_momentum,
                    config.bn_eps,
                    vb.pp(format!("bn{i}")),
                )?),
                None => None,
            };
            layers.push((lin, bn));
        }
        Ok(Self {
            config: config.clone(),
            layers,
        })
    }

    /// The head's config.
    pub fn config(&self) -> &MlpHeadConfig {
        &self.config
    }

    /// # Shapes
    /// `N × in_dim` → `N × out_dim` (not normalised).
    ///
    /// # Errors
    /// [`Error::InputShape`] for a wrong rank or width; [`Error::BatchNormTooFewValues`] for a
    /// batch of 1 in training mode when the head has batch norm.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if x.rank() != 2 || x.dim(1)? != self.config.in_dim {
            return Err(Error::InputShape {
                module: "MlpHead",
                got: x.dims().to_vec(),
                expected: format!("N × {}", self.config.in_dim),
            });
        }
        let depth = self.layers.len();
        let mut h = x.clone();
        for (i, (lin, bn)) in self.layers.iter().enumerate() {
            h = h.apply(lin)?;
            if let Some(bn) = bn {
                h = bn.forward(&h, train)?;
            }
            if i + 1 < depth {
                h = h.relu()?;
            }
        }
        Ok(h)
    }
}

impl ModuleT for MlpHead {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.forward(x, train).map_err(Error::into_candle)
    }
}
