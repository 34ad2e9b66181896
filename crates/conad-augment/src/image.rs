//! The image type every op works on: f32 planes in (C, H, W) order with values in [0, 1]
//! (docs/reference.md §3: all pipelines act on `ToTensor` output, i.e. uint8 / 255).
//!
//! Conversions from and to the uint8 (H, W, C) layout in which datasets are stored, and grey → RGB
//! channel replication (docs/reference.md §3.4: Fashion-MNIST "is converted to RGB by channel replication").

use crate::error::{Error, Result};

/// An image of 1 (grey) or 3 (RGB) channels stored as contiguous f32 planes.
///
/// # Shapes
/// `data.len() == channels × height × width`, index `(c, y, x)` at `c·H·W + y·W + x`.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    channels: usize,
    height: usize,
    width: usize,
    data: Vec<f32>,
}

/// Checks `channels ∈ {1, 3}` and non-zero sides.
pub(crate) fn check_shape(channels: usize, height: usize, width: usize, what: &str) -> Result<()> {
    if channels != 1 && channels != 3 {
        return Err(Error::UnsupportedChannels { channels });
    }
    if height == 0 || width == 0 {
        return Err(Error::EmptySize {
            what: what.to_string(),
            height,
            width,
        });
    }
    Ok(())
}

impl Image {
    /// Wraps a (C, H, W) buffer.
    ///
    /// # Errors
    /// [`Error::UnsupportedChannels`] unless `channels` is 1 or 3, [`Error::EmptySize`] for a zero
    /// side, [`Error::BufferLength`] if `data.len() != channels·height·width`.
    pub fn new(channels: usize, height: usize, width: usize, data: Vec<f32>) -> Result<Self> {
        check_shape(channels, height, width, "image")?;
        // Saturating: an absurd shape can never match a real buffer, so it reports a mismatch.
        let expected = channels.saturating_mul(height).saturating_mul(width);
        if data.len() != expected {
            return Err(Error::BufferLength {
                what: format!("image (C={channels}, H={height}, W={width})"),
                expected,
                actual: data.len(),
            });
        }
        Ok(Self {
            channels,
            height,
            width,
            data,
        })
    }

    /// An all-zero (black) image.
    ///
    /// # Errors
    /// As [`Image::new`].
    pub fn zeros(channels: usize, height: usize, width: usize) -> Result<Self> {
        check_shape(channels, height, width, "image")?;
        Ok(Self {
            channels,
            height,
            width,
            data: vec![0.0; channels * height * width],
        })
    }

    /// Converts one uint8 image stored as (H, W, C) into (C, H, W) f32 with values `v / 255`
    /// (torchvision `ToTensor`).
    ///
    /// # Errors
    /// As [`Image::new`]; [`Error::BufferLength`] if `data.len() != height·width·channels`.
    pub fn from_u8_hwc(data: &[u8], height: usize, width: usize, channels: usize) -> Result<Self> {
        check_shape(channels, height, width, "image")?;
        // Saturating: an absurd shape can never match a real buffer, so it reports a mismatch.
        let expected = channels.saturating_mul(height).saturating_mul(width);
        if data.len() != expected {
            return Err(Error::BufferLength {
                what: format!("uint8 image (H={height}, W={width}, C={channels})"),
                expected,
                actual: data.len(),
            });
        }
        let mut img = Self::empty();
        img.assign_u8_hwc(data, height, width, channels);
        Ok(img)
    }

    /// A 0×0 placeholder used as reusable scratch storage (never handed out).
    pub(crate) const fn empty() -> Self {
        Self {
            channels: 1,
            height: 0,
            width: 0,
            data: Vec::new(),
        }
    }

    /// Overwrites `self` with a uint8 (H, W, C) image, reusing the allocation. The caller has
    /// checked the shape.
    pub(crate) fn assign_u8_hwc(
        &mut self,
        data: &[u8],
        height: usize,
        width: usize,
        channels: usize,
    ) {
        debug_assert_eq!(data.len(), height * width * channels);
        self.reshape(channels, height, width);
        let plane = height * width;
        if channels == 1 {
            for (d, &s) in self.data.iter_mut().zip(data) {
                *d = U8_TO_UNIT[usize::from(s)];
            }
        } else {
            let (r, rest) = self.data.split_at_mut(plane);
            let (g, b) = rest.split_at_mut(plane);
            for (((px, r), g), b) in data.chunks_exact(3).zip(r).zip(g).zip(b) {
                *r = U8_TO_UNIT[usize::from(px[0])];
                *g = U8_TO_UNIT[usize::from(px[1])];
                *b = U8_TO_UNIT[usize::from(px[2])];
            }
        }
    }

    /// Sets the shape, reusing the allocation; the contents are unspecified afterwards.
    pub(crate) fn reshape(&mut self, channels: usize, height: usize, width: usize) {
        self.channels = channels;
        self.height = height;
        self.width = width;
        self.data.resize(channels * height * width, 0.0);
    }

    /// Copies `other` into `self`, reusing the allocation.
    pub(crate) fn assign(&mut self, other: &Self) {
        self.channels = other.channels;
        self.height = other.height;
        self.width = other.width;
        self.data.clear();
        self.data.extend_from_slice(&other.data);
    }

    /// Converts back to uint8 (H, W, C): `round(clamp(v, 0, 1) · 255)` (round half away from zero).
    pub fn to_u8_hwc(&self) -> Vec<u8> {
        let plane = self.height * self.width;
        let mut out = vec![0u8; plane * self.channels];
        for c in 0..self.channels {
            for (p, &v) in self.plane(c).iter().enumerate() {
                out[p * self.channels + c] = to_u8(v);
            }
        }
        out
    }

