//! Gaussian blur with torchvision 0.14 `F.gaussian_blur` semantics (docs/reference.md §3.1 step 4, §3.4,
//! §3.5): kernel `k` odd, 1-D weights `exp(−½(x/σ)²)` at `x = −(k−1)/2 … (k−1)/2`, normalised to
//! sum 1; the 2-D kernel is their outer product, so the blur is applied separably (rows, then
//! columns); borders use reflect padding (`torch.nn.functional.pad(mode="reflect")`, the edge pixel
//! is not repeated). `σ ~ U(σ_min, σ_max)` per application (`GaussianBlur.get_params`).
//!
//! Kernel sizes of at least the image side (which torch rejects) are handled by reflecting
//! repeatedly.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::color_jitter::check_probability;
use crate::crop::uniform;
use crate::error::{Error, Result};
use crate::image::Image;

/// `RandomApply(GaussianBlur(kernel_size, sigma), p)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaussianBlur {
    /// Odd kernel side (3 for FIRM at 32 px; ≈ 10 % of the image side for SimCLR).
    pub kernel_size: usize,
    /// `[σ_min, σ_max]`, `0 < σ_min ≤ σ_max`.
    pub sigma: [f64; 2],
    /// Probability of blurring.
    pub p: f64,
}

impl Default for GaussianBlur {
    /// FIRM's blur: kernel 3, σ ~ U(0.1, 2.0), p = 0.75 (docs/reference.md §3.4).
    fn default() -> Self {
        Self {
            kernel_size: 3,
            sigma: [0.1, 2.0],
            p: 0.75,
        }
    }
}

