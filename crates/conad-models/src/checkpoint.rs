//! Self-contained safetensors checkpoints.
//!
//! A checkpoint is one `.safetensors` file: the model variables under their own names, optimizer
//! state under [`OPTIMIZER_PREFIX`], and in the header's `__metadata__` a JSON blob
//! ([`CheckpointMeta`]: encoder config, head configs, preprocessing, seed, epoch, conad version)
//! under the key `"conad"`, `"format" = "conad-checkpoint-v2"`, and `"content_hash"`: a 64-bit
//! hash of every tensor's name, dtype, shape and bytes. candle's own `safetensors::save` writes no
//! metadata, so the file is written with the `safetensors` crate, atomically (`conad-fs`).
//!
//! Loading verifies the hash (a flipped byte is an error, not a silently different model),
//! refuses non-finite floating-point values, checks the version and the architecture and says
//! what differs: `checkpoint has width_multiplier 0.25, config asks 1`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::config::ResNetConfig;
use crate::error::{Error, Result};
use crate::weights::{WeightLoadReport, assign_to_varmap, parse_tensors};

/// The version of conad that writes checkpoints (the workspace version).
pub const CONAD_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Value of the `"format"` metadata entry.
pub const CHECKPOINT_FORMAT: &str = "conad-checkpoint-v2";
/// Prefix of optimizer-state tensor names inside a checkpoint.
pub const OPTIMIZER_PREFIX: &str = "optimizer.";
const META_KEY: &str = "conad";
const FORMAT_KEY: &str = "format";
const HASH_KEY: &str = "content_hash";

/// FNV-1a over little-endian 64-bit words (the tail zero-padded), seeded with the byte length.
/// Each step is a bijection of the state, so any change confined to one word is always detected.
fn hash_words(mut h: u64, bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    h = (h ^ bytes.len() as u64).wrapping_mul(PRIME);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8-byte chunk"));
        h = (h ^ w).wrapping_mul(PRIME);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut tail = [0u8; 8];
        tail[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(PRIME);
    }
    h
}

/// The content hash of named tensor views in name order (`w64fnv1a:` + 16 hex digits).
fn content_hash<'a, V: safetensors::View + 'a>(
    views: impl Iterator<Item = (&'a str, V)>,
) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, view) in views {
        h = hash_words(h, name.as_bytes());
        h = hash_words(h, format!("{:?}", view.dtype()).as_bytes());
        for &d in view.shape() {
            h = hash_words(h, &(d as u64).to_le_bytes());
        }
        h = hash_words(h, &view.data());
    }
    format!("w64fnv1a:{h:016x}")
}

/// The first tensor holding a NaN or an infinity, with the count of such values.
fn first_non_finite(st: &safetensors::SafeTensors<'_>) -> Option<(String, usize)> {
    use safetensors::Dtype;
    let mut names = st.names();
    names.sort();
    for name in names {
        let view = st.tensor(name).ok()?;
        let data = view.data();
        let bad = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .filter(|c| !f32::from_le_bytes((*c).try_into().expect("4 bytes")).is_finite())
                .count(),
            Dtype::F64 => data
                .chunks_exact(8)
                .filter(|c| !f64::from_le_bytes((*c).try_into().expect("8 bytes")).is_finite())
                .count(),
            // Half-precision: exponent bits all ones.
            Dtype::F16 => data
                .chunks_exact(2)
                .filter(|c| u16::from_le_bytes([c[0], c[1]]) & 0x7c00 == 0x7c00)
                .count(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .filter(|c| u16::from_le_bytes([c[0], c[1]]) & 0x7f80 == 0x7f80)
                .count(),
            _ => 0,
        };
        if bad > 0 {
            return Some((name.to_string(), bad));
        }
    }
    None
}

/// Everything except tensors that a checkpoint records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// conad version that wrote the file.
    pub conad_version: String,
    /// Encoder architecture.
    pub encoder: ResNetConfig,
    /// Head configs by name (free-form; the trainer decides), e.g.
    /// `{"projection": MlpHeadConfig, "rotation": LinearHeadConfig}`.
    #[serde(default)]
    pub heads: serde_json::Value,
    /// Input preprocessing (free-form; the trainer supplies it): image size, normalisation
    /// mean/std, channel count, …, so that prediction needs no training data.
    #[serde(default)]
    pub preprocessing: serde_json::Value,
    /// Root seed of the run.
    pub seed: u64,
    /// Epochs completed when the checkpoint was written.
    pub epoch: u64,
    /// Training description (free-form): method, loss and optimizer hyper-parameters.
    #[serde(default)]
    pub training: serde_json::Value,
}

