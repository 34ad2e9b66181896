//! CLIP's image tower as a frozen knowledge encoder (Radford et al. 2021; Knowledge Exposure
//! §3 embeds images with it for the transform selection; docs/reference.md §6.12), through
//! candle-transformers' `clip` vision transformer: patch embedding + class token + positions,
//! pre-LayerNorm, `L` pre-norm encoder layers (quick-GELU MLP), post-LayerNorm on the class
//! token, `visual_projection` (no bias).
//!
//! Weights come from a safetensors file under Hugging Face's parameter names
//! (`vision_model.…`, `visual_projection.weight`; e.g. `openai/clip-vit-base-patch32`'s
//! `model.safetensors`), the architecture from the `config.json` beside it (its
//! `vision_config` and `projection_dim`) or ViT-B/32 when there is none. Every tensor the tower
//! needs is checked by name and shape before the model is built (candle-transformers would draw
//! a missing class embedding from candle's RNG).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::clip::text_model::Activation;
use candle_transformers::models::clip::vision_model::{ClipVisionConfig, ClipVisionTransformer};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The architecture of a CLIP image tower.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClipVisionSpec {
    /// Width `D` of the transformer.
    pub hidden_size: usize,
    /// Width of the MLPs.
    pub intermediate_size: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Side of a patch.
    pub patch_size: usize,
    /// Side of the input image.
    pub image_size: usize,
    /// Output dimension of `visual_projection`.
    pub projection_dim: usize,
}

impl ClipVisionSpec {
    /// OpenAI's ViT-B/32 (`openai/clip-vit-base-patch32`).
    pub const fn vit_b32() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_attention_heads: 12,
            num_hidden_layers: 12,
            patch_size: 32,
            image_size: 224,
            projection_dim: 512,
        }
    }

    /// Reads the `vision_config` and `projection_dim` of a Hugging Face `config.json`.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::InvalidConfig`] for a file without them, a non-quick-GELU tower or
    /// inconsistent sizes.
    pub fn from_hf_config(path: &Path) -> Result<Self> {
        #[derive(Deserialize)]
        struct Vision {
            hidden_size: usize,
            intermediate_size: usize,
            num_attention_heads: usize,
            num_hidden_layers: usize,
            patch_size: usize,
            image_size: usize,
            #[serde(default)]
            projection_dim: Option<usize>,
            #[serde(default)]
            hidden_act: Option<String>,
        }
        #[derive(Deserialize)]
        struct Hf {
            vision_config: Vision,
            #[serde(default)]
            projection_dim: Option<usize>,
        }
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let hf: Hf = serde_json::from_str(&text).map_err(|e| {
            Error::invalid(
                "clip config",
                path.display(),
                format!("not a CLIP config.json with a vision_config: {e}"),
            )
        })?;
        let v = hf.vision_config;
        if let Some(act) = v.hidden_act.as_deref().filter(|a| *a != "quick_gelu") {
            return Err(Error::invalid(
                "vision_config.hidden_act",
                act,
                "conad's CLIP tower is OpenAI's (quick_gelu)",
            ));
        }
        let spec = Self {
            hidden_size: v.hidden_size,
            intermediate_size: v.intermediate_size,
            num_attention_heads: v.num_attention_heads,
            num_hidden_layers: v.num_hidden_layers,
            patch_size: v.patch_size,
            image_size: v.image_size,
            projection_dim: hf.projection_dim.or(v.projection_dim).unwrap_or(512),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks sizes are positive, heads divide the width and patches tile the image.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        let sizes = [
            self.hidden_size,
            self.intermediate_size,
            self.num_attention_heads,
            self.num_hidden_layers,
            self.patch_size,
            self.image_size,
            self.projection_dim,
        ];
        if sizes.contains(&0) {
            return Err(Error::invalid(
                "clip config",
                format!("{self:?}"),
                "every size must be ≥ 1",
            ));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(Error::invalid(
                "num_attention_heads",
                self.num_attention_heads,
                format!("must divide hidden_size {}", self.hidden_size),
            ));
        }
        if !self.image_size.is_multiple_of(self.patch_size) {
            return Err(Error::invalid(
                "patch_size",
                self.patch_size,
                format!("must divide image_size {}", self.image_size),
            ));
        }
        Ok(())
    }

    fn candle(&self) -> ClipVisionConfig {
        ClipVisionConfig {
            embed_dim: self.hidden_size,
            activation: Activation::QuickGelu,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            projection_dim: self.projection_dim,
            num_channels: 3,
            image_size: self.image_size,
            patch_size: self.patch_size,
        }
    }

    /// Every tensor the tower reads, with its shape.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (d, i) = (self.hidden_size, self.intermediate_size);
        let positions = (self.image_size / self.patch_size).pow(2) + 1;
        let v = |n: &str| format!("vision_model.{n}");
        let mut out = vec![
            (v("embeddings.class_embedding"), vec![d]),
            (
                v("embeddings.patch_embedding.weight"),
                vec![d, 3, self.patch_size, self.patch_size],
            ),
            (
                v("embeddings.position_embedding.weight"),
                vec![positions, d],
            ),
            (v("pre_layrnorm.weight"), vec![d]),
            (v("pre_layrnorm.bias"), vec![d]),
            (v("post_layernorm.weight"), vec![d]),
            (v("post_layernorm.bias"), vec![d]),
            (
                "visual_projection.weight".into(),
                vec![self.projection_dim, d],
            ),
        ];
        for l in 0..self.num_hidden_layers {
            let p = |n: &str| v(&format!("encoder.layers.{l}.{n}"));
            for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                out.push((p(&format!("self_attn.{proj}.weight")), vec![d, d]));
                out.push((p(&format!("self_attn.{proj}.bias")), vec![d]));
            }
            for norm in ["layer_norm1", "layer_norm2"] {
                out.push((p(&format!("{norm}.weight")), vec![d]));
                out.push((p(&format!("{norm}.bias")), vec![d]));
            }
            out.push((p("mlp.fc1.weight"), vec![i, d]));
            out.push((p("mlp.fc1.bias"), vec![i]));
            out.push((p("mlp.fc2.weight"), vec![d, i]));
            out.push((p("mlp.fc2.bias"), vec![d]));
        }
        out
    }
}

