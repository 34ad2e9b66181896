//! Per-channel normalisation `x ← (x − mean_c) / std_c` (torchvision `F.normalize`) and the
//! dataset constants of docs/reference.md §3.3–§3.4 and CON2's 0.5/0.5 (§1.4, §3.6).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::image::Image;

/// Means and standard deviations, one per channel or a single value for all channels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    /// Channel means.
    pub mean: Vec<f32>,
    /// Channel standard deviations (> 0).
    pub std: Vec<f32>,
}

impl Normalize {
    /// CIFAR-10: (0.4914, 0.4822, 0.4465) / (0.2023, 0.1994, 0.2010).
    pub fn cifar10() -> Self {
        Self {
            mean: vec![0.4914, 0.4822, 0.4465],
            std: vec![0.2023, 0.1994, 0.2010],
        }
    }

    /// CIFAR-100: (0.5071, 0.4867, 0.4408) / (0.2675, 0.2565, 0.2761).
    pub fn cifar100() -> Self {
        Self {
            mean: vec![0.5071, 0.4867, 0.4408],
            std: vec![0.2675, 0.2565, 0.2761],
        }
    }

    /// Fashion-MNIST: 0.2860 / 0.3204 on every (replicated) channel.
    pub fn fashion_mnist() -> Self {
        Self {
            mean: vec![0.2860],
            std: vec![0.3204],
        }
    }

    /// Cats-vs-Dogs (64×64, training): (0.4899, 0.4546, 0.4161) / (0.2204, 0.2158, 0.2156).
    pub fn cats_vs_dogs() -> Self {
        Self {
            mean: vec![0.4899, 0.4546, 0.4161],
            std: vec![0.2204, 0.2158, 0.2156],
        }
    }

    /// Mean 0.5, std 0.5 on every channel (CSI's in-network normalisation, CON2): maps \[0, 1\] to
    /// [−1, 1].
    pub fn half() -> Self {
        Self {
            mean: vec![0.5],
            std: vec![0.5],
        }
    }

    /// Checks lengths (equal, non-empty, at most 3) and values (finite means, finite stds > 0).
    ///
    /// # Errors
    /// [`Error::NormalizeLength`] or [`Error::InvalidParameter`].
    pub fn validate(&self) -> Result<()> {
        let (m, s) = (self.mean.len(), self.std.len());
        if m != s || m == 0 || m > 3 || m == 2 {
            return Err(Error::NormalizeLength {
                mean_len: m,
                std_len: s,
                channels: m.max(s),
            });
        }
        for (c, &v) in self.mean.iter().enumerate() {
            if !v.is_finite() {
                return Err(Error::invalid(
                    format!("normalize.mean[{c}]"),
                    f64::from(v),
                    "need a finite mean",
                ));
            }
        }
        for (c, &v) in self.std.iter().enumerate() {
            if !(v > 0.0 && v.is_finite()) {
                return Err(Error::invalid(
                    format!("normalize.std[{c}]"),
                    f64::from(v),
                    "need a finite std > 0",
                ));
            }
        }
        Ok(())
    }

    /// Checks that the constants fit an image of `channels` channels.
    ///
    /// # Errors
    /// [`Error::NormalizeLength`] unless there is one value, or one per channel.
    pub fn check_channels(&self, channels: usize) -> Result<()> {
        let m = self.mean.len();
        if m == self.std.len() && (m == 1 || m == channels) {
            Ok(())
        } else {
            Err(Error::NormalizeLength {
                mean_len: m,
                std_len: self.std.len(),
                channels,
            })
        }
    }

    /// Normalises `img` in place: `(x − mean_c) / std_c` (subtract, then divide, like torch).
    ///
    /// # Errors
    /// As [`Normalize::validate`] and [`Normalize::check_channels`].
    pub fn apply(&self, img: &mut Image) -> Result<()> {
        self.validate()?;
        self.check_channels(img.channels())?;
        self.apply_unchecked(img);
        Ok(())
    }

    pub(crate) fn apply_unchecked(&self, img: &mut Image) {
        for c in 0..img.channels() {
            let k = if self.mean.len() == 1 { 0 } else { c };
            let (m, s) = (self.mean[k], self.std[k]);
            for x in img.plane_mut(c) {
                *x = (*x - m) / s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_per_channel_and_broadcasts_single_values() {
        let mut img = Image::new(3, 1, 1, vec![0.4914, 0.6816, 0.4465]).unwrap();
        Normalize::cifar10().apply(&mut img).unwrap();
        assert!(img.data()[0].abs() < 1e-7);
        assert!((img.data()[1] - 1.0).abs() < 1e-5);
        assert!(img.data()[2].abs() < 1e-7);
        let mut g = Image::new(3, 1, 2, vec![0.0, 1.0, 0.5, 0.5, 0.25, 0.75]).unwrap();
        Normalize::half().apply(&mut g).unwrap();
        assert_eq!(g.data(), &[-1.0, 1.0, 0.0, 0.0, -0.5, 0.5]);
    }

    #[test]
    fn length_and_value_errors() {
        let mut grey = Image::zeros(1, 2, 2).unwrap();
        assert!(matches!(
            Normalize::cifar10().apply(&mut grey),
            Err(Error::NormalizeLength { channels: 1, .. })
        ));
        let zero_std = Normalize {
            mean: vec![0.5],
            std: vec![0.0],
        };
        assert!(matches!(
            zero_std.validate(),
            Err(Error::InvalidConfig { .. })
        ));
        let mismatched = Normalize {
            mean: vec![0.5, 0.5, 0.5],
            std: vec![0.5],
        };
        assert!(mismatched.validate().is_err());
    }
}