    /// Replicates a grey image to three identical channels; an RGB image is returned unchanged.
    pub fn to_rgb(&self) -> Self {
        if self.channels == 3 {
            return self.clone();
        }
        let mut data = Vec::with_capacity(3 * self.data.len());
        for _ in 0..3 {
            data.extend_from_slice(&self.data);
        }
        Self {
            channels: 3,
            height: self.height,
            width: self.width,
            data,
        }
    }

    /// In-place version of [`Image::to_rgb`].
    pub(crate) fn make_rgb(&mut self) {
        if self.channels == 1 {
            let plane = self.data.len();
            self.data.resize(3 * plane, 0.0);
            self.data.copy_within(0..plane, plane);
            self.data.copy_within(0..plane, 2 * plane);
            self.channels = 3;
        }
    }

    /// Number of channels (1 or 3).
    pub const fn channels(&self) -> usize {
        self.channels
    }

    /// Height in pixels.
    pub const fn height(&self) -> usize {
        self.height
    }

    /// Width in pixels.
    pub const fn width(&self) -> usize {
        self.width
    }

    /// `[C, H, W]`.
    pub const fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// All values, (C, H, W) row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// All values, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the image and returns its (C, H, W) buffer.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// Channel `c` as an (H, W) row-major plane.
    ///
    /// # Panics
    /// If `c >= channels` (a programming error, like slice indexing).
    pub fn plane(&self, c: usize) -> &[f32] {
        let n = self.height * self.width;
        &self.data[c * n..(c + 1) * n]
    }

    /// Channel `c`, mutable.
    ///
    /// # Panics
    /// If `c >= channels`.
    pub fn plane_mut(&mut self, c: usize) -> &mut [f32] {
        let n = self.height * self.width;
        &mut self.data[c * n..(c + 1) * n]
    }

    /// The three planes of an RGB image, mutably, or `None` for a grey image.
    pub fn rgb_planes_mut(&mut self) -> Option<(&mut [f32], &mut [f32], &mut [f32])> {
        if self.channels != 3 {
            return None;
        }
        let n = self.height * self.width;
        let (r, rest) = self.data.split_at_mut(n);
        let (g, b) = rest.split_at_mut(n);
        Some((r, g, b))
    }

    /// Value at channel `c`, row `y`, column `x`.
    ///
    /// # Panics
    /// If the index is out of bounds.
    pub fn get(&self, c: usize, y: usize, x: usize) -> f32 {
        assert!(
            c < self.channels && y < self.height && x < self.width,
            "index out of bounds"
        );
        self.data[(c * self.height + y) * self.width + x]
    }
}

/// `v / 255` for every uint8 level (the same IEEE division as `ToTensor`, done at compile time).
const U8_TO_UNIT: [f32; 256] = {
    let mut t = [0.0f32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as f32 / 255.0;
        i += 1;
    }
    t
};

/// `round(clamp(v, 0, 1) · 255)` as uint8.
pub(crate) fn to_u8(v: f32) -> u8 {
    // The clamp bounds the value to [0, 255], so the cast is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let q = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u8_hwc_round_trip_is_exact_and_transposes() {
        // 2×2 RGB image, pixels (r,g,b) = (0,1,2), (3,4,5), (6,7,8), (9,10,255).
        let hwc: Vec<u8> = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255];
        let img = Image::from_u8_hwc(&hwc, 2, 2, 3).unwrap();
        assert_eq!(img.shape(), [3, 2, 2]);
        // Red plane holds 0, 3, 6, 9.
        let red: Vec<f32> = [0.0f32, 3.0, 6.0, 9.0].iter().map(|v| v / 255.0).collect();
        assert_eq!(img.plane(0), red.as_slice());
        assert_eq!(img.get(2, 1, 1), 1.0);
        assert_eq!(img.to_u8_hwc(), hwc);
        // The lookup table is exactly ToTensor's division, and every level survives
        // v/255 → round(·255).
        for v in 0..=255u8 {
            assert_eq!(
                U8_TO_UNIT[usize::from(v)].to_bits(),
                (f32::from(v) / 255.0).to_bits()
            );
        }
        let all: Vec<u8> = (0..=255).collect();
        let g = Image::from_u8_hwc(&all, 16, 16, 1).unwrap();
        assert_eq!(g.to_u8_hwc(), all);
    }

    #[test]
    fn grey_to_rgb_replicates() {
        let g = Image::new(1, 1, 2, vec![0.25, 0.75]).unwrap();
        let rgb = g.to_rgb();
        assert_eq!(rgb.data(), &[0.25, 0.75, 0.25, 0.75, 0.25, 0.75]);
        let mut g2 = g.clone();
        g2.make_rgb();
        assert_eq!(g2, rgb);
        assert_eq!(rgb.to_rgb(), rgb);
    }

    #[test]
    fn bad_shapes_are_typed_errors() {
        assert_eq!(
            Image::new(2, 1, 1, vec![0.0; 2]),
            Err(Error::UnsupportedChannels { channels: 2 })
        );
        assert!(matches!(
            Image::new(3, 2, 2, vec![0.0; 11]),
            Err(Error::BufferLength {
                expected: 12,
                actual: 11,
                ..
            })
        ));
        assert!(matches!(
            Image::zeros(1, 0, 4),
            Err(Error::EmptySize { .. })
        ));
        assert!(matches!(
            Image::from_u8_hwc(&[0; 5], 2, 1, 3),
            Err(Error::BufferLength { expected: 6, .. })
        ));
    }
}
