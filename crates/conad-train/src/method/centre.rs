//! [`FixedCentre`]: a feature-space centre computed once, part-way through training, and kept in
//! a non-trained variable (`heads.center`) so checkpoints carry it and a resumed run is
//! bit-identical — MSC's centre and MIL-Conv's re-centring (docs/reference.md §1.8, §6.18).

use candle_core::{DType, Tensor};
use candle_nn::{Init, VarBuilder};

use super::HookContext;
use crate::error::{Error, Result};

/// Name of the centre variable under `heads.`.
const CENTER_VAR: &str = "center";

/// A centre fixed once at the start of epoch `round(center_after · epochs)`.
#[derive(Debug)]
pub(crate) struct FixedCentre {
    center_after: f64,
    value: Tensor,
    set: bool,
}

/// Errors unless `center_after` (the fraction of epochs before the centre is fixed) is in [0, 1).
pub(crate) fn validate_center_after(center_after: f64) -> Result<()> {
    if !(0.0..1.0).contains(&center_after) {
        return Err(Error::invalid(
            "method.center_after",
            center_after,
            "must be in [0, 1): the fraction of epochs before the centre is fixed",
        ));
    }
    Ok(())
}

fn is_set(c: &Tensor) -> Result<bool> {
    Ok(c.abs()?
        .sum_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?
        > 0.0)
}

impl FixedCentre {
    /// The `dim`-vector `heads.center` (zero until fixed; a checkpoint's value when loaded).
    pub(crate) fn new(heads: &VarBuilder<'_>, dim: usize, center_after: f64) -> Result<Self> {
        let value = heads.get_with_hints(dim, CENTER_VAR, Init::Const(0.0))?;
        Ok(Self {
            center_after,
            set: is_set(&value)?,
            value,
        })
    }

    /// Re-reads the variable (a resumed run restored it after `build`).
    pub(crate) fn refresh(&mut self) -> Result<()> {
        self.set = is_set(&self.value)?;
        Ok(())
    }

    /// True when the centre is still to be fixed at this epoch start.
    pub(crate) fn due(&self, ctx: &HookContext<'_>) -> bool {
        !self.set && ctx.epoch >= (self.center_after * ctx.epochs as f64).round() as u64
    }

    /// Encoder features (`N × d`) of every training image under the test transform, with the
    /// encoder as it is now — what a centre is computed from.
    pub(crate) fn training_features(ctx: &HookContext<'_>) -> Result<Tensor> {
        let bank = crate::embed::embed(
            ctx.encoder,
            ctx.images,
            ctx.test_transform,
            ctx.batch_size,
            ctx.device,
        )?;
        Ok(Tensor::from_slice(
            bank.as_slice(),
            (bank.rows(), bank.cols()),
            ctx.device,
        )?)
    }

    /// Stores `c` in the run's variable and uses it from now on.
    pub(crate) fn fix(&mut self, ctx: &HookContext<'_>, c: &Tensor) -> Result<()> {
        let name = format!("heads.{CENTER_VAR}");
        let vars = ctx.vars.data().lock().map_err(|_| {
            candle_core::Error::Msg("the run's variables are poisoned by a panicked thread".into())
        })?;
        let var = vars
            .get(&name)
            .ok_or_else(|| Error::MissingVariable { name: name.clone() })?;
        var.set(c)?;
        self.value = var.as_tensor().clone();
        self.set = true;
        tracing::info!(epoch = ctx.epoch, "centre fixed from the training features");
        Ok(())
    }

    /// The centre once fixed.
    pub(crate) fn get(&self) -> Option<&Tensor> {
        self.set.then_some(&self.value)
    }

    /// `false` for the centre variable (it is never trained).
    pub(crate) fn trains(name: &str) -> bool {
        name != format!("heads.{CENTER_VAR}")
    }
}
