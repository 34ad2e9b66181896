//! The linfa-style parameter/fit/score traits shared by every scorer.
//!
//! The life cycle is `XParams` (unchecked; builder setters; serde) → [`ParamGuard::check`] →
//! `XValidParams` → [`Fit::fit`] on the training bank → a fitted scorer implementing
//! [`AnomalyScorer`]. Every params type also implements [`Fit`] itself (validating first), so
//! `KnnParams::default().k(5).fit(bank)` works directly, as in linfa.
//!
//! **Sign convention.** Every [`AnomalyScorer::score`] returns an *anomaly* score: higher means
//! more anomalous. The papers state most scores as normality scores (docs/reference.md §2.11); each scorer
//! documents the exact relation (e.g. kNN anomaly = 1 − mean cosine).

use crate::embeddings::Embeddings;
use crate::error::Result;

/// Parameter validation (linfa's `ParamGuard`).
pub trait ParamGuard {
    /// The validated parameter type.
    type Checked;

    /// Validates and borrows the checked parameters.
    ///
    /// # Errors
    /// A typed [`Error`](crate::Error) naming the invalid value.
    fn check_ref(&self) -> Result<&Self::Checked>;

    /// Validates and returns the checked parameters.
    ///
    /// # Errors
    /// As [`ParamGuard::check_ref`].
    fn check(self) -> Result<Self::Checked>;
}

/// Fitting a scorer on a bank of normal training embeddings.
pub trait Fit {
    /// The fitted scorer.
    type Fitted;

    /// Fits on `train` (one embedding per row).
    ///
    /// # Errors
    /// Invalid parameters, an empty bank, non-finite values (the error names the row), or a
    /// bank too small for the parameters (e.g. k > rows).
    fn fit(&self, train: Embeddings<'_>) -> Result<Self::Fitted>;
}

impl<P> Fit for P
where
    P: ParamGuard,
    P::Checked: Fit,
{
    type Fitted = <P::Checked as Fit>::Fitted;

    fn fit(&self, train: Embeddings<'_>) -> Result<Self::Fitted> {
        self.check_ref()?.fit(train)
    }
}

/// A fitted anomaly scorer (object safe: `Box<dyn AnomalyScorer>`).
///
/// Scores are anomaly scores: **higher = more anomalous**.
pub trait AnomalyScorer: Send + Sync + std::fmt::Debug {
    /// Short name (`"knn"`, `"gaussian"`, …).
    fn name(&self) -> &'static str;

    /// Feature dimension the scorer was fitted on.
    fn dim(&self) -> usize;

    /// Anomaly scores of a batch of queries, one per row.
    ///
    /// # Shapes
    /// `queries`: `m × dim` → `m` scores.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`](crate::Error::DimensionMismatch) or
    /// [`Error::NonFinite`](crate::Error::NonFinite) (naming the query row).
    fn score_batch(&self, queries: Embeddings<'_>) -> Result<Vec<f32>>;

    /// Anomaly score of a single embedding.
    ///
    /// # Errors
    /// As [`AnomalyScorer::score_batch`].
    fn score(&self, query: &[f32]) -> Result<f32> {
        let q = Embeddings::from_row(query)?;
        Ok(self.score_batch(q)?[0])
    }
}

impl<S: AnomalyScorer + ?Sized> AnomalyScorer for Box<S> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn score_batch(&self, queries: Embeddings<'_>) -> Result<Vec<f32>> {
        (**self).score_batch(queries)
    }
    fn score(&self, query: &[f32]) -> Result<f32> {
        (**self).score(query)
    }
}

/// Implements [`ParamGuard`] plus `validate()`/`Default` plumbing for a linfa-style
/// `XParams(XValidParams)` newtype whose valid type has `fn validate(&self) -> Result<()>`.
macro_rules! impl_param_guard {
    ($params:ident, $valid:ident) => {
        impl $crate::traits::ParamGuard for $params {
            type Checked = $valid;

            fn check_ref(&self) -> $crate::error::Result<&$valid> {
                self.0.validate()?;
                Ok(&self.0)
            }

            fn check(self) -> $crate::error::Result<$valid> {
                self.0.validate()?;
                Ok(self.0)
            }
        }

        impl $params {
            /// Validates the parameters without consuming them.
            ///
            /// # Errors
            /// A typed [`Error`](crate::Error) naming the invalid value.
            pub fn validate(&self) -> $crate::error::Result<()> {
                self.0.validate()
            }

            /// The parameters as set, before validation (for describing a config).
            #[allow(dead_code)] // expanded for every scorer, read for some
            pub(crate) fn unchecked(&self) -> &$valid {
                &self.0
            }
        }

        impl From<$valid> for $params {
            fn from(v: $valid) -> Self {
                Self(v)
            }
        }
    };
}
pub(crate) use impl_param_guard;
