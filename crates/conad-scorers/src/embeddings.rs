//! Matrix types for embeddings: a borrowed row-major view ([`Embeddings`]) that users build from
//! plain slices, and an owned, serialisable matrix ([`EmbeddingMatrix`]) that fitted scorers keep.
//!
//! Feature conventions (docs/reference.md §0, §2.1): `ẑ = h / max(‖h‖, ε)` with ε = [`NORM_EPS`]; a zero
//! row stays zero (its cosine with anything is 0).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// ε in `ẑ = h / max(‖h‖, ε)` (docs/reference.md §0: "eps ≈ 1e-8 in the norm").
pub const NORM_EPS: f32 = 1e-8;

/// A borrowed, row-major `rows × cols` matrix of `f32` embeddings (one embedding per row).
///
/// # Shapes
/// `data.len() == rows * cols`; row `i` is `data[i*cols .. (i+1)*cols]`.
///
/// ```
/// use conad_scorers::Embeddings;
/// let data = vec![1.0_f32, 0.0, 0.0, 1.0, 0.5, 0.5];
/// let x = Embeddings::new(&data, 3, 2)?;
/// assert_eq!(x.row(2), &[0.5, 0.5]);
/// # Ok::<(), conad_scorers::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Embeddings<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
}

impl<'a> Embeddings<'a> {
    /// A checked view.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `data.len() != rows * cols`; [`Error::ZeroDimension`] if
    /// `cols == 0`. Values are not checked here (see [`Embeddings::check_finite`]); every `fit`
    /// and `score_batch` checks them and names the first bad row.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Result<Self> {
        if cols == 0 {
            return Err(Error::ZeroDimension);
        }
        let expected = rows.saturating_mul(cols);
        if data.len() != expected {
            return Err(Error::ShapeMismatch {
                len: data.len(),
                rows,
                cols,
                expected,
            });
        }
        Ok(Self { data, rows, cols })
    }

    /// A single embedding as a `1 × len` view.
    ///
    /// # Errors
    /// [`Error::ZeroDimension`] for an empty slice.
    pub fn from_row(row: &'a [f32]) -> Result<Self> {
        Self::new(row, 1, row.len())
    }

    /// Number of embeddings.
    pub const fn rows(&self) -> usize {
        self.rows
    }

    /// Feature dimension.
    pub const fn cols(&self) -> usize {
        self.cols
    }

    /// The row-major buffer.
    pub const fn as_slice(&self) -> &'a [f32] {
        self.data
    }

    /// Row `i`.
    ///
    /// # Panics
    /// If `i >= rows` (an indexing bug in the caller, like slice indexing).
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Iterator over rows.
    pub fn iter_rows(&self) -> impl ExactSizeIterator<Item = &'a [f32]> + 'a {
        self.data.chunks_exact(self.cols)
    }

    /// Rows `start..end` as a view.
    ///
    /// # Panics
    /// If the range is out of bounds.
    pub fn slice_rows(&self, start: usize, end: usize) -> Embeddings<'a> {
        Embeddings {
            data: &self.data[start * self.cols..end * self.cols],
            rows: end - start,
            cols: self.cols,
        }
    }

    /// Checks every value is finite.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming `what`, the row and the column of the first bad value.
    pub fn check_finite(&self, what: &str) -> Result<()> {
        if let Some(pos) = self.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: what.to_string(),
                row: pos / self.cols,
                col: pos % self.cols,
                value: self.data[pos],
            });
        }
        Ok(())
    }

    /// Checks the dimension equals `expected`.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`].
    pub fn check_dim(&self, expected: usize, what: &str) -> Result<()> {
        if self.cols != expected {
            return Err(Error::DimensionMismatch {
                what: what.to_string(),
                expected,
                got: self.cols,
            });
        }
        Ok(())
    }

    /// Checks there are at least `min` rows.
    ///
    /// # Errors
    /// [`Error::EmptyBank`].
    pub fn check_min_rows(&self, min: usize, what: &str) -> Result<()> {
        if self.rows < min {
            return Err(Error::EmptyBank {
                what: what.to_string(),
                rows: self.rows,
                min,
            });
        }
        Ok(())
    }

    /// Copies into an owned matrix.
    pub fn to_matrix(&self) -> EmbeddingMatrix {
        EmbeddingMatrix {
            data: self.data.to_vec(),
            rows: self.rows,
            cols: self.cols,
        }
    }
}

/// An owned, row-major `rows × cols` `f32` matrix (serialisable; fitted scorers store their
/// banks in it). Deserialisation checks `data.len() == rows × cols`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawMatrix")]
pub struct EmbeddingMatrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

