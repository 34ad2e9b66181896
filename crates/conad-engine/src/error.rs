//! The engine's error type.

/// Errors of the conad engine: bad shapes or hyper-parameters handed to a layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor had the wrong rank or size for the operation.
    #[error("{op}: input shape {got:?} does not fit; expected {expected}")]
    Shape {
        /// The operation that rejected the input.
        op: &'static str,
        /// The offending shape.
        got: Vec<usize>,
        /// What the operation needs.
        expected: String,
    },
    /// A hyper-parameter was out of range.
    #[error("{op}: {name} = {value} is invalid; {hint}")]
    Param {
        /// The operation or layer.
        op: &'static str,
        /// The parameter name.
        name: &'static str,
        /// The offending value.
        value: f64,
        /// How to fix it.
        hint: &'static str,
    },
    /// Only `f32` tensors run on the engine.
    #[error("{op}: dtype {got:?} is not supported; convert to f32")]
    DType {
        /// The operation.
        op: &'static str,
        /// The offending dtype.
        got: candle_core::DType,
    },
    /// A mode this machine cannot run.
    #[error("{what} is not available: {why}; {fix}")]
    Unsupported {
        /// The mode asked for.
        what: &'static str,
        /// Why it cannot run here.
        why: &'static str,
        /// What to do instead.
        fix: &'static str,
    },
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl Error {
    /// Wraps the error as a candle error (for `Module`/`CustomOp` impls).
    pub fn into_candle(self) -> candle_core::Error {
        match self {
            Error::Candle(e) => e,
            other => candle_core::Error::Msg(other.to_string()),
        }
    }
}

/// `Result` with the engine's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
