//! Encoders and heads for contrastive anomaly detection, in candle.
//!
//! * [`ResNet`]: BasicBlock ResNet (ResNet-18 by default) with the CIFAR or ImageNet stem, 1 or 3
//!   input channels, a width multiplier for CPU budgets, batch norm in training mode with running
//!   statistics, all stage outputs reachable ([`ResNet::forward_stages`], [`ResNet::forward_to`])
//!   and torchvision parameter names (docs/reference.md §0 "Backbone default").
//! * Heads: [`MlpHead`] (SimCLR, CON2, FIRM's 8-layer head — docs/reference.md §1.1, §1.6),
//!   [`LinearHead`] (rotation prediction, §1.9), [`StageHead`] (UniCon-HA, §1.5 **\[PROPOSAL\]**).
//! * [`seeded_var_builder`]: reproducible initialisation from conad's seed tree (candle's CPU
//!   RNG cannot be seeded).
//! * [`Checkpoint`]: safetensors with a JSON `__metadata__` blob (config, preprocessing, seed,
//!   epoch, version) and optimizer state; typed errors on version or architecture mismatch.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use candle_nn::VarMap;
//! use conad_models::{MlpHead, MlpHeadConfig, ResNet, ResNetConfig, seeded_var_builder};
//! use conad_rng::SeedTree;
//! let dev = Device::Cpu;
//! let cfg = ResNetConfig { width_multiplier: 0.125, ..Default::default() };
//! let varmap = VarMap::new();
//! let vb = seeded_var_builder(&varmap, SeedTree::new(0).child("init"), DType::F32, &dev);
//! let encoder = ResNet::new(&cfg, vb.pp("encoder"))?;
//! let head = MlpHead::new(&MlpHeadConfig::simclr(cfg.feature_dim()), vb.pp("head"))?;
//! let x = Tensor::zeros((4, 3, 8, 8), DType::F32, &dev)?;
//! let h = head.forward(&encoder.features(&x, true)?, true)?;
//! assert_eq!(h.dims(), &[4, 128]);
//! # Ok::<(), conad_models::Error>(())
//! ```

mod basic_block;
mod checkpoint;
mod clip;
mod config;
mod error;
mod init;
mod layers;
mod linear_head;
mod params;
mod projection_head;
mod resnet;
mod stage_head;
mod weights;

pub use basic_block::BasicBlock;
pub use checkpoint::{
    CHECKPOINT_FORMAT, CONAD_VERSION, Checkpoint, CheckpointMeta, OPTIMIZER_PREFIX,
};
pub use clip::{CLIP_MEAN, CLIP_STD, ClipImageEncoder, ClipVisionSpec};
pub use config::{FULL_WIDTHS, ResNetConfig, Stage, Stem};
pub use error::{Error, Result};
pub use init::{SeededInit, sample_init, seeded_var_builder};
pub use layers::{
    BatchNorm, CONV_INIT, Conv2d, apply_conv, conv2d_no_bias, global_avg_pool, linear, max_pool2d,
};
pub use linear_head::{LinearHead, LinearHeadConfig};
pub use params::{is_running_statistic, named_trainable_vars, trainable_vars};
pub use projection_head::{FinalBatchNorm, MlpHead, MlpHeadConfig};
pub use resnet::{ResNet, ResNetStages};
pub use stage_head::{StageHead, StageHeadConfig};
pub use weights::{
    WeightLoadReport, assign_to_varmap, load_safetensors_into_varmap, read_safetensors,
};