/// CLIP's image tower with its projection.
#[derive(Debug)]
pub struct ClipImageEncoder {
    spec: ClipVisionSpec,
    vision: ClipVisionTransformer,
    projection: candle_nn::Linear,
    source: PathBuf,
}

/// CLIP's input normalisation (OpenAI's per-channel mean and std).
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// See [`CLIP_MEAN`].
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

impl ClipImageEncoder {
    /// Loads the tower from `weights` (safetensors, Hugging Face names) with `spec`.
    ///
    /// # Errors
    /// [`Error::Safetensors`] for an unreadable file; [`Error::MissingTensors`] /
    /// [`Error::TensorShape`] naming every absent or mis-shaped tensor; [`Error::InvalidConfig`].
    pub fn load(weights: &Path, spec: &ClipVisionSpec, device: &Device) -> Result<Self> {
        spec.validate()?;
        let tensors =
            candle_core::safetensors::load(weights, device).map_err(|e| Error::Safetensors {
                path: weights.to_path_buf(),
                message: e.to_string(),
            })?;
        let source_name = weights.display().to_string();
        let mut missing = Vec::new();
        for (name, shape) in spec.tensors() {
            match tensors.get(&name) {
                None => missing.push(name),
                Some(t) if t.dims() != shape.as_slice() => {
                    return Err(Error::TensorShape {
                        source_name,
                        name,
                        expected: shape,
                        found: t.dims().to_vec(),
                    });
                }
                Some(_) => {}
            }
        }
        if !missing.is_empty() {
            return Err(Error::MissingTensors {
                source_name,
                names: missing,
            });
        }
        let tensors = tensors
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?)))
            .collect::<Result<std::collections::HashMap<_, _>>>()?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let vision = ClipVisionTransformer::new(vb.pp("vision_model"), &spec.candle())?;
        let projection = candle_nn::linear_no_bias(
            spec.hidden_size,
            spec.projection_dim,
            vb.pp("visual_projection"),
        )?;
        Ok(Self {
            spec: spec.clone(),
            vision,
            projection,
            source: weights.to_path_buf(),
        })
    }

    /// The architecture.
    pub fn spec(&self) -> &ClipVisionSpec {
        &self.spec
    }

    /// The weight file.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Image embeddings (`get_image_features`, not normalised).
    ///
    /// # Shapes
    /// `pixels`: `N × 3 × S × S`, normalised with [`CLIP_MEAN`] / [`CLIP_STD`] → `N × projection_dim`.
    ///
    /// # Errors
    /// [`Error::InputShape`] for another input shape; candle errors.
    pub fn embed(&self, pixels: &Tensor) -> Result<Tensor> {
        let s = self.spec.image_size;
        if pixels.rank() != 4 || pixels.dims()[1..] != [3, s, s] {
            return Err(Error::InputShape {
                module: "ClipImageEncoder",
                got: pixels.dims().to_vec(),
                expected: format!("N × 3 × {s} × {s}"),
            });
        }
        Ok(self.projection.forward(&self.vision.forward(pixels)?)?)
    }
}