impl CheckpointMeta {
    /// Metadata for the current conad version with empty free-form fields.
    pub fn new(encoder: ResNetConfig, seed: u64, epoch: u64) -> Self {
        Self {
            conad_version: CONAD_VERSION.to_string(),
            encoder,
            heads: serde_json::Value::Null,
            preprocessing: serde_json::Value::Null,
            seed,
            epoch,
            training: serde_json::Value::Null,
        }
    }
}

/// Tensors plus metadata; see the module docs for the file layout.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Model variables by name, and optimizer state under [`OPTIMIZER_PREFIX`].
    pub tensors: BTreeMap<String, Tensor>,
    /// Metadata written to the header.
    pub meta: CheckpointMeta,
}

impl Checkpoint {
    /// An empty checkpoint.
    pub fn new(meta: CheckpointMeta) -> Self {
        Self {
            tensors: BTreeMap::new(),
            meta,
        }
    }

    /// Snapshots every variable of `varmap` (copies, so later training steps do not change it).
    ///
    /// # Errors
    /// A candle error if a copy fails.
    pub fn from_varmap(varmap: &VarMap, meta: CheckpointMeta) -> Result<Self> {
        let vars = varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("VarMap lock poisoned".into()))?;
        let mut tensors = BTreeMap::new();
        for (name, var) in vars.iter() {
            tensors.insert(name.clone(), var.as_detached_tensor().copy()?);
        }
        Ok(Self { tensors, meta })
    }

    /// Adds one optimizer-state tensor (stored as `optimizer.<name>`).
    pub fn insert_optimizer_state(&mut self, name: &str, value: Tensor) {
        self.tensors
            .insert(format!("{OPTIMIZER_PREFIX}{name}"), value.detach());
    }

    /// Optimizer-state tensors with the prefix stripped.
    pub fn optimizer_state(&self) -> BTreeMap<String, Tensor> {
        self.tensors
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(OPTIMIZER_PREFIX)
                    .map(|s| (s.to_string(), v.clone()))
            })
            .collect()
    }

    /// Model tensors (everything not under [`OPTIMIZER_PREFIX`]).
    pub fn model_tensors(&self) -> BTreeMap<String, Tensor> {
        self.tensors
            .iter()
            .filter(|(k, _)| !k.starts_with(OPTIMIZER_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Writes the checkpoint atomically (a temporary file beside `path`, synced, then renamed):
    /// `path` holds the previous checkpoint or the complete new one at every instant.
    ///
    /// # Errors
    /// [`Error::NonFiniteWeights`] (nothing written) when a tensor holds NaN or ±∞;
    /// [`Error::Write`] on write failure (naming `path`); [`Error::Safetensors`] if
    /// serialisation fails.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = serde_json::to_string(&self.meta).map_err(|e| Error::NotACheckpoint {
            path: path.to_path_buf(),
            reason: format!("metadata does not serialise: {e}"),
        })?;
        let mut data = Vec::with_capacity(self.tensors.len());
        for (k, v) in &self.tensors {
            data.push((k.as_str(), v.contiguous()?));
        }
        let hash = content_hash(data.iter().map(|(k, v)| (*k, v)));
        let metadata = HashMap::from([
            (META_KEY.to_string(), json),
            (FORMAT_KEY.to_string(), CHECKPOINT_FORMAT.to_string()),
            (HASH_KEY.to_string(), hash),
        ]);
        let bytes =
            safetensors::serialize(data, Some(metadata)).map_err(|e| Error::Safetensors {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        // A checkpoint that could not be loaded again must not replace a good one.
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::Safetensors {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if let Some((tensor, count)) = first_non_finite(&st) {
            return Err(Error::NonFiniteWeights {
                path: path.to_path_buf(),
                tensor,
                count,
            });
        }
        Ok(conad_fs::write_atomic(path, &bytes)?)
    }

    /// Reads a checkpoint; tensors go to `device`.
    ///
    /// Does not check compatibility: call [`Checkpoint::check_compatible`] with the config you
    /// intend to build.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Safetensors`] for an unreadable file; [`Error::NotACheckpoint`] for
    /// a safetensors file without conad metadata; [`Error::CorruptCheckpoint`] when the content
    /// hash disagrees or a weight is NaN or infinite; [`Error::VersionMismatch`] when the
    /// metadata comes from another conad version and cannot be read by this one.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let (_, header) =
            safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| Error::Safetensors {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let not_ckpt = |reason: String| Error::NotACheckpoint {
            path: path.to_path_buf(),
            reason,
        };
        let md = header.metadata().as_ref().ok_or_else(|| {
            not_ckpt(
                "the header has no __metadata__ (a plain weight file? use \
                 `load_safetensors_into_varmap`)"
                    .into(),
            )
        })?;
        match md.get(FORMAT_KEY) {
            Some(f) if f == CHECKPOINT_FORMAT => {}
            Some(f) => {
                return Err(not_ckpt(format!(
                    "format `{f}`, this build reads `{CHECKPOINT_FORMAT}` (written by another \
                     conad version: train it again — `conad train --overwrite`, or delete the run \
                     directory — or read it with the version that wrote it)"
                )));
            }
            None => return Err(not_ckpt("no `format` metadata entry".into())),
        }
        let json = md
            .get(META_KEY)
            .ok_or_else(|| not_ckpt(format!("no `{META_KEY}` metadata entry")))?;
        let meta: CheckpointMeta = match serde_json::from_str(json) {
            Ok(m) => m,
            Err(e) => {
                // Metadata from another version may not parse; report the version first.
                let version = serde_json::from_str::<serde_json::Value>(json)
                    .ok()
                    .and_then(|v| v.get("conad_version")?.as_str().map(str::to_string));
                return Err(match version {
                    Some(v) if v != CONAD_VERSION => Error::VersionMismatch {
                        checkpoint: v,
                        current: CONAD_VERSION.to_string(),
                    },
                    _ => not_ckpt(format!("metadata JSON does not parse: {e}")),
                });
            }
        };
        let stored_hash = md
            .get(HASH_KEY)
            .ok_or_else(|| not_ckpt(format!("no `{HASH_KEY}` metadata entry")))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::Safetensors {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut names = st.names();
        names.sort();
        let views = names
            .iter()
            .map(|n| st.tensor(n).map(|v| (*n, v)))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Safetensors {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let hash = content_hash(views.iter().map(|(n, v)| (*n, v)));
        if &hash != stored_hash {
            return Err(Error::CorruptCheckpoint {
                path: path.to_path_buf(),
                reason: format!(
                    "its tensors hash to {hash} but the file records {stored_hash} (the file \
                     was modified or damaged after it was written)"
                ),
            });
        }
        if let Some((name, count)) = first_non_finite(&st) {
            return Err(Error::CorruptCheckpoint {
                path: path.to_path_buf(),
                reason: format!("tensor `{name}` holds {count} NaN or infinite value(s)"),
            });
        }
        let tensors = parse_tensors(&bytes, path, device)?;
        Ok(Self { tensors, meta })
    }

    /// [`Checkpoint::load`] followed by [`Checkpoint::check_compatible`] with `config`.
    ///
    /// # Errors
    /// As the two calls: unreadable file, other conad version, other architecture.
    pub fn load_checked(
        path: impl AsRef<Path>,
        config: &ResNetConfig,
        device: &Device,
    ) -> Result<Self> {
        let ckpt = Self::load(path, device)?;
        ckpt.check_compatible(config)?;
        Ok(ckpt)
    }

    /// Errors unless the checkpoint was written by this conad version.
    ///
    /// # Errors
    /// [`Error::VersionMismatch`].
    pub fn check_version(&self) -> Result<()> {
        if self.meta.conad_version != CONAD_VERSION {
            return Err(Error::VersionMismatch {
                checkpoint: self.meta.conad_version.clone(),
                current: CONAD_VERSION.to_string(),
            });
        }
        Ok(())
    }

    /// Errors unless the stored encoder architecture equals `config`'s.
    ///
    /// # Errors
    /// [`Error::ArchitectureMismatch`] listing every differing field with both values.
    pub fn check_architecture(&self, config: &ResNetConfig) -> Result<()> {
        let differences = config.differences_from(&self.meta.encoder);
        if differences.is_empty() {
            Ok(())
        } else {
            Err(Error::ArchitectureMismatch { differences })
        }
    }

    /// [`Checkpoint::check_version`] then [`Checkpoint::check_architecture`].
    ///
    /// # Errors
    /// As the two checks.
    pub fn check_compatible(&self, config: &ResNetConfig) -> Result<()> {
        self.check_version()?;
        self.check_architecture(config)
    }

    /// Overwrites every variable of `varmap` with the stored value (e.g. to resume training).
    ///
    /// # Errors
    /// [`Error::MissingTensors`], [`Error::TensorShape`]; nothing is written on error.
    pub fn restore_varmap(&self, varmap: &VarMap) -> Result<WeightLoadReport> {
        assign_to_varmap(&self.tensors, varmap, "checkpoint")
    }

    /// A read-only [`VarBuilder`] over the model tensors, for inference
    /// (`ResNet::new(&meta.encoder, ckpt.var_builder(..))`).
    pub fn var_builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_tensors(self.model_tensors().into_iter().collect(), dtype, device)
    }
}
