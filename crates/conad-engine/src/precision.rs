//! Arithmetic precision of the engine's convolutions on the current thread.
//!
//! [`Precision::F32`] (the default) computes everything in f32. [`Precision::Bf16`] is an opt-in
//! mixed-precision mode in the spirit of PyTorch's CPU bf16 autocast: the convolutions that the
//! AMX kernels handle ([`crate::bf16_conv`]: stride-1 "same" layers with channel counts that are
//! multiples of 16 — every ResNet-18 convolution except the stem and the stride-2 and 1×1
//! downsampling layers) round their operands to bf16 and accumulate in f32; weights, batch norm,
//! the loss and the optimiser stay f32. Results are deterministic for any thread count in both
//! modes, but differ between the modes.
//!
//! The mode is per thread and scoped ([`PrecisionScope`]): forward and backward passes read it
//! when they dispatch, so the training loop sets it around a whole step.

use std::cell::Cell;

use crate::error::{Error, Result};

/// Arithmetic precision of convolutions.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 operands and accumulation.
    #[default]
    F32,
    /// bf16 operands, f32 accumulation and outputs (needs AMX-BF16).
    Bf16,
}

impl Precision {
    /// The name used in configuration files: `"f32"` or `"bf16"`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// Whether this machine runs the mode: always for f32; for bf16, a CPU with AMX-BF16 and an
    /// OS that grants the tile state.
    pub fn supported(self) -> bool {
        match self {
            Precision::F32 => true,
            Precision::Bf16 => crate::amx::available(),
        }
    }

    /// Makes `self` the current thread's precision until the returned scope is dropped.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for bf16 on a machine without AMX-BF16.
    pub fn scope(self) -> Result<PrecisionScope> {
        if !self.supported() {
            return Err(Error::Unsupported {
                what: "precision = \"bf16\"",
                why: "this CPU (or OS) has no AMX-BF16",
                fix: "train with precision = \"f32\" (the default)",
            });
        }
        let previous = CURRENT.replace(self);
        Ok(PrecisionScope {
            previous,
            _not_send: std::marker::PhantomData,
        })
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    /// `"f32"` or `"bf16"` ([`Precision::name`]).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        [Precision::F32, Precision::Bf16]
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("precision `{s}` is not one of f32, bf16"))
    }
}

thread_local! {
    static CURRENT: Cell<Precision> = const { Cell::new(Precision::F32) };
}

/// The current thread's precision.
pub fn precision() -> Precision {
    CURRENT.get()
}

/// Restores the previous precision when dropped (see [`Precision::scope`]).
#[derive(Debug)]
pub struct PrecisionScope {
    previous: Precision,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for PrecisionScope {
    fn drop(&mut self) {
        CURRENT.set(self.previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for p in [Precision::F32, Precision::Bf16] {
            assert_eq!(p.name().parse::<Precision>(), Ok(p));
        }
        assert!("fp16".parse::<Precision>().unwrap_err().contains("fp16"));
    }

    #[test]
    fn scopes_nest_and_restore() {
        assert_eq!(precision(), Precision::F32);
        match Precision::Bf16.scope() {
            Ok(outer) => {
                assert_eq!(precision(), Precision::Bf16);
                {
                    let _inner = Precision::F32.scope().unwrap();
                    assert_eq!(precision(), Precision::F32);
                }
                assert_eq!(precision(), Precision::Bf16);
                drop(outer);
            }
            Err(e) => {
                assert!(!Precision::Bf16.supported());
                assert!(e.to_string().contains("AMX-BF16"), "{e}");
            }
        }
        assert_eq!(precision(), Precision::F32);
    }
}
