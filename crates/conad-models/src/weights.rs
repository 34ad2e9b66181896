//! Loading stored weights (a torchvision export, a conad checkpoint) into a [`VarMap`].
//!
//! All shapes are checked before any variable is written, so a failed load leaves the model
//! untouched. Tensors in the file that the model does not use (torchvision's `fc` on an encoder,
//! `num_batches_tracked`, optimizer state) are reported, not treated as errors.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Tensor;
use candle_core::safetensors::Load;
use candle_nn::VarMap;

use crate::error::{Error, Result};

/// What a weight load did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeightLoadReport {
    /// Number of model variables that were overwritten.
    pub loaded: usize,
    /// Names present in the source but not used by the model (sorted).
    pub unused: Vec<String>,
}

/// Reads every tensor of a safetensors file onto `device`.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Safetensors`] if it is truncated or corrupt.
pub fn read_safetensors(
    path: impl AsRef<Path>,
    device: &candle_core::Device,
) -> Result<BTreeMap<String, Tensor>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_tensors(&bytes, path, device)
}

pub(crate) fn parse_tensors(
    bytes: &[u8],
    path: &Path,
    device: &candle_core::Device,
) -> Result<BTreeMap<String, Tensor>> {
    let st_err = |message: String| Error::Safetensors {
        path: path.to_path_buf(),
        message,
    };
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| st_err(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let t = view
            .load(device)
            .map_err(|e| st_err(format!("tensor `{name}`: {e}")))?;
        out.insert(name, t);
    }
    Ok(out)
}

/// Overwrites every variable of `varmap` with the tensor of the same name in `tensors`
/// (converted to the variable's dtype and device).
///
/// # Errors
/// [`Error::MissingTensors`] listing every variable without a tensor;
/// [`Error::TensorShape`] for the first shape disagreement. Nothing is written on error.
pub fn assign_to_varmap(
    tensors: &BTreeMap<String, Tensor>,
    varmap: &VarMap,
    source_name: &str,
) -> Result<WeightLoadReport> {
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("VarMap lock poisoned".into()))?;
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !tensors.contains_key(n.as_str()))
        .map(|n| n.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::MissingTensors {
            source_name: source_name.to_string(),
            names: missing,
        });
    }
    let mut staged = Vec::with_capacity(names.len());
    for name in &names {
        let var = &vars[name.as_str()];
        let t = &tensors[name.as_str()];
        if t.dims() != var.dims() {
            return Err(Error::TensorShape {
                source_name: source_name.to_string(),
                name: name.to_string(),
                expected: var.dims().to_vec(),
                found: t.dims().to_vec(),
            });
        }
        staged.push((
            var,
            t.to_dtype(var.dtype())?
                .to_device(var.device())?
                .contiguous()?,
        ));
    }
    for (var, value) in &staged {
        var.set(value)?;
    }
    let unused = tensors
        .keys()
        .filter(|k| !vars.contains_key(k.as_str()))
        .cloned()
        .collect();
    Ok(WeightLoadReport {
        loaded: staged.len(),
        unused,
    })
}

/// Loads a safetensors weight file (e.g. a torchvision `resnet18` export) into `varmap`.
///
/// Build the model first (e.g. with [`crate::seeded_var_builder`]) so that `varmap` holds its
/// variables, then overwrite them here.
///
/// # Errors
/// As [`read_safetensors`] and [`assign_to_varmap`].
pub fn load_safetensors_into_varmap(
    path: impl AsRef<Path>,
    varmap: &VarMap,
) -> Result<WeightLoadReport> {
    let path = path.as_ref();
    let device = varmap
        .all_vars()
        .first()
        .map(|v| v.device().clone())
        .unwrap_or(candle_core::Device::Cpu);
    let tensors = read_safetensors(path, &device)?;
    assign_to_varmap(&tensors, varmap, &path.display().to_string())
}
