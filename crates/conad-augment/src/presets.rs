//! The pipelines of the papers (docs/reference.md §3.1–§3.4, §3.6, §2.3–§2.4) as ready-made
//! [`AugmentConfig`]s.
//!
//! All use torchvision tensor-backend ops (float, no per-op uint8 quantisation, no antialias in
//! the resize), see the op modules. Differences from the original code are noted per preset.

use crate::blur::GaussianBlur;
use crate::color_jitter::ColorJitter;
use crate::config::{AugmentConfig, Step};
use crate::crop::RandomResizedCrop;
use crate::normalize::Normalize;

const SIMCLR_RATIO: [f64; 2] = [3.0 / 4.0, 4.0 / 3.0];

fn rrc(size: usize, scale: [f64; 2], ratio: [f64; 2]) -> Step {
    Step::RandomResizedCrop(RandomResizedCrop {
        size: [size, size],
        scale,
        ratio,
    })
}

/// SimCLR family (docs/reference.md §3.1): `RandomResizedCrop(size, scale (0.08, 1), ratio (3/4, 4/3))` →
/// horizontal flip p 0.5 → colour jitter of strength `s` (0.8s, 0.8s, 0.8s, 0.2s) with p 0.8 →
/// grayscale p 0.2 → (if `blur`) Gaussian blur p 0.5 with kernel ≈ 10 % of `size`,
/// σ ~ U(0.1, 2.0). No normalisation (CSI normalises inside the network).
pub fn simclr(size: usize, s: f64, blur: bool) -> AugmentConfig {
    let mut steps = vec![
        rrc(size, [0.08, 1.0], SIMCLR_RATIO),
        Step::HorizontalFlip { p: 0.5 },
        Step::ColorJitter(ColorJitter::simclr(s, 0.8)),
        Step::RandomGrayscale { p: 0.2 },
    ];
    if blur {
        steps.push(Step::GaussianBlur(GaussianBlur {
            kernel_size: GaussianBlur::simclr_kernel_size(size),
            sigma: [0.1, 2.0],
            p: 0.5,
        }));
    }
    AugmentConfig::from_steps(steps)
}

/// SimCLR at CIFAR strength (s = 0.5, jitter (0.4, 0.4, 0.4, 0.1), no blur) — the benchmark
/// pipeline and [`AugmentConfig::default`].
pub fn simclr_cifar(size: usize) -> AugmentConfig {
    simclr(size, 0.5, false)
}

/// SupContrast / SSD CIFAR pipeline (docs/reference.md §3.3): crop scale (0.2, 1), flip, jitter
/// (0.4, 0.4, 0.4, 0.1) p 0.8, grayscale p 0.2, then `normalize`.
pub fn supcon(size: usize, normalize: Normalize) -> AugmentConfig {
    AugmentConfig::from_steps(vec![
        rrc(size, [0.2, 1.0], SIMCLR_RATIO),
        Step::HorizontalFlip { p: 0.5 },
        Step::ColorJitter(ColorJitter::simclr(0.5, 0.8)),
        Step::RandomGrayscale { p: 0.2 },
        Step::Normalize(normalize),
    ])
}

/// CSI training pipeline (docs/reference.md §3.2) in CSI's order: horizontal flip p 0.5 → **shift slot** →
/// jitter (0.4, 0.4, 0.4, 0.1) p 0.8 → grayscale p 0.2 → `RandomResizedCrop(size, scale (0.08, 1))`.
///
/// Not replicated from CSI's GPU code: the affine-grid crop with reflection padding, brightness
/// on HSV's V, per-channel contrast means, the once-per-batch order shuffle and the 255/360 hue
/// scaling; conad uses the torchvision operations in CSI's order with CSI's parameters.
/// CSI normalises (x − 0.5)/0.5 inside its network; conad's ResNet does not normalise, so this
/// preset feeds [0, 1] images (the budget profiles of these methods do the same).
pub fn csi(size: usize) -> AugmentConfig {
    csi_with_scale(size, [0.08, 1.0])
}

