//! Convolution geometry and the fixed work partition shared by the forward and backward passes.
//!
//! Every kernel works on *chunks* of whole images: a chunk holds enough images that its im2col
//! matrix has at least [`TARGET_COLUMNS`] columns (so late layers with 4×4 maps still feed the
//! GEMM a wide right-hand side), and chunks are grouped into at most [`MAX_GROUPS`] reduction
//! groups for the weight gradient. Both partitions depend on the shape only — never on the
//! number of threads — which is what makes every result bit-identical for any rayon pool size.

use crate::error::{Error, Result};

/// Minimum number of im2col columns (output pixels) per chunk.
pub const TARGET_COLUMNS: usize = 256;
/// Upper bound on the number of partial weight gradients summed at the end.
pub const MAX_GROUPS: usize = 8;

/// Shape of one 2-d convolution (NCHW input, `out × in × k × k` weight, no bias, no dilation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Batch size.
    pub batch: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Square kernel side.
    pub kernel: usize,
    /// Stride (both directions).
    pub stride: usize,
    /// Zero padding (both directions).
    pub padding: usize,
}

impl ConvGeometry {
    /// Checks the geometry of `x` (`N × C × H × W`) against a weight `O × C × k × k`.
    ///
    /// # Errors
    /// [`Error::Shape`] for wrong ranks, a channel mismatch, a non-square kernel or an input
    /// smaller than the kernel; [`Error::Param`] for stride 0.
    pub fn new(x: &[usize], w: &[usize], stride: usize, padding: usize) -> Result<Self> {
        if stride == 0 {
            return Err(Error::Param {
                op: "conv2d",
                name: "stride",
                value: 0.0,
                hint: "the stride must be at least 1",
            });
        }
        if w.len() != 4 || w[2] != w[3] || w[2] == 0 {
            return Err(Error::Shape {
                op: "conv2d",
                got: w.to_vec(),
                expected: "a weight out × in × k × k with k ≥ 1".into(),
            });
        }
        let k = w[2];
        if x.len() != 4
            || x[1] != w[1]
            || x[2] + 2 * padding < k
            || x[3] + 2 * padding < k
            || x[0] == 0
        {
            return Err(Error::Shape {
                op: "conv2d",
                got: x.to_vec(),
                expected: format!(
                    "N × {} × H × W with N ≥ 1 and H, W ≥ {} (kernel {k}, padding {padding})",
                    w[1],
                    k.saturating_sub(2 * padding).max(1)
                ),
            });
        }
        Ok(Self {
            batch: x[0],
            in_channels: x[1],
            height: x[2],
            width: x[3],
            out_channels: w[0],
            kernel: k,
            stride,
            padding,
        })
    }

    /// Output height.
    pub fn out_height(&self) -> usize {
        (self.height + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Output width.
    pub fn out_width(&self) -> usize {
        (self.width + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Output pixels per image.
    pub fn out_pixels(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Input pixels per image.
    pub fn in_pixels(&self) -> usize {
        self.height * self.width
    }

    /// Rows of the im2col matrix: `in_channels · k²`.
    pub fn patch_len(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    /// Whether im2col is the identity (1×1 kernel, stride 1, no padding).
    pub fn is_pointwise(&self) -> bool {
        self.kernel == 1 && self.stride == 1 && self.padding == 0
    }

    /// Whether this is a stride-1 "same" convolution (odd kernel, padding `(k − 1)/2`): its input
    /// gradient is then the same kind of convolution of the output gradient.
    pub fn is_same_stride1(&self) -> bool {
        self.stride == 1 && self.kernel % 2 == 1 && 2 * self.padding + 1 == self.kernel
    }

    /// Images per chunk (a function of the shape only).
    pub fn images_per_chunk(&self) -> usize {
        TARGET_COLUMNS
            .div_ceil(self.out_pixels())
            .clamp(1, self.batch)
    }

    /// Number of chunks.
    pub fn chunks(&self) -> usize {
        self.batch.div_ceil(self.images_per_chunk())
    }

    /// Chunks per reduction group (a function of the shape only).
    pub fn chunks_per_group(&self) -> usize {
        self.chunks().div_ceil(MAX_GROUPS)
    }

    /// Floating-point operations of one forward pass (`2·N·O·HoWo·C·k²`); each gradient costs the
    /// same.
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.out_channels * self.out_pixels() * self.patch_len()) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_depends_on_shape_only_and_covers_the_batch() {
        let g = ConvGeometry::new(&[64, 16, 32, 32], &[16, 16, 3, 3], 1, 1).unwrap();
        assert_eq!((g.out_height(), g.out_width()), (32, 32));
        assert_eq!(g.images_per_chunk(), 1);
        assert_eq!(g.chunks(), 64);
        assert_eq!(g.chunks_per_group(), 8);
        let g = ConvGeometry::new(&[64, 128, 8, 8], &[128, 128, 3, 3], 2, 1).unwrap();
        assert_eq!(g.out_pixels(), 16);
        assert_eq!(g.images_per_chunk(), 16);
        assert_eq!(g.chunks(), 4);
        assert!(ConvGeometry::new(&[2, 3, 2, 2], &[4, 3, 5, 5], 1, 1).is_err());
        assert!(ConvGeometry::new(&[2, 3, 8, 8], &[4, 2, 3, 3], 1, 1).is_err());
        assert!(ConvGeometry::new(&[2, 3, 8, 8], &[4, 3, 3, 3], 0, 1).is_err());
    }
}
