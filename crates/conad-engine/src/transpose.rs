//! Layout helper: cache-blocked matrix transpose — turns the weight-gradient accumulator (`dWᵀ`,
//! see [`crate::conv_backward`]) into the weight's `O × C·k²` layout.

const BLOCK: usize = 16;

/// `dst (cols × rows) = srcᵀ` for a row-major `src` (`rows × cols`).
///
/// Full 16 × 16 tiles go through a local tile so that both the reads from `src` and the writes
/// to `dst` are contiguous runs of 16; ragged edges are copied element by element.
pub fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    assert_eq!(src.len(), rows * cols, "transpose: source length");
    assert_eq!(dst.len(), rows * cols, "transpose: destination length");
    let mut tile = [[0.0f32; BLOCK]; BLOCK];
    for r0 in (0..rows).step_by(BLOCK) {
        let r1 = (r0 + BLOCK).min(rows);
        for c0 in (0..cols).step_by(BLOCK) {
            let c1 = (c0 + BLOCK).min(cols);
            if r1 - r0 == BLOCK && c1 - c0 == BLOCK {
                for (i, row) in tile.iter_mut().enumerate() {
                    row.copy_from_slice(&src[(r0 + i) * cols + c0..][..BLOCK]);
                }
                for j in 0..BLOCK {
                    let out = &mut dst[(c0 + j) * rows + r0..][..BLOCK];
                    for (i, o) in out.iter_mut().enumerate() {
                        *o = tile[i][j];
                    }
                }
            } else {
                for r in r0..r1 {
                    for c in c0..c1 {
                        dst[c * rows + r] = src[r * cols + c];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_swaps_indices_on_ragged_blocks() {
        let (rows, cols) = (19, 37);
        let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let mut dst = vec![0.0; rows * cols];
        transpose(&src, rows, cols, &mut dst);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(dst[c * rows + r], src[r * cols + c]);
            }
        }
    }
}
