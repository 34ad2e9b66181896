//! Grayscale conversion: `L = w_r·R + w_g·G + w_b·B` (docs/reference.md §3.1: ITU-R 601 weights
//! 0.299, 0.587, 0.114, replicated to three channels for `RandomGrayscale`).
//!
//! torchvision 0.14's tensor backend (and TensorFlow, used by the SimCLR reference code) uses
//! 0.2989 for red instead of 0.299; [`LumaWeights::Torchvision`] selects that variant so results
//! can be compared bit-for-bit-ish with torchvision. The weights also define the grey image that
//! `adjust_contrast` averages and `adjust_saturation` blends with.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::image::Image;

/// Which RGB → luma weights to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LumaWeights {
    /// ITU-R BT.601 (0.299, 0.587, 0.114): docs/reference.md §3.1 and PIL's `convert("L")`.
    #[default]
    Itu601,
    /// torchvision 0.14 tensor backend / TensorFlow (0.2989, 0.587, 0.114).
    Torchvision,
}

impl LumaWeights {
    /// The `[w_r, w_g, w_b]` coefficients.
    pub const fn coefficients(self) -> [f32; 3] {
        match self {
            Self::Itu601 => [0.299, 0.587, 0.114],
            Self::Torchvision => [0.2989, 0.587, 0.114],
        }
    }
}

/// Luma of one pixel, evaluated as `(w_r·r + w_g·g) + w_b·b` like torchvision.
#[inline]
pub fn luma(r: f32, g: f32, b: f32, w: [f32; 3]) -> f32 {
    w[0] * r + w[1] * g + w[2] * b
}

/// Grayscale version of `img` with `output_channels` (1 or 3) identical channels
/// (torchvision `F.rgb_to_grayscale`). A grey input is copied.
///
/// # Shapes
/// (1 or 3, H, W) → (`output_channels`, H, W).
///
/// # Errors
/// [`Error::UnsupportedChannels`] unless `output_channels` is 1 or 3.
pub fn rgb_to_grayscale(
    img: &Image,
    weights: LumaWeights,
    output_channels: usize,
) -> Result<Image> {
    if output_channels != 1 && output_channels != 3 {
        return Err(Error::UnsupportedChannels {
            channels: output_channels,
        });
    }
    let plane = img.height() * img.width();
    let mut grey = vec![0.0f32; plane];
    if img.channels() == 3 {
        let w = weights.coefficients();
        let (r, g, b) = (img.plane(0), img.plane(1), img.plane(2));
        for (((o, &r), &g), &b) in grey.iter_mut().zip(r).zip(g).zip(b) {
            *o = luma(r, g, b, w);
        }
    } else {
        grey.copy_from_slice(img.plane(0));
    }
    let mut data = Vec::with_capacity(plane * output_channels);
    for _ in 0..output_channels {
        data.extend_from_slice(&grey);
    }
    Image::new(output_channels, img.height(), img.width(), data)
}

/// `RandomGrayscale`'s effect in place: an RGB image becomes three copies of its luma; a grey
/// image is unchanged (torchvision keeps the channel count).
pub fn grayscale_in_place(img: &mut Image, weights: LumaWeights) {
    let w = weights.coefficients();
    if let Some((r, g, b)) = img.rgb_planes_mut() {
        for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
            let l = luma(*r, *g, *b, w);
            *r = l;
            *g = l;
            *b = l;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn itu601_hand_computed() {
        // (0.2, 0.4, 1.0): 0.299·0.2 + 0.587·0.4 + 0.114·1.0 = 0.0598 + 0.2348 + 0.114 = 0.4086.
        let img = Image::new(3, 1, 1, vec![0.2, 0.4, 1.0]).unwrap();
        let g = rgb_to_grayscale(&img, LumaWeights::Itu601, 1).unwrap();
        assert!((g.data()[0] - 0.4086).abs() < 1e-7);
        // Torchvision weights: 0.2989·0.2 = 0.05978 → 0.40858.
        let t = rgb_to_grayscale(&img, LumaWeights::Torchvision, 3).unwrap();
        assert_eq!(t.shape(), [3, 1, 1]);
        assert!((t.data()[2] - 0.40858).abs() < 1e-7);
        let mut inplace = img.clone();
        grayscale_in_place(&mut inplace, LumaWeights::Torchvision);
        assert_eq!(inplace, t);
        assert!(rgb_to_grayscale(&img, LumaWeights::Itu601, 2).is_err());
    }

    #[test]
    fn grey_input_is_unchanged() {
        let mut img = Image::new(1, 1, 2, vec![0.3, 0.9]).unwrap();
        grayscale_in_place(&mut img, LumaWeights::Itu601);
        assert_eq!(img.data(), &[0.3, 0.9]);
        let three = rgb_to_grayscale(&img, LumaWeights::Itu601, 3).unwrap();
        assert_eq!(three.data(), &[0.3, 0.9, 0.3, 0.9, 0.3, 0.9]);
    }
}