/// CSI's evaluation augmentation (docs/reference.md §2.4): as [`csi`] with the crop area fixed to 0.54.
pub fn csi_eval(size: usize) -> AugmentConfig {
    csi_with_scale(size, [0.54, 0.54])
}

/// UniCon-HA's augmentation family `T_stage` (docs/reference.md §1.5 **\[PROPOSAL\]**; the
/// paper's strengths are in its unavailable supplement): CSI's order and ops with strength
/// growing with depth — stage 1: crop (0.8, 1), jitter (0.1, 0.1, 0.1, 0.025), grayscale p 0.05;
/// stage 2: (0.5, 1), (0.2, 0.2, 0.2, 0.05), 0.1; stage 3: (0.25, 1), (0.3, 0.3, 0.3, 0.075),
/// 0.15; stage 4: [`csi`] itself ((0.08, 1), (0.4, 0.4, 0.4, 0.1), 0.2). Jitter p 0.8 and
/// horizontal flip p 0.5 everywhere; the shift slot (the virtual outliers' rotation) follows the
/// flip. Stage 1's grayscale probability is not in the proposal; 0.05 continues its steps.
///
/// Returns `None` for a stage outside 1–4.
pub fn unicon_ha_stage(size: usize, stage: usize) -> Option<AugmentConfig> {
    let (scale, s, gray) = match stage {
        1 => (0.8, 0.125, 0.05),
        2 => (0.5, 0.25, 0.1),
        3 => (0.25, 0.375, 0.15),
        4 => (0.08, 0.5, 0.2),
        _ => return None,
    };
    Some(AugmentConfig::from_steps(vec![
        Step::HorizontalFlip { p: 0.5 },
        Step::Shift,
        Step::ColorJitter(ColorJitter::simclr(s, 0.8)),
        Step::RandomGrayscale { p: gray },
        rrc(size, [scale, 1.0], SIMCLR_RATIO),
    ]))
}

fn csi_with_scale(size: usize, scale: [f64; 2]) -> AugmentConfig {
    AugmentConfig::from_steps(vec![
        Step::HorizontalFlip { p: 0.5 },
        Step::Shift,
        Step::ColorJitter(ColorJitter::simclr(0.5, 0.8)),
        Step::RandomGrayscale { p: 0.2 },
        rrc(size, scale, SIMCLR_RATIO),
    ])
}

/// FIRM training pipeline (docs/reference.md §3.4): **shift slot** (rotation of the raw image) →
/// `RandomResizedCrop(size, scale (0.25, 1), ratio 1:1)` → jitter (0.4, 0.4, 0.4, hue 0.4) p 1 →
/// Gaussian blur kernel 3, σ ~ U(0.1, 2) p 0.75 → `normalize`. No flip, no grayscale.
/// For Fashion-MNIST chain [`AugmentConfig::with_grey_to_rgb`].
pub fn firm(size: usize, normalize: Normalize) -> AugmentConfig {
    AugmentConfig::from_steps(vec![
        Step::Shift,
        rrc(size, [0.25, 1.0], [1.0, 1.0]),
        Step::ColorJitter(ColorJitter {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
            hue: 0.4,
            p: 1.0,
        }),
        Step::GaussianBlur(GaussianBlur {
            kernel_size: 3,
            sigma: [0.1, 2.0],
            p: 0.75,
        }),
        Step::Normalize(normalize),
    ])
}

/// FIRM's deterministic test transform (docs/reference.md §3.6): resize the shorter side to
/// `⌊size·1.125⌋` (36 for 32, 72 for 64) → centre crop `size` → **shift slot** (the rotation
/// ensemble rotates the processed image, §2.3) → `normalize`.
pub fn firm_test(size: usize, normalize: Normalize) -> AugmentConfig {
    AugmentConfig::from_steps(vec![
        Step::ResizeShorter { size: size * 9 / 8 },
        Step::CenterCrop {
            height: size,
            width: size,
        },
        Step::Shift,
        Step::Normalize(normalize),
    ])
}