/// Unchecked serde form of [`EmbeddingMatrix`].
#[derive(Deserialize)]
struct RawMatrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl TryFrom<RawMatrix> for EmbeddingMatrix {
    type Error = Error;
    fn try_from(r: RawMatrix) -> Result<Self> {
        Self::new(r.data, r.rows, r.cols)
    }
}

impl EmbeddingMatrix {
    /// An owned matrix from a row-major buffer.
    ///
    /// # Errors
    /// As [`Embeddings::new`].
    pub fn new(data: Vec<f32>, rows: usize, cols: usize) -> Result<Self> {
        Embeddings::new(&data, rows, cols)?;
        Ok(Self { rows, cols, data })
    }

    /// Borrowed view.
    pub fn view(&self) -> Embeddings<'_> {
        Embeddings {
            data: &self.data,
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// Number of rows.
    pub const fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub const fn cols(&self) -> usize {
        self.cols
    }

    /// The row-major buffer.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Mutable row-major buffer.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the matrix, returning the buffer.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// Row `i`.
    ///
    /// # Panics
    /// If `i >= rows`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// Euclidean norm accumulated in `f64` (`f32` result).
pub(crate) fn norm(x: &[f32]) -> f32 {
    dot64(x, x).sqrt() as f32
}

/// Dot product accumulated in `f64`.
pub(crate) fn dot64(a: &[f32], b: &[f32]) -> f64 {
    // Four independent accumulators let the compiler vectorise without reassociating a single sum.
    let mut acc = [0.0f64; 4];
    let chunks = a.len() / 4;
    for c in 0..chunks {
        for l in 0..4 {
            acc[l] += f64::from(a[4 * c + l]) * f64::from(b[4 * c + l]);
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for i in 4 * chunks..a.len() {
        s += f64::from(a[i]) * f64::from(b[i]);
    }
    s
}

/// L2-normalises `row` in place with `ẑ = h / max(‖h‖, eps)`; returns the original norm.
pub(crate) fn normalize_in_place(row: &mut [f32], eps: f32) -> f32 {
    let n = norm(row);
    let inv = 1.0 / n.max(eps);
    for v in row.iter_mut() {
        *v *= inv;
    }
    n
}

/// L2-normalises every row of a row-major buffer in place; returns the original norms.
pub(crate) fn normalize_rows_in_place(data: &mut [f32], cols: usize, eps: f32) -> Vec<f32> {
    data.chunks_exact_mut(cols)
        .map(|r| normalize_in_place(r, eps))
        .collect()
}

/// Variance of all entries of a row-major matrix (numpy's `X.var()`, i.e. population variance),
/// computed in `f64` with two passes.
pub(crate) fn variance_of_entries(data: &[f32]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let n = data.len() as f64;
    let mean = data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    data.iter()
        .map(|&v| {
            let c = f64::from(v) - mean;
            c * c
        })
        .sum::<f64>()
        / n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_constructor_rejects_bad_shapes() {
        let d = [0.0f32; 6];
        assert!(Embeddings::new(&d, 2, 3).is_ok());
        assert_eq!(
            Embeddings::new(&d, 4, 2),
            Err(Error::ShapeMismatch {
                len: 6,
                rows: 4,
                cols: 2,
                expected: 8
            })
        );
        assert_eq!(Embeddings::new(&d, 6, 0), Err(Error::ZeroDimension));
        // Overflowing rows × cols must not wrap around to a small number.
        assert!(matches!(
            Embeddings::new(&d, usize::MAX, 2),
            Err(Error::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn check_finite_names_row_and_column() {
        let d = [0.0f32, 1.0, 2.0, 3.0, f32::NAN, 5.0];
        let e = Embeddings::new(&d, 3, 2).unwrap();
        match e.check_finite("queries") {
            Err(Error::NonFinite { what, row, col, .. }) => {
                assert_eq!((what.as_str(), row, col), ("queries", 2, 0));
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
    }

    #[test]
    fn normalisation_and_variance() {
        let mut r = [3.0f32, 4.0];
        assert_eq!(normalize_in_place(&mut r, NORM_EPS), 5.0);
        assert!((r[0] - 0.6).abs() < 1e-7 && (r[1] - 0.8).abs() < 1e-7);
        let mut z = [0.0f32; 3];
        normalize_in_place(&mut z, NORM_EPS);
        assert_eq!(z, [0.0; 3]);
        // numpy: np.array([1., 2., 3., 4.]).var() == 1.25
        assert!((variance_of_entries(&[1.0, 2.0, 3.0, 4.0]) - 1.25).abs() < 1e-12);
    }
}