impl GaussianBlur {
    /// The SimCLR kernel for an image side: `⌊0.1·side⌋`, made odd by adding 1 if even
    /// (minimum 3) — "kernel side ≈ 10 % of the image side" (docs/reference.md §3.1).
    pub fn simclr_kernel_size(side: usize) -> usize {
        let k = (side / 10).max(3);
        if k.is_multiple_of(2) { k + 1 } else { k }
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::InvalidKernelSize`] for an even or zero kernel, [`Error::InvalidRange`] unless
    /// `0 < σ_min ≤ σ_max < ∞`, [`Error::InvalidProbability`] for `p ∉ [0, 1]`.
    pub fn validate(&self) -> Result<()> {
        check_kernel_size(self.kernel_size)?;
        let [s0, s1] = self.sigma;
        if !(s0 > 0.0 && s0 <= s1 && s1.is_finite()) {
            return Err(Error::InvalidRange {
                what: "gaussian_blur.sigma".into(),
                min: s0,
                max: s1,
                requirement: "need 0 < min ≤ max < ∞",
            });
        }
        check_probability("gaussian_blur.p", self.p)
    }

    /// Draws whether to blur and, if so, σ.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<f32> {
        if rng.random::<f64>() >= self.p {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)]
        Some(uniform(rng, self.sigma[0], self.sigma[1]) as f32)
    }
}

fn check_kernel_size(size: usize) -> Result<()> {
    if size % 2 == 1 {
        Ok(())
    } else {
        Err(Error::InvalidKernelSize { size })
    }
}

/// The normalised 1-D Gaussian kernel (torchvision `_get_gaussian_kernel1d`, f32).
///
/// # Errors
/// [`Error::InvalidKernelSize`] for an even or zero size, [`Error::InvalidParameter`] for
/// `σ ≤ 0` or non-finite σ.
pub fn gaussian_kernel1d(kernel_size: usize, sigma: f32) -> Result<Vec<f32>> {
    check_kernel_size(kernel_size)?;
    check_sigma(sigma)?;
    let mut k = Vec::new();
    kernel1d_into(kernel_size, sigma, &mut k);
    Ok(k)
}

fn check_sigma(sigma: f32) -> Result<()> {
    if sigma > 0.0 && sigma.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(
            "sigma",
            f64::from(sigma),
            "need a finite σ > 0",
        ))
    }
}

fn kernel1d_into(kernel_size: usize, sigma: f32, k: &mut Vec<f32>) {
    k.clear();
    let half = (kernel_size / 2) as f32;
    for i in 0..kernel_size {
        #[allow(clippy::cast_precision_loss)]
        let x = -half + i as f32;
        let z = x / sigma;
        k.push((-0.5 * (z * z)).exp());
    }
    let sum: f32 = k.iter().sum();
    for v in k.iter_mut() {
        *v /= sum;
    }
}

/// Reflect-padded index (no edge repetition) for any offset.
#[inline]
fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    // `m < period ≤ 2n`, non-negative.
    #[allow(clippy::cast_sign_loss)]
    let r = if m >= n as isize { period - m } else { m } as usize;
    r
}

/// Reusable buffers for the blur.
#[derive(Clone, Debug, Default)]
pub(crate) struct BlurScratch {
    kernel: Vec<f32>,
    padded: Vec<f32>,
    tmp: Vec<f32>,
    rows: Vec<usize>,
}

/// Blurs `img` in place with an `kernel_size × kernel_size` Gaussian of standard deviation
/// `sigma` (torchvision `F.gaussian_blur(img, [k, k], [σ, σ])`).
///
/// # Errors
/// As [`gaussian_kernel1d`].
pub fn gaussian_blur(img: &mut Image, kernel_size: usize, sigma: f32) -> Result<()> {
    check_kernel_size(kernel_size)?;
    check_sigma(sigma)?;
    gaussian_blur_unchecked(img, kernel_size, sigma, &mut BlurScratch::default());
    Ok(())
}

pub(crate) fn gaussian_blur_unchecked(
    img: &mut Image,
    kernel_size: usize,
    sigma: f32,
    s: &mut BlurScratch,
) {
    let (h, w) = (img.height(), img.width());
    let pad = kernel_size / 2;
    kernel1d_into(kernel_size, sigma, &mut s.kernel);
    let BlurScratch {
        kernel,
        padded,
        tmp,
        rows,
    } = s;
    padded.resize(w + 2 * pad, 0.0);
    tmp.resize(h * w, 0.0);
    rows.clear();
    for y in 0..h {
        for a in 0..kernel_size {
            rows.push(reflect(y as isize + a as isize - pad as isize, h));
        }
    }
    for c in 0..img.channels() {
        let plane = img.plane_mut(c);
        // Rows: tmp[y][x] = Σ_b k[b] · I[y][reflect(x + b − pad)].
        for (src, dst) in plane.chunks_exact(w).zip(tmp.chunks_exact_mut(w)) {
            for (i, p) in padded.iter_mut().enumerate() {
                *p = src[reflect(i as isize - pad as isize, w)];
            }
            dst.fill(0.0);
            for (b, &kb) in kernel.iter().enumerate() {
                for (d, &v) in dst.iter_mut().zip(&padded[b..b + w]) {
                    *d += kb * v;
                }
            }
        }
        // Columns: out[y] = Σ_a k[a] · tmp[reflect(y + a − pad)].
        for (y, out) in plane.chunks_exact_mut(w).enumerate() {
            out.fill(0.0);
            for (a, &ka) in kernel.iter().enumerate() {
                let r = rows[y * kernel_size + a];
                for (o, &v) in out.iter_mut().zip(&tmp[r * w..(r + 1) * w]) {
                    *o += ka * v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_is_normalised_and_symmetric() {
        let k = gaussian_kernel1d(5, 1.0).unwrap();
        let sum: f32 = k.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6);
        assert_eq!(k[0], k[4]);
        // exp(−½)/ (1 + 2e^{−½} + 2e^{−2}) = 0.60653/2.48373 = 0.24420.
        assert!((k[1] - 0.244_201_4).abs() < 1e-6, "{k:?}");
        assert!(gaussian_kernel1d(4, 1.0).is_err());
        assert!(gaussian_kernel1d(3, 0.0).is_err());
    }

    #[test]
    fn reflect_padding_indices() {
        // n = 4: … 2 1 | 0 1 2 3 | 2 1 0 …
        let got: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(reflect(-5, 1), 0);
    }

    #[test]
    fn constant_image_is_preserved_and_impulse_spreads_by_kernel() {
        let mut flat = Image::new(3, 4, 5, vec![0.25; 60]).unwrap();
        gaussian_blur(&mut flat, 3, 1.3).unwrap();
        assert!(flat.data().iter().all(|&v| (v - 0.25).abs() < 1e-6));
        // An impulse at the centre of a 5×5 image becomes the outer product of the 1-D kernel.
        let mut imp = Image::zeros(1, 5, 5).unwrap();
        imp.data_mut()[12] = 1.0;
        gaussian_blur(&mut imp, 3, 0.8).unwrap();
        let k = gaussian_kernel1d(3, 0.8).unwrap();
        for (a, y) in (1..4).enumerate() {
            for (b, x) in (1..4).enumerate() {
                assert!((imp.get(0, y, x) - k[a] * k[b]).abs() < 1e-7);
            }
        }
        assert_eq!(imp.get(0, 0, 0), 0.0);
    }

    #[test]
    fn simclr_kernel_sizes() {
        assert_eq!(GaussianBlur::simclr_kernel_size(32), 3);
        assert_eq!(GaussianBlur::simclr_kernel_size(224), 23);
        assert_eq!(GaussianBlur::simclr_kernel_size(64), 7);
    }
}