/// FIRM's crop ensemble (docs/reference.md §2.3, §6.11): the test transform, then
/// `RandomResizedCrop(size, scale (0.55, 1), ratio 1:1)`, then the **shift slot** (each crop is
/// rotated), then `normalize`.
pub fn firm_crop_ensemble(size: usize, normalize: Normalize) -> AugmentConfig {
    AugmentConfig::from_steps(vec![
        Step::ResizeShorter { size: size * 9 / 8 },
        Step::CenterCrop {
            height: size,
            width: size,
        },
        rrc(size, [0.55, 1.0], [1.0, 1.0]),
        Step::Shift,
        Step::Normalize(normalize),
    ])
}

/// SupContrast / SSD test transform (docs/reference.md §3.6): `ToTensor → Normalize` only.
pub fn test_normalize(normalize: Normalize) -> AugmentConfig {
    AugmentConfig::from_steps(vec![Step::Normalize(normalize)])
}

/// Resize the shorter side, centre-crop, normalise (CON2 medical: 256 → 224, mean/std 0.5;
/// docs/reference.md §3.6).
pub fn test_resize_center_crop(resize: usize, crop: usize, normalize: Normalize) -> AugmentConfig {
    AugmentConfig::from_steps(vec![
        Step::ResizeShorter { size: resize },
        Step::CenterCrop {
            height: crop,
            width: crop,
        },
        Step::Normalize(normalize),
    ])
}

/// DROC's input for 28×28 grey images: zero-pad two pixels per side to 32×32 (docs/reference.md §3.4).
pub fn droc_pad() -> AugmentConfig {
    AugmentConfig::from_steps(vec![Step::Pad {
        pixels: 2,
        value: 0.0,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shift::Shift;

    #[test]
    fn presets_are_valid_and_have_the_documented_shapes() {
        let n = Normalize::cifar10;
        for (c, input, out) in [
            (simclr_cifar(32), [3, 32, 32], [3, 32, 32]),
            (simclr(224, 1.0, true), [3, 500, 375], [3, 224, 224]),
            (supcon(32, n()), [3, 32, 32], [3, 32, 32]),
            (csi(32), [3, 32, 32], [3, 32, 32]),
            (csi_eval(32), [3, 32, 32], [3, 32, 32]),
            (firm(32, n()), [3, 32, 32], [3, 32, 32]),
            (
                firm(32, Normalize::fashion_mnist()).with_grey_to_rgb(),
                [1, 28, 28],
                [3, 32, 32],
            ),
            (firm_test(32, n()), [3, 32, 32], [3, 32, 32]),
            (
                firm_test(64, Normalize::cats_vs_dogs()),
                [3, 64, 64],
                [3, 64, 64],
            ),
            (firm_crop_ensemble(32, n()), [3, 32, 32], [3, 32, 32]),
            (test_normalize(n()), [3, 32, 32], [3, 32, 32]),
            (
                test_resize_center_crop(256, 224, Normalize::half()),
                [1, 28, 28],
                [1, 224, 224],
            ),
            (droc_pad(), [1, 28, 28], [1, 32, 32]),
        ] {
            c.validate().unwrap();
            for shift in Shift::ROTATIONS {
                assert_eq!(c.output_shape(input, shift).unwrap(), out, "{c:?}");
            }
        }
        // SimCLR ImageNet blur kernel 23 at 224 px.
        let blur = simclr(224, 1.0, true);
        assert!(matches!(blur.steps.last(), Some(Step::GaussianBlur(b)) if b.kernel_size == 23));
        // FIRM test resize: ⌊32·1.125⌋ = 36.
        assert_eq!(
            firm_test(32, n()).steps[0],
            Step::ResizeShorter { size: 36 }
        );
    }
}
