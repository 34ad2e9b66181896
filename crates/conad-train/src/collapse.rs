//! Collapse monitor: the mean per-dimension standard deviation of L2-normalised embeddings
//! (lightly's `std_of_l2_normalized`, after Jing et al.'s dimensional-collapse analysis).
//!
//! For `n` embeddings in `R^d`, normalise each row, take the unbiased standard deviation of every
//! column, and average over the `d` columns. Healthy representations spread over the sphere give
//! ≈ `1/√d`; a collapsed encoder (every image mapped to one direction) gives 0.

/// `mean_j std_i( z_ij / ‖z_i‖ )` with the unbiased (n − 1) standard deviation, in f64.
/// Rows with zero norm stay zero (PyTorch `F.normalize` with ε = 1e-12). Returns `None` for
/// fewer than two rows or `d = 0`.
///
/// # Shapes
/// `data`: `rows × dim`, row-major.
pub fn std_of_l2_normalized(data: &[f32], rows: usize, dim: usize) -> Option<f64> {
    if rows < 2 || dim == 0 || data.len() != rows * dim {
        return None;
    }
    let mut sum = vec![0f64; dim];
    let mut sum_sq = vec![0f64; dim];
    for row in data.chunks_exact(dim) {
        let norm = row
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt()
            .max(1e-12);
        for ((s, q), &v) in sum.iter_mut().zip(sum_sq.iter_mut()).zip(row) {
            let z = f64::from(v) / norm;
            *s += z;
            *q += z * z;
        }
    }
    let n = rows as f64;
    let total: f64 = sum
        .iter()
        .zip(&sum_sq)
        .map(|(&s, &q)| {
            let mean = s / n;
            ((q - n * mean * mean) / (n - 1.0)).max(0.0).sqrt()
        })
        .sum();
    Some(total / dim as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapsed_embeddings_give_zero() {
        // Every row points the same way (different lengths): the normalised rows are equal.
        let data = [1.0f32, 2.0, 2.0, 4.0, 0.5, 1.0];
        assert!(std_of_l2_normalized(&data, 3, 2).unwrap().abs() < 1e-12);
    }

    #[test]
    fn hand_computed_example() {
        // Rows e1 and e2 (already unit): column 0 = [1, 0], column 1 = [0, 1];
        // unbiased std of [1, 0] is √0.5 for both columns, mean √0.5.
        let data = [1.0f32, 0.0, 0.0, 3.0];
        let s = std_of_l2_normalized(&data, 2, 2).unwrap();
        assert!((s - 0.5f64.sqrt()).abs() < 1e-12, "{s}");
    }

    #[test]
    fn golden_against_lightly_formula() {
        // /usr/bin/python3 (torch 1.13):
        //   z = torch.tensor([[0.3,-1.2,0.5],[2.0,0.1,-0.4],[-0.7,0.8,0.9],[0.05,0.2,-1.5]])
        //   torch.std(torch.nn.functional.normalize(z, dim=1), dim=0).mean().item()
        //   -> 0.6523520946502686
        let data = [
            0.3f32, -1.2, 0.5, 2.0, 0.1, -0.4, -0.7, 0.8, 0.9, 0.05, 0.2, -1.5,
        ];
        let s = std_of_l2_normalized(&data, 4, 3).unwrap();
        assert!((s - 0.6523520946502686).abs() < 1e-6, "{s}");
    }

    #[test]
    fn degenerate_inputs_return_none() {
        assert!(std_of_l2_normalized(&[1.0, 2.0], 1, 2).is_none());
        assert!(std_of_l2_normalized(&[], 0, 3).is_none());
        assert!(std_of_l2_normalized(&[1.0, 2.0, 3.0], 2, 2).is_none());
    }
}
